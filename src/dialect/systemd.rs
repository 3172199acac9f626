//! `systemd`: a unit or drop-in (PrivateBPF=, BPFDelegate*=), read as systemd reads it, written
//! as a drop-in, and checked for what systemd silently drops: it matches names
//! case-sensitively and drops a misspelt one with only a log line, some of its names set a bit
//! that means something else, and a token needs more unit settings than the lists
//! (rules/dialects/systemd.toml, systemd-keys.toml).

use std::collections::BTreeMap;

use super::{Certainty, Dialect};
use crate::config::{Config, Grant, Malformed, Setting, Span};
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, comment};
use crate::finding::{Code, Finding, Severity, is_true, push};
use crate::names;
use crate::rules::{Rules, Version};
use crate::text::Escaped;
use crate::vocab::ListKind;

pub struct Systemd;

impl Dialect for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn about(&self) -> &'static str {
        "A systemd drop-in: PrivateBPF=yes, BPFDelegate*=, and what else the token needs"
    }

    fn reads_about(&self) -> &'static str {
        "A systemd unit or drop-in (PrivateBPF=, BPFDelegate*=)"
    }

    fn detect(&self, body: &str, rules: &Rules) -> Option<Certainty> {
        let sd = &rules.systemd().settings;
        // PrivateBPF=, or what the list settings' names share (BPFDelegate: a misspelt one too)
        let lists: Vec<&str> = ListKind::ALL.iter().map(|k| sd.lists[*k].as_str()).collect();
        let prefix = crate::spelling::common_prefix(&lists);
        if body.contains(sd.private_bpf.as_str()) || (!prefix.is_empty() && body.contains(prefix)) {
            Some(Certainty::Sure)
        } else {
            body.trim_start().starts_with('[').then_some(Certainty::Layout)
        }
    }

    fn parse(&self, cfg: &mut Config, rules: &Rules) {
        parse(cfg, rules)
    }

    fn emit(&self, d: &Delegation, header: &str, why: Why, rules: &Rules) -> Emitted {
        emit(d, header, why, rules)
    }

    fn checks_without_lists(&self) -> bool {
        true
    }

    fn check_grant(&self, cfg: &Config, g: &Grant, rules: &Rules, out: &mut Vec<Finding>) -> bool {
        if g.item.is_err() {
            not_accepted(cfg, g, rules, out);
        } else {
            spelling(cfg, g, rules, out);
        }
        true
    }

    fn check(&self, cfg: &Config, needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
        unit(cfg, needed, rules, out);
        settings(cfg, rules, out);
    }

    /// systemd's own names (`BPFMapTypeDevmap`), which are all it takes.
    fn spelling(&self, k: ListKind, item: &str, rules: &Rules) -> String {
        rules.systemd().name_for(k, item).map(|n| n.systemd.clone()).unwrap_or_else(|| item.to_string())
    }

    fn separator(&self, rules: &Rules) -> String {
        rules.systemd().settings.separator.clone()
    }

    fn setting(&self, k: ListKind, rules: &Rules) -> String {
        format!("{}=", rules.systemd().setting(k))
    }
}

/// A unit file (`foo.service`), not a drop-in: its suffix is a unit type, known from the
/// sections systemd has (rules/dialects/systemd-keys.toml: one per unit type, beside [Unit]
/// and [Install]).
pub fn is_unit_file(name: &str, rules: &Rules) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else { return false };
    let ext = ext.to_ascii_lowercase();
    ext == "target"
        || rules
            .systemd_keys()
            .section
            .iter()
            .any(|s| !matches!(s.name.as_str(), "Unit" | "Install") && s.name.eq_ignore_ascii_case(&ext))
}

/// A logical line of a systemd file, as systemd's config_parse reads it: physical lines joined
/// where one ends in an unescaped backslash (which becomes a space), comment lines between
/// them skipped.
struct Logical {
    text: String,
    /// (offset in `text`, offset in the file) where each joined piece starts.
    pieces: Vec<(usize, usize)>,
    /// Where the last piece ends in the file.
    end: usize,
}

impl Logical {
    /// The file offset of byte `i` of `text`.
    fn at(&self, i: usize) -> usize {
        let k = self.pieces.partition_point(|(start, _)| *start <= i).max(1) - 1;
        self.pieces[k].1 + (i - self.pieces[k].0)
    }
}

