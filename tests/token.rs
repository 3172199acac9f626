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

#[test]
fn derived_delegation_loads_and_every_item_is_required() {
    if !preconditions() {
        return;
    }
    let r = rules();
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let wide = sandbox::Delegation { cmds: u64::MAX, maps: u64::MAX, progs: u64::MAX, attachs: u64::MAX };
    let wide_caps = vec![sandbox::CAP_BPF, sandbox::CAP_PERFMON, sandbox::CAP_NET_ADMIN];
    let mut verified = Vec::new();
    let mut refused = Vec::new();
    let mut failures = Vec::new();
    for path in objects() {
        let bytes = std::fs::read(&path).unwrap();
        let obj = bpfcap::elf::read_object(&bytes, &bpfcap::elf::object_name(&path.display().to_string())).unwrap();
        // legacy maps and unknown sections: libbpf cannot load these objects at all
        if !obj.warnings.is_empty() || obj.programs.iter().any(|p| p.section.starts_with("mystery")) {
            continue;
        }
        let a = analyse(
            vec![(path.display().to_string(), obj)],
            &Options { programs: vec![], loader: LoaderChoice::Libbpf(vec![Version(1, 7)]), with_optional: false },
            r,
        )
        .unwrap();
        let o = &a.objects[0];
        if o.programs.iter().any(|p| p.prog_type.is_none()) {
            continue;
        }
        let target = Target { path: path.clone(), programs: o.selected.iter().cloned().collect() };
        let control = load(&target, wide.clone(), wide_caps.clone(), &opts).unwrap();
        let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &opts).unwrap();
        if !control.loaded {
            // The kernel refuses this object even with everything delegated: bpfcap's
            // delegation must not make it load either, and the object is not counted.
            assert!(!v.loaded, "{}: loads with the derived delegation but not with everything?", path.display());
            refused.push(format!("{} ({})", path.display(), describe(&control)));
            continue;
        }
        if !v.loaded {
            failures.push(format!(
                "{}: does not load with {} + {:?}: {} — {}",
                path.display(),
                a.delegation.mount_options(),
                a.delegation.capabilities,
                describe(&v.targets[0].outcome),
                v.targets[0].diagnosis.clone().unwrap_or_default()
            ));
            continue;
        }
        let not_required: BTreeSet<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
        if !not_required.is_empty() {
            failures.push(format!("{}: not required but delegated: {:?}", path.display(), not_required));
        } else {
            verified.push(format!("{} ({} items)", path.display(), v.items.len()));
        }
    }
    eprintln!("verified minimal: {verified:#?}");
    eprintln!("refused by this kernel even with everything delegated: {refused:#?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(verified.len() >= 10, "too few objects verified: {verified:?}");
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
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
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
    let (code, out, _) = run(&["verify", "--config", cfg.to_str().unwrap(), "--minimize", "--strict", "testdata/tc.bpf.o"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("delegate_cmds btf_load") && out.contains("not required"), "{out}");
}
