/* SPDX-License-Identifier: MIT */
/*
 * tenant_log.c: the worker output pipe (a worker's fd 1 and 2) and the
 * escaping, bounded tenant log ring. lutfd_tenant_logs_append (lutfd.h) is
 * the ring's other way in, for lutf_log lines.
 */
#ifndef LUTFD_TENANT_LOG_H
#define LUTFD_TENANT_LOG_H

/*
 * A pipe for the next worker of tenant: lutfd reads its end on the loop into
 * the tenant's ring, each line marked "[output]", until every writer is gone.
 * *wr is the write end (close-on-exec) to hand to the zygote; the caller
 * closes it after the spawn. Returns 0 or -errno.
 */
int lutfd_tlog_open(const char *tenant, int *wr);

#endif /* LUTFD_TENANT_LOG_H */
