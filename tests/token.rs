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
use bpfcap::verify::{Loader, Target, VerifyOptions, describe, verify};
use bpfcap::vocab::Masks;

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
    let wide = Masks::ALL;
    let wide_caps = common::caps(&["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
    // legacy maps and unknown sections: libbpf cannot load these objects at all
    if !obj.warnings.is_empty() || obj.programs.iter().any(|p| p.section.starts_with("mystery")) {
        return Result_::Skipped;
    }
    let a = analyse(
        vec![(display.to_string(), obj)],
        &Options { programs: vec![], loader: LoaderChoice::libbpf(vec![Version(1, 7)]), with_optional: false },
        r,
    )
    .unwrap();
    let o = &a.objects[0];
    if o.programs.iter().any(|p| p.prog_type.is_none()) {
        return Result_::Skipped;
    }
    let target_source = o.source();
    let target = Target::of(target_source.clone(), o.selected.iter().cloned().collect());
    let control = Loader::new(&opts).load(&target, wide, wide_caps).unwrap();
    let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &opts).unwrap();
    if !control.loaded {
        // The kernel refuses this object even with everything delegated. That must be a
        // property of the kernel, not of the token or the sandbox: as host root, without any
        // token, it must be refused too. Then bpfcap's delegation must not make it load
        // either, and the object is not counted.
        if common::libbpf_loads_as_root(&target_source, None).unwrap() {
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

/// bpfcap's answer (libbpf 1.7) for `program` of testdata/`object`.bpf.o asked for alone.
fn program_answer(object: &str, program: &str) -> bpfcap::analysis::Analysis {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{object}.bpf.o"));
    let display = path.display().to_string();
    let obj = bpfcap::elf::read_object(&std::fs::read(&path).unwrap(), &bpfcap::elf::object_name(&display)).unwrap();
    let opts = Options {
        programs: vec![program.to_string()],
        loader: LoaderChoice::libbpf(vec![Version(1, 7)]),
        with_optional: false,
    };
    analyse(vec![(display, obj)], &opts, rules()).unwrap()
}

/// `target` loaded through a token with `delegation` (each item dropped in turn: `minimize`).
fn verify_one(
    target: &Target,
    delegation: &bpfcap::delegation::Delegation,
    minimize: bool,
) -> bpfcap::verify::Verification {
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    verify(std::slice::from_ref(target), delegation, minimize, rules(), &opts).unwrap()
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
    // every sample libbpf can open and this kernel can load: a regression cannot hide among
    // the refused (an object counts as refused only when it fails as root without a token
    // too). Which are refused depends on the machine's kernel: fentry, lsm and typed ksyms on
    // every machine here, the arena map on some (EPERM as root); the count keeps the test
    // from passing when most samples are refused.
    run_all(objs, 18);
}

/// The verifier's gates on a pointer made a number (32-bit arithmetic, a negation, a byte
/// swap, a sign-extending copy) or compared, and on stack bytes read before anything wrote
/// them (a helper's buffer, a load), one program at a time (the object's test above
/// would not see one gate missed while another asks for CAP_PERFMON): each program's own
/// analysis names its gate and CAP_PERFMON, is minimal through a token, and without
/// CAP_PERFMON the verifier refuses the program with the gate's own message.
#[test]
fn each_verifier_gate_needs_cap_perfmon_on_its_own() {
    if !preconditions() {
        return;
    }
    // (object, program, its gate, the verifier's message without CAP_PERFMON)
    for (object, program, gate, message) in [
        ("pointer32", "stack_low_half", "pointer_truncated", "partial copy of pointer"),
        ("pointer32", "stack_minus_number", "pointer_in_32bit_subtraction", "32-bit pointer arithmetic prohibited"),
        ("pointer32", "global_low_half", "pointer_truncated", "partial copy of pointer"),
        ("pointer32", "calls_low_half", "pointer_truncated", "partial copy of pointer"),
        ("pointer_number", "stack_negated", "pointer_negated_or_swapped", "R1 pointer arithmetic prohibited"),
        ("pointer_number", "stack_swapped", "pointer_negated_or_swapped", "R1 pointer arithmetic prohibited"),
        ("pointer_number", "stack_bswapped", "pointer_negated_or_swapped", "R1 pointer arithmetic prohibited"),
        ("pointer_number", "stack_sign_extended", "pointer_sign_extended", "sign-extension part of pointer"),
        ("pointer_compare", "stack_compared", "pointer_compared", "pointer comparison prohibited"),
        ("pointer_compare", "stack_against_number", "pointer_compared", "pointer comparison prohibited"),
        ("pointer_compare", "stack_against_zero", "pointer_compared", "pointer comparison prohibited"),
        ("pointer_compare", "global_compared", "pointer_compared", "pointer comparison prohibited"),
        ("pointer_compare", "packet_compared_in_32bit", "pointer_compared", "pointer comparison prohibited"),
        ("pointer_compare", "lookup_compared", "pointer_compared", "pointer comparison prohibited"),
        ("stack_read", "key_padding", "uninitialized_stack_read", "read from stack"),
        ("stack_read", "output_partly_written", "uninitialized_stack_read", "read from stack"),
        ("stack_read", "load_unwritten", "uninitialized_stack_read", "read from stack"),
    ] {
        let a = program_answer(object, program);
        let o = &a.objects[0];
        let p = o.programs.iter().find(|p| p.name == program).unwrap();
        let gates: Vec<serde_json::Value> = p.gates.iter().map(|g| serde_json::to_value(g.gate).unwrap()).collect();
        assert_eq!(gates, [gate], "{program}");
        assert!(a.delegation.capabilities.iter().any(|c| c == "CAP_PERFMON"), "{program}: {:?}", a.delegation);
        let target = Target::of(o.source(), vec![program.to_string()]);
        let v = verify_one(&target, &a.delegation, true);
        assert!(v.loaded, "{program}: {}", describe(&v.targets[0].outcome));
        let perfmon = v.items.iter().find(|i| i.item.to_string() == "CAP_PERFMON").unwrap();
        assert!(perfmon.required, "{program}: loads without CAP_PERFMON");
        // the program's own answer is minimal: the global-data maps count only for the
        // programs that use them (libbpf skips them when its probe fails without map_create)
        let extra: Vec<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
        assert!(extra.is_empty(), "{program}: loads without {extra:?}");
        // and without CAP_PERFMON the verifier refuses the program for the gate's own reason
        let mut without = a.delegation.clone();
        without.capabilities.retain(|c| c != "CAP_PERFMON");
        let refused = verify_one(&target, &without, false);
        let log = refused.targets[0].outcome.libbpf_log.join("\n");
        assert!(!refused.loaded && log.contains(message), "{program}: not refused with '{message}':\n{log}");
    }
}

/// The counterparts the verifier allows without CAP_PERFMON, one program at a time: each
/// program's own answer holds no CAP_PERFMON, loads through a token and needs every item.
#[test]
fn what_the_verifier_allows_needs_no_cap_perfmon_on_its_own() {
    if !preconditions() {
        return;
    }
    for (object, program) in [
        ("stack_read", "key_written"),
        ("compare_allowed", "null_way"),
        ("compare_allowed", "null_way_copy"),
        ("compare_allowed", "global_not_null"),
        ("compare_allowed", "packet_reloaded"),
    ] {
        let a = program_answer(object, program);
        assert!(!a.delegation.capabilities.iter().any(|c| c == "CAP_PERFMON"), "{program}: {:?}", a.delegation);
        let target = Target::of(a.objects[0].source(), vec![program.to_string()]);
        let v = verify_one(&target, &a.delegation, true);
        assert!(v.loaded, "{program}: {}", describe(&v.targets[0].outcome));
        let extra: Vec<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
        assert!(extra.is_empty(), "{program}: loads without {extra:?}");
    }
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
    let (inputs, _) = bpfcap::input::load_inputs(&[dir.unwrap()]).unwrap();
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
    // Other tests run sandboxes at the same time, in this process. The sandbox children get no
    // environment of ours to tag them with, so they are told apart by their ancestry: ours
    // descend from the bpfcap process below, and once it is killed whatever is left of them
    // no longer descends from this test process.
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
    };
    let descends_from = |mut pid: u32, ancestor: u32| {
        while let Some(p) = parent_of(pid) {
            if p == ancestor {
                return true;
            }
            if p <= 1 {
                return false;
            }
            pid = p;
        }
        false
    };
    let sandboxes = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(sandbox::CHILD_SUBCOMMAND))
            })
            .collect()
    };
    let me = std::process::id();
    // the host's mounts (this test's own mount namespace is the host's)
    let before = mounts();
    let strays = || -> Vec<u32> { sandboxes().into_iter().filter(|p| !descends_from(*p, me)).collect() };
    assert!(strays().is_empty(), "sandbox processes before the test: {:?}", strays());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["verify", "--minimize", "testdata/maps_btf.bpf.o"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ours = || -> Vec<u32> { sandboxes().into_iter().filter(|p| descends_from(*p, child.id())).collect() };
    // wait until a sandbox child exists (its PID-1 process too), then kill bpfcap
    let start = std::time::Instant::now();
    while ours().len() < 2 && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(!ours().is_empty(), "no sandbox child appeared");
    child.kill().unwrap();
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while !strays().is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(strays().is_empty(), "sandbox processes outlived bpfcap: {:?}", strays());
    assert_eq!(mounts(), before, "the host's mounts changed");
}

