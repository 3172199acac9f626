//! Requirement derivation: what the kernel checks for an object's own maps and programs, plus
//! (with the libbpf loader) what libbpf itself does through the token, every item with the
//! reasons that made it necessary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::programs::ProgramInfo;
use crate::model::{ExternKind, MapOrigin, Object, SharedStr};
use crate::rules::{Condition, ListKind, LoaderStep, Rules, Version};

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

/// Why something is needed. Its strings are shared (`SharedStr`): one object's name, program
/// or step id is attached to many reasons, and reasons are cloned when requirements merge.
#[derive(Debug, Clone, Eq, Serialize, Default)]
pub struct Reason {
    pub object: SharedStr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<SharedStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<SharedStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<SharedStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<SharedStr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kfunc: Option<SharedStr>,
    /// Source file and line, from BTF.ext line info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SharedStr>,
    /// The loader step (rules/loader/*.toml id) responsible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loader_step: Option<SharedStr>,
    /// The libbpf versions this reason holds for, when not all selected versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libbpf: Option<SharedStr>,
    pub text: SharedStr,
    /// A note that an item is also used by something that would cope without it; such a
    /// reason does not make the item required on its own.
    #[serde(skip)]
    pub note: bool,
}

/// Shared strings compare equal without reading them: reasons of one object share its name,
/// program and section strings.
#[inline]
fn cmp_str(a: &SharedStr, b: &SharedStr) -> std::cmp::Ordering {
    if SharedStr::ptr_eq(a, b) { std::cmp::Ordering::Equal } else { a.as_bytes().cmp(b.as_bytes()) }
}

/// [`cmp_str`] for optional fields (absent first, as `Option`'s order has it).
#[inline]
fn cmp_shared(a: Option<&SharedStr>, b: Option<&SharedStr>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => cmp_str(x, y),
        _ => a.is_some().cmp(&b.is_some()),
    }
}

/// Field by field in declaration order, as a derived order would be (a chain of comparisons,
/// not a loop over an array of fields: reasons are sorted in bulk).
impl Ord for Reason {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let opt = |a: &Option<SharedStr>, b: &Option<SharedStr>| cmp_shared(a.as_ref(), b.as_ref());
        cmp_str(&self.object, &other.object)
            .then_with(|| opt(&self.program, &other.program))
            .then_with(|| opt(&self.section, &other.section))
            .then_with(|| opt(&self.map, &other.map))
            .then_with(|| opt(&self.helper, &other.helper))
            .then_with(|| opt(&self.kfunc, &other.kfunc))
            .then_with(|| opt(&self.location, &other.location))
            .then_with(|| opt(&self.loader_step, &other.loader_step))
            .then_with(|| opt(&self.libbpf, &other.libbpf))
            .then_with(|| cmp_str(&self.text, &other.text))
            .then(self.note.cmp(&other.note))
    }
}

impl PartialOrd for Reason {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

/// Something libbpf can do without: leaving it out is tolerated, at a cost. Several loader
/// steps can fall back on the same missing items; they are merged into one entry that keeps
/// every step and every cost.
#[derive(Debug, Clone, Eq)]
pub struct OptionalNeed {
    pub items: Vec<Need>,
    /// The loader steps that fall back without the items, in the order they were merged.
    pub steps: Vec<SharedStr>,
    /// What each fallback loses (unique, in the order they were merged).
    pub losses: Vec<SharedStr>,
    pub reason: Reason,
}

/// Lists of shared strings, element by element, then by length (as slices compare).
fn cmp_strs(a: &[SharedStr], b: &[SharedStr]) -> std::cmp::Ordering {
    a.iter().zip(b).map(|(x, y)| cmp_str(x, y)).find(|o| o.is_ne()).unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Field by field, as a derived order would; shared strings compare without being read.
impl Ord for OptionalNeed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.items
            .cmp(&other.items)
            .then_with(|| cmp_strs(&self.steps, &other.steps))
            .then_with(|| cmp_strs(&self.losses, &other.losses))
            .then_with(|| self.reason.cmp(&other.reason))
    }
}

impl PartialOrd for OptionalNeed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for OptionalNeed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl OptionalNeed {
    /// The steps, comma-separated (the JSON `loader_step`).
    pub fn loader_step(&self) -> String {
        self.steps.join(", ")
    }

    /// What is lost, `; `-separated (the JSON `lost`).
    pub fn lost(&self) -> String {
        self.losses.join("; ")
    }
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
    /// Every need with its reasons (sorted, unique: a vector, as most needs have a few
    /// reasons per object and a tree set would allocate room for eleven).
    pub required: BTreeMap<Need, Vec<Reason>>,
    pub optional: BTreeSet<OptionalNeed>,
    pub warnings: Vec<String>,
}

impl Requirements {
    /// Sorts every need's reasons and drops duplicates.
    pub(crate) fn normalize(&mut self) {
        for rs in self.required.values_mut() {
            rs.sort();
            rs.dedup();
        }
    }

    pub fn needs(&self) -> BTreeSet<Need> {
        self.required.keys().cloned().collect()
    }

    /// The union of many requirement sets (every object of an analysis), optional items
    /// pruned. Each set's reasons are already sorted: collected per need and sorted once, they
    /// are runs that the sort merges.
    pub fn union(all: impl IntoIterator<Item = Requirements>) -> Requirements {
        let mut all = all.into_iter().peekable();
        let first = all.next().unwrap_or_default();
        if all.peek().is_none() {
            // one set: already sorted and pruned
            return first;
        }
        let mut all: Vec<Requirements> = std::iter::once(first).chain(all).collect();
        let mut out = Requirements::default();
        out.add_warnings(all.iter_mut().flat_map(|r| std::mem::take(&mut r.warnings)));
        // (collected, then built once: BTreeSet::append rebuilds the whole set each time)
        out.optional = all.iter_mut().flat_map(|r| std::mem::take(&mut r.optional)).collect();
        // In the order of their objects' names (every reason of a set names the same object):
        // each set's reasons are sorted, so concatenated in this order they are sorted already
        // unless two sets name the same object.
        let object_of = |r: &Requirements| r.required.values().flatten().next().map(|x| x.object.clone());
        all.sort_by_cached_key(object_of);
        // Set by set, each need's reasons moved out (the union grows as the sets shrink: a
        // tree's reasons are most of what an analysis holds).
        let mut sorted = true;
        for r in all {
            for (n, rs) in r.required {
                match out.required.get_mut(&n) {
                    Some(v) => {
                        sorted &= v.last().zip(rs.first()).is_none_or(|(a, b)| a < b);
                        v.extend(rs);
                    }
                    None => {
                        out.required.insert(n, rs);
                    }
                }
            }
        }
        if !sorted {
            out.normalize();
        }
        out.prune_optional();
        out
    }

