/* SPDX-License-Identifier: MIT */
/*
 * lutfd: configuration, the state lock, the zygote (forked before any
 * thread), listeners, the main loop and an orderly shutdown. Invariant: one
 * lutfd per state folder (flock held for the process's life), and every
 * request accepted before SIGTERM gets a reply before lutfd exits.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"
#include "text_escape.h"
#include "lutfd.h"
#include "keys.h"
#include "reach.h"
#include "startup.h"
#ifdef LUTF_HAVE_CLUSTER
#include "cluster.h"
#endif

#define DEFAULT_CONFIG "/etc/lutf/lutfd.conf"

struct lutfd_config g_cfg;
struct lutfd_state g_state;
struct lutf_zygote g_zygote;
struct lutf_ev_loop *g_loop;
struct lutf_srv *g_srv;

static int stop_requested;
/* The config file and the flags over it, for SIGHUP (reload.c). */
static const char *cfg_path = DEFAULT_CONFIG, *flag_state, *flag_run;
static bool flag_no_bpf;
static char tcp_addr[160]; /* bound TCP listener, "" if none */
static const struct lutf_bin_handler bin_handler = {.frame = lutfd_frame,
						    .authorize = lutfd_keys_authorize_frame};

uint64_t lutfd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void lutfd_log(const char *fmt, ...)
{
	char stamp[32], raw[1024], line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Messages carry tenant text (a worker's load error, a dlerror naming
	 * the app's symbols): one line each, no control byte of theirs. */
	lutf_text_escape(line, sizeof(line), raw, strlen(raw), LUTF_ESC_BACKSLASH, NULL);
	fprintf(stderr, "lutfd[%d] %s.%03ld %s\n", (int)getpid(), stamp, ts.tv_nsec / 1000000,
		line);
}

static void usage(FILE *fp)
{
	fprintf(fp, "Usage: lutfd [OPTIONS]\n"
		    "Run the lutf function daemon in the foreground; it logs to stderr.\n"
		    "\n"
		    "  --config FILE       read FILE instead of " DEFAULT_CONFIG "\n"
		    "                      (a missing explicit FILE is an error; the default\n"
		    "                      file is read only if it exists)\n"
		    "  --state-dir DIR     registry and uploaded apps (default /var/lib/lutf);\n"
		    "                      one lutfd per state folder\n"
		    "  --runtime-dir DIR   sockets and pid file (default /run/lutf):\n"
		    "                      DIR/lutf.sock (invoke), DIR/control.sock (control),\n"
		    "                      DIR/lutfd.pid, DIR/tcp.addr (the bound address of\n"
		    "                      listen_tcp, default " LUTFD_TCP_DEFAULT ")\n"
		    "  --no-bpf            do not load labor_watch; Labors are polled\n"
		    "  -h, --help          this text\n"
		    "  --version           print the version\n"
		    "\n"
		    "Environment: LUTF_INGRESS=epoll|uring|auto overrides the ingress key\n"
		    "(uring: io_uring or exit 1; auto: io_uring, else epoll with a log line).\n"
		    "Flags override the config file. SIGTERM or SIGINT: stop accepting, let\n"
		    "requests in flight finish within shutdown_grace_ms, answer the rest\n"
		    "SHUTTING_DOWN, exit 0. See docs/daemon.md and etc/lutfd.conf.\n");
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The state lock: held (flock) for lutfd's life. Returns the fd or exits. */
static int lock_state(void)
{
	char path[PATH_MAX + 8], pid[32] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/lock", g_cfg.state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		fprintf(stderr, "lutfd: cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	/* The last lutfd's watcher holds the lock while it kills that lutfd's
	 * tenants (watcher.c, milliseconds): wait for it, a bounded while (3 s),
	 * looking every millisecond: a restart should not wait longer than it. */
	for (int i = 0; i < 3000 && flock(fd, LOCK_EX | LOCK_NB); i++)
		usleep(1000);
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		if (n > 0)
			pid[n] = 0;
		pid[strcspn(pid, "\n")] = 0;
		fprintf(stderr,
			"lutfd: another lutfd%s%s is already running on state folder %s; "
			"exiting\n",
			pid[0] ? " (pid " : "", pid[0] ? strcat(pid, ")") : "", g_cfg.state_dir);
		exit(1);
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0)
		fprintf(stderr, "lutfd: cannot write %s: %s\n", path, strerror(errno));
	return fd;
}

static void write_pidfile(void)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/lutfd.pid", g_cfg.runtime_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "we");
	if (!fp || fprintf(fp, "%d\n", (int)getpid()) < 0 || fclose(fp) || rename(tmp, path))
		lutfd_log("cannot write %s: %s", path, strerror(errno));
}

