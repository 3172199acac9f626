//! The rule tables in `rules/`, compiled into the binary and parsed once.
//! Code interprets these tables; facts about the kernel and libbpf live in them, not here.

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

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

use serde::Deserialize;

// The rules as built by build.rs: rules/**/*.toml turned into JSON (same data, parsed faster).
const ENUMS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__enums.json"));
const SECTIONS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/sections.json"));
const PRIVILEGES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__privileges.json"));
const HELPER_AVAILABILITY_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__helper-availability.json"));
const LIBBPF_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/loader__libbpf.json"));
const CAPABILITIES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__capabilities.json"));
const VERSIONS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__versions.json"));
const MAP_MEMORY_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__map-memory.json"));
const SYSTEMD_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__systemd.json"));
const SYSTEMD_KEYS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__systemd-keys.json"));
const INCUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__incus.json"));
const LXD_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__lxd.json"));

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
struct VersionsFile {
    version: Vec<NameVersion>,
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

impl MapMemory {
    /// The rule of a map type (by kernel name), if the table names it.
    pub fn rule(&self, map_type: &str) -> Option<&MapMemoryRule> {
        self.map.iter().find(|r| r.types.iter().any(|t| t == map_type))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdRequire {
    pub setting: String,
    pub value: String,
    pub why: String,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemdSettings {
    pub private_bpf: String,
    pub commands: String,
    pub maps: String,
    pub programs: String,
    pub attachments: String,
    pub since: String,
    pub unknown_name_message: String,
    #[serde(default)]
    pub requires: Vec<SystemdRequire>,
    /// The settings of a BPF drop-in (written by `emit`, read by `check`).
    pub drop_in: Vec<String>,
}

impl SystemdSettings {
    /// Why PrivateBPF= requires `setting` (empty when the rules give no reason).
    pub fn why_required(&self, setting: &str) -> &str {
        self.requires.iter().find(|r| r.setting == setting).map_or("", |r| r.why.as_str())
    }
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

impl SystemdName {
    /// True when the name means another kernel item than the bit systemd sets.
    pub fn mismatch(&self) -> bool {
        self.note.starts_with("MISMATCH")
    }

    /// The oldest systemd version with this mapping.
    pub fn first_version(&self) -> String {
        self.systemd_versions.split([',', '-']).next().unwrap_or("").trim().to_string()
    }
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

impl SystemdRules {
    pub fn setting(&self, k: ListKind) -> &str {
        match k {
            ListKind::Commands => &self.settings.commands,
            ListKind::Maps => &self.settings.maps,
            ListKind::Programs => &self.settings.programs,
            ListKind::Attachments => &self.settings.attachments,
        }
    }

    /// The exact (case-sensitive) systemd name, as systemd looks it up.
    pub fn lookup(&self, k: ListKind, raw: &str) -> Option<&SystemdName> {
        self.names.iter().find(|n| n.list == k.json_key() && n.systemd == raw)
    }

    /// The name that honestly grants kernel item `kernel` (never a mismatched one).
    pub fn name_for(&self, k: ListKind, kernel: &str) -> Option<&SystemdName> {
        self.names.iter().find(|n| n.list == k.json_key() && n.kernel == kernel && !n.mismatch())
    }

    /// The systemd name a user meant, found case-insensitively (for messages).
    pub fn intended(&self, k: ListKind, raw: &str) -> Option<&SystemdName> {
        let r = raw.trim();
        self.names.iter().find(|n| n.list == k.json_key() && n.systemd.eq_ignore_ascii_case(r))
    }
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

impl SystemdKeys {
    /// The keys of section `name`, None for a section systemd does not know.
    pub fn section(&self, name: &str) -> Option<&[String]> {
        self.section.iter().find(|s| s.name == name).map(|s| s.keys.as_slice())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManagerKeys {
    pub commands: String,
    pub maps: String,
    pub programs: String,
    pub attachments: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub enable_key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManagerSyntax {
    pub separator: String,
    #[serde(default)]
    pub value_length_limit: usize,
}

/// Incus or LXD instance configuration keys (rules/dialects/incus.toml, lxd.toml).
#[derive(Debug, Clone, Deserialize)]
pub struct ManagerRules {
    pub keys: ManagerKeys,
    pub syntax: ManagerSyntax,
    #[serde(default)]
    pub requirements: toml::Table,
}

impl ManagerRules {
    pub fn key(&self, k: ListKind) -> Option<&String> {
        let key = match k {
            ListKind::Commands => &self.keys.commands,
            ListKind::Maps => &self.keys.maps,
            ListKind::Programs => &self.keys.programs,
            ListKind::Attachments => &self.keys.attachments,
        };
        if key.is_empty() { None } else { Some(key) }
    }

    /// Whether `key` looks like one of this manager's BPF keys: it shares their prefix
    /// (`security.bpffs.`) or is a few edits from one (a typo such as
    /// `security.bpffs.delegate_map`).
    pub fn is_near_key(&self, key: &str) -> bool {
        let keys: Vec<&String> =
            ListKind::ALL.iter().filter_map(|k| self.key(*k)).chain(std::iter::once(&self.keys.enable_key)).collect();
        let family = |k: &str| k.rsplit_once('.').map_or(String::new(), |(p, _)| format!("{p}."));
        keys.iter().any(|k| {
            let f = family(k);
            (!f.is_empty() && f != "security." && key.starts_with(&f)) || crate::names::distance(k, key) <= 3
        })
    }

    /// Settings other than the lists that the checker reads.
    pub fn other_keys(&self) -> Vec<String> {
        let mut v = vec!["security.privileged".to_string()];
        if !self.keys.enable_key.is_empty() {
            v.push(self.keys.enable_key.clone());
        }
        if !self.keys.path.is_empty() {
            v.push(self.keys.path.clone());
        }
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Capability {
    pub name: String,
    pub value: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct CapabilitiesFile {
    capability: Vec<Capability>,
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
    helper_by_id: HashMap<u32, usize>,
    /// per ListKind: name → value, built when the rules are loaded
    #[serde(skip)]
    value_by_name: [HashMap<String, u32>; 4],
}

/// The four delegation lists of a bpffs mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Commands,
    Maps,
    Programs,
    Attachments,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [ListKind::Commands, ListKind::Maps, ListKind::Programs, ListKind::Attachments];

    /// The bpffs mount option of this list.
    pub fn mount_option(self) -> &'static str {
        match self {
            ListKind::Commands => "delegate_cmds",
            ListKind::Maps => "delegate_maps",
            ListKind::Programs => "delegate_progs",
            ListKind::Attachments => "delegate_attachs",
        }
    }

    /// The key used in JSON documents.
    pub fn json_key(self) -> &'static str {
        match self {
            ListKind::Commands => "commands",
            ListKind::Maps => "maps",
            ListKind::Programs => "programs",
            ListKind::Attachments => "attachments",
        }
    }
}

impl Enums {
    pub fn list(&self, kind: ListKind) -> &[EnumEntry] {
        match kind {
            ListKind::Commands => &self.commands,
            ListKind::Maps => &self.map_types,
            ListKind::Programs => &self.prog_types,
            ListKind::Attachments => &self.attach_types,
        }
    }

    /// The kernel's short name of a value (the first C name, as bpffs prints it).
    pub fn name_of(&self, kind: ListKind, value: u32) -> Option<&str> {
        self.list(kind).iter().find(|e| e.value == value && e.alias_of.is_none()).map(|e| e.name.as_str())
    }

    pub fn value_of(&self, kind: ListKind, name: &str) -> Option<u32> {
        self.value_by_name[kind as usize].get(name).copied()
    }

    pub fn helper_name(&self, id: u32) -> Option<&str> {
        self.helper_by_id.get(&id).map(|i| self.helpers[*i].name.as_str())
    }

    fn index(&mut self) {
        // the first entry of an id wins, as a linear search would find it
        for (i, h) in self.helpers.iter().enumerate().rev() {
            self.helper_by_id.insert(h.id, i);
        }
        for k in ListKind::ALL {
            let mut by_name = HashMap::default();
            for e in self.list(k).iter().rev() {
                by_name.insert(e.name.clone(), e.value);
            }
            self.value_by_name[k as usize] = by_name;
        }
    }

    pub fn helper_id(&self, name: &str) -> Option<u32> {
        self.helpers.iter().find(|h| h.name == name).map(|h| h.id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SectionRule {
    pub pattern: String,
    #[serde(rename = "match")]
    pub match_kind: String,
    pub prog_type: String,
    pub expected_attach_type: String,
    #[serde(default)]
    pub attach_zero: bool,
    #[serde(default)]
    pub flags: Vec<String>,
    pub libbpf: Vec<String>,
    /// `libbpf`, parsed once when the rules are loaded.
    #[serde(skip)]
    pub versions: Vec<Version>,
}

impl SectionRule {
    /// libbpf.c sec_def_matches.
    pub fn matches(&self, section: &str) -> bool {
        // every kind of match needs the first bytes to agree: a cheap rejection first
        if let (Some(a), Some(b)) = (section.as_bytes().first(), self.pattern.as_bytes().first())
            && a != b
        {
            return false;
        }
        match self.match_kind.as_str() {
            "exact" => section == self.pattern,
            "plus" => {
                section == self.pattern
                    || (section.starts_with(&self.pattern) && section.as_bytes().get(self.pattern.len()) == Some(&b'/'))
            }
            "prefix" => section.starts_with(&self.pattern),
            _ => false,
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct SectionsFile {
    section: Vec<SectionRule>,
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

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TokenCreate {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub notes: String,
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

#[derive(Debug, Clone, Deserialize, Default)]
pub struct KfuncRule {
    /// any_kfunc | arena | listed | verifier (see the comment in privileges.toml)
    pub when: String,
    #[serde(default)]
    pub kfuncs: Vec<String>,
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Privileges {
    #[serde(default)]
    pub token_command: Vec<TokenCommand>,
    #[serde(default)]
    pub token_create: TokenCreate,
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
    helper_by_name: HashMap<String, usize>,
}

impl Privileges {
    pub fn helper_caps(&self, helper: &str) -> Option<&CapRule> {
        self.helper_by_name.get(helper).map(|i| &self.helper[*i])
    }

    fn index(&mut self) {
        // the first rule of a name wins, as a linear search would find it
        for (i, r) in self.helper.iter().enumerate().rev() {
            self.helper_by_name.insert(r.name.clone(), i);
        }
    }
    pub fn consults_token(&self, command: &str) -> bool {
        self.token_command.iter().any(|c| c.command == command)
    }
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
struct HelperAvailabilityFile {
    available: Vec<HelperAvailability>,
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

impl Alternative {
    pub fn items(&self) -> impl Iterator<Item = (ListKind, &str)> {
        self.commands
            .iter()
            .map(|s| (ListKind::Commands, s.as_str()))
            .chain(self.maps.iter().map(|s| (ListKind::Maps, s.as_str())))
            .chain(self.programs.iter().map(|s| (ListKind::Programs, s.as_str())))
            .chain(self.attachments.iter().map(|s| (ListKind::Attachments, s.as_str())))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoaderStep {
    pub id: String,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub source: String,
    pub libbpf_min: String,
    #[serde(default)]
    pub libbpf_max: Option<String>,
    #[serde(default)]
    pub token_only: bool,
    pub when: String,
    pub on_failure: String,
    #[serde(default)]
    pub fallback: String,
    #[serde(default)]
    pub lost: String,
    #[serde(default, rename = "alternative")]
    pub alternatives: Vec<Alternative>,
    /// `libbpf_min`..=`libbpf_max`, parsed once when the rules are loaded.
    #[serde(skip)]
    pub range: (Version, Version),
    /// Per alternative: its items and the capabilities they need, as [`NameIndex`] numbers
    /// (sorted, unique), computed when the rules are loaded.
    #[serde(skip)]
    pub alternative_ids: Vec<Vec<u16>>,
    /// `when`, parsed when the rules are loaded.
    #[serde(skip)]
    pub condition: Condition,
}

/// When a libbpf loader step happens (the `when` field of rules/loader/libbpf.toml; its
/// header comment describes each condition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    ModuleBtfLookup,
    ProgramHasName,
    ProgramReferencesGlobalData,
    ProgramSecFlag(String),
    /// any of these helpers
    ProgramCallsHelper(Vec<String>),
    ProgramType(String),
    /// Not a condition this version of bpfcap knows (a test keeps the table free of them).
    #[default]
    Unknown,
}

impl Condition {
    pub fn parse(when: &str) -> Condition {
        let (cond, arg) = match when.split_once(':') {
            Some((c, a)) => (c, Some(a)),
            None => (when, None),
        };
        match (cond, arg) {
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
            ("module_btf_lookup", None) => Condition::ModuleBtfLookup,
            ("program_has_name", None) => Condition::ProgramHasName,
            ("program_references_global_data", None) => Condition::ProgramReferencesGlobalData,
            ("program_sec_flag", Some(f)) => Condition::ProgramSecFlag(f.into()),
            ("program_calls_helper", Some(hs)) => {
                Condition::ProgramCallsHelper(hs.split('|').map(String::from).collect())
            }
            ("program_type", Some(t)) => Condition::ProgramType(t.into()),
            _ => Condition::Unknown,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct LoaderFile {
    step: Vec<LoaderStep>,
}

/// Every name a requirement can carry (the kernel names of the four delegate lists, aliases
/// included, and the capabilities), numbered, so that analysis can work on sets of small
/// integers. Built from the rules when they are loaded.
#[derive(Debug, Default)]
pub struct NameIndex {
    names: Vec<(Option<ListKind>, String)>,
    /// per ListKind (in ListKind::ALL order), then capabilities
    lookup: [HashMap<String, u16>; 5],
}

impl NameIndex {
    fn slot(kind: Option<ListKind>) -> usize {
        kind.map_or(4, |k| k as usize)
    }

    fn insert(&mut self, kind: Option<ListKind>, name: &str) -> u16 {
        if let Some(id) = self.id(kind, name) {
            return id;
        }
        let id = u16::try_from(self.names.len()).expect("fewer than 65536 names in the rules");
        self.names.push((kind, name.to_string()));
        self.lookup[Self::slot(kind)].insert(name.to_string(), id);
        id
    }

    /// The number of a list item (`kind` Some) or capability (`kind` None).
    pub fn id(&self, kind: Option<ListKind>, name: &str) -> Option<u16> {
        self.lookup[Self::slot(kind)].get(name).copied()
    }

    pub fn name(&self, id: u16) -> (Option<ListKind>, &str) {
        let (k, n) = &self.names[id as usize];
        (*k, n)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A libbpf version as (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.');
        let a = it.next()?.parse().ok()?;
        let b = it.next().unwrap_or("0").parse().ok()?;
        Some(Version(a, b))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl LoaderStep {
    pub fn applies_to(&self, v: Version) -> bool {
        v >= self.range.0 && v <= self.range.1
    }

    fn parse_range(&mut self) {
        let min = Version::parse(&self.libbpf_min).unwrap_or(Version(0, 0));
        let max = self.libbpf_max.as_deref().and_then(Version::parse).unwrap_or(Version(u32::MAX, 0));
        self.range = (min, max);
    }
}

pub struct Rules {
    /// Every libbpf version the section table knows, oldest first.
    libbpf_versions: Vec<Version>,
    pub enums: Enums,
    pub sections: Vec<SectionRule>,
    pub privileges: Privileges,
    pub helper_availability: Vec<HelperAvailability>,
    pub libbpf: Vec<LoaderStep>,
    pub capabilities: Vec<Capability>,
    // Tables only some commands read (`check`, `emit`): parsed on first use, so that
    // `analyze` does not pay for them.
    versions: OnceLock<Vec<NameVersion>>,
    systemd: OnceLock<SystemdRules>,
    systemd_keys: OnceLock<SystemdKeys>,
    map_memory: OnceLock<MapMemory>,
    incus: OnceLock<ManagerRules>,
    lxd: OnceLock<ManagerRules>,
    /// Every list item and capability name, numbered.
    pub names: NameIndex,
    /// Per libbpf version: the indexes in `sections` of its rules, in table order, bucketed by
    /// the first byte of a section name they can match (every match needs the first bytes to
    /// agree; a rule with an empty pattern is in every bucket).
    sections_of: Vec<(Version, Vec<Vec<usize>>)>,
    /// Enum value → index of the first capability rule of that program / map type.
    prog_rule_by_value: HashMap<u32, usize>,
    map_rule_by_value: HashMap<u32, usize>,
}

impl Rules {
    /// rules/kernel/versions.toml: the kernel version of every name.
    pub fn versions(&self) -> &[NameVersion] {
        self.versions.get_or_init(|| parse::<VersionsFile>("kernel/versions.toml", VERSIONS_JSON).version)
    }

    /// rules/dialects/systemd.toml.
    pub fn systemd(&self) -> &SystemdRules {
        self.systemd.get_or_init(|| parse("dialects/systemd.toml", SYSTEMD_JSON))
    }

    /// rules/kernel/map-memory.toml.
    pub fn map_memory(&self) -> &MapMemory {
        self.map_memory.get_or_init(|| parse("kernel/map-memory.toml", MAP_MEMORY_JSON))
    }

    /// rules/dialects/systemd-keys.toml.
    pub fn systemd_keys(&self) -> &SystemdKeys {
        self.systemd_keys.get_or_init(|| parse("dialects/systemd-keys.toml", SYSTEMD_KEYS_JSON))
    }

    /// rules/dialects/incus.toml.
    pub fn incus(&self) -> &ManagerRules {
        self.incus.get_or_init(|| parse("dialects/incus.toml", INCUS_JSON))
    }

    /// rules/dialects/lxd.toml.
    pub fn lxd(&self) -> &ManagerRules {
        self.lxd.get_or_init(|| parse("dialects/lxd.toml", LXD_JSON))
    }

    /// The first kernel with BPF tokens: the oldest `since` of the token-consulting commands.
    pub fn token_since(&self) -> Option<Version> {
        self.privileges.token_command.iter().filter_map(|c| Version::parse(&c.since)).min()
    }

    /// The kernel version that introduced a name (rules/kernel/versions.toml), if known.
    pub fn name_since(&self, k: ListKind, name: &str) -> Option<Version> {
        let value = self.enums.value_of(k, name)?;
        self.versions()
            .iter()
            .filter(|v| v.list == k.json_key())
            .find(|v| self.enums.value_of(k, &v.name) == Some(value))
            .and_then(|v| Version::parse(&v.since))
    }

    pub fn capability_value(&self, name: &str) -> Option<u32> {
        self.capabilities.iter().find(|c| c.name == name).map(|c| c.value)
    }

    /// Libbpf versions the section table knows, oldest first.
    pub fn libbpf_versions(&self) -> Vec<Version> {
        self.libbpf_versions.clone()
    }

    /// The newest libbpf version the section table knows.
    pub fn newest_libbpf(&self) -> Version {
        *self.libbpf_versions.last().expect("the section table has versions")
    }

    /// The SEC_DEF libbpf `version` picks for `section` (leading '?' already stripped).
    pub fn section_rule(&self, section: &str, version: Version) -> Option<&SectionRule> {
        self.section_rule_index(section, version).map(|i| &self.sections[i])
    }

    /// [`Rules::section_rule`] as an index in `sections` (versions that match a section with
    /// the same index classify it alike).
    pub fn section_rule_index(&self, section: &str, version: Version) -> Option<usize> {
        let (_, buckets) = self.sections_of.iter().find(|(v, _)| *v == version)?;
        let bucket = &buckets[usize::from(section.as_bytes().first().copied().unwrap_or(0))];
        bucket.iter().copied().find(|i| self.sections[*i].matches(section))
    }

    /// The capability rule of a program type, whichever of its names the rule uses.
    pub fn prog_rule(&self, name: &str) -> Option<&CapRule> {
        self.cap_rule(ListKind::Programs, &self.privileges.prog_type, name)
    }

    /// The capability rule of a map type, whichever of its names the rule uses
    /// (e.g. cgroup_storage for cgroup_storage_deprecated).
    pub fn map_rule(&self, name: &str) -> Option<&CapRule> {
        self.cap_rule(ListKind::Maps, &self.privileges.map_type, name)
    }

    /// Capabilities an item needs in the token's user namespace (rules/kernel/privileges.toml).
    pub fn item_caps(&self, kind: ListKind, name: &str) -> &[String] {
        match kind {
            ListKind::Programs => self.prog_rule(name).map(|r| r.caps.as_slice()).unwrap_or_default(),
            ListKind::Maps => self.map_rule(name).map(|r| r.caps.as_slice()).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Numbers every name and precomputes what the loader steps' alternatives need.
    fn index(&mut self) {
        // the first rule of a value wins, as a linear search would find it
        for (kind, table, index) in [
            (ListKind::Programs, &self.privileges.prog_type, &mut self.prog_rule_by_value),
            (ListKind::Maps, &self.privileges.map_type, &mut self.map_rule_by_value),
        ] {
            for (i, r) in table.iter().enumerate().rev() {
                if let Some(v) = self.enums.value_of(kind, &r.name) {
                    index.insert(v, i);
                }
            }
        }
        let mut names = NameIndex::default();
        for k in ListKind::ALL {
            for e in self.enums.list(k) {
                names.insert(Some(k), &e.name);
            }
        }
        for c in &self.capabilities {
            names.insert(None, &c.name);
        }
        let mut steps = std::mem::take(&mut self.libbpf);
        for step in &mut steps {
            step.alternative_ids = step
                .alternatives
                .iter()
                .map(|alt| {
                    let mut ids = Vec::new();
                    for (k, n) in alt.items() {
                        ids.push(names.insert(Some(k), n));
                        for c in self.item_caps(k, n) {
                            ids.push(names.insert(None, c));
                        }
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                })
                .collect();
        }
        self.libbpf = steps;
        self.names = names;
        self.sections_of = self
            .libbpf_versions
            .iter()
            .map(|v| {
                let mut buckets = vec![Vec::new(); 256];
                for (i, r) in self.sections.iter().enumerate().filter(|(_, r)| r.versions.contains(v)) {
                    match r.pattern.as_bytes().first() {
                        Some(b) => buckets[usize::from(*b)].push(i),
                        None => buckets.iter_mut().for_each(|bucket| bucket.push(i)),
                    }
                }
                (*v, buckets)
            })
            .collect();
    }

    fn cap_rule<'a>(&self, kind: ListKind, table: &'a [CapRule], name: &str) -> Option<&'a CapRule> {
        let value = self.enums.value_of(kind, name)?;
        let index = if kind == ListKind::Programs { &self.prog_rule_by_value } else { &self.map_rule_by_value };
        index.get(&value).map(|i| &table[*i])
    }

    pub fn helper_available(&self, helper: &str, prog_type: &str) -> Option<bool> {
        self.helper_availability
            .iter()
            .find(|h| h.helper == helper)
            .map(|h| h.prog_types.iter().any(|p| p == prog_type))
    }
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> T {
    // The tables are compiled in (checked by build.rs) and covered by tests; an error here is
    // a build defect.
    serde_json::from_str(text).unwrap_or_else(|e| panic!("rules/{what} is invalid: {e}"))
}

/// The rules compiled into this binary.
pub fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut sections = parse::<SectionsFile>("sections.toml", SECTIONS_JSON).section;
        for s in &mut sections {
            s.versions = s.libbpf.iter().filter_map(|x| Version::parse(x)).collect();
        }
        let mut libbpf_versions: Vec<Version> = sections.iter().flat_map(|s| s.versions.iter().copied()).collect();
        libbpf_versions.sort();
        libbpf_versions.dedup();
        let mut libbpf = parse::<LoaderFile>("loader/libbpf.toml", LIBBPF_JSON).step;
        for step in &mut libbpf {
            step.parse_range();
            step.condition = Condition::parse(&step.when);
        }
        let mut enums: Enums = parse("kernel/enums.toml", ENUMS_JSON);
        enums.index();
        let mut privileges: Privileges = parse("kernel/privileges.toml", PRIVILEGES_JSON);
        privileges.index();
        let mut rules = Rules {
            libbpf_versions,
            enums,
            sections,
            privileges,
            helper_availability: parse::<HelperAvailabilityFile>(
                "kernel/helper-availability.toml",
                HELPER_AVAILABILITY_JSON,
            )
            .available,
            libbpf,
            capabilities: parse::<CapabilitiesFile>("kernel/capabilities.toml", CAPABILITIES_JSON).capability,
            versions: OnceLock::new(),
            systemd: OnceLock::new(),
            systemd_keys: OnceLock::new(),
            map_memory: OnceLock::new(),
            incus: OnceLock::new(),
            lxd: OnceLock::new(),
            names: NameIndex::default(),
            sections_of: Vec::new(),
            prog_rule_by_value: HashMap::default(),
            map_rule_by_value: HashMap::default(),
        };
        rules.index();
        rules
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, kind: &str) -> SectionRule {
        SectionRule {
            pattern: pattern.into(),
            match_kind: kind.into(),
            prog_type: "x".into(),
            expected_attach_type: "y".into(),
            attach_zero: false,
            flags: vec![],
            libbpf: vec!["1.7".into()],
            versions: vec![Version(1, 7)],
        }
    }

    #[test]
    fn section_matching_follows_libbpf() {
        // "type+" matches the bare name and name/extras, not a longer word
        let plus = rule("kprobe", "plus");
        assert!(plus.matches("kprobe"));
        assert!(plus.matches("kprobe/do_nanosleep"));
        assert!(!plus.matches("kprobe.multi/x"));
        assert!(!plus.matches("kprobex"));
        // "type/" needs the slash
        let prefix = rule("sk_skb/", "prefix");
        assert!(prefix.matches("sk_skb/whatever"));
        assert!(!prefix.matches("sk_skb"));
        let exact = rule("xdp", "exact");
        assert!(exact.matches("xdp"));
        assert!(!exact.matches("xdp/foo"));
    }

    #[test]
    fn first_matching_rule_wins_per_version() {
        let r = rules();
        let v = Version(1, 7);
        let kind = |s: &str| r.section_rule(s, v).map(|x| (x.prog_type.clone(), x.expected_attach_type.clone()));
        assert_eq!(kind("socket"), Some(("socket_filter".into(), "cgroup_inet_ingress".into())));
        assert_eq!(kind("kprobe.multi/foo*"), Some(("kprobe".into(), "trace_kprobe_multi".into())));
        assert_eq!(kind("xdp.frags/devmap"), Some(("xdp".into(), "xdp_devmap".into())));
        assert_eq!(kind("tc/ingress"), Some(("sched_cls".into(), "tcx_ingress".into())));
        assert_eq!(kind("cgroup/sock"), Some(("cgroup_sock".into(), "cgroup_inet_sock_create".into())));
        assert_eq!(kind("fentry.s/do_sys_open"), Some(("tracing".into(), "trace_fentry".into())));
        assert_eq!(kind("mystery/thing"), None);
        // tc/ingress is an alias that older libbpf does not know ("tc" is an exact match there)
        assert!(r.section_rule("tc/ingress", Version(1, 0)).is_none());
        assert!(r.section_rule("tc", Version(1, 0)).is_some());
    }

    #[test]
    fn composite_flags_are_expanded() {
        let r = rules();
        let xdp = r.section_rule("xdp", Version(1, 7)).unwrap();
        assert!(xdp.has_flag("SEC_EXP_ATTACH_OPT"));
        assert!(xdp.has_flag("SEC_ATTACHABLE"));
    }

    #[test]
    fn enum_names_and_aliases() {
        let r = rules();
        assert_eq!(r.enums.name_of(ListKind::Attachments, 0), Some("cgroup_inet_ingress"));
        assert_eq!(r.enums.name_of(ListKind::Commands, 10), Some("prog_test_run"));
        assert_eq!(r.enums.value_of(ListKind::Commands, "prog_run"), Some(10));
        assert_eq!(r.enums.name_of(ListKind::Maps, 19), Some("cgroup_storage_deprecated"));
        assert_eq!(r.enums.value_of(ListKind::Programs, "netfilter"), Some(32));
        assert_eq!(r.enums.helper_name(113), Some("probe_read_kernel"));
    }

    #[test]
    fn every_rule_table_is_consistent() {
        let r = rules();
        // the tables parsed on first use parse
        assert!(!r.versions().is_empty() && !r.systemd().names.is_empty());
        // every map type the memory table names is a kernel map type, named once
        let mut named = std::collections::BTreeSet::new();
        for t in r.map_memory().map.iter().flat_map(|m| &m.types) {
            assert!(r.enums.value_of(ListKind::Maps, t).is_some(), "map-memory.toml: unknown map type {t}");
            assert!(named.insert(t.as_str()), "map-memory.toml: {t} named twice");
        }
        // every setting of a BPF drop-in is one systemd knows in [Service]
        let service = r.systemd_keys().section("Service").expect("[Service] keys");
        for key in &r.systemd().settings.drop_in {
            assert!(service.contains(key), "systemd knows no setting {key}= in [Service]");
        }
        assert!(r.incus().key(ListKind::Programs).is_some() && r.lxd().key(ListKind::Programs).is_some());
        // every program and map type has a capability rule, and every name in the loader
        // steps and section table is a kernel name
        for e in r.enums.prog_types.iter().filter(|e| e.value != 0 && e.alias_of.is_none()) {
            assert!(r.prog_rule(&e.name).is_some(), "no capability rule for program type {}", e.name);
        }
        for e in r.enums.map_types.iter().filter(|e| e.value != 0 && e.alias_of.is_none()) {
            assert!(r.map_rule(&e.name).is_some(), "no capability rule for map type {}", e.name);
        }
        for s in &r.sections {
            assert!(r.enums.value_of(ListKind::Programs, &s.prog_type).is_some(), "{}", s.prog_type);
            assert!(r.enums.value_of(ListKind::Attachments, &s.expected_attach_type).is_some());
        }
        for step in &r.libbpf {
            assert_ne!(step.condition, Condition::Unknown, "step {}: unknown condition {}", step.id, step.when);
            // a step id names one step in every libbpf version (reasons and the derivation
            // tell steps apart by id)
            for other in r.libbpf.iter().filter(|o| o.id == step.id && !std::ptr::eq(*o, step)) {
                assert!(
                    other.range.1 < step.range.0 || step.range.1 < other.range.0,
                    "step {} appears twice for one libbpf version",
                    step.id
                );
            }
            for alt in &step.alternatives {
                for (k, n) in alt.items() {
                    assert!(
                        r.enums.value_of(k, n).is_some(),
                        "step {}: unknown {} name {n}",
                        step.id,
                        k.mount_option()
                    );
                }
            }
        }
        for c in r.privileges.prog_type.iter().chain(&r.privileges.map_type).flat_map(|x| &x.caps) {
            assert!(r.capability_value(c).is_some(), "unknown capability {c}");
        }
    }
}