    /// Appends warnings not already present, keeping first-seen order.
    pub fn add_warnings(&mut self, warnings: impl IntoIterator<Item = String>) {
        let mut seen: std::collections::HashSet<String> = self.warnings.iter().cloned().collect();
        for w in warnings {
            if seen.insert(w.clone()) {
                self.warnings.push(w);
            }
        }
    }

    /// Drops optional items that are required anyway, and merges entries that name the same
    /// items (several libbpf probes can fall back on the same missing item).
    pub fn prune_optional(&mut self) {
        let mut merged: BTreeMap<Vec<Need>, OptionalNeed> = BTreeMap::new();
        for mut o in std::mem::take(&mut self.optional) {
            o.items.retain(|i| !self.required.contains_key(i));
            o.items.sort();
            o.items.dedup();
            if o.items.is_empty() {
                continue;
            }
            match merged.get_mut(&o.items) {
                Some(m) => merge_fallbacks(&mut m.steps, &mut m.losses, o.steps, o.losses),
                None => {
                    merged.insert(o.items.clone(), o);
                }
            }
        }
        self.optional = merged.into_values().collect();
    }
}

/// Numbers for needs: the rules' [`crate::rules::NameIndex`], extended with the names an
/// object brings that the rules do not know (a struct_ops member index beyond the known
/// attach types).
struct Interner<'r> {
    names: &'r crate::rules::NameIndex,
    extra: Vec<Need>,
    /// (keyed by names from the object: std's hashing, which a crafted object cannot make collide)
    extra_ids: std::collections::HashMap<Need, usize>,
}

impl<'r> Interner<'r> {
    fn new(rules: &'r Rules) -> Self {
        Interner { names: &rules.names, extra: Vec::new(), extra_ids: Default::default() }
    }

    /// The number of a list item (`kind` Some) or capability (`kind` None).
    fn id(&mut self, kind: Option<ListKind>, name: &str) -> u32 {
        if let Some(id) = self.names.id(kind, name) {
            return u32::from(id);
        }
        let need = match kind {
            Some(k) => Need::list(k, name),
            None => Need::Cap(name.to_string()),
        };
        let pos = match self.extra_ids.get(&need) {
            Some(p) => *p,
            None => {
                self.extra.push(need.clone());
                self.extra_ids.insert(need, self.extra.len() - 1);
                self.extra.len() - 1
            }
        };
        (self.names.len() + pos) as u32
    }

    fn need(&self, id: u32) -> Need {
        let id = id as usize;
        if id >= self.names.len() {
            return self.extra[id - self.names.len()].clone();
        }
        match self.names.name(id as u16) {
            (Some(k), n) => Need::list(k, n),
            (None, c) => Need::Cap(c.to_string()),
        }
    }
}

/// A set of need numbers: a bit set for the first 256 (the rules name about 210), a sorted
/// list for any beyond (names only an object brings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct IdSet {
    bits: [u64; 4],
    more: Vec<u32>,
}

impl IdSet {
    fn insert(&mut self, id: u32) {
        match self.bits.get_mut((id / 64) as usize) {
            Some(w) => *w |= 1 << (id % 64),
            None => {
                if let Err(at) = self.more.binary_search(&id) {
                    self.more.insert(at, id);
                }
            }
        }
    }

    fn contains(&self, id: u32) -> bool {
        match self.bits.get((id / 64) as usize) {
            Some(w) => w & (1 << (id % 64)) != 0,
            None => self.more.binary_search(&id).is_ok(),
        }
    }

    fn union_with(&mut self, other: &IdSet) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
        for id in &other.more {
            self.insert(*id);
        }
    }
}

/// Requirements while they are derived: needs as numbers, every reason in one list, sorted
/// and grouped by need once, in [`Draft::finish`].
struct Draft<'r> {
    ids: Interner<'r>,
    reasons: Vec<(u32, Reason)>,
    optional: Vec<DraftOptional>,
    warnings: Vec<String>,
    /// warnings added unless already present (libbpf's steps)
    late_warnings: Vec<String>,
}

/// An [`OptionalNeed`] while it is derived: its items as need numbers.
struct DraftOptional {
    items: Vec<u32>,
    steps: Vec<SharedStr>,
    losses: Vec<SharedStr>,
    reason: Reason,
}

impl<'r> Draft<'r> {
    fn new(rules: &'r Rules) -> Self {
        Draft {
            ids: Interner::new(rules),
            // (a real object gives about 60)
            reasons: Vec::with_capacity(64),
            optional: Vec::new(),
            warnings: Vec::new(),
            late_warnings: Vec::new(),
        }
    }

    fn add_id(&mut self, id: u32, reason: Reason) {
        self.reasons.push((id, reason));
    }

    fn add_list(&mut self, kind: ListKind, name: &str, reason: Reason) {
        let id = self.ids.id(Some(kind), name);
        self.add_id(id, reason);
    }

    fn add_cap(&mut self, cap: &str, reason: Reason) {
        let id = self.ids.id(None, cap);
        self.add_id(id, reason);
    }

    /// The needs that have a reason so far.
    fn needed(&self) -> IdSet {
        let mut s = IdSet::default();
        for (id, _) in &self.reasons {
            s.insert(*id);
        }
        s
    }

