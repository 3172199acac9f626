//! `mount-options`: the bare bpffs option string for `mount -t bpf -o ...` (read as `mount`).

use super::Dialect;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, mount_options};
use crate::rules::Rules;

pub struct MountOptions;

impl Dialect for MountOptions {
    fn name(&self) -> &'static str {
        "mount-options"
    }

    fn about(&self) -> &'static str {
        "The bare bpffs option string for `mount -t bpf -o ...`"
    }

    fn reads(&self) -> bool {
        false
    }

    fn emit(&self, d: &Delegation, _header: &str, _why: Why, rules: &Rules) -> Emitted {
        let mut notes = Vec::new();
        let text = format!("{}\n", mount_options(d, rules, &mut notes));
        Emitted { text, notes }
    }
}
