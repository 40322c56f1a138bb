/* SPDX-License-Identifier: MIT */
/*
 * labor_watch loader: loads the sched_switch probe (tp_btf, else raw_tp), pins
 * its maps, keeps the tid -> slot table and the tgid filter in step, and maps
 * labor_state so the Supervisor reads Labor states without syscalls.
 * Invariant: a tid is in labor_tids only while its slot holds that tid, and a
 * tgid bucket bit is set while any registered slot's tgid falls in it.
 */
#define _GNU_SOURCE
#include "labor_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>
#include <sys/syscall.h>

#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "labor_watch.skel.h"

_Static_assert(sizeof(struct labor_watch_slot) == 64, "one cache line per Labor slot");
_Static_assert(sizeof(struct labor_watch_event) == 24, "ring buffer record layout");
_Static_assert(sizeof(struct labor_watch_counters) == 64, "per-CPU counter layout");
_Static_assert(sizeof(struct labor_watch_tid) == 56, "tid and task storage value layout");
_Static_assert(LW_SLOTS_PER_PAGE * sizeof(struct labor_watch_slot) == 4096,
	       "a lent block is whole pages");
_Static_assert((LW_TGID_BITS & (LW_TGID_BITS - 1)) == 0, "tgid buckets: a power of two");

#define LW_BPFFS_ROOT "/sys/fs/bpf"
#define LW_PIDFD_THREAD O_EXCL /* PIDFD_THREAD (Linux 6.9): a pidfd for one thread */

struct lutf_lw {
	struct labor_watch *skel;
	struct bpf_program *prog;	/* the attached one */
	const char *kind;		/* "tp_btf" or "raw_tp" */
	bool use_task;			/* tp_btf: the probe finds Labors in labor_task */
	struct labor_watch_slot *slots; /* MAP_SHARED view of labor_state */
	size_t slots_len;
	uint32_t max;
	struct ring_buffer *rb;
	char pin_dir[PATH_MAX]; /* "" when unpinned */

	pthread_mutex_t lock; /* register/unregister/grace: used[], rsv[], cursor, filter */
	uint8_t *used;
	uint8_t *rsv;	   /* 1: in a block reserved for one runtime (lutf_lw_block_reserve) */
	uint8_t *own_cart; /* 1: registered with a cart hint (the slot's cart may be stale) */
	uint32_t cursor;   /* next slot to try: freed slots are reused last */

	/* Owned by the sleeping thread; register resets an entry (relaxed). */
	uint64_t *seen_seq;
	int new_blocks; /* set by lw_on_event during one poll */
	int wait_epfd;	/* lutf_lw_sleep_fd: ring buffer + the caller's fd; valid if wait_ready */
	int wait_extra;
	bool wait_ready;
	void (*on_event)(void *ctx, const struct labor_watch_event *ev);
	void *event_ctx;
};

struct lw_pin {
	const char *name;
	size_t map_off; /* offset of the struct bpf_map * in skel->maps */
};

/* Pin names: what `bpftool map dump pinned <dir>/<name>` takes. */
static const struct lw_pin lw_pins[] = {
    {"labor_state", offsetof(struct labor_watch, maps.labor_state)},
    {"labor_tids", offsetof(struct labor_watch, maps.labor_tids)},
    {"labor_events", offsetof(struct labor_watch, maps.labor_events)},
    {"labor_counters", offsetof(struct labor_watch, maps.labor_counters)},
    {"labor_globals", offsetof(struct labor_watch, maps.data)},
    {"labor_task", offsetof(struct labor_watch, maps.labor_task)}, /* tp_btf only: last */
};
#define LW_NPINS (sizeof(lw_pins) / sizeof(lw_pins[0]))

static struct bpf_map *lw_pin_map(struct labor_watch *skel, size_t i)
{
	return *(struct bpf_map **)((char *)skel + lw_pins[i].map_off);
}

/* The raw_tp twin runs without task storage: its map is not even created. */
static size_t lw_npins(const struct lutf_lw *lw)
{
	return lw->use_task ? LW_NPINS : LW_NPINS - 1;
}

static bool lw_env_is(const char *name, const char *val)
{
	const char *v = getenv(name);

	return v && strcmp(v, val) == 0;
}

/* libbpf's own lines (verifier logs) only with LUTF_LABOR_WATCH_DEBUG=1, so that
 * a failed open prints one line of ours. */
