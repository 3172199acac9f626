//! Real loads through real BPF tokens: for every sample object libbpf can open, the delegation
//! and capabilities bpfcap derives (libbpf 1.7 profile: the libbpf that libbpf-rs vendors) must
//! let libbpf load all its programs from a fresh user namespace, and dropping any single item
//! must make that load fail.
//!
//! Needs root and a kernel with BPF tokens. Without them the test prints why and returns,
//! unless BPFCAP_REQUIRE_TOKEN_TESTS=1, where a missing precondition fails the test.
//!
//! Some programs cannot load on a given kernel even as host root (e.g. fentry/lsm where the
//! kernel has no BPF trampolines, typed ksyms without CONFIG_KALLSYMS_ALL). For those objects the
//! test asserts the kernel refuses them even with every item delegated, and says so; they do
//! not count as verified.

use std::collections::BTreeSet;

use bpfcap::analysis::{LoaderChoice, Options, analyse};
use bpfcap::rules::{Version, rules};
use bpfcap::sandbox;
use bpfcap::verify::{Target, VerifyOptions, describe, load, verify};

mod common;
use common::sample_objects as objects;

fn preconditions() -> bool {
    common::require(sandbox::preflight().map_err(|e| e.to_string()), "token tests")
}

/// What happened to one object: verified minimal, refused by this kernel even with
/// everything delegated, or a failure of bpfcap's answer.
enum Result_ {
    Verified(String),
    Refused(String),
    Skipped,
    Failed(String),
}

/// Loads `display` (a file, or `path#name` inside an executable) with the delegation bpfcap
/// derives for libbpf 1.7, drops every item in turn, and compares with a load that has
/// everything delegated.
fn check_object(display: &str, obj: bpfcap::model::Object) -> Result_ {
    let r = rules();
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let wide = sandbox::Delegation { cmds: u64::MAX, maps: u64::MAX, progs: u64::MAX, attachs: u64::MAX };
    let wide_caps = vec![sandbox::CAP_BPF, sandbox::CAP_PERFMON, sandbox::CAP_NET_ADMIN];
    // legacy maps and unknown sections: libbpf cannot load these objects at all
    if !obj.warnings.is_empty() || obj.programs.iter().any(|p| p.section.starts_with("mystery")) {
        return Result_::Skipped;
    }
    let a = analyse(
        vec![(display.to_string(), obj)],
        &Options { programs: vec![], loader: LoaderChoice::Libbpf(vec![Version(1, 7)]), with_optional: false },
        r,
    )
    .unwrap();
    let o = &a.objects[0];
    if o.programs.iter().any(|p| p.prog_type.is_none()) {
        return Result_::Skipped;
    }
    let target = Target { path: display.into(), programs: o.selected.iter().cloned().collect() };
    let control = load(&target, wide, wide_caps, &opts).unwrap();
    let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &opts).unwrap();
    if !control.loaded {
        // The kernel refuses this object even with everything delegated. That must be a
        // property of the kernel, not of the token or the sandbox: as host root, without any
        // token, it must be refused too. Then bpfcap's delegation must not make it load
        // either, and the object is not counted.
        if loads_as_root(display) {
            return Result_::Failed(format!(
                "{display}: loads as root but not through a token with everything delegated ({})",
                describe(&control)
            ));
        }
        if v.loaded {
            return Result_::Failed(format!("{display}: loads with the derived delegation but not with everything?"));
        }
        return Result_::Refused(format!("{display} ({})", describe(&control)));
    }
    if !v.loaded {
        return Result_::Failed(format!(
            "{display}: does not load with {} + {:?}: {} — {}",
            a.delegation.mount_options(rules()),
            a.delegation.capabilities,
            describe(&v.targets[0].outcome),
            v.targets[0].diagnosis.clone().unwrap_or_default()
        ));
    }
    let not_required: BTreeSet<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
    if !not_required.is_empty() {
        return Result_::Failed(format!("{display}: not required but delegated: {not_required:?}"));
    }
    Result_::Verified(format!("{display} ({} items)", v.items.len()))
}

/// An in-process libbpf load as host root, without a token (the test runs as root), with the
/// same sizing of max_entries-0 maps as the sandbox.
fn loads_as_root(display: &str) -> bool {
    let (bytes, name) = bpfcap::input::object_bytes(display).unwrap();
    let mut open = libbpf_rs::ObjectBuilder::default().name(&name).unwrap().open_memory(&bytes).unwrap();
    sandbox::size_runtime_sized_maps(&mut open);
    open.load().is_ok()
}

