//! Real loads through real BPF tokens (no mocks). Needs root and a kernel with
//! BPF tokens (6.9+); otherwise every test prints why and passes, unless
//! `BPFCAP_REQUIRE_TOKEN_TESTS=1`, which turns a missing precondition into a
//! failure.
//!
//! The helper is the `bpfcap` binary: its main() must route
//! `bpfcap __sandbox-child` to `bpfcap::sandbox::child_main()`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bpfcap::sandbox::{self, LoadOutcome, LoadRequest, SandboxError};
use bpfcap::vocab::Masks;
use libbpf_rs::libbpf_sys as sys;

mod common;

const HELPER: &str = env!("CARGO_BIN_EXE_bpfcap");

/// Tests run one at a time so the process checks can see "our" children only.
static SERIAL: Mutex<()> = Mutex::new(());

fn bit(n: u32) -> u64 {
    1u64 << n
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox-fixtures").join(name)
}

/// Lock, then check preconditions. `None` = skip this test.
fn setup(test: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    match sandbox::preflight() {
        Ok(()) => Some(guard),
        Err(e) => {
            let reason = format!("{test}: token tests need root and BPF tokens: {e}");
            if std::env::var("BPFCAP_REQUIRE_TOKEN_TESTS").as_deref() == Ok("1") {
                panic!("{reason} (BPFCAP_REQUIRE_TOKEN_TESTS=1)");
            }
            eprintln!("SKIPPED {reason}");
            None
        }
    }
}

/// The host's mount table as whole lines (a new mount always adds a line,
/// since it gets a new mount id).
fn mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().map(str::to_string).collect()
}

fn proc_field(pid: &str, field: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces: fields after the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(field - 3).map(str::to_string)
}

fn cmdline(pid: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
        })
        .unwrap_or_default()
}

/// Live (non-zombie) sandbox helpers and direct children of this process.
fn leftover_processes() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let state = proc_field(&pid, 3).unwrap_or_default();
        let ppid = proc_field(&pid, 4).unwrap_or_default();
        let cmd = cmdline(&pid);
        let is_helper = cmd.get(1).map(String::as_str) == Some(sandbox::CHILD_SUBCOMMAND)
            && cmd.first().map(String::as_str) == Some(HELPER);
        if ppid == me || (is_helper && state != "Z") {
            out.push(format!("pid {pid} state {state} ppid {ppid} cmd {cmd:?}"));
        }
    }
    out
}

fn open_fds() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The memory cgroups of this process's sandbox runs (`bpfcap-PID-*`) under /sys/fs/cgroup.
fn leftover_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, prefix: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(e.path());
            } else if depth < 6 {
                walk(&e.path(), depth + 1, prefix, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), 0, &format!("bpfcap-{}-", std::process::id()), &mut out);
    out
}

/// Runs `f`, then checks that no mount appeared in the host, no sandbox
/// process or memory cgroup is left and no descriptor leaked in this process.
fn hygienic<T>(f: impl FnOnce() -> T) -> T {
    let before = mounts();
    let fds_before = open_fds();
    let result = f();
    let fds_after = open_fds();
    let leaked: Vec<_> = fds_after.difference(&fds_before).collect();
    assert!(leaked.is_empty(), "descriptors leaked: {leaked:?}");
    let after = mounts();
    let added: Vec<_> = after.difference(&before).collect();
    assert!(added.is_empty(), "new mounts in the host namespace: {added:#?}");
    let left = leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    let cgroups = leftover_cgroups();
    assert!(cgroups.is_empty(), "memory cgroups left behind: {cgroups:?}");
    result
}

fn run(req: &LoadRequest) -> LoadOutcome {
    hygienic(|| match sandbox::load_in_sandbox(Path::new(HELPER), req) {
        Ok(outcome) => outcome,
        Err(e) => panic!("sandbox error: {:?}", miette::Report::new(e)),
    })
}

fn socket_delegation() -> Masks {
    Masks {
        commands: bit(sys::BPF_PROG_LOAD),
        maps: 0,
        programs: bit(sys::BPF_PROG_TYPE_SOCKET_FILTER),
        attachments: bit(sys::BPF_CGROUP_INET_INGRESS),
    }
}

fn assert_loaded(outcome: &LoadOutcome, what: &str) {
    assert!(
        outcome.loaded && outcome.step.is_none() && outcome.errno.is_none(),
        "{what}: expected a successful load, got {outcome:#?}"
    );
    assert!(!outcome.programs.is_empty(), "{what}: no programs reported");
    assert!(outcome.programs.iter().all(|p| p.loaded), "{what}: {:#?}", outcome.programs);
}

