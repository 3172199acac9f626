//! Requirement derivation: what the kernel checks for an object's own maps and programs, plus
//! (with the libbpf loader) what libbpf itself does through the token, every item with the
//! reasons that made it necessary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::programs::ProgramInfo;
use crate::model::{ExternKind, MapOrigin, Object};
use crate::rules::{Alternative, ListKind, LoaderStep, Rules, Version};

/// One thing the loading process needs: an item of a delegation list or a capability.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Need {
    List(ListKind, String),
    Cap(String),
}

impl Need {
    pub fn list(kind: ListKind, name: &str) -> Need {
        Need::List(kind, name.to_string())
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::List(k, n) => write!(f, "{} {}", k.mount_option(), n),
            Need::Cap(c) => write!(f, "{c}"),
        }
    }
}

/// Why something is needed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
pub struct Reason {
    pub object: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kfunc: Option<String>,
    /// Source file and line, from BTF.ext line info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The loader step (rules/loader/*.toml id) responsible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loader_step: Option<String>,
    /// The libbpf versions this reason holds for, when not all selected versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libbpf: Option<String>,
    /// Shared: the same text is attached to many items.
    pub text: std::sync::Arc<str>,
    /// A note that an item is also used by something that would cope without it; such a
    /// reason does not make the item required on its own.
    #[serde(skip)]
    pub note: bool,
}

/// Something libbpf can do without: leaving it out is tolerated, at a cost.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OptionalNeed {
    pub items: Vec<Need>,
    pub loader_step: String,
    pub lost: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// Only what the kernel checks for the object's own maps and programs.
    Raw,
    /// libbpf of the given version: also its probes and fallbacks.
    Libbpf(Version),
}

#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub required: BTreeMap<Need, BTreeSet<Reason>>,
    pub optional: BTreeSet<OptionalNeed>,
    pub warnings: Vec<String>,
}

impl Requirements {
    fn add(&mut self, need: Need, reason: Reason) {
        self.required.entry(need).or_default().insert(reason);
    }

    pub fn needs(&self) -> BTreeSet<Need> {
        self.required.keys().cloned().collect()
    }

    /// Merges requirements of another object or libbpf version into these.
    pub fn merge(&mut self, other: Requirements) {
        for (n, rs) in other.required {
            self.required.entry(n).or_default().extend(rs);
        }
        self.optional.extend(other.optional);
        for w in other.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        self.prune_optional();
    }

    /// Drops optional items that are required anyway, and merges entries that name the same
    /// items (several libbpf probes can fall back on the same missing item).
    pub fn prune_optional(&mut self) {
        let req = self.needs();
        let mut merged: BTreeMap<Vec<Need>, OptionalNeed> = BTreeMap::new();
        for mut o in std::mem::take(&mut self.optional) {
            o.items.retain(|i| !req.contains(i));
            o.items.sort();
            o.items.dedup();
            if o.items.is_empty() {
                continue;
            }
            match merged.get_mut(&o.items) {
                Some(m) => {
                    for step in o.loader_step.split(", ") {
                        if !m.loader_step.split(", ").any(|s| s == step) {
                            m.loader_step = format!("{}, {step}", m.loader_step);
                        }
                    }
                    if !m.lost.contains(&o.lost) {
                        m.lost = format!("{}; {}", m.lost, o.lost);
                    }
                }
                None => {
                    merged.insert(o.items.clone(), o);
                }
            }
        }
        self.optional = merged.into_values().collect();
    }
}

