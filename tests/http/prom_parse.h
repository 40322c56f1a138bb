/* SPDX-License-Identifier: MIT */
/* A strict Prometheus text-format (0.0.4) checker for tests (see prom_parse.c). */
#ifndef LUTF_TEST_PROM_PARSE_H
#define LUTF_TEST_PROM_PARSE_H

#include <stddef.h>

/* 0 when text is valid (samples counted in *nsamples), else -1 with err set. */
int prom_parse(const char *text, char *err, size_t errlen, int *nsamples);

#endif
