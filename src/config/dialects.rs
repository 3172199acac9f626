//! One parser per dialect. Each finds the delegation settings in the text and records every
//! item with its byte span. The dialects' key names and separators are data
//! (rules/dialects/*.toml); the kernel's bpffs option names come from [`ListKind`].

use std::collections::BTreeMap;

use super::{Config, Dialect, Grant, Setting, Span};
use crate::names;
use crate::rules::{ListKind, Rules};

pub fn parse(dialect: Dialect, text: &str, name: &str, rules: &Rules) -> Config {
    let mut cfg = Config {
        dialect,
        name: name.to_string(),
        text: text.to_string(),
        grants: Vec::new(),
        settings: Vec::new(),
        list_spans: BTreeMap::new(),
        anchor: Span { offset: 0, len: 0 },
    };
    match dialect {
        Dialect::Mount | Dialect::Fstab => parse_mount(&mut cfg, rules),
        Dialect::Systemd => parse_systemd(&mut cfg, rules),
        Dialect::Incus | Dialect::Lxd => parse_manager(&mut cfg, rules),
    }
    cfg
}

/// The lines of `text` without their line ends, each with the byte offset where it starts.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0usize, |offset, line| {
        let start = *offset;
        *offset += line.len();
        Some((start, line.trim_end_matches(['\n', '\r'])))
    })
}

/// Splits `value` (which starts at byte `offset` of the text) on any of `seps`, adding each
/// non-empty piece as a grant of `list`.
fn add_items(cfg: &mut Config, list: ListKind, value: &str, offset: usize, seps: &[char], rules: &Rules) {
    let mut start = 0;
    for (i, c) in value.char_indices().chain(std::iter::once((value.len(), seps[0]))) {
        if i == value.len() || seps.contains(&c) {
            let piece = &value[start..i];
            let trimmed = piece.trim();
            if !trimmed.is_empty() {
                let lead = piece.len() - piece.trim_start().len();
                let item = names::parse_item(list, trimmed, rules);
                cfg.grants.push(Grant {
                    list,
                    raw: trimmed.to_string(),
                    item: item.clone(),
                    lenient: item,
                    span: Span { offset: offset + start + lead, len: trimmed.len() },
                });
            }
            start = i + c.len_utf8();
        }
    }
}

