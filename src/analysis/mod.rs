//! Analysis: object model → requirements with provenance, under the loader that will load each
//! object (chosen per object with `--loader auto`) → delegation. Objects analysed together are
//! solved as one: each object's loader is run again under what the others need, until no
//! object's needs change.

pub mod calls;
pub mod choice;
mod draft;
pub mod gates;
mod kernel;
pub mod loader;
pub mod memory;
pub mod programs;
pub mod requirements;
#[cfg(test)]
mod solver_tests;

use std::collections::{BTreeMap, BTreeSet};

use miette::Diagnostic;
use thiserror::Error;

use crate::delegation::Delegation;
use crate::model::{Object, SharedStr};
use crate::rules::{LoaderModel, Rules, Version};
use crate::text::Escaped;
use crate::vocab::Need;
pub use choice::{ChoiceError, LoaderChoice, LoaderSpec, ObjectLoader, parse_libbpf_versions, parse_loader};
use draft::{Draft, Texts};
use loader::{Scope, StepMemo, TriggeredSteps};
use programs::{ProgramInfo, ProgramUses, classify_matched, program_uses, section_rules_of};
use requirements::{Loader, Reason, Requirements};

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

    #[error(transparent)]
    #[diagnostic(transparent)]
    Choice(#[from] ChoiceError),

    #[error("{}: too complex to analyse: {}", Escaped(.path), Escaped(.why))]
    #[diagnostic(
        code(bpfcap::analyze::too_complex),
        help(
            "bpfcap bounds the work of analysing one object (docs/limits.md); objects built by clang stay far below it"
        )
    )]
    TooComplex { path: String, why: String },
}

/// One object's analysis.
#[derive(Debug, Clone)]
pub struct ObjectAnalysis {
    pub path: String,
    pub object: Object,
    /// The loader it was analysed for, and why.
    pub loader: ObjectLoader,
    /// Programs as the newest selected version of its loader sees them.
    pub programs: Vec<ProgramInfo>,
    pub selected: BTreeSet<String>,
    /// What the object's analysis warns about. (Its requirements, with their reasons, are in
    /// the [`Analysis`]'s union; `delegation` is what they come to for this object alone.)
    pub warnings: Vec<String>,
    pub delegation: Delegation,
    /// For a loader that takes no token: the capabilities the process needs in the initial
    /// user namespace (its requirements are then not part of the delegation).
    pub host_capabilities: Vec<String>,
}

impl ObjectAnalysis {
    /// Where the object's bytes are: where the input read them, or the file its path names (an
    /// object the caller read itself).
    pub fn source(&self) -> crate::model::ObjectRef {
        self.object.source.clone().unwrap_or_else(|| crate::model::ObjectRef::whole(&self.path, &self.object.name))
    }
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub loader: LoaderChoice,
    pub objects: Vec<ObjectAnalysis>,
    /// The union over all objects whose loader takes a token.
    pub requirements: Requirements,
    pub delegation: Delegation,
    /// The union of the objects' host capabilities (loaders that take no token).
    pub host_capabilities: Vec<String>,
    pub with_optional: bool,
}

impl Analysis {
    /// The loaders the objects were analysed for ("libbpf 1.5-1.7", "libbpf 1.7, cilium/ebpf
    /// 0.22"), in the order they first appear; the choice itself when there are no objects.
    pub fn loader_description(&self, rules: &Rules) -> String {
        let mut seen: Vec<String> = Vec::new();
        for o in &self.objects {
            let d = o.loader.describe(rules);
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        if seen.is_empty() { self.loader.describe(rules) } else { seen.join(", ") }
    }
}

/// Analyses a set of objects; the result's delegation is the union of all of them.
/// ([`Analyser::analyse`] with an analyser of its own.)
pub fn analyse(inputs: Vec<(String, Object)>, opts: &Options, rules: &Rules) -> Result<Analysis, AnalysisError> {
    Analyser::new(rules).analyse(inputs, opts)
}

/// What one work item of [`Analyser::analyse_stream`] gives: its objects (display path, model) and
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

/// Analyses objects under one set of rules. It keeps the reason texts that depend on the rules
/// alone (a capability's reason for a program type, a loader step's), made the first time an
/// analysis needs them and shared by every analysis it runs after: a program that analyses
/// objects one at a time (an image scanner) makes them once, as it reads the rules once.
pub struct Analyser<'r> {
    rules: &'r Rules,
    texts: Texts,
}

