//! The sandbox child: runs as `<helper> __sandbox-child`, single-threaded,
//! freshly exec'd. See the module documentation of `sandbox` for the steps.

use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};

use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use super::logparse::{self, errno_text};
use super::sys;
use super::{
    CHILD_PATH, ChildError, ChildReport, ENV_PARENT_PID, ENV_SOCK_FD, LoadOutcome, LoadRequest, ProgramOutcome, Runner,
};

/// Lines kept from the end of libbpf's log.
const LOG_CAPACITY: usize = 4000;
/// Bytes read from the end of libbpf's log (a verifier log can run to megabytes).
const LOG_BYTES: u64 = 4 << 20;
/// Lines of libbpf's log returned in `LoadOutcome::libbpf_log`.
const LOG_TAIL: usize = 200;
/// Lines of per-program log returned in `ProgramOutcome::log_tail`.
const PROG_LOG_TAIL: usize = 20;

/// The memfd libbpf's messages are written to, as bytes (-1: none). libbpf formats them with
/// the C library (vdprintf), so that no name in them, whatever its bytes, passes through a
/// Rust string inside C code; they are decoded (lossily) when read back.
static LOG_FD: AtomicI32 = AtomicI32::new(-1);

/// libbpf's print callback (libbpf_set_print).
unsafe extern "C" fn capture_print(
    _level: libbpf_sys::libbpf_print_level,
    fmt: *const libc::c_char,
    args: *mut libbpf_sys::__va_list_tag,
) -> libc::c_int {
    let fd = LOG_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return 0;
    }
    // SAFETY: libbpf passes a valid format and the argument list that goes with it.
    unsafe { libbpf_sys::vdprintf(fd, fmt, args) }
}

/// Sends libbpf's messages to a new memfd, returned (kept open by the caller).
fn capture_log() -> Result<OwnedFd, ChildError> {
    let fd = sys::memfd(c"libbpf-log").map_err(|e| err("log", &e))?;
    LOG_FD.store(fd.as_raw_fd(), Ordering::Relaxed);
    // SAFETY: the callback has the signature libbpf expects.
    unsafe { libbpf_sys::libbpf_set_print(Some(capture_print)) };
    Ok(fd)
}

/// The lines libbpf wrote so far (the last [`LOG_CAPACITY`] of its last [`LOG_BYTES`]), and
/// the log emptied.
fn take_log(log: &OwnedFd) -> Vec<String> {
    let mut f = std::fs::File::from(log.try_clone().expect("dup of the log memfd"));
    let size = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut bytes = Vec::new();
    let _ = f.seek(SeekFrom::Start(size.saturating_sub(LOG_BYTES)));
    let _ = f.read_to_end(&mut bytes);
    let _ = f.set_len(0);
    let _ = f.seek(SeekFrom::Start(0));
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    lines[lines.len().saturating_sub(LOG_CAPACITY)..].to_vec()
}

