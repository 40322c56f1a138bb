/* SPDX-License-Identifier: MIT */
#ifndef LUTF_TEST_PROM_SAMPLE_H
#define LUTF_TEST_PROM_SAMPLE_H

#include "prom.h"

/* Append a sample exposition (see prom_sample.c) to b. */
void prom_sample(struct lutf_http_buf *b);

#endif
