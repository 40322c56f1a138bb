/* SPDX-License-Identifier: MIT */
/* The embedded interpreter's start, for the zygote (loader_python.c). */
#ifndef LUTF_WORKER_LOADER_PYTHON_H
#define LUTF_WORKER_LOADER_PYTHON_H

/*
 * Start CPython in this single-threaded process and keep its GIL, so that
 * every worker forked from it finishes the fork instead of starting Python
 * itself (cold start, shared pages). Returns 0 or -ENOEXEC (a worker then
 * starts the interpreter at its first Python load).
 */
int lutf_python_preinit(void);

#endif /* LUTF_WORKER_LOADER_PYTHON_H */
