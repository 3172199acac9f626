//! One parser per dialect. Each finds the delegation settings in the text and records every
//! item with its byte span. The dialects' key names and separators are data
//! (rules/dialects/*.toml); the kernel's bpffs option names come from [`ListKind`].

use std::collections::BTreeMap;

use super::{Config, Dialect, Grant, Malformed, Setting, Span};
use crate::names;
use crate::rules::Rules;
use crate::vocab::ListKind;

pub fn parse(dialect: Dialect, text: &str, name: &str, rules: &Rules) -> Config {
    let mut cfg = Config {
        dialect,
        name: name.to_string(),
        files: vec![super::SourceFile { name: name.to_string(), start: 0, first_line: 0 }],
        text: text.to_string(),
        grants: Vec::new(),
        settings: Vec::new(),
        malformed: Vec::new(),
        list_spans: BTreeMap::new(),
        anchor: Span { offset: 0, len: 0 },
        line_starts: Config::line_starts_of(text),
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

/// Unknown names of one configuration that get the closest known names as suggestions; the
/// rest get the general help (a search compares with every name).
const MAX_SUGGESTED_NAMES: usize = 64;

/// Splits `value` (which starts at byte `offset` of the text) on any of `seps`, adding each
/// non-empty piece as a grant of `list`. `unknown` counts the unknown names so far.
fn add_items(
    cfg: &mut Config,
    list: ListKind,
    value: &str,
    offset: usize,
    seps: &[char],
    unknown: &mut usize,
    rules: &Rules,
) {
    let mut start = 0;
    for (i, c) in value.char_indices().chain(std::iter::once((value.len(), seps[0]))) {
        if i == value.len() || seps.contains(&c) {
            let piece = &value[start..i];
            let trimmed = piece.trim();
            if !trimmed.is_empty() {
                let lead = piece.len() - piece.trim_start().len();
                let item = if *unknown < MAX_SUGGESTED_NAMES {
                    names::parse_item(list, trimmed, rules)
                } else {
                    names::parse_item_quick(list, trimmed, rules)
                };
                *unknown += usize::from(item.is_err());
                cfg.grants.push(Grant {
                    list,
                    raw: trimmed.to_string(),
                    item,
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
    let mut unknown = 0;
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
                add_items(cfg, k, value, vstart, &[':'], &mut unknown, rules);
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
                section: None,
                ignored: false,
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
                section: None,
                ignored: false,
            });
        }
    }
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
fn parse_systemd(cfg: &mut Config, rules: &Rules) {
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
    for (line_start, l) in lines_with_offsets(&text) {
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
/// items separated by ',' only, not trimmed, each looked up exactly (case-sensitive) in
/// systemd's table, whose bit may differ from the kernel's value (rules/dialects/systemd.toml).
/// `at` gives the file offset of a byte of `value`.
fn systemd_items(list: ListKind, value: &str, at: &dyn Fn(usize) -> usize, rules: &Rules) -> Vec<Grant> {
    let sd = rules.systemd();
    if value == "any" {
        return vec![Grant {
            list,
            raw: "any".into(),
            item: Ok(names::Item::Any),
            span: Span { offset: at(0), len: 3 },
        }];
    }
    let mut grants = Vec::new();
    let mut start = 0;
    for piece in value.split(',') {
        let here = start;
        start += piece.len() + 1;
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
    let mut unknown = 0;
    let known: Vec<String> = ListKind::ALL.iter().filter_map(|k| m.key(*k).cloned()).chain(m.other_keys()).collect();
    for (line_start, l) in lines_with_offsets(&text) {
        if l.trim_start().starts_with('#') {
            continue;
        }
        // a key of the manager's BPF family that it does not know (a typo): the manager refuses it
        if let Some((pos, key)) = manager_key(l)
            && !known.iter().any(|k| k == key)
            && m.is_near_key(key)
        {
            cfg.settings.push(Setting {
                key: key.to_string(),
                value: String::new(),
                span: Span { offset: line_start + pos, len: key.len() },
                section: None,
                ignored: true,
            });
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
            // The manager splits on its separator and hands the items to the kernel joined
            // with ':' (Incus), or passes the value through (LXD, whose separator is ':'): the
            // kernel splits on ':' either way.
            let mut seps: Vec<char> = m.syntax.separator.chars().collect();
            if !seps.contains(&':') {
                seps.push(':');
            }
            add_items(cfg, k, value, vstart, &seps, &mut unknown, rules);
        }
        for extra in &m.other_keys() {
            if let Some(pos) = l.find(extra.as_str()) {
                let after = &l[pos + extra.len()..];
                if let Some(v) = after.strip_prefix(':').or_else(|| after.strip_prefix('=')) {
                    cfg.settings.push(Setting {
                        key: extra.clone(),
                        value: v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
                        span: Span { offset: line_start + pos, len: l.len() - pos },
                        section: None,
                        ignored: false,
                    });
                }
            }
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    }
}

/// The key a manager configuration line sets, with its byte offset in the line: `key: value`
/// (YAML, also as a list item) or `incus|lxc config set INSTANCE key=value` (or `key value`).
fn manager_key(l: &str) -> Option<(usize, &str)> {
    let offset_of = |part: &str| part.as_ptr() as usize - l.as_ptr() as usize;
    let words: Vec<&str> = l.split_whitespace().collect();
    if let Some(i) = words.windows(2).position(|w| w == ["config", "set"]) {
        let word = *words.get(i + 3)?;
        let key = word.split('=').next().unwrap_or(word);
        return Some((offset_of(word), key));
    }
    let t = l.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    let (key, _) = t.split_once(':')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((offset_of(key), key))
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