fn assert_eperm(outcome: &LoadOutcome, steps: &[&str], what: &str) {
    assert!(!outcome.loaded, "{what}: unexpectedly loaded: {outcome:#?}");
    assert_eq!(outcome.errno, Some(libc::EPERM), "{what}: {outcome:#?}");
    let step = outcome.step.as_deref().unwrap_or("<none>");
    assert!(steps.contains(&step), "{what}: step {step}, expected one of {steps:?}: {outcome:#?}");
}

#[test]
fn socket_filter_loads_with_minimal_delegation() {
    let Some(_g) = setup("socket_filter_loads_with_minimal_delegation") else {
        return;
    };
    let req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    let outcome = run(&req);
    assert_loaded(&outcome, "socket filter");
    assert_eq!(outcome.programs.len(), 1);
    assert_eq!(outcome.programs[0].name, "drop_all");
    assert!(!outcome.libbpf_log.is_empty(), "libbpf log was not captured");
    // The outcome is meant to be printed as JSON.
    let json = serde_json::to_string(&outcome).unwrap();
    assert!(json.contains("\"loaded\":true"));
}

#[test]
fn socket_filter_each_delegated_item_is_needed() {
    let Some(_g) = setup("socket_filter_each_delegated_item_is_needed") else {
        return;
    };
    let full = socket_delegation();
    let obj = fixture("socket_filter.o");

    // Without CAP_BPF no token can be created at all (kernel/bpf/token.c:
    // ns_capable(userns, CAP_BPF) in bpf_token_create).
    let outcome = run(&LoadRequest::new(&obj, full, vec![]));
    assert_eperm(&outcome, &["token_create"], "without CAP_BPF");

    // Without one of the delegated items the token exists but does not cover
    // BPF_PROG_LOAD of a socket filter; the kernel then ignores the token and
    // unprivileged_bpf_disabled refuses the load. libbpf's own probe program
    // (a socket filter) runs first through the token, so that is where the
    // EPERM surfaces (step "libbpf_probe"), before our program is tried.
    let cases = [
        ("cmds=prog_load", Masks { commands: 0, ..full }),
        ("progs=socket_filter", Masks { programs: 0, ..full }),
        ("attachs=cgroup_inet_ingress", Masks { attachments: 0, ..full }),
    ];
    for (dropped, delegation) in cases {
        let outcome = run(&LoadRequest::new(&obj, delegation, common::caps(&["CAP_BPF"])));
        assert_eperm(&outcome, &["libbpf_probe"], &format!("without {dropped}"));
    }
}

#[test]
fn kprobe_needs_kprobe_type_and_perfmon() {
    let Some(_g) = setup("kprobe_needs_kprobe_type_and_perfmon") else {
        return;
    };
    let obj = fixture("kprobe.o");
    // socket_filter stays delegated so that libbpf's probe program passes and
    // the kprobe program itself is what the kernel judges.
    let delegation = Masks {
        commands: bit(sys::BPF_PROG_LOAD),
        maps: 0,
        programs: bit(sys::BPF_PROG_TYPE_KPROBE) | bit(sys::BPF_PROG_TYPE_SOCKET_FILTER),
        attachments: bit(sys::BPF_CGROUP_INET_INGRESS),
    };
    let outcome = run(&LoadRequest::new(&obj, delegation, common::caps(&["CAP_BPF", "CAP_PERFMON"])));
    assert_loaded(&outcome, "kprobe with CAP_PERFMON");
    assert_eq!(outcome.programs[0].name, "on_nanosleep");

    let outcome = run(&LoadRequest::new(&obj, delegation, common::caps(&["CAP_BPF"])));
    assert_eperm(&outcome, &["prog_load"], "kprobe without CAP_PERFMON");
    let prog = &outcome.programs[0];
    assert_eq!((prog.name.as_str(), prog.loaded, prog.errno), ("on_nanosleep", false, Some(libc::EPERM)));
    assert!(!prog.log_tail.is_empty(), "no log lines attributed to the failing program");

    // Only the kprobe type delegated: libbpf's probe program (socket_filter,
    // then tracepoint) is refused before the kprobe is even tried.
    let only_kprobe = Masks { programs: bit(sys::BPF_PROG_TYPE_KPROBE), ..delegation };
    let outcome = run(&LoadRequest::new(&obj, only_kprobe, common::caps(&["CAP_BPF", "CAP_PERFMON"])));
    assert_eperm(&outcome, &["libbpf_probe"], "only progs=kprobe");
    // With tracepoint instead of socket_filter the probe passes too.
    let tp = Masks { programs: bit(sys::BPF_PROG_TYPE_KPROBE) | bit(sys::BPF_PROG_TYPE_TRACEPOINT), ..delegation };
    assert_loaded(&run(&LoadRequest::new(&obj, tp, common::caps(&["CAP_BPF", "CAP_PERFMON"]))), "kprobe+tracepoint");

    let no_kprobe = Masks { programs: bit(sys::BPF_PROG_TYPE_SOCKET_FILTER), ..delegation };
    let outcome = run(&LoadRequest::new(&obj, no_kprobe, common::caps(&["CAP_BPF", "CAP_PERFMON"])));
    assert_eperm(&outcome, &["prog_load"], "kprobe without progs=kprobe");
}

