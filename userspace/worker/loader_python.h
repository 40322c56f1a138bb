/* SPDX-License-Identifier: MIT */
/*
 * The Python loader lives in its own module (lutf_python.so, linking
 * libpython3.11) that only the zygote loads: lutfd never maps the
 * interpreter. These are the worker library's side (loader_native.c) and
 * the module's two exported names (loader_python.c).
 */
#ifndef LUTF_WORKER_LOADER_PYTHON_H
#define LUTF_WORKER_LOADER_PYTHON_H

struct lutf_loader;

/*
 * In the zygote, before its first fork: load lutf_python.so ($LUTF_PYTHON_MODULE,
 * else the installed one relative to lutfd's executable, else the build's)
 * RTLD_GLOBAL (CPython's extension modules need its symbols)
 * and start CPython holding the GIL, so that every worker forked after only
 * finishes the fork (cold start, shared pages). Returns 0, -ENOENT (no
 * module: Python apps are refused at load, saying why), or -ENOEXEC (the
 * interpreter did not start: each worker starts its own at its first Python
 * load).
 */
int lutf_python_preinit(void);

/* The Python loader, or NULL when this process has no module (why: msg). */
const struct lutf_loader *lutf_python_loader(char *msg, size_t cap);

/* Exported by the module. */
int lutf_python_module_init(void);
extern const struct lutf_loader lutf_loader_python;

#endif /* LUTF_WORKER_LOADER_PYTHON_H */
