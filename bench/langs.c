/* SPDX-License-Identifier: MIT */
/*
 * langs: what the language boundary costs per call. Loads the C++, Rust and
 * Go example apps (built when their compilers were found) in this process and
 * calls each one's echo function with a small input, from one plain thread
 * as a Labor would (for Go: a C thread calling into Go), against a C echo
 * compiled here: ns per call, medians of interleaved rounds, and the ratio to
 * C. Every call must echo its input, or the program exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lutf/function.h>

#include "common.h"

#define ROUNDS 7
#define INPUT "lutf echo"

struct out {
	char buf[64];
	size_t len;
	int failed;
};

static int op_write(struct lutf_call *call, const void *b, size_t n)
{
	struct out *o = call->runtime_priv;

	if (n > sizeof(o->buf) - o->len)
		return -90; /* -EMSGSIZE */
	memcpy(o->buf + o->len, b, n);
	o->len += n;
	return 0;
}

static int op_set_content_type(struct lutf_call *call, const char *t)
{
	return 0;
}

static int op_fail(struct lutf_call *call, const char *msg)
{
	((struct out *)call->runtime_priv)->failed = 1;
	return 0;
}

static void op_log(struct lutf_call *call, const char *line, size_t len)
{
}

static const char *op_null(struct lutf_call *call, const char *key)
{
	return NULL;
}

static const struct lutf_call_ops ops = {
    .size = sizeof(ops),
    .write = op_write,
    .set_content_type = op_set_content_type,
    .fail = op_fail,
    .log = op_log,
    .config = op_null,
    .meta = op_null,
};

/* The baseline: the same echo in C, called through a pointer as a Labor does. */
static int c_echo(struct lutf_call *call)
{
	return lutf_write(call, call->input, call->input_len) ? 1 : 0;
}

struct lang {
	const char *name, *path, *sym;
	lutf_fn_t fn;
	void *state;
	double ns[ROUNDS];
	double median;
	bool ran;
};

static struct lang langs[] = {
    {"C (baseline)", NULL, NULL, c_echo, NULL, {0}, 0, false},
    {"C++", LANGS_CPP, "cpp_echo", NULL, NULL, {0}, 0, false},
    {"Rust", LANGS_RUST, "rs_echo", NULL, NULL, {0}, 0, false},
    {"Go", LANGS_GO, "go_echo", NULL, NULL, {0}, 0, false},
};
#define NLANGS (sizeof(langs) / sizeof(langs[0]))

static void load(struct lang *l)
{
	lutf_app_init_t init;
	void *h;

	if (l->fn)
		return;
	if (!l->path[0])
		return; /* not built: no compiler */
	h = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "langs: %s: %s\n", l->path, dlerror());
		exit(1);
	}
	l->fn = (lutf_fn_t)dlsym(h, l->sym);
	init = (lutf_app_init_t)dlsym(h, "lutf_app_init");
	if (!l->fn || (init && init(&l->state))) {
		fprintf(stderr, "langs: %s: no %s or its init failed\n", l->path, l->sym);
		exit(1);
	}
}

struct run {
	struct lang *l;
	unsigned calls;
	double ns;
	int bad;
};

/* On a thread of its own (a Labor is a C thread): calls, timed. */
static void *run_calls(void *arg)
{
	struct run *r = arg;
	struct out o;
	struct lutf_call call = {.ops = &ops, .input = INPUT, .input_len = sizeof(INPUT) - 1};
	uint64_t t0;

	call.app_state = r->l->state;
	call.runtime_priv = &o;
	t0 = bench_now_ns();
	for (unsigned i = 0; i < r->calls; i++) {
		o.len = 0;
		o.failed = 0;
		call.request_id = i;
		if (r->l->fn(&call) || o.failed || o.len != call.input_len ||
		    memcmp(o.buf, INPUT, o.len))
			r->bad++;
	}
	r->ns = (double)(bench_now_ns() - t0) / r->calls;
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	unsigned calls;
	char machine[128];
	int bad = 0;

	bench_parse_args(argc, argv, "langs: per-call cost of C++, Rust and Go apps against C", &o);
	calls = o.quick ? 2000 : 200000;
	bench_machine(machine, sizeof(machine));
	for (size_t i = 0; i < NLANGS; i++)
		load(&langs[i]);
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < NLANGS; i++) {
			struct run r = {.l = &langs[i], .calls = calls};
			pthread_t t;

			if (!langs[i].fn)
				continue;
			if (pthread_create(&t, NULL, run_calls, &r) || pthread_join(t, NULL)) {
				fprintf(stderr, "langs: no thread\n");
				return 1;
			}
			langs[i].ns[round] = r.ns;
			langs[i].ran = true;
			bad += r.bad;
		}
	}
	for (size_t i = 0; i < NLANGS; i++)
		if (langs[i].ran)
			langs[i].median = bench_median_d(langs[i].ns, ROUNDS);
	if (o.json) {
		struct bench_json j;

		bench_json_begin(&j, stdout);
		bench_json_str(&j, "bench", "langs");
		bench_json_str(&j, "machine", machine);
		bench_json_u64(&j, "calls_per_round", calls);
		bench_json_u64(&j, "rounds", ROUNDS);
		bench_json_arr(&j, "langs");
		for (size_t i = 0; i < NLANGS; i++) {
			bench_json_obj(&j, NULL);
			bench_json_str(&j, "lang", langs[i].name);
			bench_json_bool(&j, "built", langs[i].ran);
			bench_json_num(&j, "ns_per_call",
				       langs[i].ran ? langs[i].median : 0.0 / 0.0);
			bench_json_num(&j, "ratio_to_c",
				       langs[i].ran ? langs[i].median / langs[0].median
						    : 0.0 / 0.0);
			bench_json_close_obj(&j);
		}
		bench_json_close_arr(&j);
		bench_json_u64(&j, "bad_calls", (uint64_t)bad);
		bench_json_end(&j);
	} else {
		printf("langs: echo of %zu bytes, called in-process from a C thread; %s\n",
		       sizeof(INPUT) - 1, machine);
		printf("%u calls a round, median of %d interleaved rounds\n\n", calls, ROUNDS);
		printf("%-14s %12s %10s\n", "language", "ns/call", "vs C");
		for (size_t i = 0; i < NLANGS; i++) {
			if (!langs[i].ran) {
				printf("%-14s %12s %10s\n", langs[i].name, "not built", "-");
				continue;
			}
			printf("%-14s %12.1f %9.1fx\n", langs[i].name, langs[i].median,
			       langs[i].median / langs[0].median);
		}
		if (bad)
			printf("\n%d calls did not echo their input\n", bad);
	}
	return bad ? 1 : 0;
}