/// Whether a line ends in a backslash that is not itself escaped (conf-parser.c: the line
/// then continues on the next one).
fn continues(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// A systemd unit or drop-in: `Key=Value` lines in sections; the BPFDelegate*= settings
/// accumulate, an empty assignment resets the list. Lines systemd ignores (no `=`, a setting
/// before any section) are recorded as malformed.
fn parse(cfg: &mut Config, rules: &Rules) {
    let sd = rules.systemd();
    let keys = rules.systemd_keys();
    let text = cfg.text.clone();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    // each list's assignment (its logical line and where the value starts in it): every
    // assignment replaces the earlier one, so only the last is parsed into grants
    let mut lists: BTreeMap<ListKind, (Logical, usize)> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut pending: Option<Logical> = None;
    for (line_start, l) in super::lines_with_offsets(&text) {
        let trimmed = l.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let mut logical = pending.take().unwrap_or(Logical { text: String::new(), pieces: Vec::new(), end: 0 });
        logical.pieces.push((logical.text.len(), line_start));
        logical.text.push_str(l);
        logical.end = line_start + l.len();
        if continues(l) {
            logical.text.pop();
            logical.text.push(' ');
            pending = Some(logical);
            continue;
        }
        let l = logical.text.as_str();
        let trimmed = l.trim_start();
        let lead = l.len() - trimmed.len();
        let whole = Span { offset: logical.at(lead), len: logical.end - logical.at(lead) };
        if trimmed.is_empty() {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            match header.trim_end().strip_suffix(']') {
                Some(name) => section = Some(name.to_string()),
                None => cfg.malformed.push(Malformed {
                    span: whole,
                    message: format!("Invalid section header '{}'", trimmed.trim_end()),
                }),
            }
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            cfg.malformed.push(Malformed { span: whole, message: "Missing '=', ignoring line.".into() });
            continue;
        };
        if section.is_none() {
            cfg.malformed.push(Malformed { span: whole, message: "Assignment outside of section. Ignoring.".into() });
            continue;
        }
        let key_t = key.trim();
        let vstart = key.len() + 1;
        // (systemd ignores a key it does not know in this section)
        let known =
            section.as_deref().and_then(|sec| keys.section(sec)).is_some_and(|ks| ks.iter().any(|k| k == key_t));
        let list = ListKind::ALL.into_iter().find(|k| sd.setting(*k) == key_t).filter(|_| known);
        cfg.settings.push(Setting {
            key: key_t.to_string(),
            value: value.trim().to_string(),
            span: whole,
            section: section.clone(),
            ignored: !known,
        });
        if let Some(k) = list {
            first = Some(first.map_or(whole.offset, |f| f.min(whole.offset)));
            last_end = last_end.max(logical.end);
            cfg.list_spans.insert(k, whole);
            // every assignment replaces the earlier one; an empty one delegates nothing
            lists.insert(k, (logical, vstart));
        }
    }
    cfg.grants = lists
        .into_iter()
        .flat_map(|(k, (logical, vstart))| {
            systemd_items(k, &logical.text[vstart..], &|i| logical.at(vstart + i), rules)
        })
        .collect();
    cfg.grants.sort_by_key(|g| g.span.offset);
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    } else if let Some(s) = cfg.setting(&sd.settings.private_bpf) {
        cfg.anchor = s.span;
    }
}

/// systemd's value syntax (namespace.c bpf_delegate_from_string): the whole value `any`, or
/// items separated by ',' only (the rules' `all` and `separator`), not trimmed, each looked up exactly (case-sensitive) in
/// systemd's table, whose bit may differ from the kernel's value (rules/dialects/systemd.toml).
/// `at` gives the file offset of a byte of `value`.
fn systemd_items(list: ListKind, value: &str, at: &dyn Fn(usize) -> usize, rules: &Rules) -> Vec<Grant> {
    let sd = rules.systemd();
    let syntax = &sd.settings;
    if value == syntax.all {
        return vec![Grant {
            list,
            raw: value.into(),
            item: Ok(names::Item::Any),
            span: Span { offset: at(0), len: value.len() },
        }];
    }
    let mut grants = Vec::new();
    let mut start = 0;
    for piece in value.split(syntax.separator.as_str()) {
        let here = start;
        start += piece.len() + syntax.separator.len();
        if piece.is_empty() {
            continue;
        }
        let trimmed = piece.trim();
        let lead = piece.len() - piece.trim_start().len();
        let item = match sd.lookup(list, piece) {
            Some(n) => match rules.enums.name_of(list, n.bit) {
                Some(kname) => Ok(names::Item::Name { value: n.bit, name: kname.to_string() }),
                None => Ok(names::Item::Mask(if n.bit < 64 { 1u64 << n.bit } else { 0 })),
            },
            None => Err(names::NameError {
                list: "systemd",
                raw: piece.to_string(),
                help: sd.settings.unknown_name_message.replace("%s", piece),
                suggestions: Vec::new(),
            }),
        };
        grants.push(Grant {
            list,
            raw: piece.to_string(),
            item,
            span: Span { offset: at(here + lead), len: trimmed.len().max(1) },
        });
    }
    grants
}