fn tail(lines: &[String], n: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn err(step: &str, e: &std::io::Error) -> ChildError {
    let errno = e.raw_os_error();
    ChildError {
        step: step.to_string(),
        errno,
        message: match errno {
            Some(n) => errno_text(n),
            None => e.to_string(),
        },
    }
}

fn err_msg(step: &str, errno: Option<i32>, message: impl Into<String>) -> ChildError {
    ChildError { step: step.to_string(), errno, message: message.into() }
}

fn last_os(step: &str) -> ChildError {
    err(step, &std::io::Error::last_os_error())
}

/// Entry point of `bpfcap __sandbox-child`. Prints one JSON report on stdout.
/// Returns 0 when a load outcome (successful or not) was reported, 1 when the
/// sandbox itself failed (an error report was printed).
pub fn child_main() -> i32 {
    let report = match run() {
        Ok(outcome) => ChildReport::Outcome(outcome),
        Err(e) => ChildReport::Error(e),
    };
    let code = i32::from(matches!(report, ChildReport::Error(_)));
    let json = serde_json::to_string(&report)
        .unwrap_or_else(|e| format!(r#"{{"kind":"error","step":"report","errno":null,"message":"{e}"}}"#));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{json}");
    let _ = out.flush();
    code
}

/// (Re-)arms PDEATHSIG and checks the parent is still the one that spawned
/// us. Credential changes (unshare of a user namespace, setresuid, capset)
/// can clear the parent-death signal, so this runs after each of them.
fn arm_pdeathsig(parent: libc::pid_t) -> Result<(), ChildError> {
    sys::set_pdeathsig_kill().map_err(|e| err("pdeathsig", &e))?;
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        // The parent died before PDEATHSIG was armed: do not outlive it.
        std::process::exit(1);
    }
    Ok(())
}

fn expect_msg(sock: BorrowedFd<'_>, want: &[u8], step: &str) -> Result<(), ChildError> {
    match sys::recv_msg(sock, None).map_err(|e| err("protocol", &e))? {
        sys::Received::Msg(m, _) if m == want => Ok(()),
        sys::Received::Msg(m, _) if m == b"ABORT" => {
            Err(err_msg(step, None, "the parent aborted this step (it reports why)"))
        }
        sys::Received::Msg(m, _) => {
            Err(err_msg("protocol", None, format!("unexpected message {:?}", String::from_utf8_lossy(&m))))
        }
        _ => Err(err_msg("protocol", None, "parent closed the control socket")),
    }
}

fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// Bounding set, ambient set, then effective = permitted = inheritable = keep.
fn drop_caps(keep: &[u32]) -> Result<(), ChildError> {
    let last = cap_last_cap();
    if let Some(bad) = keep.iter().find(|&&c| c > last || c > 63) {
        return Err(err_msg(
            "drop_caps",
            Some(libc::EINVAL),
            format!("capability {bad} is unknown to this kernel (cap_last_cap = {last})"),
        ));
    }
    // SAFETY: plain prctl calls with integer arguments.
    unsafe {
        // EINVAL on kernels without ambient capabilities: nothing to clear.
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0);
        for cap in 0..=last {
            if !keep.contains(&cap) && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(last_os("drop_caps"));
            }
        }
    }
    sys::capset_exact(keep).map_err(|e| err("drop_caps", &e))
}

/// This process's namespaces (kind, identity), from /proc/self/ns.
fn namespaces() -> Vec<(&'static str, String)> {
    ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"]
        .into_iter()
        .filter_map(|ns| Some((ns, std::fs::read_link(format!("/proc/self/ns/{ns}")).ok()?.display().to_string())))
        .collect()
}

/// This process's open descriptors, as `N -> what`.
fn descriptors() -> Vec<String> {
    let mut v: Vec<(u32, String)> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n: u32 = e.file_name().to_str()?.parse().ok()?;
                    let what = std::fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default();
                    Some((n, what))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    // (not the directory listing's own descriptor)
    let listing = format!("/proc/{}/fd", std::process::id());
    v.into_iter().filter(|(_, what)| *what != listing).map(|(n, what)| format!("{n} -> {what}")).collect()
}

/// A numeric field of /proc/self/status.
fn status_field(name: &str) -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()))
        .unwrap_or(0)
}

fn run() -> Result<LoadOutcome, ChildError> {
    // what this process inherited, before it opens anything
    let inherited = descriptors();
    let host_namespaces = namespaces();
    let mut outcome = set_up_and_load()?;
    let own_namespaces =
        namespaces().into_iter().filter(|ns| !host_namespaces.contains(ns)).map(|(kind, _)| kind.to_string()).collect();
    outcome.sandbox = Some(super::SandboxFacts {
        own_namespaces,
        inherited_descriptors: inherited,
        environment: std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()).collect(),
        no_new_privs: status_field("NoNewPrivs") == 1,
        seccomp: status_field("Seccomp"),
    });
    Ok(outcome)
}