impl<'r> Analyser<'r> {
    pub fn new(rules: &'r Rules) -> Self {
        Analyser { rules, texts: Texts::default() }
    }

    /// Analyses a set of objects; the result's delegation is the union of all of them.
    pub fn analyse(&self, inputs: Vec<(String, Object)>, opts: &Options) -> Result<Analysis, AnalysisError> {
        let inputs = crate::workers::TakeOnce::new(inputs);
        let load = |i: usize| -> Result<Loaded, std::convert::Infallible> {
            Ok(Loaded { objects: vec![inputs.take(i)], warnings: Vec::new() })
        };
        match self.analyse_stream(inputs.len(), load, opts) {
            Ok(a) => Ok(a),
            Err(StreamError::Analysis(e)) => Err(e),
            Err(StreamError::Load(never)) => match never {},
        }
    }

    /// Analyses objects as they are produced: `load(i)` gives the objects of work item `i`
    /// (`0..count`; a file, say). Items are loaded and analysed on every available core, each
    /// object's instructions are dropped once analysed, and only the items in progress are held
    /// whole, so memory follows the largest items, not the sum of all of them. The result keeps
    /// item order: objects, and the items' warnings ahead of the analysis's own. When items fail
    /// to load, the error of the first of them (in item order) is returned.
    pub fn analyse_stream<E: Send>(
        &self,
        count: usize,
        load: impl Fn(usize) -> Result<Loaded, E> + Sync,
        opts: &Options,
    ) -> Result<Analysis, StreamError<E>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (rules, texts) = (self.rules, &self.texts);
        // the first failed item so far: items after it need not be loaded
        let first_error = AtomicUsize::new(usize::MAX);
        let progress = crate::progress::Progress::new("analysing", count);
        let items: Vec<usize> = (0..count).collect();
        // per item: its objects prepared, its warnings, and the first object it left out for the
        // work its analysis would take (path, why); None: not loaded, after a failed item
        let results = crate::workers::map(&items, |&i| {
            if i > first_error.load(Ordering::Relaxed) {
                return None;
            }
            let result = match load(i) {
                Ok(loaded) => {
                    let mut warnings = loaded.warnings;
                    let mut prepared = Vec::with_capacity(loaded.objects.len());
                    let mut too_complex = None;
                    for (path, object) in loaded.objects {
                        // an object whose analysis would cost more than the bound is left out,
                        // said so (an error below when nothing else is left)
                        match calls::check_work(&object) {
                            Ok(()) => prepared.push(prepare(path, object, opts, rules, texts)),
                            Err(why) => {
                                warnings.push(format!("skipped: {}: too complex: {}", Escaped(&path), why));
                                too_complex.get_or_insert((path, why));
                            }
                        }
                    }
                    Ok((prepared, warnings, too_complex))
                }
                Err(e) => {
                    first_error.fetch_min(i, Ordering::Relaxed);
                    Err(e)
                }
            };
            progress.tick();
            Some(result)
        });
        progress.finish();
        let mut prepared = Vec::with_capacity(count);
        let mut load_warnings = Vec::new();
        let mut too_complex = None;
        for r in results.into_iter().flatten() {
            let (o, w, t) = r.map_err(StreamError::Load)?;
            prepared.extend(o);
            load_warnings.extend(w);
            too_complex = too_complex.or(t);
        }
        if let (true, Some((path, why))) = (prepared.is_empty(), too_complex) {
            return Err(StreamError::Analysis(AnalysisError::TooComplex { path, why }));
        }
        check_program_names(prepared.iter().map(|p| (p.path.as_str(), &p.object)), opts)
            .map_err(StreamError::Analysis)?;
        let unsettled = solve_union(&mut prepared, rules);
        let mut objects = Vec::with_capacity(prepared.len());
        let mut reqs = Vec::with_capacity(prepared.len());
        let mut tokenless_warnings = Vec::new();
        for (analysis, requirements) in crate::workers::map_owned(prepared, |p| finish(p, opts, rules, texts)) {
            if analysis.loader.token() {
                reqs.push(requirements);
            } else {
                tokenless_warnings.extend(analysis.warnings.iter().cloned());
            }
            objects.push(analysis);
        }
        let mut total = Requirements::union(reqs);
        total.add_warnings(tokenless_warnings);
        total.add_warnings(unsettled);
        total.warnings.splice(0..0, load_warnings);
        // --program names found in some objects only: the others are left out, said so
        if !opts.programs.is_empty() && objects.len() > 1 {
            let empty: Vec<String> = objects.iter().filter(|o| o.selected.is_empty()).map(|o| o.path.clone()).collect();
            if !empty.is_empty() {
                total.add_warnings([format!(
                    "--program {} selects nothing in {} of the objects, which are left out: {}",
                    opts.programs.join(", "),
                    empty.len(),
                    empty.join(", ")
                )]);
            }
        }
        // (one object: the union is its requirements, and so is the delegation)
        let delegation = match objects.as_slice() {
            [one] => one.delegation.clone(),
            _ => delegation_of(&total, opts.with_optional, rules),
        };
        // the verifier's gates the instructions do not show, when the delegation lacks what they need
        if objects.iter().any(|o| o.loader.token() && !o.selected.is_empty()) {
            for u in &rules.verifier.unsettled {
                let lacking: Vec<&str> =
                    u.caps.iter().filter(|c| !delegation.capabilities.contains(c)).map(|c| c.as_str()).collect();
                if !lacking.is_empty() {
                    total.add_warnings([format!(
                        "the delegation holds no {}: the verifier gates that bpfcap cannot see in the instructions would refuse a program that meets one ({}); `bpfcap verify` settles them",
                        lacking.join(", "),
                        u.what
                    )]);
                }
            }
        }
        let host =
            objects.iter().flat_map(|o| o.host_capabilities.iter().map(|c| Need::Cap(c.clone()))).collect::<Vec<_>>();
        Ok(Analysis {
            loader: opts.loader.clone(),
            objects,
            requirements: total,
            delegation,
            host_capabilities: Delegation::from_needs(&host, rules).capabilities,
            with_optional: opts.with_optional,
        })
    }
}

