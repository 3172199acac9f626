//! What a loader does through the token beyond an object's own maps and programs: its steps
//! (rules/loader/*.toml) — which ones an object triggers, and which of their alternatives the
//! delegation must hold, given what each fallback costs. One interpreter for every loader.
//!
//! A step succeeds when one of its alternatives is delegated. A fatal step must succeed. A
//! step with a fallback may fail unless its fallback breaks a program the step concerns
//! (`[[effect]] breaks`); failing, its fallback may take needs away (`drops`: the global-data
//! maps are not created) or change the programs' expected attach type (`attach`). A step with
//! `after = ID` is taken only when step ID succeeds. The choices depend on each other (an
//! alternative the rest of the delegation holds anyway costs nothing), so the steps are
//! decided in rounds over sets of need numbers until the result no longer changes; only the
//! last round's decisions become reasons.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::draft::{Draft, DraftOptional, IdSet, Interner, TextKey, Texts};
use super::kernel::{Prog, attach_reason};
use super::programs::ProgramInfo;
use super::requirements::{Loader, Reason};
use crate::model::{ExternKind, MapOrigin, Object, SharedStr};
use crate::rules::{
    AttachChange, Condition, Dropped, EffectRule, Fallback, LoaderModel, LoaderStep, MapCreation, OnFailure,
    ProgramPredicate, Rules, Version,
};
use crate::vocab::{ListKind, Need};

/// Whether a map is an arena (BPF_MAP_TYPE_ARENA), by the kernel's name of its type.
pub(crate) fn is_arena(map: &crate::model::Map, rules: &Rules) -> bool {
    rules.enums.name_of(ListKind::Maps, map.map_type) == Some("arena")
}

/// Per map of `obj`: whether `loader` creates it when the `selected` programs are loaded.
///
/// libbpf (`maps = "all"`) creates every map of the object. cilium/ebpf (`maps = "requested"`)
/// creates what bpf2go's generated code requests and what the loaded programs reference: for
/// the `whole` object (no `--program`), every map whose name does not start with '.' and every
/// data section holding a variable the Go code can name; for a selection of programs (a Go
/// program that requests those alone), the maps they reference.
/// A map-in-map brings its inner template.
pub(crate) fn created_maps(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    whole: bool,
    loader: Loader,
) -> Vec<bool> {
    let requested = match loader {
        Loader::Model { model, .. } => model.header.maps == MapCreation::Requested,
        Loader::Raw => false,
    };
    if !requested {
        return vec![true; obj.maps.len()];
    }
    let mut created: Vec<bool> = obj
        .maps
        .iter()
        .map(|m| {
            whole
                && m.origin != MapOrigin::InnerTemplate
                && (if m.is_internal() { m.variables } else { !m.name.starts_with('.') })
        })
        .collect();
    for p in programs.iter().filter(|p| selected.contains(&p.name)) {
        for name in &p.uses.maps {
            if let Some(i) = obj.maps.iter().position(|m| m.name == *name) {
                created[i] = true;
            }
        }
    }
    for i in 0..obj.maps.len() {
        if created[i]
            && let Some(inner) = obj.maps[i].inner
            && inner < created.len()
        {
            created[inner] = true;
        }
    }
    created
}

/// The steps a loader version takes for an object and a selection of its programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggeredSteps {
    /// (index in the model's steps, the selected programs that trigger it: indexes into the
    /// selection; empty when the step happens at object level)
    pub steps: Vec<(usize, Vec<usize>)>,
}

/// Whether each step (by index in the model's steps) is triggered, for one object, selection
/// and classification of its programs: the same whichever version takes the step.
pub(crate) type StepMemo = Vec<Option<Option<Vec<usize>>>>;

/// The facts of an object a step's condition reads.
pub(crate) struct Scope<'a> {
    pub obj: &'a Object,
    /// Every program of the object (libbpf sanitizes them all).
    pub all: &'a [ProgramInfo],
    /// The selected programs.
    pub progs: Vec<&'a ProgramInfo>,
    /// Per map of the object: whether the loader creates it.
    pub created: &'a [bool],
    pub rules: &'a Rules,
}

