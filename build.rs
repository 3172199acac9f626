//! The rules (rules/**/*.toml, the readable source) are turned into JSON at build time: the
//! binary parses that in well under a millisecond, where the TOML parser took about 4 ms at
//! every start. Same data, same serde types.
//!
//! Every file is first read into its typed form (src/rules/schema.rs, the same types the
//! binary uses), and the names the loader and section tables use are checked against the
//! kernel's enums: a misspelt condition, fallback, effect or kernel name fails the build.

use std::collections::BTreeSet;
use std::path::PathBuf;

#[allow(dead_code)]
#[path = "src/rules/schema.rs"]
mod schema;
#[path = "src/vocab.rs"]
#[allow(dead_code)]
mod vocab;

/// Every rules file the binary includes but the loaders' (src/rules/mod.rs names them the
/// same way). The loaders are found: every rules/loader/*.toml with a `[loader]` table is one,
/// written with its section table into loaders.json.
const RULES: [&str; 12] = [
    "kernel/enums.toml",
    "sections.toml",
    "kernel/privileges.toml",
    "kernel/helper-availability.toml",
    "kernel/capabilities.toml",
    "kernel/versions.toml",
    "kernel/map-memory.toml",
    "kernel/verifier.toml",
    "dialects/systemd.toml",
    "dialects/systemd-keys.toml",
    "dialects/incus.toml",
    "dialects/lxd.toml",
];

fn read(file: &str) -> String {
    let path = PathBuf::from("rules").join(file);
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn typed<T: serde::de::DeserializeOwned>(file: &str) -> T {
    toml::from_str(&read(file)).unwrap_or_else(|e| panic!("rules/{file} is invalid: {e}"))
}

/// Fails the build with every problem found in one rules file.
fn fail_on(file: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        panic!("rules/{file}:\n  {}", problems.join("\n  "));
    }
}

/// The names of the kernel's enums (rules/kernel/enums.toml), helpers and capabilities
/// (rules/kernel/capabilities.toml).
struct Names {
    lists: [BTreeSet<String>; 4],
    helpers: BTreeSet<String>,
    capabilities: BTreeSet<String>,
}

impl Names {
    fn of(enums: &schema::Enums, capabilities: &schema::CapabilitiesFile) -> Names {
        let set = |v: &[schema::EnumEntry]| v.iter().map(|e| e.name.clone()).collect::<BTreeSet<_>>();
        Names {
            lists: [set(&enums.commands), set(&enums.map_types), set(&enums.prog_types), set(&enums.attach_types)],
            helpers: enums.helpers.iter().map(|h| h.name.clone()).collect(),
            capabilities: capabilities.capability.iter().map(|c| c.name.clone()).collect(),
        }
    }
}

/// A section table: kernel names of its program and attach types; the flags it uses.
fn check_sections(file: &str, names: &Names) -> BTreeSet<String> {
    let table: schema::SectionsFile = typed(file);
    let mut problems = Vec::new();
    let mut flags = BTreeSet::new();
    for s in &table.section {
        if !names.lists[2].contains(&s.prog_type) {
            problems.push(format!("section {}: unknown program type {}", s.pattern, s.prog_type));
        }
        if !names.lists[3].contains(&s.expected_attach_type) {
            problems.push(format!("section {}: unknown attach type {}", s.pattern, s.expected_attach_type));
        }
        flags.extend(s.flags.iter().cloned());
    }
    fail_on(file, problems);
    flags
}

