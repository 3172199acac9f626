//! `mount`: a ready `mount -t bpf` command. Read: any text that carries bpffs options (a bare
//! option string, a mount command, a /proc/mounts line, a .mount unit's `Options=`).

use super::{Certainty, Dialect, bpffs};
use crate::config::Config;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, comment, mount_options};
use crate::rules::Rules;

pub struct Mount;

impl Dialect for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn about(&self) -> &'static str {
        "A ready `mount` command"
    }

    fn reads_about(&self) -> &'static str {
        "A bpffs mount-option string, a `mount -t bpf` command, or a /proc/mounts line"
    }

    fn detect(&self, body: &str, _rules: &Rules) -> Option<Certainty> {
        if !bpffs::mentions_options(body) {
            return None;
        }
        // a systemd .mount unit of a bpffs, whose Options= carry the options
        Some(if body.contains(super::mount_unit::TYPE_LINE) { Certainty::Sure } else { Certainty::Options })
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        bpffs::parse(cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        let mut notes = Vec::new();
        let o = mount_options(d, rules, &mut notes);
        let text = format!("{}\n# {}\nmount -t bpf -o {o} bpffs /sys/fs/bpf\n", comment(header), bpffs::OWNERSHIP_NOTE);
        Emitted { text, notes }
    }
}
