//! The rule tables in `rules/`, compiled into the binary and parsed once.
//! Code interprets these tables; facts about the kernel and libbpf live in them, not here.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::vocab::ListKind;

mod schema;
pub use schema::*;

// The rules as built by build.rs: rules/**/*.toml turned into JSON (same data, parsed faster).
const ENUMS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__enums.json"));
const SECTIONS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/sections.json"));
const PRIVILEGES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__privileges.json"));
const HELPER_AVAILABILITY_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__helper-availability.json"));
/// Every loader of rules/loader/, each with its section table, by file name.
const LOADERS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/loaders.json"));
const CAPABILITIES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__capabilities.json"));
const VERSIONS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__versions.json"));
const MAP_MEMORY_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__map-memory.json"));
const VERIFIER_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel__verifier.json"));
const SYSTEMD_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__systemd.json"));
const SYSTEMD_KEYS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__systemd-keys.json"));
const INCUS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__incus.json"));
const LXD_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/dialects__lxd.json"));

impl MapMemory {
    /// The rule of a map type (by kernel name), if the table names it.
    pub fn rule(&self, map_type: &str) -> Option<&MapMemoryRule> {
        self.map.iter().find(|r| r.types.iter().any(|t| t == map_type))
    }
}

impl SystemdSettings {
    /// Why PrivateBPF= requires `setting` (empty when the rules give no reason).
    pub fn why_required(&self, setting: &str) -> &str {
        self.requires.iter().find(|r| r.setting == setting).map_or("", |r| r.why.as_str())
    }
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

impl SystemdRules {
    pub fn setting(&self, k: ListKind) -> &str {
        &self.settings.lists[k]
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

impl SystemdKeys {
    /// The keys of section `name`, None for a section systemd does not know.
    pub fn section(&self, name: &str) -> Option<&[String]> {
        self.section.iter().find(|s| s.name == name).map(|s| s.keys.as_slice())
    }
}

impl ManagerRules {
    pub fn key(&self, k: ListKind) -> Option<&String> {
        let key = &self.keys.lists[k];
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
            (!f.is_empty() && f != "security." && key.starts_with(&f)) || crate::spelling::distance(k, key) <= 3
        })
    }

    /// Settings other than the lists that the checker reads.
    pub fn other_keys(&self) -> Vec<String> {
        let mut v = vec![self.keys.privileged.clone()];
        if !self.keys.enable_key.is_empty() {
            v.push(self.keys.enable_key.clone());
        }
        if !self.keys.path.is_empty() {
            v.push(self.keys.path.clone());
        }
        v
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
        self.value_by_name[kind].get(name).copied()
    }

    pub fn helper_name(&self, id: u32) -> Option<&str> {
        self.helper_by_id.get(&id).map(|i| self.helpers[*i].name.as_str())
    }

    fn index(&mut self) {
        // the first entry of an id wins, as a linear search would find it
        for (i, h) in self.helpers.iter().enumerate().rev() {
            self.helper_by_id.insert(h.id, i);
        }
        let ids = self.helpers.iter().map(|h| h.id as usize + 1).max().unwrap_or(0);
        self.helper_args = vec![5; ids];
        for h in self.helpers.iter().rev() {
            self.helper_args[h.id as usize] = h.args.unwrap_or(5);
        }
        for k in ListKind::ALL {
            let mut by_name = HashMap::default();
            for e in self.list(k).iter().rev() {
                by_name.insert(e.name.clone(), e.value);
            }
            self.value_by_name[k] = by_name;
        }
    }

