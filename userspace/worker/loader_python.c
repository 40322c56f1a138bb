/* SPDX-License-Identifier: MIT */
/*
 * The Python loader: Debian's CPython 3.11 embedded, isolated (no user site,
 * no environment, a fixed sys.path); built as its own module, lutf_python.so,
 * which only the zygote loads (loader_python.h). The zygote starts the interpreter once
 * (at the first Python tenant's spawn, or when idle: zygote.c) and forks workers holding
 * the GIL; a worker's first Python LOAD finishes
 * the fork (PyOS_AfterFork_Child) after confinement, then imports the app.
 * Invariants: a Labor has one thread state for its life and holds the GIL
 * only inside a call (blocking calls in Python release it); an app's own
 * modules never stay in sys.modules, so two apps never share a namespace.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "loader_python.h"

#define PY_MODS 8 /* modules one app's exports may name */

struct py_mod {
	char name[128];
	PyObject *mod, *state; /* state: what init(config) returned, or None */
};

struct lutf_loader_app {
	char path[4096];
	bool zip;
	PyObject *config; /* dict: every export's configuration */
	struct py_mod mods[PY_MODS];
	int nmods;
};

/* A bound function: the binding's app_state (owned for the worker's life). */
struct py_fn {
	PyObject *callable, *state;
};

static bool py_started;		  /* the interpreter exists in this process */
static bool py_usable;		  /* ... and this process finished its fork */
static PyThreadState *py_main_ts; /* the main thread's, saved between LOADs */
static PyInterpreterState *py_interp;
static pthread_key_t py_ts_key;
static __thread PyThreadState *py_ts; /* this Labor's */

/* ---- the call object: what a handler gets ---- */

typedef struct {
	PyObject_HEAD struct lutf_call *call; /* NULL once the call returned */
	PyObject *input, *state, *ctype;
	bool failed;
} PyCall;

static bool call_live(PyCall *c)
{
	if (c->call)
		return true;
	PyErr_SetString(PyExc_RuntimeError, "the call is over: a call object is valid only "
					    "during its call");
	return false;
}

static PyObject *call_meta_or_config(PyCall *c, PyObject *arg, bool meta)
{
	const char *key = PyUnicode_AsUTF8(arg), *v;

	if (!key || !call_live(c))
		return NULL;
	v = meta ? c->call->ops->meta(c->call, key) : c->call->ops->config(c->call, key);
	if (!v)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "replace");
}

static PyObject *call_meta(PyObject *self, PyObject *arg)
{
	return call_meta_or_config((PyCall *)self, arg, true);
}

static PyObject *call_config(PyObject *self, PyObject *arg)
{
	return call_meta_or_config((PyCall *)self, arg, false);
}

static PyObject *call_log(PyObject *self, PyObject *arg)
{
	PyCall *c = (PyCall *)self;
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(arg, &n);

	if (!s || !call_live(c))
		return NULL;
	c->call->ops->log(c->call, s, (size_t)n);
	Py_RETURN_NONE;
}

/* str (UTF-8) or any bytes-like object onto the output. 0, or -1 with a
 * Python exception set. */
static int call_put(PyCall *c, PyObject *o)
{
	Py_buffer view;
	Py_ssize_t n;
	const char *s;
	int err;

	if (PyUnicode_Check(o)) {
		s = PyUnicode_AsUTF8AndSize(o, &n);
		if (!s)
			return -1;
		err = c->call->ops->write(c->call, s, (size_t)n);
	} else {
		if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE))
			return -1;
		err = c->call->ops->write(c->call, view.buf, (size_t)view.len);
		PyBuffer_Release(&view);
	}
	if (err) {
		/* No memory for the output is a MemoryError (OUT_OF_MEMORY). */
		PyErr_SetString(err == -ENOMEM ? PyExc_MemoryError : PyExc_ValueError,
				err == -ENOMEM ? "out of memory for the output"
					       : "output over the size limit");
		return -1;
	}
	return 0;
}

