//! `incus`: Incus instance configuration (YAML, or `incus config set` lines), with the keys of
//! rules/dialects/incus.toml.

use super::manager::Manager;
use crate::rules::Rules;

pub const INCUS: Manager = Manager {
    name: "incus",
    about: "`incus config set` lines and YAML",
    reads_about: "Incus instance configuration (YAML, or `incus config set` lines)",
    rules: Rules::incus,
};
