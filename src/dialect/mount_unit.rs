//! `mount-unit`: a systemd .mount unit of a bpffs (read as `mount`: its `Options=` carry the
//! bpffs options).

use super::{Dialect, bpffs};
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, comment, mount_options};
use crate::rules::Rules;

pub struct MountUnit;

/// The line of a .mount unit that makes it a bpffs mount (what the `mount` dialect reads such
/// a unit by).
pub(super) const TYPE_LINE: &str = "Type=bpf";

impl Dialect for MountUnit {
    fn name(&self) -> &'static str {
        "mount-unit"
    }

    fn about(&self) -> &'static str {
        "A systemd .mount unit"
    }

    fn reads(&self) -> bool {
        false
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        let mut notes = Vec::new();
        let o = mount_options(d, rules, &mut notes);
        let text = format!(
            "{}\n# {}\n[Unit]\nDescription=BPF filesystem with BPF-token delegation\n\
             DefaultDependencies=no\nBefore=local-fs.target\n\n[Mount]\nWhat=bpffs\nWhere=/sys/fs/bpf\n{TYPE_LINE}\nOptions={o}\n\n\
             [Install]\nWantedBy=local-fs.target\n",
            comment(&format!("sys-fs-bpf.mount: {header}")),
            bpffs::OWNERSHIP_NOTE
        );
        Emitted { text, notes }
    }
}
