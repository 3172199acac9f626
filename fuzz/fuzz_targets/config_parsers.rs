//! Text → every parser of configuration bpfcap reads (`verify --config`, `check`).
//!
//! At first the only configuration parser was `bpfcap::delegation::parse_mount_options(text,
//! rules())` (bpffs mount options); it became `bpfcap::config::parse` with one dialect per
//! spelling (systemd units, mount options and /proc/mounts lines, fstab, Incus, LXD) over
//! `bpfcap::names::parse_item`. When a parser of untrusted text is added, call it here too.
#![no_main]

use bpfcap::config::{self, Dialect};
use bpfcap::names::parse_item;
use bpfcap::rules::{ListKind, rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = rules();
    // detected dialect, then every dialect explicitly
    let dialects = [None, Some(Dialect::Systemd), Some(Dialect::Mount), Some(Dialect::Fstab), Some(Dialect::Incus), Some(Dialect::Lxd)];
    for d in dialects {
        match config::parse(text, "fuzz.conf", d, r) {
            Ok(cfg) => {
                let _ = cfg.delegation(r);
                for g in &cfg.grants {
                    let _ = cfg.line_col(g.span.offset);
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    let _ = config::detect(text);
    let _ = config::dialects::yaml_dialect(text);
    for kind in ListKind::ALL {
        for item in text.split([':', ',', ' ', '\n']).take(64) {
            let _ = parse_item(kind, item, r);
        }
    }
});
