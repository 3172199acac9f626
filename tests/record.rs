//! `bpfcap record`: real programs recorded and minimised in the sandbox, and each answer then
//! proven by an independent harness (tools/cilium-loader/userns-token, Go, not bpfcap): from a
//! fresh user namespace the program exits 0 with the answer, and fails without any one of its
//! items or capabilities.
//!
//! The programs are real: tools/libbpf-loader (a C program on Debian sid's libbpf 1.7, which
//! finds its token through LIBBPF_BPF_TOKEN_PATH), tools/cilium-loader and bpf2go-style Go
//! programs on cilium/ebpf 0.22 (ambient token), loading objects built by others. `./dev test`
//! builds them (scripts/build-go-tools) and passes their directory as BPFCAP_GO_TOOLS; with
//! BPFCAP_REQUIRE_TOKEN_TESTS=1 a missing precondition fails the tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

/// One recording at a time: the leftover checks count the machine's BPF objects and processes.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tools' directory (libbpf-loader, cilium-loader, userns-token), or None when the test
/// may not run.
fn tools(what: &str) -> Option<PathBuf> {
    let found = (|| {
        bpfcap::sandbox::preflight().map_err(|e| e.to_string())?;
        let dir = std::env::var_os("BPFCAP_GO_TOOLS")
            .map(PathBuf::from)
            .ok_or("BPFCAP_GO_TOOLS (the tools ./dev test builds) is not set")?;
        for t in ["libbpf-loader", "cilium-loader", "userns-token"] {
            if !dir.join(t).is_file() {
                return Err(format!("{} has no {t}", dir.display()));
            }
        }
        Ok(dir)
    })();
    match found {
        Ok(d) => Some(d),
        Err(e) => {
            common::require(Err(e), what);
            None
        }
    }
}

fn bpfcap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfcap")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap()
}