/// `--program` names must exist somewhere.
fn check_program_names<'a>(
    objects: impl Iterator<Item = (&'a str, &'a Object)> + Clone,
    opts: &Options,
) -> Result<(), AnalysisError> {
    for name in &opts.programs {
        if !objects.clone().any(|(_, o)| o.program(name).is_some()) {
            let all: Vec<&str> =
                objects.clone().flat_map(|(_, o)| o.programs.iter().map(|p| p.name.as_str())).collect();
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
                objects: objects.map(|(path, _)| path).collect::<Vec<_>>().join(", "),
                help,
            });
        }
    }
    Ok(())
}

/// One object while the analysis runs: its facts, its loader's behaviour, what the kernel
/// checks for it, and its loader's steps as last decided (again while the union is solved).
/// Its requirements, with their reasons, are made once, from the last decisions
/// ([`Prepared::requirements`]).
struct Prepared<'r> {
    path: String,
    object: Object,
    loader: ObjectLoader,
    /// The loader's rules; None: analysed raw (`--loader raw`, or a loader that takes no token).
    model: Option<&'r LoaderModel>,
    /// Programs as the newest version sees them.
    programs: Vec<ProgramInfo>,
    selected: BTreeSet<String>,
    /// The distinct behaviours of the loader's versions for this object.
    behaviours: Vec<Behaviour<'r>>,
    /// Each version, with the index of its behaviour.
    per_version: Vec<(Version, usize)>,
    /// The needs through which the rest of the delegation can change this object's answer: the
    /// items of its loader steps' alternatives.
    sensitive: BTreeSet<Need>,
    /// The needs of the other objects, among `sensitive`, its steps were last decided with.
    ambient: Vec<Need>,
    /// What preparing it found to say (programs loaded although not asked for).
    warnings: Vec<String>,
}

