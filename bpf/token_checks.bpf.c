// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// bpfcap record's observer: counts the bpf() calls made from user namespaces other than the
// initial one, with what the kernel's token checks look at in each, how each ended, and the
// capability checks made during them.
//
// kernel/bpf/token.c decides every delegation check from the bpf() call's own attributes:
//   map_create        bpf_token_allow_cmd(MAP_CREATE), bpf_token_allow_map_type(map_type)
//   prog_load         bpf_token_allow_cmd(PROG_LOAD),
//                     bpf_token_allow_prog_type(prog_type, expected_attach_type)
//   btf_load          bpf_token_allow_cmd(BTF_LOAD)
//   btf_get_fd_by_id  bpf_token_allow_cmd(BTF_GET_FD_BY_ID)          (6.15+)
// and only when the call carries a token (BPF_F_TOKEN_FD in its flags). This program reads
// those attributes as the kernel will (the calls' union bpf_attr, laid out by the UAPI header
// it is compiled with) on the raw sys_enter tracepoint, and the call's result on sys_exit.
// Which commands consult a token and how the kernel adjusts an expected attach type are
// bpfcap's rules (rules/kernel/privileges.toml), applied by src/record/observer.rs.
//
// The capabilities: bpf_token_capable(token, cap) is ns_capable(token's user namespace, cap),
// then ns_capable(..., CAP_SYS_ADMIN) in its place (kernel/bpf/token.c bpf_ns_capable), and
// bpf_token_create checks ns_capable(bpffs's user namespace, CAP_BPF). Every such check passes
// the capability:cap_capable tracepoint (security/commoncap.c, Linux 6.14+) with the user
// namespace it is made against. A check made during a traced bpf() call against a user
// namespace other than the initial one is counted with that call (its `cap` and result); the
// program is optional, for kernels without the tracepoint.
//
// (The token functions themselves are not traced: fentry/fexit and BPF LSM programs need BPF
// trampolines, which not every kernel lets a program attach; tracepoints work wherever
// BTF-enabled raw tracepoints do.)
//
// The counts are kept in the kernel, keyed by the caller's user namespace (its inode number,
// as /proc/PID/ns/user shows it), the call, its result and the thread's name: bpfcap reads
// the keys of its sandbox's user namespace after each run and deletes them. No event stream,
// so nothing is lost however often a loader calls.
//
// Built by bpf-samples/build.sh (checked byte for byte by ./dev test); the object is compiled
// into bpfcap, so a user's machine needs no clang.

#include <linux/types.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// bpf()'s syscall number, and its arguments in struct pt_regs below: x86-64 only (bpfcap
// record refuses to run elsewhere).
#if defined(__TARGET_ARCH_x86)
#define NR_BPF 321
#else
#error "the observer reads x86-64 syscall registers"
#endif

// The initial user namespace's inode number (include/linux/proc_ns.h PROC_USER_INIT_INO).
#define PROC_USER_INIT_INO 0xEFFFFFFDU

// The kernel types read, as CO-RE relocations against the running kernel's BTF.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct user_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct cred {
	struct user_namespace *user_ns;
} __attribute__((preserve_access_index));

struct task_struct {
	const struct cred *cred;
} __attribute__((preserve_access_index));

struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
} __attribute__((preserve_access_index));

// What a call asked (the key of `calls`, without the result and thread name while it runs).
struct call {
	__u32 userns;	// inode number of the caller's user namespace
	__u32 cmd;	// enum bpf_cmd
	__u32 type;	// map_create: map_type; prog_load: prog_type; else 0
	__u32 attach;	// prog_load: expected_attach_type as given; else 0
	__u32 token;	// 1 when the call carries a token (BPF_F_TOKEN_FD)
};

// No capability: the key counts the call itself.
#define NO_CAP 0xffffffff

struct call_key {
	struct call call;
	__u32 cap;	// a capability checked during the call, or NO_CAP
	__s32 result;	// 0 on success, else the -errno the call (or the check) returned
	char comm[16];	// the calling thread's name
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct call_key);
	__type(value, __u64);
} calls SEC(".maps");

// The call each thread is in, by pid_tgid, from sys_enter to sys_exit.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct call);
} running SEC(".maps");

// Reads a __u32 field of the caller's union bpf_attr, as the kernel does: a field beyond the
// size the caller passed is zero.
static __always_inline __u32 attr_u32(const void *attr, __u32 size, __u32 offset)
{
	__u32 v = 0;

	if (offset + sizeof(__u32) <= size)
		bpf_probe_read_user(&v, sizeof(v), attr + offset);
	return v;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(bpf_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct call c = {};
	const void *attr;
	__u32 size;
	__u64 tid;

	if (id != NR_BPF)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	c.userns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	if (c.userns == PROC_USER_INIT_INO)
		return 0;
	c.cmd = BPF_CORE_READ(regs, di);
	attr = (const void *)BPF_CORE_READ(regs, si);
	size = BPF_CORE_READ(regs, dx);
	switch (c.cmd) {
	case BPF_MAP_CREATE:
		c.type = attr_u32(attr, size, offsetof(union bpf_attr, map_type));
		c.token = !!(attr_u32(attr, size, offsetof(union bpf_attr, map_flags)) & BPF_F_TOKEN_FD);
		break;
	case BPF_PROG_LOAD:
		c.type = attr_u32(attr, size, offsetof(union bpf_attr, prog_type));
		c.attach = attr_u32(attr, size, offsetof(union bpf_attr, expected_attach_type));
		c.token = !!(attr_u32(attr, size, offsetof(union bpf_attr, prog_flags)) & BPF_F_TOKEN_FD);
		break;
	case BPF_BTF_LOAD:
		c.token = !!(attr_u32(attr, size, offsetof(union bpf_attr, btf_flags)) & BPF_F_TOKEN_FD);
		break;
	case BPF_BTF_GET_FD_BY_ID:
		c.token = !!(attr_u32(attr, size, offsetof(union bpf_attr, open_flags)) & BPF_F_TOKEN_FD);
		break;
	case BPF_TOKEN_CREATE:
		c.token = 1;
		break;
	}
	tid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&running, &tid, &c, BPF_ANY);
	return 0;
}

static __always_inline void count(struct call_key *key)
{
	__u64 one = 1, *n;

	bpf_get_current_comm(key->comm, sizeof(key->comm));
	n = bpf_map_lookup_elem(&calls, key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, key, &one, BPF_NOEXIST);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(bpf_exit, struct pt_regs *regs, long ret)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct call_key key = {};
	struct call *c;

	c = bpf_map_lookup_elem(&running, &tid);
	if (!c)
		return 0;
	key.call = *c;
	bpf_map_delete_elem(&running, &tid);
	key.cap = NO_CAP;
	key.result = ret < 0 ? ret : 0;
	count(&key);
	return 0;
}

SEC("tp_btf/cap_capable")
int BPF_PROG(capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct call_key key = {};
	struct call *c;

	c = bpf_map_lookup_elem(&running, &tid);
	if (!c || BPF_CORE_READ(target_ns, ns.inum) == PROC_USER_INIT_INO)
		return 0;
	key.call = *c;
	key.cap = cap;
	key.result = ret;
	count(&key);
	return 0;
}