static void apply_flags(struct lutfd_config *c)
{
	if (flag_state)
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", flag_state);
	if (flag_run)
		snprintf(c->runtime_dir, sizeof(c->runtime_dir), "%s", flag_run);
	if (flag_no_bpf)
		c->bpf = false;
}

static void signal_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			lutfd_log("signal %u (SIGHUP): reloading %s", si.ssi_signo, cfg_path);
			lutfd_reload(cfg_path, apply_flags);
			continue;
		}
		lutfd_log("signal %u: shutting down", si.ssi_signo);
		stop_requested = 1;
	}
}

static void zygote_event(struct lutf_ev_loop *l, int fd, void *data, unsigned mask)
{
	lutfd_zygote_event();
}

/* Cluster mode (docs/cluster.md): the node's thread converges this lutfd to
 * the registry through the control socket; NATS never blocks the loop. */
static int cluster_start(void)
{
#ifdef LUTF_HAVE_CLUSTER
	struct lutf_cluster_node_cfg cc = {0};
	char sock[PATH_MAX + 16], data[PATH_MAX + 16], host[64] = "lutfd";
	int err;

	if (!g_cfg.cluster[0])
		return 0;
	if (!g_cfg.cluster_node[0] && gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "lutfd");
	snprintf(sock, sizeof(sock), "%s/control.sock", g_cfg.runtime_dir);
	cc.nats.url = g_cfg.cluster;
	cc.nats.creds = g_cfg.cluster_creds;
	cc.nats.token = g_cfg.cluster_token;
	cc.node = g_cfg.cluster_node[0] ? g_cfg.cluster_node : host;
	cc.control_sock = sock;
	cc.state_dir = g_cfg.state_dir;
	cc.version = LUTF_VERSION_STR;
	cc.log = lutfd_log;
	snprintf(data, sizeof(data), "%s/lutf.sock", g_cfg.runtime_dir);
	cc.data_sock = data;
	cc.on_reply = lutfd_forward_reply;
	cc.on_call = lutfd_forward_call;	 /* calls sent here run on this loop */
	cc.on_keys = lutfd_keys_cluster_replace; /* lutf_keys: cluster-wide keys */
	if ((err = lutfd_forward_init())) {
		fprintf(stderr, "lutfd: cluster: %s\n", strerror(-err));
		return err;
	}
	err = lutf_cluster_node_start(&cc);
	if (err)
		fprintf(stderr, "lutfd: cluster = %s: cannot start: %s\n", g_cfg.cluster,
			strerror(-err));
	return err;
#else
	return 0;
#endif
}

