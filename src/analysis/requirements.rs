//! Requirement derivation: what the kernel checks for an object's own maps and programs, plus
//! (under a loader's model) what the loader itself does through the token (`analysis::loader`),
//! every item with the reasons that made it necessary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use super::loader::{self, Applied, Scope, TriggeredSteps};
use super::programs::ProgramInfo;
use crate::model::{MapOrigin, Object, SharedStr};
use crate::rules::{KfuncWhen, LoaderModel, Rules, Version};
use crate::vocab::{ListKind, Need};

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

/// Something the loader can do without: leaving it out is tolerated, at a cost. Several loader
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

/// The loader whose behaviour the derivation adds to what the kernel checks.
#[derive(Debug, Clone, Copy)]
pub enum Loader<'r> {
    /// Only what the kernel checks for the object's own maps and programs: every map created,
    /// the programs typed by libbpf's section table.
    Raw,
    /// A loader of the rules (rules/loader/*.toml) at one version: also its steps.
    Model { model: &'r LoaderModel, version: Version },
}

impl Loader<'_> {
    /// How reasons name the loader.
    pub fn title(&self) -> &str {
        match self {
            Loader::Raw => "libbpf",
            Loader::Model { model, .. } => &model.header.title,
        }
    }
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
pub(crate) struct Interner<'r> {
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
    pub(crate) fn id(&mut self, kind: Option<ListKind>, name: &str) -> u32 {
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

    pub(crate) fn need(&self, id: u32) -> Need {
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
pub(crate) struct IdSet {
    bits: [u64; 4],
    more: Vec<u32>,
}

impl IdSet {
    pub(crate) fn insert(&mut self, id: u32) {
        match self.bits.get_mut((id / 64) as usize) {
            Some(w) => *w |= 1 << (id % 64),
            None => {
                if let Err(at) = self.more.binary_search(&id) {
                    self.more.insert(at, id);
                }
            }
        }
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        match self.bits.get((id / 64) as usize) {
            Some(w) => w & (1 << (id % 64)) != 0,
            None => self.more.binary_search(&id).is_ok(),
        }
    }

    pub(crate) fn union_with(&mut self, other: &IdSet) {
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
pub(crate) struct Draft<'r> {
    pub(crate) ids: Interner<'r>,
    reasons: Vec<(u32, Reason)>,
    /// The reasons of the global-data maps (.data, .rodata, .bss, .kconfig), apart: a loader's
    /// fallback can leave those maps out ([`Draft::drop_internal`]).
    internal: Vec<(u32, Reason)>,
    internal_dropped: bool,
    pub(crate) optional: Vec<DraftOptional>,
    warnings: Vec<String>,
    /// warnings added unless already present (the loader's steps)
    pub(crate) late_warnings: Vec<String>,
}

/// An [`OptionalNeed`] while it is derived: its items as need numbers.
pub(crate) struct DraftOptional {
    pub(crate) items: Vec<u32>,
    pub(crate) steps: Vec<SharedStr>,
    pub(crate) losses: Vec<SharedStr>,
    pub(crate) reason: Reason,
}

impl<'r> Draft<'r> {
    fn new(rules: &'r Rules) -> Self {
        Draft {
            ids: Interner::new(rules),
            // (a real object gives about 60)
            reasons: Vec::with_capacity(64),
            internal: Vec::new(),
            internal_dropped: false,
            optional: Vec::new(),
            warnings: Vec::new(),
            late_warnings: Vec::new(),
        }
    }

    pub(crate) fn add_id(&mut self, id: u32, reason: Reason) {
        self.reasons.push((id, reason));
    }

    /// A need of a global-data map: kept unless the loader drops those maps.
    fn add_internal(&mut self, kind: Option<ListKind>, name: &str, reason: Reason) {
        let id = self.ids.id(kind, name);
        self.internal.push((id, reason));
    }

    pub(crate) fn add_list(&mut self, kind: ListKind, name: &str, reason: Reason) {
        let id = self.ids.id(Some(kind), name);
        self.add_id(id, reason);
    }

    fn add_cap(&mut self, cap: &str, reason: Reason) {
        let id = self.ids.id(None, cap);
        self.add_id(id, reason);
    }

    /// The needs that have a reason so far.
    pub(crate) fn needed(&self) -> IdSet {
        let mut s = self.needed_without_internal();
        for (id, _) in &self.internal {
            s.insert(*id);
        }
        s
    }

    /// [`Draft::needed`] without the global-data maps' needs.
    pub(crate) fn needed_without_internal(&self) -> IdSet {
        let mut s = IdSet::default();
        for (id, _) in &self.reasons {
            s.insert(*id);
        }
        s
    }

    /// Whether the loader leaves the global-data maps out (their needs then go).
    pub(crate) fn drop_internal(&mut self, dropped: bool) {
        self.internal_dropped = dropped;
    }

    /// Sorts the reasons (by need, then reason), drops duplicates and prunes the optional
    /// items (as [`Requirements::prune_optional`] would, on numbers).
    fn finish(self) -> Requirements {
        let Draft { ids, mut reasons, internal, internal_dropped, optional, warnings, late_warnings } = self;
        if !internal_dropped {
            reasons.extend(internal);
        }
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

/// Formats a [`SharedStr`] in a buffer the thread reuses: one allocation for the shared
/// string, where `format!(..).into()` makes a `String` and then copies it.
pub(crate) fn shared_fmt(args: std::fmt::Arguments) -> SharedStr {
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

/// Per (function, helper) string pointers: the `bpf_` name and one text per capability.
type CallTexts = crate::rules::HashMap<(*const u8, *const u8), (SharedStr, Vec<SharedStr>)>;

/// A selected program with its names shared by all of its reasons.
pub(crate) struct Prog<'a> {
    pub(crate) info: &'a ProgramInfo,
    pub(crate) name: SharedStr,
    pub(crate) section: SharedStr,
}

/// Reason texts that depend only on the rules, not on an object's names: built once per
/// analysis and shared by every object (and every worker).
#[derive(Debug, Default)]
pub struct Texts {
    map: std::sync::RwLock<crate::rules::HashMap<TextKey, SharedStr>>,
    /// the needs of a loader step's alternative (loader index, step index, alternative), sorted
    alternatives: std::sync::RwLock<AlternativeNeeds>,
}

type AlternativeNeeds = crate::rules::HashMap<(usize, usize, usize), Arc<[Need]>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TextKey {
    /// index in the token_create capabilities
    TokenCap(usize),
    /// program type number, index in its rule's capabilities
    ProgCap(u16, usize),
    /// map type number, index in its rule's capabilities
    MapCap(u16, usize),
    /// index of the loader in `rules.loaders`, of the step in its steps
    StepRequired(usize, usize),
    StepNote(usize, usize),
    StepOptional(usize, usize),
    StepId(usize, usize),
    StepLost(usize, usize),
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

    pub(crate) fn alternative(&self, key: (usize, usize, usize), make: impl FnOnce() -> Vec<Need>) -> Arc<[Need]> {
        cached(&self.alternatives, key, || make().into())
    }

    pub(crate) fn get(&self, key: TextKey, make: impl FnOnce() -> String) -> SharedStr {
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
    derive_with(obj, programs, selected, loader, &[], rules, &Texts::of(rules))
}

/// [`derive`], for an object analysed with others whose delegation holds `ambient` (a loader's
/// probe those needs cover succeeds), sharing rule-only reason texts through `texts`.
pub fn derive_with(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    ambient: &[Need],
    rules: &Rules,
    texts: &Texts,
) -> Requirements {
    // (the whole object when every program is selected)
    let whole = programs.iter().all(|p| selected.contains(&p.name));
    let created = loader::created_maps(obj, programs, selected, whole, loader);
    let steps = match loader {
        Loader::Raw => TriggeredSteps::default(),
        Loader::Model { model, version } => {
            let progs = programs.iter().filter(|p| selected.contains(&p.name)).collect();
            loader::triggered_steps(model, version, &Scope { obj, all: programs, progs, created: &created, rules })
        }
    };
    derive_steps(obj, programs, selected, loader, &steps, &created, ambient, rules, texts)
}

/// [`derive_with`] for a loader whose steps for this object and selection are known (`steps`,
/// from [`loader::triggered_steps`]; ignored for [`Loader::Raw`]) and the maps it creates
/// (`created`, per map of the object: [`loader::created_maps`]).
#[allow(clippy::too_many_arguments)] // the object, its selection, the loader and the rules
pub(crate) fn derive_steps(
    obj: &Object,
    programs: &[ProgramInfo],
    selected: &BTreeSet<String>,
    loader: Loader,
    steps: &TriggeredSteps,
    created: &[bool],
    ambient: &[Need],
    rules: &Rules,
    texts: &Texts,
) -> Requirements {
    let title = loader.title();
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
                "{}: program '{}' in section '{}': no {title} section rule matches this section, so {title} cannot load it without an explicit program type",
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
                "program {} in section '{}' is a {ptype} program ({title} SEC(\"{}\"))",
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
            p.uses.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && loader::is_arena(m, rules)));
        for call in &p.uses.kfunc_calls {
            for rule in &rules.privileges.kfunc_rule {
                let applies = match rule.when {
                    KfuncWhen::AnyKfunc => true,
                    KfuncWhen::Arena => uses_arena,
                    KfuncWhen::Listed => rule.kfuncs.iter().any(|k| **k == *call.name),
                    KfuncWhen::Verifier => false,
                };
                if !applies {
                    continue;
                }
                if rule.when == KfuncWhen::Listed {
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
        // The verifier's privilege gates the instructions show.
        for site in &p.gates {
            let rule = rules.gate(site.gate);
            for c in &rule.caps {
                base.add_cap(
                    c,
                    Reason {
                        location: site.location.clone(),
                        ..prog_reason(shared!("{} executes `{}`: {}", p.name, site.insn, rule.why))
                    },
                );
            }
        }
    }

    // Maps: those the loader creates (libbpf: every map of the object, whichever programs are
    // loaded; cilium/ebpf: those requested).
    let created_maps = || obj.maps.iter().zip(created).filter(|(_, c)| **c).map(|(m, _)| m);
    for m in created_maps() {
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
        // (the needs of global-data maps are kept apart: a loader's fallback can leave them out)
        let internal = m.is_internal();
        let add = |base: &mut Draft, kind: Option<ListKind>, name: &str, reason: Reason| {
            if internal {
                base.add_internal(kind, name, reason)
            } else {
                let id = base.ids.id(kind, name);
                base.add_id(id, reason)
            }
        };
        // (what creating it is, in words that read after "creates")
        let created = match m.origin {
            MapOrigin::GlobalData => shared!("the {} map {} for global data section {}", tname, m.name, m.section),
            MapOrigin::Kconfig => shared!("the {} map {} for .kconfig externs", tname, m.name),
            MapOrigin::StructOps => shared!("a struct_ops map for variable {} in {}", m.name, m.section),
            _ => what.clone(),
        };
        add(&mut base, Some(ListKind::Commands), "map_create", map_reason(shared!("creates {created}")));
        add(&mut base, Some(ListKind::Maps), tname, map_reason(what));
        if let Some(rule) = rules.map_rule(tname) {
            let type_id = rules.names.id(Some(ListKind::Maps), tname);
            for (i, c) in rule.caps.iter().enumerate() {
                let make = || format!("creating a {tname} map needs {c} ({})", rule.why);
                let text = match type_id {
                    Some(t) => texts.get(TextKey::MapCap(t, i), make),
                    None => make().into(),
                };
                add(&mut base, None, c, map_reason(text));
            }
        }
    }

    // BTF.
    if obj.has_btf {
        let struct_ops = created_maps().any(|m| m.origin == MapOrigin::StructOps);
        let special: Vec<&crate::model::Map> = created_maps().filter(|m| !m.btf_special_fields.is_empty()).collect();
        if struct_ops {
            base.add_list(ListKind::Commands, "btf_load",
                reason(&on, "the object has struct_ops maps, which need the object's BTF loaded into the kernel (libbpf.c kernel_needs_btf: BTF is mandatory)".into()),
            );
        }
        // A special field is special only in a map created with BTF: required when a selected
        // program uses the field (rules/kernel/verifier.toml btf_field).
        let mut special_used = false;
        for m in &special {
            for p in progs.iter().filter(|p| p.info.uses.maps.contains(&m.name)) {
                let uses = |f: &String| match rules.verifier.btf_field.iter().find(|r| r.matches(f)) {
                    Some(r) => {
                        r.any_use
                            || p.info.uses.helpers.iter().any(|h| r.helpers.iter().any(|x| **x == **h))
                            || p.info
                                .uses
                                .kfuncs
                                .iter()
                                .any(|k| r.kfunc_prefixes.iter().any(|x| k.starts_with(x.as_str())))
                    }
                    // a field the rules do not describe: any use counts
                    None => true,
                };
                let used: Vec<&str> = m.btf_special_fields.iter().filter(|f| uses(f)).map(|f| f.as_str()).collect();
                if used.is_empty() {
                    continue;
                }
                special_used = true;
                base.add_list(
                    ListKind::Commands,
                    "btf_load",
                    Reason {
                        map: Some(m.name.as_str().into()),
                        program: Some(p.name.clone()),
                        section: Some(p.section.clone()),
                        ..reason(
                            &on,
                            format!(
                                "program {} uses {} in the value of map {}, which the verifier accepts only when the map was created with its BTF",
                                p.name,
                                used.join(", "),
                                m.name
                            ),
                        )
                    },
                );
            }
        }
        let mut needs_btf_type = false;
        for m in created_maps() {
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
        if !struct_ops && !special_used && !needs_btf_type && matches!(loader, Loader::Raw) {
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
                    base.add_list(ListKind::Attachments, a, attach_reason(&on, p, a, title));
                }
            }
        }
        Loader::Model { model, .. } => {
            let mut ambient_ids = IdSet::default();
            for n in ambient {
                ambient_ids.insert(match n {
                    Need::List(k, name) => base.ids.id(Some(*k), name),
                    Need::Cap(c) => base.ids.id(None, c),
                });
            }
            let applied = Applied {
                obj,
                on: &on,
                progs: &progs,
                model,
                loader_index: rules.loaders.iter().position(|l| std::ptr::eq(l, model)).unwrap_or(usize::MAX),
                ambient: &ambient_ids,
            };
            loader::apply(&applied, &mut base, steps, rules, texts);
        }
    }
    base.finish()
}

pub(crate) fn attach_reason(on: &SharedStr, p: &Prog, attach: &str, title: &str) -> Reason {
    let text = if let Some(member) = &p.info.uses.struct_ops_member {
        shared!(
            "program {} implements {member}; {title} loads struct_ops programs with the member's index as expected attach type, which the token checks as attach type {attach} (index taken from the object's BTF; the kernel's struct layout decides — confirm with `bpfcap verify`)",
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
