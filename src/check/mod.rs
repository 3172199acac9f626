//! `check`: compares an existing configuration with what the objects need, and reports
//! findings with a stable code, a severity, and the span they point at. Codes are documented
//! in docs/check.md.

pub mod kernel;
pub mod render;

pub use crate::finding::{Code, Finding, Severity};

use crate::analysis::requirements::Requirements;
use crate::config::Config;
use crate::delegation::Delegation;
use crate::finding::push;
use crate::names::Item;
use crate::rules::Rules;
use crate::vocab::{ListKind, Need};

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Extra grants and `any` are errors, not warnings.
    pub deny_extra: bool,
    /// The kernel version the configuration targets (names it lacks are errors).
    pub kernel: Option<crate::rules::Version>,
}

/// The result of a check.
#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub granted: Delegation,
    pub needed: Delegation,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

fn first_reason(reqs: &Requirements, need: &Need) -> String {
    reqs.required
        .get(need)
        .and_then(|rs| rs.iter().min_by_key(|r| r.loader_step.is_some()).map(|r| format!("{}: {}", r.object, r.text)))
        .unwrap_or_default()
}

/// Checks `cfg` against what is needed: `needed`, for the reasons `reqs` gives.
pub fn check(cfg: &Config, needed: &Delegation, reqs: &Requirements, opts: &CheckOptions, rules: &Rules) -> Report {
    let mut out = Vec::new();
    let needed = needed.clone();
    let granted = cfg.delegation(rules);
    let extra_sev = if opts.deny_extra { Severity::Error } else { Severity::Warning };

    // Names that are not names, numbers that replace names, and spellings per dialect.
    let dialect = crate::dialect::of(cfg);
    let mut seen_name_in: Vec<ListKind> = Vec::new();
    for g in &cfg.grants {
        if !dialect.check_grant(cfg, g, rules, &mut out) {
            match &g.item {
                Err(e) => push(
                    cfg,
                    &mut out,
                    Code::UnknownName,
                    Severity::Error,
                    format!("{}: {}", g.list.mount_option(), e),
                    Some(e.help.clone()),
                    Some(g.span),
                ),
                Ok(Item::Mask(_)) if seen_name_in.contains(&g.list) => push(
                    cfg,
                    &mut out,
                    Code::MaskReplacesNames,
                    Severity::Error,
                    format!(
                        "the number '{}' replaces every name before it in {} (kernel/bpf/inode.c parses numbers into the whole mask)",
                        g.raw,
                        g.list.mount_option()
                    ),
                    Some("put numeric masks first, or use only names".into()),
                    Some(g.span),
                ),
                Ok(Item::Name { .. }) => seen_name_in.push(g.list),
                _ => {}
            }
        }
        if let Ok(Item::Any) = &g.item {
            push(
                cfg,
                &mut out,
                Code::AnyGrant,
                extra_sev,
                format!(
                    "{} grants every {}: the point of delegation is lost",
                    g.list.mount_option(),
                    list_noun(g.list)
                ),
                Some(format!(
                    "grant exactly: {}",
                    needed
                        .list(g.list)
                        .iter()
                        .map(|n| dialect.spelling(g.list, n, rules))
                        .collect::<Vec<_>>()
                        .join(&dialect.separator(rules))
                )),
                Some(g.span),
            );
        }
    }

    // What is needed but not granted.
    for k in ListKind::ALL {
        for item in needed.list(k) {
            if !granted.list(k).contains(item) {
                let why = first_reason(reqs, &Need::List(k, item.clone()));
                push(
                    cfg,
                    &mut out,
                    Code::MissingItem,
                    Severity::Error,
                    format!("{} lacks {item}: {why}", k.mount_option()),
                    Some(format!("add {} to {}", dialect.spelling(k, item, rules), dialect.setting(k, rules))),
                    Some(cfg.list_spans.get(&k).copied().unwrap_or(cfg.anchor)),
                );
                if let Some(f) = out.last_mut() {
                    f.list = Some(k);
                    f.item = Some(item.clone());
                }
            }
        }
    }
    // What is granted but not needed (an `any` is reported once above).
    for k in ListKind::ALL {
        let any = cfg.grants.iter().any(|g| g.list == k && matches!(g.item, Ok(Item::Any)));
        if any {
            continue;
        }
        for item in granted.list(k) {
            if needed.list(k).contains(item) {
                continue;
            }
            let span = cfg
                .grants
                .iter()
                .rev()
                .find(|g| g.list == k && matches!(&g.item, Ok(Item::Name { name, .. }) if name == item))
                .map(|g| g.span)
                .or_else(|| cfg.list_spans.get(&k).copied());
            if k == ListKind::Commands && !rules.privileges.consults_token(item) {
                push(
                    cfg,
                    &mut out,
                    Code::InertCommand,
                    extra_sev,
                    format!(
                        "delegate_cmds grants {item}, which the kernel never checks against a token: it grants nothing"
                    ),
                    Some(format!(
                        "remove it; only {} consult a token",
                        crate::text::and_list(rules.privileges.token_command.iter().map(|c| c.command.as_str()))
                    )),
                    span,
                );
            } else {
                push(
                    cfg,
                    &mut out,
                    Code::ExtraItem,
                    extra_sev,
                    format!("{} grants {item}, which no selected program needs", k.mount_option()),
                    Some("remove it".into()),
                    span,
                );
            }
        }
    }
    if let Some(kv) = opts.kernel {
        kernel::names(cfg, &granted, kv, rules, &mut out);
    }
    dialect.check(cfg, &needed, rules, &mut out);
    for s in cfg.settings.iter().filter(|s| s.key == "unknown-option") {
        push(
            cfg,
            &mut out,
            Code::UnknownOption,
            Severity::Error,
            format!("bpffs does not know the option '{}' and silently ignores it: its grants are lost", s.value),
            Some("the options are delegate_cmds, delegate_maps, delegate_progs and delegate_attachs".into()),
            Some(s.span),
        );
    }
    out.sort_by_key(|f| (f.span.map(|s| s.offset).unwrap_or(usize::MAX), f.severity, f.code.id()));
    fold_root_causes(&mut out, &needed, &granted);
    Report { findings: out, granted, needed }
}

