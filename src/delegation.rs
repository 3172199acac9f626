//! The delegation set: the four bpffs delegate lists and the capabilities, derived from the
//! required needs. Knows the kernel's spellings (names and bit masks); nothing about objects.

use serde::Serialize;

use crate::rules::Rules;
use crate::vocab::{ListKind, Lists, MAX_OPTION_VALUE, Masks, Need};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delegation {
    /// Each list's kernel names, in kernel bit order.
    #[serde(flatten)]
    pub lists: Lists<Vec<String>>,
    /// Not part of the JSON "delegation" object; serialised separately as "capabilities".
    #[serde(skip)]
    pub capabilities: Vec<String>,
}

impl Delegation {
    pub fn from_needs<'a>(needs: impl IntoIterator<Item = &'a Need>, rules: &Rules) -> Delegation {
        // each name with its sort key: kernel bit order, as /proc/mounts prints them (names the
        // rules do not number last), then the name
        let mut items: Vec<(ListKind, u32, &str)> = Vec::new();
        let mut caps: Vec<(u32, &str)> = Vec::new();
        for n in needs {
            match n {
                Need::List(k, name) => items.push((*k, rules.enums.value_of(*k, name).unwrap_or(u32::MAX), name)),
                Need::Cap(c) => caps.push((rules.capability_value(c).unwrap_or(u32::MAX), c)),
            }
        }
        items.sort_unstable();
        items.dedup();
        caps.sort_unstable();
        caps.dedup();
        let mut d = Delegation::default();
        for (k, _, name) in items {
            d.list_mut(k).push(name.to_string());
        }
        d.capabilities = caps.into_iter().map(|(_, c)| c.to_string()).collect();
        d
    }

    pub fn list(&self, k: ListKind) -> &Vec<String> {
        &self.lists[k]
    }

    pub fn list_mut(&mut self, k: ListKind) -> &mut Vec<String> {
        &mut self.lists[k]
    }

    /// Every item as a need (lists and capabilities).
    pub fn needs(&self) -> Vec<Need> {
        let mut v = Vec::new();
        for k in ListKind::ALL {
            v.extend(self.list(k).iter().map(|n| Need::List(k, n.clone())));
        }
        v.extend(self.capabilities.iter().map(|c| Need::Cap(c.clone())));
        v
    }

    /// The kernel bit mask of a list (bit N = enum value N).
    pub fn mask(&self, k: ListKind, rules: &Rules) -> u64 {
        self.list(k)
            .iter()
            .filter_map(|n| rules.enums.value_of(k, n))
            .filter(|v| *v < 64)
            .fold(0u64, |m, v| m | (1u64 << v))
    }

    /// The four lists' bit masks, as the sandbox mounts them.
    pub fn masks(&self, rules: &Rules) -> Masks {
        Lists::from_fn(|k| self.mask(k, rules))
    }

    /// Capability numbers, for the sandbox.
    pub fn capability_values(&self, rules: &Rules) -> Vec<u32> {
        self.capabilities.iter().filter_map(|c| rules.capability_value(c)).collect()
    }

    /// The value of one delegate_* option: the names joined with ':', or the hex mask when
    /// the names would exceed what the kernel takes in one value (the kernel accepts both).
    /// `Err` carries the mask with the length of the names it replaces.
    pub fn option_value(&self, k: ListKind, rules: &Rules) -> Result<String, (String, usize)> {
        self.option_value_in(k, rules, ":", MAX_OPTION_VALUE)
    }

    /// [`Self::option_value`] as a manager writes it: the names joined with `separator`, or the
    /// hex mask when the names, joined with ':' as the kernel gets them, exceed `limit` bytes.
    pub fn option_value_in(
        &self,
        k: ListKind,
        rules: &Rules,
        separator: &str,
        limit: usize,
    ) -> Result<String, (String, usize)> {
        let len = self.list(k).join(":").len();
        if len <= limit { Ok(self.list(k).join(separator)) } else { Err((format!("{:#x}", self.mask(k, rules)), len)) }
    }

    /// `delegate_cmds=...,delegate_maps=...` as the kernel takes it (empty lists left out; a
    /// list too long for one option value as its hex mask).
    pub fn mount_options(&self, rules: &Rules) -> String {
        self.mount_options_and_masked(rules).0
    }

    /// [`Self::mount_options`], and the lists written as their hex mask with the length of the
    /// names each replaces.
    pub fn mount_options_and_masked(&self, rules: &Rules) -> (String, Vec<(ListKind, usize)>) {
        let mut masked = Vec::new();
        let options = ListKind::ALL
            .iter()
            .filter(|k| !self.list(**k).is_empty())
            .map(|k| {
                let value = self.option_value(*k, rules).unwrap_or_else(|(mask, len)| {
                    masked.push((*k, len));
                    mask
                });
                format!("{}={value}", k.mount_option())
            })
            .collect::<Vec<_>>()
            .join(",");
        (options, masked)
    }

    /// The four lists as JSON, keyed by list (as every document writes a delegation).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.lists).expect("lists of names are JSON")
    }

    pub fn without(&self, need: &Need) -> Delegation {
        let mut d = self.clone();
        match need {
            Need::List(k, n) => d.list_mut(*k).retain(|x| x != n),
            Need::Cap(c) => d.capabilities.retain(|x| x != c),
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    #[test]
    fn masks_and_mount_options() {
        let r = rules();
        let d = Delegation {
            lists: Lists {
                commands: vec!["map_create".into(), "prog_load".into()],
                maps: vec![],
                programs: vec!["socket_filter".into()],
                attachments: vec!["cgroup_inet_ingress".into()],
            },
            capabilities: vec!["CAP_BPF".into()],
        };
        assert_eq!(d.mask(ListKind::Commands, r), 0b100001);
        assert_eq!(d.mask(ListKind::Programs, r), 0b10);
        assert_eq!(d.mask(ListKind::Attachments, r), 1);
        assert_eq!(
            d.mount_options(r),
            "delegate_cmds=map_create:prog_load,delegate_progs=socket_filter,delegate_attachs=cgroup_inet_ingress"
        );
        assert_eq!(d.capability_values(r), vec![39]);
    }

    #[test]
    fn a_list_too_long_for_one_option_value_is_its_mask() {
        let r = rules();
        // every map type: far more than 255 bytes of names
        let maps =
            r.enums.map_types.iter().filter(|e| e.value != 0 && e.alias_of.is_none()).map(|e| e.name.clone()).collect();
        let d = Delegation { lists: Lists { maps, ..Lists::default() }, ..Delegation::default() };
        let names = d.lists.maps.join(":");
        assert!(names.len() > MAX_OPTION_VALUE);
        let mask = format!("{:#x}", d.mask(ListKind::Maps, r));
        assert_eq!(d.option_value(ListKind::Maps, r), Err((mask.clone(), names.len())));
        assert_eq!(d.mount_options(r), format!("delegate_maps={mask}"));
    }
}
