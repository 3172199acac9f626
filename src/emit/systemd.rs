//! The systemd drop-in: PrivateBPF=yes, the four BPFDelegate*= settings in systemd's exact
//! spelling (rules/dialects/systemd.toml, checked bit by bit against systemd's own table), and
//! the settings a working token needs, each with a comment saying why.

use super::{Emitted, Why};
use crate::delegation::Delegation;
use crate::rules::{Rules, Version};
use crate::vocab::ListKind;

/// Orders systemd versions like "258.5" and "262" (an unreadable one first).
fn version_key(v: &str) -> Version {
    Version::parse(v).unwrap_or(Version(0, 0))
}

pub fn emit(d: &Delegation, header: &str, why: Why, rules: &Rules) -> Emitted {
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
            lines.push(super::comment(&format!("{}: {}", k.mount_option(), reasons.join("; "))));
            lines.push(format!("{}={}", sd.setting(k), names.join(",")));
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
        super::comment(header)
    );
    // the settings a token needs besides the lists (rules/dialects/systemd.toml `requires`)
    for r in &sd.settings.requires {
        if let Some(comment) = &r.written {
            for line in comment.lines() {
                out.push_str(&format!("{}\n", super::comment(line)));
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
