// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only)
/*
 * sigsys: when a seccomp filter kills one of lutfd's workers, remember which
 * syscall it refused, so that lutfd can name it in the error its clients get.
 * Invariant: only processes lutfd registered in sigsys_workers are looked at,
 * and only seccomp's own SIGSYS (si_code SYS_SECCOMP), not a kill(2) of SIGSYS.
 *
 * A raw tracepoint that reads no kernel structure by its BTF layout: the
 * siginfo words are at their UAPI offsets (sigsys.h, checked against
 * <signal.h> by the loader), and the process is the current task (seccomp
 * signals the task that made the call; any other is left alone). So libbpf
 * needs no kernel BTF to load it, and the load, on the path of a worker's
 * first LOAD, no longer parses the kernel's 5.5 MB of it.
 */
#include "vmlinux.h" /* types only: no field of a kernel structure is read */
#include <bpf/bpf_helpers.h>
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

/* trace_signal_generate(int sig, struct kernel_siginfo *info,
 * struct task_struct *task, int group, int result): the raw tracepoint's
 * arguments, as words (a plain array, not the vmlinux.h struct, whose
 * accesses would be CO-RE relocations). */
SEC("raw_tp/signal_generate")
int sigsys_generate(__u64 *ctx)
{
	const char *info = (const char *)ctx[1];
	struct sigsys_seen s = {};
	__u64 id;
	__u32 tgid;
	__s32 code;

	if ((int)ctx[0] != SIGSYS_SIGNO || (unsigned long)info < 4096)
		return 0; /* SEND_SIG_NOINFO / SEND_SIG_PRIV are small constants */
	if (ctx[2] != bpf_get_current_task())
		return 0; /* not a task signalling itself: not seccomp's kill */
	id = bpf_get_current_pid_tgid();
	tgid = (__u32)(id >> 32);
	if (!bpf_map_lookup_elem(&sigsys_workers, &tgid))
		return 0;
	if (bpf_probe_read_kernel(&code, sizeof(code), info + SIGSYS_OFF_CODE) ||
	    code != SIGSYS_CODE_SECCOMP)
		return 0;
	if (bpf_probe_read_kernel(&s.nr, sizeof(s.nr), info + SIGSYS_OFF_SYSCALL) ||
	    bpf_probe_read_kernel(&s.arch, sizeof(s.arch), info + SIGSYS_OFF_ARCH))
		return 0;
	s.ts_ns = bpf_ktime_get_ns();
	s.tid = (__u32)id;
	/* BPF_NOEXIST: the first refused call is the one that killed it (other
	 * threads may meet the filter while the process is dying). */
	if (bpf_map_update_elem(&sigsys_seen, &tgid, &s, BPF_NOEXIST) &&
	    bpf_map_lookup_elem(&sigsys_seen, &tgid) == NULL)
		__sync_fetch_and_add(&sigsys_drops, 1);
	return 0;
}