static PyObject *call_write(PyObject *self, PyObject *arg)
{
	PyCall *c = (PyCall *)self;

	if (!call_live(c) || call_put(c, arg))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *call_fail(PyObject *self, PyObject *arg)
{
	PyCall *c = (PyCall *)self;
	const char *s = PyUnicode_AsUTF8(arg);

	if (!s || !call_live(c))
		return NULL;
	c->call->ops->fail(c->call, s);
	c->failed = true;
	Py_RETURN_NONE;
}

static PyObject *call_get_input(PyObject *self, void *closure)
{
	PyCall *c = (PyCall *)self;

	(void)closure;
	if (!c->input) {
		if (!call_live(c))
			return NULL;
		c->input =
		    PyBytes_FromStringAndSize(c->call->input, (Py_ssize_t)c->call->input_len);
		if (!c->input)
			return NULL;
	}
	return Py_NewRef(c->input);
}

static PyObject *call_get_state(PyObject *self, void *closure)
{
	(void)closure;
	return Py_NewRef(((PyCall *)self)->state);
}

static PyObject *call_get_ctype(PyObject *self, void *closure)
{
	PyCall *c = (PyCall *)self;

	(void)closure;
	return Py_NewRef(c->ctype ? c->ctype : Py_None);
}

static int call_set_ctype(PyObject *self, PyObject *v, void *closure)
{
	PyCall *c = (PyCall *)self;
	const char *s;

	(void)closure;
	if (!v || !PyUnicode_Check(v)) {
		PyErr_SetString(PyExc_TypeError, "content_type is a str");
		return -1;
	}
	if (!(s = PyUnicode_AsUTF8(v)) || !call_live(c))
		return -1;
	if (c->call->ops->set_content_type(c->call, s)) {
		PyErr_Format(PyExc_ValueError,
			     "bad content type (at most %d bytes, no control "
			     "characters)",
			     LUTF_CONTENT_TYPE_MAX);
		return -1;
	}
	Py_XSETREF(c->ctype, Py_NewRef(v));
	return 0;
}

static void call_dealloc(PyObject *self)
{
	PyCall *c = (PyCall *)self;

	Py_XDECREF(c->input);
	Py_XDECREF(c->state);
	Py_XDECREF(c->ctype);
	PyObject_Free(self);
}

static PyMethodDef call_methods[] = {
    {"meta", call_meta, METH_O, "meta(key): request metadata (a lower-case header) or None"},
    {"config", call_config, METH_O, "config(key): the function's configuration or None"},
    {"log", call_log, METH_O, "log(line): one line to the tenant's log"},
    {"write", call_write, METH_O, "write(data): append str or bytes to the output"},
    {"fail", call_fail, METH_O, "fail(msg): the call fails with msg (FUNCTION_ERROR)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef call_getset[] = {
    {"input", call_get_input, NULL, "the input bytes", NULL},
    {"state", call_get_state, NULL, "what the app's init(config) returned", NULL},
    {"content_type", call_get_ctype, call_set_ctype, "the output's content type", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject call_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lutf.Call",
    .tp_basicsize = sizeof(PyCall),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One call of a lutf function (valid only during the call).",
    .tp_dealloc = call_dealloc,
    .tp_methods = call_methods,
    .tp_getset = call_getset,
};

/* ---- errors ---- */

/* "Type: message" of the pending exception into buf; the exception stays
 * fetched in *t, *v, *tb (normalized). */
static void exc_text(PyObject **t, PyObject **v, PyObject **tb, char *buf, size_t cap)
{
	PyObject *s;
	const char *m = NULL;

	PyErr_Fetch(t, v, tb);
	PyErr_NormalizeException(t, v, tb);
	s = *v ? PyObject_Str(*v) : NULL;
	if (s)
		m = PyUnicode_AsUTF8(s);
	if (!m)
		PyErr_Clear();
	snprintf(buf, cap, "%s%s%s", *t ? ((PyTypeObject *)*t)->tp_name : "error",
		 m && *m ? ": " : "", m ? m : "");
	Py_XDECREF(s);
}

/* The traceback of (t, v, tb), one log line each; drops the references.
 * After a MemoryError the frames' locals go first (traceback.clear_frames):
 * what the handler piled up is freed before the formatting needs memory. */
static void exc_log(struct lutf_call *call, PyObject *t, PyObject *v, PyObject *tb)
{
	PyObject *mod = PyImport_ImportModule("traceback"), *lines = NULL, *text = NULL;
	const char *s;

	if (mod && tb && t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError)) {
		PyObject *r = PyObject_CallMethod(mod, "clear_frames", "O", tb);

		Py_XDECREF(r);
		PyErr_Clear();
	}
	if (mod)
		lines = PyObject_CallMethod(mod, "format_exception", "OOO", t ? t : Py_None,
					    v ? v : Py_None, tb ? tb : Py_None);
	if (lines) {
		PyObject *empty = PyUnicode_FromString("");

		text = empty ? PyUnicode_Join(empty, lines) : NULL;
		Py_XDECREF(empty);
	}
	if (text && (s = PyUnicode_AsUTF8(text))) {
		while (*s) {
			const char *nl = strchr(s, '\n');
			size_t n = nl ? (size_t)(nl - s) : strlen(s);

			if (call && n)
				call->ops->log(call, s, n);
			s += n + (nl ? 1 : 0);
		}
	}
	PyErr_Clear();
	Py_XDECREF(text);
	Py_XDECREF(lines);
	Py_XDECREF(mod);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
}

/* ---- a call, on a Labor thread ---- */

static void py_ts_drop(void *p)
{
	PyThreadState *ts = p;

	/* A retiring Labor: its thread state goes with it. */
	PyEval_RestoreThread(ts);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
}

static int py_call(struct lutf_call *call)
{
	struct py_fn *f = call->app_state;
	PyObject *res;
	PyCall *c;
	int rc = 0;

	if (!py_ts) {
		/* One thread state per Labor, made without the GIL, kept. */
		py_ts = PyThreadState_New(py_interp);
		if (!py_ts)
			return call->ops->fail(call, "no Python thread state"), 1;
		pthread_setspecific(py_ts_key, py_ts);
	}
	PyEval_RestoreThread(py_ts);
	c = PyObject_New(PyCall, &call_type);
	if (!c) {
		PyErr_Clear();
		py_ts = PyEval_SaveThread();
		return call->ops->fail(call, "MemoryError"), -ENOMEM;
	}
	c->call = call;
	c->input = NULL;
	c->ctype = NULL;
	c->failed = false;
	c->state = Py_NewRef(f->state);
	res = PyObject_CallOneArg(f->callable, (PyObject *)c);
	if (res && res != Py_None && !PyUnicode_Check(res) && !PyObject_CheckBuffer(res)) {
		PyErr_Format(PyExc_TypeError, "a function returns str, bytes or None, not %s",
			     Py_TYPE(res)->tp_name);
		Py_CLEAR(res);
	}
	if (res && res != Py_None && !c->failed && call_put(c, res))
		Py_CLEAR(res);
	if (!res) {
		PyObject *t, *v, *tb;
		char msg[LUTF_ERROR_MSG_MAX + 1];

		exc_text(&t, &v, &tb, msg, sizeof(msg));
		/* A MemoryError out of the handler (raised, or an allocation the
		 * rlimit refused) answers OUT_OF_MEMORY, like the cgroup's OOM
		 * kill of a hog; one the handler catches is its own business. */
		rc = t && PyErr_GivenExceptionMatches(t, PyExc_MemoryError) ? -ENOMEM : 1;
		exc_log(call, t, v, tb);
		call->ops->fail(call, msg);
	}
	if (c->failed && !rc)
		rc = 1;
	Py_XDECREF(res);
	c->call = NULL; /* a handler that kept it gets RuntimeError */
	Py_DECREF(c);
	py_ts = PyEval_SaveThread();
	return rc;
}

/* ---- the interpreter ---- */

static const wchar_t *const py_paths[] = {
    L"/usr/lib/python311.zip", L"/usr/lib/python3.11", L"/usr/lib/python3.11/lib-dynload",
    L"/usr/lib/python3/dist-packages", /* Debian's python3-* packages */
};

/* Start the interpreter in this process; the caller holds the GIL after.
 * 0 or -errno with msg filled. */
static int py_start(char *msg, size_t cap)
{
	PyPreConfig pre;
	PyConfig cfg;
	PyStatus st;

	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1; /* UTF-8 everywhere, whatever the host's locale */
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		goto err_pre;
	PyConfig_InitIsolatedConfig(&cfg);
	cfg.install_signal_handlers = 0; /* the worker's signals are lutf's */
	cfg.site_import = 0;
	cfg.write_bytecode = 0;
	cfg.buffered_stdio = 0;
	cfg.configure_c_stdio = 0;
	cfg.pathconfig_warnings = 0;
	cfg.safe_path = 1;
	cfg.module_search_paths_set = 1;
	for (size_t i = 0; i < sizeof(py_paths) / sizeof(py_paths[0]); i++) {
		st = PyWideStringList_Append(&cfg.module_search_paths, py_paths[i]);
		if (PyStatus_Exception(st))
			goto err;
	}
	st = PyConfig_SetString(&cfg, &cfg.home, L"/usr");
	if (PyStatus_Exception(st))
		goto err;
	st = PyConfig_SetString(&cfg, &cfg.program_name, L"/usr/bin/python3.11");
	if (PyStatus_Exception(st))
		goto err;
	st = PyConfig_SetString(&cfg, &cfg.executable, L"/usr/bin/python3.11");
	if (PyStatus_Exception(st))
		goto err;
	st = Py_InitializeFromConfig(&cfg);
	if (PyStatus_Exception(st))
		goto err;
	PyConfig_Clear(&cfg);
	if (PyType_Ready(&call_type) < 0) {
		PyErr_Clear();
		snprintf(msg, cap, "python: the call type does not initialize");
		return -ENOEXEC;
	}
	py_interp = PyInterpreterState_Get();
	py_started = true;
	return 0;
err:
	PyConfig_Clear(&cfg);
err_pre:
	snprintf(msg, cap, "python does not start: %s%s%s", st.func ? st.func : "",
		 st.func ? ": " : "", st.err_msg ? st.err_msg : "exit");
	return -ENOEXEC;
}

static const char py_warm_src[] =
    "import json\n"
    "class A:\n"
    "    x: int = 1\n"
    "def init(config):\n"
    "    return {'g': config.get('g', 'hello'), 'n': [1, 2.0, None, b'x']}\n"
    "def handle(call, *a, **k):\n"
    "    name = call.input.decode() or 'world'\n"
    "    try:\n"
    "        return json.dumps({'msg': f\"{call.state['g']} {name!r:>3}\"})\n"
    "    except (ValueError, KeyError) as e:\n"
    "        raise RuntimeError(str(e)) from e\n"
    "    finally:\n"
    "        pass\n"
    "squares = [i * i for i in range(10) if i % 2] + list({k: v for k, v in {}.items()})\n";

static const char *const py_preload[] = {"traceback", "zipimport", "json", "time"};

int lutf_python_module_init(void)
{
	char msg[200];
	PyObject *m;

	if (py_started || py_start(msg, sizeof(msg)))
		return py_started ? 0 : -ENOEXEC;
	/* Modules most apps use, imported once here and shared (copy on write)
	 * by every worker: a first load does not read them again. */
	for (size_t i = 0; i < sizeof(py_preload) / sizeof(py_preload[0]); i++) {
		m = PyImport_ImportModule(py_preload[i]);
		Py_XDECREF(m);
		PyErr_Clear();
	}
	/* The compiler's first run costs 10x its next ones (its code and tables
	 * paged in, caches filled): pay it here, once, not in each worker. */
	m = Py_CompileString(py_warm_src, "warm.py", Py_file_input);
	Py_XDECREF(m);
	PyErr_Clear();
	/* Everything so far into the permanent generation: a worker's garbage
	 * collections never walk (and so never copy) the zygote's objects. */
	m = PyImport_ImportModule("gc");
	if (m) {
		PyObject *r = PyObject_CallMethod(m, "freeze", NULL);

		Py_XDECREF(r);
		Py_DECREF(m);
	}
	PyErr_Clear();
	return 0; /* the zygote keeps the GIL: it forks holding it */
}

/* Main thread: take the GIL (finishing the fork or starting the interpreter
 * the first time). 0 or -errno with msg filled. */
static int py_enter(char *msg, size_t cap)
{
	int err;

	if (py_usable) {
		PyEval_RestoreThread(py_main_ts);
		return 0;
	}
	if (py_started) {
		PyOS_AfterFork_Child(); /* forked by the zygote holding the GIL */
	} else if ((err = py_start(msg, cap))) {
		return err;
	}
	if (pthread_key_create(&py_ts_key, py_ts_drop)) {
		snprintf(msg, cap, "python: no thread key");
		py_main_ts = PyEval_SaveThread();
		return -EAGAIN;
	}
	py_usable = true;
	return 0;
}

static void py_leave(void)
{
	py_main_ts = PyEval_SaveThread();
}

/* ---- the loader ---- */

static bool python_match(const unsigned char *head, size_t len)
{
	if (len >= 4 && !memcmp(head, "PK\x03\x04", 4))
		return true; /* a zip */
	if (!len || memchr(head, 0, len))
		return false;
	return len < 4 || memcmp(head,
				 "\x7f"
				 "ELF",
				 4);
}

static int python_load(const char *path, const char *app, const char *const *config,
		       struct lutf_loader_app **out, char *msg, size_t cap)
{
	struct lutf_loader_app *a;
	unsigned char head[4] = {0};
	int fd, err;

	(void)app;
	a = calloc(1, sizeof(*a));
	if (!a)
		return snprintf(msg, cap, "out of memory"), -ENOMEM;
	snprintf(a->path, sizeof(a->path), "%s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, head, sizeof(head)) < 0) {
		snprintf(msg, cap, "cannot read the app: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		free(a);
		return -ENOENT;
	}
	close(fd);
	a->zip = !memcmp(head, "PK\x03\x04", 4);
	if ((err = py_enter(msg, cap))) {
		free(a);
		return err;
	}
	a->config = PyDict_New();
	for (size_t i = 0; a->config && config && config[i] && config[i + 1]; i += 2) {
		PyObject *v = PyUnicode_DecodeUTF8(config[i + 1], (Py_ssize_t)strlen(config[i + 1]),
						   "replace");

		if (!v || PyDict_SetItemString(a->config, config[i], v))
			Py_CLEAR(a->config);
		Py_XDECREF(v);
	}
	if (!a->config) {
		PyErr_Clear();
		py_leave();
		free(a);
		return snprintf(msg, cap, "out of memory"), -ENOMEM;
	}
	py_leave();
	*out = a;
	return 0;
}

/* Remove from sys.modules what the app's import added of its own (the
 * module itself, and for a zip every module that came from it), so that
 * another app's module of the same name is another module. GIL held. */
static void forget_app_modules(struct lutf_loader_app *a, PyObject *before, const char *name)
{
	PyObject *mods = PyImport_GetModuleDict(), *keys = PyDict_Keys(mods);
	size_t pl = strlen(a->path);

	for (Py_ssize_t i = 0; keys && i < PyList_GET_SIZE(keys); i++) {
		PyObject *k = PyList_GET_ITEM(keys, i), *m, *file;
		const char *f = NULL, *kn = PyUnicode_AsUTF8(k);
		bool own;

		if (PySet_Contains(before, k) == 1)
			continue;
		m = PyDict_GetItem(mods, k);
		file = m ? PyObject_GetAttrString(m, "__file__") : NULL;
		if (file && PyUnicode_Check(file))
			f = PyUnicode_AsUTF8(file);
		own = (kn && !strcmp(kn, name)) || (f && !strncmp(f, a->path, pl));
		Py_XDECREF(file);
		PyErr_Clear();
		if (own)
			PyDict_DelItem(mods, k);
	}
	PyErr_Clear();
	Py_XDECREF(keys);
}

/* The whole file, NUL-terminated (lutfd stores at most a frame's payload),
 * or NULL with a Python exception set. */
static char *read_source(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!fp || fseek(fp, 0, SEEK_END) || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		PyErr_SetFromErrnoWithFilename(buf ? PyExc_OSError : PyExc_MemoryError, path);
		free(buf);
		buf = NULL;
	} else {
		buf[n] = 0;
	}
	if (fp)
		fclose(fp);
	return buf;
}

/* The app's module: a .py app's source run as module name, or name imported
 * from a zip app. New reference, or NULL with a Python exception. GIL held. */
static PyObject *import_app_module(struct lutf_loader_app *a, const char *name)
{
	PyObject *mods = PyImport_GetModuleDict(), *before, *mod = NULL;
	PyObject *sys_path = PySys_GetObject("path"), *entry, *t, *v, *tb;

	/* Only a zip brings modules of its own into sys.modules (a .py app's
	 * one module is taken out below): only a zip needs what was there
	 * before, a set whose making touches (and so copies from the zygote)
	 * every module's name: ~0.2 ms of a cold start. */
	before = a->zip ? PySet_New(mods) : NULL;
	entry = PyUnicode_DecodeFSDefault(a->path);
	if ((a->zip && !before) || !entry || !sys_path)
		goto out;
	if (a->zip) {
		if (PyList_Insert(sys_path, 0, entry))
			goto out;
		PyObject *cache;
		Py_ssize_t at;

		mod = PyImport_ImportModule(name);
		/* The zip leaves sys.path (and its finder cache) again, wherever
		 * the app's own import moved it. */
		PyErr_Fetch(&t, &v, &tb);
		at = PySequence_Index(sys_path, entry);
		if (at < 0 || PySequence_DelItem(sys_path, at))
			PyErr_Clear();
		PyErr_Restore(t, v, tb);
		cache = PySys_GetObject("path_importer_cache");
		PyErr_Fetch(&t, &v, &tb);
		if (cache && PyDict_DelItem(cache, entry))
			PyErr_Clear();
		PyErr_Restore(t, v, tb);
		if (!mod)
			goto out;
	} else {
		char file[160];
		PyObject *code = NULL, *dict;
		/* A module of that name already loaded (a stdlib one: "json") is
		 * shadowed only while the app's source runs, then put back. */
		PyObject *prev = Py_XNewRef(PyDict_GetItemString(mods, name));
		char *src = read_source(a->path);

		snprintf(file, sizeof(file), "%s.py", name);
		if (src)
			code = Py_CompileString(src, file, Py_file_input);
		free(src);
		mod = code ? PyModule_New(name) : NULL;
		dict = mod ? PyModule_GetDict(mod) : NULL;
		if (dict && (PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) ||
			     PyModule_AddStringConstant(mod, "__file__", file) ||
			     PyDict_SetItemString(mods, name, mod))) {
			Py_CLEAR(mod);
		} else if (dict) {
			PyObject *r = PyEval_EvalCode(code, dict, dict);

			if (!r)
				Py_CLEAR(mod);
			Py_XDECREF(r);
		}
		Py_XDECREF(code);
		PyErr_Fetch(&t, &v, &tb);
		if (prev ? PyDict_SetItemString(mods, name, prev)
			 : PyDict_DelItemString(mods, name))
			PyErr_Clear();
		PyErr_Restore(t, v, tb);
		Py_XDECREF(prev);
	}
out:
	if (before) {
		PyErr_Fetch(&t, &v, &tb);
		forget_app_modules(a, before, name);
		PyErr_Restore(t, v, tb);
	}
	Py_XDECREF(before);
	Py_XDECREF(entry);
	return mod;
}

/* The module's entry of a (imported and init run on first use). NULL with
 * msg filled. GIL held. */
static struct py_mod *app_module(struct lutf_loader_app *a, const char *name, char *msg, size_t cap)
{
	struct py_mod *m;
	PyObject *init, *t, *v, *tb;
	char why[LUTF_ERROR_MSG_MAX + 1];

	for (int i = 0; i < a->nmods; i++)
		if (!strcmp(a->mods[i].name, name))
			return &a->mods[i];
	if (!a->zip && a->nmods) {
		snprintf(msg, cap, "a .py app is one module: '%s', not '%s'", a->mods[0].name,
			 name);
		return NULL;
	}
	if (a->nmods == PY_MODS) {
		snprintf(msg, cap, "at most %d modules per app", PY_MODS);
		return NULL;
	}
	m = &a->mods[a->nmods];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->mod = import_app_module(a, name);
	if (!m->mod) {
		exc_text(&t, &v, &tb, why, sizeof(why));
		exc_log(NULL, t, v, tb);
		snprintf(msg, cap, "import %s: %s", name, why);
		return NULL;
	}
	init = PyObject_GetAttrString(m->mod, "init");
	PyErr_Clear();
	if (init && PyCallable_Check(init)) {
		m->state = PyObject_CallOneArg(init, a->config);
		if (!m->state) {
			exc_text(&t, &v, &tb, why, sizeof(why));
			exc_log(NULL, t, v, tb);
			snprintf(msg, cap, "%s.init raised %s", name, why);
			Py_DECREF(init);
			Py_CLEAR(m->mod);
			return NULL;
		}
	} else {
		m->state = Py_NewRef(Py_None);
	}
	Py_XDECREF(init);
	a->nmods++;
	return m;
}

static int python_find(struct lutf_loader_app *a, const char *symbol, const char *const *config,
		       struct lutf_fn_binding *out, char *msg, size_t cap)
{
	const char *colon = strchr(symbol, ':');
	char mod[128];
	struct py_mod *m;
	struct py_fn *f;
	PyObject *fn;
	int err;

	if (!colon || colon == symbol || !colon[1] || (size_t)(colon - symbol) >= sizeof(mod)) {
		snprintf(msg, cap, "export '%s' is not \"module:function\"", symbol);
		return -EINVAL;
	}
	memcpy(mod, symbol, (size_t)(colon - symbol));
	mod[colon - symbol] = 0;
	if ((err = py_enter(msg, cap)))
		return err;
	m = app_module(a, mod, msg, cap);
	if (!m) {
		py_leave();
		return -ENOEXEC;
	}
	fn = PyObject_GetAttrString(m->mod, colon + 1);
	if (!fn || !PyCallable_Check(fn)) {
		PyErr_Clear();
		Py_XDECREF(fn);
		py_leave();
		snprintf(msg, cap, "no function '%s' in module %s", colon + 1, mod);
		return -ESRCH;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		Py_DECREF(fn);
		py_leave();
		return snprintf(msg, cap, "out of memory"), -ENOMEM;
	}
	f->callable = fn;
	f->state = Py_NewRef(m->state);
	py_leave();
	out->fn = py_call;
	out->app_state = f;
	out->config = config;
	return 0;
}

static void python_unload(struct lutf_loader_app *a)
{
	char msg[160]; /* py_enter fills a reason; unused here */

	/* Found functions of a failed load leak their py_fn: a few bytes, once. */
	if (!py_enter(msg, sizeof(msg))) {
		for (int i = 0; i < a->nmods; i++) {
			Py_XDECREF(a->mods[i].mod);
			Py_XDECREF(a->mods[i].state);
		}
		Py_XDECREF(a->config);
		py_leave();
	}
	free(a);
}

const struct lutf_loader lutf_loader_python = {
    .kind = "python",
    .match = python_match,
    .load = python_load,
    .find = python_find,
    .unload = python_unload,
};
