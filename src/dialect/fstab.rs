//! `fstab`: an /etc/fstab line (read: also a /proc/mounts line, which has the same layout).

use super::{Certainty, Dialect, bpffs};
use crate::config::Config;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, comment, mount_options};
use crate::rules::Rules;

pub struct Fstab;

impl Dialect for Fstab {
    fn name(&self) -> &'static str {
        "fstab"
    }

    fn about(&self) -> &'static str {
        "An /etc/fstab line"
    }

    fn detect(&self, body: &str, _rules: &Rules) -> Option<Certainty> {
        // SPEC FILE VFSTYPE MNTOPS ...: the first line a bpffs with delegate options
        let first = body.lines().map(str::trim).find(|l| !l.is_empty())?;
        let fields: Vec<&str> = first.split_whitespace().collect();
        (fields.len() >= 4 && fields[2] == "bpf" && bpffs::mentions_options(fields[3])).then_some(Certainty::Layout)
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        bpffs::parse(cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        let mut notes = Vec::new();
        let o = mount_options(d, rules, &mut notes);
        let text = format!("{}\n# {}\nbpffs /sys/fs/bpf bpf {o} 0 0\n", comment(header), bpffs::OWNERSHIP_NOTE);
        Emitted { text, notes }
    }
}