    pub fn helper_id(&self, name: &str) -> Option<u32> {
        self.helpers.iter().find(|h| h.name == name).map(|h| h.id)
    }
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
        match self.match_kind {
            SectionMatch::Exact => section == self.pattern,
            SectionMatch::Plus => {
                section == self.pattern
                    || (section.starts_with(&self.pattern) && section.as_bytes().get(self.pattern.len()) == Some(&b'/'))
            }
            SectionMatch::Prefix => section.starts_with(&self.pattern),
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
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

impl Version {
    /// `MAJOR[.MINOR]`, as rules files and flags write versions (systemd's "258" is 258.0).
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.');
        let a = it.next()?.parse().ok()?;
        let b = it.next().unwrap_or("0").parse().ok()?;
        Some(Version(a, b))
    }

    /// The MAJOR.MINOR a kernel release starts with (`uname -r`: "6.18.44-fc", "6.10-rc3").
    pub fn of_release(release: &str) -> Option<Version> {
        let release = release.trim();
        let end = release.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(release.len());
        let mut it = release[..end].split('.');
        Some(Version(it.next()?.parse().ok()?, it.next()?.parse().ok()?))
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
        let min = Version::parse(&self.min).unwrap_or(Version(0, 0));
        let max = self.max.as_deref().and_then(Version::parse).unwrap_or(Version(u32::MAX, 0));
        self.range = (min, max);
    }
}

/// A loader as its rules file describes it (rules/loader/*.toml), with its section table,
/// indexed for the analysis.
#[derive(Debug)]
pub struct LoaderModel {
    pub header: LoaderHeader,
    pub detect: Detect,
    pub steps: Vec<LoaderStep>,
    pub effects: Vec<EffectRule>,
    /// The versions the rules describe, oldest first.
    pub versions: Vec<Version>,
    /// Its section table (its rules file's `sections`).
    pub sections: Vec<SectionRule>,
    /// Per version: the indexes in `sections` of its rules, in table order, bucketed by the
    /// first byte of a section name they can match (every match needs the first bytes to
    /// agree; a rule with an empty pattern is in every bucket).
    sections_of: Vec<(Version, Vec<Vec<usize>>)>,
}

impl LoaderModel {
    pub fn new(file: LoaderFile, mut sections: Vec<SectionRule>) -> LoaderModel {
        let LoaderFile { loader: header, detect, mut steps, effects } = file;
        for step in &mut steps {
            step.parse_range();
        }
        for s in &mut sections {
            s.versions = s.in_versions.iter().filter_map(|x| Version::parse(x)).collect();
        }
        let versions: Vec<Version> = header.versions.iter().filter_map(|v| Version::parse(v)).collect();
        let sections_of = versions
            .iter()
            .map(|v| {
                let mut buckets = vec![Vec::new(); 256];
                // (a version the table does not list reads the newest table that it has)
                let newest_listed = sections.iter().flat_map(|r| r.versions.iter()).filter(|x| *x <= v).max().copied();
                for (i, r) in
                    sections.iter().enumerate().filter(|(_, r)| newest_listed.is_some_and(|n| r.versions.contains(&n)))
                {
                    match r.pattern.as_bytes().first() {
                        Some(b) => buckets[usize::from(*b)].push(i),
                        None => buckets.iter_mut().for_each(|bucket| bucket.push(i)),
                    }
                }
                (*v, buckets)
            })
            .collect();
        LoaderModel { header, detect, steps, effects, versions, sections, sections_of }
    }

    /// The name `--loader` takes.
    pub fn name(&self) -> &str {
        &self.header.name
    }

    /// The newest version the rules describe.
    pub fn newest(&self) -> Version {
        *self.versions.last().expect("a loader's rules describe versions")
    }

    /// The versions of `MIN-MAX` or `X.Y` that the rules describe, oldest first (empty when
    /// none).
    pub fn versions_in(&self, spec: &str) -> Option<Vec<Version>> {
        let (lo, hi) = match spec.split_once('-') {
            Some((a, b)) => (Version::parse(a)?, Version::parse(b)?),
            None => {
                let v = Version::parse(spec)?;
                (v, v)
            }
        };
        Some(self.versions.iter().copied().filter(|v| *v >= lo && *v <= hi).collect())
    }

    /// The default versions (`default_versions`).
    pub fn default_versions(&self) -> Vec<Version> {
        self.versions_in(&self.header.default_versions).unwrap_or_default()
    }

    /// Whether version `v` takes no token: it comes before the loader took tokens
    /// (`tokenless_before`), or the loader never does (`token = "none"`).
    pub fn tokenless(&self, v: Version) -> bool {
        self.header.token == TokenDiscovery::None
            || self.header.tokenless_before.as_deref().and_then(Version::parse).is_some_and(|first| v < first)
    }

    /// The section rule `version` picks for `section` (leading '?' already stripped).
    pub fn section_rule(&self, section: &str, version: Version) -> Option<&SectionRule> {
        self.section_rule_index(section, version).map(|i| &self.sections[i])
    }

    /// [`LoaderModel::section_rule`] as an index in `sections` (versions that match a
    /// section with the same index classify it alike).
    pub fn section_rule_index(&self, section: &str, version: Version) -> Option<usize> {
        let (_, buckets) = self.sections_of.iter().find(|(v, _)| *v == version)?;
        let bucket = &buckets[usize::from(section.as_bytes().first().copied().unwrap_or(0))];
        bucket.iter().copied().find(|i| self.sections[*i].matches(section))
    }

    /// What a fallback does beyond its losses (its `[[effect]]`), if the rules say.
    pub fn effect(&self, fallback: &Fallback) -> Option<&EffectRule> {
        self.effects.iter().find(|e| e.fallback == fallback.kind())
    }