static int lw_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!lw_env_is("LUTF_LABOR_WATCH_DEBUG", "1"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/*
 * Make dir usable for pins: /sys/fs/bpf mounted as bpffs (mounting it if
 * needed), dir created. Returns 0 or -errno; the caller then runs unpinned.
 */
static int lw_prepare_pin_dir(const char *dir, char *why, size_t why_len)
{
	char parent[PATH_MAX];
	struct statfs sfs;
	char *slash;

	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return -ENAMETOOLONG;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent) {
		snprintf(why, why_len, "%s is not inside a bpf filesystem", dir);
		return -EINVAL;
	}
	*slash = '\0';
	if (strcmp(parent, LW_BPFFS_ROOT) == 0 &&
	    (statfs(LW_BPFFS_ROOT, &sfs) != 0 || sfs.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", LW_BPFFS_ROOT, "bpf", 0, "mode=0700") != 0) {
			int e = errno;

			snprintf(why, why_len, "mount bpffs on %s: %s", LW_BPFFS_ROOT, strerror(e));
			return -e;
		}
		fprintf(stderr, "labor_watch: %s was not a bpf filesystem: mounted bpffs there\n",
			LW_BPFFS_ROOT);
	}
	if (statfs(parent, &sfs) != 0 || sfs.f_type != BPF_FS_MAGIC) {
		snprintf(why, why_len, "%s is not a bpf filesystem", parent);
		return -ENOTSUP;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int e = errno;

		snprintf(why, why_len, "mkdir %s: %s", dir, strerror(e));
		return -e;
	}
	return 0;
}

static int lw_pin_path(const char *dir, const char *name, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Remove pins of our names left by a process that died: a restart never reuses
 * old maps. Returns 0 or -errno. */
static int lw_unlink_stale(const char *dir, char *why, size_t why_len)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < LW_NPINS; i++) {
		int r = lw_pin_path(dir, lw_pins[i].name, path, sizeof(path));

		if (r)
			return r;
		if (unlink(path) != 0 && errno != ENOENT) {
			r = -errno;
			snprintf(why, why_len, "unlink stale %s: %s", path, strerror(-r));
			return r;
		}
	}
	return 0;
}

static void lw_unpin_all(struct lutf_lw *lw)
{
	for (size_t i = 0; i < lw_npins(lw); i++) {
		struct bpf_map *m = lw_pin_map(lw->skel, i);

		if (bpf_map__is_pinned(m))
			bpf_map__unpin(m, NULL);
	}
}

/* Returns 0 or -errno (and unpins what it pinned). */
static int lw_pin_all(struct lutf_lw *lw, char *why, size_t why_len)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < lw_npins(lw); i++) {
		int r = lw_pin_path(lw->pin_dir, lw_pins[i].name, path, sizeof(path));

		if (!r)
			r = bpf_map__pin(lw_pin_map(lw->skel, i), path);
		if (r) {
			snprintf(why, why_len, "pin %s: %s", path, strerror(-r));
			lw_unpin_all(lw);
			return r;
		}
	}
	return 0;
}

/* Open, size, load and attach one attach kind. Returns 0 or -errno, with the
 * failed step in why. */
static int lw_load(struct lutf_lw *lw, bool raw, uint64_t grace_ns, char *why, size_t why_len)
{
	struct labor_watch *skel;
	struct bpf_program *use, *skip;
	const char *step;
	int r;

	lw->kind = raw ? "raw_tp" : "tp_btf";
	skel = labor_watch__open();
	if (!skel) {
		r = errno ? -errno : -ENOMEM;
		step = "open";
		goto err;
	}
	use = raw ? skel->progs.lw_switch_raw : skel->progs.lw_switch_btf;
	skip = raw ? skel->progs.lw_switch_btf : skel->progs.lw_switch_raw;
	step = "configure";
	r = bpf_program__set_autoload(skip, false);
	if (!r)
		r = bpf_map__set_max_entries(skel->maps.labor_state, lw->max);
	if (!r)
		r = bpf_map__set_max_entries(skel->maps.labor_tids, lw->max);
	/* raw_tp has no trusted task pointer for task storage, and a kernel
	 * without task storage (before 5.11) would refuse the whole object. */
	if (!r && raw)
		r = bpf_map__set_autocreate(skel->maps.labor_task, false);
	if (r)
		goto err;
	/* Before load: the initial image of .data. */
	skel->data->lw_grace_ns = grace_ns;
	step = "load";
	r = labor_watch__load(skel);
	if (r)
		goto err;
	step = "attach";
	r = labor_watch__attach(skel);
	if (r)
		goto err;
	lw->skel = skel;
	lw->prog = use;
	lw->use_task = !raw;
	return 0;
err:
	snprintf(why, why_len, "%s %s: %s", lw->kind, step, strerror(r < 0 ? -r : r));
	labor_watch__destroy(skel);
	return r < 0 ? r : -r;
}

