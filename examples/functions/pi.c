/* SPDX-License-Identifier: MIT */
/*
 * pi: CPU-bound. Input: a decimal count of digits (default 100, at most
 * 10000). Output: that many digits of pi ("31415..."), by the
 * Rabinowitz-Wagon spigot. Invariant: a digit is written only once no later
 * carry can change it; the spigot runs GUARD terms past n so the held
 * predigit and nines are settled (pi's longest run of nines below 10,000
 * digits is six), and whatever is still held at the end is written too.
 */
#include <stdlib.h>
#include <string.h>

#include <lutf/function.h>

LUTF_APP_ABI;

#define GUARD 10

LUTF_FUNCTION(pi)
{
	char in[16] = {0};
	long n = 100;
	int *a;
	char *out;
	long len, o = 0, nines = 0, predigit = 0;

	if (call->input_len && call->input_len < sizeof(in)) {
		memcpy(in, call->input, call->input_len);
		n = strtol(in, NULL, 10);
	}
	if (n < 1 || n > 10000)
		return lutf_fail(call, "digits must be 1..10000"), 1;
	len = (n + GUARD) * 10 / 3 + 2;
	a = malloc(sizeof(*a) * (size_t)len);
	out = malloc((size_t)n + 2);
	if (!a || !out) {
		free(a);
		free(out);
		return lutf_fail(call, "out of memory"), 1;
	}
	for (long i = 0; i < len; i++)
		a[i] = 2;
	for (long j = 0; j < n + GUARD && o < n; j++) {
		long q = 0;

		for (long i = len - 1; i >= 0; i--) {
			long x = 10 * a[i] + q * (i + 1);

			a[i] = (int)(x % (2 * i + 1));
			q = x / (2 * i + 1);
		}
		a[0] = (int)(q % 10);
		q /= 10;
		if (q == 9) {
			nines++;
		} else if (q == 10) {
			if (j && o < n)
				out[o++] = (char)('0' + predigit + 1);
			for (; nines && o < n; nines--)
				out[o++] = '0';
			predigit = 0;
		} else {
			if (j && o < n)
				out[o++] = (char)('0' + predigit);
			predigit = q;
			for (; nines && o < n; nines--)
				out[o++] = '9';
		}
	}
	/* Held back to the end: the predigit, then its nines. */
	if (o < n)
		out[o++] = (char)('0' + predigit);
	for (; nines && o < n; nines--)
		out[o++] = '9';
	lutf_set_content_type(call, "text/plain");
	lutf_write(call, out, (size_t)o);
	free(a);
	free(out);
	return 0;
}
