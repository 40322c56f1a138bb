/* SPDX-License-Identifier: MIT */
/*
 * Control jobs: deploys, pauses, deletes and worker starts run off the event
 * loop, one thread per running job, serialized per tenant ("lane") and
 * concurrent across tenants. Invariant (the locking rule): every lutfd
 * structure (tenant table, registry records, runtimes, connections) is touched
 * only on the main thread; a job thread does blocking I/O on data it owns and
 * reaches shared state only through lutfd_main_call, which runs a step on the
 * loop and waits for it. A tenant record is freed only by a job of its own
 * lane, so it outlives every job of that lane that holds it. Threads read
 * g_cfg only for keys a reload never changes (state_dir); a live key
 * (load_timeout_ms) is read through the loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lutfd.h"

struct lutfd_lane {
	struct lutfd_lane *next;
	char tenant[LUTFD_NAME];
	struct lutfd_job *head, *tail; /* queued, not started */
	bool busy;		       /* a job of this lane runs */
};

/* Main thread only. */
static struct lutfd_lane *lanes;
static unsigned running, queued;
static bool stopping;
static pthread_t main_thread;

/* A step handed to the loop: guarded by mu; done is signalled on cv. */
struct call {
	struct call *next;
	void (*fn)(void *arg);
	void *arg;
	bool done;
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct call *calls_head, *calls_tail;
static int efd = -1;

void lutfd_main_call(void (*fn)(void *arg), void *arg)
{
	struct call c = {.fn = fn, .arg = arg};
	uint64_t one = 1;

	if (efd < 0 || pthread_equal(pthread_self(), main_thread)) {
		fn(arg);
		return;
	}
	pthread_mutex_lock(&mu);
	if (calls_tail)
		calls_tail->next = &c;
	else
		calls_head = &c;
	calls_tail = &c;
	pthread_mutex_unlock(&mu);
	/* The loop wakes on the eventfd; a failed write (counter full) still
	 * leaves it readable. */
	if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		lutfd_log("control: cannot wake the loop: %s", strerror(errno));
	pthread_mutex_lock(&mu);
	while (!c.done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void calls_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	uint64_t v;

	if (read(efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		lutfd_log("control: eventfd read: %s", strerror(errno));
	for (;;) {
		struct call *c;

		pthread_mutex_lock(&mu);
		c = calls_head;
		if (c) {
			calls_head = c->next;
			if (!calls_head)
				calls_tail = NULL;
		}
		pthread_mutex_unlock(&mu);
		if (!c)
			break;
		c->fn(c->arg);
		pthread_mutex_lock(&mu);
		c->done = true; /* c lives on its thread's stack: last touch */
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	lutf_srv_flush(g_srv); /* replies the steps queued */
}

int lutfd_jobs_init(void)
{
	main_thread = pthread_self();
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return -errno;
	return lutf_ev_set(g_loop, efd, LUTF_EV_READ, calls_event, NULL);
}

static struct lutfd_lane *lane_get(const char *tenant)
{
	struct lutfd_lane *l;

	for (l = lanes; l; l = l->next)
		if (!strcmp(l->tenant, tenant))
			return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	LUTFD_COPY(l->tenant, tenant);
	l->next = lanes;
	lanes = l;
	return l;
}

static void lane_drop(struct lutfd_lane *gone)
{
	for (struct lutfd_lane **p = &lanes; *p; p = &(*p)->next) {
		if (*p == gone) {
			*p = gone->next;
			free(gone);
			return;
		}
	}
}

static void lane_next(struct lutfd_lane *l);

static void job_finished(void *arg)
{
	struct lutfd_job *j = arg;
	struct lutfd_lane *l = j->lane;

	running--;
	l->busy = false;
	free(j);
	lane_next(l);
}

static void *job_main(void *arg)
{
	struct lutfd_job *j = arg;

	j->run(j);
	lutfd_main_call(job_finished, j);
	return NULL;
}

/* Start l's next job, or drop l when it has none. */
static void lane_next(struct lutfd_lane *l)
{
	pthread_attr_t attr;
	struct lutfd_job *j;
	pthread_t th;
	int err;

	while ((j = l->head)) {
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		queued--;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = pthread_create(&th, &attr, job_main, j);
		pthread_attr_destroy(&attr);
		if (!err) {
			l->busy = true;
			running++;
			return;
		}
		/* No thread: the job cannot run; it answers now (on the loop). */
		lutfd_log("control: no thread for a job of tenant %s: %s", l->tenant,
			  strerror(err));
		if (j->refuse)
			j->refuse(j, LUTF_STATUS_OVERLOADED, "lutfd cannot start a control thread");
		free(j);
	}
	lane_drop(l);
}

int lutfd_job_submit(const char *tenant, struct lutfd_job *j)
{
	struct lutfd_lane *l;

	if (stopping)
		return -ESHUTDOWN;
	l = lane_get(tenant);
	if (!l)
		return -ENOMEM;
	j->lane = l;
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	queued++;
	if (!l->busy)
		lane_next(l);
	return 0;
}

bool lutfd_jobs_busy(void)
{
	return running || queued;
}

void lutfd_jobs_stop(void)
{
	stopping = true;
	/* Queued jobs never start: they answer SHUTTING_DOWN. */
	for (struct lutfd_lane *l = lanes, *next; l; l = next) {
		struct lutfd_job *j;

		next = l->next;
		while ((j = l->head)) {
			l->head = j->next;
			queued--;
			if (j->refuse)
				j->refuse(j, LUTF_STATUS_SHUTTING_DOWN, "lutfd is shutting down");
			free(j);
		}
		l->tail = NULL;
		if (!l->busy)
			lane_drop(l);
	}
}

bool lutfd_jobs_stopping(void)
{
	return stopping;
}

/* ---- replies of control jobs (main thread) ---- */

void lutfd_job_hold(struct lutfd_job *j, struct lutf_conn *c, uint64_t request_id)
{
	j->conn_id = lutf_conn_id(c);
	j->request_id = request_id;
	j->holding = true;
	lutf_conn_inflight(c, +1); /* the idle timeout spares it */
}

struct lutf_conn *lutfd_job_conn(struct lutfd_job *j)
{
	struct lutf_conn *c = lutf_srv_conn(g_srv, j->conn_id);

	if (j->holding && c)
		lutf_conn_inflight(c, -1);
	j->holding = false;
	return c;
}

void lutfd_job_reply_status(struct lutfd_job *j, uint32_t status, const char *msg)
{
	struct lutf_conn *c = lutfd_job_conn(j);

	if (c)
		lutf_conn_reply_status(c, j->request_id, status, msg);
}
