//! Thin wrappers around the raw kernel interfaces the sandbox needs: the new
//! mount API (fsopen/fsconfig/fsmount), BPF_TOKEN_CREATE, capset and fd
//! passing over a unix socket. Every wrapper returns `io::Error` carrying the
//! errno; callers attach the step name.

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `fsopen()` flag (include/uapi/linux/mount.h).
pub const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
/// `fsmount()` flag (include/uapi/linux/mount.h).
pub const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
/// `fsconfig()` commands (enum fsconfig_command).
pub const FSCONFIG_SET_STRING: libc::c_uint = 1;
pub const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
/// `enum bpf_cmd` value of BPF_TOKEN_CREATE (include/uapi/linux/bpf.h).
pub const BPF_TOKEN_CREATE: libc::c_int = 36;
/// `_LINUX_CAPABILITY_VERSION_3` (include/uapi/linux/capability.h).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn check_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `fsopen(fs_name, flags)`: a new filesystem context.
pub fn fsopen(fs_name: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: fs_name is a valid NUL-terminated string.
    check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fs_name.as_ptr(), flags) })
}

/// `fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0)`.
pub fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: key and value are valid NUL-terminated strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0 as libc::c_int,
        )
    })
    .map(drop)
}

/// `fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)`: create the superblock.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: no pointers are passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0 as libc::c_int,
        )
    })
    .map(drop)
}

/// `fsmount(fd, flags, attr_flags)`: a detached mount (an O_PATH fd).
pub fn fsmount(fs: BorrowedFd<'_>, flags: libc::c_uint, attr: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    check_fd(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), flags, attr) })
}

/// Drains the messages a filesystem context logged ("e ...", "w ...", "i ...").
pub fn fs_context_log(fs: BorrowedFd<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..32 {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&buf[..n as usize]).trim_end().to_string());
    }
    out
}

/// `openat(dir, path, flags)`.
pub fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: path is a valid NUL-terminated string.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags) };
    check_fd(fd as libc::c_long)
}

/// `move_mount(mnt, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH)`: attaches a detached mount
/// (from fsmount) at `path` in the caller's mount namespace.
pub fn move_mount_to(mnt: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: both strings are valid and NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The part of `union bpf_attr` used by BPF_TOKEN_CREATE.
#[repr(C)]
struct TokenCreateAttr {
    flags: u32,
    bpffs_fd: u32,
}

/// `bpf(BPF_TOKEN_CREATE, {bpffs_fd, flags=0})`. `bpffs_fd` may be -1 for a
/// feature probe (the kernel then answers EBADF if it knows the command).
pub fn bpf_token_create(bpffs_fd: RawFd) -> io::Result<OwnedFd> {
    let attr = TokenCreateAttr { flags: 0, bpffs_fd: bpffs_fd as u32 };
    // SAFETY: attr is a valid, fully initialised buffer of the given size.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_TOKEN_CREATE,
            &attr as *const TokenCreateAttr,
            mem::size_of::<TokenCreateAttr>() as libc::c_uint,
        )
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capset()` with version 3: effective = permitted = inheritable = `caps`.
pub fn capset_exact(caps: &[u32]) -> io::Result<()> {
    let mut data = [CapData::default(); 2];
    for &cap in caps {
        let (word, bit) = ((cap / 32) as usize, cap % 32);
        if word < 2 {
            data[word].effective |= 1 << bit;
            data[word].permitted |= 1 << bit;
            data[word].inheritable |= 1 << bit;
        }
    }
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: header and data are valid for the v3 layout (two data structs).
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
}

/// A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: fds is valid for two ints.
    let ret =
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    check(ret as libc::c_long)?;
    // SAFETY: socketpair succeeded, both descriptors are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

const CMSG_SPACE_ONE_FD: usize = 64;

/// Sends one message, optionally with one descriptor attached (SCM_RIGHTS).
pub fn send_msg(sock: BorrowedFd<'_>, data: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let mut cbuf = [0u64; CMSG_SPACE_ONE_FD / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure computations; the buffer is
        // large enough for one int and aligned for cmsghdr.
        unsafe {
            let space = libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) as usize;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: msg points at valid buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// What [`recv_msg`] saw.
pub enum Received {
    Msg(Vec<u8>, Option<OwnedFd>),
    Eof,
    Timeout,
}

/// Receives one message (with at most one passed descriptor), waiting at most
/// `timeout` (`None` = forever).
pub fn recv_msg(sock: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<Received> {
    if let Some(timeout) = timeout {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut pfd = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // Round up so that a sub-millisecond remainder still waits a little.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: pfd is a valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n > 0 {
                break;
            }
            if n == 0 {
                return Ok(Received::Timeout);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
    let mut buf = [0u8; 256];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut cbuf = [0u64; CMSG_SPACE_ONE_FD / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_SPACE_ONE_FD as _;
    let n = loop {
        // SAFETY: msg points at valid buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut passed = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros
    // walk only within that buffer.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let payload = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                let count = payload / mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    let owned = OwnedFd::from_raw_fd(fd);
                    if passed.is_none() {
                        passed = Some(owned);
                    } // extra descriptors are closed by dropping `owned`
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if n == 0 && passed.is_none() {
        return Ok(Received::Eof);
    }
    Ok(Received::Msg(buf[..n].to_vec(), passed))
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
pub fn set_pdeathsig_kill() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    check(ret as libc::c_long).map(drop)
}

/// Clears FD_CLOEXEC on `fd`. Async-signal-safe (used between fork and exec).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    check(ret as libc::c_long).map(drop)
}

/// Sets FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    check(ret as libc::c_long).map(drop)
}

/// Marks every descriptor from `first` up close-on-exec (`close_range(first, ~0,
/// CLOSE_RANGE_CLOEXEC)`, Linux 5.11): nothing the caller left open reaches the sandbox.
/// Async-signal-safe (used between fork and exec).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain integer arguments.
    check(unsafe {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC)
    })
    .map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: no exec can gain privileges (setuid bits, file
/// capabilities) from here on. Async-signal-safe.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } as libc::c_long).map(drop)
}

/// `memfd_create(name, MFD_CLOEXEC)`: an anonymous file in memory.
pub fn memfd(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid NUL-terminated string.
    check_fd(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), libc::MFD_CLOEXEC) })
}