fn run_all(objects: Vec<(String, bpfcap::model::Object)>, min_verified: usize) {
    let (mut verified, mut refused, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (display, obj) in objects {
        match check_object(&display, obj) {
            Result_::Verified(s) => verified.push(s),
            Result_::Refused(s) => refused.push(s),
            Result_::Failed(s) => failures.push(s),
            Result_::Skipped => {}
        }
    }
    eprintln!("verified minimal: {verified:#?}");
    eprintln!("refused by this kernel even with everything delegated: {refused:#?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(verified.len() >= min_verified, "too few objects verified: {verified:?}");
}

#[test]
fn derived_delegation_loads_and_every_item_is_required() {
    if !preconditions() {
        return;
    }
    let objs = objects()
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let display = path.display().to_string();
            let obj = bpfcap::elf::read_object(&bytes, &bpfcap::elf::object_name(&display)).unwrap();
            (display, obj)
        })
        .collect();
    // every sample libbpf can open and this kernel can load (fentry, lsm and typed ksyms are
    // refused here even as root): a regression cannot hide among the refused
    run_all(objs, 20);
}

/// Objects built by others: systemd's own BPF programs, embedded in libsystemd-core (Debian
/// sid chroot, BPFCAP_SYSTEMD_ROOT), verified where they are found, inside the library.
#[test]
fn systemds_embedded_objects_load_minimally() {
    if !preconditions() {
        return;
    }
    let dir = std::env::var_os("BPFCAP_SYSTEMD_ROOT")
        .map(|r| std::path::PathBuf::from(r).join("usr/lib/x86_64-linux-gnu/systemd"));
    let ok = match &dir {
        Some(d) if d.is_dir() => Ok(()),
        _ => Err("BPFCAP_SYSTEMD_ROOT (a Debian sid chroot with systemd) is not set".to_string()),
    };
    if !common::require(ok, "systemd objects token test") {
        return;
    }
    let (inputs, _) = bpfcap::input::load_inputs_with_warnings(&[dir.unwrap()]).unwrap();
    run_all(inputs, 3);
}

#[test]
fn verify_command_diagnoses_what_is_short_and_certifies_minimality() {
    if !preconditions() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_bpfcap");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(exe).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // the derived delegation loads and is minimal: a JSON certificate
    let (code, out, err) = run(&["verify", "--minimize", "--strict", "--format", "json", "testdata/tc.bpf.o"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["loaded"], true);
    assert_eq!(v["minimal"], true);
    assert!(v["items"].as_array().unwrap().iter().all(|i| i["required"] == true));
    // a user configuration without sched_cls: exit 1, and the diagnosis names the missing item
    let cfg = dir.path().join("bpf.conf");
    std::fs::write(
        &cfg,
        "delegate_cmds=prog_load,delegate_progs=socket_filter:sched_act,delegate_attachs=cgroup_inet_ingress:tcx_ingress:tcx_egress:netkit_primary\n",
    )
    .unwrap();
    let (code, out, err) = run(&["verify", "--config", cfg.to_str().unwrap(), "testdata/tc.bpf.o"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("delegate_progs lacks sched_cls"), "{out}");
    // a configuration with an extra item: loads, but --strict --minimize says it is not minimal
    std::fs::write(
        &cfg,
        "delegate_cmds=prog_load:btf_load,delegate_progs=socket_filter:sched_cls:sched_act,delegate_attachs=cgroup_inet_ingress:tcx_ingress:tcx_egress:netkit_primary\n",
    )
    .unwrap();
    let (code, out, _) =
        run(&["verify", "--config", cfg.to_str().unwrap(), "--minimize", "--strict", "testdata/tc.bpf.o"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("delegate_cmds btf_load") && out.contains("not required"), "{out}");
}

/// Killing bpfcap in the middle of a verification leaves nothing behind: no sandbox process
/// (they die with their parent), no mount in the host's namespaces.
#[test]
fn a_killed_verification_leaves_nothing_behind() {
    if !preconditions() {
        return;
    }
    let mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // other tests run sandboxes at the same time: recognise ours by a tag in the environment,
    // which the sandbox children inherit
    let tag = format!("BPFCAP_TEST_TAG=killed-{}", std::process::id());
    let children = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == tag.as_bytes()))
            })
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(sandbox::CHILD_SUBCOMMAND))
            .collect()
    };
    // the host's mounts (this test's own mount namespace is the host's)
    let before = mounts();
    assert!(children().is_empty(), "sandbox processes before the test: {:?}", children());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["verify", "--minimize", "testdata/maps_btf.bpf.o"])
        .env("BPFCAP_TEST_TAG", tag.trim_start_matches("BPFCAP_TEST_TAG="))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait until a sandbox child exists, then kill bpfcap
    let start = std::time::Instant::now();
    while children().is_empty() && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!children().is_empty(), "no sandbox child appeared");
    child.kill().unwrap();
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while !children().is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(children().is_empty(), "sandbox processes outlived bpfcap: {:?}", children());
    assert_eq!(mounts(), before, "the host's mounts changed");
}
