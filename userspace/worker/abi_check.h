/* SPDX-License-Identifier: MIT */
/* Load-time checks on an app file, before the worker dlopens it. */
#ifndef LUTF_ABI_CHECK_H
#define LUTF_ABI_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Check the app file at path (app: its name, tier: the worker's tier, ""
 * when unconfined; threads: the tier lets the app start threads, false when
 * its Labors are fixed before the filter) before it is loaded. Refuses a Go
 * library in a tier without threads, and a second Go runtime in this
 * process; the reason, naming the tier or the app, goes to msg. Call from
 * the worker's main thread. Returns 0, -EPERM (tier) or -EBUSY (a Go
 * runtime is loaded).
 */
int lutf_abi_check_app(const char *path, const char *app, const char *tier, bool threads, char *msg,
		       size_t cap);

#endif
