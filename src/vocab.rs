//! The words every layer shares, at the bottom of the crate: the four delegation lists of a
//! bpffs ([`ListKind`]), a value per list ([`Lists`]), and one thing a loading process needs
//! ([`Need`]). Nothing here knows the rules, an object or a configuration.

use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

/// The schema every JSON document bpfcap writes and reads names (`"schema"`): its version
/// changes whenever a document changes on purpose.
pub const SCHEMA: &str = "bpfcap/1";

/// The four delegation lists of a bpffs mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Commands,
    Maps,
    Programs,
    Attachments,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [ListKind::Commands, ListKind::Maps, ListKind::Programs, ListKind::Attachments];

    /// The bpffs mount option of this list.
    pub fn mount_option(self) -> &'static str {
        match self {
            ListKind::Commands => "delegate_cmds",
            ListKind::Maps => "delegate_maps",
            ListKind::Programs => "delegate_progs",
            ListKind::Attachments => "delegate_attachs",
        }
    }

    /// The key used in JSON documents (and the field of [`Lists`]).
    pub fn json_key(self) -> &'static str {
        match self {
            ListKind::Commands => "commands",
            ListKind::Maps => "maps",
            ListKind::Programs => "programs",
            ListKind::Attachments => "attachments",
        }
    }
}

/// One value per delegation list, indexed by [`ListKind`]. In JSON and TOML an object with
/// the keys `attachments`, `commands`, `maps` and `programs`, written in that (alphabetical)
/// order, as bpfcap's documents have always had them; [`Lists::iter`] goes in kernel order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lists<T> {
    pub attachments: T,
    pub commands: T,
    pub maps: T,
    pub programs: T,
}

impl<T> Lists<T> {
    /// A value for each list, made by `f`.
    pub fn from_fn(mut f: impl FnMut(ListKind) -> T) -> Lists<T> {
        Lists {
            commands: f(ListKind::Commands),
            maps: f(ListKind::Maps),
            programs: f(ListKind::Programs),
            attachments: f(ListKind::Attachments),
        }
    }

    /// Each list with its value, in kernel order (cmds, maps, progs, attachs).
    pub fn iter(&self) -> impl Iterator<Item = (ListKind, &T)> {
        ListKind::ALL.into_iter().map(move |k| (k, &self[k]))
    }
}

impl<T> Index<ListKind> for Lists<T> {
    type Output = T;
    fn index(&self, k: ListKind) -> &T {
        match k {
            ListKind::Commands => &self.commands,
            ListKind::Maps => &self.maps,
            ListKind::Programs => &self.programs,
            ListKind::Attachments => &self.attachments,
        }
    }
}

impl<T> IndexMut<ListKind> for Lists<T> {
    fn index_mut(&mut self, k: ListKind) -> &mut T {
        match k {
            ListKind::Commands => &mut self.commands,
            ListKind::Maps => &mut self.maps,
            ListKind::Programs => &mut self.programs,
            ListKind::Attachments => &mut self.attachments,
        }
    }
}

/// The kernel bit masks of the four lists (bit N = enum value N of `bpf_cmd`, `bpf_map_type`,
/// `bpf_prog_type`, `bpf_attach_type`), as bpffs holds them and the sandbox mounts them.
pub type Masks = Lists<u64>;

impl Masks {
    /// Every bit of every list (`any` everywhere).
    pub const ALL: Masks = Lists { commands: u64::MAX, maps: u64::MAX, programs: u64::MAX, attachments: u64::MAX };

    /// True if no bit is set (token creation then fails with ENOENT).
    pub fn is_empty(&self) -> bool {
        self.iter().all(|(_, m)| *m == 0)
    }
}

/// fsconfig() copies at most 256 bytes per value including the NUL (fs/fsopen.c
/// strndup_user(..., 256)); a longer value is refused.
pub const MAX_OPTION_VALUE: usize = 255;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_indexed_by_their_kind_and_named_by_its_json_key() {
        let l = Lists::from_fn(|k| k.json_key());
        for k in ListKind::ALL {
            assert_eq!(l[k], k.json_key());
        }
        let json = serde_json::to_value(l).unwrap();
        for k in ListKind::ALL {
            assert_eq!(json[k.json_key()], k.json_key());
        }
        assert!(Masks::default().is_empty() && !Masks::ALL.is_empty());
    }
}