/// Orders systemd versions like "258.5" and "262" (an unreadable one first).
fn version_key(v: &str) -> Version {
    Version::parse(v).unwrap_or(Version(0, 0))
}

fn emit(d: &Delegation, header: &str, why: Why, rules: &Rules) -> Emitted {
    let sd = rules.systemd();
    let mut notes = Vec::new();
    let mut needs_version = sd.settings.since.clone();
    let mut lines = Vec::new();
    let mut unnamed = Vec::new();
    for k in ListKind::ALL {
        let mut names = Vec::new();
        for item in d.list(k) {
            match sd.name_for(k, item) {
                Some(n) => {
                    if version_key(&n.first_version()) > version_key(&needs_version) {
                        needs_version = n.first_version();
                    }
                    names.push(n.systemd.clone());
                }
                None => unnamed.push((k, item.clone())),
            }
        }
        if !names.is_empty() {
            let reasons: Vec<String> = d.list(k).iter().map(|i| format!("{i} ({})", why(k, i))).collect();
            lines.push(comment(&format!("{}: {}", k.mount_option(), reasons.join("; "))));
            lines.push(format!("{}={}", sd.setting(k), names.join(&sd.settings.separator)));
        }
    }
    for (k, item) in &unnamed {
        let why = sd
            .unnamed
            .iter()
            .find(|u| u.list == k.json_key() && u.kernel == *item)
            .map(|u| u.note.clone())
            .unwrap_or_else(|| "systemd's name table has no entry for it".into());
        notes.push(format!(
            "systemd cannot grant {} {item} by name ({why}). Nothing was written for it: {}=any would grant every \
             item, and a name that sets another bit would grant something else. Give the service a bpffs made with \
             {}={item} instead (bpfcap emit --target mount-options / mount-unit), or accept `any` knowingly.",
            k.mount_option(),
            sd.setting(*k),
            k.mount_option()
        ));
        lines.push(format!(
            "# NOT GRANTED: {} {item}: systemd has no name for it (see bpfcap's note)",
            k.mount_option()
        ));
    }
    let caps = d.capabilities.join(" ");
    let mut out = format!(
        "{}\n# systemd drop-in (e.g. /etc/systemd/system/UNIT.service.d/bpf-token.conf); needs systemd {needs_version} or newer.\n\
         [Service]\n",
        comment(header)
    );
    // the settings a token needs besides the lists (rules/dialects/systemd.toml `requires`)
    for r in &sd.settings.requires {
        if let Some(written) = &r.written {
            for line in written.lines() {
                out.push_str(&format!("{}\n", comment(line)));
            }
            out.push_str(&format!("{}={}\n", r.setting, r.value));
        }
    }
    for l in &lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!(
        "# The token is checked together with these capabilities, in the service's user namespace.\n\
         CapabilityBoundingSet={caps}\n\
         AmbientCapabilities={caps}\n"
    ));
    Emitted { text: out, notes }
}

/// A BPFDelegate*= item systemd accepts: does it mean what it says?
fn spelling(cfg: &Config, g: &Grant, rules: &Rules, out: &mut Vec<Finding>) {
    let sd = rules.systemd();
    if let Some(n) = sd.lookup(g.list, &g.raw)
        && n.mismatch()
    {
        push(
                cfg,
                out,
                Code::SystemdMisgrant,
                Severity::Error,
                format!("{} sets bit {} in systemd {}, which the kernel reads as {}: {}", n.systemd, n.bit, n.systemd_versions, n.kernel, n.note),
                Some("remove it, and create the bpffs with the right delegate_progs outside systemd (bpfcap emit --target mount-options)".into()),
                Some(g.span),
            );
    }
}

