/* SPDX-License-Identifier: MIT */
/*
 * The native loader: a C-ABI shared object (C, C++, Rust, Go), dlopen'ed
 * RTLD_NOW | RTLD_LOCAL so that apps never see each other's symbols. Refuses
 * an object without lutf_abi_version or built for another ABI; runs
 * lutf_app_init once per load. Also picks the loader of a stored file.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "loader_python.h"

struct lutf_loader_app {
	void *handle;
	void *state; /* what lutf_app_init stored */
};

static bool native_match(const unsigned char *head, size_t len)
{
	return len >= 4 && !memcmp(head,
				   "\x7f"
				   "ELF",
				   4);
}

static int native_load(const char *path, const char *app, const char *const *config,
		       struct lutf_loader_app **out, char *msg, size_t cap)
{
	struct lutf_loader_app *a;
	const uint32_t *abi;
	lutf_app_init_t init;
	void *h;
	int err;

	(void)app;
	(void)config;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(msg, cap, "dlopen: %s", dlerror());
		return -ENOEXEC;
	}
	abi = dlsym(h, "lutf_abi_version");
	if (!abi) {
		snprintf(msg, cap, "not a lutf app: no lutf_abi_version symbol");
		dlclose(h);
		return -ENOEXEC;
	}
	if (*abi != LUTF_ABI_VERSION) {
		snprintf(msg, cap, "app built for ABI %u, this lutf runs ABI %u", *abi,
			 LUTF_ABI_VERSION);
		dlclose(h);
		return -EPROTO;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		dlclose(h);
		return snprintf(msg, cap, "out of memory"), -ENOMEM;
	}
	a->handle = h;
	init = (lutf_app_init_t)dlsym(h, "lutf_app_init");
	if (init && (err = init(&a->state)) != 0) {
		snprintf(msg, cap, "lutf_app_init failed: %d", err);
		dlclose(h);
		free(a);
		return -ECANCELED;
	}
	*out = a;
	return 0;
}

static int native_find(struct lutf_loader_app *a, const char *symbol, const char *const *config,
		       struct lutf_fn_binding *out, char *msg, size_t cap)
{
	void *fn = dlsym(a->handle, symbol);

	if (!fn) {
		snprintf(msg, cap, "no symbol '%s'", symbol);
		return -ESRCH;
	}
	out->fn = (lutf_fn_t)fn;
	out->app_state = a->state;
	out->config = config;
	return 0;
}

/* Only for an app none of whose functions was bound; its init ran, so its
 * fini runs too. */
static void native_unload(struct lutf_loader_app *a)
{
	lutf_app_fini_t fini = (lutf_app_fini_t)dlsym(a->handle, "lutf_app_fini");

	if (fini)
		fini(a->state);
	dlclose(a->handle);
	free(a);
}

const struct lutf_loader lutf_loader_native = {
    .kind = "native",
    .match = native_match,
    .load = native_load,
    .find = native_find,
    .unload = native_unload,
};

static const struct lutf_loader *py_loader; /* set in the zygote, inherited */
#ifdef LUTF_HAVE_PYTHON
/* Until lutf_python_preinit ran: the zygote starts Python at a Python
 * tenant's spawn or when idle (zygote.c), so a worker forked before has none. */
static char py_why[200] = "no Python in this worker: it was started before the zygote's "
			  "interpreter, for a tenant without Python apps (a Python deploy "
			  "replaces it)";
#else
static char py_why[200] = "this lutf is built without Python (LUTF_PYTHON=OFF)";
#endif

#ifdef LUTF_HAVE_PYTHON
/* path, opened, if it is a module the zygote (root) may load: an absolute
 * path to a regular file that only root (or lutfd's own uid) can change,
 * checked on the open file (no swap between the check and the load). The fd,
 * or -errno with why in py_why. */