static int lw_on_event(void *ctx, void *data, size_t size)
{
	struct lutf_lw *lw = ctx;
	const struct labor_watch_event *ev = data;

	if (size < sizeof(*ev) || ev->slot >= lw->max)
		return 0;
	/* Relaxed: seen_seq belongs to this (the sleeping) thread. A block that
	 * the re-scan already counted arrives here with the same seq. */
	if (ev->block_seq > __atomic_load_n(&lw->seen_seq[ev->slot], __ATOMIC_RELAXED)) {
		__atomic_store_n(&lw->seen_seq[ev->slot], ev->block_seq, __ATOMIC_RELAXED);
		lw->new_blocks++;
	}
	if (lw->on_event)
		lw->on_event(lw->event_ctx, ev);
	return 0;
}

static void lw_free(struct lutf_lw *lw)
{
	if (lw->wait_ready)
		close(lw->wait_epfd);
	if (lw->rb)
		ring_buffer__free(lw->rb);
	if (lw->slots)
		munmap(lw->slots, lw->slots_len);
	if (lw->skel) {
		if (lw->pin_dir[0]) {
			lw_unpin_all(lw);
			rmdir(lw->pin_dir); /* fails harmlessly if someone else's pins are there */
		}
		labor_watch__destroy(lw->skel);
	}
	pthread_mutex_destroy(&lw->lock);
	free(lw->used);
	free(lw->rsv);
	free(lw->own_cart);
	free(lw->seen_seq);
	free(lw);
}

/* Thread pidfds (Linux 6.9) are how task storage entries are put on Labor
 * threads; without them the tp_btf program could not find any. */
