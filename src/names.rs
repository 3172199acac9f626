//! Delegation names in every spelling: the kernel's short names (`prog_load`, `ringbuf`), the
//! uapi enum names (`BPF_PROG_LOAD`, `BPF_MAP_TYPE_RINGBUF`), systemd's names
//! (`BPFProgLoad`, `BPFMapTypeRingbuf`), with or without prefixes, in any case; `any`; and the
//! kernel's numeric masks. Everything resolves to kernel enum values (rules/kernel/enums.toml).

use miette::Diagnostic;
use thiserror::Error;

use crate::rules::Rules;
use crate::vocab::ListKind;

/// One parsed item of a delegation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A single enum value, with the kernel's short name for it.
    Name { value: u32, name: String },
    /// `any`: every bit.
    Any,
    /// A numeric mask (hex `0x..`, or decimal, as kstrtou64 reads it).
    Mask(u64),
}

#[derive(Debug, Clone, Error, Diagnostic, PartialEq, Eq)]
#[error("unknown {list} name '{}'", crate::text::Escaped(.raw))]
#[diagnostic(code(bpfcap::names::unknown), help("{help}"))]
pub struct NameError {
    pub list: &'static str,
    pub raw: String,
    pub help: String,
    /// The closest known names (kernel spelling).
    pub suggestions: Vec<String>,
}

fn normalize(s: &str) -> String {
    s.chars().filter(|c| *c != '_' && *c != '-').flat_map(|c| c.to_lowercase()).collect()
}

/// The prefixes a name of each list may carry, longest first.
fn prefixes(kind: ListKind) -> &'static [&'static str] {
    match kind {
        ListKind::Commands => &["bpf"],
        ListKind::Maps => &["bpfmaptype", "maptype"],
        ListKind::Programs => &["bpfprogtype", "progtype"],
        ListKind::Attachments => &["bpf"],
    }
}

fn list_word(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Commands => "command",
        ListKind::Maps => "map type",
        ListKind::Programs => "program type",
        ListKind::Attachments => "attach type",
    }
}

/// Parses one item of `kind` in any spelling.
pub fn parse_item(kind: ListKind, raw: &str, rules: &Rules) -> Result<Item, NameError> {
    parse_item_with(kind, raw, rules, true)
}

/// [`parse_item`] without looking for the closest names of an unknown one (for the many
/// unknown names of a long list: each search costs a comparison with every name).
pub fn parse_item_quick(kind: ListKind, raw: &str, rules: &Rules) -> Result<Item, NameError> {
    parse_item_with(kind, raw, rules, false)
}

/// Names longer than this get no suggestions (no kernel name is half as long).
const MAX_SUGGESTED_LEN: usize = 64;

fn parse_item_with(kind: ListKind, raw: &str, rules: &Rules, suggest: bool) -> Result<Item, NameError> {
    let t = raw.trim();
    if t.eq_ignore_ascii_case("any") {
        return Ok(Item::Any);
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if let Ok(m) = u64::from_str_radix(hex, 16) {
            return Ok(Item::Mask(m));
        }
    } else if !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit())
        && let Ok(m) = t.parse::<u64>()
    {
        return Ok(Item::Mask(m));
    }
    let n = normalize(t);
    let mut stripped = vec![n.clone()];
    for p in prefixes(kind) {
        if let Some(rest) = n.strip_prefix(p) {
            stripped.push(rest.to_string());
        }
    }
    for e in rules.enums.list(kind) {
        let short = normalize(&e.name);
        if stripped.contains(&short) {
            let value = e.value;
            let name = rules.enums.name_of(kind, value).unwrap_or(&e.name).to_string();
            return Ok(Item::Name { value, name });
        }
    }
    let mut scored: Vec<(usize, &str)> = rules
        .enums
        .list(kind)
        .iter()
        .filter(|e| suggest && n.len() <= MAX_SUGGESTED_LEN && e.alias_of.is_none())
        .map(|e| {
            (
                stripped.iter().map(|s| crate::spelling::distance(s, &normalize(&e.name))).min().unwrap_or(usize::MAX),
                e.name.as_str(),
            )
        })
        .collect();
    scored.sort();
    let suggestions: Vec<String> =
        scored.iter().take_while(|(d, _)| *d <= 3.max(n.len() / 4)).take(3).map(|(_, s)| s.to_string()).collect();
    let help = if suggestions.is_empty() {
        format!("use a kernel {} name as /proc/mounts prints it, `any`, or a hex mask", list_word(kind))
    } else {
        format!("did you mean {}?", suggestions.join(", "))
    };
    Err(NameError { list: list_word(kind), raw: t.to_string(), help, suggestions })
}

