//! `check`: compares an existing configuration with what the objects need, and reports
//! findings with a stable code, a severity, and the span they point at. Codes are documented
//! in docs/check.md.

pub mod code;
pub mod kernel;
pub mod render;
pub mod systemd;

use serde::Serialize;

pub use code::Code;

use crate::analysis::requirements::Requirements;
use crate::config::{Config, Dialect, Span};
use crate::delegation::Delegation;
use crate::names::Item;
use crate::rules::Rules;
use crate::vocab::{ListKind, Need};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `missing-item` (docs/check.md).
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The file the finding points into (a unit or one of its drop-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Where in [`Config::text`] (all files' texts one after the other).
    #[serde(skip)]
    pub span: Option<Span>,
    /// The same span, as a byte range in its own file.
    #[serde(rename = "span", skip_serializing_if = "Option::is_none")]
    pub file_span: Option<Span>,
    /// 1-based line and column of the span, in its own file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The delegate list this finding is about (a missing item), or that an unknown key was
    /// meant to set (its closest real key is that list's): the unknown key is then the root
    /// cause of that list's missing items.
    #[serde(skip)]
    pub list: Option<ListKind>,
    /// The item (kernel name) a missing-item finding is about, or a misspelt name was meant
    /// to grant.
    #[serde(skip)]
    pub item: Option<String>,
}

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

pub(crate) fn push(
    cfg: &Config,
    out: &mut Vec<Finding>,
    code: Code,
    severity: Severity,
    message: String,
    help: Option<String>,
    span: Option<Span>,
) {
    let (mut file, mut file_span, mut line, mut column) = (None, None, None, None);
    if let Some(s) = span {
        let (l, c) = cfg.line_col(s.offset);
        let f = cfg.file_at(s.offset);
        (file, file_span, line, column) =
            (Some(f.name.clone()), Some(Span { offset: s.offset - f.start, len: s.len }), Some(l), Some(c));
    }
    // messages quote the configuration's own text (any byte) and names from objects
    let message = crate::text::escape(&message).into_owned();
    let help = help.map(|h| crate::text::escape(&h).into_owned());
    out.push(Finding { code, severity, message, help, file, span, file_span, line, column, list: None, item: None });
}

/// Whether a setting's value is one of the dialect's words for true (rules/dialects/*.toml
/// `true_values`), as the manager compares them: without regard to case.
pub(crate) fn is_true(value: &str, true_values: &[String]) -> bool {
    true_values.iter().any(|t| t.eq_ignore_ascii_case(value.trim()))
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
    let mut seen_name_in: Vec<ListKind> = Vec::new();
    for g in &cfg.grants {
        if cfg.dialect == Dialect::Systemd {
            if g.item.is_err() {
                systemd::not_accepted(cfg, g, rules, &mut out);
            } else {
                systemd::spelling(cfg, g, rules, &mut out);
            }
        } else {
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
                        .map(|n| item_spelling(cfg, g.list, n, rules))
                        .collect::<Vec<_>>()
                        .join(if cfg.dialect == Dialect::Systemd { "," } else { " " })
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
                    Some(format!("add {} to {}", item_spelling(cfg, k, item, rules), setting_name(cfg, k, rules))),
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
                    Some("remove it; only map_create, prog_load, btf_load and btf_get_fd_by_id consult a token".into()),
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
    if cfg.dialect == Dialect::Systemd {
        systemd::unit(cfg, &needed, rules, &mut out);
        systemd::settings(cfg, rules, &mut out);
    }
    if matches!(cfg.dialect, Dialect::Incus | Dialect::Lxd) {
        manager(cfg, rules, &mut out);
    }
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

/// Incus/LXD: known keys, the delegation switched on (LXD), the container unprivileged.
fn manager(cfg: &Config, rules: &Rules, out: &mut Vec<Finding>) {
    let m = if cfg.dialect == Dialect::Lxd { rules.lxd() } else { rules.incus() };
    let known: Vec<String> = ListKind::ALL.iter().filter_map(|k| m.key(*k).cloned()).chain(m.other_keys()).collect();
    for s in cfg.settings.iter().filter(|s| s.ignored) {
        let closest = crate::spelling::closest(&s.key, known.iter().map(String::as_str));
        push(
            cfg,
            out,
            Code::UnknownKey,
            Severity::Error,
            format!("{} is not a key the manager knows: it refuses it, and the grant is lost", s.key),
            closest.map(|k| format!("did you mean {k}?")),
            Some(s.span),
        );
        if let Some(f) = out.last_mut() {
            f.list = ListKind::ALL.into_iter().find(|k| closest.is_some_and(|c| m.key(*k).is_some_and(|key| key == c)));
        }
    }
    let truthy = |v: &str| is_true(v, &m.syntax.true_values);
    if !m.keys.enable_key.is_empty() && !cfg.setting(&m.keys.enable_key).is_some_and(|s| truthy(&s.value)) {
        push(
            cfg,
            out,
            Code::ManagerDisabled,
            Severity::Error,
            format!("{} is not set to true: the delegate keys do nothing without it", m.keys.enable_key),
            Some(format!("set {}=true", m.keys.enable_key)),
            cfg.setting(&m.keys.enable_key).map(|s| s.span).or(Some(cfg.anchor)),
        );
    }
    if let Some(p) = cfg.setting(&m.keys.privileged).filter(|s| truthy(&s.value)) {
        push(
            cfg,
            out,
            Code::ManagerPrivileged,
            Severity::Error,
            "a privileged container shares the host's user namespace, where the kernel refuses to create BPF tokens"
                .into(),
            Some("use an unprivileged container".into()),
            Some(p.span),
        );
    }
}

fn list_noun(k: ListKind) -> &'static str {
    match k {
        ListKind::Commands => "bpf() command",
        ListKind::Maps => "map type",
        ListKind::Programs => "program type",
        ListKind::Attachments => "attach type",
    }
}

/// An item as the dialect spells it: systemd's own names (`BPFMapTypeDevmap`), which are all it
/// takes; the kernel's names elsewhere.
fn item_spelling(cfg: &Config, k: ListKind, item: &str, rules: &Rules) -> String {
    match cfg.dialect {
        Dialect::Systemd => {
            rules.systemd().name_for(k, item).map(|n| n.systemd.clone()).unwrap_or_else(|| item.to_string())
        }
        _ => item.to_string(),
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

fn setting_name(cfg: &Config, k: ListKind, rules: &Rules) -> String {
    match cfg.dialect {
        Dialect::Systemd => format!("{}=", rules.systemd().setting(k)),
        Dialect::Incus => rules.incus().key(k).cloned().unwrap_or_default(),
        Dialect::Lxd => rules.lxd().key(k).cloned().unwrap_or_default(),
        _ => format!("{}=", k.mount_option()),
    }
}