static bool lw_thread_pidfds_work(void)
{
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)syscall(SYS_gettid), LW_PIDFD_THREAD);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_open(const struct lutf_lw_opts *o, struct lutf_lw **out)
{
	static const struct lutf_lw_opts defaults = {0};
	libbpf_print_fn_t old_print;
	char why[PATH_MAX + 128] = "", why2[256] = "", pin_why[PATH_MAX + 128] = "";
	const char *pin_dir;
	struct lutf_lw *lw;
	bool raw, pin = false;
	uint64_t grace;
	long page;
	int r, fd;

	*out = NULL;
	if (lw_env_is("LUTF_LABOR_WATCH", "off")) {
		fprintf(stderr, "labor_watch: disabled by LUTF_LABOR_WATCH=off: falling back to "
				"polling\n");
		return -EPERM;
	}
	if (!o)
		o = &defaults;
	pin_dir = o->pin_dir ? o->pin_dir : LUTF_LW_DEFAULT_PIN_DIR;
	grace = o->grace_ns ? o->grace_ns : LW_DEFAULT_GRACE_NS;
	raw = o->force_raw_tp || lw_env_is("LUTF_LABOR_WATCH_RAW_TP", "1") ||
	      !lw_thread_pidfds_work();

	lw = calloc(1, sizeof(*lw));
	if (!lw) {
		fprintf(stderr, "labor_watch: cannot load BPF (out of memory): falling back to "
				"polling\n");
		return -ENOMEM;
	}
	pthread_mutex_init(&lw->lock, NULL);
	lw->max = o->max_labors ? o->max_labors : LW_DEFAULT_SLOTS;
	lw->on_event = o->on_event;
	lw->event_ctx = o->event_ctx;
	if (lw->max > LW_MAX_SLOTS || strlen(pin_dir) >= sizeof(lw->pin_dir) - 32) {
		snprintf(why, sizeof(why), "bad options: max_labors %u, pin_dir length %zu",
			 lw->max, strlen(pin_dir));
		r = -EINVAL;
		goto err;
	}
	lw->used = calloc(lw->max, sizeof(*lw->used));
	lw->rsv = calloc(lw->max, sizeof(*lw->rsv));
	lw->own_cart = calloc(lw->max, sizeof(*lw->own_cart));
	lw->seen_seq = calloc(lw->max, sizeof(*lw->seen_seq));
	if (!lw->used || !lw->rsv || !lw->own_cart || !lw->seen_seq) {
		snprintf(why, sizeof(why), "out of memory");
		r = -ENOMEM;
		goto err;
	}

	/* Pins: make the folder and clear stale pins before load (a failure here
	 * only means running unpinned). */
	pin = pin_dir[0] != '\0';
	if (pin && (lw_prepare_pin_dir(pin_dir, pin_why, sizeof(pin_why)) ||
		    lw_unlink_stale(pin_dir, pin_why, sizeof(pin_why))))
		pin = false;

	old_print = libbpf_set_print(lw_libbpf_print);
	r = lw_load(lw, raw, grace, why, sizeof(why));
	if (r && !raw) {
		/* No BTF trampolines here (or tp_btf refused): try the twin. */
		r = lw_load(lw, true, grace, why2, sizeof(why2));
		if (r) {
			size_t n = strlen(why);

			snprintf(why + n, sizeof(why) - n, "; %s", why2);
		}
	}
	libbpf_set_print(old_print);
	if (r)
		goto err;

	fd = bpf_map__fd(lw->skel->maps.labor_state);
	page = sysconf(_SC_PAGESIZE);
	lw->slots_len = ((size_t)lw->max * sizeof(struct labor_watch_slot) + (size_t)page - 1) &
			~((size_t)page - 1);
	lw->slots = mmap(NULL, lw->slots_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (lw->slots == MAP_FAILED) {
		r = -errno;
		lw->slots = NULL;
		snprintf(why, sizeof(why), "mmap labor_state: %s", strerror(-r));
		goto err;
	}
	lw->rb = ring_buffer__new(bpf_map__fd(lw->skel->maps.labor_events), lw_on_event, lw, NULL);
	if (!lw->rb) {
		r = errno ? -errno : -ENOMEM;
		snprintf(why, sizeof(why), "ring buffer: %s", strerror(-r));
		goto err;
	}

	if (pin) {
		snprintf(lw->pin_dir, sizeof(lw->pin_dir), "%s", pin_dir);
		if (lw_pin_all(lw, pin_why, sizeof(pin_why))) {
			rmdir(lw->pin_dir);
			lw->pin_dir[0] = '\0';
			pin = false;
		}
	}
	if (!pin && pin_dir[0])
		fprintf(stderr, "labor_watch: warning: running unpinned (%s)\n", pin_why);
	*out = lw;
	return 0;
err:
	fprintf(stderr, "labor_watch: cannot load BPF (%s): falling back to polling\n", why);
	if (pin && !lw->pin_dir[0])
		rmdir(pin_dir); /* made by lw_prepare_pin_dir; only if still empty */
	lw_free(lw);
	return r;
}

/* See labor_watch.h. */
void lutf_lw_close(struct lutf_lw *lw)
{
	if (lw)
		lw_free(lw);
}

/* Recompute the filter word holding tgid's bucket from the registered slots.
 * Called with lw->lock held; the only writer of lw_tgid_bits. */
static void lw_filter_update(struct lutf_lw *lw, uint32_t tgid)
{
	uint32_t b = tgid & (LW_TGID_BITS - 1), word = b / 64;
	uint64_t bits = 0;

	for (uint32_t i = 0; i < lw->max; i++) {
		uint32_t t;

		if (!lw->used[i])
			continue;
		/* Relaxed: we wrote it, under this lock. */
		t = __atomic_load_n(&lw->slots[i].tgid, __ATOMIC_RELAXED) & (LW_TGID_BITS - 1);
		if (t / 64 == word)
			bits |= 1ULL << (t % 64);
	}
	/* Release: pairs with the probe's relaxed read in lw_tgid_watched(); the
	 * labor_tids update before it was a syscall, so a probe that sees the bit
	 * finds the tid. */
	__atomic_store_n(&lw->skel->data->lw_tgid_bits[word], bits, __ATOMIC_RELEASE);
}

/* A pidfd for thread tid that is a thread of tgid, or -errno. The number alone
 * proves nothing (it may have been reused): the pidfd is opened first, then
 * tgid's task folder for tid is looked up, then the pidfd is checked to be
 * alive. A live task keeps its number, so the folder found was that task's. */
static int lw_thread_pidfd(pid_t tgid, pid_t tid)
{
	struct pollfd pfd;
	char path[48];
	int fd, r;

	fd = (int)syscall(SYS_pidfd_open, tid, LW_PIDFD_THREAD);
	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)tid);
	if (access(path, F_OK) != 0) {
		r = -ESRCH;
		goto err;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 0) != 0) { /* readable: the thread has exited */
		r = -ESRCH;
		goto err;
	}
	return fd;
err:
	close(fd);
	return r;
}

/* tp_btf: put the slot's value on the task (labor_task). A thread that does
 * not exist (or is not tgid's) cannot switch as a Labor, so it needs no entry:
 * 0. Returns 0 or -errno. */
static int lw_task_add(struct lutf_lw *lw, pid_t tgid, pid_t tid, const struct labor_watch_tid *val)
{
	int fd, r = 0;

	if (!lw->use_task)
		return 0;
	fd = lw_thread_pidfd(tgid, tid);
	if (fd == -ESRCH)
		return 0;
	if (fd < 0)
		return fd;
	/* BPF_ANY: an entry of an earlier registration of this live thread is
	 * replaced. The key of a task storage map is a pidfd. */
	if (bpf_map_update_elem(bpf_map__fd(lw->skel->maps.labor_task), &fd, val, BPF_ANY))
		r = -errno;
	close(fd);
	return r;
}

