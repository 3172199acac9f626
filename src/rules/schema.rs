//! The rules' file formats: what rules/**/*.toml hold, as typed data. build.rs deserializes
//! every rules file into these types and checks the names they use against the kernel's enums,
//! so that a misspelt condition, effect or name fails the build; [`crate::rules`] parses the
//! same data at start and indexes it. (build.rs includes this file and [`crate::vocab`]: they use
//! serde and std only.)

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;

use crate::vocab::Lists;

/// FNV-1a: the rules' lookup tables are keyed by short names and small numbers, for which
/// SipHash's protection against chosen keys is not needed: their keys come from the rules
/// (an object's names are only looked up). Tables keyed by what an object says keep std's
/// hashing.
#[derive(Default)]
pub struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A hash map for lookups in the rules.
pub type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<Fnv>>;

/// The kernel version that introduced a name (rules/kernel/versions.toml, generated).
#[derive(Debug, Clone, Deserialize)]
pub struct NameVersion {
    pub list: String,
    pub name: String,
    pub since: String,
    #[serde(default)]
    pub exact: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VersionsFile {
    pub version: Vec<NameVersion>,
}

/// How a map type's memory is laid out (rules/kernel/map-memory.toml, whose header says what
/// each layout counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapLayout {
    Values,
    Elements,
    Pointers,
    Bytes,
    Queue,
    Bits,
    Lazy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapMemoryRule {
    pub types: Vec<String>,
    pub layout: MapLayout,
    #[serde(default)]
    pub percpu: bool,
}

/// rules/kernel/map-memory.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapMemory {
    pub element_overhead: u64,
    pub map: Vec<MapMemoryRule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdRequire {
    pub setting: String,
    pub value: String,
    /// Written by `emit` as `SETTING=VALUE`, under this comment (one line per line).
    #[serde(default)]
    pub written: Option<String>,
    pub why: String,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdSettings {
    pub private_bpf: String,
    /// The values a boolean setting reads as true (parse_boolean; case-insensitive).
    pub true_values: Vec<String>,
    /// The values a boolean setting reads as false.
    pub false_values: Vec<String>,
    /// What separates the names of a list (`,` only, not trimmed).
    pub separator: String,
    /// The whole value that grants every item of a list.
    pub all: String,
    /// The setting of each list (`BPFDelegateCommands`, ...).
    #[serde(flatten)]
    pub lists: Lists<String>,
    pub since: String,
    pub unknown_name_message: String,
    #[serde(default)]
    pub requires: Vec<SystemdRequire>,
    /// The settings of a BPF drop-in (written by `emit`, read by `check`).
    pub drop_in: Vec<String>,
    /// The other unit settings `check` reads.
    pub unit: SystemdUnitSettings,
}

/// The unit settings besides the lists that decide whether a token can be made and used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdUnitSettings {
    pub private_users: String,
    pub delegate_namespaces: String,
    /// The namespace DelegateNamespaces= must name.
    pub mount_namespace: String,
    pub capability_bounding_set: String,
    pub ambient_capabilities: String,
    pub user: String,
    /// User= values that are root.
    pub root_users: Vec<String>,
}

/// One name systemd accepts, the bit it sets, and the systemd versions with that mapping.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemdName {
    pub list: String,
    pub systemd: String,
    pub bit: u32,
    /// The kernel's name for that bit.
    pub kernel: String,
    pub systemd_versions: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdUnnamed {
    pub list: String,
    pub kernel: String,
    pub bit: u32,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdRules {
    pub settings: SystemdSettings,
    #[serde(rename = "name")]
    pub names: Vec<SystemdName>,
    #[serde(default, rename = "unnamed")]
    pub unnamed: Vec<SystemdUnnamed>,
}

/// Every setting systemd knows in unit files, by section (rules/dialects/systemd-keys.toml,
/// generated from `systemd --dump-configuration-items`).
#[derive(Debug, Clone, Deserialize)]
pub struct SystemdKeys {
    /// The systemd version the table was made from.
    pub systemd: String,
    pub section: Vec<SystemdSection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdSection {
    pub name: String,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManagerKeys {
    /// The key of each list (`security.bpffs.delegate_cmds`, ...).
    #[serde(flatten)]
    pub lists: Lists<String>,
    #[serde(default)]
    pub path: String,
    /// The master switch without which the list keys do nothing (LXD); empty: none.
    #[serde(default)]
    pub enable_key: String,
    /// The instance setting that makes a container privileged (no token can be made then).
    pub privileged: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManagerSyntax {
    /// The manager's command-line tool (`incus`, `lxc`).
    pub cli: String,
    pub separator: String,
    #[serde(default)]
    pub value_length_limit: usize,
    /// The values a boolean key reads as true (case-insensitive).
    pub true_values: Vec<String>,
}

/// Incus or LXD instance configuration keys (rules/dialects/incus.toml, lxd.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct ManagerRules {
    pub keys: ManagerKeys,
    pub syntax: ManagerSyntax,
    #[serde(default)]
    pub requirements: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Capability {
    pub name: String,
    pub value: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapabilitiesFile {
    pub capability: Vec<Capability>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnumEntry {
    pub value: u32,
    pub uapi: String,
    pub name: String,
    #[serde(default)]
    pub alias_of: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HelperEntry {
    pub id: u32,
    pub name: String,
    /// How many arguments (r1, r2, ...) the helper takes, from its documented prototype.
    #[serde(default)]
    pub args: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Enums {
    #[serde(rename = "command")]
    pub commands: Vec<EnumEntry>,
    #[serde(rename = "map_type")]
    pub map_types: Vec<EnumEntry>,
    #[serde(rename = "prog_type")]
    pub prog_types: Vec<EnumEntry>,
    #[serde(rename = "attach_type")]
    pub attach_types: Vec<EnumEntry>,
    #[serde(rename = "helper")]
    pub helpers: Vec<HelperEntry>,
    /// helper id → index in `helpers`, built when the rules are loaded
    #[serde(skip)]
    pub(crate) helper_by_id: HashMap<u32, usize>,
    /// helper id → how many arguments it takes (5, all argument registers, where not known),
    /// built when the rules are loaded
    #[serde(skip)]
    pub helper_args: Vec<u8>,
    /// per list: name → value, built when the rules are loaded
    #[serde(skip)]
    pub(crate) value_by_name: Lists<HashMap<String, u32>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionRule {
    pub pattern: String,
    #[serde(rename = "match")]
    pub match_kind: SectionMatch,
    pub prog_type: String,
    pub expected_attach_type: String,
    #[serde(default)]
    pub attach_zero: bool,
    #[serde(default)]
    pub flags: Vec<String>,
    /// The loader versions whose table has the entry.
    #[serde(rename = "versions")]
    pub in_versions: Vec<String>,
    /// `in_versions`, parsed once when the rules are loaded.
    #[serde(skip)]
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SectionsFile {
    pub section: Vec<SectionRule>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TokenCommand {
    pub command: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub checks: String,
    #[serde(default)]
    pub source: String,
}

/// The first and last kernel (X.Y) whose sources the rules were read from.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct KernelRange {
    pub first: String,
    pub last: String,
}

/// bpf_prog_load_fixup_attach_type(): for `prog_type`, an expected attach type of 0 becomes
/// `attach`.
#[derive(Debug, Clone, Deserialize)]
pub struct AttachFixup {
    pub prog_type: String,
    pub attach: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TokenCreate {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

/// How the kernel weighs capabilities through a token (bpf_token_capable()).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Capable {
    /// The capability that stands in for every other.
    pub substitute: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct CapRule {
    pub name: String,
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub since: Option<String>,
    /// Map types only: why the kernel needs the object's BTF to create such a map.
    #[serde(default)]
    pub needs_btf: Option<String>,
}

/// When a kfunc rule applies (see the comment in privileges.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KfuncWhen {
    /// Every kfunc call.
    #[default]
    AnyKfunc,
    /// Programs that use an arena map.
    Arena,
    /// Calls to the kfuncs the rule lists; the capability is not token-aware.
    Listed,
    /// What the verifier sees: not derived statically.
    Verifier,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct KfuncRule {
    pub when: KfuncWhen,
    #[serde(default)]
    pub kfuncs: Vec<String>,
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Privileges {
    /// The kernels the rules were read from.
    pub kernels: KernelRange,
    pub capable: Capable,
    #[serde(default)]
    pub token_command: Vec<TokenCommand>,
    #[serde(default)]
    pub token_create: TokenCreate,
    /// The expected attach types the kernel puts in place of 0 before its token checks.
    #[serde(default)]
    pub attach_fixup: Vec<AttachFixup>,
    #[serde(default)]
    pub prog_type: Vec<CapRule>,
    #[serde(default)]
    pub map_type: Vec<CapRule>,
    #[serde(default)]
    pub helper: Vec<CapRule>,
    #[serde(default)]
    pub kfunc_rule: Vec<KfuncRule>,
    /// helper name → index in `helper`, built when the rules are loaded
    #[serde(skip)]
    pub(crate) helper_by_name: HashMap<String, usize>,
}

/// Which program types offer a helper (used when libbpf rewrites a call to a legacy helper).
#[derive(Debug, Clone, Deserialize)]
pub struct HelperAvailability {
    pub helper: String,
    pub prog_types: Vec<String>,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HelperAvailabilityFile {
    pub available: Vec<HelperAvailability>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
pub struct Alternative {
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub programs: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<String>,
    #[serde(default)]
    pub maps: Vec<String>,
}

/// A loader's rules file (rules/loader/*.toml): who it is, how it finds its token, which
/// section table it reads, what it loads of an object, every step it takes through the token
/// beyond the object's own maps and programs, and what each fallback costs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderFile {
    pub loader: LoaderHeader,
    /// How a binary shows that it carries this loader.
    #[serde(default)]
    pub detect: Detect,
    #[serde(default, rename = "step")]
    pub steps: Vec<LoaderStep>,
    #[serde(default, rename = "effect")]
    pub effects: Vec<EffectRule>,
}

/// One loader as build.rs writes it: its rules file and its section table.
#[derive(Debug, Clone, Deserialize)]
pub struct LoaderRules {
    /// The rules file (`loader/NAME.toml`).
    pub file: String,
    pub rules: LoaderFile,
    pub sections: Vec<SectionRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderHeader {
    /// The name `--loader` takes.
    pub name: String,
    /// How reports name it.
    pub title: String,
    /// The versions these rules describe, oldest first.
    pub versions: Vec<String>,
    /// The versions a delegation is derived for when none is asked for: `MIN-MAX`.
    pub default_versions: String,
    /// How it finds its BPF token.
    pub token: TokenDiscovery,
    /// How `bpfcap verify` proves an answer for it.
    pub verified_by: VerifiedBy,
    /// Its section table: a file under rules/.
    #[serde(default)]
    pub sections: Option<String>,
    /// Which maps of an object it creates.
    pub maps: MapCreation,
    /// It loads a struct_ops program whenever a struct_ops map it creates uses it, whatever
    /// programs were asked for (libbpf: bpf_object_adjust_struct_ops_autoload).
    #[serde(default)]
    pub struct_ops_programs_follow_maps: bool,
    /// The versions before these rules that take no token at all (`--loader NAME@X.Y` with such
    /// a version says so and names the capabilities instead), and why.
    #[serde(default)]
    pub tokenless_before: Option<String>,
    #[serde(default)]
    pub tokenless_why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenDiscovery {
    /// From a path it is given (libbpf: bpf_token_path, LIBBPF_BPF_TOKEN_PATH; else /sys/fs/bpf).
    ExplicitPath,
    /// From the first bpffs mount of the process that yields one (cilium/ebpf).
    Ambient,
    /// It never creates a token (aya): every version needs real capabilities.
    None,
}

/// How `bpfcap verify` proves an answer for a loader: never with another loader standing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifiedBy {
    /// libbpf in the sandbox's process (the libbpf bpfcap is built with).
    Libbpf,
    /// A cilium/ebpf loader program run in the sandbox (tools/cilium-loader, `--cilium-loader`).
    CiliumLoader,
    /// Nothing: it takes no token, so there is no delegation to prove.
    Nothing,
}

/// How a binary shows the loader it carries (`[detect]` of a loader's rules file). The input
/// layer reads these facts from an executable; the first loader whose rules match is chosen.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// Go module path: a Go binary whose build info lists it as a dependency (`dep` line, or a
    /// `=>` replacement of it) carries the loader, at that version.
    #[serde(default)]
    pub go_module: Option<String>,
    /// Shared libraries (DT_NEEDED) that are the loader.
    #[serde(default)]
    pub shared_library: Vec<String>,
    /// Prefix of the symbol-version nodes of the shared library (`LIBBPF_1.7.0`): the highest
    /// node the binary needs is the oldest version it can run with.
    #[serde(default)]
    pub version_node: Option<String>,
    /// Strings that, all present, show the loader linked in (statically, or in a Go binary
    /// without module information).
    #[serde(default)]
    pub strings: Vec<String>,
    /// Strings that show a version: the first present (newest first) gives it.
    #[serde(default, rename = "version_marker")]
    pub version_markers: Vec<VersionMarker>,
    /// The sections of an executable or library in which the loader's toolchain puts the
    /// objects it embeds (a name covers its dotted extensions: `.rodata` covers
    /// `.rodata.str1.1`). The input reads only these (with the ones detection reads) of an
    /// ELF file it searches.
    #[serde(default)]
    pub embedded_in: Vec<String>,
    /// Further sections in which `strings` and the version markers are found (they are searched
    /// for in every section the input reads: these and every loader's `embedded_in`).
    #[serde(default)]
    pub strings_in: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionMarker {
    pub string: String,
    /// The version the string shows (at least).
    pub version: String,
    /// Where the string comes from.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapCreation {
    /// Every map of the object, whichever programs load (libbpf's bpf_object__create_maps).
    All,
    /// The maps that a loaded program references, and, when every program is loaded, every
    /// map the object names (bpf2go's generated LoadAndAssign); global-data sections only when
    /// referenced or named by a variable.
    Requested,
}

/// How a section rule's pattern matches a section name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionMatch {
    /// The name equals the pattern.
    Exact,
    /// The name equals the pattern, or starts with the pattern and '/' (libbpf's `type+`).
    Plus,
    /// The name starts with the pattern.
    Prefix,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderStep {
    pub id: String,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub source: String,
    /// The first version that takes the step.
    pub min: String,
    /// The last one (none: every later version).
    #[serde(default)]
    pub max: Option<String>,
    /// The step happens only when a token is in use.
    #[serde(default)]
    pub token_only: bool,
    pub when: Condition,
    /// The step happens only when step `after` succeeds (its alternative is delegated).
    #[serde(default)]
    pub after: Option<String>,
    pub on_failure: OnFailure,
    #[serde(default)]
    pub fallback: Fallback,
    #[serde(default)]
    pub lost: String,
    #[serde(default, rename = "alternative")]
    pub alternatives: Vec<Alternative>,
    /// `min`..=`max`, parsed once when the rules are loaded.
    #[serde(skip)]
    pub range: (Version, Version),
    /// Per alternative: its items and the capabilities they need, as [`NameIndex`] numbers
    /// (sorted, unique), computed when the rules are loaded.
    #[serde(skip)]
    pub alternative_ids: Vec<Vec<u16>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The loader gives up: the object does not load.
    Fatal,
    /// The loader goes on, with the step's fallback.
    Fallback,
}

/// When a loader step happens (the `when` field of rules/loader/*.toml; libbpf.toml's header
/// comment describes each).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Condition {
    Always,
    TokenPathExplicit,
    TokenPathDefault,
    ObjectHasBtf,
    ObjectHasBtfExt,
    ObjectHasGlobalData,
    ObjectHasRodata,
    ObjectHasMaps,
    ObjectHasStructOps,
    ObjectHasArena,
    ObjectHasKconfig,
    ObjectHasKconfigExtern(String),
    ObjectHasKsyms,
    ObjectHasJumptables,
    /// A created map carries BTF for its key or value.
    ObjectHasMapBtf,
    ModuleBtfLookup,
    ProgramHasName,
    /// A loaded program carries func_info (the object has .BTF.ext).
    ProgramHasFuncInfo,
    ProgramReferencesGlobalData,
    ProgramSecFlag(String),
    /// any of these helpers
    ProgramCallsHelper(Vec<String>),
    /// any helper at all
    ProgramCallsAnyHelper,
    ProgramType(String),
}

impl TryFrom<String> for Condition {
    type Error = String;

    fn try_from(when: String) -> Result<Self, String> {
        let (cond, arg) = match when.split_once(':') {
            Some((c, a)) => (c, Some(a)),
            None => (when.as_str(), None),
        };
        Ok(match (cond, arg) {
            ("always", None) => Condition::Always,
            ("token_path_explicit", None) => Condition::TokenPathExplicit,
            ("token_path_default", None) => Condition::TokenPathDefault,
            ("object_has_btf", None) => Condition::ObjectHasBtf,
            ("object_has_btf_ext", None) => Condition::ObjectHasBtfExt,
            ("object_has_global_data", None) => Condition::ObjectHasGlobalData,
            ("object_has_rodata", None) => Condition::ObjectHasRodata,
            ("object_has_maps", None) => Condition::ObjectHasMaps,
            ("object_has_struct_ops", None) => Condition::ObjectHasStructOps,
            ("object_has_arena", None) => Condition::ObjectHasArena,
            ("object_has_kconfig", None) => Condition::ObjectHasKconfig,
            ("object_has_kconfig_extern", Some(n)) => Condition::ObjectHasKconfigExtern(n.into()),
            ("object_has_ksyms", None) => Condition::ObjectHasKsyms,
            ("object_has_jumptables", None) => Condition::ObjectHasJumptables,
            ("object_has_map_btf", None) => Condition::ObjectHasMapBtf,
            ("module_btf_lookup", None) => Condition::ModuleBtfLookup,
            ("program_has_name", None) => Condition::ProgramHasName,
            ("program_has_func_info", None) => Condition::ProgramHasFuncInfo,
            ("program_references_global_data", None) => Condition::ProgramReferencesGlobalData,
            ("program_sec_flag", Some(f)) => Condition::ProgramSecFlag(f.into()),
            ("program_calls_helper", Some(hs)) => {
                Condition::ProgramCallsHelper(hs.split('|').map(String::from).collect())
            }
            ("program_calls_any_helper", None) => Condition::ProgramCallsAnyHelper,
            ("program_type", Some(t)) => Condition::ProgramType(t.into()),
            _ => return Err(format!("unknown condition `{when}`")),
        })
    }
}

/// What a loader does when a step fails and it goes on (the `fallback` field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Fallback {
    /// Nothing changes (or a fatal step: no fallback).
    #[default]
    None,
    NoToken,
    NoProgName,
    NoObjectNames,
    NoDotsInNames,
    KconfigFalse(String),
    NoFuncInfo,
    EmulateArgCtx,
    NoModuleBtf,
    ArenaGlobalsAtStart,
    SkipGlobalDataMaps,
    SanitizeBtf,
    SkipBtf,
    NoMapBtf,
    NoMmapGlobalData,
    /// (from, to) helper names
    RewriteHelpers(Vec<(String, String)>),
    ResetExpectedAttachType,
    KeepKprobeAttach,
}

impl Fallback {
    /// The fallback's name, as `[[effect]]` tables name it (without its arguments).
    pub fn kind(&self) -> &'static str {
        match self {
            Fallback::None => "none",
            Fallback::NoToken => "no_token",
            Fallback::NoProgName => "no_prog_name",
            Fallback::NoObjectNames => "no_object_names",
            Fallback::NoDotsInNames => "no_dots_in_names",
            Fallback::KconfigFalse(_) => "kconfig_false",
            Fallback::NoFuncInfo => "no_func_info",
            Fallback::EmulateArgCtx => "emulate_arg_ctx",
            Fallback::NoModuleBtf => "no_module_btf",
            Fallback::ArenaGlobalsAtStart => "arena_globals_at_start",
            Fallback::SkipGlobalDataMaps => "skip_global_data_maps",
            Fallback::SanitizeBtf => "sanitize_btf",
            Fallback::SkipBtf => "skip_btf",
            Fallback::NoMapBtf => "no_map_btf",
            Fallback::NoMmapGlobalData => "no_mmap_global_data",
            Fallback::RewriteHelpers(_) => "rewrite_helpers",
            Fallback::ResetExpectedAttachType => "reset_expected_attach_type",
            Fallback::KeepKprobeAttach => "keep_kprobe_attach",
        }
    }
}

impl TryFrom<String> for Fallback {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s.as_str(), None),
        };
        Ok(match (kind, arg) {
            ("" | "none", None) => Fallback::None,
            ("no_token", None) => Fallback::NoToken,
            ("no_prog_name", None) => Fallback::NoProgName,
            ("no_object_names", None) => Fallback::NoObjectNames,
            ("no_dots_in_names", None) => Fallback::NoDotsInNames,
            ("kconfig_false", Some(n)) => Fallback::KconfigFalse(n.into()),
            ("no_func_info", None) => Fallback::NoFuncInfo,
            ("emulate_arg_ctx", None) => Fallback::EmulateArgCtx,
            ("no_module_btf", None) => Fallback::NoModuleBtf,
            ("arena_globals_at_start", None) => Fallback::ArenaGlobalsAtStart,
            ("skip_global_data_maps", None) => Fallback::SkipGlobalDataMaps,
            ("sanitize_btf", None) => Fallback::SanitizeBtf,
            ("skip_btf", None) => Fallback::SkipBtf,
            ("no_map_btf", None) => Fallback::NoMapBtf,
            ("no_mmap_global_data", None) => Fallback::NoMmapGlobalData,
            ("rewrite_helpers", Some(pairs)) => Fallback::RewriteHelpers(
                pairs
                    .split(',')
                    .map(|p| {
                        p.split_once('=')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| format!("rewrite_helpers: `{p}` is not FROM=TO"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ("reset_expected_attach_type", None) => Fallback::ResetExpectedAttachType,
            ("keep_kprobe_attach", None) => Fallback::KeepKprobeAttach,
            _ => return Err(format!("unknown fallback `{s}`")),
        })
    }
}

/// What a fallback does to the object's load beyond what it loses (`lost`): the programs it
/// breaks, the needs it takes away, the attach type it gives (the `[[effect]]` tables).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectRule {
    /// The fallback's name ([`Fallback::kind`]).
    pub fallback: String,
    /// The programs (of those the step concerns, or all loaded ones for an object-level step)
    /// whose load then fails.
    #[serde(default)]
    pub breaks: Vec<ProgramPredicate>,
    /// What of the object is then not created, and needs nothing.
    #[serde(default)]
    pub drops: Option<Dropped>,
    /// The expected attach type the concerned programs are then loaded with.
    #[serde(default)]
    pub attach: Option<AttachChange>,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramPredicate {
    /// It passes a callback to a helper or kfunc (an ld_imm64 of a subprogram's address).
    UsesCallbacks,
    /// It references a global-data map (.data, .rodata, .bss, .kconfig).
    ReferencesGlobalData,
    /// It calls a helper the fallback rewrites to one its program type cannot call.
    CannotCallReplacement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dropped {
    /// The global-data maps (.data, .rodata, .bss, .kconfig).
    InternalMaps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachChange {
    /// Expected attach type 0, which the kernel reads as cgroup_inet_ingress.
    Zero,
}

/// A loader's version as (major, minor): libbpf 1.7, cilium/ebpf 0.22.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u32, pub u32);

/// rules/kernel/verifier.toml: the verifier's privilege gates bpfcap derives from instructions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierRules {
    pub ctx_packet: Vec<CtxPacket>,
    pub gate: Vec<GateRule>,
    #[serde(default)]
    pub unsettled: Vec<Unsettled>,
    #[serde(default)]
    pub btf_field: Vec<BtfFieldRule>,
    #[serde(default)]
    pub stack_read: Vec<StackRead>,
}

/// A helper argument the verifier reads as a buffer, of a size the instructions show: where it
/// points into the stack, every byte must have been written (or the gate
/// uninitialized_stack_read).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackRead {
    /// The helper's name (enum bpf_func_id without `BPF_FUNC_`).
    pub helper: String,
    /// Its number, filled in when the rules are read.
    #[serde(skip)]
    pub helper_id: u32,
    /// The argument register, r1-r5, that points at the buffer.
    pub arg: u8,
    /// How many bytes it reads.
    pub size: ReadSize,
}

/// How many bytes a helper reads from a buffer argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadSize {
    /// The key size of the map in r1 (ARG_PTR_TO_MAP_KEY).
    MapKey,
    /// The value size of the map in r1 (ARG_PTR_TO_MAP_VALUE).
    MapValue,
    /// The number in register r<N>, N 1-5 (ARG_CONST_SIZE, ARG_CONST_SIZE_OR_ZERO).
    Register(u8),
}

/// Which uses of a map-value special field need the map's BTF in the kernel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtfFieldRule {
    /// A field type name, or a prefix ending in ':' (`type_tag:`).
    pub field: String,
    #[serde(default)]
    pub helpers: Vec<String>,
    #[serde(default)]
    pub kfunc_prefixes: Vec<String>,
    /// Any program referencing the map uses the field.
    #[serde(default)]
    pub any_use: bool,
}

impl BtfFieldRule {
    pub fn matches(&self, field: &str) -> bool {
        if self.field.ends_with(':') { field.starts_with(&self.field) } else { field == self.field }
    }
}

/// The context fields a program type's packet pointers are loaded from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtxPacket {
    pub prog_types: Vec<String>,
    pub data: u32,
    pub data_end: u32,
    #[serde(default)]
    pub data_meta: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Arithmetic between two pointers (`data_end - data`).
    PointerMinusPointer,
    /// A 32-bit subtraction with one pointer operand (`w2 -= w3`, r2 a pointer).
    #[serde(rename = "pointer_in_32bit_subtraction")]
    PointerIn32BitSubtraction,
    /// A 32-bit copy of a pointer (`w2 = w1`, r1 a pointer).
    PointerTruncated,
    /// A pointer negated or byte-swapped (`r1 = -r1`, `r1 = be64 r1`).
    PointerNegatedOrSwapped,
    /// A sign-extending 64-bit copy of a pointer (`r1 = (s32)r2`, r2 a pointer).
    PointerSignExtended,
    /// A pointer compared (`if r1 > r2`, r1 a stack pointer), but in a lookup's NULL check, a
    /// map value's address against 0 for equality, or the packet's start ordered against its
    /// end or metadata in 64 bits.
    PointerCompared,
    /// A register added to (or subtracted from) a packet or context pointer.
    PacketPointerPlusRegister,
    /// A register added to a map-value or stack pointer that holds a different constant on
    /// different ways to the instruction.
    PointerPlusDifferingConstants,
    /// Stack bytes nothing has written, read by a load or by a helper (a map key with padding).
    UninitializedStackRead,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRule {
    pub id: Gate,
    pub caps: Vec<String>,
    pub why: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsettled {
    /// The capabilities these gates need: the warning is given when the delegation lacks one.
    pub caps: Vec<String>,
    pub what: String,
}