/// Installs a seccomp filter that makes each of `denied` (syscall numbers of this
/// architecture) fail with EPERM and lets every other syscall through; a syscall made under
/// another architecture's calling convention (x32, i386 on x86_64) is killed. Needs
/// no_new_privs (or CAP_SYS_ADMIN).
pub fn deny_syscalls(denied: &[libc::c_long]) -> io::Result<()> {
    // classic BPF, as seccomp takes it (linux/filter.h, linux/seccomp.h)
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
    const OFF_NR: u32 = 0; // struct seccomp_data.nr
    const OFF_ARCH: u32 = 4; // struct seccomp_data.arch
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    // x32 syscalls are x86_64 numbers with bit 30 set
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let stmt = |code: u16, k: u32| libc::sock_filter { code, jt: 0, jf: 0, k };
    let jump = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    ];
    for nr in denied {
        prog.push(jump(BPF_JEQ_K, *nr as u32, 0, 1));
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::EPERM as u32));
    }
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: fprog points at a valid filter for the duration of the call (the kernel copies it).
    check(unsafe {
        libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER as libc::c_ulong, &fprog as *const libc::sock_fprog)
    } as libc::c_long)
    .map(drop)
}

/// `fork()`. The caller must be single-threaded (the sandbox child is: a fresh exec).
pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the sandbox child is single-threaded, so the child of the fork may run any code.
    let pid = unsafe { libc::fork() };
    check(pid as libc::c_long).map(|p| p as libc::pid_t)
}

/// Waits for child `pid` and gives its exit code (128 + the signal that killed it).
pub fn wait_exit_code(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(exit_code(status))
}

/// The pointers of `strings` and a NULL, as execve() takes an argv or envp: built before a
/// fork, so that the forked child need not allocate.
pub fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// A wait status as an exit code: the process's own, or 128 + the signal that killed it.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) }
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: pipe2 returned two new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In a forked child: stdout and stderr to `out` and `err`, `keep` inherited across the exec,
/// then `execveat(exe, "", argv, envp, AT_EMPTY_PATH)` (`argv`, `envp`: [`null_terminated`]).
/// Returns only when the exec failed, with the exit code to use (127). Only async-signal-safe
/// calls.
pub fn exec_with_output(
    exe: BorrowedFd<'_>,
    args: &[*const libc::c_char],
    env: &[*const libc::c_char],
    out: BorrowedFd<'_>,
    err: BorrowedFd<'_>,
    keep: BorrowedFd<'_>,
) -> i32 {
    // SAFETY: valid descriptors; the arrays are NULL-terminated and outlive the calls.
    unsafe {
        if libc::dup2(out.as_raw_fd(), 1) < 0 || libc::dup2(err.as_raw_fd(), 2) < 0 {
            return 127;
        }
        let flags = libc::fcntl(keep.as_raw_fd(), libc::F_GETFD);
        if flags < 0 || libc::fcntl(keep.as_raw_fd(), libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return 127;
        }
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            args.as_ptr(),
            env.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    127
}

/// In a forked child: stdin from /dev/null, stdout and stderr to `out` and `err`, then
/// `execve(path, argv, envp)` (`argv`, `envp`: [`null_terminated`]). On failure the errno is
/// written to `status` (a close-on-exec pipe: the parent reads nothing when the exec
/// succeeded) and 127 is returned, for `_exit`. Only async-signal-safe calls.
pub fn exec_path_with_output(
    path: &CStr,
    args: &[*const libc::c_char],
    env: &[*const libc::c_char],
    out: BorrowedFd<'_>,
    err: BorrowedFd<'_>,
    status: BorrowedFd<'_>,
) -> i32 {
    // SAFETY: valid descriptors and NUL-terminated strings; the arrays are NULL-terminated
    // and outlive the calls.
    unsafe {
        // (close-on-exec: only its copy on 0 reaches the program)
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0
            || libc::dup2(null, 0) < 0
            || libc::dup2(out.as_raw_fd(), 1) < 0
            || libc::dup2(err.as_raw_fd(), 2) < 0
        {
            return 127;
        }
        libc::execve(path.as_ptr(), args.as_ptr(), env.as_ptr());
        let errno = *libc::__errno_location();
        libc::write(status.as_raw_fd(), (&errno as *const libc::c_int).cast(), mem::size_of::<libc::c_int>());
    }
    127
}

/// The exit code of child `pid` if it has ended (reaping it), else `None`.
pub fn try_wait(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut status = 0;
    // SAFETY: status is a valid int.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(exit_code(status)))
}

/// Sends `signal` to every process this one may signal but itself. Called by PID 1 of a PID
/// namespace, that is every other process of the namespace.
pub fn signal_all_others(signal: libc::c_int) {
    // SAFETY: plain kill call.
    unsafe {
        libc::kill(-1, signal);
    }
}

/// Reaps every ended child (PID 1 inherits the namespace's orphans); true when none is left.
pub fn reap_children() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid int.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r < 0 {
            return io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
        }
        if r == 0 {
            return false;
        }
    }
}
