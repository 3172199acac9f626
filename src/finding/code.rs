//! The stable codes of `check`'s findings: one enum that the checkers emit, the renderers
//! print (human, JSON, SARIF rules, GitHub) and docs/check.md documents (a test compares the
//! two).

use serde::Serialize;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, root_cause: $root:literal, $summary:literal; )*) => {
        /// A finding's code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order docs/check.md lists them.
            pub const ALL: &[Code] = &[$(Code::$variant),*];

            /// The stable identifier (`missing-item`).
            pub fn id(self) -> &'static str {
                match self { $(Code::$variant => $id,)* }
            }

            /// One line on what it means (SARIF's rule description).
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// Whether a finding with this code explains others (a key or line the manager
            /// ignores, no token set up at all): it is listed first, and what it costs gets no
            /// finding of its own.
            pub fn root_cause(self) -> bool {
                match self { $(Code::$variant => $root,)* }
            }
        }
    };
}

codes! {
    MissingItem = "missing-item", root_cause: false,
        "The configuration lacks an item the BPF objects need; the load fails with EPERM.";
    ExtraItem = "extra-item", root_cause: false,
        "The configuration grants an item no selected program needs.";
    AnyGrant = "any-grant", root_cause: false,
        "A list is delegated as `any`, which grants every item.";
    InertCommand = "inert-command", root_cause: false,
        "A delegated bpf() command never consults a token, so it grants nothing.";
    UnknownName = "unknown-name", root_cause: true,
        "A name that is not a kernel name for this list.";
    MaskReplacesNames = "mask-replaces-names", root_cause: false,
        "A numeric mask after names replaces them (bpffs parses numbers into the whole mask).";
    SystemdCase = "systemd-case", root_cause: true,
        "systemd matches delegation names case-sensitively and silently drops a misspelt one.";
    SystemdMisgrant = "systemd-misgrant", root_cause: false,
        "systemd's name table sets a different bit than the name says.";
    SystemdNoPrivateBpf = "systemd-no-private-bpf", root_cause: true,
        "BPFDelegate*= settings without PrivateBPF=yes: no token is set up.";
    SystemdNoUserns = "systemd-no-userns", root_cause: true,
        "PrivateBPF= without a user namespace for the service.";
    SystemdCapabilities = "systemd-capabilities", root_cause: false,
        "The unit does not give the service the capabilities the token checks.";
    SystemdMountNamespace = "systemd-mount-namespace", root_cause: false,
        "A system service's bpffs is created before its user namespace without DelegateNamespaces=mnt.";
    UnknownOption = "unknown-option", root_cause: false,
        "A delegate_* option bpffs does not know; bpffs ignores it silently.";
    UnknownKey = "unknown-key", root_cause: true,
        "A setting the manager does not know where it stands; it is ignored (often a typo).";
    NotASetting = "not-a-setting", root_cause: true,
        "A line the manager ignores: not KEY=VALUE, or outside any section.";
    ForeignSetting = "foreign-setting", root_cause: false,
        "A BPF drop-in sets something that is not part of a BPF delegation (ExecStartPre=, User=, ...).";
    ManagerDisabled = "manager-disabled", root_cause: true,
        "LXD's security.delegate_bpf switch is off.";
    ManagerPrivileged = "manager-privileged", root_cause: true,
        "A privileged container cannot create BPF tokens.";
    KernelUnknownName = "kernel-unknown-name", root_cause: false,
        "A name the target kernel does not have.";
    KernelNoToken = "kernel-no-token", root_cause: true,
        "The target kernel has no BPF tokens.";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/check.md's table lists exactly the codes, in their order, and its paragraph on
    /// root causes names exactly those that are.
    #[test]
    fn the_documentation_lists_every_code() {
        let doc = include_str!("../../docs/check.md");
        let table: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code))
            .collect();
        let ids: Vec<&str> = Code::ALL.iter().map(|c| c.id()).collect();
        assert_eq!(table, ids, "docs/check.md's table of findings");
        let (_, after) = doc.split_once("findings that explain others come first (").expect("the root-cause paragraph");
        let (named, _) = after.split_once(')').unwrap();
        let mut named: Vec<&str> = named.split('`').skip(1).step_by(2).collect();
        let mut roots: Vec<&str> = Code::ALL.iter().filter(|c| c.root_cause()).map(|c| c.id()).collect();
        named.sort_unstable();
        roots.sort_unstable();
        assert_eq!(named, roots, "docs/check.md's root causes");
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