#[test]
fn hash_map_needs_map_create_and_hash() {
    let Some(_g) = setup("hash_map_needs_map_create_and_hash") else {
        return;
    };
    let obj = fixture("hash_map.o");
    let full = Masks {
        commands: bit(sys::BPF_PROG_LOAD) | bit(sys::BPF_MAP_CREATE),
        maps: bit(sys::BPF_MAP_TYPE_HASH),
        ..socket_delegation()
    };
    let outcome = run(&LoadRequest::new(&obj, full, common::caps(&["CAP_BPF"])));
    assert_loaded(&outcome, "hash map object");

    let no_hash = Masks { maps: 0, ..full };
    let outcome = run(&LoadRequest::new(&obj, no_hash, common::caps(&["CAP_BPF"])));
    assert_eperm(&outcome, &["map_create"], "without maps=hash");
    assert!(outcome.message.as_deref().unwrap_or("").contains("counts"), "{outcome:#?}");

    let no_map_create = Masks { commands: bit(sys::BPF_PROG_LOAD), ..full };
    let outcome = run(&LoadRequest::new(&obj, no_map_create, common::caps(&["CAP_BPF"])));
    assert_eperm(&outcome, &["map_create"], "without cmds=map_create");
}

#[test]
fn empty_delegation_fails_token_create_with_enoent() {
    let Some(_g) = setup("empty_delegation_fails_token_create_with_enoent") else {
        return;
    };
    let req = LoadRequest::new(fixture("socket_filter.o"), Masks::default(), common::caps(&["CAP_BPF"]));
    let outcome = run(&req);
    assert!(!outcome.loaded);
    assert_eq!(outcome.step.as_deref(), Some("token_create"), "{outcome:#?}");
    assert_eq!(outcome.errno, Some(libc::ENOENT), "{outcome:#?}");
    assert_eq!(outcome.programs.len(), 1, "programs are listed even when nothing loads");
}