/// Versions whose section rules and steps are the same for an object give the same
/// requirements: derived once.
struct Behaviour<'r> {
    /// The version's own view of the programs (None: [`Prepared::programs`]).
    view: Option<Vec<ProgramInfo>>,
    steps: TriggeredSteps,
    /// What the kernel checks for the object as this behaviour loads it.
    kernel: Draft<'r>,
    /// The loader's steps, decided with [`Prepared::ambient`] (None: raw).
    decided: Option<loader::Decided>,
}

impl Prepared<'_> {
    /// Decides every behaviour's loader steps again with `ambient`.
    fn decide(&mut self, ambient: Vec<Need>, rules: &Rules) {
        let on: SharedStr = self.object.name.as_str().into();
        if let Some(model) = self.model {
            for b in &mut self.behaviours {
                let infos = b.view.as_deref().unwrap_or(&self.programs);
                let progs = kernel::selected_progs(infos, &self.selected);
                let applied = applied(&self.object, &on, &progs, model, &b.steps, rules);
                let ambient_ids = b.kernel.ids.set_of(&ambient);
                b.decided = Some(loader::decide(&applied, &mut b.kernel, &ambient_ids, rules));
            }
        }
        self.ambient = ambient;
    }

    /// The needs the object requires for reasons of its own, with any of its versions (not
    /// those its loader's steps merely note as used).
    fn own_needs(&self) -> BTreeSet<Need> {
        let mut own = BTreeSet::new();
        for b in &self.behaviours {
            let kernel_only;
            let ids = match &b.decided {
                Some(d) => d.own(),
                None => {
                    kernel_only = b.kernel.needed();
                    &kernel_only
                }
            };
            own.extend(ids.iter().map(|id| b.kernel.ids.need(id)));
        }
        own
    }

    /// The requirements, with their reasons, as last decided: every behaviour's, merged.
    fn requirements(&mut self, rules: &Rules, texts: &Texts) -> Requirements {
        let on: SharedStr = self.object.name.as_str().into();
        let mut distinct: Vec<Requirements> = Vec::with_capacity(self.behaviours.len());
        for b in std::mem::take(&mut self.behaviours) {
            let Behaviour { view, steps, mut kernel, decided } = b;
            if let (Some(model), Some(decided)) = (self.model, &decided) {
                let infos = view.as_deref().unwrap_or(&self.programs);
                let progs = kernel::selected_progs(infos, &self.selected);
                let applied = applied(&self.object, &on, &progs, model, &steps, rules);
                loader::explain(&applied, &mut kernel, decided, rules, texts);
            }
            distinct.push(kernel.finish());
        }
        match distinct.len() {
            0 => Requirements::default(),
            // one behaviour for every version: nothing to annotate
            1 => distinct.pop().expect("one"),
            _ => union_versions(&self.per_version, &distinct),
        }
    }
}

/// What the loader's steps are decided and explained on, for one object.
fn applied<'a>(
    obj: &'a Object,
    on: &'a SharedStr,
    progs: &'a [kernel::Prog<'a>],
    model: &'a LoaderModel,
    triggered: &'a TriggeredSteps,
    rules: &Rules,
) -> loader::Applied<'a> {
    loader::Applied {
        obj,
        on,
        progs,
        model,
        loader_index: rules.loaders.iter().position(|l| l.name() == model.name()).expect("a loader of the rules"),
        triggered,
    }
}

