//! Analysis: object model → requirements with provenance → delegation.

pub mod memory;
pub mod programs;
pub mod requirements;

use std::collections::{BTreeMap, BTreeSet};

use miette::Diagnostic;
use thiserror::Error;

use crate::delegation::Delegation;
use crate::model::Object;
use crate::rules::{Rules, Version};
use crate::text::Escaped;
use programs::{ProgramInfo, classify_matched, program_uses, section_rules_of};
use requirements::{Loader, Need, Reason, Requirements, Texts, TriggeredSteps, derive_steps};

/// Which loader the delegation must serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderChoice {
    Raw,
    /// libbpf, every version in the list (the delegation must work for each).
    Libbpf(Vec<Version>),
}

impl LoaderChoice {
    pub fn describe(&self) -> String {
        match self {
            LoaderChoice::Raw => "raw".into(),
            LoaderChoice::Libbpf(v) if v.len() == 1 => format!("libbpf {}", v[0]),
            LoaderChoice::Libbpf(v) => format!("libbpf {}-{}", v[0], v[v.len() - 1]),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Restrict to these programs (empty: all).
    pub programs: Vec<String>,
    pub loader: LoaderChoice,
    /// Put optional items into the delegation too.
    pub with_optional: bool,
}

#[derive(Debug, Error, Diagnostic)]
pub enum AnalysisError {
    #[error("no program named '{}' in {}", Escaped(.name), Escaped(.objects))]
    #[diagnostic(code(bpfcap::analyze::unknown_program), help("{help}"))]
    UnknownProgram { name: String, objects: String, help: String },

    #[error("unknown libbpf version '{0}'")]
    #[diagnostic(code(bpfcap::analyze::libbpf_version), help("use MAJOR.MINOR or a range MIN-MAX within {1}"))]
    LibbpfVersion(String, String),
}

/// One object's analysis.
#[derive(Debug, Clone)]
pub struct ObjectAnalysis {
    pub path: String,
    pub object: Object,
    /// Programs as the newest selected libbpf version sees them.
    pub programs: Vec<ProgramInfo>,
    pub selected: BTreeSet<String>,
    /// What the object's analysis warns about. (Its requirements, with their reasons, are in
    /// the [`Analysis`]'s union; `delegation` is what they come to for this object alone.)
    pub warnings: Vec<String>,
    pub delegation: Delegation,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub loader: LoaderChoice,
    pub objects: Vec<ObjectAnalysis>,
    /// The union over all objects.
    pub requirements: Requirements,
    pub delegation: Delegation,
    pub with_optional: bool,
}

/// Parses `--libbpf X.Y` or `X.Y-A.B` against the versions the rules know.
pub fn parse_libbpf_versions(spec: &str, rules: &Rules) -> Result<Vec<Version>, AnalysisError> {
    let known = rules.libbpf_versions();
    let known_s = format!("{}-{}", known[0], known[known.len() - 1]);
    let err = || AnalysisError::LibbpfVersion(spec.to_string(), known_s.clone());
    let (lo, hi) = match spec.split_once('-') {
        Some((a, b)) => (Version::parse(a).ok_or_else(err)?, Version::parse(b).ok_or_else(err)?),
        None => {
            let v = Version::parse(spec).ok_or_else(err)?;
            (v, v)
        }
    };
    let vs: Vec<Version> = known.into_iter().filter(|v| *v >= lo && *v <= hi).collect();
    if vs.is_empty() || lo > hi {
        return Err(err());
    }
    Ok(vs)
}

/// Analyses a set of objects; the result's delegation is the union of all of them.
pub fn analyse(inputs: Vec<(String, Object)>, opts: &Options, rules: &Rules) -> Result<Analysis, AnalysisError> {
    let n = inputs.len();
    let slots: Vec<std::sync::Mutex<Option<(String, Object)>>> =
        inputs.into_iter().map(|i| std::sync::Mutex::new(Some(i))).collect();
    let load = |i: usize| -> Result<Loaded, std::convert::Infallible> {
        let item = slots[i].lock().expect("input").take().expect("each input is taken once");
        Ok(Loaded { objects: vec![item], warnings: Vec::new() })
    };
    match analyse_stream(n, load, opts, rules) {
        Ok(a) => Ok(a),
        Err(StreamError::Analysis(e)) => Err(e),
        Err(StreamError::Load(never)) => match never {},
    }
}

/// What one work item of [`analyse_stream`] gives: its objects (display path, model) and
/// warnings about what could not be read.
pub struct Loaded {
    pub objects: Vec<(String, Object)>,
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum StreamError<E> {
    /// Loading an item failed (the first such item, in item order).
    Load(E),
    Analysis(AnalysisError),
}

/// Analyses objects as they are produced: `load(i)` gives the objects of work item `i`
/// (`0..count`; a file, say). Items are loaded and analysed on every available core, each
/// object's instructions are dropped once analysed, and only the items in progress are held
/// whole, so memory follows the largest items, not the sum of all of them. The result keeps
/// item order: objects, and the items' warnings ahead of the analysis's own. When items fail
/// to load, the error of the first of them (in item order) is returned.
pub fn analyse_stream<E: Send>(
    count: usize,
    load: impl Fn(usize) -> Result<Loaded, E> + Sync,
    opts: &Options,
    rules: &Rules,
) -> Result<Analysis, StreamError<E>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let versions: Vec<Option<Version>> = match &opts.loader {
        LoaderChoice::Raw => vec![None],
        LoaderChoice::Libbpf(v) => v.iter().copied().map(Some).collect(),
    };
    let workers = crate::workers::workers_for(count);
    let next = AtomicUsize::new(0);
    // the first failed item so far: items after it need not be loaded
    let first_error = AtomicUsize::new(usize::MAX);
    type Done<E> = (usize, Result<(Vec<(ObjectAnalysis, Requirements)>, Vec<String>), E>);
    let done: Mutex<Vec<Done<E>>> = Mutex::new(Vec::with_capacity(count));
    let progress = crate::progress::Progress::new("analysing", count);
    let texts = Texts::of(rules);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if i > first_error.load(Ordering::Relaxed) {
                continue;
            }
            let result = match load(i) {
                Ok(loaded) => Ok((
                    loaded
                        .objects
                        .into_iter()
                        .map(|(path, object)| analyse_one(path, object, opts, &versions, rules, &texts))
                        .collect(),
                    loaded.warnings,
                )),
                Err(e) => {
                    first_error.fetch_min(i, Ordering::Relaxed);
                    Err(e)
                }
            };
            done.lock().expect("results").push((i, result));
            progress.tick();
        }
    };
    crate::workers::run(workers, work);
    progress.finish();
    let mut results = done.into_inner().expect("results");
    results.sort_by_key(|(i, _)| *i);
    let mut objects = Vec::with_capacity(count);
    let mut reqs = Vec::with_capacity(count);
    let mut load_warnings = Vec::new();
    for (_, r) in results {
        let (o, w) = r.map_err(StreamError::Load)?;
        for (analysis, requirements) in o {
            objects.push(analysis);
            reqs.push(requirements);
        }
        load_warnings.extend(w);
    }
    check_program_names(&objects, opts).map_err(StreamError::Analysis)?;
    let mut total = Requirements::union(reqs);
    total.warnings.splice(0..0, load_warnings);
    // (one object: the union is its requirements, and so is the delegation)
    let delegation = match objects.as_slice() {
        [one] => one.delegation.clone(),
        _ => delegation_of(&total, opts.with_optional, rules),
    };
    Ok(Analysis {
        loader: opts.loader.clone(),
        objects,
        requirements: total,
        delegation,
        with_optional: opts.with_optional,
    })
}

