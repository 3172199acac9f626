//! Human-readable tables (comfy-table) for `analyze`.

use std::fmt::Write as _;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::analysis::Analysis;
use crate::analysis::requirements::Reason;
use crate::rules::Rules;
use crate::text::{Escaped, escape};
use crate::vocab::{ListKind, Need};

/// A table cell or line of text from an object or a file name (see [`crate::text`]).
fn untrusted(s: &str) -> String {
    escape(s).into_owned()
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic).set_header(header.to_vec());
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        t.set_width(w);
    }
    t
}

fn short_reason(r: &Reason) -> String {
    let mut s = r.text.to_string();
    if let Some(l) = &r.location {
        let _ = write!(s, " [{l}]");
    }
    if let Some(v) = &r.libbpf {
        let _ = write!(s, " (libbpf {v})");
    }
    if r.object.is_empty() { untrusted(&s) } else { untrusted(&format!("{}: {s}", r.object)) }
}

/// Warnings shown without --verbose.
const WARNINGS_SHOWN: usize = 10;

/// `analyze`'s table: the answer first (the four lists, the capabilities, the bpffs option
/// string unbroken, what to run next), then with `verbose` each object's programs and maps,
/// the reasons of every item and what each optional item would cost.
/// `next`: the command to suggest, or None (`--quiet`: the answer only, no warnings).
pub fn render(a: &Analysis, rules: &Rules, verbose: bool, next: Option<&str>) -> String {
    let mut out = summary(a, rules, verbose, next.is_none());
    if let Some(next) = next {
        let _ = writeln!(
            out,
            "\nnext: {next}{}",
            if verbose { "" } else { "   (why each item: --verbose; everything: --format json)" }
        );
    }
    if verbose {
        out.push('\n');
        out.push_str(&details(a, rules));
    }
    out
}

/// `analyze --by-executable`'s table after the whole answer: each file's own bpffs options and
/// capabilities.
pub fn render_executables(executables: &[crate::pipeline::Executable], rules: &Rules) -> String {
    let mut out = String::from("\nPer executable (each file's objects alone):\n");
    for e in executables {
        let a = &e.analysis;
        let _ = writeln!(
            out,
            "{} ({} object{}, {})",
            Escaped(&e.path),
            a.objects.len(),
            if a.objects.len() == 1 { "" } else { "s" },
            a.loader_description(rules)
        );
        if a.objects.iter().any(|o| o.loader.token()) {
            let caps =
                if a.delegation.capabilities.is_empty() { "-".into() } else { a.delegation.capabilities.join(" ") };
            let _ = writeln!(out, "  {}\n  capabilities: {caps}", a.delegation.mount_options(rules));
        }
        if !a.host_capabilities.is_empty() {
            let _ = writeln!(out, "  capabilities in the initial user namespace: {}", a.host_capabilities.join(" "));
        }
    }
    out
}

/// The answer, and the warnings.
fn summary(a: &Analysis, rules: &Rules, verbose: bool, quiet: bool) -> String {
    let mut out = String::new();
    let d = &a.delegation;
    let token_objects = a.objects.iter().filter(|o| o.loader.token()).count();
    let objects = match a.objects.as_slice() {
        [one] => format!("1 object: {}", Escaped(&one.path)),
        many => format!("{} objects", many.len()),
    };
    if token_objects == 0 && !a.objects.is_empty() {
        let _ = writeln!(
            out,
            "No BPF delegation: the loader takes no BPF token ({}; {objects}).",
            a.loader_description(rules)
        );
    } else {
        let _ = writeln!(out, "Delegation for {} ({objects}):", a.loader_description(rules));
        for k in ListKind::ALL {
            let items = d.list(k);
            let _ = writeln!(
                out,
                "  {:<17} {}",
                k.mount_option(),
                if items.is_empty() { "-".into() } else { items.join(" ") }
            );
        }
        let caps = if d.capabilities.is_empty() { "-".into() } else { d.capabilities.join(" ") };
        let _ = writeln!(out, "  {:<17} {caps}", "capabilities");
        let _ = writeln!(out, "bpffs mount options:\n{}", d.mount_options(rules));
    }
    if !a.host_capabilities.is_empty() {
        let _ = writeln!(
            out,
            "Capabilities in the initial user namespace (loaders that take no BPF token): {}",
            a.host_capabilities.join(", ")
        );
    }
    let optional = a.requirements.optional.len();
    if optional > 0 && !verbose && !quiet {
        let _ = writeln!(
            out,
            "{optional} optional item group{} {}: the loader copes without them (--verbose says what each costs)",
            if optional == 1 { "" } else { "s" },
            if a.with_optional { "included by --with-optional" } else { "left out unless --with-optional" }
        );
    }
    let warnings = &a.requirements.warnings;
    if !warnings.is_empty() && !quiet {
        let _ = writeln!(out, "\nWarnings:");
        let shown = if verbose { warnings.len() } else { WARNINGS_SHOWN };
        for w in warnings.iter().take(shown) {
            let _ = writeln!(out, "  - {}", Escaped(w));
        }
        if warnings.len() > shown {
            let _ = writeln!(out, "  (+{} more: --verbose, or --format json)", warnings.len() - shown);
        }
    }
    out
}