/// A helper that never answers: every load through it times out.
fn stalling_helper(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("stall.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 1000\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A load that runs out of time says so: it is never diagnosed as the kernel refusing the
/// object through a token (64 slow programs took 3.5 minutes to be called that), and the
/// whole verification ends at its deadline, its loads cut short reported as such.
#[test]
fn timeouts_and_the_deadline_are_reported_as_such() {
    if !preconditions() {
        return;
    }
    let r = rules();
    let dir = tempfile::tempdir().unwrap();
    let path = format!("{}/tests/sandbox-fixtures/socket_filter.o", env!("CARGO_MANIFEST_DIR"));
    let obj = bpfcap::elf::read_object(&std::fs::read(&path).unwrap(), "socket_filter").unwrap();
    let opts = Options { programs: vec![], loader: LoaderChoice::libbpf(vec![Version(1, 7)]), with_optional: false };
    let a = analyse(vec![(path.clone(), obj)], &opts, r).unwrap();
    let target = Target::new(&path, vec![]);
    let mut vopts = VerifyOptions::new(stalling_helper(dir.path()));
    vopts.timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &vopts).unwrap();
    let t = &v.targets[0];
    assert!(!v.loaded);
    assert_eq!(t.outcome.step.as_deref(), Some("timeout"), "{t:#?}");
    let diagnosis = t.diagnosis.as_deref().unwrap();
    assert!(diagnosis.starts_with("not diagnosed") && !diagnosis.contains("refuses"), "{diagnosis}");
    // one load, no widening trials after it
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    // the deadline: the first load is cut short at 2 s, not at its own 30 s limit
    let mut vopts = VerifyOptions::new(stalling_helper(dir.path()));
    vopts.deadline = std::time::Duration::from_secs(2);
    let started = std::time::Instant::now();
    let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &vopts).unwrap();
    assert_eq!(v.targets[0].outcome.step.as_deref(), Some("deadline"), "{:#?}", v.targets[0]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

/// An object of 10 KB declaring two 2 GiB maps is not loaded: verify says that its maps
/// declare more than the memory budget (it took 4.1 GiB of the host's memory).
#[test]
fn verify_refuses_maps_beyond_its_memory_budget() {
    if !preconditions() {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["verify", "--format", "json", "tests/sandbox-fixtures/huge_maps.o"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = &doc["targets"][0]["outcome"];
    assert_eq!(outcome["step"], "memory_limit", "{doc:#}");
    let message = outcome["message"].as_str().unwrap();
    assert!(message.contains("4096 MiB") && message.contains("512 MiB"), "{message}");
    // never started: no sandbox facts
    assert!(outcome.get("sandbox").is_none(), "{doc:#}");
}

/// libbpf loads every struct_ops program a struct_ops map it creates uses, whatever was asked
/// for (bpf_object_adjust_struct_ops_autoload): the answer for one of them asked for alone
/// (`--program`) covers the others' attach types (their members' indexes), loads through a
/// token, and is minimal. (Before, it covered the program asked for only, and the load failed:
/// 'delegate_attachs lacks cgroup_inet4_bind'.)
#[test]
fn a_struct_ops_program_asked_for_alone_brings_its_maps_programs() {
    if !preconditions() {
        return;
    }
    let program = "bpfcap_cong_avoid";
    let a = program_answer("struct_ops", program);
    let o = &a.objects[0];
    assert_eq!(o.selected.len(), o.programs.len(), "every program its struct_ops maps use: {:?}", o.selected);
    assert!(a.requirements.warnings.iter().any(|w| w.contains("bpf_object_adjust_struct_ops_autoload")));
    let target = Target::of(o.source(), vec![program.to_string()]);
    let v = verify_one(&target, &a.delegation, true);
    assert!(v.loaded, "{}", describe(&v.targets[0].outcome));
    let extra: Vec<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
    assert!(extra.is_empty(), "loads without {extra:?}");
}
