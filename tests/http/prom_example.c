/* SPDX-License-Identifier: MIT */
/* Print the sample exposition (for `promtool check metrics`). */
#include <stdio.h>

#include "prom_sample.h"

int main(void)
{
	struct lutf_http_buf b = {0};

	prom_sample(&b);
	if (b.err || fwrite(b.data, 1, b.len, stdout) != b.len)
		return 1;
	lutf_http_buf_free(&b);
	return 0;
}