/// The loader `model` (None: raw) at version `v`.
fn loader_at(model: Option<&LoaderModel>, v: Version) -> Loader<'_> {
    match model {
        Some(model) => Loader::Model { model, version: v },
        None => Loader::Raw,
    }
}

/// Reads an object under its loader: which loader and versions, how each version classifies
/// its programs, which steps each takes, which maps it creates; then, per behaviour, what the
/// kernel checks and the loader's steps decided for the object alone.
fn prepare<'r>(path: String, mut object: Object, opts: &Options, rules: &'r Rules, texts: &Texts) -> Prepared<'r> {
    let loader = choice::resolve(&opts.loader, object.loader_hint.as_ref(), rules);
    let mut selected: BTreeSet<String> = object
        .programs
        .iter()
        .filter(|p| opts.programs.is_empty() || opts.programs.contains(&p.name))
        .map(|p| p.name.clone())
        .collect();
    // A loader that takes no token is analysed raw: what the kernel checks for the object's maps
    // and programs, which the process must then be privileged for itself.
    let (model, versions): (Option<&LoaderModel>, Vec<Version>) = match &loader.spec {
        Some(spec) if spec.token => {
            (Some(rules.loader(&spec.name).expect("the choice names a loader of the rules")), spec.versions.clone())
        }
        _ => (None, vec![*rules.libbpf().default_versions().last().expect("libbpf's default versions")]),
    };
    let classifier = model.unwrap_or_else(|| rules.libbpf());
    // A loader that loads the struct_ops programs its created struct_ops maps use, whatever was
    // asked for: those programs are loaded too (said so).
    let mut warnings = Vec::new();
    let follows = loader
        .spec
        .as_ref()
        .and_then(|s| rules.loader(&s.name))
        .is_some_and(|m| m.header.struct_ops_programs_follow_maps);
    if follows && !opts.programs.is_empty() && !selected.is_empty() {
        let used: BTreeSet<&str> = object
            .maps
            .iter()
            .filter(|m| !m.section.starts_with('?'))
            .filter_map(|m| m.struct_ops.as_ref())
            .flat_map(|so| so.members.iter().map(|mm| mm.program.as_str()))
            .collect();
        let added: Vec<&str> = object
            .programs
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| used.contains(n) && !selected.contains(*n))
            .collect();
        if !added.is_empty() {
            warnings.push(format!(
                "{}: {} loads every struct_ops program a struct_ops map it creates uses, whatever was asked for (libbpf.c bpf_object_adjust_struct_ops_autoload): {} loaded too",
                Escaped(&path),
                classifier.header.title,
                added.join(", ")
            ));
            selected.extend(added.into_iter().map(String::from));
        }
    }
    // What the instructions use does not depend on the version: decode them once.
    let uses: Vec<std::sync::Arc<ProgramUses>> = program_uses(&object, rules);
    let newest = *versions.last().expect("at least one version");
    let newest_matched = section_rules_of(&object, classifier, newest);
    let programs = classify_matched(&object, &uses, classifier, &newest_matched, rules);
    let created =
        loader::created_maps(&object, &programs, &selected, opts.programs.is_empty(), loader_at(model, newest));
    let mut behaviours: Vec<Behaviour> = Vec::new();
    let mut per_version: Vec<(Version, usize)> = Vec::new();
    if !selected.is_empty() {
        // what each step's condition gives for the newest view
        let mut memo = StepMemo::default();
        for v in &versions {
            // Which section rule each program matches: versions that match the same rules see
            // the programs as the newest version does; the others get views of their own.
            let matched = if *v == newest { None } else { Some(section_rules_of(&object, classifier, *v)) };
            let view = matched
                .filter(|m| *m != newest_matched)
                .map(|m| classify_matched(&object, &uses, classifier, &m, rules));
            let infos: &[ProgramInfo] = view.as_deref().unwrap_or(&programs);
            let steps = match model {
                Some(model) => {
                    let scope = Scope {
                        obj: &object,
                        all: infos,
                        progs: infos.iter().filter(|p| selected.contains(&p.name)).collect(),
                        created: &created,
                        rules,
                    };
                    if view.is_none() {
                        loader::triggered_steps_memo(model, *v, &scope, &mut memo)
                    } else {
                        loader::triggered_steps(model, *v, &scope)
                    }
                }
                None => TriggeredSteps::default(),
            };
            let same = |b: &Behaviour| {
                b.steps == steps
                    && b.view.as_deref().unwrap_or(&programs).iter().zip(infos).all(|(x, y)| x.class() == y.class())
            };
            let at = match behaviours.iter().position(same) {
                Some(i) => i,
                None => {
                    let progs = kernel::selected_progs(infos, &selected);
                    let kernel = kernel::derive(&object, &progs, loader_at(model, *v), &created, rules, texts);
                    behaviours.push(Behaviour { view, steps, kernel, decided: None });
                    behaviours.len() - 1
                }
            };
            per_version.push((*v, at));
        }
    }
    let mut sensitive = BTreeSet::new();
    if let Some(model) = model {
        for b in &behaviours {
            for (si, _) in &b.steps.steps {
                for id in model.steps[*si].alternative_ids.iter().flatten() {
                    sensitive.insert(match rules.names.name(*id) {
                        (Some(k), n) => Need::list(k, n),
                        (None, c) => Need::Cap(c.to_string()),
                    });
                }
            }
        }
    }
    // The instructions have been analysed: keep memory proportional to the summaries, not to
    // the sum of all objects' code.
    for f in object.programs.iter_mut().map(|p| &mut p.function).chain(object.subprograms.iter_mut()) {
        f.insns = Vec::new();
        f.relocs = Vec::new();
        f.lines = Vec::new();
    }
    object.section_names = Vec::new();
    drop(uses);
    let mut p = Prepared {
        path,
        object,
        loader,
        model,
        programs,
        selected,
        behaviours,
        per_version,
        sensitive,
        ambient: Vec::new(),
        warnings,
    };
    p.decide(Vec::new(), rules);
    p
}