static void shutdown_daemon(void)
{
	uint64_t until = lutfd_now_ms() + g_cfg.shutdown_grace_ms;
	char path[PATH_MAX + 16];
	bool force;

	lutfd_sd_notify("STOPPING=1");
	lutfd_startup_join(); /* the Supervisor is not half made when tenants stop */
#ifdef LUTF_HAVE_CLUSTER
	if (g_cfg.cluster[0])
		lutfd_forward_close(); /* NATS calls held: answered while NATS is open */
	lutf_cluster_node_stop();
#endif
	lutf_srv_stop_accepting(g_srv);
	lutf_srv_stop_reading(g_srv);
	/* Let what is in flight finish, within a bound. */
	while (lutfd_inflight() && lutfd_now_ms() < until) {
		lutf_ev_poll(g_loop, 20);
		lutf_srv_flush(g_srv); /* replies of completions reaped in the loop */
		lutfd_zygote_event();
		lutfd_tenants_tick();
		lutf_srv_tick(g_srv);
	}
	/* Control jobs: queued ones are refused, running ones finish (a load
	 * is bounded by load_timeout_ms). */
	lutfd_jobs_stop();
	until = lutfd_now_ms() + g_cfg.load_timeout_ms + 3000;
	while (lutfd_jobs_busy() && lutfd_now_ms() < until) {
		lutf_ev_poll(g_loop, 20);
		lutf_srv_flush(g_srv);
		lutfd_zygote_event();
	}
	force = lutfd_inflight() != 0;
	if (force)
		lutfd_log("%llu requests still in flight: answering SHUTTING_DOWN",
			  (unsigned long long)lutfd_inflight());
	lutfd_fail_inflight();
	until = lutfd_now_ms() + 1000;
	while (lutf_srv_pending_out(g_srv) && lutfd_now_ms() < until) {
		lutf_ev_poll(g_loop, 20);
		lutf_srv_tick(g_srv);
	}
	lutfd_tenants_stop(force);
	lutf_srv_destroy(g_srv);
	if (g_cfg.bpf)
		rmdir(g_cfg.bpf_pin_root); /* fails harmlessly while others use it */
	snprintf(path, sizeof(path), "%s/tcp.addr", g_cfg.runtime_dir);
	unlink(path);
	lutfd_http_stop();
	snprintf(path, sizeof(path), "%s/lutfd.pid", g_cfg.runtime_dir);
	unlink(path);
	lutfd_log("stopped");
}

/* Connections are fds: let lutfd use its hard limit (the zygote, forked
 * before, keeps the default for workers). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The ingress backend: LUTF_INGRESS, else the ingress key. Returns 0 or -1
 * (message printed). */
static int create_loop(void)
{
	struct lutf_ev_params p = {
	    .sq_entries = g_cfg.uring_entries,
	    .buffers = g_cfg.uring_buffers,
	    .buffer_size = g_cfg.uring_buffer_size,
	};
	const char *want = getenv("LUTF_INGRESS"), *from = "LUTF_INGRESS";
	char why[200];
	int err;

	if (!want || !*want) {
		want = g_cfg.ingress;
		from = "the ingress key";
	}
	if (!strcmp(want, "auto"))
		p.kind = LUTF_EV_AUTO;
	else if (!strcmp(want, "uring") || !strcmp(want, "io_uring"))
		p.kind = LUTF_EV_URING;
	else if (!strcmp(want, "epoll"))
		p.kind = LUTF_EV_EPOLL;
	else {
		fprintf(stderr, "lutfd: %s: '%s' is not auto, uring or epoll\n", from, want);
		return -1;
	}
	if (p.buffers & (p.buffers - 1)) {
		fprintf(stderr, "lutfd: uring_buffers must be a power of two, not %u\n", p.buffers);
		return -1;
	}
	err = lutf_ev_create(&p, &g_loop, why, sizeof(why));
	if (err) {
		fprintf(stderr, "lutfd: ingress: io_uring required by %s but unavailable: %s\n",
			from, why[0] ? why : strerror(-err));
		return -1;
	}
	if (why[0])
		lutfd_log("ingress: io_uring unavailable (%s); using epoll", why);
	return 0;
}

/* The TCP listener (binary protocol, data opcodes only) and <runtime>/tcp.addr.
 * Returns 0 or -1 (message printed). */