fn set_up_and_load() -> Result<LoadOutcome, ChildError> {
    let env_num = |name: &str| -> Result<i64, ChildError> {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err_msg("child_env", None, format!("{name} is not set; run only via load_in_sandbox")))
    };
    let sock_fd = env_num(ENV_SOCK_FD)? as RawFd;
    let parent = env_num(ENV_PARENT_PID)? as libc::pid_t;
    arm_pdeathsig(parent)?;
    // The fd was inherited on purpose; keep it away from anything we might exec.
    sys::set_cloexec(sock_fd).map_err(|e| err("child_env", &e))?;
    // SAFETY: the parent passed us this descriptor; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(sock_fd) };

    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| err("read_request", &e))?;
    let req: LoadRequest =
        serde_json::from_str(&input).map_err(|e| err_msg("read_request", None, format!("bad request JSON: {e}")))?;

    // Read the object while still host root: the sandbox's uid must not need
    // read access to the caller's files.
    // `object` may be the byte range of an object embedded in an executable.
    // (a command loads what it loads itself)
    let (object, object_name) = match &req.runner {
        Runner::Command { .. } => (Vec::new(), String::new()),
        _ => (
            crate::input::read_object_ref(&req.object).map_err(|e| err_msg("read_object", None, e.to_string()))?,
            req.object.name.clone(),
        ),
    };
    // A loader program is read now too, and run from memory: the sandbox's uid need not
    // reach it.
    let exec = match &req.runner {
        Runner::Libbpf | Runner::Command { .. } => None,
        Runner::CiliumLoader(exe) | Runner::Program(exe) => Some(read_to_memfd(exe, &object)?),
    };

    // Supplementary groups cannot be changed once setgroups is denied.
    // SAFETY: an empty group list.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(last_os("setgroups"));
    }
    // A user namespace, and under it private mount, IPC, network, UTS and PID namespaces: the
    // loader sees no host process, network or IPC object (the PID namespace takes effect for
    // the process forked below, its PID 1).
    let namespaces = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWPID;
    // SAFETY: plain unshare call.
    if unsafe { libc::unshare(namespaces) } != 0 {
        return Err(last_os("unshare"));
    }
    arm_pdeathsig(parent)?;
    sys::send_msg(sock.as_fd(), b"UNSHARED", None).map_err(|e| err("protocol", &e))?;
    expect_msg(sock.as_fd(), b"MAPPED", "uid_map")?;

    // SAFETY: plain id-setting calls.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(last_os("setresgid"));
        }
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(last_os("setresuid"));
        }
    }
    arm_pdeathsig(parent)?;

    // The rest runs as PID 1 of the new PID namespace: when it ends, whatever it started ends
    // with it. This process only waits for it and passes its exit code on.
    let pid = sys::fork().map_err(|e| err("fork", &e))?;
    if pid != 0 {
        drop(sock);
        let code = sys::wait_exit_code(pid).unwrap_or(1);
        std::process::exit(code);
    }
    // (its parent is the process above: it must not outlive it)
    // SAFETY: getppid has no preconditions.
    let waiter = unsafe { libc::getppid() };
    arm_pdeathsig(waiter)?;

    // SAFETY: NULL source/fstype/data are allowed for a propagation change.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(last_os("mount_private"));
    }

    let fs = sys::fsopen(c"bpf", sys::FSOPEN_CLOEXEC).map_err(|e| err("fsopen", &e))?;
    sys::send_msg(sock.as_fd(), b"FSFD", Some(fs.as_fd())).map_err(|e| err("protocol", &e))?;
    expect_msg(sock.as_fd(), b"CREATED", "fsconfig")?;
    drop(sock);

    let mnt = sys::fsmount(fs.as_fd(), sys::FSMOUNT_CLOEXEC, 0).map_err(|e| err("fsmount", &e))?;
    drop(fs);
    // Put the delegated bpffs where systemd's PrivateBPF= puts it and where libbpf looks by
    // default, /sys/fs/bpf, in this private mount namespace: maps pinned by name then go into
    // the delegated instance, never into the host's bpffs.
    sys::move_mount_to(mnt.as_fd(), BPFFS_PATH).map_err(|e| err("move_mount", &e))?;
    drop(mnt);
    // fsmount() gives an O_PATH fd, which BPF_TOKEN_CREATE rejects (EBADF):
    // open a real descriptor of the mount's root.
    let root = sys::openat(
        unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) },
        BPFFS_PATH,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
    .map_err(|e| err("open_bpffs_root", &e))?;

    drop_caps(&req.caps)?;
    arm_pdeathsig(waiter)?;
    sys::deny_syscalls(DENIED_SYSCALLS).map_err(|e| err("seccomp", &e))?;

    match (&req.runner, exec) {
        (Runner::Command { argv, ready_after }, _) => {
            drop(root);
            run_command(argv, *ready_after)
        }
        (_, None) => load(&req, &object, &object_name, root.as_fd()),
        (_, Some((exe, object))) => {
            drop(root);
            exec_load(&req, &exe, &object)
        }
    }
}