impl Scope<'_> {
    fn created_maps(&self) -> impl Iterator<Item = &crate::model::Map> {
        self.obj.maps.iter().zip(self.created).filter(|(_, c)| **c).map(|(m, _)| m)
    }
}

/// Which selected programs a step's `when` condition triggers for, as indexes into the
/// selection. `None`: not triggered. `Some(empty)`: triggered at object level (or only by
/// programs that are not loaded).
fn triggered(step: &LoaderStep, s: &Scope) -> Option<Vec<usize>> {
    let obj = s.obj;
    let object_level = |b: bool| if b { Some(Vec::new()) } else { None };
    let progs_where = |f: &dyn Fn(&ProgramInfo) -> bool| {
        let v: Vec<usize> = s.progs.iter().enumerate().filter(|(_, p)| f(p)).map(|(i, _)| i).collect();
        if v.is_empty() { None } else { Some(v) }
    };
    match &step.when {
        Condition::Always => Some(Vec::new()),
        // bpfcap's loads name the token path explicitly (opts.bpf_token_path /
        // LIBBPF_BPF_TOKEN_PATH), as a delegated service should: a failure to create the token
        // then fails the load instead of silently going on without it.
        Condition::TokenPathExplicit => Some(Vec::new()),
        Condition::TokenPathDefault => None,
        Condition::ObjectHasBtf => object_level(obj.has_btf),
        Condition::ObjectHasBtfExt => object_level(obj.has_btf && obj.has_btf_ext),
        Condition::ObjectHasGlobalData => object_level(s.created_maps().any(|m| m.is_internal())),
        Condition::ObjectHasRodata => {
            object_level(s.created_maps().any(|m| m.is_internal() && m.section.starts_with(".rodata")))
        }
        Condition::ObjectHasMaps => object_level(s.created_maps().next().is_some()),
        Condition::ObjectHasStructOps => object_level(s.created_maps().any(|m| m.origin == MapOrigin::StructOps)),
        Condition::ObjectHasArena => object_level(s.created_maps().any(|m| is_arena(m, s.rules))),
        Condition::ObjectHasKconfig => object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig)),
        Condition::ObjectHasKconfigExtern(n) => {
            object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig && e.name == *n))
        }
        Condition::ObjectHasKsyms => object_level(obj.externs.iter().any(|e| e.kind != ExternKind::Kconfig)),
        Condition::ObjectHasJumptables => object_level(obj.section_names.iter().any(|s| s == ".jumptables")),
        Condition::ObjectHasMapBtf => object_level(obj.has_btf && s.created_maps().any(|m| m.btf_key_value)),
        // Whether a loader must search module BTFs depends on the running kernel's vmlinux BTF
        // (a target missing from it); a host-independent analysis cannot know, and these calls
        // never carry the token anyway (see the step's comment).
        Condition::ModuleBtfLookup => None,
        Condition::ProgramHasName => progs_where(&|_| true),
        Condition::ProgramHasFuncInfo => {
            if obj.has_btf && obj.has_btf_ext {
                progs_where(&|p| p.prog_type.is_some())
            } else {
                None
            }
        }
        Condition::ProgramReferencesGlobalData => progs_where(&|p| references_global_data(obj, p)),
        Condition::ProgramSecFlag(flag) => progs_where(&|p| p.sec_flags.iter().any(|f| f == flag)),
        Condition::ProgramCallsHelper(hs) => {
            let calls = |p: &ProgramInfo| hs.iter().any(|h| p.uses.helpers.iter().any(|x| **x == **h));
            if s.all.iter().any(calls) {
                Some(s.progs.iter().enumerate().filter(|(_, p)| calls(p)).map(|(i, _)| i).collect())
            } else {
                None
            }
        }
        Condition::ProgramCallsAnyHelper => progs_where(&|p| !p.uses.helpers.is_empty()),
        Condition::ProgramType(t) => progs_where(&|p| p.prog_type.as_deref() == Some(t.as_str())),
    }
}

/// Whether a program references one of the object's global-data maps.
pub(crate) fn references_global_data(obj: &Object, p: &ProgramInfo) -> bool {
    p.uses.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && m.is_internal()))
}