static int listen_tcp(void)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	FILE *fp;
	int err;

	snprintf(path, sizeof(path), "%s/tcp.addr", g_cfg.runtime_dir);
	unlink(path);
	if (!g_cfg.listen_tcp[0] || !strcmp(g_cfg.listen_tcp, "off"))
		return 0;
	err = lutf_srv_listen_tcp(g_srv, g_cfg.listen_tcp, 0, &lutf_proto_binary,
				  (void *)&bin_handler, tcp_addr, sizeof(tcp_addr));
	if (err) {
		tcp_addr[0] = 0;
		if (!strcmp(g_cfg.listen_tcp, LUTFD_TCP_DEFAULT)) {
			/* The default only: another service may own the port. */
			lutfd_log("TCP listener off: cannot listen on %s (default): %s",
				  g_cfg.listen_tcp, strerror(-err));
			return 0;
		}
		fprintf(stderr, "lutfd: cannot listen on TCP %s: %s\n", g_cfg.listen_tcp,
			err == -EINVAL ? "not host:port or [v6]:port" : strerror(-err));
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "we");
	if (!fp || fprintf(fp, "%s\n", tcp_addr) < 0 || fclose(fp) || rename(tmp, path))
		lutfd_log("cannot write %s: %s", path, strerror(errno));
	lutfd_log("listening on tcp %s", tcp_addr);
	return 0;
}

static void put_counter(struct lutf_buf *b, const char *name, uint64_t v)
{
	char buf[64];
	size_t n = strlen(name);

	memcpy(buf, name, n + 1);
	v = htole64(v);
	memcpy(buf + n + 1, &v, 8);
	lutf_tlv_put(b, LUTF_TAG_COUNTER, buf, n + 9);
}

