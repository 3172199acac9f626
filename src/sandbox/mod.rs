//! Load a BPF object through a real BPF token, from a fresh user namespace,
//! the way a systemd `PrivateBPF=yes` service would, and report what happened.
//!
//! # How
//!
//! The parent (this process, host root) spawns `<helper_exe> __sandbox-child`
//! (a fresh exec, never a bare fork: the caller may be multithreaded) and
//! talks to it over an inherited `AF_UNIX`/`SOCK_SEQPACKET` socket:
//!
//! 1. child: `setgroups(0)`, `unshare(CLONE_NEWUSER|CLONE_NEWNS)` → "UNSHARED"
//! 2. parent: `/proc/<pid>/setgroups` = deny, `uid_map`/`gid_map` = "0 <uid> 1" → "MAPPED"
//! 3. child: `setresgid/setresuid(0)`, `mount("/", MS_REC|MS_PRIVATE)`,
//!    `fsopen("bpf")` and sends the fs-context fd (SCM_RIGHTS) → "FSFD"
//! 4. parent (init-namespace CAP_SYS_ADMIN, which `delegate_*` needs):
//!    `fsconfig(delegate_* = 0x...)`, `FSCONFIG_CMD_CREATE` → "CREATED"
//! 5. child: `fsmount()`, opens the mount root, drops every capability not in
//!    `LoadRequest::caps`, opens the object with libbpf, creates a token once
//!    itself (step "token_create"), then `bpf_object__load()` with
//!    `bpf_token_path = /proc/self/fd/<root>` (explicit path: libbpf fails
//!    hard instead of silently continuing without a token).
//!
//! The child writes one JSON report to stdout. Nothing is mounted in the
//! host's namespaces (the bpffs is a detached mount in the child's private
//! mount namespace) and no file is created.
//!
//! The CLI must route `bpfcap __sandbox-child` to [`child_main`] before any
//! argument parsing: `std::process::exit(bpfcap::sandbox::child_main())`.

mod cgroup;
mod child;
mod logparse;
mod sys;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::ObjectRef;
use crate::rules::Version;
use crate::vocab::Masks;

pub use child::child_main;
pub use logparse::{errno_name, errno_text};

/// The hidden subcommand the CLI routes to [`child_main`].
pub const CHILD_SUBCOMMAND: &str = "__sandbox-child";
/// Environment variable carrying the child's end of the control socket.
const ENV_SOCK_FD: &str = "BPFCAP_SANDBOX_FD";
/// Environment variable carrying the parent's pid (for the PDEATHSIG check).
const ENV_PARENT_PID: &str = "BPFCAP_SANDBOX_PARENT";

/// Host uid (and gid) the child's root is mapped to by default ("nobody").
pub const DEFAULT_UID: u32 = 65534;
/// Default overall time limit of one sandboxed load.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default memory budget of one sandboxed load (the helper itself, libbpf and the maps).
pub const DEFAULT_MEMORY: u64 = 512 << 20;
/// The environment the sandbox child gets, besides the variables of the sandbox protocol:
/// nothing of the caller's passes.
const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The `fsconfig()` options that mount `masks`: `(key, "0x<hex>")` for every non-zero mask,
/// in the order cmds, maps, progs, attachs.
pub fn mount_options(masks: &Masks) -> Vec<(&'static str, String)> {
    masks.iter().filter(|(_, mask)| **mask != 0).map(|(k, mask)| (k.mount_option(), format!("{mask:#x}"))).collect()
}

/// Loads outside the sandbox (verify's load as root without a token) pin nothing: a map that
/// asks to be pinned (`LIBBPF_PIN_BY_NAME`) would otherwise be pinned in the host's
/// /sys/fs/bpf and left there, or fail where the host has no bpffs. The sandbox has its own
/// bpffs, where pinning is part of what is tried.
pub fn without_pinning(open: &mut libbpf_rs::OpenObject) {
    use libbpf_rs::AsRawLibbpf;
    use libbpf_rs::libbpf_sys;
    for map in open.maps_mut() {
        let raw = map.as_libbpf_object().as_ptr();
        // SAFETY: the map pointer is valid while `open` lives and the object is not loaded; a
        // null path clears the pin path (libbpf's bpf_map__set_pin_path).
        unsafe {
            libbpf_sys::bpf_map__set_pin_path(raw, std::ptr::null());
        }
    }
}

