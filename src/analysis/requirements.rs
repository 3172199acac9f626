//! What an object needs, with why: every item and capability with the reasons that made it
//! necessary ([`Requirements`]), the items a loader can do without ([`OptionalNeed`]), and their
//! union over many objects. `analysis::kernel` derives them from what the kernel checks,
//! `analysis::loader` from what the loader does through the token, on the numbered needs of
//! `analysis::draft`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::SharedStr;
use crate::rules::{LoaderModel, Version};
use crate::vocab::Need;

/// Why something is needed. Its strings are shared (`SharedStr`): one object's name, program
/// or step id is attached to many reasons, and reasons are cloned when requirements merge.
/// Ordered field by field, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
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

/// Something the loader can do without: leaving it out is tolerated, at a cost. Several loader
/// steps can fall back on the same missing items; they are merged into one entry that keeps
/// every step and every cost.
/// Ordered field by field, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OptionalNeed {
    pub items: Vec<Need>,
    /// The loader steps that fall back without the items, in the order they were merged.
    pub steps: Vec<SharedStr>,
    /// What each fallback loses (unique, in the order they were merged).
    pub losses: Vec<SharedStr>,
    pub reason: Reason,
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
    /// pruned. Each set's reasons are already sorted; the union keeps them so.
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
        // each set's reasons are sorted, so concatenated in this order a need's reasons stay
        // sorted. Sets that name the same object (one object embedded in several files) give
        // reasons that interleave: they are merged first, as a group.
        let object_of = |r: &Requirements| r.required.values().flatten().next().map(|x| x.object.clone());
        all.sort_by_cached_key(object_of);
        // (the object named, the group's reasons (its optional items and warnings taken
        // above), and whether they come from several sets)
        type Group = (Option<SharedStr>, Requirements, bool);
        let mut groups: Vec<Group> = Vec::new();
        for r in all {
            let object = object_of(&r);
            match groups.last_mut() {
                Some((o, group, several)) if *o == object => {
                    for (n, rs) in r.required {
                        group.required.entry(n).or_default().extend(rs);
                    }
                    *several = true;
                }
                _ => groups.push((object, r, false)),
            }
        }
        for (_, group, _) in groups.iter_mut().filter(|(_, _, several)| *several) {
            group.normalize();
        }
        // Group by group, each need's reasons moved out (the union grows as the groups shrink:
        // a tree's reasons are most of what an analysis holds).
        for (_, group, _) in groups {
            for (n, rs) in group.required {
                out.required.entry(n).or_default().extend(rs);
            }
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

/// Merges an optional entry's steps and losses into another's (each kept once, in the order
/// they were merged).
pub(super) fn merge_fallbacks(
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