/// The kernel's privileges: the names of its attach-type fixups and of every capability.
fn check_privileges(file: &str, names: &Names) {
    let p: schema::Privileges = typed(file);
    let mut problems = Vec::new();
    let version = |v: &str| {
        let mut parts = v.split('.').map(|n| n.parse::<u32>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), None) => Some((a, b)),
            _ => None,
        }
    };
    match (version(&p.kernels.first), version(&p.kernels.last)) {
        (Some(a), Some(b)) if a <= b => {}
        _ => problems.push(format!("kernels: not a range of X.Y versions: {}-{}", p.kernels.first, p.kernels.last)),
    }
    let rules = p.prog_type.iter().chain(&p.map_type).chain(&p.helper);
    let caps = rules.flat_map(|r| &r.caps).chain(p.kfunc_rule.iter().flat_map(|r| &r.caps)).chain(&p.token_create.caps);
    for c in caps.chain([&p.capable.substitute]).filter(|c| !names.capabilities.contains(*c)) {
        problems.push(format!("unknown capability {c}"));
    }
    for f in &p.attach_fixup {
        if !names.lists[2].contains(&f.prog_type) {
            problems.push(format!("attach_fixup: unknown program type {}", f.prog_type));
        }
        if !names.lists[3].contains(&f.attach) {
            problems.push(format!("attach_fixup: unknown attach type {}", f.attach));
        }
    }
    fail_on(file, problems);
}

/// The loaders' rules files (rules/loader/*.toml with a `[loader]` table), by file name.
fn loader_files() -> Vec<String> {
    println!("cargo:rerun-if-changed=rules/loader");
    let mut files: Vec<String> = std::fs::read_dir("rules/loader")
        .expect("rules/loader/")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| format!("loader/{n}"))
        .filter(|f| toml::from_str::<toml::Table>(&read(f)).is_ok_and(|t| t.contains_key("loader")))
        .collect();
    files.sort();
    files
}

/// A rules file as JSON.
fn json(file: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(&read(file)).unwrap_or_else(|e| panic!("rules/{file} is invalid: {e}"));
    serde_json::to_value(value).expect("TOML values are JSON values")
}

/// A loader's rules: every name in its alternatives and conditions, every `after`, every
/// fallback's effect entry. Returns its section table's file, if it has one.
fn check_loader(file: &str, names: &Names) -> Option<String> {
    let loader: schema::LoaderFile = typed(file);
    let sections = loader.loader.sections.as_deref().unwrap_or_default();
    let flags = if sections.is_empty() { BTreeSet::new() } else { check_sections(sections, names) };
    if sections.is_empty() && loader.loader.token != schema::TokenDiscovery::None {
        panic!("rules/{file}: a loader that takes a token needs its section table (`sections`)");
    }
    let mut problems = Vec::new();
    let ids: BTreeSet<&str> = loader.steps.iter().map(|s| s.id.as_str()).collect();
    for step in &loader.steps {
        let at = format!("step {}", step.id);
        for alt in &step.alternatives {
            for (k, list) in [&alt.commands, &alt.maps, &alt.programs, &alt.attachments].into_iter().enumerate() {
                for n in list.iter().filter(|n| !names.lists[k].contains(*n)) {
                    problems.push(format!("{at}: unknown kernel name {n}"));
                }
            }
        }
        match &step.when {
            schema::Condition::ProgramCallsHelper(hs) => {
                for h in hs.iter().filter(|h| !names.helpers.contains(*h)) {
                    problems.push(format!("{at}: unknown helper {h}"));
                }
            }
            schema::Condition::ProgramType(t) if !names.lists[2].contains(t) => {
                problems.push(format!("{at}: unknown program type {t}"));
            }
            schema::Condition::ProgramSecFlag(f) if !flags.contains(f) => {
                problems.push(format!("{at}: no section of {sections} has the flag {f}"));
            }
            _ => {}
        }
        if let schema::Fallback::RewriteHelpers(pairs) = &step.fallback {
            for h in pairs.iter().flat_map(|(a, b)| [a, b]).filter(|h| !names.helpers.contains(*h)) {
                problems.push(format!("{at}: unknown helper {h}"));
            }
        }
        if let Some(after) = &step.after
            && !ids.contains(after.as_str())
        {
            problems.push(format!("{at}: `after` names no step: {after}"));
        }
        for v in std::iter::once(&step.min).chain(&step.max) {
            if !loader.loader.versions.contains(v) && step.max.is_none() {
                problems.push(format!("{at}: version {v} is not one of the loader's versions"));
            }
        }
    }
    if loader.loader.token == schema::TokenDiscovery::None && !loader.steps.is_empty() {
        problems.push("a loader that takes no token has no steps through one".into());
    }
    let version = |v: &str| {
        let mut it = v.split('.');
        it.next().is_some_and(|a| a.parse::<u32>().is_ok()) && it.next().is_some_and(|b| b.parse::<u32>().is_ok())
    };
    for v in loader.loader.versions.iter().chain(&loader.loader.tokenless_before) {
        if !version(v) {
            problems.push(format!("version {v} is not MAJOR.MINOR"));
        }
    }
    for m in &loader.detect.version_markers {
        if !version(&m.version) {
            problems.push(format!("detect: version {} of {:?} is not MAJOR.MINOR", m.version, m.string));
        }
    }
    for e in &loader.effects {
        let used = loader.steps.iter().any(|s| s.fallback.kind() == e.fallback);
        if !used {
            problems.push(format!("effect {}: no step falls back on it", e.fallback));
        }
    }
    fail_on(file, problems);
    loader.loader.sections
}

