/* SPDX-License-Identifier: MIT */
/*
 * labor_watch for the fuzz build, which has no BPF: the fuzzed front runs
 * in the polling mode, so none of these is called; they only link.
 */
#include <errno.h>
#include <stddef.h>

#include "labor_watch.h"

int lutf_lw_open(const struct lutf_lw_opts *o, struct lutf_lw **out)
{
	(void)o;
	(void)out;
	return -ENOSYS;
}

void lutf_lw_close(struct lutf_lw *lw)
{
	(void)lw;
}

int lutf_lw_register_busy(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint64_t busy_uaddr,
			  uint32_t busy_val, uint32_t *slot)
{
	(void)lw, (void)tgid, (void)tid, (void)busy_uaddr, (void)busy_val, (void)slot;
	return -ENOSYS;
}

int lutf_lw_register_hints(struct lutf_lw *lw, pid_t tgid, pid_t tid, const struct lutf_lw_hints *h,
			   uint32_t *slot)
{
	(void)lw, (void)tgid, (void)tid, (void)h, (void)slot;
	return -ENOSYS;
}

int lutf_lw_unregister(struct lutf_lw *lw, uint32_t slot)
{
	(void)lw, (void)slot;
	return -ENOSYS;
}

void lutf_lw_set_cart(struct lutf_lw *lw, uint32_t slot, uint32_t cart)
{
	(void)lw, (void)slot, (void)cart;
}

const struct labor_watch_slot *lutf_lw_slot(struct lutf_lw *lw, uint32_t slot)
{
	(void)lw, (void)slot;
	return NULL;
}

int lutf_lw_sleep_fd(struct lutf_lw *lw, int extra_fd, int64_t timeout_ns)
{
	(void)lw, (void)extra_fd, (void)timeout_ns;
	return -ENOSYS;
}

const char *lutf_lw_attach_kind(struct lutf_lw *lw)
{
	(void)lw;
	return "";
}

int lutf_lw_drops(struct lutf_lw *lw, struct lutf_lw_drops *out)
{
	(void)lw, (void)out;
	return -ENOSYS;
}

int lutf_lw_prog_stats(struct lutf_lw *lw, uint64_t *run_ns, uint64_t *run_cnt)
{
	(void)lw, (void)run_ns, (void)run_cnt;
	return -ENOSYS;
}

int lutf_lw_set_grace(struct lutf_lw *lw, uint64_t ns)
{
	(void)lw;
	(void)ns;
	return 0;
}

int lutf_lw_block_reserve(struct lutf_lw *lw, uint32_t want, uint32_t *first, uint32_t *count)
{
	(void)lw, (void)want, (void)first, (void)count;
	return -ENOSYS;
}

void lutf_lw_block_release(struct lutf_lw *lw, uint32_t first, uint32_t count)
{
	(void)lw, (void)first, (void)count;
}

int lutf_lw_register_in(struct lutf_lw *lw, uint32_t first, uint32_t count, pid_t tgid, pid_t tid,
			const struct lutf_lw_hints *h, uint32_t *slot)
{
	(void)lw, (void)first, (void)count, (void)tgid, (void)tid, (void)h, (void)slot;
	return -ENOSYS;
}

int lutf_lw_state_fd_lend(struct lutf_lw *lw)
{
	(void)lw;
	return -ENOSYS;
}
