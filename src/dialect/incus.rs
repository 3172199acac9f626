//! `incus`: Incus instance configuration (YAML, or `incus config set` lines), with the keys of
//! rules/dialects/incus.toml.

use super::{Certainty, Dialect, manager};
use crate::config::Config;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why};
use crate::finding::Finding;
use crate::rules::Rules;
use crate::vocab::ListKind;

pub struct Incus;

impl Dialect for Incus {
    fn name(&self) -> &'static str {
        "incus"
    }

    fn about(&self) -> &'static str {
        "`incus config set` lines and YAML"
    }

    fn reads_about(&self) -> &'static str {
        "Incus instance configuration (YAML, or `incus config set` lines)"
    }

    fn detect(&self, body: &str, rules: &Rules) -> Option<Certainty> {
        manager::detect(rules.incus(), body)
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        manager::parse(rules.incus(), cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, _why: Why, rules: &Rules) -> Emitted {
        manager::emit(rules.incus(), d, header, rules)
    }

    fn check(&self, cfg: &Config, _needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
        manager::check(rules.incus(), cfg, out)
    }

    fn setting(&self, k: ListKind, rules: &Rules) -> String {
        rules.incus().key(k).cloned().unwrap_or_default()
    }
}