    /// Sorts the reasons (by need, then reason), drops duplicates and prunes the optional
    /// items (as [`Requirements::prune_optional`] would, on numbers).
    fn finish(self) -> Requirements {
        let Draft { ids, reasons, optional, warnings, late_warnings } = self;
        // every need in use, in order (of needs, not of their numbers), and each number's rank
        let mut numbers: Vec<u32> =
            reasons.iter().map(|(id, _)| *id).chain(optional.iter().flat_map(|o| o.items.iter().copied())).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut needs: Vec<(Need, u32)> = numbers.iter().map(|id| (ids.need(*id), *id)).collect();
        needs.sort_unstable();
        let mut rank = vec![0u32; numbers.len()];
        for (r, (_, id)) in needs.iter().enumerate() {
            rank[numbers.binary_search(id).expect("a number of the list")] = r as u32;
        }
        let rank_of = |id: u32| rank[numbers.binary_search(&id).expect("a number of the list")];
        let mut count = vec![0usize; numbers.len()];
        for (id, _) in &reasons {
            count[rank_of(*id) as usize] += 1;
        }
        // the required needs (those with reasons), in order; `slot`: a rank's place among them
        let mut slot = vec![usize::MAX; needs.len()];
        let mut required: Vec<(Need, Vec<Reason>)> = Vec::new();
        for ((need, _), (r, c)) in needs.iter().zip(count.iter().enumerate()) {
            if *c > 0 {
                slot[r] = required.len();
                required.push((need.clone(), Vec::with_capacity(*c)));
            }
        }
        for (id, reason) in reasons {
            required[slot[rank_of(id) as usize]].1.push(reason);
        }
        // (equal reasons are alike in every field, and only one of them is kept: the order
        // among them does not matter)
        for (_, rs) in &mut required {
            rs.sort_unstable();
            rs.dedup();
        }
        // Optional items, as an ordered set of them would be: by items (ranks compare as
        // their needs do), steps, losses, reason; then those required anyway are dropped and
        // entries left with the same items merged, in that order.
        let mut entries: Vec<(Vec<u32>, DraftOptional)> =
            optional.into_iter().map(|o| (o.items.iter().map(|id| rank_of(*id)).collect(), o)).collect();
        let order = |(ka, a): &(Vec<u32>, DraftOptional), (kb, b): &(Vec<u32>, DraftOptional)| {
            ka.cmp(kb)
                .then_with(|| cmp_strs(&a.steps, &b.steps))
                .then_with(|| cmp_strs(&a.losses, &b.losses))
                .then_with(|| a.reason.cmp(&b.reason))
        };
        entries.sort_by(order);
        entries.dedup_by(|a, b| order(a, b).is_eq());
        let mut merged: BTreeMap<Vec<u32>, DraftOptional> = BTreeMap::new();
        for (mut items, o) in entries {
            items.retain(|r| slot[*r as usize] == usize::MAX);
            items.sort_unstable();
            items.dedup();
            if items.is_empty() {
                continue;
            }
            match merged.get_mut(&items) {
                Some(m) => merge_fallbacks(&mut m.steps, &mut m.losses, o.steps, o.losses),
                None => {
                    merged.insert(items, o);
                }
            }
        }
        let optional = merged
            .into_iter()
            .map(|(items, o)| OptionalNeed {
                items: items.iter().map(|r| needs[*r as usize].0.clone()).collect(),
                steps: o.steps,
                losses: o.losses,
                reason: o.reason,
            })
            .collect();
        let mut out = Requirements { required: required.into_iter().collect(), optional, warnings };
        out.add_warnings(late_warnings);
        out
    }
}

/// Merges an optional entry's steps and losses into another's (each kept once, in the order
/// they were merged).
fn merge_fallbacks(
    steps: &mut Vec<SharedStr>,
    losses: &mut Vec<SharedStr>,
    more_steps: Vec<SharedStr>,
    more_losses: Vec<SharedStr>,
) {
    for step in more_steps {
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    for lost in more_losses {
        if !losses.contains(&lost) {
            losses.push(lost);
        }
    }
}

/// The alternative with the fewest items not already `have`; ties go to the first listed.
fn cheapest(alts: &[Vec<u16>], have: &dyn Fn(u32) -> bool) -> Option<usize> {
    alts.iter().enumerate().min_by_key(|(_, a)| a.iter().filter(|n| !have(u32::from(**n))).count()).map(|(i, _)| i)
}

/// The first alternative whose items are all `have`.
fn satisfied(alts: &[Vec<u16>], have: &dyn Fn(u32) -> bool) -> Option<usize> {
    alts.iter().position(|a| a.iter().all(|n| have(u32::from(*n))))
}

/// Formats a [`SharedStr`] in a buffer the thread reuses: one allocation for the shared
/// string, where `format!(..).into()` makes a `String` and then copies it.
fn shared_fmt(args: std::fmt::Arguments) -> SharedStr {
    use std::fmt::Write;
    thread_local!(static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
    BUF.with(|b| match b.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.write_fmt(args).expect("formatting into a String");
            SharedStr::from(buf.as_str())
        }
        // (an argument that formats a shared string itself: not the case today)
        Err(_) => std::fmt::format(args).into(),
    })
}

/// `format!`, into a [`SharedStr`] (see [`shared_fmt`]).
macro_rules! shared {
    ($($arg:tt)*) => { shared_fmt(format_args!($($arg)*)) };
}

fn reason(obj: &SharedStr, text: String) -> Reason {
    Reason { object: obj.clone(), text: text.into(), ..Reason::default() }
}

/// The name of attach type value 0 (the value a program without an expected attach type has).
fn attach_zero_name(rules: &Rules) -> String {
    rules.enums.name_of(ListKind::Attachments, 0).unwrap_or("0").to_string()
}

