// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_sock.bpf.c - cgroup socket hooks.
 *
 * Covers:
 *  - `cgroup/sock_create` and its older alias `cgroup/sock`
 *    (BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE);
 *  - `cgroup/post_bind4` (CGROUP_SOCK, BPF_CGROUP_INET4_POST_BIND);
 *  - `cgroup/connect4` and `cgroup/sendmsg4` (BPF_PROG_TYPE_CGROUP_SOCK_ADDR
 *    with BPF_CGROUP_INET4_CONNECT / BPF_CGROUP_UDP4_SENDMSG);
 *  - `cgroup/getsockopt` (BPF_PROG_TYPE_CGROUP_SOCKOPT,
 *    BPF_CGROUP_GETSOCKOPT).
 * connect4 rewrites user_port; sendmsg4 calls bpf_get_socket_cookie.
 */
#include "common.h"

SEC("cgroup/sock_create")
int cgroup_sock_create(struct bpf_sock *sk)
{
	/* mark IPv4 sockets */
	if (sk->family == AF_INET)
		sk->mark = 0x100;
	return 1;
}

SEC("cgroup/sock")
int cgroup_sock_legacy(struct bpf_sock *sk)
{
	sk->priority = 1;
	return 1;
}

SEC("cgroup/post_bind4")
int cgroup_post_bind4(struct bpf_sock *sk)
{
	/* refuse binding to port 1 */
	return sk->src_port == 1 ? 0 : 1;
}

SEC("cgroup/connect4")
int cgroup_connect4(struct bpf_sock_addr *ctx)
{
	/* redirect connects to port 7 to port 7007 */
	if (ctx->user_port == bpf_htons(7))
		ctx->user_port = bpf_htons(7007);
	return 1;
}

SEC("cgroup/sendmsg4")
int cgroup_sendmsg4(struct bpf_sock_addr *ctx)
{
	/* refuse UDP sendmsg from sockets without a cookie (never happens) */
	return bpf_get_socket_cookie(ctx) ? 1 : 0;
}

SEC("cgroup/getsockopt")
int cgroup_getsockopt(struct bpf_sockopt *ctx)
{
	/* leave the kernel's answer untouched */
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