/// Maps declared with max_entries 0 are sized at run time by their loader (systemd's
/// skeletons do this): give them one entry before loading, as the token checks do not depend
/// on the size. Not for the types whose max_entries must be 0 (cgroup and local storages),
/// nor for perf_event_array, which libbpf sizes itself (number of CPUs).
pub fn size_runtime_sized_maps(open: &mut libbpf_rs::OpenObject) {
    use libbpf_rs::AsRawLibbpf;
    use libbpf_rs::libbpf_sys;
    const KEEP_ZERO: &[u32] = &[
        libbpf_sys::BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        libbpf_sys::BPF_MAP_TYPE_CGROUP_STORAGE,
        libbpf_sys::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
        libbpf_sys::BPF_MAP_TYPE_SK_STORAGE,
        libbpf_sys::BPF_MAP_TYPE_INODE_STORAGE,
        libbpf_sys::BPF_MAP_TYPE_TASK_STORAGE,
        libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE,
    ];
    for map in open.maps_mut() {
        let raw = map.as_libbpf_object().as_ptr();
        // SAFETY: the map pointer is valid while `open` lives and the object is not loaded.
        unsafe {
            if libbpf_sys::bpf_map__max_entries(raw) == 0 && !KEEP_ZERO.contains(&libbpf_sys::bpf_map__type(raw)) {
                libbpf_sys::bpf_map__set_max_entries(raw, 1);
            }
        }
    }
}

/// Which program does the load inside the sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// libbpf, in the sandbox's own process: `bpf_object__load` with the token's path.
    #[default]
    Libbpf,
    /// A cilium/ebpf loader (tools/cilium-loader): run as `LOADER OBJECT [PROGRAM...]`; it
    /// finds the token itself among the process's bpffs mounts, as cilium/ebpf does, and
    /// prints what happened as JSON.
    CiliumLoader(PathBuf),
    /// A program that loads its own embedded objects when it starts (a bpf2go program), run
    /// without arguments: exit status 0 means it loaded.
    Program(PathBuf),
    /// A command run as it is (`bpfcap record`, `verify --exec`): `argv[0]`, an absolute path,
    /// is executed with the rest as its arguments, `LIBBPF_BPF_TOKEN_PATH` pointing at the
    /// delegated bpffs (cilium/ebpf finds it among the mounts). It works when it exits 0, or,
    /// with `ready_after`, when it is still running after that long; it is then stopped, with
    /// every process it started. The request's `object` is not read.
    Command { argv: Vec<String>, ready_after: Option<Duration> },
}

/// What to load and with which delegation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRequest {
    /// The BPF object: a file, or the byte range of one (an object embedded in an executable).
    pub object: ObjectRef,
    /// `None`: load every program libbpf would autoload; `Some`: only these
    /// (autoload is switched off for the others).
    pub programs: Option<Vec<String>>,
    pub delegation: Masks,
    /// Capabilities the child keeps in its user namespace (bounding,
    /// permitted, effective and inheritable set); all others are dropped.
    pub caps: Vec<u32>,
    /// Host uid (and gid) the child's root is mapped to.
    pub uid: u32,
    /// Overall time limit; the child's process group is killed after it.
    pub timeout: Duration,
    /// Memory budget in bytes, enforced by a memory cgroup for the run where one can be made.
    pub memory: u64,
    /// Who loads: libbpf in the sandbox's process, or a program run in it.
    #[serde(default)]
    pub runner: Runner,
}

impl Default for LoadRequest {
    fn default() -> Self {
        LoadRequest {
            object: ObjectRef::whole(PathBuf::new(), String::new()),
            programs: None,
            delegation: Masks::default(),
            caps: Vec::new(),
            uid: DEFAULT_UID,
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            runner: Runner::Libbpf,
        }
    }
}

impl LoadRequest {
    /// A request with default uid and timeout, loading all programs of the object file at `path`.
    pub fn new(path: impl Into<PathBuf>, delegation: Masks, caps: Vec<u32>) -> Self {
        LoadRequest { object: crate::elf::object_file(path), delegation, caps, ..Default::default() }
    }
}

/// Per-program result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramOutcome {
    pub name: String,
    /// True only if the whole object loaded and this program got an fd.
    pub loaded: bool,
    /// Set for the program libbpf reported as failing.
    pub errno: Option<i32>,
    /// Last log lines about this program (libbpf's lines and the verifier log).
    pub log_tail: Vec<String>,
}