/// Items of a systemd configuration that systemd itself would not accept (called for every
/// grant whose systemd lookup failed).
fn not_accepted(cfg: &Config, g: &Grant, rules: &Rules, out: &mut Vec<Finding>) {
    let sd = rules.systemd();
    let msg = sd.settings.unknown_name_message.replace("%s", &g.raw);
    let meant = sd.intended(g.list, &g.raw).or_else(|| match &g.item {
        Ok(crate::names::Item::Name { name, .. }) => sd.name_for(g.list, name),
        _ => None,
    });
    let exact = meant.map(|n| n.systemd.clone());
    // (an unknown name's closest real one: the item it was likely meant to grant)
    let mut closest: Option<String> = None;
    let (code, help) = match exact {
        Some(e) => (
            Code::SystemdCase,
            format!("write {e} exactly: systemd matches names case-sensitively and separates items with ',' only"),
        ),
        None => {
            // the closest of systemd's own names for this list, if one is close
            let best = crate::spelling::closest(
                &g.raw,
                sd.names.iter().filter(|n| n.list == g.list.json_key()).map(|n| n.systemd.as_str()),
            );
            closest = best.and_then(|name| sd.lookup(g.list, name)).map(|n| n.kernel.clone());
            let help = match best {
                Some(name) => {
                    format!("did you mean {name}? systemd accepts only its own names or the whole value `any`")
                }
                None => {
                    "systemd accepts only its own names (BPFProgType..., BPFMapType..., ...) or the whole value `any`"
                        .to_string()
                }
            };
            (Code::UnknownName, help)
        }
    };
    push(
        cfg,
        out,
        code,
        Severity::Error,
        format!("systemd ignores '{}' in {}= (it logs \"{msg}\" and drops the grant)", g.raw, sd.setting(g.list)),
        Some(help),
        Some(g.span),
    );
    // the item it was meant to grant: this is the root cause of that item missing
    if let (Some(f), Some(kernel)) = (out.last_mut(), meant.map(|n| n.kernel.clone()).or(closest)) {
        f.list = Some(g.list);
        f.item = Some(kernel);
    }
}

/// Unit-level findings: PrivateBPF=, the user namespace, the mount namespace order and the
/// capabilities.
fn unit(cfg: &Config, needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
    let sd = rules.systemd();
    let private = cfg.setting(&sd.settings.private_bpf);
    let has_lists = !cfg.list_spans.is_empty();
    if !private.is_some_and(|s| is_true(&s.value, &sd.settings.true_values)) {
        push(
            cfg,
            out,
            Code::SystemdNoPrivateBpf,
            Severity::Error,
            if has_lists {
                format!(
                    "BPFDelegate*= settings without {}=yes do nothing: no delegated bpffs is mounted and no token can be made",
                    sd.settings.private_bpf
                )
            } else {
                format!("the unit sets up no BPF token ({}=yes is missing)", sd.settings.private_bpf)
            },
            Some(format!("add {}=yes (systemd {}+)", sd.settings.private_bpf, sd.settings.since)),
            private.map(|s| s.span).or(Some(cfg.anchor)),
        );
        return;
    }
    let pspan = private.map(|s| s.span);
    let unit = &sd.settings.unit;
    // a setting that is there and not false (PrivateUsers=self, DelegateNamespaces=mnt, =yes)
    let set = |key: &str| {
        cfg.setting(key).is_some_and(|s| !s.value.is_empty() && !is_true(&s.value, &sd.settings.false_values))
    };
    if !set(&unit.private_users) && !set(&unit.delegate_namespaces) {
        let why = sd.settings.why_required(&unit.private_users);
        push(
            cfg,
            out,
            Code::SystemdNoUserns,
            Severity::Error,
            format!("{}=yes without a user namespace for the service: {why}", sd.settings.private_bpf),
            Some(format!("add {}=self", unit.private_users)),
            pspan,
        );
    }
    let delegated_mnt = cfg.setting(&unit.delegate_namespaces).is_some_and(|s| {
        is_true(&s.value, &sd.settings.true_values)
            || s.value.split_whitespace().any(|w| w.eq_ignore_ascii_case(&unit.mount_namespace))
    });
    if !delegated_mnt {
        let why = sd.settings.why_required(&unit.delegate_namespaces);
        push(
            cfg,
            out,
            Code::SystemdMountNamespace,
            Severity::Warning,
            format!(
                "without {}={} a system service's bpffs is created before its user namespace: {why}",
                unit.delegate_namespaces, unit.mount_namespace
            ),
            Some(format!(
                "add {}={} (not needed for user services, which delegate every namespace)",
                unit.delegate_namespaces, unit.mount_namespace
            )),
            pspan,
        );
    }
    if let Some(b) = cfg.setting(&unit.capability_bounding_set) {
        let set: Vec<String> = b.value.split_whitespace().map(|c| c.to_ascii_uppercase()).collect();
        let inverted = b.value.trim_start().starts_with('~');
        for c in &needed.capabilities {
            let has = if inverted { !set.iter().any(|x| x.trim_start_matches('~') == c) } else { set.contains(c) };
            if !has {
                push(
                    cfg,
                    out,
                    Code::SystemdCapabilities,
                    Severity::Error,
                    format!("{}= leaves out {c}, which the token checks", unit.capability_bounding_set),
                    Some(format!("add {c} to {}=", unit.capability_bounding_set)),
                    Some(b.span),
                );
            }
        }
    }
    if let Some(u) = cfg.setting(&unit.user).filter(|u| !unit.root_users.contains(&u.value)) {
        let ambient: Vec<String> = cfg
            .settings
            .iter()
            .filter(|s| s.key == unit.ambient_capabilities)
            .flat_map(|s| s.value.split_whitespace().map(|c| c.to_ascii_uppercase()).collect::<Vec<_>>())
            .collect();
        for c in &needed.capabilities {
            if !ambient.contains(c) {
                push(
                    cfg,
                    out,
                    Code::SystemdCapabilities,
                    Severity::Error,
                    format!(
                        "{}={} runs without {c}: a non-root service needs it in {}=",
                        unit.user, u.value, unit.ambient_capabilities
                    ),
                    Some(format!("add {}={c}", unit.ambient_capabilities)),
                    Some(u.span),
                );
            }
        }
    }
}