/// How many rounds the union may take: each object's loader is run again under what the
/// others need, until no object's needs change (two rounds, mostly).
const MAX_UNION_ROUNDS: usize = 8;

/// Solves the objects' union as one whole: an object's loader steps can succeed on what other
/// objects need (libbpf's expected-attach-type probe on another object's cgroup_sock, say),
/// which changes what it needs itself. Each round decides again the steps of every object whose
/// "others' needs" changed; the needs counted are those some object requires for a reason of
/// its own (a note that a step also uses an item counts for nothing). Returns a warning when
/// the rounds did not settle.
fn solve_union(prepared: &mut [Prepared], rules: &Rules) -> Vec<String> {
    let solvable: Vec<usize> = (0..prepared.len())
        .filter(|i| !prepared[*i].sensitive.is_empty() && !prepared[*i].selected.is_empty())
        .collect();
    if prepared.len() < 2 || solvable.is_empty() {
        return Vec::new();
    }
    let mut own: Vec<BTreeSet<Need>> =
        prepared.iter().map(|p| if p.loader.token() { p.own_needs() } else { BTreeSet::new() }).collect();
    for _round in 0..MAX_UNION_ROUNDS {
        let mut count: BTreeMap<&Need, usize> = BTreeMap::new();
        for n in own.iter().flatten() {
            *count.entry(n).or_default() += 1;
        }
        let updates: Vec<(usize, Vec<Need>)> = solvable
            .iter()
            .filter_map(|&i| {
                let p = &prepared[i];
                let ambient: Vec<Need> = p
                    .sensitive
                    .iter()
                    .filter(|n| count.get(n).copied().unwrap_or(0) > usize::from(own[i].contains(*n)))
                    .cloned()
                    .collect();
                (ambient != p.ambient).then_some((i, ambient))
            })
            .collect();
        if updates.is_empty() {
            return Vec::new();
        }
        // each object whose ambient changed decided again, on every core, and its own needs
        // (the updates are in object order, as `solvable` is: paired with the objects in one
        // pass)
        let mut updates = updates.into_iter().peekable();
        let mut changed: Vec<(usize, &mut Prepared, Vec<Need>)> = Vec::new();
        for (i, p) in prepared.iter_mut().enumerate() {
            if let Some((_, ambient)) = updates.next_if(|(u, _)| *u == i) {
                changed.push((i, p, ambient));
            }
        }
        let decided = crate::workers::map_owned(changed, |(i, p, ambient)| {
            p.decide(ambient, rules);
            (i, p.own_needs())
        });
        for (i, own_now) in decided {
            own[i] = own_now;
        }
    }
    vec![format!(
        "the objects' loaders still changed what they need after {MAX_UNION_ROUNDS} rounds of solving them together: confirm the delegation with `bpfcap verify`"
    )]
}