/// What happened to one sandboxed load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOutcome {
    pub loaded: bool,
    /// The failed step if any: "token_create", "object_open", "libbpf_token",
    /// "libbpf_probe", "btf_load", "map_create", "prog_load", "object_load",
    /// "timeout", "deadline" (verify's overall limit) or "memory_limit".
    pub step: Option<String>,
    pub errno: Option<i32>,
    pub message: Option<String>,
    /// The programs that were to be loaded (autoload on), in object order.
    pub programs: Vec<ProgramOutcome>,
    /// Tail of libbpf's print callback output (warn, info and debug).
    pub libbpf_log: Vec<String>,
    /// The sandbox the load ran in, as the loader's process saw itself (None when the load
    /// never started: a timeout, or the memory check before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxFacts>,
    /// A command's exit code (`Runner::Command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A command still running after its `ready_after`: it counted as working, and was stopped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub still_running: bool,
    /// The last lines a command wrote to standard output (its standard error is in
    /// `libbpf_log`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// The inode number of the sandbox's user namespace (as `/proc/PID/ns/user` shows it),
    /// which every token made in the sandbox belongs to; set by the parent.
    #[serde(skip)]
    pub user_namespace: Option<u64>,
}

/// The loader's process as it saw itself, for the record (and the tests that check the
/// sandbox).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxFacts {
    /// Namespaces it did not share with the caller (of user, mnt, pid, net, ipc, uts, cgroup).
    pub own_namespaces: Vec<String>,
    /// Its open descriptors when it started (`N -> what`), before it opened anything.
    pub inherited_descriptors: Vec<String>,
    /// The names of its environment variables.
    pub environment: Vec<String>,
    pub no_new_privs: bool,
    /// Its seccomp mode (/proc/self/status: 0 none, 1 strict, 2 filter).
    pub seccomp: u32,
}

/// Failure of the sandbox itself (not of the BPF load it ran).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SandboxError {
    #[error("insufficient privileges: {reason}")]
    #[diagnostic(
        code(bpfcap::sandbox::not_privileged),
        help(
            "run bpfcap as root in the initial user namespace: setting bpffs delegate_* options \
             needs CAP_SYS_ADMIN there, writing the uid/gid maps needs CAP_SETUID/CAP_SETGID"
        )
    )]
    NotPrivileged { reason: String },

    #[error("the kernel has no bpf() syscall ({})", errno_text(*errno))]
    #[diagnostic(code(bpfcap::sandbox::no_bpf), help("use a kernel built with CONFIG_BPF_SYSCALL=y"))]
    NoBpfSyscall { errno: i32 },

    #[error("kernel {release} does not support BPF tokens: {detail}")]
    #[diagnostic(code(bpfcap::sandbox::no_token), help("BPF tokens and bpffs delegation need Linux 6.9 or newer"))]
    NoBpfToken { release: String, detail: String },

    #[error("bpffs does not support delegate_* mount options: {detail}")]
    #[diagnostic(
        code(bpfcap::sandbox::no_delegation),
        help("BPF token delegation via bpffs mount options needs Linux 6.9 or newer with bpffs")
    )]
    NoBpffsDelegation { detail: String },

    #[error("user namespaces are not available: {reason}")]
    #[diagnostic(
        code(bpfcap::sandbox::no_userns),
        help(
            "enable user namespaces (CONFIG_USER_NS=y, sysctl user.max_user_namespaces > 0); \
             BPF tokens only work outside the initial user namespace"
        )
    )]
    UserNamespacesDisabled { reason: String },

    #[error("cannot read BPF object {}: {source}", crate::text::Escaped(&path.to_string_lossy()))]
    #[diagnostic(code(bpfcap::sandbox::object), help("check the path and its permissions"))]
    Object {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid sandbox request: {}", crate::text::Escaped(.0))]
    #[diagnostic(code(bpfcap::sandbox::request))]
    InvalidRequest(String),

    #[error("cannot start sandbox helper {}: {source}", exe.display())]
    #[diagnostic(
        code(bpfcap::sandbox::spawn),
        help("the helper must be the bpfcap binary; it is run as `<helper> __sandbox-child`")
    )]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("sandbox step `{step}` failed in the parent: {message}")]
    #[diagnostic(code(bpfcap::sandbox::parent_step))]
    ParentStep {
        step: String,
        errno: Option<i32>,
        message: String,
        #[help]
        help: String,
    },

    #[error("sandbox step `{step}` failed in the child: {}", crate::text::Escaped(.message))]
    #[diagnostic(code(bpfcap::sandbox::child_step))]
    ChildStep {
        step: String,
        errno: Option<i32>,
        message: String,
        #[help]
        help: String,
    },

    #[error("stopped by {signal}: the program and every process it started were killed")]
    #[diagnostic(code(bpfcap::sandbox::interrupted))]
    Interrupted { signal: String },

    #[error("sandbox helper ended without a usable report ({status}): {}", crate::text::Escaped(.detail))]
    #[diagnostic(
        code(bpfcap::sandbox::child_crashed),
        help(
            "make sure the helper executable dispatches `__sandbox-child` to \
             bpfcap::sandbox::child_main() before parsing arguments"
        )
    )]
    ChildCrashed { status: String, detail: String },
}