/// Resolves a list of items to a bit mask the way bpffs does (kernel/bpf/inode.c
/// bpf_parse_param): names OR their bit in, `any` sets every bit, and a number *replaces*
/// the mask built so far.
pub fn fold_mask(items: &[Item]) -> u64 {
    let mut m = 0u64;
    for i in items {
        match i {
            Item::Name { value, .. } if *value < 64 => m |= 1 << value,
            Item::Name { .. } => {}
            Item::Any => m = u64::MAX,
            Item::Mask(x) => m = *x,
        }
    }
    m
}

/// Kernel short names of the bits set in `mask` (aliases excluded), in bit order.
pub fn names_of_mask(kind: ListKind, mask: u64, rules: &Rules) -> Vec<String> {
    let mut v: Vec<(u32, String)> = rules
        .enums
        .list(kind)
        .iter()
        .filter(|e| e.alias_of.is_none() && e.value < 64 && mask & (1 << e.value) != 0)
        .map(|e| (e.value, e.name.clone()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    fn name(kind: ListKind, s: &str) -> String {
        match parse_item(kind, s, rules()).unwrap() {
            Item::Name { name, .. } => name,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn every_name_in_every_spelling() {
        let r = rules();
        for kind in ListKind::ALL {
            let (uapi_prefix, systemd_prefix) = match kind {
                ListKind::Maps => ("BPF_MAP_TYPE_", "BPFMapType"),
                ListKind::Programs => ("BPF_PROG_TYPE_", "BPFProgType"),
                _ => ("BPF_", "BPF"),
            };
            for e in r.enums.list(kind) {
                let want = r.enums.name_of(kind, e.value).unwrap().to_string();
                let camel: String = e
                    .name
                    .split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                    })
                    .collect();
                let spellings = [
                    e.name.clone(),
                    e.name.to_uppercase(),
                    e.uapi.clone(),
                    e.uapi.to_lowercase(),
                    format!("{uapi_prefix}{}", e.name.to_uppercase()),
                    format!("{systemd_prefix}{camel}"),
                    format!("{systemd_prefix}{camel}").to_lowercase(),
                    camel.clone(),
                ];
                for s in spellings {
                    assert_eq!(name(kind, &s), want, "{:?} spelling {s}", kind);
                }
            }
        }
    }

    #[test]
    fn normalised_names_do_not_collide() {
        let r = rules();
        for kind in ListKind::ALL {
            let mut seen = std::collections::BTreeMap::new();
            for e in r.enums.list(kind) {
                if let Some(prev) = seen.insert(normalize(&e.name), e.value) {
                    assert_eq!(prev, e.value, "{} collides", e.name);
                }
            }
        }
    }

    #[test]
    fn any_masks_and_unknown_names() {
        let r = rules();
        assert_eq!(parse_item(ListKind::Maps, "any", r), Ok(Item::Any));
        assert_eq!(parse_item(ListKind::Maps, "0x10", r), Ok(Item::Mask(16)));
        assert_eq!(parse_item(ListKind::Maps, "16", r), Ok(Item::Mask(16)));
        let e = parse_item(ListKind::Maps, "ringbuff", r).unwrap_err();
        assert_eq!(e.suggestions.first().map(String::as_str), Some("ringbuf"));
        assert!(e.help.contains("ringbuf"));
        assert_eq!(fold_mask(&[Item::Name { value: 5, name: "prog_load".into() }, Item::Mask(1)]), 1);
        assert_eq!(fold_mask(&[Item::Mask(1), Item::Name { value: 5, name: "prog_load".into() }]), 0x21);
        assert_eq!(names_of_mask(ListKind::Commands, 0x21, r), vec!["map_create", "prog_load"]);
    }
}