/// [`triggered_steps`], remembering in `memo` what each step's condition gave (`memo` must
/// come from the same object, selection, classification and model).
pub(crate) fn triggered_steps_memo(model: &LoaderModel, v: Version, s: &Scope, memo: &mut StepMemo) -> TriggeredSteps {
    memo.resize(model.steps.len(), None);
    let mut out = TriggeredSteps::default();
    for (si, step) in model.steps.iter().enumerate().filter(|(_, st)| st.applies_to(v)) {
        if let Some(affected) = memo[si].get_or_insert_with(|| triggered(step, s)) {
            out.steps.push((si, affected.clone()));
        }
    }
    out
}

/// The steps loader `model` of version `v` takes for this object and selection.
pub(crate) fn triggered_steps(model: &LoaderModel, v: Version, s: &Scope) -> TriggeredSteps {
    triggered_steps_memo(model, v, s, &mut StepMemo::default())
}

/// What one step decided in a round; turned into reasons once the rounds agree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// A fatal step: alternative `alt` is required.
    Required { alt: usize },
    /// The fallback would break the programs (indexes into the selection): `alt` is required
    /// for them.
    Broken { alt: usize, progs: Vec<usize> },
    /// The step succeeds with what is delegated anyway: noted, not required.
    Note { alt: usize },
    /// The step may fail, at a cost; `reset` are the programs then loaded with expected attach
    /// type 0, `dropped` what is then not created.
    Optional { alt: usize, reset: Vec<usize>, dropped: Option<Dropped> },
    /// A step sent without the token: no delegation grants it.
    Tokenless,
    /// Not taken: the step it comes after failed.
    NotTaken,
}

impl Decision {
    fn succeeds(&self) -> bool {
        matches!(self, Decision::Required { .. } | Decision::Broken { .. } | Decision::Note { .. })
    }
}

/// What the rounds work on for one object.
pub(crate) struct Applied<'a> {
    pub obj: &'a Object,
    pub on: &'a SharedStr,
    pub progs: &'a [Prog<'a>],
    pub model: &'a LoaderModel,
    /// The index of the model in `rules.loaders` (reason texts are shared per loader).
    pub loader_index: usize,
    /// The steps the object triggers.
    pub triggered: &'a TriggeredSteps,
}

impl Applied<'_> {
    /// The triggered steps: (index in the model, the step, the programs it is for).
    fn steps(&self) -> Vec<(usize, &LoaderStep, &[usize])> {
        self.triggered.steps.iter().map(|(si, affected)| (*si, &self.model.steps[*si], affected.as_slice())).collect()
    }
}

/// What the rounds settled on for one object's steps, under one delegation of the others.
pub(crate) struct Decided {
    /// Per triggered step.
    decisions: Vec<Decision>,
    /// Per triggered step: the programs its fallback would break, and why.
    broken: Vec<Vec<(usize, String)>>,
    /// Per selected program: its load attach type's number, when it has a program type.
    attach_ids: Vec<Option<u32>>,
    /// The number of attach type 0.
    zero_id: u32,
    /// The needs the object requires for reasons of its own (every need but those its steps
    /// merely note as used): what the kernel checks (less the global-data maps' when a
    /// fallback drops them), what its steps require (the alternatives of the fatal steps and
    /// of those whose fallback breaks a program, attach type 0 when a fallback loads a program
    /// with it), and its programs' attach types as loaded.
    own: IdSet,
    /// The programs a fallback loads with expected attach type 0.
    reset: BTreeSet<usize>,
    /// Whether a fallback leaves the global-data maps out.
    dropped: bool,
}

impl Decided {
    /// See [`Decided::own`]'s field.
    pub(crate) fn own(&self) -> &IdSet {
        &self.own
    }
}

/// Adds to `set` the attach types the programs are loaded with (`attach_ids`, per program),
/// but those of the programs a fallback loads with attach type 0 instead (`reset`).
fn add_attach_types(set: &mut IdSet, attach_ids: &[Option<u32>], reset: &BTreeSet<usize>) {
    for (pi, at) in attach_ids.iter().enumerate() {
        if let Some(at) = at
            && !reset.contains(&pi)
        {
            set.insert(*at);
        }
    }
}

