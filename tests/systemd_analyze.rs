//! The systemd drop-in bpfcap emits is accepted by `systemd-analyze verify` of a systemd that
//! has these settings (258 or newer), without warnings about them; a misspelt name is reported
//! by the same systemd (proving the check can fail).
//!
//! systemd-analyze comes from the host when it is 258 or newer, else from the Debian sid chroot
//! named by BPFCAP_SYSTEMD_ROOT (`./dev test` builds one with debootstrap when needed).
//! Without either the test is skipped, or fails under BPFCAP_REQUIRE_TOKEN_TESTS=1.

use std::path::PathBuf;

mod common;
use std::process::Command;

fn analyzer() -> Option<Option<PathBuf>> {
    let version = |out: std::process::Output| -> Option<u32> {
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.split_whitespace().nth(1)?.parse().ok()
    };
    if let Ok(out) = Command::new("systemd-analyze").arg("--version").output()
        && version(out).is_some_and(|v| v >= 258)
    {
        return Some(None);
    }
    let root = PathBuf::from(std::env::var_os("BPFCAP_SYSTEMD_ROOT")?);
    let out = Command::new("chroot").arg(&root).args(["systemd-analyze", "--version"]).output().ok()?;
    if version(out).is_some_and(|v| v >= 258) { Some(Some(root)) } else { None }
}

fn verify(root: &Option<PathBuf>, unit_name: &str, dropin: &str) -> String {
    let base = match root {
        Some(r) => r.join("etc/systemd/system"),
        None => PathBuf::from("/etc/systemd/system"),
    };
    let unit = base.join(unit_name);
    let dir = base.join(format!("{unit_name}.d"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&unit, "[Unit]\nDescription=bpfcap test\n[Service]\nExecStart=/bin/true\n").unwrap();
    std::fs::write(dir.join("bpf-token.conf"), dropin).unwrap();
    let in_root = format!("/etc/systemd/system/{unit_name}");
    let out = match root {
        Some(r) => Command::new("chroot").arg(r).args(["systemd-analyze", "verify", &in_root]).output().unwrap(),
        None => Command::new("systemd-analyze").args(["verify", unit.to_str().unwrap()]).output().unwrap(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&unit);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn emitted_dropins_pass_systemd_analyze_verify() {
    let found = analyzer();
    if !common::require(
        found
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "no systemd-analyze 258+ (host or BPFCAP_SYSTEMD_ROOT chroot)".to_string()),
        "systemd-analyze test",
    ) {
        return;
    }
    let root = found.expect("checked");
    let mut checked = 0;
    for (i, obj) in common::sample_objects().iter().enumerate() {
        let name = obj.to_string_lossy();
        if common::is_legacy(obj) {
            continue;
        }
        let out =
            Command::new(env!("CARGO_BIN_EXE_bpfcap")).args(["emit", "--target", "systemd"]).arg(obj).output().unwrap();
        assert!(out.status.success());
        let dropin = String::from_utf8(out.stdout).unwrap();
        let report = verify(&root, &format!("bpfcap-test-{i}.service"), &dropin);
        for word in ["BPF", "Private", "Delegate", "Capabilit", "Unknown", "ignoring"] {
            assert!(!report.contains(word), "{name}: systemd-analyze complains:\n{report}\n--- drop-in:\n{dropin}");
        }
        checked += 1;
        // negative control: the same systemd reports a name in the wrong case
        if i == 0 {
            let bad = dropin.replacen("BPFProgLoad", "bpfprogload", 1);
            assert_ne!(bad, dropin);
            let report = verify(&root, "bpfcap-test-bad.service", &bad);
            assert!(report.contains("Unknown BPF delegate option, ignoring: bpfprogload"), "{report}");
        }
    }
    assert!(checked >= 20, "{checked}");
}
