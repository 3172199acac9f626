//! Reports: the analysis rendered as the stable JSON document (schema `bpfcap/1`, see
//! docs/json-schema.md) or as tables for people.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Value, json};

use crate::analysis::requirements::{Reason, Requirements};
use crate::analysis::{Analysis, ObjectAnalysis};
use crate::delegation::Delegation;
use crate::pipeline::Executable;
use crate::rules::Rules;
use crate::vocab::{ListKind, Lists, Need};

pub mod record;
pub mod table;

pub use crate::vocab::SCHEMA;

pub fn need_json(n: &Need) -> Value {
    match n {
        Need::List(k, name) => json!({"list": k.json_key(), "name": name}),
        Need::Cap(c) => json!({"capability": c}),
    }
}

// The `analyze` document is written straight from the analysis (no intermediate JSON tree):
// its reasons alone run to megabytes for a large tree of objects. Keys are in byte order, as
// schema bpfcap/1 has always printed them.

/// Reasons, keyed by list (then item) and by capability.
struct ReasonsDoc<'a>(&'a Requirements);

impl Serialize for ReasonsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // key order: attachments, capabilities, commands, maps, programs
        let mut lists: Vec<(&str, Option<ListKind>)> = ListKind::ALL.iter().map(|k| (k.json_key(), Some(*k))).collect();
        lists.push(("capabilities", None));
        lists.sort_by_key(|(key, _)| *key);
        let mut m = s.serialize_map(Some(lists.len()))?;
        for (key, kind) in lists {
            m.serialize_entry(key, &ReasonsOf(self.0, kind))?;
        }
        m.end()
    }
}

/// The reasons of one list's items (`Some`) or of the capabilities (`None`), by name.
struct ReasonsOf<'a>(&'a Requirements, Option<ListKind>);

impl Serialize for ReasonsOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut items: Vec<(&str, &Vec<Reason>)> = self
            .0
            .required
            .iter()
            .filter_map(|(n, rs)| match (n, self.1) {
                (Need::List(k, name), Some(kind)) if *k == kind => Some((name.as_str(), rs)),
                (Need::Cap(c), None) => Some((c.as_str(), rs)),
                _ => None,
            })
            .collect();
        items.sort_by_key(|(name, _)| *name);
        let mut m = s.serialize_map(Some(items.len()))?;
        for (name, rs) in items {
            m.serialize_entry(name, &rs.iter().map(ReasonDoc).collect::<Vec<_>>())?;
        }
        m.end()
    }
}

/// One reason, its keys in byte order.
struct ReasonDoc<'a>(&'a Reason);

impl Serialize for ReasonDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let fields: [(&str, Option<&str>); 10] = [
            ("helper", r.helper.as_deref()),
            ("kfunc", r.kfunc.as_deref()),
            ("libbpf", r.libbpf.as_deref()),
            ("loader_step", r.loader_step.as_deref()),
            ("location", r.location.as_deref()),
            ("map", r.map.as_deref()),
            ("object", Some(&r.object)),
            ("program", r.program.as_deref()),
            ("section", r.section.as_deref()),
            ("text", Some(&r.text)),
        ];
        let mut m = s.serialize_map(None)?;
        for (k, v) in fields {
            if let Some(v) = v {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct OptionalDoc<'a> {
    items: Vec<Value>,
    loader_step: String,
    lost: String,
    reason: ReasonDoc<'a>,
}

fn optional_doc(r: &Requirements) -> Vec<OptionalDoc<'_>> {
    r.optional
        .iter()
        .map(|o| OptionalDoc {
            items: o.items.iter().map(need_json).collect(),
            loader_step: o.loader_step(),
            lost: o.lost(),
            reason: ReasonDoc(&o.reason),
        })
        .collect()
}