/// Which selected programs a step's `when` condition triggers for, as indexes into `progs`.
/// `None`: not triggered. `Some(empty)`: triggered at object level (or only by programs that
/// are not loaded). `all` are every program of the object (libbpf sanitizes them all),
/// `progs` the selected.
fn triggered(
    step: &LoaderStep,
    obj: &Object,
    all: &[ProgramInfo],
    progs: &[&ProgramInfo],
) -> Result<Option<Vec<usize>>, String> {
    let object_level = |b: bool| if b { Some(Vec::new()) } else { None };
    let progs_where = |f: &dyn Fn(&ProgramInfo) -> bool| {
        let v: Vec<usize> = progs.iter().enumerate().filter(|(_, p)| f(p)).map(|(i, _)| i).collect();
        if v.is_empty() { None } else { Some(v) }
    };
    let internal = |m: &crate::model::Map| matches!(m.origin, MapOrigin::GlobalData | MapOrigin::Kconfig);
    Ok(match &step.condition {
        Condition::Always => Some(Vec::new()),
        // bpfcap's loads name the token path explicitly (opts.bpf_token_path /
        // LIBBPF_BPF_TOKEN_PATH), as a delegated service should: a failure to create the token
        // then fails the load instead of silently going on without it.
        Condition::TokenPathExplicit => Some(Vec::new()),
        Condition::TokenPathDefault => None,
        Condition::ObjectHasBtf => object_level(obj.has_btf),
        Condition::ObjectHasBtfExt => object_level(obj.has_btf && obj.has_btf_ext),
        Condition::ObjectHasGlobalData => object_level(obj.maps.iter().any(internal)),
        Condition::ObjectHasRodata => {
            object_level(obj.maps.iter().any(|m| internal(m) && m.section.starts_with(".rodata")))
        }
        Condition::ObjectHasMaps => object_level(!obj.maps.is_empty()),
        Condition::ObjectHasStructOps => object_level(obj.maps.iter().any(|m| m.origin == MapOrigin::StructOps)),
        Condition::ObjectHasArena => object_level(obj.maps.iter().any(|m| m.map_type == BPF_MAP_TYPE_ARENA)),
        Condition::ObjectHasKconfig => object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig)),
        Condition::ObjectHasKconfigExtern(n) => {
            object_level(obj.externs.iter().any(|e| e.kind == ExternKind::Kconfig && e.name == *n))
        }
        Condition::ObjectHasKsyms => object_level(obj.externs.iter().any(|e| e.kind != ExternKind::Kconfig)),
        Condition::ObjectHasJumptables => object_level(obj.section_names.iter().any(|s| s == ".jumptables")),
        // Whether libbpf must search module BTFs depends on the running kernel's vmlinux BTF
        // (a target missing from it); a host-independent analysis cannot know, and these calls
        // never carry the token anyway (see the step's comment).
        Condition::ModuleBtfLookup => None,
        Condition::ProgramHasName => progs_where(&|_| true),
        Condition::ProgramReferencesGlobalData => {
            progs_where(&|p| p.uses.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && internal(m))))
        }
        Condition::ProgramSecFlag(flag) => progs_where(&|p| p.sec_flags.iter().any(|f| f == flag)),
        Condition::ProgramCallsHelper(hs) => {
            let calls = |p: &ProgramInfo| hs.iter().any(|h| p.uses.helpers.iter().any(|x| **x == **h));
            if all.iter().any(calls) {
                Some(progs.iter().enumerate().filter(|(_, p)| calls(p)).map(|(i, _)| i).collect())
            } else {
                None
            }
        }
        Condition::ProgramType(t) => progs_where(&|p| p.prog_type.as_deref() == Some(t.as_str())),
        Condition::Unknown => {
            return Err(format!("rules: loader step {} has unknown condition `{}`", step.id, step.when));
        }
    })
}

const BPF_MAP_TYPE_ARENA: u32 = 33;

/// The steps libbpf `v` takes for an object and a selection of its programs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggeredSteps {
    /// (index in rules.libbpf, the selected programs that trigger it: indexes into the
    /// selection; empty when the step happens at object level)
    pub steps: Vec<(usize, Vec<usize>)>,
    /// What could not be decided: steps whose condition this bpfcap does not know.
    pub errors: Vec<String>,
}

/// The steps libbpf `v` takes for this object and selection.
pub fn triggered_steps(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    v: Version,
    rules: &Rules,
) -> TriggeredSteps {
    triggered_steps_memo(obj, programs, selected, v, rules, &mut StepMemo::default())
}

/// Whether each loader step (by index in rules.libbpf) is triggered, for one object, selection
/// and classification of its programs: the same whichever libbpf version takes the step.
pub(crate) type StepMemo = Vec<Option<Result<Option<Vec<usize>>, String>>>;

/// [`triggered_steps`], remembering in `memo` what each step's condition gave (`memo` must
/// come from the same object, selection and classification).
pub(crate) fn triggered_steps_memo(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    v: Version,
    rules: &Rules,
    memo: &mut StepMemo,
) -> TriggeredSteps {
    let progs: Vec<&ProgramInfo> = programs.iter().filter(|p| selected.contains(&p.name)).collect();
    memo.resize(rules.libbpf.len(), None);
    let mut out = TriggeredSteps::default();
    for (si, step) in rules.libbpf.iter().enumerate().filter(|(_, s)| s.applies_to(v)) {
        match memo[si].get_or_insert_with(|| triggered(step, obj, programs, &progs)) {
            Ok(Some(affected)) => out.steps.push((si, affected.clone())),
            Ok(None) => {}
            Err(e) => out.errors.push(e.clone()),
        }
    }
    out
}

/// Per (function, helper) string pointers: the `bpf_` name and one text per capability.
type CallTexts = crate::rules::HashMap<(*const u8, *const u8), (SharedStr, Vec<SharedStr>)>;

/// A selected program with its names shared by all of its reasons.
struct Prog<'a> {
    info: &'a ProgramInfo,
    name: SharedStr,
    section: SharedStr,
}