/// The selected programs a step's fallback breaks (its `[[effect]] breaks`), as indexes into
/// the selection; `affected` are the programs that trigger the step (none: every program).
fn broken_by(
    step: &LoaderStep,
    effect: Option<&EffectRule>,
    affected: &[usize],
    a: &Applied,
    rules: &Rules,
) -> Vec<(usize, String)> {
    let Some(effect) = effect else { return Vec::new() };
    if step.on_failure == OnFailure::Fatal {
        return Vec::new();
    }
    let scope: Vec<usize> = if affected.is_empty() { (0..a.progs.len()).collect() } else { affected.to_vec() };
    let mut out = Vec::new();
    for pi in scope {
        let p = a.progs[pi].info;
        for pred in &effect.breaks {
            let why = match pred {
                ProgramPredicate::UsesCallbacks => p.uses.callbacks.first().map(|c| match *c.function == *p.name {
                    true => format!("{} passes the callback {}", p.name, c.name),
                    false => format!("{} passes the callback {} (in {})", p.name, c.name, c.function),
                }),
                ProgramPredicate::ReferencesGlobalData => {
                    references_global_data(a.obj, p).then(|| format!("{} references global data", p.name))
                }
                ProgramPredicate::CannotCallReplacement => {
                    let Fallback::RewriteHelpers(pairs) = &step.fallback else { continue };
                    let ptype = p.prog_type.as_deref().unwrap_or("");
                    pairs
                        .iter()
                        .find(|(from, to)| {
                            p.uses.helpers.iter().any(|h| **h == **from)
                                && rules.helper_available(to, ptype) != Some(true)
                        })
                        .map(|(from, to)| {
                            format!(
                                "{} calls bpf_{from}, rewritten to bpf_{to}, which {ptype} programs cannot call",
                                p.name
                            )
                        })
                }
            };
            if let Some(why) = why {
                out.push((pi, why));
                break;
            }
        }
    }
    out
}

/// The alternative with the fewest items not already `have`; ties go to the first listed.
fn cheapest(alts: &[Vec<u16>], have: &dyn Fn(u32) -> bool) -> usize {
    alts.iter()
        .enumerate()
        .min_by_key(|(_, a)| a.iter().filter(|n| !have(u32::from(**n))).count())
        .map_or(0, |(i, _)| i)
}

/// The first alternative whose items are all `have`.
fn satisfied(alts: &[Vec<u16>], have: &dyn Fn(u32) -> bool) -> Option<usize> {
    alts.iter().position(|a| a.iter().all(|n| have(u32::from(*n))))
}