#[derive(Serialize)]
struct ProgramDoc<'a> {
    autoload: bool,
    expected_attach_type: &'a Option<String>,
    helpers: &'a [crate::model::SharedStr],
    kfuncs: &'a [crate::model::SharedStr],
    maps: &'a [String],
    name: &'a str,
    prog_type: &'a Option<String>,
    section: &'a str,
    selected: bool,
    sleepable: bool,
    subprograms: &'a [String],
    tail_calls: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    verifier_gates: &'a [crate::analysis::gates::GateSite],
}

#[derive(Serialize)]
struct MapDoc<'a> {
    inner_map: Option<&'a str>,
    key_size: u32,
    map_flags: u32,
    map_type: std::borrow::Cow<'a, str>,
    max_entries: u32,
    name: &'a str,
    origin: crate::model::MapOrigin,
    pinning: u32,
    section: &'a str,
    value_size: u32,
}

/// The loader an object was analysed for.
#[derive(Serialize)]
struct LoaderDoc<'a> {
    /// Its name in the rules ("raw": --loader raw).
    name: &'a str,
    title: &'a str,
    token: bool,
    versions: Vec<String>,
    why: &'a str,
}

#[derive(Serialize)]
struct ObjectDoc<'a> {
    capabilities: &'a [String],
    delegation: &'a Lists<Vec<String>>,
    host_capabilities: &'a [String],
    license: &'a Option<String>,
    loader: LoaderDoc<'a>,
    maps: Vec<MapDoc<'a>>,
    name: &'a str,
    path: &'a str,
    programs: Vec<ProgramDoc<'a>>,
    warnings: &'a [String],
}

fn object_doc<'a>(o: &'a ObjectAnalysis, rules: &'a Rules) -> ObjectDoc<'a> {
    let programs = o
        .programs
        .iter()
        .map(|p| ProgramDoc {
            autoload: p.autoload,
            expected_attach_type: &p.expected_attach_type,
            helpers: &p.uses.helpers,
            kfuncs: &p.uses.kfuncs,
            maps: &p.uses.maps,
            name: &p.name,
            prog_type: &p.prog_type,
            section: &p.section,
            selected: o.selected.contains(&p.name),
            sleepable: p.sleepable,
            subprograms: &p.uses.subprograms,
            tail_calls: p.uses.tail_calls,
            verifier_gates: &p.gates,
        })
        .collect();
    let maps = o
        .object
        .maps
        .iter()
        .map(|m| MapDoc {
            inner_map: m.inner.and_then(|i| o.object.maps.get(i)).map(|i| i.name.as_str()),
            key_size: m.key_size,
            map_flags: m.map_flags,
            map_type: match rules.enums.name_of(ListKind::Maps, m.map_type) {
                Some(n) => n.into(),
                None => format!("unknown({})", m.map_type).into(),
            },
            max_entries: m.max_entries,
            name: &m.name,
            origin: m.origin,
            pinning: m.pinning,
            section: &m.section,
            value_size: m.value_size,
        })
        .collect();
    let spec = o.loader.spec.as_ref();
    ObjectDoc {
        capabilities: &o.delegation.capabilities,
        delegation: &o.delegation.lists,
        host_capabilities: &o.host_capabilities,
        license: &o.object.license,
        loader: LoaderDoc {
            name: spec.map_or("raw", |s| s.name.as_str()),
            title: spec.and_then(|s| rules.loader(&s.name)).map_or("raw", |m| m.header.title.as_str()),
            token: o.loader.token(),
            versions: spec.map(|s| s.versions.iter().map(|v| v.to_string()).collect()).unwrap_or_default(),
            why: &o.loader.why,
        },
        maps,
        name: &o.object.name,
        path: &o.path,
        programs,
        warnings: &o.warnings,
    }
}

/// One object at a time, so that a large tree is never held as documents all at once.
struct ObjectsDoc<'a>(&'a [ObjectAnalysis], &'a Rules);

