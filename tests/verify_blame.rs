//! `verify` blames the right thing: an object that does not load as root without a token
//! either is reported as not a delegation problem, with libbpf's decisive line, and the table
//! ends with a summary of how many objects load.

use std::process::Command;

mod common;

#[test]
fn failures_that_are_not_the_tokens_are_said_so() {
    let ready = bpfcap::sandbox::preflight().map_err(|e| e.to_string()).and_then(|()| common::sid_root().map(drop));
    if !common::require(ready, "verify's blame on objects built by others") {
        return;
    }
    let root = common::sid_root().unwrap();
    // one object of libbpf-tools that loads as root, one that does not (this kernel lacks what
    // it attaches to or relocates against)
    let objects = common::objects_built_by_others(&root);
    let tools: Vec<&String> =
        objects.iter().map(|(d, _)| d).filter(|d| d.contains("/usr/sbin/") && d.contains("-libbpf#")).collect();
    let loads = tools.iter().find(|d| common::libbpf_loads_as_root(d, None) == Ok(true));
    let fails = tools.iter().find(|d| common::libbpf_loads_as_root(d, None) == Ok(false));
    let (Some(loads), Some(fails)) = (loads, fails) else {
        panic!("no pair of libbpf-tools objects, one loading as root and one not, among {}", tools.len());
    };
    let file = |d: &str| d.split('#').next().unwrap().to_string();
    let (a, b) = (file(loads), file(fails));
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcap")).args(["verify", &a, &b]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let blamed = text.lines().skip_while(|l| !l.starts_with(fails.as_str())).nth(1).unwrap_or_default();
    assert!(blamed.contains("diagnosis: not a delegation problem"), "{fails}: {text}");
    assert!(text.contains(" objects load; ") && text.contains("fail without a token too"), "{text}");
    assert!(text.lines().any(|l| l.starts_with(loads.as_str()) && l.contains(": loaded")), "{loads}: {text}");
}

/// After --minimize finds items that are not required, verify prints the minimal
/// configuration, ready to paste: the option string and a systemd drop-in.
#[test]
fn minimize_prints_the_minimal_configuration() {
    if !common::require(bpfcap::sandbox::preflight().map_err(|e| e.to_string()), "verify --minimize's configuration") {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let obj = "testdata/kprobe.bpf.o";
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_bpfcap")).current_dir(root).args(args).output().unwrap();
    let options = String::from_utf8_lossy(&run(&["emit", "--target", "mount-options", obj]).stdout)
        .lines()
        .find(|l| l.starts_with("delegate_"))
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.opts");
    std::fs::write(&extra, options.replace("delegate_maps=", "delegate_maps=hash:")).unwrap();
    let out = run(&["verify", "--minimize", "--config", extra.to_str().unwrap(), obj]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let after: Vec<&str> = text.lines().skip_while(|l| *l != "minimal delegation:").collect();
    assert_eq!(after.get(1), Some(&options.as_str()), "{text}");
    assert!(after.iter().any(|l| l.starts_with("BPFDelegateMaps=")), "{text}");
}
