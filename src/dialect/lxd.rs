//! `lxd`: LXD instance configuration (YAML, or `lxc config set` lines), with the keys of
//! rules/dialects/lxd.toml.

use super::manager::Manager;
use crate::rules::Rules;

pub const LXD: Manager = Manager {
    name: "lxd",
    about: "`lxc config set` lines and YAML (LXD)",
    reads_about: "LXD instance configuration (YAML, or `lxc config set` lines)",
    rules: Rules::lxd,
};
