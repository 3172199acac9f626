//! Incus and LXD: `config set` lines and the equivalent YAML, with each manager's own keys
//! and separator (rules/dialects/incus.toml, lxd.toml).

use super::Emitted;
use crate::delegation::Delegation;
use crate::rules::{ManagerRules, Rules};
use crate::vocab::{ListKind, MAX_OPTION_VALUE};

pub fn emit(m: &ManagerRules, d: &Delegation, header: &str, rules: &Rules) -> Emitted {
    let cli = &m.syntax.cli;
    let mut notes = Vec::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    // a master switch, when the manager has one
    if !m.keys.enable_key.is_empty() {
        pairs.push((m.keys.enable_key.clone(), "true".into()));
    }
    for k in ListKind::ALL {
        let Some(key) = m.key(k) else { continue };
        if d.list(k).is_empty() {
            continue;
        }
        // The manager hands the items to the kernel as one fsconfig value, joined with ':'.
        let limit = if m.syntax.value_length_limit > 0 { m.syntax.value_length_limit } else { MAX_OPTION_VALUE };
        let value = d.option_value_in(k, rules, &m.syntax.separator, limit).unwrap_or_else(|(mask, len)| {
            notes.push(super::masked_note(key, len, limit));
            mask
        });
        pairs.push((key.clone(), value));
    }
    let mut out = format!(
        "{}\n# Unprivileged containers only: a bpffs in the host's user namespace cannot make a token.\n",
        super::comment(header)
    );
    out.push_str("# In a restricted project these keys need restricted.containers.lowlevel=allow.\n");
    for (k, v) in &pairs {
        out.push_str(&format!("{cli} config set INSTANCE {k}={v}\n"));
    }
    out.push_str("\n# or, in the instance's YAML:\nconfig:\n");
    for (k, v) in &pairs {
        out.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    out.push_str(&format!(
        "# The workload needs these capabilities in the container's user namespace (container root has them): {}\n",
        d.capabilities.join(" ")
    ));
    Emitted { text: out, notes }
}