fn list_noun(k: ListKind) -> &'static str {
    match k {
        ListKind::Commands => "bpf() command",
        ListKind::Maps => "map type",
        ListKind::Programs => "program type",
        ListKind::Attachments => "attach type",
    }
}

/// One root cause, one finding: an unknown key meant to set a delegate list takes that list's
/// missing items into its own message, and such root causes come first.
fn fold_root_causes(findings: &mut Vec<Finding>, needed: &Delegation, granted: &Delegation) {
    let roots: Vec<(usize, ListKind)> = findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.code == Code::UnknownKey)
        .filter_map(|(i, f)| f.list.map(|k| (i, k)))
        .collect();
    for (i, k) in roots {
        let missing: Vec<&String> = needed.list(k).iter().filter(|n| !granted.list(k).contains(n)).collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|n| n.as_str()).collect();
            let text = format!("; so {} lacks {}", k.mount_option(), names.join(", "));
            findings[i].message.push_str(&text);
        }
    }
    let folded: Vec<ListKind> = findings.iter().filter(|f| f.code == Code::UnknownKey).filter_map(|f| f.list).collect();
    // a misspelt name is the root cause of its item missing
    let misspelt: Vec<(ListKind, String)> = findings
        .iter()
        .filter(|f| f.code == Code::SystemdCase || f.code == Code::UnknownName)
        .filter_map(|f| Some((f.list?, f.item.clone()?)))
        .collect();
    findings.retain(|f| {
        let whole_list = f.list.is_some_and(|k| folded.contains(&k));
        let one_item = f.list.zip(f.item.clone()).is_some_and(|li| misspelt.contains(&li));
        !(f.code == Code::MissingItem && (whole_list || one_item))
    });
    // root causes first (stable: otherwise in the order found)
    findings.sort_by_key(|f| !f.code.root_cause());
}