/// Capabilities an item needs in the token's user namespace (rules/kernel/privileges.toml).
pub fn caps_of(rules: &Rules, kind: ListKind, name: &str) -> Vec<String> {
    match kind {
        ListKind::Programs => rules.prog_rule(name).map(|r| r.caps.clone()).unwrap_or_default(),
        ListKind::Maps => rules.map_rule(name).map(|r| r.caps.clone()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn alt_needs(rules: &Rules, alt: &Alternative) -> Vec<Need> {
    let mut v: Vec<Need> = alt.items().map(|(k, n)| Need::list(k, n)).collect();
    for (k, n) in alt.items() {
        for c in caps_of(rules, k, n) {
            v.push(Need::Cap(c));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The alternative with the fewest items not already `have`; ties go to the first listed.
fn cheapest<'a>(
    alts: &'a [Alternative],
    needs: &[Vec<Need>],
    have: &dyn Fn(&Need) -> bool,
) -> Option<(&'a Alternative, usize)> {
    alts.iter().enumerate().min_by_key(|(i, _)| needs[*i].iter().filter(|n| !have(n)).count()).map(|(i, a)| (a, i))
}

/// The first alternative whose items are all `have`.
fn satisfied<'a>(
    alts: &'a [Alternative],
    needs: &[Vec<Need>],
    have: &dyn Fn(&Need) -> bool,
) -> Option<(&'a Alternative, usize)> {
    alts.iter().enumerate().find(|(i, _)| needs[*i].iter().all(have)).map(|(i, a)| (a, i))
}

fn reason(obj: &Object, text: String) -> Reason {
    Reason { object: obj.name.clone(), text: text.into(), ..Reason::default() }
}

/// The name of attach type value 0 (the value a program without an expected attach type has).
fn attach_zero_name(rules: &Rules) -> String {
    rules.enums.name_of(ListKind::Attachments, 0).unwrap_or("0").to_string()
}

/// Which selected programs a step's `when` condition triggers for. `None`: not triggered.
/// `Some(empty)`: triggered at object level (or only by programs that are not loaded).
/// `all` are every program of the object (libbpf sanitizes them all), `progs` the selected.
fn triggered<'a>(
    step: &LoaderStep,
    obj: &Object,
    all: &[ProgramInfo],
    progs: &[&'a ProgramInfo],
) -> Result<Option<Vec<&'a ProgramInfo>>, String> {
    let object_level = |b: bool| if b { Some(Vec::new()) } else { None };
    let (cond, arg) = match step.when.split_once(':') {
        Some((c, a)) => (c, Some(a)),
        None => (step.when.as_str(), None),
    };
    let progs_where = |f: &dyn Fn(&ProgramInfo) -> bool| {
        let v: Vec<&ProgramInfo> = progs.iter().copied().filter(|p| f(p)).collect();
        if v.is_empty() { None } else { Some(v) }
    };
    let internal = |m: &crate::model::Map| matches!(m.origin, MapOrigin::GlobalData | MapOrigin::Kconfig);
    Ok(match (cond, arg) {
        ("always", None) => Some(Vec::new()),
        // bpfcap's loads name the token path explicitly (opts.bpf_token_path /
        // LIBBPF_BPF_TOKEN_PATH), as a delegated service should: a failure to create the token
        // then fails the load instead of silently going on without it.
        ("token_path_explicit", None) => Some(Vec::new()),
        ("token_path_default", None) => None,
        ("object_has_btf", None) => object_level(obj.has_btf),
        ("object_has_btf_ext", None) => object_level(obj.has_btf && obj.has_btf_ext),
        ("object_has_global_data", None) => object_level(obj.maps.iter().any(internal)),
        ("object_has_rodata", None) => {
            object_level(obj.maps.iter().any(|m| internal(m) && m.section.starts_with(".rodata")))
        }
        ("object_has_maps", None) => object_level(!obj.maps.is_empty()),
        ("object_has_struct_ops", None) => object_level(obj.maps.iter().any(|m| m.origin == MapOrigin::StructOps)),
        ("object_has_arena", None) => object_level(obj.maps.iter().any(|m| m.map_type == BPF_MAP_TYPE_ARENA)),
        ("object_has_kconfig", None) => object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig)),
        ("object_has_kconfig_extern", Some(n)) => {
            object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig && e.name == n))
        }
        ("object_has_ksyms", None) => object_level(obj.externs.iter().any(|e| e.kind != ExternKind::Kconfig)),
        ("object_has_jumptables", None) => object_level(obj.section_names.iter().any(|s| s == ".jumptables")),
        // Whether libbpf must search module BTFs depends on the running kernel's vmlinux BTF
        // (a target missing from it); a host-independent analysis cannot know, and these calls
        // never carry the token anyway (see the step's comment).
        ("module_btf_lookup", None) => None,
        ("program_has_name", None) => progs_where(&|_| true),
        ("program_references_global_data", None) => {
            progs_where(&|p| p.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && internal(m))))
        }
        ("program_sec_flag", Some(flag)) => progs_where(&|p| p.sec_flags.iter().any(|f| f == flag)),
        ("program_calls_helper", Some(hs)) => {
            let calls = |p: &ProgramInfo| hs.split('|').any(|h| p.helpers.iter().any(|x| x == h));
            if all.iter().any(calls) { Some(progs.iter().copied().filter(|p| calls(p)).collect()) } else { None }
        }
        ("program_type", Some(t)) => progs_where(&|p| p.prog_type.as_deref() == Some(t)),
        _ => return Err(format!("rules: loader step {} has unknown condition `{}`", step.id, step.when)),
    })
}