impl SandboxError {
    /// The failed step's errno, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SandboxError::ParentStep { errno, .. } | SandboxError::ChildStep { errno, .. } => *errno,
            SandboxError::NoBpfSyscall { errno } => Some(*errno),
            SandboxError::Object { source, .. } | SandboxError::Spawn { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Help text for a failed sandbox step.
fn step_help(step: &str, errno: Option<i32>) -> String {
    let perm = matches!(errno, Some(libc::EPERM) | Some(libc::EACCES));
    match step {
        "uid_map" | "gid_map" | "setgroups" if perm => {
            "run bpfcap as root: mapping the sandbox's root to another host uid needs \
             CAP_SETUID/CAP_SETGID in the initial user namespace"
                .into()
        }
        "uid_map" | "gid_map" if errno == Some(libc::EINVAL) => {
            "--uid must be a valid host uid/gid (not 4294967295); the sandbox's root is \
             mapped to it"
                .into()
        }
        s if s.starts_with("fsconfig") && perm => {
            "setting bpffs delegate_* options and creating the bpffs instance needs \
             CAP_SYS_ADMIN in the initial user namespace: run bpfcap as root on the host"
                .into()
        }
        s if s.starts_with("fsconfig") => {
            "the kernel rejected a delegate_* value; check the delegation masks (bits must be \
             valid enum values for this kernel) and the kernel's fs-context messages above"
                .into()
        }
        "unshare" => "user namespaces must be enabled (user.max_user_namespaces > 0) and the \
                      caller allowed to create them (root, or no seccomp/LSM policy forbidding it)"
            .into(),
        "fsopen" | "fsmount" => "the kernel must support the new mount API (Linux >= 5.2) \
                                 and bpffs (CONFIG_BPF_SYSCALL)"
            .into(),
        "mount_private" => "could not make mounts private in the sandbox's mount namespace".into(),
        "drop_caps" => "capability numbers must be known to this kernel \
                        (see /proc/sys/kernel/cap_last_cap)"
            .into(),
        "select_programs" => "pass program names as libbpf reports them \
                              (the C function names, not section names)"
            .into(),
        "read_object" => "the BPF object must be readable by the user running bpfcap".into(),
        "read_request" | "child_env" | "protocol" => {
            "internal protocol error between bpfcap and its sandbox helper; make sure the \
             helper is the same bpfcap binary"
                .into()
        }
        _ => "this is a failure of the sandbox itself, not of the BPF delegation; \
              rerun with the same arguments and report the message if it persists"
            .into(),
    }
}

/// What the child prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ChildReport {
    Outcome(LoadOutcome),
    Error(ChildError),
}

/// A sandbox-internal failure inside the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildError {
    step: String,
    errno: Option<i32>,
    message: String,
}

// ---------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------

