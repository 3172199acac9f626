//! The delegation set: the four bpffs delegate lists and the capabilities, derived from the
//! required needs. Knows the kernel's spellings (names and bit masks); nothing about objects.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::requirements::Need;
use crate::rules::{ListKind, Rules};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delegation {
    pub commands: Vec<String>,
    pub maps: Vec<String>,
    pub programs: Vec<String>,
    pub attachments: Vec<String>,
    /// Not part of the JSON "delegation" object; serialised separately as "capabilities".
    #[serde(skip)]
    pub capabilities: Vec<String>,
}

impl Delegation {
    pub fn from_needs<'a>(needs: impl IntoIterator<Item = &'a Need>, rules: &Rules) -> Delegation {
        let mut lists: BTreeMap<ListKind, BTreeSet<String>> = BTreeMap::new();
        let mut caps = BTreeSet::new();
        for n in needs {
            match n {
                Need::List(k, name) => {
                    lists.entry(*k).or_default().insert(name.clone());
                }
                Need::Cap(c) => {
                    caps.insert(c.clone());
                }
            }
        }
        let mut d = Delegation::default();
        for k in ListKind::ALL {
            let mut v: Vec<String> = lists.remove(&k).unwrap_or_default().into_iter().collect();
            // kernel bit order, as /proc/mounts prints them
            v.sort_by_key(|n| (rules.enums.value_of(k, n).unwrap_or(u32::MAX), n.clone()));
            *d.list_mut(k) = v;
        }
        let mut caps: Vec<String> = caps.into_iter().collect();
        caps.sort_by_key(|c| (rules.capability_value(c).unwrap_or(u32::MAX), c.clone()));
        d.capabilities = caps;
        d
    }

    pub fn list(&self, k: ListKind) -> &Vec<String> {
        match k {
            ListKind::Commands => &self.commands,
            ListKind::Maps => &self.maps,
            ListKind::Programs => &self.programs,
            ListKind::Attachments => &self.attachments,
        }
    }

    pub fn list_mut(&mut self, k: ListKind) -> &mut Vec<String> {
        match k {
            ListKind::Commands => &mut self.commands,
            ListKind::Maps => &mut self.maps,
            ListKind::Programs => &mut self.programs,
            ListKind::Attachments => &mut self.attachments,
        }
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

    /// Capability numbers, for the sandbox.
    pub fn capability_values(&self, rules: &Rules) -> Vec<u32> {
        self.capabilities.iter().filter_map(|c| rules.capability_value(c)).collect()
    }

    /// bpffs mount options, names joined with ':' as the kernel parses them.
    pub fn mount_options(&self) -> String {
        ListKind::ALL
            .iter()
            .filter(|k| !self.list(**k).is_empty())
            .map(|k| format!("{}={}", k.mount_option(), self.list(*k).join(":")))
            .collect::<Vec<_>>()
            .join(",")
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

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid bpffs mount options: {message}")]
#[diagnostic(code(bpfcap::config::mount_options), help("write delegate_cmds=NAME:NAME,delegate_maps=...,delegate_progs=...,delegate_attachs=... with the kernel's names (as /proc/mounts prints them), `any`, or a hex mask"))]
pub struct MountOptionsError {
    pub message: String,
}

/// Parses a bpffs mount-option string (`delegate_cmds=map_create:prog_load,...`, or a
/// /proc/mounts line). Items are the kernel's short names (case-insensitive, as the kernel
/// matches them), `any`, or numbers (a number replaces the names before it, as in
/// kernel/bpf/inode.c). Other options (uid=, mode=, ...) are ignored, as bpffs ignores
/// unknown ones.
pub fn parse_mount_options(text: &str, rules: &Rules) -> Result<Delegation, MountOptionsError> {
    // a /proc/mounts line: "none /sys/fs/bpf bpf rw,relatime,delegate_cmds=... 0 0"
    let opts = text.split_whitespace().find(|w| w.contains("delegate_")).unwrap_or(text);
    let mut d = Delegation::default();
    for opt in opts.split(',') {
        let Some((key, value)) = opt.split_once('=') else { continue };
        let Some(kind) = ListKind::ALL.into_iter().find(|k| k.mount_option() == key.trim()) else { continue };
        let mut mask: u64 = 0;
        for item in value.split(':').filter(|i| !i.is_empty()) {
            if item == "any" {
                mask = u64::MAX;
            } else if let Some(hex) = item.strip_prefix("0x") {
                mask = u64::from_str_radix(hex, 16).map_err(|_| MountOptionsError { message: format!("{key}: bad mask {item}") })?;
            } else if item.chars().all(|c| c.is_ascii_digit()) {
                mask = item.parse().map_err(|_| MountOptionsError { message: format!("{key}: bad number {item}") })?;
            } else {
                let lower = item.to_ascii_lowercase();
                let v = rules.enums.value_of(kind, &lower).ok_or_else(|| MountOptionsError {
                    message: format!("{key}: unknown name '{item}'"),
                })?;
                mask |= 1u64 << v;
            }
        }
        let names: Vec<String> = rules
            .enums
            .list(kind)
            .iter()
            .filter(|e| e.alias_of.is_none() && e.value < 64 && mask & (1u64 << e.value) != 0)
            .map(|e| e.name.clone())
            .collect();
        let list = d.list_mut(kind);
        for n in names {
            if !list.contains(&n) {
                list.push(n);
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    #[test]
    fn masks_and_mount_options() {
        let r = rules();
        let d = Delegation {
            commands: vec!["map_create".into(), "prog_load".into()],
            maps: vec![],
            programs: vec!["socket_filter".into()],
            attachments: vec!["cgroup_inet_ingress".into()],
            capabilities: vec!["CAP_BPF".into()],
        };
        assert_eq!(d.mask(ListKind::Commands, r), 0b100001);
        assert_eq!(d.mask(ListKind::Programs, r), 0b10);
        assert_eq!(d.mask(ListKind::Attachments, r), 1);
        assert_eq!(
            d.mount_options(),
            "delegate_cmds=map_create:prog_load,delegate_progs=socket_filter,delegate_attachs=cgroup_inet_ingress"
        );
        assert_eq!(d.capability_values(r), vec![39]);
    }

    #[test]
    fn parses_mount_options_like_the_kernel() {
        let r = rules();
        let d = parse_mount_options("delegate_cmds=Prog_Load:map_create,delegate_progs=0x2,mode=0700", r).unwrap();
        assert_eq!(d.commands, vec!["map_create", "prog_load"]);
        assert_eq!(d.programs, vec!["socket_filter"]);
        // a number replaces the names before it (kernel/bpf/inode.c)
        let d = parse_mount_options("delegate_cmds=prog_load:0x1", r).unwrap();
        assert_eq!(d.commands, vec!["map_create"]);
        // a /proc/mounts line
        let d = parse_mount_options("none /sys/fs/bpf bpf rw,relatime,delegate_maps=ringbuf 0 0", r).unwrap();
        assert_eq!(d.maps, vec!["ringbuf"]);
        assert!(parse_mount_options("delegate_maps=ringbuff", r).is_err());
    }
}
