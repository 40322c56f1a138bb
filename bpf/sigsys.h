/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0-only) */
/*
 * Shared between bpf/sigsys.bpf.c and lutfd's loader (userspace/isolation/lutfd/sigsys.c):
 * fixed-width types only. lutfd writes the pids of its workers into
 * sigsys_workers; the probe records, per worker, the syscall a seccomp filter
 * killed it for, in sigsys_seen, which lutfd reads when the worker's exit is
 * reported and then deletes.
 */
#ifndef LUTF_BPF_SIGSYS_H
#define LUTF_BPF_SIGSYS_H

#define SIGSYS_MAX_WORKERS 4096 /* entries of both maps */
#define SIGSYS_SIGNO 31		/* SIGSYS on every architecture lutf builds for */
#define SIGSYS_CODE_SECCOMP 1	/* si_code SYS_SECCOMP */
/* Byte offsets in the kernel's siginfo (the UAPI layout of a 64-bit
 * siginfo_t: si_code, then in _sifields._sigsys after the 8-byte
 * _call_addr, _syscall and _arch). The loader checks them against
 * <signal.h> at build time. */
#define SIGSYS_OFF_CODE 8
#define SIGSYS_OFF_SYSCALL 24
#define SIGSYS_OFF_ARCH 28

struct sigsys_seen {
	__u32 nr;    /* the syscall number the filter refused */
	__u32 arch;  /* AUDIT_ARCH_* of the call */
	__u64 ts_ns; /* bpf_ktime_get_ns() when the signal was generated */
	__u32 tid;   /* the thread that made the call */
	__u32 pad;
};

#endif /* LUTF_BPF_SIGSYS_H */