/// Reads a pipe to its end, keeping the last `EXEC_OUTPUT_BYTES` (a daemon may write for
/// as long as it runs).
fn read_tail(pipe: OwnedFd) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(pipe);
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let cap = EXEC_OUTPUT_BYTES as usize;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 * cap {
                        kept.drain(..kept.len() - cap);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if kept.len() > cap {
            kept.drain(..kept.len() - cap);
        }
        kept
    })
}

/// How long a command stopped after its `ready_after` gets between SIGTERM and SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a command (`Runner::Command`) as this PID namespace's only other process tree, with
/// the token's bpffs named in `LIBBPF_BPF_TOKEN_PATH`, and reports whether it worked: it exited
/// 0, or with `ready_after` it was still running then. Whatever it started is stopped before
/// this returns, so its output pipes close.
fn run_command(argv: &[String], ready_after: Option<std::time::Duration>) -> Result<LoadOutcome, ChildError> {
    let cstr = |s: &str| CString::new(s.replace('\0', "")).expect("no NUL");
    let path = cstr(&argv[0]);
    let args: Vec<CString> = argv.iter().map(|a| cstr(a)).collect();
    let envp =
        [cstr(&format!("PATH={CHILD_PATH}")), cstr(&format!("LIBBPF_BPF_TOKEN_PATH={}", BPFFS_PATH.to_string_lossy()))];
    let (out_r, out_w) = sys::pipe().map_err(|e| err("pipe", &e))?;
    let (err_r, err_w) = sys::pipe().map_err(|e| err("pipe", &e))?;
    let (status_r, status_w) = sys::pipe().map_err(|e| err("pipe", &e))?;
    let (arg_ptrs, env_ptrs) = (sys::null_terminated(&args), sys::null_terminated(&envp));
    let start = std::time::Instant::now();
    let pid = sys::fork().map_err(|e| err("fork", &e))?;
    if pid == 0 {
        // (only async-signal-safe calls from here to the exec)
        let code =
            sys::exec_path_with_output(&path, &arg_ptrs, &env_ptrs, out_w.as_fd(), err_w.as_fd(), status_w.as_fd());
        // SAFETY: _exit after a failed exec, as a forked child must.
        unsafe { libc::_exit(code) };
    }
    drop((out_w, err_w, status_w));
    let stdout_reader = read_tail(out_r);
    let stderr_reader = read_tail(err_r);
    // the exec's errno, when it failed (the pipe closes on a successful exec)
    let mut errno_bytes = Vec::new();
    let _ = std::fs::File::from(status_r).read_to_end(&mut errno_bytes);
    let exec_errno = <[u8; 4]>::try_from(errno_bytes.as_slice()).ok().map(i32::from_ne_bytes);

    // With `ready_after`, a daemon that forks may end its first process (with 0) and go on
    // in a child: it is still running as long as any process of the sandbox is.
    let mut exit_code = None;
    let mut still_running = false;
    match ready_after {
        None => exit_code = Some(sys::wait_exit_code(pid).map_err(|e| err("wait", &e))?),
        Some(ready) => loop {
            if exit_code.is_none() {
                exit_code = sys::try_wait(pid).map_err(|e| err("wait", &e))?;
            }
            match exit_code {
                Some(code) if code != 0 => break,
                // (the first process is reaped: this reaps the others that ended)
                Some(_) if sys::reap_children() => break,
                _ => {}
            }
            if start.elapsed() >= ready {
                still_running = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        },
    }
    // Stop what is left (the command itself when it was still running, and anything it
    // left behind): SIGTERM, then SIGKILL after a grace period.
    sys::signal_all_others(libc::SIGTERM);
    let grace = std::time::Instant::now();
    while !sys::reap_children() && grace.elapsed() < STOP_GRACE {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sys::signal_all_others(libc::SIGKILL);
    while !sys::reap_children() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let lines = |bytes: Vec<u8>| -> Vec<String> { String::from_utf8_lossy(&bytes).lines().map(String::from).collect() };
    let output = lines(stdout_reader.join().unwrap_or_default());
    let errors = lines(stderr_reader.join().unwrap_or_default());

    let worked = exec_errno.is_none() && (exit_code == Some(0) || (exit_code.is_none() && still_running));
    let (step, message) = match (exec_errno, exit_code) {
        (Some(e), _) => {
            let hint = if e == libc::EACCES {
                " (it runs as the sandbox's unprivileged uid, --uid, which must be able to reach and execute it and read what it reads)"
            } else {
                ""
            };
            (
                Some("exec".to_string()),
                Some(format!("cannot execute {} in the sandbox: {}{hint}", argv[0], errno_text(e))),
            )
        }
        (None, Some(code)) if code != 0 => (
            Some("program_exit".to_string()),
            Some(format!(
                "the program exited with status {code}{}",
                errors.last().or(output.last()).map(|l| format!(": {l}")).unwrap_or_default()
            )),
        ),
        _ => (None, None),
    };
    Ok(LoadOutcome {
        loaded: worked,
        step,
        errno: exec_errno,
        message,
        libbpf_log: tail(&errors, LOG_TAIL),
        output: tail(&output, LOG_TAIL),
        exit_code,
        still_running,
        ..Default::default()
    })
}

/// The program at `exe` and the object bytes, each in a memfd.
fn read_to_memfd(exe: &std::path::Path, object: &[u8]) -> Result<(OwnedFd, OwnedFd), ChildError> {
    let bytes =
        std::fs::read(exe).map_err(|e| err_msg("read_loader", e.raw_os_error(), format!("{}: {e}", exe.display())))?;
    let to_memfd = |name: &std::ffi::CStr, data: &[u8]| -> Result<OwnedFd, ChildError> {
        let fd = sys::memfd(name).map_err(|e| err("memfd", &e))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(data).map_err(|e| err("memfd", &e))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| err("memfd", &e))?;
        Ok(OwnedFd::from(f))
    };
    Ok((to_memfd(c"loader", &bytes)?, to_memfd(c"object.bpf.o", object)?))
}

/// Bytes kept of a loader program's stdout (its JSON report) and stderr.
const EXEC_OUTPUT_BYTES: u64 = 1 << 20;

/// Runs the request's loader program in this process's sandbox (an exec keeps the namespaces,
/// the credentials, no_new_privs and the seccomp filter) and reads what it reports.
fn exec_load(req: &LoadRequest, exe: &OwnedFd, object: &OwnedFd) -> Result<LoadOutcome, ChildError> {
    let cstr = |s: String| CString::new(s.replace('\0', "")).expect("no NUL");
    let argv: Vec<CString> = match &req.runner {
        Runner::CiliumLoader(_) => std::iter::once(cstr("cilium-loader".into()))
            .chain(std::iter::once(cstr(format!("/proc/self/fd/{}", object.as_raw_fd()))))
            .chain(req.programs.iter().flatten().map(|p| cstr(p.clone())))
            .collect(),
        Runner::Program(path) => {
            vec![cstr(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())]
        }
        Runner::Libbpf | Runner::Command { .. } => unreachable!("libbpf loads in this process; a command runs apart"),
    };
    let envp = [cstr(format!("PATH={CHILD_PATH}"))];
    let (out_r, out_w) = sys::pipe().map_err(|e| err("pipe", &e))?;
    let (err_r, err_w) = sys::pipe().map_err(|e| err("pipe", &e))?;
    let (arg_ptrs, env_ptrs) = (sys::null_terminated(&argv), sys::null_terminated(&envp));
    let pid = sys::fork().map_err(|e| err("fork", &e))?;
    if pid == 0 {
        // (only async-signal-safe calls from here to the exec)
        let code =
            sys::exec_with_output(exe.as_fd(), &arg_ptrs, &env_ptrs, out_w.as_fd(), err_w.as_fd(), object.as_fd());
        // SAFETY: _exit after a failed exec, as a forked child must.
        unsafe { libc::_exit(code) };
    }
    drop(out_w);
    drop(err_w);
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::fs::File::from(err_r).take(EXEC_OUTPUT_BYTES).read_to_end(&mut buf);
        buf
    });
    let mut out = Vec::new();
    let _ = std::fs::File::from(out_r).take(EXEC_OUTPUT_BYTES).read_to_end(&mut out);
    let err_bytes = stderr_reader.join().unwrap_or_default();
    let code = sys::wait_exit_code(pid).map_err(|e| err("wait", &e))?;
    let stderr_lines: Vec<String> = String::from_utf8_lossy(&err_bytes).lines().map(String::from).collect();
    let wanted: Vec<String> = req.programs.clone().unwrap_or_default();
    Ok(match &req.runner {
        Runner::CiliumLoader(_) => logparse::cilium_outcome(&out, code, &wanted, tail(&stderr_lines, LOG_TAIL)),
        _ => LoadOutcome {
            loaded: code == 0,
            step: (code != 0).then(|| "program_exit".to_string()),
            errno: None,
            message: (code != 0).then(|| {
                format!("the program exited with status {code}: {}", stderr_lines.last().map_or("", |l| l.as_str()))
            }),
            programs: Vec::new(),
            libbpf_log: tail(&stderr_lines, LOG_TAIL),
            sandbox: None,
            ..Default::default()
        },
    })
}

