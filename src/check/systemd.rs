//! systemd-specific findings: exact spelling (systemd matches names case-sensitively and drops
//! a misspelt one with only a log line), names whose bit means something else, and the unit
//! settings a token needs (rules/dialects/systemd.toml).

use super::{Code, Finding, Severity, is_true, push};
use crate::config::{Config, Grant};
use crate::delegation::Delegation;
use crate::rules::Rules;
use crate::text::Escaped;

/// A BPFDelegate*= item systemd accepts: does it mean what it says?
pub fn spelling(cfg: &Config, g: &Grant, rules: &Rules, out: &mut Vec<Finding>) {
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
pub fn not_accepted(cfg: &Config, g: &Grant, rules: &Rules, out: &mut Vec<Finding>) {
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
pub fn unit(cfg: &Config, needed: &Delegation, rules: &Rules, out: &mut Vec<Finding>) {
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
    let userns =
        cfg.setting("PrivateUsers").is_some_and(|s| !s.value.eq_ignore_ascii_case("no") && !s.value.is_empty())
            || cfg
                .setting("DelegateNamespaces")
                .is_some_and(|s| !s.value.is_empty() && !s.value.eq_ignore_ascii_case("no"));
    if !userns {
        let why = sd.settings.why_required("PrivateUsers");
        push(
            cfg,
            out,
            Code::SystemdNoUserns,
            Severity::Error,
            format!("PrivateBPF=yes without a user namespace for the service: {why}"),
            Some("add PrivateUsers=self".into()),
            pspan,
        );
    }
    let delegated_mnt = cfg.setting("DelegateNamespaces").is_some_and(|s| {
        let v = s.value.to_ascii_lowercase();
        v == "yes" || v.split_whitespace().any(|w| w == "mnt")
    });
    if !delegated_mnt {
        let why = sd.settings.why_required("DelegateNamespaces");
        push(
            cfg,
            out,
            Code::SystemdMountNamespace,
            Severity::Warning,
            format!(
                "without DelegateNamespaces=mnt a system service's bpffs is created before its user namespace: {why}"
            ),
            Some("add DelegateNamespaces=mnt (not needed for user services, which delegate every namespace)".into()),
            pspan,
        );
    }
    if let Some(b) = cfg.setting("CapabilityBoundingSet") {
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
                    format!("CapabilityBoundingSet= leaves out {c}, which the token checks"),
                    Some(format!("add {c} to CapabilityBoundingSet=")),
                    Some(b.span),
                );
            }
        }
    }
    if let Some(u) = cfg.setting("User").filter(|u| u.value != "root" && u.value != "0") {
        let ambient: Vec<String> = cfg
            .settings
            .iter()
            .filter(|s| s.key == "AmbientCapabilities")
            .flat_map(|s| s.value.split_whitespace().map(|c| c.to_ascii_uppercase()).collect::<Vec<_>>())
            .collect();
        for c in &needed.capabilities {
            if !ambient.contains(c) {
                push(
                    cfg,
                    out,
                    Code::SystemdCapabilities,
                    Severity::Error,
                    format!("User={} runs without {c}: a non-root service needs it in AmbientCapabilities=", u.value),
                    Some(format!("add AmbientCapabilities={c}")),
                    Some(u.span),
                );
            }
        }
    }
}

/// Lines systemd ignores, keys it does not know where they stand, and, in a drop-in, settings
/// that have no place in a BPF delegation.
pub fn settings(cfg: &Config, rules: &Rules, out: &mut Vec<Finding>) {
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
        let drop_in = !crate::config::is_unit_file(&cfg.file_at(s.span.offset).name, rules);
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
