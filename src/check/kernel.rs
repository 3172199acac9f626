//! Findings about the target kernel: names it does not have, and kernels without BPF tokens.

use super::{Code, Finding, Severity, push};
use crate::config::Config;
use crate::delegation::Delegation;
use crate::rules::{Rules, Version};
use crate::vocab::ListKind;

pub fn names(cfg: &Config, granted: &Delegation, kernel: Version, rules: &Rules, out: &mut Vec<Finding>) {
    if let Some(since) = rules.token_since()
        && kernel < since
    {
        push(
            cfg,
            out,
            Code::KernelNoToken,
            Severity::Error,
            format!("Linux {kernel} has no BPF tokens (added in {since}): bpffs ignores delegate_* options there"),
            Some(format!("target Linux {since} or newer")),
            Some(cfg.anchor),
        );
    }
    for k in ListKind::ALL {
        for item in granted.list(k) {
            let Some(since) = rules.name_since(k, item) else { continue };
            if kernel < since {
                let span = cfg
                    .grants
                    .iter()
                    .find(|g| {
                        g.list == k && matches!(&g.item, Ok(crate::names::Item::Name { name, .. }) if name == item)
                    })
                    .map(|g| g.span)
                    .or(Some(cfg.anchor));
                push(
                    cfg,
                    out,
                    Code::KernelUnknownName,
                    Severity::Error,
                    format!(
                        "{} {item} does not exist in Linux {kernel} (added in {since}); bpffs refuses the mount",
                        k.mount_option()
                    ),
                    Some(format!("target Linux {since} or newer, or drop {item}")),
                    span,
                );
            }
        }
    }
}