/// systemd's name table: every entry's list, and the kernel name it stands for in that list
/// (empty: a bit past the kernel's enums the rules were made from).
fn check_systemd(file: &str, names: &Names) {
    let sd: schema::SystemdRules = typed(file);
    let list = |key: &str| vocab::ListKind::ALL.iter().position(|k| k.json_key() == key);
    let mut problems = Vec::new();
    let entries = sd.names.iter().map(|n| (&n.list, &n.kernel, &n.systemd));
    let unnamed = sd.unnamed.iter().map(|u| (&u.list, &u.kernel, &u.kernel));
    for (l, kernel, what) in entries.chain(unnamed) {
        match list(l) {
            None => problems.push(format!("{what}: unknown list {l}")),
            Some(i) if !kernel.is_empty() && !names.lists[i].contains(kernel) => {
                problems.push(format!("{what}: unknown kernel name {kernel} in {l}"))
            }
            Some(_) => {}
        }
    }
    fail_on(file, problems);
}

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let enums: schema::Enums = typed("kernel/enums.toml");
    let names = Names::of(&enums, &typed("kernel/capabilities.toml"));
    check_sections("sections.toml", &names);
    check_privileges("kernel/privileges.toml", &names);
    check_systemd("dialects/systemd.toml", &names);
    let mut loaders = Vec::new();
    for file in loader_files() {
        let sections = check_loader(&file, &names)
            .map_or(serde_json::Value::Array(Vec::new()), |table| json(&table)["section"].take());
        loaders.push(serde_json::json!({ "file": file, "rules": json(&file), "sections": sections }));
    }
    let names_of: Vec<&str> = loaders.iter().filter_map(|l| l["rules"]["loader"]["name"].as_str()).collect();
    if names_of.iter().collect::<BTreeSet<_>>().len() != names_of.len() {
        panic!("rules/loader/: two loaders share a name: {names_of:?}");
    }
    std::fs::write(out.join("loaders.json"), serde_json::to_string(&loaders).expect("JSON")).expect("write to OUT_DIR");
    let _: schema::MapMemory = typed("kernel/map-memory.toml");
    let verifier: schema::VerifierRules = typed("kernel/verifier.toml");
    let mut problems: Vec<String> = verifier
        .ctx_packet
        .iter()
        .flat_map(|c| &c.prog_types)
        .filter(|t| !names.lists[2].contains(*t))
        .map(|t| format!("unknown program type {t}"))
        .collect();
    for r in &verifier.stack_read {
        if !names.helpers.contains(&r.helper) {
            problems.push(format!("stack_read: unknown helper {}", r.helper));
        }
        let size_register = match r.size {
            schema::ReadSize::Register(n) => Some(n),
            schema::ReadSize::MapKey | schema::ReadSize::MapValue => None,
        };
        for n in std::iter::once(r.arg).chain(size_register) {
            if !(1..=5).contains(&n) {
                problems.push(format!("stack_read {}: r{n} is not an argument register (r1-r5)", r.helper));
            }
        }
    }
    fail_on("kernel/verifier.toml", problems);
    for file in RULES {
        let name = file.replace('/', "__").replace(".toml", ".json");
        std::fs::write(out.join(name), json(file).to_string()).expect("write to OUT_DIR");
    }
}
