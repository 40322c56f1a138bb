// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * sigsys: when a seccomp filter kills one of lutfd's workers, remember which
 * syscall it refused, so that lutfd can name it in the error its clients get.
 * Invariant: only processes lutfd registered in sigsys_workers are looked at,
 * and only seccomp's own SIGSYS (si_code SYS_SECCOMP), not a kill(2) of SIGSYS.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sigsys.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIGSYS_MAX_WORKERS);
	__type(key, __u32);   /* worker tgid */
	__type(value, __u32); /* unused (1) */
} sigsys_workers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SIGSYS_MAX_WORKERS);
	__type(key, __u32); /* worker tgid */
	__type(value, struct sigsys_seen);
} sigsys_seen SEC(".maps");

/* Failures to record (map full): lutfd falls back to the kernel log. */
__u64 sigsys_drops SEC(".data") = 0;

static __always_inline int record(struct kernel_siginfo *info, struct task_struct *task)
{
	struct sigsys_seen s = {};
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (!bpf_map_lookup_elem(&sigsys_workers, &tgid))
		return 0;
	if (BPF_CORE_READ(info, si_code) != SIGSYS_CODE_SECCOMP)
		return 0;
	s.nr = (__u32)BPF_CORE_READ(info, _sifields._sigsys._syscall);
	s.arch = BPF_CORE_READ(info, _sifields._sigsys._arch);
	s.ts_ns = bpf_ktime_get_ns();
	s.tid = BPF_CORE_READ(task, pid);
	/* BPF_NOEXIST: the first refused call is the one that killed it (other
	 * threads may meet the filter while the process is dying). */
	if (bpf_map_update_elem(&sigsys_seen, &tgid, &s, BPF_NOEXIST) &&
	    bpf_map_lookup_elem(&sigsys_seen, &tgid) == NULL)
		__sync_fetch_and_add(&sigsys_drops, 1);
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(sigsys_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	if (sig != SIGSYS_SIGNO || !info || (unsigned long)info < 4096)
		return 0; /* SEND_SIG_NOINFO / SEND_SIG_PRIV are small constants */
	return record(info, task);
}