/// Reason texts that depend only on the rules, not on an object's names: built once per
/// analysis and shared by every object (and every worker).
#[derive(Debug, Default)]
pub struct Texts {
    map: std::sync::RwLock<crate::rules::HashMap<TextKey, SharedStr>>,
    /// the needs of a loader step's alternative (step index, alternative), sorted
    alternatives: std::sync::RwLock<AlternativeNeeds>,
}

type AlternativeNeeds = crate::rules::HashMap<(usize, usize), Arc<[Need]>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextKey {
    /// index in the token_create capabilities
    TokenCap(usize),
    /// program type number, index in its rule's capabilities
    ProgCap(u16, usize),
    /// map type number, index in its rule's capabilities
    MapCap(u16, usize),
    /// loader step index
    StepRequired(usize),
    StepNote(usize),
    StepOptional(usize),
    StepId(usize),
    StepLost(usize),
}

impl Texts {
    /// The texts of `rules`: shared by the whole process for the compiled-in rules (the only
    /// ones the program uses), a fresh cache for any other.
    pub fn of(rules: &Rules) -> Arc<Texts> {
        static SHARED: std::sync::OnceLock<Arc<Texts>> = std::sync::OnceLock::new();
        if std::ptr::eq(rules, crate::rules::rules()) {
            SHARED.get_or_init(Default::default).clone()
        } else {
            Arc::default()
        }
    }

    fn alternative(&self, key: (usize, usize), make: impl FnOnce() -> Vec<Need>) -> Arc<[Need]> {
        cached(&self.alternatives, key, || make().into())
    }

    fn get(&self, key: TextKey, make: impl FnOnce() -> String) -> SharedStr {
        cached(&self.map, key, || make().into())
    }
}

/// The value of `key` in a shared cache, made (once, mostly) when it is missing.
fn cached<K: std::hash::Hash + Eq, V: Clone>(
    map: &std::sync::RwLock<crate::rules::HashMap<K, V>>,
    key: K,
    make: impl FnOnce() -> V,
) -> V {
    if let Some(v) = map.read().expect("texts").get(&key) {
        return v.clone();
    }
    let v = make();
    map.write().expect("texts").entry(key).or_insert(v).clone()
}

/// Derives the requirements of one object for the selected programs.
pub fn derive(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    rules: &Rules,
) -> Requirements {
    derive_with(obj, programs, selected, loader, rules, &Texts::of(rules))
}

/// [`derive`], sharing rule-only reason texts through `texts`.
pub fn derive_with(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    rules: &Rules,
    texts: &Texts,
) -> Requirements {
    let steps = match loader {
        Loader::Libbpf(v) => triggered_steps(obj, programs, selected, v, rules),
        Loader::Raw => TriggeredSteps::default(),
    };
    derive_steps(obj, programs, selected, loader, &steps, rules, texts)
}