/// Owns the spawned helper: whatever way we leave, its process group is
/// killed and it is reaped.
struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has the child exited? Does not reap it (WNOWAIT), so its pid, which is
    /// also its process-group id, stays reserved until we kill the group.
    fn exited(&self) -> bool {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain waitid call on our own child.
        let ret = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid to read for SIGCHLD-style siginfo.
        ret == 0 && unsafe { info.si_pid() } != 0
    }

    /// Kills the whole process group, then reaps the child.
    fn kill_and_reap(&mut self) -> Option<std::process::ExitStatus> {
        if self.reaped {
            return None;
        }
        // SAFETY: the child is not reaped yet, so its pid (= pgid, we put it in
        // its own group) cannot have been reused.
        unsafe {
            libc::kill(-(self.pid() as libc::pid_t), libc::SIGKILL);
        }
        self.reaped = true;
        self.child.wait().ok()
    }

    /// Waits until the child exits or `deadline` passes; then kills the rest
    /// of its process group and reaps it. Returns None on timeout.
    fn wait_until(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        while !self.exited() {
            if Instant::now() >= deadline {
                self.kill_and_reap();
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.kill_and_reap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// How often a wait for the sandbox looks whether bpfcap was asked to stop.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The signal (SIGINT, SIGTERM) that asked bpfcap to stop, 0 while none did.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM stop the sandbox instead of bpfcap: the run in progress is killed
/// with every process in it, its memory cgroup removed, and the call waiting for it returns
/// [`SandboxError::Interrupted`] (as does every later one), so that the caller unwinds and
/// detaches what it attached. For the commands that run programs (`record`, `verify`).
pub fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic; sigaction is given a zeroed,
        // then filled, struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that asked bpfcap to stop, if one did.
pub fn stop_signal() -> Option<i32> {
    Some(STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst)).filter(|s| *s != 0)
}

/// `Err(Interrupted)` once a signal asked bpfcap to stop.
pub fn check_stop() -> Result<(), SandboxError> {
    match stop_signal() {
        Some(signal) => Err(SandboxError::Interrupted { signal: signal_name(signal) }),
        None => Ok(()),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

fn timeout_outcome(timeout: Duration, stage: &str) -> LoadOutcome {
    LoadOutcome {
        loaded: false,
        step: Some("timeout".into()),
        errno: None,
        message: Some(format!(
            "sandbox did not finish within {timeout:?} (while {stage}); its process group was killed"
        )),
        ..Default::default()
    }
}

fn memory_outcome(limit: u64, peak: Option<u64>) -> LoadOutcome {
    LoadOutcome {
        loaded: false,
        step: Some("memory_limit".into()),
        errno: Some(libc::ENOMEM),
        message: Some(format!(
            "the load needed more than the sandbox's memory limit of {} MiB{} (--memory)",
            limit >> 20,
            peak.map(|p| format!("; it reached {} MiB", p >> 20)).unwrap_or_default()
        )),
        ..Default::default()
    }
}

fn parent_err(step: &str, err: &std::io::Error, extra: &[String]) -> SandboxError {
    let errno = err.raw_os_error();
    let mut message = match errno {
        Some(e) => errno_text(e),
        None => err.to_string(),
    };
    if !extra.is_empty() {
        message.push_str(" [");
        message.push_str(&extra.join("; "));
        message.push(']');
    }
    SandboxError::ParentStep { step: step.to_string(), errno, message, help: step_help(step, errno) }
}

fn protocol_err(message: String) -> SandboxError {
    SandboxError::ParentStep { step: "protocol".into(), errno: None, message, help: step_help("protocol", None) }
}

enum Protocol {
    /// The parent's part is done (bpffs superblock created).
    Done,
    /// The child closed the socket early (it will report why on stdout).
    ChildGone,
    /// The deadline passed while waiting for the child.
    TimedOut(&'static str),
}

fn write_id_maps(pid: u32, uid: u32) -> Result<(), SandboxError> {
    let map = format!("0 {uid} 1\n");
    for (step, file, content) in
        [("setgroups", "setgroups", "deny"), ("uid_map", "uid_map", map.as_str()), ("gid_map", "gid_map", map.as_str())]
    {
        let path = format!("/proc/{pid}/{file}");
        let res = std::fs::OpenOptions::new().write(true).open(&path).and_then(|mut f| f.write_all(content.as_bytes()));
        if let Err(e) = res {
            return Err(parent_err(step, &e, &[format!("writing {content:?} to {path}")]));
        }
    }
    Ok(())
}

fn configure_bpffs(fs: &OwnedFd, delegation: &Masks) -> Result<(), SandboxError> {
    for (key, value) in mount_options(delegation) {
        let step = format!("fsconfig:{key}");
        let ckey = CString::new(key).expect("static key");
        let cval = CString::new(value.clone()).expect("hex value");
        if let Err(e) = sys::fsconfig_set_string(fs.as_fd(), &ckey, &cval) {
            let mut extra = vec![format!("{key}={value}")];
            extra.extend(sys::fs_context_log(fs.as_fd()));
            return Err(parent_err(&step, &e, &extra));
        }
    }
    if let Err(e) = sys::fsconfig_create(fs.as_fd()) {
        let extra = sys::fs_context_log(fs.as_fd());
        return Err(parent_err("fsconfig:create", &e, &extra));
    }
    Ok(())
}

fn drive_protocol(
    sock: &OwnedFd,
    pid: u32,
    req: &LoadRequest,
    deadline: Instant,
    user_namespace: &mut Option<u64>,
) -> Result<Protocol, SandboxError> {
    let mut stage = "waiting for the child to create its namespaces";
    loop {
        check_stop()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Protocol::TimedOut(stage));
        }
        let received =
            sys::recv_msg(sock.as_fd(), Some(left.min(STOP_POLL))).map_err(|e| parent_err("protocol", &e, &[]))?;
        match received {
            sys::Received::Timeout => continue,
            sys::Received::Eof => return Ok(Protocol::ChildGone),
            sys::Received::Msg(msg, fd) => match (msg.as_slice(), fd) {
                (b"UNSHARED", None) => {
                    *user_namespace = std::fs::metadata(format!("/proc/{pid}/ns/user"))
                        .ok()
                        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
                    if let Err(e) = write_id_maps(pid, req.uid) {
                        let _ = sys::send_msg(sock.as_fd(), b"ABORT", None);
                        return Err(e);
                    }
                    sys::send_msg(sock.as_fd(), b"MAPPED", None).map_err(|e| parent_err("protocol", &e, &[]))?;
                    stage = "waiting for the child's bpffs context";
                }
                (b"FSFD", Some(fs)) => {
                    if let Err(e) = configure_bpffs(&fs, &req.delegation) {
                        let _ = sys::send_msg(sock.as_fd(), b"ABORT", None);
                        return Err(e);
                    }
                    drop(fs);
                    sys::send_msg(sock.as_fd(), b"CREATED", None).map_err(|e| parent_err("protocol", &e, &[]))?;
                    return Ok(Protocol::Done);
                }
                (other, _) => {
                    return Err(protocol_err(format!(
                        "unexpected message from the sandbox child: {:?}",
                        String::from_utf8_lossy(other)
                    )));
                }
            },
        }
    }
}

fn tail_text(bytes: &[u8], max_lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// Loads `req.object` in a fresh sandbox through a BPF token created from a
/// bpffs with exactly `req.delegation`, keeping only `req.caps`.
///
/// `Ok` carries the outcome of the load, failed or not (a failed
/// `token_create` or an EPERM from the kernel is a valid outcome); `Err` means
/// the sandbox itself could not be set up.
pub fn load_in_sandbox(helper_exe: &Path, req: &LoadRequest) -> Result<LoadOutcome, SandboxError> {
    let start = Instant::now();
    let deadline = start + req.timeout;

    if req.programs.as_ref().is_some_and(Vec::is_empty) {
        return Err(SandboxError::InvalidRequest("`programs` is an empty list; use None to load all programs".into()));
    }
    if req.uid == 0 {
        return Err(SandboxError::InvalidRequest(
            "uid 0 would map the sandbox's root to the host's root; map it to an unprivileged uid".into(),
        ));
    }
    if let Runner::Command { argv, .. } = &req.runner {
        if !argv.first().is_some_and(|p| Path::new(p).is_absolute()) {
            return Err(SandboxError::InvalidRequest("a command's argv[0] must be an absolute path".into()));
        }
    } else {
        // the object file, or the executable an embedded object lives in
        std::fs::File::open(&req.object.file)
            .and_then(|mut f| f.read(&mut [0u8; 4]))
            .map_err(|source| SandboxError::Object { path: req.object.file.clone(), source })?;
    }
    let request_json =
        serde_json::to_vec(req).map_err(|e| SandboxError::InvalidRequest(format!("cannot serialise request: {e}")))?;

    let (parent_sock, child_sock) = sys::seqpacket_pair().map_err(|e| parent_err("socketpair", &e, &[]))?;
    let child_raw = child_sock.as_raw_fd();

    let mut cmd = Command::new(helper_exe);
    cmd.arg(CHILD_SUBCOMMAND)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env(ENV_SOCK_FD, child_raw.to_string())
        .env(ENV_PARENT_PID, std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: only async-signal-safe calls (close_range, fcntl, prctl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // no descriptor of the caller's reaches the child but stdio and its socket
            sys::cloexec_from(3)?;
            sys::clear_cloexec(child_raw)?;
            sys::set_pdeathsig_kill()?;
            sys::set_no_new_privs()?;
            Ok(())
        });
    }
    // (dropped after `guard`, which kills and reaps the run's processes first)
    let mut memory_cgroup = None;
    let child = cmd.spawn().map_err(|source| SandboxError::Spawn { exe: helper_exe.to_path_buf(), source })?;
    drop(child_sock);
    let mut guard = ChildGuard { child, reaped: false };
    let pid = guard.pid();
    // The child does nothing before the parent answers its first message: it is in its
    // memory cgroup before it reads the object.
    match cgroup::MemoryCgroup::create(&format!("bpfcap-{}-{pid}", std::process::id()), req.memory) {
        Ok(Some(cg)) => {
            cg.add(pid).map_err(|e| parent_err("memory_cgroup", &e, &[]))?;
            memory_cgroup = Some(cg);
        }
        Ok(None) => {}
        Err(e) => return Err(parent_err("memory_cgroup", &e, &[])),
    }
    let over_memory = |cg: &Option<cgroup::MemoryCgroup>| {
        cg.as_ref().filter(|cg| cg.limit_hit()).map(|cg| memory_outcome(req.memory, cg.peak()))
    };

    // Readers first, so a chatty child can never block on a full pipe.
    let mut stdout = guard.child.stdout.take().expect("piped stdout");
    let mut stderr = guard.child.stderr.take().expect("piped stderr");
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = out_tx.send(buf);
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });

    // The request is small, but never let a child that does not read its
    // stdin block us before the deadline logic runs. A write error means the
    // child died early; its report or exit status tells why.
    let mut stdin = guard.child.stdin.take().expect("piped stdin");
    let in_thread = std::thread::spawn(move || {
        let _ = stdin.write_all(&request_json);
    });

    let mut user_namespace = None;
    let proto = drive_protocol(&parent_sock, pid, req, deadline, &mut user_namespace);
    drop(parent_sock);
    // ends the run early: kills it, and lets its threads finish
    macro_rules! stop {
        () => {{
            guard.kill_and_reap();
            let _ = out_thread.join();
            let _ = err_thread.join();
            let _ = in_thread.join();
        }};
    }
    let proto = match proto {
        Ok(p) => p,
        Err(e) => {
            stop!();
            return Err(e);
        }
    };
    if let Protocol::TimedOut(stage) = proto {
        stop!();
        return Ok(LoadOutcome { user_namespace, ..timeout_outcome(req.timeout, stage) });
    }

    let out = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = check_stop() {
            stop!();
            return Err(e);
        }
        if left.is_zero() {
            stop!();
            return Ok(LoadOutcome { user_namespace, ..timeout_outcome(req.timeout, "loading the BPF object") });
        }
        match out_rx.recv_timeout(left.min(STOP_POLL)) {
            Ok(buf) => break buf,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Vec::new(),
        }
    };
    // stdout is closed: the child is exiting. Give it a moment past the
    // deadline so a load that finished in time is not reported as a timeout.
    let status = guard.wait_until(deadline.max(Instant::now()) + Duration::from_secs(2));
    let _ = out_thread.join();
    let _ = in_thread.join();
    let err_bytes = err_thread.join().unwrap_or_default();
    let status_text = match status {
        Some(s) => s.to_string(),
        None => "killed after the timeout".to_string(),
    };

    let text = String::from_utf8_lossy(&out);
    let report = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str::<ChildReport>(l).ok());
    // a run that hit the memory limit failed for that, whatever it reported (an allocation
    // refused with ENOMEM, or killed by the cgroup's OOM killer before it could report)
    if !matches!(&report, Some(ChildReport::Outcome(o)) if o.loaded)
        && let Some(outcome) = over_memory(&memory_cgroup)
    {
        return Ok(outcome);
    }
    match report {
        Some(ChildReport::Outcome(outcome)) => Ok(LoadOutcome { user_namespace, ..outcome }),
        Some(ChildReport::Error(e)) => {
            let help = step_help(&e.step, e.errno);
            Err(SandboxError::ChildStep { step: e.step, errno: e.errno, message: e.message, help })
        }
        None => Err(SandboxError::ChildCrashed {
            status: status_text,
            detail: format!("stdout: {:?}; stderr: {:?}", tail_text(&out, 5), tail_text(&err_bytes, 10)),
        }),
    }
}

