/* SPDX-License-Identifier: MIT */
/*
 * Test prerequisites. A test that needs root, BPF or io_uring calls
 * lutf_test_require("root", ok, "why") before it starts. When ok is false the
 * test is skipped with the reason, unless LUTF_TEST_REQUIRE (a comma list such
 * as "root,bpf,io_uring", set by .ci/run) names the feature: then it fails.
 *
 * Use LUTF_REQUIRE() inside Criterion tests, lutf_test_require_plain() in
 * plain C test programs (exit 77 = skipped, as CTest's SKIP_RETURN_CODE).
 * Features in use: root, bpf, io_uring, cgroup (a cgroup hierarchy lutfd can
 * write), promtool, systemd, langs (the C++, Rust and Go example apps were
 * built: their compilers were found), nats (nats-server is installed, for the
 * cluster tests). A test never calls cr_skip_test itself.
 *
 * LUTF_REQUIRE_BPF() is LUTF_REQUIRE("bpf", ...) except when the run itself
 * turned BPF off (LUTF_LABOR_WATCH=off, LUTF_TEST_NO_BPF): then the test
 * skips, named so, even when LUTF_TEST_REQUIRE names bpf.
 */
#ifndef LUTF_TEST_REQUIRE_H
#define LUTF_TEST_REQUIRE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline bool lutf_test_required(const char *feature)
{
	const char *list = getenv("LUTF_TEST_REQUIRE");
	size_t n = strlen(feature);

	while (list && *list) {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);

		if (len == n && strncmp(list, feature, n) == 0)
			return true;
		list = end ? end + 1 : NULL;
	}
	return false;
}

static inline bool lutf_test_is_root(void)
{
	return geteuid() == 0;
}

/* In a Criterion test: skip (or fail when required) unless ok. */
#define LUTF_REQUIRE(feature, ok, reason)                                                          \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			if (lutf_test_required(feature))                                           \
				cr_assert_fail("required feature '%s' unavailable: %s", feature,   \
					       reason);                                            \
			cr_skip_test("needs %s: %s", feature, reason);                             \
		}                                                                                  \
	} while (0)

static inline const char *lutf_test_bpf_off_by(void)
{
	const char *w = getenv("LUTF_LABOR_WATCH");

	if (w && !strcmp(w, "off"))
		return "LUTF_LABOR_WATCH=off";
	return getenv("LUTF_TEST_NO_BPF") ? "LUTF_TEST_NO_BPF" : NULL;
}

#define LUTF_REQUIRE_BPF(ok, reason)                                                               \
	do {                                                                                       \
		if (!(ok) && lutf_test_bpf_off_by())                                               \
			cr_skip_test("BPF turned off by %s: %s", lutf_test_bpf_off_by(), reason);  \
		LUTF_REQUIRE("bpf", ok, reason);                                                   \
	} while (0)

/* In a plain test program: exit 77 (skip) or 1 (required) unless ok. */
static inline void lutf_test_require_plain(const char *feature, bool ok, const char *reason)
{
	if (ok)
		return;
	if (lutf_test_required(feature)) {
		fprintf(stderr, "FAIL: required feature '%s' unavailable: %s\n", feature, reason);
		exit(1);
	}
	fprintf(stderr, "SKIP: needs %s: %s\n", feature, reason);
	exit(77);
}

#endif /* LUTF_TEST_REQUIRE_H */