void lutfd_ingress_status(struct lutf_buf *b)
{
	struct lutf_ev_stats st;
	uint64_t refused, idle;
	char text[200];

	lutf_ev_get_stats(g_loop, &st);
	lutf_srv_counters(g_srv, &refused, &idle);
	snprintf(text, sizeof(text), "ingress=%s", lutf_ev_backend(g_loop));
	lutf_tlv_put_str(b, LUTF_TAG_TEXT, text);
	snprintf(text, sizeof(text), "tcp=%s", tcp_addr[0] ? tcp_addr : "off");
	lutf_tlv_put_str(b, LUTF_TAG_TEXT, text);
	snprintf(text, sizeof(text), "completions=%s", lutfd_reap_mode());
	lutf_tlv_put_str(b, LUTF_TAG_TEXT, text);
	put_counter(b, "ingress_accepts", st.accepts);
	put_counter(b, "ingress_refused", refused);
	put_counter(b, "ingress_idle_closed", idle);
	put_counter(b, "ingress_recv_arms", st.recv_arms);
	put_counter(b, "ingress_enobufs", st.enobufs);
	put_counter(b, "ingress_recv_bytes", st.recv_bytes);
	put_counter(b, "ingress_sends", st.sends);
	put_counter(b, "ingress_short_sends", st.short_sends);
	put_counter(b, "ingress_cq_overflows", st.cq_overflows);
	put_counter(b, "ingress_sqe_waits", st.sqe_waits);
	{ /* slowloris limits (frame_timeout_ms, input_buffered_max) */
		uint64_t buffered, frame_to, input_ref;

		lutf_srv_input_stats(g_srv, &buffered, &frame_to, &input_ref);
		put_counter(b, "ingress_input_buffered", buffered);
		put_counter(b, "ingress_frame_timeouts", frame_to);
		put_counter(b, "ingress_input_refused", input_ref);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"runtime-dir", required_argument, NULL, 'r'},
	    {"no-bpf", no_argument, NULL, 'B'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	const char *config = NULL, *state_dir = NULL, *runtime_dir = NULL;
	struct lutf_srv_limits lim = {0};
	char path[PATH_MAX + 32];
	bool no_bpf = false;
	struct group *gr;
	sigset_t set;
	uint64_t last_tick = 0;
	int o, err, lock_fd, sfd;
	bool settling;

	lutfd_startup_begin();
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			config = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'r':
			runtime_dir = optarg;
			break;
		case 'B':
			no_bpf = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("lutfd 0.1.0\n");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	lutfd_config_defaults(&g_cfg);
	err = lutfd_config_load(&g_cfg, config ? config : DEFAULT_CONFIG);
	if (err == -ENOENT && config) {
		fprintf(stderr, "lutfd: config file %s: not found or not readable\n", config);
		return 1;
	}
	if (err && err != -ENOENT)
		return 1;
	if (config)
		cfg_path = config;
	flag_state = state_dir;
	flag_run = runtime_dir;
	flag_no_bpf = no_bpf;
	apply_flags(&g_cfg);
	if (strlen(g_cfg.runtime_dir) > 80) {
		fprintf(stderr, "lutfd: runtime dir too long for a socket path: %s\n",
			g_cfg.runtime_dir);
		return 1;
	}
	if ((err = mkdir_p(g_cfg.state_dir, 0750)) || (err = mkdir_p(g_cfg.runtime_dir, 0755))) {
		fprintf(stderr, "lutfd: cannot create %s or %s: %s\n", g_cfg.state_dir,
			g_cfg.runtime_dir, strerror(-err));
		return 1;
	}
	lutfd_startup_mark("config");
	lock_fd = lock_state();
	lutfd_startup_mark("lock");

	/* Before any thread: the zygote must be a copy of a single-threaded process. */
	err = lutf_zygote_start(&g_zygote, lock_fd);
	if (err) {
		fprintf(stderr, "lutfd: cannot fork the zygote: %s\n", strerror(-err));
		return 1;
	}
	lutfd_startup_mark("zygote");
	/* Also before any thread: tenant processes die with lutfd (watcher.c). */
	if ((err = lutfd_watcher_start(lock_fd)))
		lutfd_log("warning: no watcher (%s): tenant processes outlive a killed lutfd",
			  strerror(-err));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);	    /* reload, never exit (reload.c) */
	sigprocmask(SIG_BLOCK, &set, NULL); /* inherited by every later thread */
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	lutfd_startup_mark("watcher");
	/* Now that no fork of lutfd is to come and the signals are blocked:
	 * labor_watch and isolation load beside the stages below (startup.c). */
	lutfd_startup_prepare();

	err = lutfd_state_load();
	if (err) {
		fprintf(stderr, "lutfd: cannot read the registry in %s: %s\n", g_cfg.state_dir,
			strerror(-err));
		return 1;
	}
	lutfd_startup_mark("registry");
	if (lutfd_keys_load())
		return 1;
	lutfd_startup_mark("keys");
	if (!g_cfg.require_keys)
		lutfd_log("require_keys = off: TCP and HTTP invoke without API keys");
	raise_nofile();
	if (sfd < 0 || create_loop() || lutfd_dispatch_init() || lutfd_jobs_init()) {
		fprintf(stderr, "lutfd: cannot set up the event loop\n");
		return 1;
	}
	lutfd_startup_mark("loop");
	lutf_ev_set(g_loop, sfd, LUTF_EV_READ, signal_event, NULL);
	lutf_ev_set(g_loop, g_zygote.fd, LUTF_EV_READ, zygote_event, NULL);
	lim.max_frame = g_cfg.max_frame;
	lim.max_conns = g_cfg.max_conns;
	lim.out_max = g_cfg.conn_out_max;
	lim.idle_ms = g_cfg.idle_timeout_ms;
	lim.frame_ms = g_cfg.frame_timeout_ms;
	lim.tcp_peer = lutfd_reach_check;
	lim.input_max = g_cfg.input_buffered_max;
	gr = getgrnam(g_cfg.group);
	if (gr) {
		lim.group = gr->gr_gid;
		lim.group_valid = true;
	}
	err = lutf_srv_create(g_loop, &lim, &g_srv);
	snprintf(path, sizeof(path), "%s/lutf.sock", g_cfg.runtime_dir);
	if (!err)
		err = lutf_srv_listen_unix(g_srv, path, 0660, 0, &lutf_proto_binary,
					   (void *)&bin_handler);
	snprintf(path, sizeof(path), "%s/control.sock", g_cfg.runtime_dir);
	if (!err)
		err = lutf_srv_listen_unix(g_srv, path, 0660, LUTF_LISTEN_CONTROL,
					   &lutf_proto_binary, (void *)&bin_handler);
	if (err) {
		fprintf(stderr, "lutfd: cannot listen on %s: %s\n", path, strerror(-err));
		return 1;
	}
	if (listen_tcp())
		return 1;
	lutfd_startup_mark("listen");
	if (lutfd_http_start())
		return 1;
	lutfd_startup_mark("http");
	if (cluster_start()) /* before the pid file: a bad cluster line fails the start */
		return 1;
	write_pidfile();
	lutfd_startup_mark("cluster+pid");
	/*
	 * The isolation thread is joined before the loop reads a frame: STATUS,
	 * deploys and tenants read what it set up (cgroups, the watcher's
	 * targets). The BPF thread is not: the Supervisor polls until
	 * labor_watch is in, and the SIGSYS probe has its own lock. Then
	 * every registry tenant is opened (region, functions bound), so that no
	 * call meets a tenant it should find. Their workers start on job
	 * threads, side by side; a call that comes first waits in its Cart,
	 * bounded by its deadline. Connections made meanwhile wait in the
	 * listeners' backlog.
	 */
	lutfd_startup_join_isolation();
	lutfd_startup_mark("wait for set-up");
	for (size_t i = 0; i < g_state.n; i++) {
		err = lutfd_tenant_start(g_state.t[i]);
		if (err)
			lutfd_log("tenant %s does not start: %s", g_state.t[i]->name,
				  strerror(-err));
	}
	lutfd_startup_mark("tenants");
	lutfd_log("ready: %s/lutf.sock, %s/control.sock, tcp %s, http %s, admin %s, ingress %s, "
		  "state %s, %zu tenants, bpf %s",
		  g_cfg.runtime_dir, g_cfg.runtime_dir, tcp_addr[0] ? tcp_addr : "off",
		  lutfd_http_addr()[0] ? lutfd_http_addr() : "off",
		  lutfd_admin_addr()[0] ? lutfd_admin_addr() : "off", lutf_ev_backend(g_loop),
		  g_cfg.state_dir, g_state.n, g_cfg.bpf ? "on" : "off");
	lutfd_startup_ready();
	lutfd_sd_notify("READY=1");
	settling = true;
	while (!stop_requested) {
		uint64_t now;

		err = lutf_ev_poll(g_loop, 100);
		if (err < 0) {
			lutfd_log("event loop: %s", strerror(-err));
			break;
		}
		lutfd_http_dispatch(); /* the pass's HTTP invocations, together */
		lutf_srv_flush(g_srv); /* replies queued outside connection handlers */
		/* Exits a spawn read while it waited (what is still in the socket
		 * wakes zygote_event): no recv per loop pass. */
		if (lutfd_zygote_pending())
			lutfd_zygote_event();
		lutfd_tenants_tick();
		if (settling)
			settling = lutfd_startup_tick(); /* start-time workers up: logged once */
		now = lutfd_now_ms();
		if (now - last_tick >= 200) {
			lutf_srv_tick(g_srv);
#ifdef LUTF_HAVE_CLUSTER
			lutfd_forward_tick();
#endif
			last_tick = now;
		}
	}
	shutdown_daemon();
	return 0;
}