/// Decides the object's steps (`a.triggered`) on top of `base` (what the kernel checks for the
/// object, the global-data maps' needs apart; its interner numbers the attach types), with
/// `ambient` the needs the delegation holds for the other objects analysed with this one.
pub(crate) fn decide(a: &Applied, base: &mut Draft, ambient: &IdSet, rules: &Rules) -> Decided {
    let zero = rules.enums.name_of(ListKind::Attachments, 0).unwrap_or("0");
    let zero_id = base.ids.id(Some(ListKind::Attachments), zero);
    // the object's own needs, and the same without its global-data maps (when a fallback
    // drops them)
    let (base_all, base_without_internal) = (base.needed(), base.needed_without_internal());
    // each program's load attach type, when it has a program type
    let attach_ids: Vec<Option<u32>> = a
        .progs
        .iter()
        .map(|p| match (&p.info.prog_type, &p.info.load_attach_type) {
            (Some(_), Some(at)) => Some(base.ids.id(Some(ListKind::Attachments), at)),
            _ => None,
        })
        .collect();
    let model = a.model;
    let steps = a.steps();
    let effects: Vec<Option<&EffectRule>> = steps.iter().map(|(_, st, _)| model.effect(&st.fallback)).collect();
    let broken: Vec<Vec<(usize, String)>> =
        steps.iter().zip(&effects).map(|((_, st, affected), e)| broken_by(st, *e, affected, a, rules)).collect();
    // the position in `steps` of each step's `after`
    let after: Vec<Option<usize>> = steps
        .iter()
        .map(|(_, st, _)| st.after.as_deref().map(|id| steps.iter().position(|(_, s2, _)| s2.id == id)))
        .map(|p| p.map(|x| x.unwrap_or(usize::MAX)))
        .collect();

    // Whether a step can drop the global-data maps without breaking a program (none of them
    // uses the maps): the rounds then start from the maps dropped. Started from the maps
    // created, their needs would let the step that drops them succeed on those needs alone:
    // an answer that holds, but not the least one (libbpf's FEAT_GLOBAL_DATA probe fails
    // without map_create, the maps are skipped, and nothing needs them).
    let drops_harmlessly = effects
        .iter()
        .zip(&broken)
        .any(|(e, b)| e.and_then(|e| e.drops) == Some(Dropped::InternalMaps) && b.is_empty());
    // Rounds. `prev_by_step[k]`: what step k required in the previous round; `prev_all`:
    // everything that round needed; `prev_dropped`: whether it dropped the global-data maps.
    let mut prev_all = IdSet::default();
    prev_all.union_with(if drops_harmlessly { &base_without_internal } else { &base_all });
    prev_all.union_with(ambient);
    for at in attach_ids.iter().flatten() {
        prev_all.insert(*at);
    }
    let mut prev_by_step: Vec<IdSet> = vec![IdSet::default(); steps.len()];
    let mut prev_dropped = drops_harmlessly;
    let mut prev_reset: BTreeSet<usize> = BTreeSet::new();
    let mut prev_required = IdSet::default();
    let mut decisions: Vec<Decision> = Vec::new();
    for _round in 0..8 {
        decisions.clear();
        let mut by_step: Vec<IdSet> = vec![IdSet::default(); steps.len()];
        let mut now = IdSet::default();
        let mut reset: BTreeSet<usize> = BTreeSet::new();
        let mut dropped = false;
        let base_set = if prev_dropped { &base_without_internal } else { &base_all };
        // the object's own needs, every other step's needs of the previous round, and the
        // delegation of the others (an alternative those cover costs nothing, so it is
        // preferred; one the object covers itself is preferred to one only the others cover,
        // so that an object does not claim for itself an item another object brought)
        let mut own = base_set.clone();
        add_attach_types(&mut own, &attach_ids, &prev_reset);
        let mut others = own.clone();
        others.union_with(ambient);
        let other_steps = all_but_each(&prev_by_step);
        for (k, (_, step, affected)) in steps.iter().enumerate() {
            if let Some(j) = after[k]
                && !decisions.get(j).is_some_and(Decision::succeeds)
            {
                decisions.push(Decision::NotTaken);
                continue;
            }
            let alts = &step.alternative_ids;
            if alts.is_empty() {
                decisions.push(Decision::Tokenless);
                continue;
            }
            let mut core = others.clone();
            core.union_with(&other_steps[k]);
            let mut own_core = own.clone();
            own_core.union_with(&other_steps[k]);
            let in_core = |n: u32| core.contains(n);
            let in_own = |n: u32| own_core.contains(n);
            let in_prev = |n: u32| prev_all.contains(n);
            let sat =
                satisfied(alts, &in_own).or_else(|| satisfied(alts, &in_core)).or_else(|| satisfied(alts, &in_prev));
            let fatal = step.on_failure == OnFailure::Fatal;
            let decision = if fatal || !broken[k].is_empty() {
                let alt = sat.unwrap_or_else(|| cheapest(alts, &in_core));
                for n in &alts[alt] {
                    by_step[k].insert(u32::from(*n));
                    now.insert(u32::from(*n));
                }
                if fatal {
                    Decision::Required { alt }
                } else {
                    Decision::Broken { alt, progs: broken[k].iter().map(|(p, _)| *p).collect() }
                }
            } else if let Some(alt) = sat {
                Decision::Note { alt }
            } else {
                let alt = cheapest(alts, &in_prev);
                let mut step_reset = Vec::new();
                if effects[k].and_then(|e| e.attach) == Some(AttachChange::Zero) {
                    let scope: Vec<usize> =
                        if affected.is_empty() { (0..a.progs.len()).collect() } else { affected.to_vec() };
                    for pi in scope {
                        let p = a.progs[pi].info;
                        if p.load_attach_type.is_some() && !p.attach_zero {
                            reset.insert(pi);
                            step_reset.push(pi);
                            by_step[k].insert(zero_id);
                            now.insert(zero_id);
                        }
                    }
                }
                let drop = effects[k].and_then(|e| e.drops);
                dropped |= drop == Some(Dropped::InternalMaps);
                Decision::Optional { alt, reset: step_reset, dropped: drop }
            };
            decisions.push(decision);
        }
        let mut all = if dropped { base_without_internal.clone() } else { base_all.clone() };
        all.union_with(ambient);
        all.union_with(&now);
        add_attach_types(&mut all, &attach_ids, &reset);
        let settled = all == prev_all && dropped == prev_dropped && reset == prev_reset;
        prev_all = all;
        prev_by_step = by_step;
        prev_dropped = dropped;
        prev_reset = reset;
        prev_required = now;
        if settled {
            break;
        }
    }
    let mut own = if prev_dropped { base_without_internal } else { base_all };
    own.union_with(&prev_required);
    add_attach_types(&mut own, &attach_ids, &prev_reset);
    Decided { decisions, broken, attach_ids, zero_id, own, reset: prev_reset, dropped: prev_dropped }
}

