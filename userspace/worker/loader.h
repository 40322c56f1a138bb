/* SPDX-License-Identifier: MIT */
/*
 * The worker's loader interface: how a worker turns a stored app file into
 * functions a Labor can call. One implementation per kind of app (native .so
 * in loader_native.c, embedded CPython in loader_python.c); the engine never
 * sees a kind: a found function is a struct lutf_fn_binding whose fn the
 * Labor calls like any C function. Another language is one more file here.
 * Used from the worker's main thread only (load, find, unload); what find
 * returns is called on Labor threads.
 */
#ifndef LUTF_WORKER_LOADER_H
#define LUTF_WORKER_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "host.h" /* struct lutf_fn_binding: userspace/runtime */

struct lutf_loader_app; /* one loaded app, the kind's own */

struct lutf_loader {
	const char *kind; /* "native", "python" */
	/* Whether this kind loads a file that starts with head (len bytes, maybe
	 * fewer than asked for). */
	bool (*match)(const unsigned char *head, size_t len);
	/* Load the app stored at path (app = its name; config = "key", "value",
	 * ..., NULL, the deploy's configuration of all its functions, or NULL)
	 * and run its init. 0 and *out, or -errno with msg filled. */
	int (*load)(const char *path, const char *app, const char *const *config,
		    struct lutf_loader_app **out, char *msg, size_t cap);
	/* Resolve one exported symbol of a loaded app into a binding (config:
	 * that function's, kept by the caller for the worker's life). 0, or
	 * -errno with msg filled. */
	int (*find)(struct lutf_loader_app *a, const char *symbol, const char *const *config,
		    struct lutf_fn_binding *out, char *msg, size_t cap);
	/* Drop an app none of whose functions was bound (a failed load). Apps
	 * once bound stay loaded for the worker's life (worker.c). */
	void (*unload)(struct lutf_loader_app *a);
};

extern const struct lutf_loader lutf_loader_native;

/*
 * The loader for the app stored at path, chosen by the file's first bytes:
 * a zip or text without NUL bytes is Python; anything else is native
 * (dlopen says what is wrong with a file that is not ELF). Returns it, or
 * NULL with msg filled (the file cannot be read, or it is Python and this
 * process has no Python loader: loader_python.h).
 */
const struct lutf_loader *lutf_loader_for(const char *path, char *msg, size_t cap);

/* Whether an app file starting with head[0..len) is one the Python loader
 * takes (what lutf_loader_for decides on; lutfd asks it too: a tenant with a
 * Python app needs a worker forked after the zygote's interpreter). */
bool lutf_app_looks_python(const void *head, size_t len);

#endif /* LUTF_WORKER_LOADER_H */