#[test]
fn program_selection() {
    let Some(_g) = setup("program_selection") else {
        return;
    };
    let mut req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    req.programs = Some(vec!["drop_all".into()]);
    assert_loaded(&run(&req), "selected program");

    req.programs = Some(vec!["no_such_prog".into()]);
    let err = hygienic(|| sandbox::load_in_sandbox(Path::new(HELPER), &req))
        .expect_err("unknown program must be a sandbox error");
    match err {
        SandboxError::ChildStep { ref step, .. } if step == "select_programs" => {}
        other => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn timeout_kills_the_child() {
    let Some(_g) = setup("timeout_kills_the_child") else {
        return;
    };
    let mut req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    req.timeout = Duration::from_millis(1);
    let started = Instant::now();
    let outcome = run(&req);
    assert_eq!(outcome.step.as_deref(), Some("timeout"), "{outcome:#?}");
    assert!(!outcome.loaded);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let Some(_g) = setup("timeout_kills_the_whole_process_group") else {
        return;
    };
    // A helper that never answers and leaves a grandchild in its group.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("stall.sh");
    let d = dir.path().display();
    std::fs::write(&script, format!("#!/bin/sh\necho $$ > {d}/pid\nsleep 1000 &\necho $! > {d}/grandchild\nwait\n"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    req.timeout = Duration::from_millis(700);
    let outcome = sandbox::load_in_sandbox(&script, &req).expect("timeout is an outcome");
    assert_eq!(outcome.step.as_deref(), Some("timeout"), "{outcome:#?}");

    for file in ["pid", "grandchild"] {
        let pid = std::fs::read_to_string(dir.path().join(file))
            .unwrap_or_else(|e| panic!("stall script did not record {file}: {e}"));
        let pid = pid.trim();
        // A killed grandchild is reaped by init asynchronously.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let alive = proc_field(pid, 3).is_some_and(|s| s != "Z")
                && cmdline(pid).iter().any(|a| a.contains("stall.sh") || a == "1000");
            if !alive {
                break;
            }
            assert!(Instant::now() < deadline, "{file} {pid} survived the timeout");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let left = leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

/// Objects committed under testdata/ by others: load each with everything
/// delegated and the usual capabilities; the sandbox must not fail (the load
/// itself may, e.g. for missing attach targets).
/// Every sample object, through a token that delegates everything with the capabilities
/// bpfcap grants: it loads exactly when libbpf loads it as root without a token (a token that
/// grants all cannot be what refuses it, and cannot make a load work that root cannot do).
#[test]
fn testdata_objects_run_through_the_sandbox() {
    let Some(_g) = setup("testdata_objects_run_through_the_sandbox") else {
        return;
    };
    let mut disagree = Vec::new();
    let mut loaded = 0;
    for path in common::sample_objects().into_iter().filter(|p| !common::is_legacy(p)) {
        let caps = common::caps(&["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
        let outcome = run(&LoadRequest::new(&path, Masks::ALL, caps));
        let as_root = common::libbpf_loads_as_root(&bpfcap::elf::object_file(&path), None).unwrap();
        loaded += usize::from(outcome.loaded);
        if outcome.loaded != as_root {
            disagree.push(format!(
                "{}: through the token loaded={} (step {:?}, errno {:?}: {:?}), as root loaded={as_root}",
                path.display(),
                outcome.loaded,
                outcome.step,
                outcome.errno,
                outcome.message
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert!(loaded >= 10, "only {loaded} sample objects load on this kernel");
}

#[test]
fn parent_side_failure_is_a_sandbox_error_with_step() {
    let Some(_g) = setup("parent_side_failure_is_a_sandbox_error_with_step") else {
        return;
    };
    // uid 4294967295 is (uid_t)-1, which no id map may contain.
    let mut req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    req.uid = u32::MAX;
    let err = hygienic(|| sandbox::load_in_sandbox(Path::new(HELPER), &req)).expect_err("an unmappable uid must fail");
    match &err {
        SandboxError::ParentStep { step, errno, .. } => {
            assert_eq!(step, "uid_map");
            assert_eq!(*errno, Some(libc::EINVAL));
        }
        other => panic!("unexpected error: {other:?}"),
    }
    eprintln!("{:?}", miette::Report::new(err));
}

#[test]
fn unknown_capability_is_a_child_step_error() {
    let Some(_g) = setup("unknown_capability_is_a_child_step_error") else {
        return;
    };
    let req = LoadRequest::new(
        fixture("socket_filter.o"),
        socket_delegation(),
        [common::caps(&["CAP_BPF"]), vec![63]].concat(),
    );
    let err = hygienic(|| sandbox::load_in_sandbox(Path::new(HELPER), &req)).expect_err("capability 63 does not exist");
    match &err {
        SandboxError::ChildStep { step, errno, .. } => {
            assert_eq!(step, "drop_caps");
            assert_eq!(*errno, Some(libc::EINVAL));
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

/// The loader runs with nothing of the caller's but what it needs: no descriptor beyond
/// stdio and its socket (a read-write descriptor to a root-only file was open in the child),
/// no environment beyond the sandbox's own variables (a CI secret was visible), its own
/// user, mount, PID, network, IPC and UTS namespaces, no_new_privs and a syscall filter.
#[test]
fn the_loader_inherits_no_descriptor_and_no_environment() {
    let Some(_g) = setup("the_loader_inherits_no_descriptor_and_no_environment") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "token").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    // SAFETY: a plain open; no O_CLOEXEC, as a careless caller would leave it
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR) };
    assert!(fd >= 0);
    // SAFETY: the tests of this file run one at a time (SERIAL), none reads this variable
    unsafe { std::env::set_var("BPFCAP_TEST_CI_SECRET", "hunter2") };
    let outcome = run(&LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"])));
    // SAFETY: as above
    unsafe {
        std::env::remove_var("BPFCAP_TEST_CI_SECRET");
        libc::close(fd);
    }
    assert_loaded(&outcome, "socket_filter");
    let facts = outcome.sandbox.expect("the loader reports its sandbox");
    let kinds: Vec<&str> = facts
        .inherited_descriptors
        .iter()
        .map(|d| d.split_once(" -> ").unwrap().1.split(':').next().unwrap())
        .collect();
    assert!(
        !facts.inherited_descriptors.iter().any(|d| d.contains("secret"))
            && kinds.iter().all(|k| *k == "pipe" || *k == "socket"),
        "inherited: {:?}",
        facts.inherited_descriptors
    );
    assert_eq!(facts.inherited_descriptors.len(), 4, "stdio and the socket: {:?}", facts.inherited_descriptors);
    let mut env = facts.environment.clone();
    env.sort();
    assert_eq!(env, ["BPFCAP_SANDBOX_FD", "BPFCAP_SANDBOX_PARENT", "PATH"]);
    for ns in ["user", "mnt", "pid", "net", "ipc", "uts"] {
        assert!(facts.own_namespaces.iter().any(|n| n == ns), "shares the {ns} namespace: {facts:?}");
    }
    assert!(facts.no_new_privs, "{facts:?}");
    assert_eq!(facts.seccomp, 2, "no syscall filter: {facts:?}");
}

#[test]
fn uid_0_is_refused() {
    let mut req = LoadRequest::new(fixture("socket_filter.o"), socket_delegation(), common::caps(&["CAP_BPF"]));
    req.uid = 0;
    match sandbox::load_in_sandbox(Path::new(HELPER), &req) {
        Err(SandboxError::InvalidRequest(m)) => assert!(m.contains("host's root"), "{m}"),
        other => panic!("uid 0 was not refused: {other:?}"),
    }
    let out = std::process::Command::new(HELPER)
        .args(["verify", "--uid", "0"])
        .arg(fixture("socket_filter.o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A load that needs more memory than its budget fails for that, in a memory cgroup made
/// for the run (removed after it), and loads within a larger one.
#[test]
fn a_load_over_its_memory_budget_fails_for_that() {
    let Some(_g) = setup("a_load_over_its_memory_budget_fails_for_that") else {
        return;
    };
    // a socket filter and a 64 MiB array
    let delegation = Masks {
        commands: bit(sys::BPF_PROG_LOAD) | bit(sys::BPF_MAP_CREATE) | bit(sys::BPF_BTF_LOAD),
        maps: bit(sys::BPF_MAP_TYPE_ARRAY),
        programs: bit(sys::BPF_PROG_TYPE_SOCKET_FILTER),
        attachments: bit(sys::BPF_CGROUP_INET_INGRESS),
    };
    let mut req = LoadRequest::new(fixture("big_array.o"), delegation, common::caps(&["CAP_BPF"]));
    req.memory = 32 << 20;
    let outcome = run(&req);
    assert_eq!(outcome.step.as_deref(), Some("memory_limit"), "{outcome:#?}");
    assert!(outcome.message.as_deref().unwrap().contains("32 MiB"), "{outcome:#?}");
    req.memory = 512 << 20;
    assert_loaded(&run(&req), "big_array within 512 MiB");
}

/// Names that are not UTF-8 (any byte goes in an ELF or BTF string) reach libbpf's log: the
/// log is taken as bytes, and the load goes on (the child aborted: a Rust string formatted
/// inside libbpf's C callback).
#[test]
fn names_that_are_not_utf8_do_not_abort_the_loader() {
    let Some(_g) = setup("names_that_are_not_utf8_do_not_abort_the_loader") else {
        return;
    };
    let mut bytes = std::fs::read(fixture("big_array.o")).unwrap();
    // rename the map `pages` (ELF symbol and BTF name alike) to bytes that are not UTF-8
    let mut renamed = 0;
    for at in 0..bytes.len() - 6 {
        if &bytes[at..at + 6] == b"pages\0" && bytes[at - 1] == 0 {
            bytes[at..at + 5].copy_from_slice(b"p\xff\xfe\xfd\xfc");
            renamed += 1;
        }
    }
    assert!(renamed >= 2, "the map's name is in .strtab and .BTF");
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("nonutf8.o");
    std::fs::write(&obj, &bytes).unwrap();
    let delegation = Masks {
        commands: bit(sys::BPF_PROG_LOAD) | bit(sys::BPF_MAP_CREATE) | bit(sys::BPF_BTF_LOAD),
        maps: bit(sys::BPF_MAP_TYPE_ARRAY),
        programs: bit(sys::BPF_PROG_TYPE_SOCKET_FILTER),
        attachments: bit(sys::BPF_CGROUP_INET_INGRESS),
    };
    let outcome = run(&LoadRequest::new(&obj, delegation, common::caps(&["CAP_BPF"])));
    assert_loaded(&outcome, "an object with a map named p\\xff\\xfe\\xfd\\xfc");
    assert!(outcome.libbpf_log.iter().any(|l| l.contains("p\u{fffd}")), "the name, decoded lossily, is in the log");
}