/// `--program` names must exist somewhere.
fn check_program_names(objects: &[ObjectAnalysis], opts: &Options) -> Result<(), AnalysisError> {
    for name in &opts.programs {
        if !objects.iter().any(|o| o.object.program(name).is_some()) {
            let all: Vec<&str> =
                objects.iter().flat_map(|o| o.object.programs.iter().map(|p| p.name.as_str())).collect();
            let mut close: Vec<&str> = all.iter().copied().filter(|n| similar(n, name)).collect();
            close.sort();
            close.dedup();
            let help = if close.is_empty() {
                format!("the programs are: {}", Escaped(&all.join(", ")))
            } else {
                format!("did you mean {}?", Escaped(&close.join(" or ")))
            };
            return Err(AnalysisError::UnknownProgram {
                name: name.clone(),
                objects: objects.iter().map(|o| o.path.as_str()).collect::<Vec<_>>().join(", "),
                help,
            });
        }
    }
    Ok(())
}

fn analyse_one(
    path: String,
    mut object: Object,
    opts: &Options,
    versions: &[Option<Version>],
    rules: &Rules,
    texts: &Texts,
) -> (ObjectAnalysis, Requirements) {
    let selected: BTreeSet<String> = object
        .programs
        .iter()
        .filter(|p| opts.programs.is_empty() || opts.programs.contains(&p.name))
        .map(|p| p.name.clone())
        .collect();
    // What the instructions use does not depend on the libbpf version: decode them once.
    let uses = program_uses(&object, rules);
    let newest = *versions.last().expect("at least one version");
    let newest_matched = section_rules_of(&object, rules, newest);
    let mut programs = classify_matched(&object, &uses, rules, &newest_matched);
    let mut reqs = Requirements::default();
    if !selected.is_empty() {
        // Which section rule each program matches: versions that match the same rules see
        // the programs as the newest version does (`programs`, None here); the others get
        // views of their own.
        let own_view: Vec<Option<Vec<ProgramInfo>>> = versions
            .iter()
            .map(|v| {
                let matched = if *v == newest { None } else { Some(section_rules_of(&object, rules, *v)) };
                matched.filter(|m| *m != newest_matched).map(|m| classify_matched(&object, &uses, rules, &m))
            })
            .collect();
        // what each load step's condition gives for the newest view
        let mut memo = requirements::StepMemo::default();
        let mut per_version: Vec<(Option<Version>, usize)> = Vec::new();
        // Versions whose section rules and load steps are the same for this object give the
        // same requirements: derive once per distinct behaviour, which is each program's
        // classification and the load steps that apply.
        let mut done: Vec<(&[ProgramInfo], TriggeredSteps, Requirements)> = Vec::new();
        for (v, own) in versions.iter().zip(&own_view) {
            let like = own.is_none();
            let infos: &[ProgramInfo] = own.as_deref().unwrap_or(&programs);
            let loader = match v {
                None => Loader::Raw,
                Some(v) => Loader::Libbpf(*v),
            };
            let steps = match loader {
                Loader::Libbpf(v) if like => {
                    requirements::triggered_steps_memo(&object, infos, &selected, v, rules, &mut memo)
                }
                Loader::Libbpf(v) => requirements::triggered_steps(&object, infos, &selected, v, rules),
                Loader::Raw => TriggeredSteps::default(),
            };
            let same = |(other, other_steps, _): &(&[ProgramInfo], TriggeredSteps, Requirements)| {
                *other_steps == steps && other.iter().zip(infos).all(|(a, b)| a.class() == b.class())
            };
            let at = match done.iter().position(same) {
                Some(i) => i,
                None => {
                    let r = derive_steps(&object, infos, &selected, loader, &steps, rules, texts);
                    done.push((infos, steps, r));
                    done.len() - 1
                }
            };
            per_version.push((*v, at));
        }
        // one behaviour for every version: nothing to annotate
        reqs = if done.len() == 1 {
            done.pop().expect("one").2
        } else {
            let distinct: Vec<Requirements> = done.into_iter().map(|(_, _, r)| r).collect();
            union_versions(&per_version, &distinct)
        };
    }
    // The instructions have been analysed: keep memory proportional to the summaries, not to
    // the sum of all objects' code.
    for f in object.programs.iter_mut().map(|p| &mut p.function).chain(object.subprograms.iter_mut()) {
        f.insns = Vec::new();
        f.relocs = Vec::new();
        f.lines = Vec::new();
    }
    object.section_names = Vec::new();
    // Call sites served the reasons; the report lists the helpers and kfuncs by name.
    drop(uses);
    for p in &mut programs {
        if let Some(u) = std::sync::Arc::get_mut(&mut p.uses) {
            u.helper_calls = Vec::new();
            u.kfunc_calls = Vec::new();
        }
    }
    let delegation = delegation_of(&reqs, opts.with_optional, rules);
    let warnings = reqs.warnings.clone();
    (ObjectAnalysis { path, object, programs, selected, warnings, delegation }, reqs)
}

