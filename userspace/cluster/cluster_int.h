/* SPDX-License-Identifier: MIT */
/* Inside the cluster module: the libnats handles behind a connection. */
#ifndef LUTF_CLUSTER_INT_H
#define LUTF_CLUSTER_INT_H

#include <nats/nats.h>

#include "cluster.h"

natsConnection *lutf_cluster_conn(struct lutf_cluster *c);
/* The opened bucket LUTF_CLUSTER_FNS or LUTF_CLUSTER_NODES (after ready). */
kvStore *lutf_cluster_kv(struct lutf_cluster *c, const char *bucket);

#endif /* LUTF_CLUSTER_INT_H */