/// Syscalls the loader never needs, refused (EPERM) by a seccomp filter once the sandbox is
/// set up: mounts and namespaces (the sandbox's own are made), modules, reboot and kexec,
/// swap, raw I/O, tracing other processes, keyrings, io_uring, userfaultfd, file handles,
/// clocks, accounting. bpf() and perf_event_open() (libbpf's probes) stay allowed.
const DENIED_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
];

/// Where the delegated bpffs is mounted inside the sandbox (as systemd's PrivateBPF= does).
const BPFFS_PATH: &std::ffi::CStr = c"/sys/fs/bpf";

/// Opens the object, selects programs, creates a token once, loads.
fn load(req: &LoadRequest, object: &[u8], object_name: &str, bpffs: BorrowedFd<'_>) -> Result<LoadOutcome, ChildError> {
    let log_fd = capture_log()?;

    let token_path = CString::new(format!("/proc/self/fd/{}", bpffs.as_raw_fd())).expect("no NUL");
    // libbpf's own name for the object (as bpf_object__open_file would derive it), so that
    // internal map names match the analysis
    let name = CString::new(object_name.replace('\0', "")).expect("no NUL");
    let opts = libbpf_sys::bpf_object_open_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as libbpf_sys::size_t,
        object_name: name.as_ptr(),
        bpf_token_path: token_path.as_ptr(),
        ..Default::default()
    };
    // SAFETY: object outlives the call (libbpf copies it); opts and the
    // strings it points to are valid for the call.
    let ptr =
        unsafe { libbpf_sys::bpf_object__open_mem(object.as_ptr().cast(), object.len() as libbpf_sys::size_t, &opts) };
    // SAFETY: libbpf_get_error accepts any pointer returned by libbpf.
    let open_err = unsafe { libbpf_sys::libbpf_get_error(ptr as *const _) };
    let Some(ptr) = NonNull::new(ptr).filter(|_| open_err == 0) else {
        let errno = (-open_err) as i32;
        let log = take_log(&log_fd);
        return Ok(LoadOutcome {
            loaded: false,
            step: Some("object_open".into()),
            errno: Some(errno),
            message: Some(format!("libbpf could not open the object: {}", errno_text(errno))),
            programs: Vec::new(),
            libbpf_log: tail(&log, LOG_TAIL),
            sandbox: None,
            ..Default::default()
        });
    };
    // SAFETY: ptr is a freshly opened, not yet loaded bpf_object.
    let mut open = unsafe { OpenObject::from_ptr(ptr) };

    super::size_runtime_sized_maps(&mut open);

    let all: Vec<String> = open.progs().map(|p| p.name().to_string_lossy().into_owned()).collect();
    if let Some(wanted) = &req.programs {
        let unknown: Vec<&String> = wanted.iter().filter(|w| !all.contains(w)).collect();
        if !unknown.is_empty() {
            return Err(err_msg(
                "select_programs",
                Some(libc::ENOENT),
                format!("unknown program(s) {unknown:?}; the object has {all:?}"),
            ));
        }
        for mut prog in open.progs_mut() {
            let keep = wanted.iter().any(|w| w.as_str() == prog.name().to_string_lossy());
            prog.set_autoload(keep);
        }
    }
    let selected: Vec<String> = open
        .progs()
        // SAFETY: the program pointer is valid while `open` lives.
        .filter(|p| unsafe { libbpf_sys::bpf_program__autoload(p.as_libbpf_object().as_ptr()) })
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect();
    let mut programs: Vec<ProgramOutcome> =
        selected.iter().map(|n| ProgramOutcome { name: n.clone(), ..Default::default() }).collect();

    // Create a token once ourselves, so that a failure here is its own step.
    if let Err(e) = sys::bpf_token_create(bpffs.as_raw_fd()) {
        let errno = e.raw_os_error().unwrap_or(0);
        let why = match errno {
            libc::EPERM => "; BPF_TOKEN_CREATE needs CAP_BPF in the bpffs' user namespace (keep CAP_BPF)",
            libc::ENOENT => "; the delegation is empty (no delegate_* option set on the bpffs)",
            libc::EBADF | libc::EINVAL => "; the descriptor is not the root of a bpffs",
            _ => "",
        };
        drop(open);
        let log = take_log(&log_fd);
        return Ok(LoadOutcome {
            loaded: false,
            step: Some("token_create".into()),
            errno: Some(errno),
            message: Some(format!("BPF_TOKEN_CREATE failed: {}{why}", errno_text(errno))),
            programs,
            libbpf_log: tail(&log, LOG_TAIL),
            sandbox: None,
            ..Default::default()
        });
    }

    let raw = open.take_ptr();
    // SAFETY: raw is an opened bpf_object we own.
    let ret = unsafe { libbpf_sys::bpf_object__load(raw.as_ptr()) };
    if ret == 0 {
        // SAFETY: iterating the programs of a live object.
        unsafe {
            let mut prog = libbpf_sys::bpf_object__next_program(raw.as_ptr(), std::ptr::null_mut());
            while !prog.is_null() {
                let name = std::ffi::CStr::from_ptr(libbpf_sys::bpf_program__name(prog)).to_string_lossy().into_owned();
                let fd = libbpf_sys::bpf_program__fd(prog);
                if let Some(p) = programs.iter_mut().find(|p| p.name == name) {
                    p.loaded = fd >= 0;
                }
                prog = libbpf_sys::bpf_object__next_program(raw.as_ptr(), prog);
            }
        }
    }
    // SAFETY: raw is ours; closing unloads everything (nothing is pinned).
    unsafe { libbpf_sys::bpf_object__close(raw.as_ptr()) };
    let log = take_log(&log_fd);

    if ret == 0 {
        return Ok(LoadOutcome {
            loaded: true,
            step: None,
            errno: None,
            message: None,
            programs,
            libbpf_log: tail(&log, LOG_TAIL),
            sandbox: None,
            ..Default::default()
        });
    }

    let errno = -ret;
    let failure = logparse::classify(&log);
    let mut message = failure.line.clone().unwrap_or_else(|| format!("bpf_object__load failed: {}", errno_text(errno)));
    if failure.step == "libbpf_probe" {
        message.push_str(
            " [libbpf's trivial probe program (socket_filter, then tracepoint, expected attach \
             type 0 = cgroup_inet_ingress) was rejected through the token: the delegation must \
             allow cmd prog_load, one of these program types and attach type cgroup_inet_ingress]",
        );
    }
    if let Some((prog, prog_errno)) = &failure.program
        && let Some(p) = programs.iter_mut().find(|p| &p.name == prog)
    {
        p.errno = prog_errno.or(Some(errno));
        p.log_tail = logparse::program_log_tail(&log, prog, PROG_LOG_TAIL);
    }
    Ok(LoadOutcome {
        loaded: false,
        step: Some(failure.step.to_string()),
        errno: Some(failure.program.as_ref().and_then(|p| p.1).unwrap_or(errno)),
        message: Some(message),
        programs,
        libbpf_log: tail(&log, LOG_TAIL),
        sandbox: None,
        ..Default::default()
    })
}