/* tp_btf: drop slot's entry from its task, if the task (still) holds it. */
static void lw_task_del(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint32_t slot)
{
	struct labor_watch_tid val;
	int fd, mfd;

	if (!lw->use_task)
		return;
	fd = lw_thread_pidfd(tgid, tid);
	if (fd < 0)
		return; /* gone: the kernel freed its storage with it */
	mfd = bpf_map__fd(lw->skel->maps.labor_task);
	/* Only our slot's entry: the tid may name a newer registration. */
	if (bpf_map_lookup_elem(mfd, &fd, &val) == 0 && val.slot == slot)
		bpf_map_delete_elem(mfd, &fd);
	close(fd);
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_register(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint32_t *slot)
{
	return lutf_lw_register_busy(lw, tgid, tid, 0, 0, slot);
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_register_busy(struct lutf_lw *lw, pid_t tgid, pid_t tid, uint64_t busy_uaddr,
			  uint32_t busy_value, uint32_t *slot)
{
	struct lutf_lw_hints h = {.busy_uaddr = busy_uaddr, .busy_value = busy_value};

	return lutf_lw_register_hints(lw, tgid, tid, &h, slot);
}

/* Register in [lo, lo + span): a reserved block (in_block) or the global
 * slots (lo 0, span max; reserved slots skipped). Returns 0 or -errno. */
static int lw_register(struct lutf_lw *lw, uint32_t lo, uint32_t span, bool in_block, pid_t tgid,
		       pid_t tid, const struct lutf_lw_hints *h, uint32_t *slot)
{
	struct labor_watch_slot *s;
	struct labor_watch_tid val = {0};
	uint32_t key = (uint32_t)tid, i, n;
	int r;

	if (tgid <= 0 || tid <= 0 || !h || span == 0 || lo >= lw->max || span > lw->max - lo)
		return -EINVAL;
	val.busy_value = h->busy_value;
	val.busy_uaddr = h->busy_uaddr;
	val.spin_uaddr = h->spin_uaddr;
	/* A Cart's words: both inside one stride, or no work hint at all. */
	if (h->work_uaddr && h->work_carts && h->work_stride &&
	    (uint64_t)h->work_deq_off + sizeof(uint64_t) <= h->work_stride) {
		val.work_uaddr = h->work_uaddr;
		val.work_stride = h->work_stride;
		val.work_carts = h->work_carts;
		val.work_deq_off = h->work_deq_off;
		/* The probe bounds the Labor's own Cart word by work_carts. */
		val.cart_uaddr = h->cart_uaddr;
	}
	pthread_mutex_lock(&lw->lock);
	if (in_block) {
		for (n = 0; n < span; n++)
			if (!lw->rsv[lo + n]) {
				r = -EINVAL; /* not (all) reserved: not a block */
				goto out;
			}
		for (n = 0, i = lo; n < span && lw->used[i]; n++, i++)
			;
	} else {
		/* The global allocator: round-robin, never a reserved slot. */
		for (n = 0, i = lw->cursor; n < lw->max; n++, i = (i + 1) % lw->max) {
			if (!lw->used[i] && !lw->rsv[i])
				break;
		}
	}
	if (n == span) {
		r = -ENOSPC;
		goto out;
	}
	s = &lw->slots[i];
	/*
	 * The slot is free: not in labor_tids and tid 0, so the probe does not
	 * write it (but for a lookup that raced its unregister; slot.tid guards
	 * that, and round-robin reuse makes it far in time). Relaxed stores; the
	 * release store of tid and the map update (a syscall) publish them.
	 */
	__atomic_store_n(&s->tgid, (uint32_t)tgid, __ATOMIC_RELAXED);
	__atomic_store_n(&s->cart, LW_NO_CART, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, LW_STATE_IDLE, __ATOMIC_RELAXED);
	__atomic_store_n(&s->block_seq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_block_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_wake_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_off_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->offcpu_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->blocks, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->preemptions, 0, __ATOMIC_RELAXED);
	/* Pairs with the probe's read of slot.tid in lw_slot_of(). */
	__atomic_store_n(&s->tid, key, __ATOMIC_RELEASE);
	/* Relaxed: read by the sleeping thread, which tolerates a stale value. */
	__atomic_store_n(&lw->seen_seq[i], 0, __ATOMIC_RELAXED);
	val.slot = i;
	if (bpf_map_update_elem(bpf_map__fd(lw->skel->maps.labor_tids), &key, &val, BPF_NOEXIST)) {
		r = -errno;
		__atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE); /* as above */
		goto out;
	}
	r = lw_task_add(lw, tgid, tid, &val);
	if (r) {
		bpf_map_delete_elem(bpf_map__fd(lw->skel->maps.labor_tids), &key);
		__atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE); /* as above */
		goto out;
	}
	lw->used[i] = 1;
	/* Relaxed: read by lw_rescan, which tolerates a stale value (one
	 * block found a tick late). */
	__atomic_store_n(&lw->own_cart[i], val.cart_uaddr != 0, __ATOMIC_RELAXED);
	if (!in_block)
		lw->cursor = (i + 1) % lw->max;
	lw_filter_update(lw, (uint32_t)tgid);
	*slot = i;
	r = 0;
out:
	pthread_mutex_unlock(&lw->lock);
	return r;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_register_hints(struct lutf_lw *lw, pid_t tgid, pid_t tid, const struct lutf_lw_hints *h,
			   uint32_t *slot)
{
	return lw_register(lw, 0, lw->max, false, tgid, tid, h, slot);
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_register_in(struct lutf_lw *lw, uint32_t first, uint32_t count, pid_t tgid, pid_t tid,
			const struct lutf_lw_hints *h, uint32_t *slot)
{
	return lw_register(lw, first, count, true, tgid, tid, h, slot);
}

/* See labor_watch.h. Returns 0 or -errno. First fit over whole pages whose
 * slots are all free and unreserved. */
int lutf_lw_block_reserve(struct lutf_lw *lw, uint32_t want, uint32_t *first, uint32_t *count)
{
	uint32_t pages, npages = lw->max / LW_SLOTS_PER_PAGE, run = 0;
	int r = -ENOSPC;

	if (want == 0)
		return -EINVAL;
	if (lw_env_is("LUTF_LABOR_WATCH_LEND", "off"))
		return -EPERM;
	pages = (want + LW_SLOTS_PER_PAGE - 1) / LW_SLOTS_PER_PAGE;
	pthread_mutex_lock(&lw->lock);
	for (uint32_t p = 0; p < npages; p++) {
		bool free_page = true;

		for (uint32_t k = 0; k < LW_SLOTS_PER_PAGE && free_page; k++) {
			uint32_t i = p * LW_SLOTS_PER_PAGE + k;

			free_page = !lw->used[i] && !lw->rsv[i];
		}
		run = free_page ? run + 1 : 0;
		if (run == pages) {
			uint32_t lo = (p + 1 - pages) * LW_SLOTS_PER_PAGE;

			memset(lw->rsv + lo, 1, (size_t)pages * LW_SLOTS_PER_PAGE);
			*first = lo;
			*count = pages * LW_SLOTS_PER_PAGE;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lw->lock);
	return r;
}

/* See labor_watch.h. */
void lutf_lw_block_release(struct lutf_lw *lw, uint32_t first, uint32_t count)
{
	if (first >= lw->max || count > lw->max - first)
		return;
	pthread_mutex_lock(&lw->lock);
	memset(lw->rsv + first, 0, count);
	pthread_mutex_unlock(&lw->lock);
}

/* See labor_watch.h. Returns an fd or -errno. A plain duplicate: a
 * BPF_F_RDONLY fd cannot be mapped at all on Linux 6.18 (a read-only file's
 * shared mapping loses VM_SHARED in do_mmap, and bpf_map_mmap refuses a
 * mapping without it: EINVAL), so the read-only property is the mapping's:
 * PROT_READ, and bpf_map_mmap then clears VM_MAYWRITE. */
int lutf_lw_state_fd_lend(struct lutf_lw *lw)
{
	int fd = fcntl(bpf_map__fd(lw->skel->maps.labor_state), F_DUPFD_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_unregister(struct lutf_lw *lw, uint32_t slot)
{
	struct labor_watch_slot *s;
	uint32_t key;
	int r = 0;

	if (slot >= lw->max)
		return -EINVAL;
	pthread_mutex_lock(&lw->lock);
	if (!lw->used[slot]) {
		r = -ENOENT;
		goto out;
	}
	s = &lw->slots[slot];
	key = __atomic_load_n(&s->tid, __ATOMIC_RELAXED); /* we wrote it, under this lock */
	if (bpf_map_delete_elem(bpf_map__fd(lw->skel->maps.labor_tids), &key) && errno != ENOENT)
		r = -errno; /* cannot happen for a key we inserted; free the slot anyway */
	lw_task_del(lw, (pid_t)__atomic_load_n(&s->tgid, __ATOMIC_RELAXED), (pid_t)key, slot);
	/* Release stores; pair with the probe's reads in lw_slot_of()/lw_switch_out():
	 * a lookup that raced the delete finds tid 0 or no Cart. */
	__atomic_store_n(&s->cart, LW_NO_CART, __ATOMIC_RELEASE);
	__atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE);
	lw->used[slot] = 0;
	lw_filter_update(lw, __atomic_load_n(&s->tgid, __ATOMIC_RELAXED));
out:
	pthread_mutex_unlock(&lw->lock);
	return r;
}

/* See labor_watch.h. */
void lutf_lw_set_cart(struct lutf_lw *lw, uint32_t slot, uint32_t cart)
{
	if (slot >= lw->max)
		return;
	/* Release: pairs with the probe's read of slot.cart in lw_switch_out(). */
	__atomic_store_n(&lw->slots[slot].cart, cart, __ATOMIC_RELEASE);
}

/* See labor_watch.h. */
const struct labor_watch_slot *lutf_lw_slot(struct lutf_lw *lw, uint32_t slot)
{
	return slot < lw->max ? &lw->slots[slot] : NULL;
}

/* See labor_watch.h. Returns 0 or -EINVAL. */
int lutf_lw_read(struct lutf_lw *lw, uint32_t slot, struct labor_watch_slot *out)
{
	const struct labor_watch_slot *s;

	if (slot >= lw->max)
		return -EINVAL;
	s = &lw->slots[slot];
	/* Acquire on state: pairs with the probe's exchange (block) or its last
	 * store (wake, x86 TSO), so the fields below are at least that new. */
	out->state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	out->tid = __atomic_load_n(&s->tid, __ATOMIC_RELAXED);
	out->tgid = __atomic_load_n(&s->tgid, __ATOMIC_RELAXED);
	out->cart = __atomic_load_n(&s->cart, __ATOMIC_RELAXED);
	out->block_seq = __atomic_load_n(&s->block_seq, __ATOMIC_RELAXED);
	out->last_block_ns = __atomic_load_n(&s->last_block_ns, __ATOMIC_RELAXED);
	out->last_wake_ns = __atomic_load_n(&s->last_wake_ns, __ATOMIC_RELAXED);
	out->last_off_ns = __atomic_load_n(&s->last_off_ns, __ATOMIC_RELAXED);
	out->offcpu_ns = __atomic_load_n(&s->offcpu_ns, __ATOMIC_RELAXED);
	out->blocks = __atomic_load_n(&s->blocks, __ATOMIC_RELAXED);
	out->preemptions = __atomic_load_n(&s->preemptions, __ATOMIC_RELAXED);
	return 0;
}

/* See labor_watch.h. Returns 0 or -EINVAL. */
int lutf_lw_set_grace(struct lutf_lw *lw, uint64_t ns)
{
	if (ns == 0)
		return -EINVAL;
	/* Relaxed: pairs with the probe's relaxed read; a stale value only
	 * misfiles one long_blocks count. */
	__atomic_store_n(&lw->skel->data->lw_grace_ns, ns, __ATOMIC_RELAXED);
	return 0;
}

/* See labor_watch.h. */
void lutf_lw_set_sleeping(struct lutf_lw *lw, int on)
{
	/* seq_cst (xchg): the store must be visible before the re-scan's loads;
	 * pairs with the probe's exchange on slot.state then load of this word. */
	__atomic_store_n(&lw->skel->data->lw_supervisor_sleeping, on ? 1U : 0U, __ATOMIC_SEQ_CST);
}

/* Count watched blocks not reported yet (after supervisor_sleeping was set). */
static int lw_rescan(struct lutf_lw *lw)
{
	int n = 0;

	for (uint32_t i = 0; i < lw->max; i++) {
		const struct labor_watch_slot *s = &lw->slots[i];
		uint64_t seq;

		/* Acquire: as in lutf_lw_read(). */
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != LW_STATE_BLOCKED)
			continue;
		/* A slot whose Labor names its own Cart (cart hint) may read no
		 * Cart here after a take the Supervisor has not synced yet: the
		 * probe's BLOCKED is enough (it sets it only with a Cart). */
		if (__atomic_load_n(&s->tid, __ATOMIC_RELAXED) == 0 ||
		    (__atomic_load_n(&s->cart, __ATOMIC_RELAXED) == LW_NO_CART &&
		     !__atomic_load_n(&lw->own_cart[i], __ATOMIC_RELAXED)))
			continue;
		seq = __atomic_load_n(&s->block_seq, __ATOMIC_RELAXED);
		/* Relaxed: seen_seq is this thread's. */
		if (seq > __atomic_load_n(&lw->seen_seq[i], __ATOMIC_RELAXED)) {
			__atomic_store_n(&lw->seen_seq[i], seq, __ATOMIC_RELAXED);
			n++;
		}
	}
	return n;
}

/* See labor_watch.h. Returns new blocks noticed, 0 on timeout, or -errno. */
int lutf_lw_sleep(struct lutf_lw *lw, int timeout_ms)
{
	int found, r;

	lutf_lw_set_sleeping(lw, 1);
	found = lw_rescan(lw);
	lw->new_blocks = 0;
	r = ring_buffer__poll(lw->rb, found ? 0 : timeout_ms);
	lutf_lw_set_sleeping(lw, 0);
	if (r < 0)
		return r;
	return found + lw->new_blocks;
}

/* See labor_watch.h. Returns new blocks noticed, 0 on timeout or a wake of
 * extra_fd, or -errno. */
int lutf_lw_sleep_fd(struct lutf_lw *lw, int extra_fd, int64_t timeout_ns)
{
	struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
	struct epoll_event ev[2];
	int found, r;

	if (!lw->wait_ready || lw->wait_extra != extra_fd) {
		struct epoll_event add = {.events = EPOLLIN};

		if (lw->wait_ready)
			close(lw->wait_epfd);
		lw->wait_ready = false;
		lw->wait_epfd = epoll_create1(EPOLL_CLOEXEC);
		if (lw->wait_epfd < 0)
			return -errno;
		add.data.fd = lutf_lw_ring_fd(lw);
		if (epoll_ctl(lw->wait_epfd, EPOLL_CTL_ADD, add.data.fd, &add) ||
		    (extra_fd >= 0 && (add.data.fd = extra_fd,
				       epoll_ctl(lw->wait_epfd, EPOLL_CTL_ADD, extra_fd, &add)))) {
			r = -errno;
			close(lw->wait_epfd);
			return r;
		}
		lw->wait_extra = extra_fd;
		lw->wait_ready = true;
	}
	lutf_lw_set_sleeping(lw, 1);
	found = lw_rescan(lw);
	lw->new_blocks = 0;
	r = 0;
	if (!found && epoll_pwait2(lw->wait_epfd, ev, 2, timeout_ns < 0 ? NULL : &ts, NULL) < 0 &&
	    errno != EINTR)
		r = -errno;
	if (r == 0)
		r = ring_buffer__consume(lw->rb);
	lutf_lw_set_sleeping(lw, 0);
	if (r < 0)
		return r;
	return found + lw->new_blocks;
}

/* See labor_watch.h. Returns events consumed or -errno. */
int lutf_lw_consume(struct lutf_lw *lw)
{
	return ring_buffer__consume(lw->rb);
}

/* See labor_watch.h. Returns an fd or -EBADF. */
int lutf_lw_ring_fd(struct lutf_lw *lw)
{
	int fd = bpf_map__fd(lw->skel->maps.labor_events);

	return fd >= 0 ? fd : -EBADF;
}

/* See labor_watch.h. */
const char *lutf_lw_attach_kind(struct lutf_lw *lw)
{
	return lw->kind;
}

/* See labor_watch.h. */
const char *lutf_lw_pin_dir(struct lutf_lw *lw)
{
	return lw->pin_dir;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_drops(struct lutf_lw *lw, struct lutf_lw_drops *out)
{
	struct labor_watch_counters *v;
	uint32_t key = 0;
	int ncpu = libbpf_num_possible_cpus(), r = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v)); /* 64 bytes: already 8-aligned per CPU */
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(lw->skel->maps.labor_counters), &key, v)) {
		r = -errno;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < ncpu; c++) {
		out->ringbuf_drop += v[c].ringbuf_drop;
		out->hash_miss += v[c].hash_miss;
		out->slot_range += v[c].slot_range;
		out->slot_stale += v[c].slot_stale;
		out->events += v[c].events;
		out->long_blocks += v[c].long_blocks;
		out->skip_spin += v[c].skip_spin;
		out->skip_empty += v[c].skip_empty;
	}
out:
	free(v);
	return r;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_prog_stats(struct lutf_lw *lw, uint64_t *run_ns, uint64_t *run_cnt)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(lw->prog), &info, &len))
		return -errno;
	*run_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	return 0;
}

/* See labor_watch.h. Returns 0 or -errno. */
int lutf_lw_ids(struct lutf_lw *lw, uint32_t *state_map_id, uint32_t *prog_id)
{
	struct bpf_prog_info pinfo;
	struct bpf_map_info minfo;
	__u32 len = sizeof(minfo);

	memset(&minfo, 0, sizeof(minfo));
	if (bpf_obj_get_info_by_fd(bpf_map__fd(lw->skel->maps.labor_state), &minfo, &len))
		return -errno;
	len = sizeof(pinfo);
	memset(&pinfo, 0, sizeof(pinfo));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(lw->prog), &pinfo, &len))
		return -errno;
	*state_map_id = minfo.id;
	*prog_id = pinfo.id;
	return 0;
}