/// [`derive_with`] for a loader whose steps for this object and selection are known
/// (`steps`, from [`triggered_steps`]; ignored for [`Loader::Raw`]).
pub(crate) fn derive_steps(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    steps: &TriggeredSteps,
    rules: &Rules,
    texts: &Texts,
) -> Requirements {
    let on: SharedStr = obj.name.as_str().into();
    let progs: Vec<Prog> = programs
        .iter()
        .filter(|p| selected.contains(&p.name))
        .map(|p| Prog { info: p, name: p.name.as_str().into(), section: p.section.as_str().into() })
        .collect();
    let mut base = Draft::new(rules);
    base.warnings.extend(obj.warnings.iter().map(|w| format!("{}: {w}", obj.name)));

    // The token itself.
    for (i, cap) in rules.privileges.token_create.caps.iter().enumerate() {
        let text = texts.get(TextKey::TokenCap(i), || format!("creating a BPF token from the delegated bpffs needs {cap} in the bpffs's user namespace (kernel/bpf/token.c bpf_token_create)"));
        base.add_cap(cap, Reason { object: on.clone(), text, ..Reason::default() });
    }

    // Programs.
    for prog in &progs {
        let p = prog.info;
        let Some(ptype) = &p.prog_type else {
            base.warnings.push(format!(
                "{}: program '{}' in section '{}': no libbpf SEC() rule matches this section, so libbpf cannot load it without an explicit program type",
                obj.name, p.name, p.section
            ));
            continue;
        };
        let prog_reason = |text: SharedStr| Reason {
            object: on.clone(),
            program: Some(prog.name.clone()),
            section: Some(prog.section.clone()),
            text,
            ..Reason::default()
        };
        base.add_list(ListKind::Commands, "prog_load", prog_reason(shared!("loads program {}", p.name)));
        base.add_list(
            ListKind::Programs,
            ptype,
            prog_reason(shared!(
                "program {} in section '{}' is a {ptype} program (libbpf SEC(\"{}\"))",
                p.name,
                p.section,
                p.sec_pattern.as_deref().unwrap_or("?")
            )),
        );
        if let Some(rule) = rules.prog_rule(ptype) {
            let type_id = rules.names.id(Some(ListKind::Programs), ptype);
            for (i, c) in rule.caps.iter().enumerate() {
                let make = || format!("loading a {ptype} program needs {c} ({})", rule.why);
                let text = match type_id {
                    Some(t) => texts.get(TextKey::ProgCap(t, i), make),
                    None => make().into(),
                };
                base.add_cap(c, prog_reason(text));
            }
        }
        // The calls of one helper from one function share their texts (call sites differ only
        // in their location); program_uses gives one string per helper and function name.
        let mut call_texts: CallTexts = Default::default();
        for call in &p.uses.helper_calls {
            if let Some(rule) = rules.privileges.helper_caps(&call.name) {
                let key = (call.function.as_ptr(), call.name.as_ptr());
                let (helper, texts) = call_texts.entry(key).or_insert_with(|| {
                    let texts = rule
                        .caps
                        .iter()
                        .map(|c| {
                            shared!(
                                "{} calls bpf_{}, which the verifier offers only with {c} ({})",
                                call.function,
                                call.name,
                                rule.why
                            )
                        })
                        .collect();
                    (shared!("bpf_{}", call.name), texts)
                });
                for (c, text) in rule.caps.iter().zip(texts.iter()) {
                    base.add_cap(
                        c,
                        Reason {
                            helper: Some(helper.clone()),
                            location: call.location.clone(),
                            ..prog_reason(text.clone())
                        },
                    );
                }
            }
        }
        let uses_arena =
            p.uses.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && m.map_type == BPF_MAP_TYPE_ARENA));
        for call in &p.uses.kfunc_calls {
            for rule in &rules.privileges.kfunc_rule {
                let applies = match rule.when.as_str() {
                    "any_kfunc" => true,
                    "arena" => uses_arena,
                    "listed" => rule.kfuncs.iter().any(|k| **k == *call.name),
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
                    base.add_cap(
                        c,
                        Reason {
                            kfunc: Some(call.name.clone()),
                            location: call.location.clone(),
                            ..prog_reason(
                                format!(
                                    "{} calls kfunc {}; kfunc calls need {c} ({})",
                                    call.function, call.name, rule.why
                                )
                                .into(),
                            )
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
            MapOrigin::Btf => shared!("map {} ({} in .maps)", m.name, tname),
            MapOrigin::InnerTemplate => {
                shared!("map {}: inner map template of a map-in-map, created and closed by the loader", m.name)
            }
            MapOrigin::LegacyBpfMapDef | MapOrigin::LegacyIproute2 => shared!("legacy map {} in section maps", m.name),
            MapOrigin::GlobalData => shared!("global data section {} becomes the {} map {}", m.section, tname, m.name),
            MapOrigin::Kconfig => shared!(".kconfig externs live in the {} map {}", tname, m.name),
            MapOrigin::StructOps => shared!("struct_ops variable {} in {} becomes a struct_ops map", m.name, m.section),
        };
        let (mname, msection): (SharedStr, SharedStr) = (m.name.as_str().into(), m.section.as_str().into());
        let map_reason = |text: SharedStr| Reason {
            object: on.clone(),
            map: Some(mname.clone()),
            section: Some(msection.clone()),
            text,
            ..Reason::default()
        };
        base.add_list(ListKind::Commands, "map_create", map_reason(shared!("creates {what}")));
        base.add_list(ListKind::Maps, tname, map_reason(what));
        if let Some(rule) = rules.map_rule(tname) {
            let type_id = rules.names.id(Some(ListKind::Maps), tname);
            for (i, c) in rule.caps.iter().enumerate() {
                let make = || format!("creating a {tname} map needs {c} ({})", rule.why);
                let text = match type_id {
                    Some(t) => texts.get(TextKey::MapCap(t, i), make),
                    None => make().into(),
                };
                base.add_cap(c, map_reason(text));
            }
        }
    }

    // BTF.
    if obj.has_btf {
        let struct_ops = obj.maps.iter().any(|m| m.origin == MapOrigin::StructOps);
        let special: Vec<&crate::model::Map> = obj.maps.iter().filter(|m| !m.btf_special_fields.is_empty()).collect();
        if struct_ops {
            base.add_list(ListKind::Commands, "btf_load",
                reason(&on, "the object has struct_ops maps, which need the object's BTF loaded into the kernel (libbpf.c kernel_needs_btf: BTF is mandatory)".into()),
            );
        }
        for m in &special {
            base.add_list(
                ListKind::Commands,
                "btf_load",
                Reason {
                    map: Some(m.name.as_str().into()),
                    ..reason(
                        &on,
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
                base.add_list(
                    ListKind::Commands,
                    "btf_load",
                    Reason {
                        map: Some(m.name.as_str().into()),
                        ..reason(&on, format!("map {} is a {tname} map: {why}", m.name))
                    },
                );
            }
        }
        if !struct_ops && special.is_empty() && !needs_btf_type && loader == Loader::Raw {
            let btf_load = base.ids.id(Some(ListKind::Commands), "btf_load");
            base.optional.push(DraftOptional {
                items: vec![btf_load],
                steps: vec!["load_btf".into()],
                losses: vec![
                    "libbpf loads the programs without the object's BTF when BTF_LOAD is refused: no func/line \
                       info for verifier logs and bpftool, no BTF-typed map keys and values"
                        .into(),
                ],
                reason: reason(&on, "the object carries .BTF".into()),
            });
        }
    }

    match loader {
        Loader::Raw => {
            for p in &progs {
                if let (Some(_), Some(a)) = (&p.info.prog_type, &p.info.load_attach_type) {
                    base.add_list(ListKind::Attachments, a, attach_reason(&on, p, a));
                }
            }
        }
        Loader::Libbpf(_) => apply_libbpf(obj, &on, &progs, &mut base, steps, rules, texts),
    }
    base.finish()
}

fn attach_reason(on: &SharedStr, p: &Prog, attach: &str) -> Reason {
    let text = if let Some(member) = &p.info.uses.struct_ops_member {
        shared!(
            "program {} implements {member}; libbpf loads struct_ops programs with the member's index as expected attach type, which the token checks as attach type {attach} (index taken from the object's BTF; the kernel's struct layout decides — confirm with `bpfcap verify`)",
            p.name
        )
    } else if p.info.attach_zero {
        shared!(
            "program {} is loaded with no expected attach type; the kernel reads 0 as {attach}, so the token must delegate it",
            p.name
        )
    } else {
        shared!("program {} is loaded with expected attach type {attach}", p.name)
    };
    Reason {
        object: on.clone(),
        program: Some(p.name.clone()),
        section: Some(p.section.clone()),
        text,
        ..Reason::default()
    }
}

/// What one libbpf step decided in a round of [`apply_libbpf`]; turned into reasons once the
/// rounds agree.
enum Decision {
    /// A fatal step (or one whose fallback breaks a program): alternative `alt` is required.
    Required { step: usize, alt: usize },
    /// The fallback of the step would rewrite `from` to a helper program `prog` cannot call.
    Broken { step: usize, alt: usize, prog: usize, from: String, text: String },
    /// The step succeeds with what is required anyway: noted, not required.
    Note { step: usize, alt: usize },
    /// The step is tolerated without alternative `alt`, at a cost; `reset` are the programs
    /// libbpf then loads with expected attach type 0.
    Optional { step: usize, alt: usize, reset: Vec<usize> },
}

/// What libbpf `v` adds to `base` for this object: the needs of its probes and fallbacks.
///
/// The choice of a step depends on what the other steps need (an alternative already
/// required for another reason is free), so the steps are evaluated in rounds over sets of
/// need numbers until the result no longer changes; only the last round's decisions become
/// reasons.
#[allow(clippy::too_many_arguments)] // the object, its selection and the rules: all needed
fn apply_libbpf(
    obj: &Object,
    on: &SharedStr,
    progs: &[Prog],
    base: &mut Draft,
    triggered: &TriggeredSteps,
    rules: &Rules,
    texts: &Texts,
) {
    let infos: Vec<&ProgramInfo> = progs.iter().map(|p| p.info).collect();
    let zero = attach_zero_name(rules);
    let zero_id = base.ids.id(Some(ListKind::Attachments), &zero);
    let base_set = base.needed();
    // each program's load attach type, when it has a program type
    let attach_ids: Vec<Option<u32>> = infos
        .iter()
        .map(|p| match (&p.prog_type, &p.load_attach_type) {
            (Some(_), Some(a)) => Some(base.ids.id(Some(ListKind::Attachments), a)),
            _ => None,
        })
        .collect();
    let mut warnings: Vec<String> = triggered.errors.clone();
    // The steps this version takes, with the programs that trigger each.
    let steps: Vec<(usize, &LoaderStep, &[usize])> =
        triggered.steps.iter().map(|(si, affected)| (*si, &rules.libbpf[*si], affected.as_slice())).collect();
    // Each step's helper rewrites that would break an affected program: (program, from, text).
    let broken_by: Vec<Vec<(usize, String, String)>> = steps
        .iter()
        .map(|(_, step, affected)| {
            let (effect, arg) = step.fallback.split_once(':').unwrap_or((step.fallback.as_str(), ""));
            let mut broken = Vec::new();
            if step.on_failure != "fatal" && effect == "rewrite_helpers" {
                for &pi in *affected {
                    let p = infos[pi];
                    let ptype = p.prog_type.as_deref().unwrap_or("");
                    for pair in arg.split(',') {
                        let Some((from, to)) = pair.split_once('=') else { continue };
                        if p.uses.helpers.iter().any(|h| **h == *from) && rules.helper_available(to, ptype) != Some(true) {
                            broken.push((pi, format!("bpf_{from}"), format!(
                                "{} calls bpf_{from}; if libbpf's probe ({}) fails, libbpf rewrites the call to bpf_{to}, which {ptype} programs cannot call, and the load fails verification",
                                p.name, step.id
                            )));
                        }
                    }
                }
            }
            broken
        })
        .collect();

    // Rounds. `prev_by_step[k]`: what step k required in the previous round (not counting
    // notes); `prev_own`: the programs' own attach types; `prev_delta`: everything added.
    let mut prev_delta = IdSet::default();
    for a in attach_ids.iter().flatten() {
        prev_delta.insert(*a);
    }
    let mut prev_by_step: Vec<IdSet> = vec![IdSet::default(); steps.len()];
    let mut prev_own = IdSet::default();
    let mut decisions: Vec<Decision> = Vec::new();
    let mut reset_final: BTreeSet<usize> = BTreeSet::new();
    for _round in 0..8 {
        decisions.clear();
        let mut by_step: Vec<IdSet> = vec![IdSet::default(); steps.len()];
        let mut now = IdSet::default(); // everything this round adds so far
        let mut reset: BTreeSet<usize> = BTreeSet::new();
        // core_before[k] ∪ core_after[k]: the object's needs, the programs' own attach types
        // and what every step but k required in the previous round
        let mut core_before: Vec<IdSet> = Vec::with_capacity(steps.len());
        let mut acc = base_set.clone();
        acc.union_with(&prev_own);
        for s in &prev_by_step {
            core_before.push(acc.clone());
            acc.union_with(s);
        }
        let mut core_after: Vec<IdSet> = vec![IdSet::default(); steps.len()];
        let mut acc = IdSet::default();
        for (k, s) in prev_by_step.iter().enumerate().rev() {
            core_after[k] = acc.clone();
            acc.union_with(s);
        }
        for (k, (_, step, affected)) in steps.iter().enumerate() {
            let alts = &step.alternative_ids;
            if alts.is_empty() {
                continue; // sent without the token: a warning, below
            }
            // What the previous round needed for reasons other than this step: an alternative
            // those needs already cover costs nothing, so it is preferred. (A step id names
            // one step per libbpf version: rules.rs tests this.)
            let mut core = core_before[k].clone();
            core.union_with(&core_after[k]);
            let in_core = |n: u32| core.contains(n);
            let in_prev = |n: u32| base_set.contains(n) || prev_delta.contains(n);
            let sat = satisfied(alts, &in_core).or_else(|| satisfied(alts, &in_prev));
            let broken = &broken_by[k];
            let fatal = step.on_failure == "fatal";
            if fatal || !broken.is_empty() {
                let ai = sat.or_else(|| cheapest(alts, &in_core)).expect("alternatives");
                for n in &alts[ai] {
                    by_step[k].insert(u32::from(*n));
                    now.insert(u32::from(*n));
                }
                if broken.is_empty() {
                    decisions.push(Decision::Required { step: k, alt: ai });
                }
                for (prog, from, text) in broken {
                    decisions.push(Decision::Broken {
                        step: k,
                        alt: ai,
                        prog: *prog,
                        from: from.clone(),
                        text: text.clone(),
                    });
                }
                continue;
            }
            if let Some(ai) = sat {
                // The probe succeeds with what is delegated anyway: note that libbpf uses it.
                if alts[ai].iter().all(|n| base_set.contains(u32::from(*n)) || now.contains(u32::from(*n))) {
                    decisions.push(Decision::Note { step: k, alt: ai });
                }
                continue;
            }
            let ai = cheapest(alts, &in_prev).expect("alternatives");
            let mut step_reset = Vec::new();
            let (effect, _) = step.fallback.split_once(':').unwrap_or((step.fallback.as_str(), ""));
            if effect == "reset_expected_attach_type" {
                for &pi in *affected {
                    let p = infos[pi];
                    if p.load_attach_type.is_some() && !p.attach_zero {
                        reset.insert(pi);
                        step_reset.push(pi);
                        by_step[k].insert(zero_id);
                        now.insert(zero_id);
                    }
                }
            }
            decisions.push(Decision::Optional { step: k, alt: ai, reset: step_reset });
        }
        let mut own = IdSet::default();
        for (pi, a) in attach_ids.iter().enumerate() {
            if let Some(a) = a
                && !reset.contains(&pi)
            {
                own.insert(*a);
                now.insert(*a);
            }
        }
        reset_final = reset;
        if now == prev_delta {
            break;
        }
        prev_delta = now;
        prev_by_step = by_step;
        prev_own = own;
    }

    // The last round's decisions, as reasons.
    for (_, step, _) in &steps {
        if step.alternatives.is_empty() && step.on_failure == "fatal" {
            // Sent without the token: no delegation can grant it.
            warnings.push(format!(
                "{}: libbpf step {} ({}) does not go through the token; it needs the loader's own privileges",
                obj.name,
                step.id,
                lc_first(&step.what)
            ));
        }
    }
    let step_reason = |k: usize, text: SharedStr, program: Option<&Prog>| Reason {
        object: on.clone(),
        program: program.map(|p| p.name.clone()),
        section: program.map(|p| p.section.clone()),
        loader_step: Some(texts.get(TextKey::StepId(steps[k].0), || steps[k].1.id.clone())),
        text,
        ..Reason::default()
    };
    // an alternative's needs, as numbers
    let alt_ids = |k: usize, alt: usize| steps[k].1.alternative_ids[alt].iter().map(|n| u32::from(*n));
    // and as needs
    let alt_needs = |ids: &Interner, k: usize, alt: usize| -> Arc<[Need]> {
        texts.alternative((steps[k].0, alt), || {
            let mut v: Vec<Need> = alt_ids(k, alt).map(|n| ids.need(n)).collect();
            v.sort(); // in the order of needs, not of their numbers
            v
        })
    };
    let who = |affected: &[usize]| {
        if affected.is_empty() {
            String::new()
        } else {
            format!(" (for {})", affected.iter().map(|i| &*progs[*i].name).collect::<Vec<_>>().join(", "))
        }
    };
    for d in &decisions {
        match d {
            Decision::Required { step, alt } => {
                let affected = steps[*step].2;
                let make = || {
                    shared!(
                        "libbpf {}{}; bpf_object__load fails if this is refused",
                        lc_first(&steps[*step].1.what),
                        who(affected)
                    )
                };
                let text = if affected.is_empty() {
                    texts.get(TextKey::StepRequired(steps[*step].0), || make().to_string())
                } else {
                    make()
                };
                for n in alt_ids(*step, *alt) {
                    base.add_id(n, step_reason(*step, text.clone(), None));
                }
            }
            Decision::Broken { step, alt, prog, from, text } => {
                let p = &progs[*prog];
                // the first call site in order of (function, location)
                let site =
                    p.info.uses.helper_calls.iter().filter(|c| from.strip_prefix("bpf_") == Some(&*c.name)).min();
                let text: SharedStr = text.as_str().into();
                let helper: SharedStr = from.as_str().into();
                for n in alt_ids(*step, *alt) {
                    base.add_id(
                        n,
                        Reason {
                            helper: Some(helper.clone()),
                            location: site.and_then(|s| s.location.clone()),
                            ..step_reason(*step, text.clone(), Some(p))
                        },
                    );
                }
            }
            Decision::Note { step, alt } => {
                let text = texts.get(TextKey::StepNote(steps[*step].0), || {
                    format!("also used by libbpf: {}", lc_first(&steps[*step].1.what))
                });
                for n in alt_ids(*step, *alt) {
                    base.add_id(n, Reason { note: true, ..step_reason(*step, text.clone(), None) });
                }
            }
            Decision::Optional { step, alt, reset } => {
                let affected = steps[*step].2;
                let s = steps[*step].1;
                let mut items: Vec<u32> = alt_ids(*step, *alt).collect();
                for &pi in reset {
                    let p = &progs[pi];
                    let a = p.info.load_attach_type.as_deref().unwrap_or_default();
                    items.push(base.ids.id(Some(ListKind::Attachments), a));
                    let needs = alt_needs(&base.ids, *step, *alt);
                    base.add_id(
                        zero_id,
                        step_reason(
                            *step,
                            shared!(
                                "libbpf's probe ({}) fails without {}, so libbpf loads {} with expected attach type 0 instead of {a}; the kernel reads 0 as {zero}",
                                s.id,
                                list_needs(&needs),
                                p.name
                            ),
                            Some(p),
                        ),
                    );
                }
                base.optional.push(DraftOptional {
                    items,
                    steps: vec![texts.get(TextKey::StepId(steps[*step].0), || s.id.clone())],
                    losses: vec![texts.get(TextKey::StepLost(steps[*step].0), || s.lost.clone())],
                    reason: step_reason(
                        *step,
                        if affected.is_empty() {
                            texts.get(TextKey::StepOptional(steps[*step].0), || format!("libbpf {}", lc_first(&s.what)))
                        } else {
                            shared!("libbpf {}{}", lc_first(&s.what), who(affected))
                        },
                        None,
                    ),
                });
            }
        }
    }
    for (pi, p) in progs.iter().enumerate() {
        if let (Some(_), Some(a)) = (&p.info.prog_type, &p.info.load_attach_type)
            && !reset_final.contains(&pi)
        {
            base.add_list(ListKind::Attachments, a, attach_reason(on, p, a));
        }
    }
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    base.late_warnings = warnings;
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
