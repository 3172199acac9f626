//! `verify` blames the right thing: an object that does not load as root without a token
//! either is reported as not a delegation problem, with libbpf's decisive line, and the table
//! ends with a summary of how many objects load. Measured on every libbpf-tools object.

use std::process::Command;

mod common;

/// Every libbpf-tools object of Debian's (built by others): verify's verdict on each agrees
/// with libbpf loading it as root without a token. What loads as root loads through the
/// derived delegation; what does not is reported as not a delegation problem, with libbpf's
/// line; and the summary counts both.
#[test]
fn failures_that_are_not_the_tokens_are_said_so() {
    let ready = bpfcap::sandbox::preflight().map_err(|e| e.to_string()).and_then(|()| common::sid_root().map(drop));
    if !common::require(ready, "verify's blame on objects built by others") {
        return;
    }
    let root = common::sid_root().unwrap();
    let objects = common::objects_built_by_others(&root);
    let tools: Vec<&bpfcap::model::ObjectRef> = objects
        .iter()
        .map(|(_, o)| common::source_of(o))
        .filter(|s| s.display.contains("/usr/sbin/") && s.display.contains("-libbpf#"))
        .collect();
    assert!(tools.len() >= 50, "only {} libbpf-tools objects", tools.len());
    let mut files: Vec<&std::path::Path> = tools.iter().map(|s| s.file.as_path()).collect();
    files.dedup();
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcap")).arg("verify").args(&files).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let (mut loads, mut fails) = (0, 0);
    for source in &tools {
        let display = &source.display;
        let as_root = common::libbpf_loads_as_root(source, None).unwrap();
        let mut lines = text.lines().skip_while(|l| !l.starts_with(&format!("{display}: ")));
        let verdict = lines.next().unwrap_or_else(|| panic!("{display} is not in the report: {text}"));
        let next = lines.next().unwrap_or_default();
        if as_root {
            loads += 1;
            assert!(
                verdict.contains(": loaded"),
                "{display} loads as root, but not through the delegation: {verdict}\n{next}"
            );
        } else {
            fails += 1;
            assert!(verdict.contains(": failed at"), "{display} does not load as root: {verdict}");
            assert!(
                next.contains("diagnosis: not a delegation problem") && next.contains("libbpf: "),
                "{display}: {next}"
            );
        }
    }
    assert!(loads > 0 && fails > 0, "{loads} load, {fails} fail: the kernel under test decides both");
    let summary = format!("{loads} of {} objects load; {fails} fail without a token too", tools.len());
    assert!(text.contains(&summary), "not `{summary}`: {text}");
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
