/* SPDX-License-Identifier: MIT */
/*
 * The example apps as run_local and scripts/run.sh ship them, run in-process:
 * demo/pi must give exactly the asked number of pi's digits, every one right
 * (checked against 1,000 digits computed independently, by Machin's formula),
 * including the last ones the spigot holds back, and past the run of six
 * nines at digit 763.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine_util.h"

static const char pi_ref[] =
    "31415926535897932384626433832795028841971693993751058209749445923078164062862089"
    "98628034825342117067982148086513282306647093844609550582231725359408128481117450"
    "28410270193852110555964462294895493038196442881097566593344612847564823378678316"
    "52712019091456485669234603486104543266482133936072602491412737245870066063155881"
    "74881520920962829254091715364367892590360011330530548820466521384146951941511609"
    "43305727036575959195309218611738193261179310511854807446237996274956735188575272"
    "48912279381830119491298336733624406566430860213949463952247371907021798609437027"
    "70539217176293176752384674818467669405132000568127145263560827785771342757789609"
    "17363717872146844090122495343014654958537105079227968925892354201995611212902196"
    "08640344181598136297747713099605187072113499999983729780499510597317328160963185"
    "95024459455346908302642522308253344685035261931188171010003137838752886587533208"
    "38142061717766914730359825349042875546873115956286388235378759375195778185778053"
    "2171226806613001927876611195909216420198";

static struct lutf_runtime *rt;
static uint32_t pi_id;

static void setup(void)
{
	struct lutf_config c = test_config(1, 2);

	cr_assert_eq(lutf_runtime_create(&c, &rt), 0);
	cr_assert_eq(lutf_runtime_add_so(rt, "pi", EXAMPLES_DIR "/libpi.so", "pi", NULL, &pi_id), 0,
		     "%s", lutf_runtime_last_error());
}

static void teardown(void)
{
	lutf_runtime_destroy(rt);
}

TestSuite(examples, .init = setup, .fini = teardown, .timeout = 60);

/* pi(input) into res; the caller releases it. */
static void call_pi(const char *input, struct lutf_result *res)
{
	struct lutf_request req = {.input = input, .input_len = strlen(input)};

	cr_assert_eq(lutf_runtime_invoke(rt, pi_id, &req, res), 0);
}

Test(examples, pi_gives_every_digit_asked_for)
{
	static const long lens[] = {1, 2, 3, 29, 30, 78, 80, 99, 100, 761, 762, 765, 768, 1000};

	cr_assert_eq(strlen(pi_ref), 1000);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct lutf_result res;
		char in[16];

		snprintf(in, sizeof(in), "%ld", lens[i]);
		call_pi(in, &res);
		cr_assert_eq(res.status, LUTF_STATUS_OK, "pi(%ld): %s", lens[i], res.error);
		cr_assert_eq(res.output_len, (size_t)lens[i], "pi(%ld) gave %zu digits", lens[i],
			     res.output_len);
		cr_assert(!memcmp(res.output, pi_ref, res.output_len),
			  "pi(%ld) = %.*s..., not %.*s...", lens[i], (int)res.output_len,
			  (const char *)res.output, (int)lens[i], pi_ref);
		lutf_result_release(&res);
	}
}

Test(examples, pi_default_is_100_digits)
{
	struct lutf_result res;

	call_pi("", &res);
	cr_assert_eq(res.status, LUTF_STATUS_OK);
	cr_assert_eq(res.output_len, 100);
	cr_assert(!memcmp(res.output, pi_ref, 100));
	cr_assert(((const char *)res.output)[99] == '7', "the 100th digit is 7");
	lutf_result_release(&res);
}

Test(examples, pi_refuses_counts_out_of_range)
{
	static const char *const bad[] = {"0", "-5", "10001", "x"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lutf_result res;

		call_pi(bad[i], &res);
		cr_assert_eq(res.status, LUTF_STATUS_FUNCTION_ERROR, "pi(%s)", bad[i]);
		cr_assert(strstr(res.error, "1..10000"), "pi(%s): %s", bad[i], res.error);
		lutf_result_release(&res);
	}
}
