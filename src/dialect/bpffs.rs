//! What every bpffs dialect shares: the kernel's own option syntax, `delegate_cmds=a:b,...`,
//! found wherever it stands (a bare option string, a `mount -t bpf -o` command, an fstab or
//! /proc/mounts line, a .mount unit's `Options=`), and the warning every mount of a bpffs
//! from the host needs.

use crate::config::{Config, Setting, Span};
use crate::rules::Rules;
use crate::vocab::ListKind;

/// Why a bpffs mounted from the host does not serve: written into every mount dialect.
pub(super) const OWNERSHIP_NOTE: &str = "A BPF token can only be created in the user namespace that owns the bpffs instance, and never in \
the initial one (kernel/bpf/token.c). A bpffs mounted from the host is owned by the initial user namespace; the delegating \
manager must create the instance for the container's user namespace (fsopen in the container, fsconfig by the privileged \
parent), as systemd's PrivateBPF= and the sandbox of `bpfcap verify` do.";

/// What the kernel's four delegate option names start with (`delegate_`).
fn option_prefix() -> &'static str {
    crate::spelling::common_prefix(&ListKind::ALL.map(ListKind::mount_option))
}

/// Whether `body` holds something like a bpffs delegate option (a misspelt one too).
pub(super) fn mentions_options(body: &str) -> bool {
    body.contains(option_prefix())
}

/// bpffs options: `delegate_cmds=a:b,delegate_maps=...`, as a bare string, inside a
/// `mount -t bpf -o OPTS` command, or as the options field of an fstab or /proc/mounts line.
pub(super) fn parse(cfg: &mut Config, rules: &Rules) {
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
                super::add_items(cfg, k, value, vstart, &[':'], &mut unknown, rules);
            }
            search = vend.max(at + 1);
        }
    }
    if let Some(f) = first {
        cfg.anchor = Span { offset: f, len: last_end - f };
    }
    // delegate_* options bpffs does not know (a typo such as delegate_cmd=): bpffs ignores them
    let mut search = 0;
    let prefix = option_prefix();
    while let Some(pos) = text[search..].find(prefix) {
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