static int module_open(const char *path)
{
	struct stat st;
	int fd, err;

	if (path[0] != '/') {
		snprintf(py_why, sizeof(py_why), "no Python loader: %s is not an absolute path",
			 path);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		snprintf(py_why, sizeof(py_why), "no Python loader: %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || (st.st_uid && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(py_why, sizeof(py_why),
			 "no Python loader: %s is not a file only root can change", path);
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* Which lutf_python.so: $LUTF_PYTHON_MODULE (lutfd's environment, set by
 * its operator); else the installed one, found relative to lutfd's own
 * executable (LUTF_PYTHON_MODULE_REL: from SBINDIR to LIBDIR/lutf), when it
 * is there; else the build tree's. Its path into buf; the open fd, or -errno
 * (py_why says). */
static int module_find(char *buf, size_t cap)
{
	const char *env = getenv("LUTF_PYTHON_MODULE");
	char exe[4096], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(buf, cap, "%s", env);
		return module_open(buf);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0 && (exe[n] = 0, slash = strrchr(exe, '/'))) {
		*slash = 0;
		if ((size_t)snprintf(buf, cap, "%s/%s", exe, LUTF_PYTHON_MODULE_REL) < cap &&
		    !access(buf, F_OK))
			return module_open(buf);
	}
	snprintf(buf, cap, "%s", LUTF_PYTHON_MODULE);
	return module_open(buf);
}
#endif

int lutf_python_preinit(void)
{
#ifdef LUTF_HAVE_PYTHON
	const struct lutf_loader *l;
	int (*init)(void);
	char path[4096], self[32];
	const char *env;
	void *h;
	int fd = module_find(path, sizeof(path));

	if (fd < 0)
		return -ENOENT;
	/* The file checked, not whatever the path names by now. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	h = dlopen(self, RTLD_NOW | RTLD_GLOBAL);
	close(fd);
	if (!h) {
		snprintf(py_why, sizeof(py_why), "no Python loader: %s", dlerror());
		return -ENOENT;
	}
	init = (int (*)(void))dlsym(h, "lutf_python_module_init");
	l = dlsym(h, "lutf_loader_python");
	if (!init || !l) {
		snprintf(py_why, sizeof(py_why), "no Python loader: %.150s is not lutf's module",
			 path);
		return -ENOENT;
	}
	py_loader = l;
	/* LUTF_PYTHON_TEMPLATE=off: no interpreter in the zygote; each worker
	 * starts its own at its first Python load (after its confinement): its
	 * own str/bytes hash key, at the cost bench/python measures. */
	env = getenv("LUTF_PYTHON_TEMPLATE");
	if (env && !strcmp(env, "off"))
		return 0;
	return init();
#else
	return -ENOENT;
#endif
}

const struct lutf_loader *lutf_python_loader(char *msg, size_t cap)
{
	if (!py_loader)
		snprintf(msg, cap, "%s", py_why);
	return py_loader;
}

/* What the Python loader would take (loader_python.c matches the same). */
static bool looks_python(const unsigned char *head, size_t len);

bool lutf_app_looks_python(const void *head, size_t len)
{
	return !native_match(head, len) && looks_python(head, len);
}

static bool looks_python(const unsigned char *head, size_t len)
{
	if (len >= 4 && !memcmp(head, "PK\x03\x04", 4))
		return true;
	return len && !memchr(head, 0, len) &&
	       (len < 4 || memcmp(head,
				  "\x7f"
				  "ELF",
				  4));
}

const struct lutf_loader *lutf_loader_for(const char *path, char *msg, size_t cap)
{
	unsigned char head[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(msg, cap, "cannot open the app: %s", strerror(errno));
		return NULL;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n < 0) {
		snprintf(msg, cap, "cannot read the app: %s", strerror(errno));
		return NULL;
	}
	if (native_match(head, (size_t)n))
		return &lutf_loader_native;
	if (looks_python(head, (size_t)n))
		return lutf_python_loader(msg, cap); /* NULL: msg says why */
	/* Neither: dlopen says what is wrong with it, as it always did. */
	return &lutf_loader_native;
}