/// Lines systemd ignores, keys it does not know where they stand, and, in a drop-in, settings
/// that have no place in a BPF delegation.
fn settings(cfg: &Config, rules: &Rules, out: &mut Vec<Finding>) {
    let keys = rules.systemd_keys();
    let sd = rules.systemd();
    for m in &cfg.malformed {
        push(
            cfg,
            out,
            Code::NotASetting,
            Severity::Error,
            format!("systemd ignores this line: {}", m.message),
            Some("write KEY=VALUE under a section header such as [Service]".into()),
            Some(m.span),
        );
    }
    for s in &cfg.settings {
        // (the unit's own file may set anything; a drop-in holds a BPF delegation)
        let drop_in = !is_unit_file(&cfg.file_at(s.span.offset).name, rules);
        let section = s.section.as_deref().unwrap_or("");
        let known = keys.section(section);
        if !s.ignored {
            if drop_in && !sd.settings.drop_in.contains(&s.key) {
                push(
                    cfg,
                    out,
                    Code::ForeignSetting,
                    Severity::Warning,
                    format!(
                        "{}= has no place in a BPF drop-in: bpfcap never writes it, and it does more than delegate BPF",
                        Escaped(&s.key)
                    ),
                    Some(format!(
                        "review why this file sets {}=; a BPF drop-in holds only {}",
                        Escaped(&s.key),
                        sd.settings.drop_in.iter().map(|k| format!("{k}=")).collect::<Vec<_>>().join(", ")
                    )),
                    Some(s.span),
                );
            }
            continue;
        }
        let (message, (help, meant)) = match known {
            None => (
                format!("systemd ignores [{}] and its settings: it knows no such section", Escaped(section)),
                ("use [Service] (or the section of the unit's type)".to_string(), None),
            ),
            Some(in_section) => (
                format!(
                    "systemd ignores {}= (it logs \"Unknown key '{}' in section [{}], ignoring.\")",
                    Escaped(&s.key),
                    Escaped(&s.key),
                    Escaped(section)
                ),
                closest_key(&s.key, section, in_section, rules),
            ),
        };
        push(cfg, out, Code::UnknownKey, Severity::Error, message, Some(help), Some(s.span));
        if let Some(f) = out.last_mut() {
            // the delegate list it was meant to set, if its closest key is one's setting
            f.list = crate::vocab::ListKind::ALL.into_iter().find(|k| meant.as_deref() == Some(sd.setting(*k)));
        }
    }
}

/// "did you mean X=?" for a key systemd does not know in `section`, or the section that has it;
/// and the key meant, when there is a close one.
fn closest_key(key: &str, section: &str, in_section: &[String], rules: &Rules) -> (String, Option<String>) {
    let elsewhere = rules.systemd_keys().section.iter().find(|s| s.name != section && s.keys.iter().any(|k| k == key));
    if let Some(other) = elsewhere {
        return (format!("{key}= belongs in [{}], not [{section}]", other.name), None);
    }
    match crate::spelling::closest(key, in_section.iter().map(String::as_str)) {
        Some(k) => (format!("did you mean {k}=? systemd's keys are case-sensitive"), Some(k.to_string())),
        None => (format!("systemd's keys in [{section}] are listed by `systemd --dump-configuration-items`"), None),
    }
}