    /// The index of step `id` (of any version).
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
}

pub struct Rules {
    pub enums: Enums,
    pub privileges: Privileges,
    pub helper_availability: Vec<HelperAvailability>,
    /// Every loader the rules describe (rules/loader/*.toml), libbpf first.
    pub loaders: Vec<LoaderModel>,
    /// rules/kernel/verifier.toml.
    pub verifier: VerifierRules,
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

    /// The capabilities the kernel may check through a token: every capability
    /// rules/kernel/privileges.toml names, the one that substitutes for the others first, then
    /// by value.
    pub fn token_capabilities(&self) -> Vec<String> {
        let p = &self.privileges;
        let named =
            p.prog_type.iter().chain(&p.map_type).chain(&p.helper).flat_map(|r| &r.caps).chain(&p.token_create.caps);
        let mut caps: Vec<&String> = named.filter(|c| self.capability_value(c).is_some()).collect();
        caps.sort_by_key(|c| (**c != p.capable.substitute, self.capability_value(c)));
        caps.dedup();
        caps.into_iter().cloned().collect()
    }

    /// The loader `--loader NAME` names.
    pub fn loader(&self, name: &str) -> Option<&LoaderModel> {
        self.loaders.iter().find(|l| l.name() == name)
    }

    /// libbpf's rules (rules/loader/libbpf.toml).
    pub fn libbpf(&self) -> &LoaderModel {
        self.loader("libbpf").expect("rules/loader/libbpf.toml")
    }

    /// The packet-pointer fields of a program type's context (rules/kernel/verifier.toml).
    pub fn ctx_packet(&self, prog_type: &str) -> Option<&CtxPacket> {
        self.verifier.ctx_packet.iter().find(|c| c.prog_types.iter().any(|t| t == prog_type))
    }