/// A directory the sandbox's unprivileged uid can read (the recorded program reads its object
/// itself).
fn readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A copy of `file` in `dir` (which the sandbox's uid can read), executable: the repository
/// may be where that uid cannot reach (a clone in a mode-0700 directory).
fn staged(dir: &Path, file: &Path) -> PathBuf {
    let to = dir.join(file.file_name().unwrap());
    std::fs::copy(file, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// The sample object testdata/`name`.bpf.o, staged in `dir`.
fn sample(dir: &Path, name: &str) -> PathBuf {
    staged(dir, &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{name}.bpf.o")))
}

/// `bpfcap record --minimize --format json -- CMD`: the document, after checking that the run
/// worked and the answer is 1-minimal by bpfcap's own account.
fn record(cmd: &[&str]) -> Value {
    let mut args = vec!["record", "--minimize", "--format", "json", "--"];
    args.extend_from_slice(cmd);
    let out = bpfcap(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "record {cmd:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["kind"], "record");
    assert_eq!(doc["run"]["worked"], true, "{stdout}");
    assert_eq!(doc["minimized"]["one_minimal"], true, "{stdout}");
    doc
}

/// Capability numbers (include/uapi/linux/capability.h), for the harness: written here, not
/// taken from bpfcap.
fn capability_number(name: &str) -> u32 {
    match name {
        "CAP_NET_ADMIN" => 12,
        "CAP_SYS_ADMIN" => 21,
        "CAP_SYS_BOOT" => 22,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("the harness does not know {other}"),
    }
}

/// An answer as the harness takes it: the four lists by mount option, and the capabilities.
#[derive(Clone, Debug)]
struct Answer {
    lists: Vec<(&'static str, Vec<String>)>,
    caps: Vec<String>,
}

impl Answer {
    fn of(doc: &Value) -> Answer {
        let names = |key: &str| -> Vec<String> {
            doc["delegation"][key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
        };
        Answer {
            lists: vec![
                ("delegate_cmds", names("commands")),
                ("delegate_maps", names("maps")),
                ("delegate_progs", names("programs")),
                ("delegate_attachs", names("attachments")),
            ],
            caps: doc["capabilities"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        }
    }

    /// Every answer with one item or capability fewer, named.
    fn without_each(&self) -> Vec<(String, Answer)> {
        let mut out = Vec::new();
        for (i, (opt, names)) in self.lists.iter().enumerate() {
            for n in names {
                let mut a = self.clone();
                a.lists[i].1.retain(|x| x != n);
                out.push((format!("{opt} {n}"), a));
            }
        }
        for c in &self.caps {
            let mut a = self.clone();
            a.caps.retain(|x| x != c);
            out.push((c.clone(), a));
        }
        out
    }
}

/// Runs `cmd` through the independent harness with `answer`: a fresh user namespace, a bpffs
/// with exactly those delegate_* options (by name, as the kernel parses them), only those
/// capabilities, LIBBPF_BPF_TOKEN_PATH set. True when it exits 0.
fn works_with(tools: &Path, answer: &Answer, cmd: &[&str]) -> bool {
    let mut c = Command::new(tools.join("userns-token"));
    let caps: Vec<String> = answer.caps.iter().map(|n| capability_number(n).to_string()).collect();
    // (-caps "" keeps every capability: keep one the kernel never checks through a token instead)
    c.arg("-caps").arg(if caps.is_empty() { "0".to_string() } else { caps.join(",") });
    let mut any = false;
    for (opt, names) in &answer.lists {
        if !names.is_empty() {
            c.arg("-delegate").arg(format!("{opt}={}", names.join(":")));
            any = true;
        }
    }
    if !any {
        // nothing delegated: a bpffs with no delegation (token creation fails with ENOENT)
        c.arg("-delegate").arg("delegate_cmds=0");
    }
    c.arg("--").args(cmd).env("LIBBPF_BPF_TOKEN_PATH", "/sys/fs/bpf");
    let out = c.output().unwrap();
    out.status.success()
}

/// The harness itself: the command it runs holds exactly the capabilities asked for, every
/// time. (Capability sets are per thread: a harness that dropped them on one of Go's threads
/// and exec'd on another kept them all, now and then, and "proved" an item unneeded.)
#[test]
fn the_harness_keeps_only_the_listed_capabilities() {
    let Some(tools) = tools("the harness's capabilities") else { return };
    let want =
        format!("{:016x}", (1u64 << capability_number("CAP_BPF")) | (1u64 << capability_number("CAP_NET_ADMIN")));
    for _ in 0..100 {
        let out = Command::new(tools.join("userns-token"))
            .args(["-caps", "39,12", "-delegate", "delegate_cmds=0", "--", "cat", "/proc/self/status"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status = String::from_utf8_lossy(&out.stdout);
        for set in ["CapPrm", "CapEff", "CapBnd"] {
            let line = status.lines().find(|l| l.starts_with(&format!("{set}:"))).unwrap();
            assert_eq!(line.split_whitespace().nth(1), Some(want.as_str()), "{set}: {status}");
        }
    }
}

/// The harness's verdict on a recorded answer: it works, and nothing can be dropped. Returns
/// the problems.
fn prove(tools: &Path, doc: &Value, cmd: &[&str]) -> Vec<String> {
    let answer = Answer::of(doc);
    let mut problems = Vec::new();
    if !works_with(tools, &answer, cmd) {
        problems.push(format!("{cmd:?} does not exit 0 with the answer {answer:?}"));
        return problems;
    }
    for (item, smaller) in answer.without_each() {
        if works_with(tools, &smaller, cmd) {
            problems.push(format!("{cmd:?} still exits 0 without {item}"));
        }
    }
    problems
}

/// Objects built by others that libbpf 1.7 loads as root, as files, `n` of them spread over
/// the list.
fn libbpf_objects(dir: &Path, n: usize) -> Vec<PathBuf> {
    let root = common::sid_root().unwrap();
    let candidates: Vec<bpfcap::model::ObjectRef> = common::objects_built_by_others(&root)
        .into_iter()
        .map(|(_, o)| common::source_of(&o).clone())
        .filter(|s| common::libbpf_loads_as_root(s, None).unwrap_or(false))
        .collect();
    let step = candidates.len().div_ceil(n).max(1);
    candidates.iter().step_by(step).map(|d| common::object_file(dir, d)).collect()
}

fn sample_size() -> usize {
    if common::full_evaluation() { 12 } else { 3 }
}

/// A libbpf 1.7 program loading objects built by others through LIBBPF_BPF_TOKEN_PATH: the
/// minimised answer works from a fresh user namespace, and no item or capability can go.
#[test]
fn libbpf_programs_recorded_and_minimised_are_proven_by_the_harness() {
    let Some(tools) = tools("record of libbpf programs") else { return };
    if !common::require(common::sid_root().map(drop), "record of libbpf programs") {
        return;
    }
    let _serial = serial();
    let dir = readable_tempdir();
    let loader = staged(dir.path(), &tools.join("libbpf-loader"));
    let objects = libbpf_objects(dir.path(), sample_size());
    assert!(objects.len() >= 3, "too few objects libbpf loads: {objects:?}");
    eprintln!("record: libbpf-loader on {} objects built by others", objects.len());
    let mut problems = Vec::new();
    for obj in &objects {
        let cmd = [loader.to_str().unwrap(), obj.to_str().unwrap()];
        let doc = record(&cmd);
        assert!(!doc["delegation"]["programs"].as_array().unwrap().is_empty(), "{doc}");
        problems.extend(prove(&tools, &doc, &cmd));
        // the static analysis of the object for libbpf 1.7 agrees (both are 1-minimal)
        let a = bpfcap(&["analyze", "--loader", "libbpf@1.7", "--format", "json", obj.to_str().unwrap()]);
        let analysed: Value = serde_json::from_slice(&a.stdout).unwrap();
        if analysed["delegation"] != doc["delegation"] || analysed["capabilities"] != doc["capabilities"] {
            eprintln!(
                "note: {}: analysis {} {} / record {} {}",
                obj.display(),
                analysed["delegation"],
                analysed["capabilities"],
                doc["delegation"],
                doc["capabilities"]
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Go programs on cilium/ebpf 0.22's ambient token: cilium-loader, and bpf2go-style programs
/// embedding objects built by others, built in the test from Debian sid's packages.
#[test]
fn go_programs_recorded_and_minimised_are_proven_by_the_harness() {
    let Some(tools) = tools("record of Go programs") else { return };
    let Ok(root) = common::sid_root() else {
        common::require(common::sid_root().map(drop), "record of Go programs");
        return;
    };
    let _serial = serial();
    let dir = readable_tempdir();
    let cilium = staged(dir.path(), &tools.join("cilium-loader"));
    // objects built by others that cilium/ebpf loads as root, embedded in Go programs
    let mut chosen = Vec::new();
    for (_, o) in common::objects_built_by_others(&root) {
        let file = common::object_file(dir.path(), common::source_of(&o));
        if Command::new(&cilium).arg(&file).output().is_ok_and(|o| o.status.success()) {
            chosen.push(file);
        }
    }
    let step = chosen.len().div_ceil(sample_size()).max(1);
    let chosen: Vec<PathBuf> = chosen.into_iter().step_by(step).collect();
    assert!(chosen.len() >= 3, "too few objects cilium/ebpf loads: {chosen:?}");
    eprintln!("record: {} Go programs embedding objects built by others", chosen.len());
    let bin = dir.path().join("bin");
    let mut build = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-go-tools"));
    build.arg("--root").arg(&root).arg("--out").arg(&bin);
    for (i, obj) in chosen.iter().enumerate() {
        build.arg("--embed").arg(obj).arg(format!("goprog{i}")).arg("module");
    }
    assert!(build.status().unwrap().success(), "scripts/build-go-tools failed");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut problems = Vec::new();
    for i in 0..chosen.len() {
        let program = bin.join(format!("goprog{i}"));
        let cmd = [program.to_str().unwrap()];
        let doc = record(&cmd);
        problems.extend(prove(&tools, &doc, &cmd));
        // verify --exec with the delegation of the program's own embedded objects works too
        let v = bpfcap(&["verify", "--exec", "--", program.to_str().unwrap()]);
        if v.status.code() != Some(0) {
            problems.push(format!("verify --exec {}: {}", program.display(), String::from_utf8_lossy(&v.stdout)));
        }
    }
    // cilium-loader itself, on a sample
    let xdp = sample(dir.path(), "xdp");
    let cmd = [cilium.to_str().unwrap(), xdp.to_str().unwrap()];
    let doc = record(&cmd);
    problems.extend(prove(&tools, &doc, &cmd));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// record → emit → check with no object: the record document is the source of what is
/// needed, and verify --exec --from proves it with bpfcap's own sandbox.
#[test]
fn record_document_feeds_emit_check_and_verify() {
    let Some(tools) = tools("record → emit → check") else { return };
    let _serial = serial();
    let dir = readable_tempdir();
    let loader = staged(dir.path(), &tools.join("libbpf-loader"));
    let xdp = sample(dir.path(), "xdp");
    let cmd = [loader.to_str().unwrap(), xdp.to_str().unwrap()];
    let doc = record(&cmd);
    // the capability checks are observed (the capability:cap_capable tracepoint, Linux 6.14+):
    // CAP_BPF, asked for by token creation and by the loads
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    if (v.next().unwrap(), v.next().unwrap()) >= (6, 14) {
        assert_eq!(doc["observed_capabilities"], true);
        let bpf = doc["asked"].as_array().unwrap().iter().find(|a| a["item"]["capability"] == "CAP_BPF").unwrap();
        let commands: Vec<&str> =
            bpf["requests"].as_array().unwrap().iter().map(|r| r["command"].as_str().unwrap()).collect();
        assert!(commands.contains(&"token_create") && commands.contains(&"prog_load"), "{bpf}");
    }
    let rec = dir.path().join("record.json");
    std::fs::write(&rec, serde_json::to_vec(&doc).unwrap()).unwrap();
    let rec = rec.to_str().unwrap();
    let dropin = dir.path().join("bpf.conf");
    let e = bpfcap(&["emit", "--target", "systemd", "--from", rec, "--output", dropin.to_str().unwrap()]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let text = std::fs::read_to_string(&dropin).unwrap();
    assert!(text.contains("BPFDelegatePrograms=") && text.contains("PrivateBPF=yes"), "{text}");
    let c = bpfcap(&["check", "--config", dropin.to_str().unwrap(), "--from", rec, "--deny-extra"]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&c.stdout),
        String::from_utf8_lossy(&c.stderr)
    );
    // a configuration short of one item is caught
    let short = text.replace("BPFProgTypeXdp", "");
    let short_path = dir.path().join("short.conf");
    std::fs::write(&short_path, short).unwrap();
    let c = bpfcap(&["check", "--config", short_path.to_str().unwrap(), "--from", rec]);
    assert_eq!(c.status.code(), Some(1), "{}", String::from_utf8_lossy(&c.stdout));
    let mut args = vec!["verify", "--exec", "--from", rec, "--minimize", "--strict", "--"];
    args.extend_from_slice(&cmd);
    let v = bpfcap(&args);
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    // and with --config: the mount options alone (capabilities: every token capability)
    let opts = dir.path().join("mount-options");
    std::fs::write(&opts, doc["mount_options"].as_str().unwrap()).unwrap();
    let mut args = vec!["verify", "--exec", "--config", opts.to_str().unwrap(), "--"];
    args.extend_from_slice(&cmd);
    let v = bpfcap(&args);
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    // a record document naming what is not a kernel name (a crafted one) is refused, exit 2
    let mut crafted = doc.clone();
    crafted["delegation"]["programs"][0] = Value::from("xdp\nExecStartPre=/bin/evil");
    let crafted_path = dir.path().join("crafted.json");
    std::fs::write(&crafted_path, serde_json::to_vec(&crafted).unwrap()).unwrap();
    let e = bpfcap(&["emit", "--target", "systemd", "--from", crafted_path.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(2), "{}", String::from_utf8_lossy(&e.stdout));
    assert!(!String::from_utf8_lossy(&e.stdout).contains("ExecStartPre"));
    // a document that is not a record is refused with exit 2
    let a = dir.path().join("analysis.json");
    std::fs::write(&a, bpfcap(&["analyze", "--format", "json", xdp.to_str().unwrap()]).stdout).unwrap();
    let e = bpfcap(&["emit", "--target", "systemd", "--from", a.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(2));
}

/// BPF programs, maps and links currently loaded on the machine (by id).
fn bpf_ids() -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    use libbpf_rs::libbpf_sys;
    let walk = |next: unsafe extern "C" fn(u32, *mut u32) -> i32| {
        let (mut id, mut ids) = (0u32, Vec::new());
        // SAFETY: plain syscall wrappers writing one u32.
        while unsafe { next(id, &mut id) } == 0 {
            ids.push(id);
        }
        ids
    };
    (
        walk(libbpf_sys::bpf_prog_get_next_id),
        walk(libbpf_sys::bpf_map_get_next_id),
        walk(libbpf_sys::bpf_link_get_next_id),
    )
}

/// The BPF program, map and link ids that exist now and did not in `before`, once there are
/// none or after 5 s (the kernel frees an id in deferred work after the last descriptor of
/// its object is closed; ids that vanish, a test before this one's, do not count).
fn bpf_ids_left_over(before: &(Vec<u32>, Vec<u32>, Vec<u32>)) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let new = |now: &[u32], then: &[u32]| now.iter().copied().filter(|id| !then.contains(id)).collect::<Vec<u32>>();
    let start = Instant::now();
    loop {
        let now = bpf_ids();
        let left = (new(&now.0, &before.0), new(&now.1, &before.1), new(&now.2, &before.2));
        if (left.0.is_empty() && left.1.is_empty() && left.2.is_empty()) || start.elapsed() > Duration::from_secs(5) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sleep` processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.starts_with("sleep ") && text.contains(marker) {
                out.push(format!("{}: {text}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Nothing is left behind: no BPF program, map or link (the observer's included), no mount, no
/// process, whether the program works, fails, hangs past its time limit or is a daemon.
#[test]
fn record_leaves_nothing_behind_on_any_path() {
    let Some(tools) = tools("record leaves nothing behind") else { return };
    let _serial = serial();
    let dir = readable_tempdir();
    let loader = staged(dir.path(), &tools.join("libbpf-loader"));
    let xdp = sample(dir.path(), "xdp");
    let before = (bpf_ids(), mounts());
    let marker = "4242.25";
    let daemon = format!("{} {} && exec sleep {marker}", loader.display(), xdp.display());
    let hang = format!("sleep {marker} & sleep {marker}");
    let forking = format!("{} {} && {{ sleep {marker} & }}; exit 0", loader.display(), xdp.display());
    let runs: Vec<(Vec<&str>, Option<i32>)> = vec![
        (vec!["--", loader.to_str().unwrap(), xdp.to_str().unwrap()], Some(0)),
        (vec!["--", "/bin/false"], Some(1)),
        (vec!["--timeout", "2", "--", "/bin/sh", "-c", &hang], Some(1)),
        (vec!["--ready-after", "1", "--", "/bin/sh", "-c", &daemon], Some(0)),
        // a daemon that forks: its first process ends with 0, its child goes on
        (vec!["--ready-after", "1", "--", "/bin/sh", "-c", &forking], Some(0)),
    ];
    for (args, code) in &runs {
        let mut all = vec!["record", "--format", "json"];
        all.extend_from_slice(args);
        let start = Instant::now();
        let out = bpfcap(&all);
        assert_eq!(out.status.code(), *code, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(start.elapsed() < Duration::from_secs(30), "{args:?} took {:?}", start.elapsed());
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        if args.contains(&"--ready-after") {
            assert_eq!(doc["run"]["still_running"], true, "{doc}");
            assert_eq!(doc["run"]["worked"], true, "{doc}");
            assert!(!doc["delegation"]["programs"].as_array().unwrap().is_empty(), "{doc}");
        }
        assert!(processes_with(marker).is_empty(), "{args:?} left {:?}", processes_with(marker));
    }
    assert_eq!(bpf_ids_left_over(&before.0), (vec![], vec![], vec![]), "BPF programs, maps or links were left behind");
    assert_eq!(mounts(), before.1, "mounts changed");
}

/// SIGTERM and SIGINT stop the program and everything it started; bpfcap reports it and exits 2.
#[test]
fn signals_stop_the_program_and_its_children() {
    let Some(_tools) = tools("record stopped by a signal") else { return };
    let _serial = serial();
    for (signal, marker) in [(libc::SIGTERM, "4243.5"), (libc::SIGINT, "4244.5")] {
        let before = bpf_ids();
        let child = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
            .args(["record", "--", "/bin/sh", "-c", &format!("sleep {marker} & sleep {marker}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // wait until the program runs
        let start = Instant::now();
        while processes_with(marker).len() < 2 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(processes_with(marker).len(), 2, "the program did not start");
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let stopped = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(5), "bpfcap took {:?} to stop", stopped.elapsed());
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("stopped by"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(processes_with(marker).is_empty(), "left {:?}", processes_with(marker));
        assert_eq!(bpf_ids_left_over(&before), (vec![], vec![], vec![]), "the observer was left attached");
    }
}

/// A libbpf program built by others: Debian sid's bpftool (its own libbpf), which takes the
/// token from LIBBPF_BPF_TOKEN_PATH, loading and pinning the programs of objects in the
/// sandbox's bpffs; run through sid's dynamic loader, as it is linked against sid's libraries.
#[test]
fn bpftool_built_by_others_recorded_and_minimised_is_proven_by_the_harness() {
    let Some(tools) = tools("record of Debian's bpftool") else { return };
    let Ok(root) = common::sid_root() else {
        common::require(common::sid_root().map(drop), "record of Debian's bpftool");
        return;
    };
    let libs = root.join("usr/lib/x86_64-linux-gnu");
    let ld = libs.join("ld-linux-x86-64.so.2");
    let bpftool = root.join("usr/sbin/bpftool");
    if !common::require(
        if ld.is_file() && bpftool.is_file() { Ok(()) } else { Err("no bpftool in the sid chroot".into()) },
        "record of Debian's bpftool",
    ) {
        return;
    }
    let _serial = serial();
    let dir = readable_tempdir();
    let mut problems = Vec::new();
    for sample_name in ["tc", "cgroup_skb", "socket"] {
        let obj = sample(dir.path(), sample_name);
        let cmd = [
            ld.to_str().unwrap(),
            "--library-path",
            libs.to_str().unwrap(),
            bpftool.to_str().unwrap(),
            "prog",
            "loadall",
            obj.to_str().unwrap(),
            "/sys/fs/bpf/pinned",
        ];
        let doc = record(&cmd);
        assert!(!doc["delegation"]["programs"].as_array().unwrap().is_empty(), "{doc}");
        problems.extend(prove(&tools, &doc, &cmd));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