/// An object's analysis and its requirements, from its last decisions.
fn finish(mut p: Prepared, opts: &Options, rules: &Rules, texts: &Texts) -> (ObjectAnalysis, Requirements) {
    let mut requirements = p.requirements(rules, texts);
    let Prepared { path, object, loader, mut programs, selected, warnings, .. } = p;
    requirements.add_warnings(warnings);
    // Call sites served the reasons; the report lists the helpers and kfuncs by name.
    for p in &mut programs {
        if let Some(u) = std::sync::Arc::get_mut(&mut p.uses) {
            u.helper_calls = Vec::new();
            u.kfunc_calls = Vec::new();
        }
    }
    let (delegation, host_capabilities) = if loader.token() {
        (delegation_of(&requirements, opts.with_optional, rules), Vec::new())
    } else {
        // no token: what the kernel checks, in the initial user namespace
        let caps: Vec<Need> = requirements.required.keys().filter(|n| matches!(n, Need::Cap(_))).cloned().collect();
        let caps = Delegation::from_needs(&caps, rules).capabilities;
        if !selected.is_empty() {
            let why = loader
                .spec
                .as_ref()
                .and_then(|s| rules.loader(&s.name))
                .map_or("", |m| m.header.tokenless_why.as_str());
            requirements.add_warnings([format!(
                "{path}: {} takes no BPF token ({why}); the process needs {} in the initial user namespace, and no BPF delegation serves it",
                loader.describe(rules),
                caps.join(", ")
            )]);
        }
        (Delegation::default(), caps)
    };
    let warnings = requirements.warnings.clone();
    (ObjectAnalysis { path, object, loader, programs, selected, warnings, delegation, host_capabilities }, requirements)
}

fn delegation_of(reqs: &Requirements, with_optional: bool, rules: &Rules) -> Delegation {
    let optional = reqs.optional.iter().filter(|_| with_optional).flat_map(|o| &o.items);
    Delegation::from_needs(reqs.required.keys().chain(optional), rules)
}

/// Merges per-version requirements (`per_version`: each version with the index of its
/// requirements in `distinct`); reasons that hold for only some versions say which.
fn union_versions(per_version: &[(Version, usize)], distinct: &[Requirements]) -> Requirements {
    let n = per_version.len();
    let mut by_reason: BTreeMap<(&Need, &Reason), Vec<Version>> = BTreeMap::new();
    let mut out = Requirements::default();
    for (v, i) in per_version {
        for (need, reasons) in &distinct[*i].required {
            for reason in reasons {
                by_reason.entry((need, reason)).or_default().push(*v);
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
    a.contains(b) || b.contains(a) || crate::spelling::distance(a, b) <= 2
}