/// bpffs options: `delegate_cmds=a:b,delegate_maps=...`, as a bare string, inside a
/// `mount -t bpf -o OPTS` command, or as the options field of an fstab or /proc/mounts line.
fn parse_mount(cfg: &mut Config, rules: &Rules) {
    let text = cfg.text.clone();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    for k in ListKind::ALL {
        let key = format!("{}=", k.mount_option());
        let mut search = 0;
        while let Some(pos) = text[search..].find(&key) {
            let at = search + pos;
            // must start an option: beginning, or after ',', whitespace or a quote
            let ok = at == 0 || matches!(text.as_bytes()[at - 1], b',' | b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'=');
            let vstart = at + key.len();
            let vend = text[vstart..]
                .find(|c: char| c == ',' || c.is_whitespace() || c == '"' || c == '\'')
                .map(|e| vstart + e)
                .unwrap_or(text.len());
            if ok {
                cfg.list_spans.entry(k).or_insert(Span { offset: at, len: vend - at });
                first = Some(first.map_or(at, |f| f.min(at)));
                last_end = last_end.max(vend);
                let value = &text[vstart..vend];
                add_items(cfg, k, value, vstart, &[':'], rules);
            }
            search = vend.max(at + 1);
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    }
    // delegate_* options bpffs does not know (a typo such as delegate_cmd=): bpffs ignores them
    let mut search = 0;
    while let Some(pos) = text[search..].find("delegate_") {
        let at = search + pos;
        let key_end =
            text[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(|e| at + e).unwrap_or(text.len());
        let key = &text[at..key_end];
        let starts_option =
            at == 0 || matches!(text.as_bytes()[at - 1], b',' | b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'=');
        if starts_option && text[key_end..].starts_with('=') && !ListKind::ALL.iter().any(|k| k.mount_option() == key) {
            cfg.settings.push(Setting {
                key: "unknown-option".into(),
                value: key.to_string(),
                span: Span { offset: at, len: key.len() },
            });
        }
        search = key_end.max(at + 1);
    }
    // the mount point, for fstab / mounts lines ("none /sys/fs/bpf bpf OPTS 0 0")
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 3 && fields[2] == "bpf" {
            let off = line.as_ptr() as usize - text.as_ptr() as usize + line.find(fields[1]).unwrap_or(0);
            cfg.settings.push(Setting {
                key: "mountpoint".into(),
                value: fields[1].into(),
                span: Span { offset: off, len: fields[1].len() },
            });
        }
    }
}

/// A systemd unit or drop-in: `Key=Value` lines in sections; the BPFDelegate*= settings
/// accumulate, an empty assignment resets the list.
fn parse_systemd(cfg: &mut Config, rules: &Rules) {
    let sd = rules.systemd();
    let text = cfg.text.clone();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    for (line_start, l) in lines_with_offsets(&text) {
        let trimmed = l.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with(';') || trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('[') {
            continue; // section headers: the settings are read wherever they stand
        }
        let Some((key, value)) = l.split_once('=') else { continue };
        let key_t = key.trim();
        let lead = l.len() - l.trim_start().len();
        let key_span = Span { offset: line_start + lead, len: key_t.len() };
        let vstart = line_start + key.len() + 1;
        let list = ListKind::ALL.into_iter().find(|k| sd.setting(*k) == key_t);
        cfg.settings.push(Setting {
            key: key_t.to_string(),
            value: value.trim().to_string(),
            span: Span { offset: key_span.offset, len: l.len() - lead },
        });
        if let Some(k) = list {
            first = Some(first.map_or(key_span.offset, |f| f.min(key_span.offset)));
            last_end = last_end.max(line_start + l.len());
            cfg.list_spans.insert(k, Span { offset: key_span.offset, len: l.len() - lead });
            // every assignment replaces the earlier one; an empty one delegates nothing
            cfg.grants.retain(|g| g.list != k);
            add_systemd_items(cfg, k, value, vstart, rules);
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    } else if let Some(s) = cfg.setting(&sd.settings.private_bpf) {
        cfg.anchor = s.span;
    }
}

/// systemd's value syntax (namespace.c bpf_delegate_from_string): the whole value `any`, or
/// items separated by ',' only, not trimmed, each looked up exactly (case-sensitive) in
/// systemd's table, whose bit may differ from the kernel's value (rules/dialects/systemd.toml).
fn add_systemd_items(cfg: &mut Config, list: ListKind, value: &str, offset: usize, rules: &Rules) {
    let sd = rules.systemd();
    if value == "any" {
        cfg.grants.push(Grant {
            list,
            raw: "any".into(),
            item: Ok(names::Item::Any),
            lenient: Ok(names::Item::Any),
            span: Span { offset, len: 3 },
        });
        return;
    }
    let mut start = 0;
    for piece in value.split(',') {
        let here = start;
        start += piece.len() + 1;
        if piece.is_empty() {
            continue;
        }
        let trimmed = piece.trim();
        let lead = piece.len() - piece.trim_start().len();
        let lenient = names::parse_item(list, trimmed, rules);
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
        cfg.grants.push(Grant {
            list,
            raw: piece.to_string(),
            item,
            lenient,
            span: Span { offset: offset + here + lead, len: trimmed.len().max(1) },
        });
    }
}

/// Incus / LXD: `key: value` YAML lines or `incus config set INSTANCE key=value` lines. The
/// keys and separators are in rules/dialects/{incus,lxd}.toml.
fn parse_manager(cfg: &mut Config, rules: &Rules) {
    let m = match cfg.dialect {
        Dialect::Lxd => rules.lxd(),
        _ => rules.incus(),
    };
    let text = cfg.text.clone();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    for (line_start, l) in lines_with_offsets(&text) {
        if l.trim_start().starts_with('#') {
            continue;
        }
        for k in ListKind::ALL {
            let Some(key) = m.key(k) else { continue };
            let Some(pos) = l.find(key.as_str()) else { continue };
            let after = &l[pos + key.len()..];
            let (sep_len, rest) = if let Some(r) = after.strip_prefix(':') {
                (1, r)
            } else if let Some(r) = after.strip_prefix('=') {
                (1, r)
            } else {
                continue;
            };
            let vstart_rel = pos + key.len() + sep_len + (rest.len() - rest.trim_start().len());
            let value = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            let qlead = rest.trim().len() - rest.trim().trim_start_matches(['"', '\'']).len();
            let vstart = line_start + vstart_rel + qlead;
            first = Some(first.map_or(line_start + pos, |f| f.min(line_start + pos)));
            last_end = last_end.max(line_start + l.len());
            cfg.list_spans.insert(k, Span { offset: line_start + pos, len: l.len() - pos });
            // Incus splits on its separator and joins with ':' for the kernel, which splits
            // on ':' again; LXD passes the value through to the kernel as it is.
            let mut seps: Vec<char> = m.syntax.separator.chars().collect();
            if !seps.contains(&':') && m.keys.enable_key.is_empty() {
                seps.push(':');
            }
            add_items(cfg, k, value, vstart, &seps, rules);
        }
        for extra in &m.other_keys() {
            if let Some(pos) = l.find(extra.as_str()) {
                let after = &l[pos + extra.len()..];
                if let Some(v) = after.strip_prefix(':').or_else(|| after.strip_prefix('=')) {
                    cfg.settings.push(Setting {
                        key: extra.clone(),
                        value: v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
                        span: Span { offset: line_start + pos, len: l.len() - pos },
                    });
                }
            }
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    }
}

/// Incus or LXD, for YAML that could be either.
pub fn yaml_dialect(text: &str) -> Option<Dialect> {
    let r = crate::rules::rules();
    let has = |m: &crate::rules::ManagerRules| {
        ListKind::ALL.iter().any(|k| m.key(*k).is_some_and(|key| text.contains(key.as_str())))
    };
    if has(r.incus()) {
        Some(Dialect::Incus)
    } else if has(r.lxd()) {
        Some(Dialect::Lxd)
    } else {
        None
    }
}
