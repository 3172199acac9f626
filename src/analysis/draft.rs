//! Needs as numbers while requirements are derived: the interner that numbers them, sets of
//! numbers, the draft that collects every reason under its need's number and becomes the
//! [`Requirements`] once, and the reason texts that depend on the rules alone, made once per
//! [`super::Analyser`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::requirements::{OptionalNeed, Reason, Requirements};
use crate::model::SharedStr;
use crate::rules::Rules;
use crate::vocab::{ListKind, Need};

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

    /// The numbers of `needs`.
    pub(crate) fn set_of(&mut self, needs: &[Need]) -> IdSet {
        let mut set = IdSet::default();
        for n in needs {
            set.insert(match n {
                Need::List(k, name) => self.id(Some(*k), name),
                Need::Cap(c) => self.id(None, c),
            });
        }
        set
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

    /// The numbers in the set, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let bits = self
            .bits
            .iter()
            .enumerate()
            .flat_map(|(w, word)| (0..64u32).filter(move |b| word & (1 << b) != 0).map(move |b| w as u32 * 64 + b));
        bits.chain(self.more.iter().copied())
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
    pub(crate) warnings: Vec<String>,
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
    pub(crate) fn new(rules: &'r Rules) -> Self {
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
    pub(crate) fn add_internal(&mut self, kind: Option<ListKind>, name: &str, reason: Reason) {
        let id = self.ids.id(kind, name);
        self.internal.push((id, reason));
    }

    pub(crate) fn add_list(&mut self, kind: ListKind, name: &str, reason: Reason) {
        let id = self.ids.id(Some(kind), name);
        self.add_id(id, reason);
    }

    pub(crate) fn add_cap(&mut self, cap: &str, reason: Reason) {
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

    /// The requirements: each need with its reasons, sorted and unique, and the optional
    /// items pruned ([`Requirements::prune_optional`]).
    pub(crate) fn finish(self) -> Requirements {
        let Draft { ids, mut reasons, internal, internal_dropped, optional, warnings, late_warnings } = self;
        if !internal_dropped {
            reasons.extend(internal);
        }
        // every need with its reasons: grouped by number, then each number made a need once
        let mut by_id: BTreeMap<u32, Vec<Reason>> = BTreeMap::new();
        for (id, reason) in reasons {
            by_id.entry(id).or_default().push(reason);
        }
        let mut required: BTreeMap<Need, Vec<Reason>> = by_id.into_iter().map(|(id, rs)| (ids.need(id), rs)).collect();
        // (equal reasons are alike in every field, and only one of them is kept: the order
        // among them does not matter)
        for rs in required.values_mut() {
            rs.sort_unstable();
            rs.dedup();
        }
        let optional = optional
            .into_iter()
            .map(|o| OptionalNeed {
                items: o.items.iter().map(|id| ids.need(*id)).collect(),
                steps: o.steps,
                losses: o.losses,
                reason: o.reason,
            })
            .collect();
        let mut out = Requirements { required, optional, warnings };
        out.prune_optional();
        out.add_warnings(late_warnings);
        out
    }
}

/// Reason texts that depend only on the rules, not on an object's names: built once per
/// [`super::Analyser`] and shared by every analysis it runs, every object (and every worker).
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