/// For each set of `sets`, the union of all the others (the union of those before it and of
/// those after it).
fn all_but_each(sets: &[IdSet]) -> Vec<IdSet> {
    let mut before = IdSet::default();
    let mut out: Vec<IdSet> = sets
        .iter()
        .map(|s| {
            let b = before.clone();
            before.union_with(s);
            b
        })
        .collect();
    let mut after = IdSet::default();
    for (k, s) in sets.iter().enumerate().rev() {
        out[k].union_with(&after);
        after.union_with(s);
    }
    out
}

/// The decisions `d` of the object's steps, as reasons, optional items and warnings in `base`.
pub(crate) fn explain(a: &Applied, base: &mut Draft, d: &Decided, rules: &Rules, texts: &Texts) {
    let model = a.model;
    let steps = a.steps();
    let Decided { decisions, broken, attach_ids, zero_id, .. } = d;
    let zero_id = *zero_id;
    let zero = rules.enums.name_of(ListKind::Attachments, 0).unwrap_or("0");
    let title = &model.header.title;
    let li = a.loader_index;
    let mut warnings = Vec::new();
    for ((_, step, _), d) in steps.iter().zip(decisions) {
        if *d == Decision::Tokenless && step.on_failure == OnFailure::Fatal {
            // Sent without the token: no delegation can grant it.
            warnings.push(format!(
                "{}: {title} step {} ({}) does not go through the token; it needs the loader's own privileges",
                a.obj.name,
                step.id,
                lc_first(&step.what)
            ));
        }
    }
    let step_id = |k: usize| texts.get(TextKey::StepId(li, steps[k].0), || steps[k].1.id.clone());
    let step_reason = |k: usize, text: SharedStr, program: Option<&Prog>| Reason {
        object: a.on.clone(),
        program: program.map(|p| p.name.clone()),
        section: program.map(|p| p.section.clone()),
        loader_step: Some(step_id(k)),
        text,
        ..Reason::default()
    };
    let alt_ids = |k: usize, alt: usize| steps[k].1.alternative_ids[alt].iter().map(|n| u32::from(*n));
    let alt_needs = |ids: &Interner, k: usize, alt: usize| -> Arc<[Need]> {
        texts.alternative((li, steps[k].0, alt), || {
            let mut v: Vec<Need> = alt_ids(k, alt).map(|n| ids.need(n)).collect();
            v.sort(); // in the order of needs, not of their numbers
            v
        })
    };
    let who = |affected: &[usize]| {
        if affected.is_empty() {
            String::new()
        } else {
            format!(" (for {})", affected.iter().map(|i| &*a.progs[*i].name).collect::<Vec<_>>().join(", "))
        }
    };
    for (k, d) in decisions.iter().enumerate() {
        let (_, step, affected) = steps[k];
        match d {
            Decision::Required { alt } => {
                let make = || {
                    SharedStr::from(format!(
                        "{title} {}{}; the load fails if this is refused",
                        lc_first(&step.what),
                        who(affected)
                    ))
                };
                let text = if affected.is_empty() {
                    texts.get(TextKey::StepRequired(li, steps[k].0), || make().to_string())
                } else {
                    make()
                };
                for n in alt_ids(k, *alt) {
                    base.add_id(n, step_reason(k, text.clone(), None));
                }
            }
            Decision::Broken { alt, progs } => {
                let effect_why = model.effect(&step.fallback).map_or("", |e| e.why.as_str());
                for pi in progs {
                    let p = &a.progs[*pi];
                    let what = broken[k].iter().find(|(x, _)| x == pi).map_or("", |(_, w)| w.as_str());
                    let text = SharedStr::from(format!("{what}; if {title}'s step {} fails, {effect_why}", step.id));
                    // the call site of a rewritten helper, when that is what breaks
                    let site = match &step.fallback {
                        Fallback::RewriteHelpers(pairs) => p
                            .info
                            .uses
                            .helper_calls
                            .iter()
                            .filter(|c| pairs.iter().any(|(from, _)| *from == *c.name))
                            .min(),
                        _ => p.info.uses.callbacks.first(),
                    };
                    for n in alt_ids(k, *alt) {
                        base.add_id(
                            n,
                            Reason {
                                helper: site
                                    .filter(|_| matches!(step.fallback, Fallback::RewriteHelpers(_)))
                                    .map(|c| SharedStr::from(format!("bpf_{}", c.name))),
                                location: site.and_then(|s| s.location.clone()),
                                ..step_reason(k, text.clone(), Some(p))
                            },
                        );
                    }
                }
            }
            Decision::Note { alt } => {
                let text = texts.get(TextKey::StepNote(li, steps[k].0), || {
                    format!("also used by {title}: {}", lc_first(&step.what))
                });
                for n in alt_ids(k, *alt) {
                    base.add_id(n, Reason { note: true, ..step_reason(k, text.clone(), None) });
                }
            }
            Decision::Optional { alt, reset, .. } => {
                let mut items: Vec<u32> = alt_ids(k, *alt).collect();
                for &pi in reset {
                    let p = &a.progs[pi];
                    let at = p.info.load_attach_type.as_deref().unwrap_or_default();
                    items.push(base.ids.id(Some(ListKind::Attachments), at));
                    let needs = alt_needs(&base.ids, k, *alt);
                    base.add_id(
                        zero_id,
                        step_reason(
                            k,
                            SharedStr::from(format!(
                                "{title}'s probe ({}) fails without {}, so {title} loads {} with expected attach type 0 instead of {at}; the kernel reads 0 as {zero}",
                                step.id,
                                list_needs(&needs),
                                p.name
                            )),
                            Some(p),
                        ),
                    );
                }
                base.optional.push(DraftOptional {
                    items,
                    steps: vec![step_id(k)],
                    losses: vec![texts.get(TextKey::StepLost(li, steps[k].0), || step.lost.clone())],
                    reason: step_reason(
                        k,
                        if affected.is_empty() {
                            texts.get(TextKey::StepOptional(li, steps[k].0), || {
                                format!("{title} {}", lc_first(&step.what))
                            })
                        } else {
                            SharedStr::from(format!("{title} {}{}", lc_first(&step.what), who(affected)))
                        },
                        None,
                    ),
                });
            }
            Decision::Tokenless | Decision::NotTaken => {}
        }
    }
    for (pi, p) in a.progs.iter().enumerate() {
        if let (Some(_), Some(at)) = (&p.info.prog_type, &p.info.load_attach_type)
            && !d.reset.contains(&pi)
            && attach_ids[pi].is_some()
        {
            base.add_list(ListKind::Attachments, at, attach_reason(a.on, p, at, &model.header.title));
        }
    }
    base.drop_internal(d.dropped);
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    base.late_warnings = warnings;
}

fn list_needs(needs: &[Need]) -> String {
    needs.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

pub(crate) fn lc_first(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u32]) -> IdSet {
        let mut s = IdSet::default();
        for id in ids {
            s.insert(*id);
        }
        s
    }

    #[test]
    fn all_but_each_is_the_union_of_the_others() {
        // (300: a number beyond the bit set, an item only an object names)
        let sets = [set(&[1, 2]), set(&[]), set(&[2, 300]), set(&[70])];
        let got = all_but_each(&sets);
        assert_eq!(got, [set(&[2, 70, 300]), set(&[1, 2, 70, 300]), set(&[1, 2, 70]), set(&[1, 2, 300])]);
        assert!(all_but_each(&[]).is_empty());
        assert_eq!(all_but_each(&[set(&[5])]), [set(&[])]);
    }
}