// ---------------------------------------------------------------------------
// Preflight
// ---------------------------------------------------------------------------

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Effective capability mask of this process (CapEff in /proc/self/status).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

fn kernel_release() -> String {
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// MAJOR.MINOR of the running kernel.
fn kernel_version() -> Option<Version> {
    Version::of_release(&kernel_release())
}

/// Checks that this process and kernel can run [`load_in_sandbox`].
pub fn preflight() -> Result<(), SandboxError> {
    // Root with CAP_SYS_ADMIN (bpffs delegate_*, superblock creation) and
    // CAP_SETUID/CAP_SETGID (id maps) in the initial user namespace.
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(SandboxError::NotPrivileged { reason: format!("effective uid is {euid}, not 0") });
    }
    let caps = effective_caps()
        .ok_or_else(|| SandboxError::NotPrivileged { reason: "cannot read CapEff from /proc/self/status".into() })?;
    let rules = crate::rules::rules();
    let missing: Vec<&str> = ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"]
        .into_iter()
        .filter(|name| rules.capability_value(name).is_none_or(|bit| caps & (1u64 << bit) == 0))
        .collect();
    if !missing.is_empty() {
        return Err(SandboxError::NotPrivileged {
            reason: format!("missing effective capabilities: {}", missing.join(", ")),
        });
    }
    if let Some(map) = read_trim("/proc/self/uid_map") {
        let fields: Vec<&str> = map.split_whitespace().collect();
        if fields != ["0", "0", "4294967295"] {
            return Err(SandboxError::NotPrivileged {
                reason: format!(
                    "not in the initial user namespace (uid_map is {map:?}); delegate_* \
                     options need CAP_SYS_ADMIN in the initial user namespace"
                ),
            });
        }
    }

    // bpf() and BPF_TOKEN_CREATE: with bpffs_fd = -1 a kernel that knows the
    // command answers EBADF, an older one EINVAL, one without bpf() ENOSYS.
    let release = kernel_release();
    match sys::bpf_token_create(-1) {
        Ok(fd) => drop(fd),
        Err(e) => match e.raw_os_error() {
            Some(libc::EBADF) => {}
            Some(libc::ENOSYS) => {
                return Err(SandboxError::NoBpfSyscall { errno: libc::ENOSYS });
            }
            Some(errno) => {
                let old = kernel_version()
                    .is_some_and(|v| crate::rules::rules().token_since().is_some_and(|first| v < first));
                return Err(SandboxError::NoBpfToken {
                    release,
                    detail: format!(
                        "BPF_TOKEN_CREATE probe failed with {}{}",
                        errno_text(errno),
                        if old { "; kernel is older than 6.9" } else { "" }
                    ),
                });
            }
            None => {
                return Err(SandboxError::NoBpfToken { release, detail: e.to_string() });
            }
        },
    }

    // bpffs delegate_* options: unknown bpffs options are silently ignored,
    // so set an invalid value: a kernel that parses delegate_cmds says EINVAL.
    // No superblock is created, nothing is mounted.
    let fs = sys::fsopen(c"bpf", sys::FSOPEN_CLOEXEC).map_err(|e| SandboxError::NoBpffsDelegation {
        detail: format!("fsopen(\"bpf\") failed: {}", errno_text(e.raw_os_error().unwrap_or(0))),
    })?;
    match sys::fsconfig_set_string(fs.as_fd(), c"delegate_cmds", c"bpfcap-preflight-invalid") {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Ok(()) => {
            return Err(SandboxError::NoBpffsDelegation {
                detail: "bpffs accepted an invalid delegate_cmds value, i.e. it ignores the option".into(),
            });
        }
        Err(e) => {
            return Err(SandboxError::NoBpffsDelegation {
                detail: format!("probing delegate_cmds failed: {}", errno_text(e.raw_os_error().unwrap_or(0))),
            });
        }
    }
    drop(fs);

    // User namespaces.
    if !Path::new("/proc/self/ns/user").exists() {
        return Err(SandboxError::UserNamespacesDisabled { reason: "kernel built without CONFIG_USER_NS".into() });
    }
    if read_trim("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err(SandboxError::UserNamespacesDisabled { reason: "sysctl user.max_user_namespaces is 0".into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_skip_zero_masks() {
        let d = Masks { commands: 1 << 5, maps: 0, programs: 0b10, attachments: 1 };
        assert_eq!(
            mount_options(&d),
            vec![
                ("delegate_cmds", "0x20".to_string()),
                ("delegate_progs", "0x2".to_string()),
                ("delegate_attachs", "0x1".to_string())
            ]
        );
        assert!(mount_options(&Masks::default()).is_empty());
    }
}