fn delegation_of(reqs: &Requirements, with_optional: bool, rules: &Rules) -> Delegation {
    let optional = reqs.optional.iter().filter(|_| with_optional).flat_map(|o| &o.items);
    Delegation::from_needs(reqs.required.keys().chain(optional), rules)
}

/// Merges per-version requirements (`per_version`: each version with the index of its
/// requirements in `distinct`); reasons that hold for only some versions say which.
fn union_versions(per_version: &[(Option<Version>, usize)], distinct: &[Requirements]) -> Requirements {
    let n = per_version.len();
    let mut by_reason: BTreeMap<(&Need, &Reason), Vec<Version>> = BTreeMap::new();
    let mut out = Requirements::default();
    for (v, i) in per_version {
        let v = v.expect("libbpf versions");
        for (need, reasons) in &distinct[*i].required {
            for reason in reasons {
                by_reason.entry((need, reason)).or_default().push(v);
            }
        }
    }
    for r in distinct {
        out.optional.extend(r.optional.iter().cloned());
        out.add_warnings(r.warnings.iter().cloned());
    }
    for ((need, reason), vs) in by_reason {
        let mut reason = reason.clone();
        if vs.len() < n {
            reason.libbpf = Some(vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ").into());
        }
        match out.required.get_mut(need) {
            Some(rs) => rs.push(reason),
            None => {
                out.required.insert(need.clone(), vec![reason]);
            }
        }
    }
    // the version annotations can reorder a need's reasons
    out.normalize();
    out.prune_optional();
    out
}

/// Edit distance ≤ 2, or one contains the other.
fn similar(a: &str, b: &str) -> bool {
    a.contains(b) || b.contains(a) || crate::names::distance(a, b) <= 2
}