    /// What a verifier gate needs, and why.
    pub fn gate(&self, gate: Gate) -> &GateRule {
        self.verifier.gate.iter().find(|g| g.id == gate).expect("rules/kernel/verifier.toml names every gate")
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
        let mut loaders = std::mem::take(&mut self.loaders);
        for step in loaders.iter_mut().flat_map(|l| &mut l.steps) {
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
        self.loaders = loaders;
        self.names = names;
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
        let loaders: Vec<LoaderRules> = parse("loader/*.toml", LOADERS_JSON);
        Rules::with_loaders(loaders.into_iter().map(|l| LoaderModel::new(l.rules, l.sections)).collect())
    })
}

/// libbpf's section table (rules/sections.toml).
pub fn libbpf_sections() -> Vec<SectionRule> {
    parse::<SectionsFile>("sections.toml", SECTIONS_JSON).section
}

impl Rules {
    /// The kernel's rules compiled into this binary, with these loaders. [`rules`] gives them
    /// every loader of rules/loader/; the solver's tests give them small loader tables of their
    /// own.
    pub fn with_loaders(loaders: Vec<LoaderModel>) -> Rules {
        let mut enums: Enums = parse("kernel/enums.toml", ENUMS_JSON);
        enums.index();
        let mut privileges: Privileges = parse("kernel/privileges.toml", PRIVILEGES_JSON);
        privileges.index();
        let mut rules = Rules {
            enums,
            privileges,
            helper_availability: parse::<HelperAvailabilityFile>(
                "kernel/helper-availability.toml",
                HELPER_AVAILABILITY_JSON,
            )
            .available,
            loaders,
            verifier: parse("kernel/verifier.toml", VERIFIER_JSON),
            capabilities: parse::<CapabilitiesFile>("kernel/capabilities.toml", CAPABILITIES_JSON).capability,
            versions: OnceLock::new(),
            systemd: OnceLock::new(),
            systemd_keys: OnceLock::new(),
            map_memory: OnceLock::new(),
            incus: OnceLock::new(),
            lxd: OnceLock::new(),
            names: NameIndex::default(),
            prog_rule_by_value: HashMap::default(),
            map_rule_by_value: HashMap::default(),
        };
        rules.index();
        for r in &mut rules.verifier.stack_read {
            // (build.rs has checked every name)
            r.helper_id = rules.enums.helper_id(&r.helper).expect("a helper of enums.toml");
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_rules_flags_and_kernel_releases() {
        assert_eq!(Version::parse("262"), Some(Version(262, 0)));
        assert_eq!(Version::parse("258.5"), Some(Version(258, 5)));
        assert_eq!(Version::parse("x"), None);
        assert_eq!(Version::of_release("6.18.44-fc\n"), Some(Version(6, 18)));
        assert_eq!(Version::of_release("6.10-rc3"), Some(Version(6, 10)));
        assert_eq!(Version::of_release("6.9+"), Some(Version(6, 9)));
        assert_eq!(Version::of_release("6"), None);
    }

    fn rule(pattern: &str, kind: SectionMatch) -> SectionRule {
        SectionRule {
            pattern: pattern.into(),
            match_kind: kind,
            prog_type: "x".into(),
            expected_attach_type: "y".into(),
            attach_zero: false,
            flags: vec![],
            in_versions: vec!["1.7".into()],
            versions: vec![Version(1, 7)],
        }
    }

    #[test]
    fn section_matching_follows_libbpf() {
        // "type+" matches the bare name and name/extras, not a longer word
        let plus = rule("kprobe", SectionMatch::Plus);
        assert!(plus.matches("kprobe"));
        assert!(plus.matches("kprobe/do_nanosleep"));
        assert!(!plus.matches("kprobe.multi/x"));
        assert!(!plus.matches("kprobex"));
        // "type/" needs the slash
        let prefix = rule("sk_skb/", SectionMatch::Prefix);
        assert!(prefix.matches("sk_skb/whatever"));
        assert!(!prefix.matches("sk_skb"));
        let exact = rule("xdp", SectionMatch::Exact);
        assert!(exact.matches("xdp"));
        assert!(!exact.matches("xdp/foo"));
    }

    #[test]
    fn first_matching_rule_wins_per_version() {
        let r = rules().libbpf();
        let v = Version(1, 7);
        let kind = |s: &str| r.section_rule(s, v).map(|x| (x.prog_type.clone(), x.expected_attach_type.clone()));
        assert_eq!(kind("socket"), Some(("socket_filter".into(), "cgroup_inet_ingress".into())));
        assert_eq!(kind("kprobe.multi/foo*"), Some(("kprobe".into(), "trace_kprobe_multi".into())));
        assert_eq!(kind("xdp.frags/devmap"), Some(("xdp".into(), "xdp_devmap".into())));
        assert_eq!(kind("tc/ingress"), Some(("sched_cls".into(), "tcx_ingress".into())));
        assert_eq!(kind("cgroup/sock"), Some(("cgroup_sock".into(), "cgroup_inet_sock_create".into())));
        assert_eq!(kind("fentry.s/do_sys_open"), Some(("tracing".into(), "trace_fentry".into())));
        assert_eq!(kind("mystery/thing"), None);
        // 1.8 reads 1.7's table (the newest it lists at or before 1.8)
        assert_eq!(r.section_rule("tc/ingress", Version(1, 8)).map(|x| x.prog_type.as_str()), Some("sched_cls"));
        // cilium/ebpf reads plain patterns as prefixes: "xdp" matches "xdp_foo" there, not in libbpf
        let cilium = rules().loader("cilium").expect("cilium rules");
        assert_eq!(kind("xdp_foo"), None);
        assert_eq!(cilium.section_rule("xdp_foo", Version(0, 22)).map(|x| x.prog_type.as_str()), Some("xdp"));
    }

    #[test]
    fn composite_flags_are_expanded() {
        let r = rules();
        let xdp = r.libbpf().section_rule("xdp", Version(1, 7)).unwrap();
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
        for model in &r.loaders {
            for s in &model.sections {
                assert!(r.enums.value_of(ListKind::Programs, &s.prog_type).is_some(), "{}", s.prog_type);
                assert!(r.enums.value_of(ListKind::Attachments, &s.expected_attach_type).is_some());
            }
            // every version described has a table (a loader that takes a token; the table can
            // list older versions too)
            assert!(
                model.header.token == TokenDiscovery::None
                    || model.versions.iter().all(|v| model.section_rule_index("xdp", *v).is_some()),
                "{}: a version without a section table",
                model.name()
            );
        }
        // every verifier gate has its rule
        for g in [
            Gate::PointerMinusPointer,
            Gate::PointerIn32BitSubtraction,
            Gate::PointerTruncated,
            Gate::PacketPointerPlusRegister,
            Gate::PointerPlusDifferingConstants,
            Gate::PointerNegatedOrSwapped,
            Gate::PointerSignExtended,
            Gate::PointerCompared,
            Gate::UninitializedStackRead,
        ] {
            assert!(!r.gate(g).caps.is_empty());
        }
        for step in r.loaders.iter().flat_map(|l| &l.steps) {
            // a step id names one step in every version (reasons and the derivation tell
            // steps apart by id)
            let model = r.loaders.iter().find(|l| l.steps.iter().any(|s| std::ptr::eq(s, step))).expect("its loader");
            for other in model.steps.iter().filter(|o| o.id == step.id && !std::ptr::eq(*o, step)) {
                assert!(
                    other.range.1 < step.range.0 || step.range.1 < other.range.0,
                    "step {} appears twice for one version of {}",
                    step.id,
                    model.name()
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
