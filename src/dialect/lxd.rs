//! `lxd`: LXD instance configuration (YAML, or `lxc config set` lines), with the keys of
//! rules/dialects/lxd.toml.

use super::{Certainty, Dialect, manager};
use crate::config::Config;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why};
use crate::finding::Finding;
use crate::rules::Rules;
use crate::vocab::ListKind;

pub struct Lxd;

impl Dialect for Lxd {
    fn name(&self) -> &'static str {
        "lxd"
    }

    fn about(&self) -> &'static str {
        "`lxc config set` lines and YAML (LXD)"
    }

    fn reads_about(&self) -> &'static str {
        "LXD instance configuration (YAML, or `lxc config set` lines)"
    }

    fn detect(&self, body: &str, rules: &Rules) -> Option<Certainty> {
        manager::detect(rules.lxd(), body)
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        manager::parse(rules.lxd(), cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        manager::emit(rules.lxd(), d, header, rules)
    }

    fn check(&self, cfg: &Config, _needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
        manager::check(rules.lxd(), cfg, out)
    }

    fn setting(&self, k: ListKind, rules: &Rules) -> String {
        rules.lxd().key(k).cloned().unwrap_or_default()
    }
}