impl Serialize for ObjectsDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for o in self.0 {
            seq.serialize_element(&object_doc(o, self.1))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct AnalysisDoc<'a> {
    capabilities: &'a [String],
    delegation: &'a Lists<Vec<String>>,
    /// `--by-executable`: the answer for each file that holds objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    executables: Option<Vec<ExecutableDoc<'a>>>,
    host_capabilities: &'a [String],
    /// "analysis", as the other documents name their kind ("verification", "record").
    kind: &'static str,
    loader: String,
    mount_options: String,
    objects: ObjectsDoc<'a>,
    optional: Vec<OptionalDoc<'a>>,
    reasons: ReasonsDoc<'a>,
    schema: &'static str,
    warnings: &'a [String],
    with_optional: bool,
}

/// One file's own answer (`analyze --by-executable`).
#[derive(Serialize)]
struct ExecutableDoc<'a> {
    capabilities: &'a [String],
    delegation: &'a Lists<Vec<String>>,
    host_capabilities: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    loader: String,
    mount_options: String,
    /// The objects, as the document's `objects` name them.
    objects: Vec<&'a str>,
    path: &'a str,
    warnings: &'a [String],
}

fn executable_doc<'a>(e: &'a Executable, rules: &Rules) -> ExecutableDoc<'a> {
    let a = &e.analysis;
    ExecutableDoc {
        capabilities: &a.delegation.capabilities,
        delegation: &a.delegation.lists,
        host_capabilities: &a.host_capabilities,
        image: e.image.as_ref().map(|i| i.display().to_string()),
        loader: a.loader_description(rules),
        mount_options: a.delegation.mount_options(rules),
        objects: a.objects.iter().map(|o| o.path.as_str()).collect(),
        path: &e.path,
        warnings: &a.requirements.warnings,
    }
}

/// Writes the `analyze --format json` document (pretty-printed, with a final newline).
pub fn write_analysis_json(a: &Analysis, rules: &Rules, out: &mut impl std::io::Write) -> std::io::Result<()> {
    write_analysis_document(a, None, rules, out)
}