/// Per object its loader, programs and maps; the reasons of every item; the optional items.
fn details(a: &Analysis, rules: &Rules) -> String {
    let mut out = String::new();
    for o in &a.objects {
        let _ = writeln!(
            out,
            "{} (object {}, license {})",
            Escaped(&o.path),
            Escaped(&o.object.name),
            Escaped(o.object.license.as_deref().unwrap_or("none"))
        );
        let _ = writeln!(out, "loader: {} — {}", o.loader.describe(rules), Escaped(&o.loader.why));
        let mut t = table(&["program", "section", "type", "expected attach type", "helpers / kfuncs"]);
        for p in &o.programs {
            let mut calls: Vec<String> = p.uses.helpers.iter().map(|h| format!("bpf_{h}")).collect();
            calls.extend(p.uses.kfuncs.iter().map(|k| k.to_string()));
            let mut name = p.name.clone();
            if !o.selected.contains(&p.name) {
                name.push_str(" (not selected)");
            }
            t.add_row(vec![
                untrusted(&name),
                untrusted(&p.section),
                p.prog_type.clone().unwrap_or_else(|| "unknown".into()),
                p.expected_attach_type.clone().unwrap_or_else(|| "-".into()),
                untrusted(&calls.join(" ")),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if !o.object.maps.is_empty() {
            let mut t = table(&["map", "type", "from"]);
            for m in &o.object.maps {
                t.add_row(vec![
                    untrusted(&m.name),
                    rules
                        .enums
                        .name_of(ListKind::Maps, m.map_type)
                        .map(String::from)
                        .unwrap_or_else(|| format!("unknown({})", m.map_type)),
                    untrusted(&format!("{:?} {}", m.origin, m.section).to_lowercase()),
                ]);
            }
            let _ = writeln!(out, "{t}");
        }
        out.push('\n');
    }
    let d = &a.delegation;
    let token_objects = a.objects.iter().filter(|o| o.loader.token()).count();
    if token_objects == 0 && !a.objects.is_empty() {
        let _ = writeln!(out, "No BPF delegation: the loader takes no BPF token ({}).", a.loader_description(rules));
    } else {
        let _ = writeln!(
            out,
            "Why, for {} ({} object{}):",
            a.loader_description(rules),
            a.objects.len(),
            if a.objects.len() == 1 { "" } else { "s" }
        );
        let mut t = table(&["setting", "item", "why"]);
        for k in ListKind::ALL {
            for item in d.list(k) {
                let reasons = a.requirements.required.get(&Need::List(k, item.clone()));
                t.add_row(vec![k.mount_option().to_string(), item.clone(), why(reasons)]);
            }
        }
        for c in &d.capabilities {
            t.add_row(vec![
                "capability".to_string(),
                c.clone(),
                why(a.requirements.required.get(&Need::Cap(c.clone()))),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if !a.requirements.optional.is_empty() {
        let _ = writeln!(
            out,
            "\nOptional (left out{}; the loader copes without them):",
            if a.with_optional { ", but included by --with-optional" } else { " unless --with-optional" }
        );
        for o in &a.requirements.optional {
            let items: Vec<String> = o.items.iter().map(|n| n.to_string()).collect();
            let lost = o.lost();
            let lost = if lost.chars().count() > 240 {
                format!("{}… (see --format json)", lost.chars().take(240).collect::<String>())
            } else {
                lost
            };
            let _ = writeln!(out, "  - {} [{}]: without it: {lost}", items.join(", "), o.loader_step());
        }
    }
    out
}

fn why(reasons: Option<&Vec<Reason>>) -> String {
    let Some(rs) = reasons else { return String::new() };
    // the object's own needs first, then the loader's
    let first = rs.iter().min_by_key(|r| r.loader_step.is_some()).map(short_reason).unwrap_or_default();
    let more = rs.len().saturating_sub(1);
    if more > 0 { format!("{first} (+{more} more; see --format json)") } else { first }
}
