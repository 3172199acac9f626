// userns-token: runs CMD as root of a fresh user+mount namespace in which a
// bpffs with BPF token delegation is mounted (default /sys/fs/bpf).
//
// The bpffs must belong to the child's user namespace (fsopen in the child)
// while the delegate_* options need CAP_SYS_ADMIN in the init namespace
// (fsconfig + FSCONFIG_CMD_CREATE + fsmount in the privileged parent); the
// child then move_mounts the detached mount, so it appears in
// /proc/self/mountinfo where cilium/ebpf looks for bpffs mounts.
//
// With -caps, CMD keeps only the listed capabilities (numbers, comma-separated) in the user
// namespace: every other one is dropped from the bounding set before the exec, so root's
// capabilities after it are the listed ones (the drops and the exec on one locked thread).
//
// usage: userns-token [-mountpoint DIR] [-no-bpffs] [-caps N,N...] [-delegate key=value]... -- CMD [ARG...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "userns-token: "+format+"\n", a...)
	os.Exit(125)
}

func sendFd(sock, fd int) {
	if err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		die("sendmsg: %v", err)
	}
}

func recvFd(sock int) int {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
	if err != nil {
		die("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		die("no fd received (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		die("bad SCM_RIGHTS (%v)", err)
	}
	return fds[0]
}

func child() {
	// Capability sets belong to a thread, not to the process: the bounding-set drops below and
	// the exec must run on one thread. Unlocked, the goroutine may move to another of the
	// runtime's threads between them (seen: about one exec in seven with a sleep in between),
	// and the exec then keeps every capability.
	runtime.LockOSThread()
	mountpoint := os.Getenv("_USERNS_TOKEN_MNT")
	noBpffs := os.Getenv("_USERNS_TOKEN_NOBPFFS") == "1"
	args := os.Args[1:]
	const sock = 3
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		die("make / rprivate: %v", err)
	}
	if !noBpffs {
		fsfd, err := unix.Fsopen("bpf", unix.FSOPEN_CLOEXEC)
		if err != nil {
			die("fsopen(bpf) in userns: %v", err)
		}
		sendFd(sock, fsfd)
		unix.Close(fsfd)
		mntfd := recvFd(sock)
		if err := unix.MoveMount(mntfd, "", unix.AT_FDCWD, mountpoint, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			die("move_mount to %s: %v", mountpoint, err)
		}
		unix.Close(mntfd)
	}
	unix.Close(sock)
	if keep := os.Getenv("_USERNS_TOKEN_CAPS"); keep != "" {
		kept := map[int]bool{}
		for _, c := range strings.Split(keep, ",") {
			var n int
			if _, err := fmt.Sscanf(c, "%d", &n); err != nil {
				die("bad capability number %q", c)
			}
			kept[n] = true
		}
		for c := 0; c <= 63; c++ {
			if kept[c] {
				continue
			}
			// EINVAL past the kernel's last capability
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				die("drop capability %d: %v", c, err)
			}
		}
	}
	os.Unsetenv("_USERNS_TOKEN_MNT")
	os.Unsetenv("_USERNS_TOKEN_NOBPFFS")
	os.Unsetenv("_USERNS_TOKEN_CAPS")
	path, err := exec.LookPath(args[0])
	if err != nil {
		die("%v", err)
	}
	die("exec %s: %v", path, syscall.Exec(path, args, os.Environ()))
}

func main() {
	if os.Getenv("_USERNS_TOKEN_MNT") != "" {
		child()
	}
	mountpoint := flag.String("mountpoint", "/sys/fs/bpf", "where the child mounts the delegated bpffs")
	noBpffs := flag.Bool("no-bpffs", false, "mount no bpffs (control run: no token available)")
	caps := flag.String("caps", "", "capability numbers CMD keeps (default: all)")
	var delegates multi
	flag.Var(&delegates, "delegate", "bpffs option key=value (default: delegate_cmds/maps/progs/attachs=any)")
	flag.Parse()
	if flag.NArg() == 0 || *mountpoint == "" {
		die("usage: userns-token [-mountpoint DIR] [-no-bpffs] [-delegate key=value]... -- CMD [ARG...]")
	}
	if len(delegates) == 0 {
		delegates = multi{"delegate_cmds=any", "delegate_maps=any", "delegate_progs=any", "delegate_attachs=any"}
	}

	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		die("socketpair: %v", err)
	}
	cmd := exec.Command("/proc/self/exe", flag.Args()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(sp[1]), "sock")}
	nb := "0"
	if *noBpffs {
		nb = "1"
	}
	cmd.Env = append(os.Environ(), "_USERNS_TOKEN_MNT="+*mountpoint, "_USERNS_TOKEN_NOBPFFS="+nb, "_USERNS_TOKEN_CAPS="+*caps)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	if err := cmd.Start(); err != nil {
		die("start child: %v", err)
	}
	unix.Close(sp[1])

	if !*noBpffs {
		fsfd := recvFd(sp[0])
		for _, d := range delegates {
			k, v, _ := strings.Cut(d, "=")
			if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
				die("fsconfig %s=%s: %v", k, v, err)
			}
		}
		if err := unix.FsconfigCreate(fsfd); err != nil {
			die("fsconfig create: %v", err)
		}
		mntfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
		if err != nil {
			die("fsmount: %v", err)
		}
		sendFd(sp[0], mntfd)
		unix.Close(mntfd)
		unix.Close(fsfd)
	}
	unix.Close(sp[0])

	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	} else if err != nil {
		die("wait: %v", err)
	}
}