const BPF_MAP_TYPE_ARENA: u32 = 33;

/// Indexes (in rules.libbpf) of the steps libbpf `v` takes for this object and selection.
pub fn triggered_steps(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    v: Version,
    rules: &Rules,
) -> Vec<usize> {
    let progs: Vec<&ProgramInfo> = programs.iter().filter(|p| selected.contains(&p.name)).collect();
    rules
        .libbpf
        .iter()
        .enumerate()
        .filter(|(_, s)| s.applies_to(v) && matches!(triggered(s, obj, programs, &progs), Ok(Some(_)) | Err(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Derives the requirements of one object for the selected programs.
pub fn derive(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    rules: &Rules,
) -> Requirements {
    let progs: Vec<&ProgramInfo> = programs.iter().filter(|p| selected.contains(&p.name)).collect();
    let mut base = Requirements::default();
    base.warnings.extend(obj.warnings.iter().map(|w| format!("{}: {w}", obj.name)));

    // The token itself.
    for cap in &rules.privileges.token_create.caps {
        base.add(
            Need::Cap(cap.clone()),
            reason(obj, format!("creating a BPF token from the delegated bpffs needs {cap} in the bpffs's user namespace (kernel/bpf/token.c bpf_token_create)")),
        );
    }

    // Programs.
    for p in &progs {
        let Some(ptype) = &p.prog_type else {
            base.warnings.push(format!(
                "{}: program '{}' in section '{}': no libbpf SEC() rule matches this section, so libbpf cannot load it without an explicit program type",
                obj.name, p.name, p.section
            ));
            continue;
        };
        let prog_reason = |text: String| Reason {
            object: obj.name.clone(),
            program: Some(p.name.clone()),
            section: Some(p.section.clone()),
            text: text.into(),
            ..Reason::default()
        };
        base.add(Need::list(ListKind::Commands, "prog_load"), prog_reason(format!("loads program {}", p.name)));
        base.add(
            Need::list(ListKind::Programs, ptype),
            prog_reason(format!(
                "program {} in section '{}' is a {ptype} program (libbpf SEC(\"{}\"))",
                p.name,
                p.section,
                p.sec_pattern.as_deref().unwrap_or("?")
            )),
        );
        if let Some(rule) = rules.prog_rule(ptype) {
            for c in &rule.caps {
                base.add(
                    Need::Cap(c.clone()),
                    prog_reason(format!("loading a {ptype} program needs {c} ({})", rule.why)),
                );
            }
        }
        for call in &p.helper_calls {
            if let Some(rule) = rules.privileges.helper_caps(&call.name) {
                for c in &rule.caps {
                    base.add(
                        Need::Cap(c.clone()),
                        Reason {
                            helper: Some(format!("bpf_{}", call.name)),
                            location: call.location.clone(),
                            ..prog_reason(format!(
                                "{} calls bpf_{}, which the verifier offers only with {c} ({})",
                                call.function, call.name, rule.why
                            ))
                        },
                    );
                }
            }
        }
        let uses_arena =
            p.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && m.map_type == BPF_MAP_TYPE_ARENA));
        for call in &p.kfunc_calls {
            for rule in &rules.privileges.kfunc_rule {
                let applies = match rule.when.as_str() {
                    "any_kfunc" => true,
                    "arena" => uses_arena,
                    "listed" => rule.kfuncs.iter().any(|k| *k == call.name),
                    _ => false,
                };
                if !applies {
                    continue;
                }
                if rule.when == "listed" {
                    base.warnings.push(format!(
                        "{}: {} calls kfunc {}, which needs {} in the initial user namespace: no BPF token can grant it ({})",
                        obj.name, call.function, call.name, rule.caps.join(", "), rule.why
                    ));
                    continue;
                }
                for c in &rule.caps {
                    base.add(
                        Need::Cap(c.clone()),
                        Reason {
                            kfunc: Some(call.name.clone()),
                            location: call.location.clone(),
                            ..prog_reason(format!(
                                "{} calls kfunc {}; kfunc calls need {c} ({})",
                                call.function, call.name, rule.why
                            ))
                        },
                    );
                }
            }
        }
    }

    // Maps: libbpf creates every map of the object, whichever programs are loaded.
    for m in &obj.maps {
        let Some(tname) = rules.enums.name_of(ListKind::Maps, m.map_type) else {
            base.warnings.push(format!("{}: map {} has unknown map type {}", obj.name, m.name, m.map_type));
            continue;
        };
        let what = match m.origin {
            MapOrigin::Btf => format!("map {} ({} in .maps)", m.name, tname),
            MapOrigin::InnerTemplate => {
                format!("map {}: inner map template of a map-in-map, created and closed by the loader", m.name)
            }
            MapOrigin::LegacyBpfMapDef | MapOrigin::LegacyIproute2 => format!("legacy map {} in section maps", m.name),
            MapOrigin::GlobalData => format!("global data section {} becomes the {} map {}", m.section, tname, m.name),
            MapOrigin::Kconfig => format!(".kconfig externs live in the {} map {}", tname, m.name),
            MapOrigin::StructOps => format!("struct_ops variable {} in {} becomes a struct_ops map", m.name, m.section),
        };
        let map_reason = |text: String| Reason {
            object: obj.name.clone(),
            map: Some(m.name.clone()),
            section: Some(m.section.clone()),
            text: text.into(),
            ..Reason::default()
        };
        base.add(Need::list(ListKind::Commands, "map_create"), map_reason(format!("creates {what}")));
        base.add(Need::list(ListKind::Maps, tname), map_reason(what.clone()));
        if let Some(rule) = rules.map_rule(tname) {
            for c in &rule.caps {
                base.add(Need::Cap(c.clone()), map_reason(format!("creating a {tname} map needs {c} ({})", rule.why)));
            }
        }
    }

    // BTF.
    if obj.has_btf {
        let struct_ops = obj.maps.iter().any(|m| m.origin == MapOrigin::StructOps);
        let special: Vec<&crate::model::Map> = obj.maps.iter().filter(|m| !m.btf_special_fields.is_empty()).collect();
        if struct_ops {
            base.add(
                Need::list(ListKind::Commands, "btf_load"),
                reason(obj, "the object has struct_ops maps, which need the object's BTF loaded into the kernel (libbpf.c kernel_needs_btf: BTF is mandatory)".into()),
            );
        }
        for m in &special {
            base.add(
                Need::list(ListKind::Commands, "btf_load"),
                Reason {
                    map: Some(m.name.clone()),
                    ..reason(
                        obj,
                        format!(
                            "map {} holds {} in its value, which the kernel only accepts with the map's BTF",
                            m.name,
                            m.btf_special_fields.join(", ")
                        ),
                    )
                },
            );
        }
        let mut needs_btf_type = false;
        for m in &obj.maps {
            if let Some(tname) = rules.enums.name_of(ListKind::Maps, m.map_type)
                && let Some(why) = rules.map_rule(tname).and_then(|r| r.needs_btf.as_ref())
            {
                needs_btf_type = true;
                base.add(
                    Need::list(ListKind::Commands, "btf_load"),
                    Reason {
                        map: Some(m.name.clone()),
                        ..reason(obj, format!("map {} is a {tname} map: {why}", m.name))
                    },
                );
            }
        }
        if !struct_ops && special.is_empty() && !needs_btf_type && loader == Loader::Raw {
            base.optional.insert(OptionalNeed {
                items: vec![Need::list(ListKind::Commands, "btf_load")],
                loader_step: "load_btf".into(),
                lost: "libbpf loads the programs without the object's BTF when BTF_LOAD is refused: no func/line info for \
                       verifier logs and bpftool, no BTF-typed map keys and values"
                    .into(),
                reason: reason(obj, "the object carries .BTF".into()),
            });
        }
    }

    let mut result = match loader {
        Loader::Raw => {
            let mut r = base;
            for p in &progs {
                if let (Some(_), Some(a)) = (&p.prog_type, &p.load_attach_type) {
                    r.add(Need::list(ListKind::Attachments, a), attach_reason(obj, p, a));
                }
            }
            r
        }
        Loader::Libbpf(v) => apply_libbpf(obj, programs, &progs, base, v, rules),
    };
    result.prune_optional();
    result
}

fn attach_reason(obj: &Object, p: &ProgramInfo, attach: &str) -> Reason {
    let text = if let Some(member) = &p.struct_ops_member {
        format!(
            "program {} implements {member}; libbpf loads struct_ops programs with the member's index as expected attach type, which the token checks as attach type {attach} (index taken from the object's BTF; the kernel's struct layout decides — confirm with `bpfcap verify`)",
            p.name
        )
    } else if p.attach_zero {
        format!(
            "program {} is loaded with no expected attach type; the kernel reads 0 as {attach}, so the token must delegate it",
            p.name
        )
    } else {
        format!("program {} is loaded with expected attach type {attach}", p.name)
    };
    Reason {
        object: obj.name.clone(),
        program: Some(p.name.clone()),
        section: Some(p.section.clone()),
        text: text.into(),
        ..Reason::default()
    }
}

fn apply_libbpf(
    obj: &Object,
    all: &[ProgramInfo],
    progs: &[&ProgramInfo],
    base: Requirements,
    v: Version,
    rules: &Rules,
) -> Requirements {
    let steps: Vec<&LoaderStep> = rules.libbpf.iter().filter(|s| s.applies_to(v)).collect();
    let zero = attach_zero_name(rules);
    // Each round builds only what the loader adds to `base` (the delta); the object's own needs
    // are never copied. The first round starts from the declared attach types.
    let mut prev_delta: BTreeSet<Need> = BTreeSet::new();
    for p in progs {
        if let Some(a) = &p.load_attach_type {
            prev_delta.insert(Need::list(ListKind::Attachments, a));
        }
    }
    // the items (with capabilities) of every alternative of every step, computed once
    let step_needs: Vec<Vec<Vec<Need>>> =
        steps.iter().map(|s| s.alternatives.iter().map(|a| alt_needs(rules, a)).collect()).collect();
    let mut out = Requirements::default();
    for _round in 0..8 {
        // For each need the previous round's loader steps added: the steps that require it
        // (None: the object itself); an alternative covered by other sources is free.
        let sources: BTreeMap<&Need, BTreeSet<Option<&str>>> = out
            .required
            .iter()
            .map(|(n, rs)| (n, rs.iter().filter(|x| !x.note).map(|x| x.loader_step.as_deref()).collect()))
            .collect();
        let mut r = Requirements::default();
        let mut reset: BTreeSet<String> = BTreeSet::new();
        for (si, step) in steps.iter().enumerate() {
            let needs = &step_needs[si];
            let affected = match triggered(step, obj, all, progs) {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    r.warnings.push(e);
                    continue;
                }
            };
            if step.alternatives.is_empty() {
                // Sent without the token: no delegation can grant it.
                if step.on_failure == "fatal" {
                    let w = format!(
                        "{}: libbpf step {} ({}) does not go through the token; it needs the loader's own privileges",
                        obj.name,
                        step.id,
                        lc_first(&step.what)
                    );
                    if !r.warnings.contains(&w) {
                        r.warnings.push(w);
                    }
                }
                continue;
            }
            let step_reason = |text: Arc<str>, program: Option<&ProgramInfo>| Reason {
                object: obj.name.clone(),
                program: program.map(|p| p.name.clone()),
                section: program.map(|p| p.section.clone()),
                loader_step: Some(step.id.clone()),
                text,
                ..Reason::default()
            };
            let add_alt = |r: &mut Requirements, alt_needs: &[Need], text: String, program: Option<&ProgramInfo>| {
                let text: Arc<str> = text.into();
                for n in alt_needs {
                    r.add(n.clone(), step_reason(text.clone(), program));
                }
            };
            // What the previous round needed for reasons other than this step: an alternative
            // those needs already cover costs nothing, so it is preferred.
            let in_core = |n: &Need| {
                base.required.contains_key(n)
                    || sources.get(n).is_some_and(|src| src.iter().any(|x| *x != Some(step.id.as_str())))
            };
            let in_prev = |n: &Need| base.required.contains_key(n) || prev_delta.contains(n);
            let sat = satisfied(&step.alternatives, needs, &in_core)
                .or_else(|| satisfied(&step.alternatives, needs, &in_prev));
            let (effect, arg) = step.fallback.split_once(':').unwrap_or((step.fallback.as_str(), ""));
            // A fallback that breaks a loaded program makes the step as good as fatal for it.
            let mut broken: Vec<(&ProgramInfo, String, String)> = Vec::new();
            if step.on_failure != "fatal" && effect == "rewrite_helpers" {
                for p in &affected {
                    let ptype = p.prog_type.as_deref().unwrap_or("");
                    for pair in arg.split(',') {
                        let Some((from, to)) = pair.split_once('=') else { continue };
                        if p.helpers.iter().any(|h| h == from) && rules.helper_available(to, ptype) != Some(true) {
                            broken.push((p, format!("bpf_{from}"), format!(
                                "{} calls bpf_{from}; if libbpf's probe ({}) fails, libbpf rewrites the call to bpf_{to}, which {ptype} programs cannot call, and the load fails verification",
                                p.name, step.id
                            )));
                        }
                    }
                }
            }
            if step.on_failure == "fatal" || !broken.is_empty() {
                let (_, ai) = sat.or_else(|| cheapest(&step.alternatives, needs, &in_core)).expect("alternatives");
                if broken.is_empty() {
                    let who = if affected.is_empty() { String::new() } else { format!(" (for {})", names(&affected)) };
                    add_alt(
                        &mut r,
                        &needs[ai],
                        format!("libbpf {}{who}; bpf_object__load fails if this is refused", lc_first(&step.what)),
                        None,
                    );
                }
                for (p, from, text) in &broken {
                    let site = p.helper_calls.iter().find(|c| format!("bpf_{}", c.name) == *from);
                    let text: Arc<str> = text.as_str().into();
                    for n in &needs[ai] {
                        r.add(
                            n.clone(),
                            Reason {
                                helper: Some(from.clone()),
                                location: site.and_then(|s| s.location.clone()),
                                ..step_reason(text.clone(), Some(p))
                            },
                        );
                    }
                }
                continue;
            }
            if let Some((_, ai)) = sat {
                // The probe succeeds with what is delegated anyway: note that libbpf uses it.
                if needs[ai].iter().all(|n| base.required.contains_key(n) || r.required.contains_key(n)) {
                    let text: Arc<str> = format!("also used by libbpf: {}", lc_first(&step.what)).into();
                    for n in &needs[ai] {
                        r.add(n.clone(), Reason { note: true, ..step_reason(text.clone(), None) });
                    }
                }
                continue;
            }
            let (_, ai) = cheapest(&step.alternatives, needs, &in_prev).expect("alternatives");
            let mut optional_items = needs[ai].clone();
            if effect == "reset_expected_attach_type" {
                for p in &affected {
                    if let Some(a) = &p.load_attach_type
                        && !p.attach_zero
                    {
                        reset.insert(p.name.clone());
                        optional_items.push(Need::list(ListKind::Attachments, a));
                        r.add(
                            Need::list(ListKind::Attachments, &zero),
                            step_reason(
                                format!(
                                    "libbpf's probe ({}) fails without {}, so libbpf loads {} with expected attach type 0 instead of {a}; the kernel reads 0 as {zero}",
                                    step.id,
                                    list_needs(&needs[ai]),
                                    p.name
                                )
                                .into(),
                                Some(p),
                            ),
                        );
                    }
                }
            }
            let who = if affected.is_empty() { String::new() } else { format!(" (for {})", names(&affected)) };
            r.optional.insert(OptionalNeed {
                items: optional_items,
                loader_step: step.id.clone(),
                lost: step.lost.clone(),
                reason: step_reason(format!("libbpf {}{who}", lc_first(&step.what)).into(), None),
            });
        }
        for p in progs {
            if let (Some(_), Some(a)) = (&p.prog_type, &p.load_attach_type) {
                if reset.contains(&p.name) {
                    continue;
                }
                r.add(Need::list(ListKind::Attachments, a), attach_reason(obj, p, a));
            }
        }
        let now = r.needs();
        out = r;
        if now == prev_delta {
            break;
        }
        prev_delta = now;
    }
    let mut result = base;
    result.merge(out);
    result
}

fn names(progs: &[&ProgramInfo]) -> String {
    progs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn list_needs(needs: &[Need]) -> String {
    needs.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

fn lc_first(s: &str) -> String {
    // keep acronyms and identifiers (FEAT_..., BTF) as they are
    if s.chars().nth(1).is_some_and(|c| c.is_uppercase() || c == '_') {
        return s.to_string();
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