/// [`write_analysis_json`], with the answer for each file that holds objects
/// (`--by-executable`) when `executables` is given.
pub fn write_analysis_document(
    a: &Analysis,
    executables: Option<&[Executable]>,
    rules: &Rules,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let doc = AnalysisDoc {
        capabilities: &a.delegation.capabilities,
        delegation: &a.delegation.lists,
        executables: executables.map(|list| list.iter().map(|e| executable_doc(e, rules)).collect()),
        host_capabilities: &a.host_capabilities,
        kind: "analysis",
        loader: a.loader_description(rules),
        mount_options: a.delegation.mount_options(rules),
        objects: ObjectsDoc(&a.objects, rules),
        optional: optional_doc(&a.requirements),
        reasons: ReasonsDoc(&a.requirements),
        schema: SCHEMA,
        warnings: &a.requirements.warnings,
        with_optional: a.with_optional,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// The `analyze --format json` document as a JSON value (for tests and embedding tools).
pub fn analysis_json(a: &Analysis, rules: &Rules) -> Value {
    let mut buf = Vec::new();
    write_analysis_json(a, rules, &mut buf).expect("writing to memory");
    serde_json::from_slice(&buf).expect("the document is JSON")
}

/// `verify --format json`: the delegation verified (for `loader`), each target's outcome, and
/// with --minimize each item's verdict.
pub fn verification_json(v: &crate::verify::Verification, d: &Delegation, loader: &str, r: &Rules) -> String {
    let doc = json!({
        "schema": SCHEMA,
        "kind": "verification",
        "loader": loader,
        "delegation": d.to_json(),
        "capabilities": d.capabilities,
        "mount_options": d.mount_options(r),
        "loaded": v.loaded,
        "minimal": v.minimal,
        "targets": v.targets,
        "items": v.items.iter().map(|i| json!({
            "item": need_json(&i.item),
            "required": i.required,
            "failure": i.failure,
            "undecided": i.undecided,
        })).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON");
    s.push('\n');
    s
}

/// `verify`'s table: the delegation, each target's outcome with its diagnosis, and with
/// --minimize each item's verdict; when some items are not required, the minimal delegation,
/// ready to paste.
pub fn verification_table(v: &crate::verify::Verification, d: &Delegation, minimize: bool, r: &Rules) -> String {
    use crate::text::Escaped;
    let mut s = format!("delegation: {}\ncapabilities: {}\n", d.mount_options(r), d.capabilities.join(", "));
    for t in &v.targets {
        let path = t.path.to_string_lossy();
        let command =
            t.outcome.exit_code.is_some() || t.outcome.still_running || t.outcome.step.as_deref() == Some("exec");
        if t.outcome.loaded {
            if t.outcome.still_running {
                s.push_str(&format!("{}: works (still running after --ready-after)\n", Escaped(&path)));
            } else if command {
                s.push_str(&format!("{}: works (exit status 0)\n", Escaped(&path)));
            } else {
                s.push_str(&format!("{}: loaded ({} programs)\n", Escaped(&path), t.programs.len()));
            }
            continue;
        }
        s.push_str(&format!("{}: {}\n", Escaped(&path), Escaped(&crate::verify::describe(&t.outcome))));
        if let Some(dg) = &t.diagnosis {
            s.push_str(&format!("  diagnosis: {}\n", Escaped(dg)));
        }
        for p in t.outcome.programs.iter().filter(|p| p.errno.is_some()) {
            for l in &p.log_tail {
                s.push_str(&format!("  | {}\n", Escaped(l)));
            }
        }
        if command {
            if let Some(m) = &t.outcome.message {
                s.push_str(&format!("  {}\n", Escaped(m)));
            }
            let log = &t.outcome.libbpf_log;
            for l in &log[log.len().saturating_sub(5)..] {
                s.push_str(&format!("  | {}\n", Escaped(l)));
            }
        }
    }
    for i in &v.items {
        let (verdict, why) = match (&i.undecided, i.required) {
            (Some(u), _) => ("undecided", Some(u)),
            (None, true) => ("required", i.failure.as_ref()),
            (None, false) => ("not required", None),
        };
        s.push_str(&format!(
            "  {:<45} {verdict}{}\n",
            i.item.to_string(),
            why.map(|f| format!(" ({})", Escaped(f))).unwrap_or_default()
        ));
    }
    if v.targets.len() > 1 {
        let loaded = v.targets.iter().filter(|t| t.outcome.loaded).count();
        let not_token = v
            .targets
            .iter()
            .filter(|t| t.diagnosis.as_deref().is_some_and(|d| d.starts_with(crate::verify::NOT_THE_TOKEN)))
            .count();
        s.push_str(&format!("{loaded} of {} objects load", v.targets.len()));
        if not_token > 0 {
            s.push_str(&format!("; {not_token} fail without a token too (not a delegation problem)"));
        }
        s.push('\n');
    }
    match v.minimal {
        Some(true) => s.push_str("every item is required: the delegation is minimal\n"),
        Some(false) => s.push_str("some items are not required\n"),
        None if minimize && v.loaded => {
            s.push_str("minimality not known: some loads ran out of time or memory (--timeout, --deadline, --memory)\n")
        }
        None => {}
    }
    if v.minimal == Some(false) {
        let minimal = v.items.iter().filter(|i| !i.required).fold(d.clone(), |m, i| m.without(&i.item));
        let no_reason = |_: crate::vocab::ListKind, _: &str| String::new();
        let dropin = crate::dialect::by_name("systemd").expect("the systemd dialect").emit(&minimal, "", &no_reason, r);
        s.push_str(&format!("\nminimal delegation:\n{}\n", minimal.mount_options(r)));
        s.push_str("as a systemd drop-in ([Service]):\n");
        for line in dropin.text.lines().filter(|l| !l.starts_with('#') && l.contains('=')) {
            s.push_str(&format!("{line}\n"));
        }
    }
    s
}
