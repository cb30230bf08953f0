/* main.c - the acmed command line: parses arguments, wires the modules, runs the loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "acme.h"
#include "challenge_http.h"
#include "config.h"
#include "log.h"
#include "scheduler.h"
#include "service.h"
#include "store.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2
#define DEFAULT_ONCE_TIMEOUT 300

static const char usage_text[] =
	"usage: acmed [-c FILE] [-v | -q] COMMAND [ARGS]\n"
	"\n"
	"Keeps the certificates named in FILE valid (ACME, RFC 8555).\n"
	"\n"
	"commands:\n"
	"  run [--once] [--timeout SEC]  run the daemon in the foreground; with --once,\n"
	"                                do what is due now and exit (default timeout 300 s)\n"
	"  check-config                  validate FILE; errors as FILE:LINE:COL: message\n"
	"\n"
	"options:\n"
	"  -c FILE      configuration (default $ACMED_CONFIG, else " CONFIG_DEFAULT_PATH ")\n"
	"  -v           more log output (debug)\n"
	"  -q           only warnings and errors\n"
	"  --version    print the version\n"
	"  --help       this text\n"
	"\n"
	"exit status: 0 ok, 1 operational failure, 2 usage or configuration error\n";

struct run_ctx {
	struct event_base *base;
	struct config *cfg;
	struct challenge_http *http01;
	struct acme_ca **cas;
	struct sched *sched;
	int once;
	int timed_out;
	int stopping;
	int lock_fd;
	char *pid_path;
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "acmed: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'acmed --help'.\n");
	return EXIT_USAGE;
}

static int load_config(const char *path, struct config **cfg)
{
	char err[1024];
	int rc = config_load(path, cfg, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_check_config(const char *path)
{
	struct config *cfg = NULL;
	int rc = load_config(path, &cfg);

	if (rc)
		return rc;
	printf("%s: ok (%zu certificate%s, %zu CA%s)\n", cfg->path, cfg->ncerts,
	       cfg->ncerts == 1 ? "" : "s", cfg->ncas, cfg->ncas == 1 ? "" : "s");
	config_free(cfg);
	return 0;
}

/* One acmed per runtime_dir: the pid file is held locked while it runs. */
static int take_pid_file(struct run_ctx *ctx)
{
	char buf[32];
	int fd, n;

	ctx->pid_path = store_path(ctx->cfg->runtime_dir, "acmed.pid");
	if (!ctx->pid_path)
		return -ENOMEM;
	fd = open(ctx->pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_error(NULL, "cannot open %s: %s", ctx->pid_path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		log_error(NULL, "another acmed is running (pid %s, %s); stop it first",
			  buf[0] ? buf : "?", ctx->pid_path);
		close(fd);
		return -EBUSY;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_error(NULL, "cannot write %s: %s", ctx->pid_path, strerror(errno));
		close(fd);
		return -EIO;
	}
	ctx->lock_fd = fd;
	return 0;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->stopping++)
		return;
	log_info(NULL, "%s received; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	service_notify_stopping();
	event_base_loopexit(ctx->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	log_warn(NULL, "SIGHUP received, but this acmed cannot reload its configuration "
		 "yet; restart it to apply changes");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	ctx->timed_out = 1;
	log_error(NULL, "--timeout reached before everything due was done");
	event_base_loopexit(ctx->base, NULL);
}

static void on_idle(struct sched *s, void *arg)
{
	struct run_ctx *ctx = arg;

	event_base_loopexit(ctx->base, NULL);
}

static int run_setup(struct run_ctx *ctx, int64_t deadline)
{
	int *fds = NULL;
	int nfds, rc;

	rc = store_mkdir_p(ctx->cfg->state_dir, 0700);
	if (rc < 0) {
		log_error(NULL, "cannot create state_dir %s: %s", ctx->cfg->state_dir, strerror(-rc));
		return rc;
	}
	rc = store_mkdir_p(ctx->cfg->runtime_dir, 0755);
	if (rc < 0) {
		log_error(NULL, "cannot create runtime_dir %s: %s", ctx->cfg->runtime_dir,
			  strerror(-rc));
		return rc;
	}
	rc = take_pid_file(ctx);
	if (rc < 0)
		return rc;
	nfds = service_listen_fds(&fds);
	if (nfds < 0)
		nfds = 0;
	if (ctx->cfg->ncerts > 0 || nfds > 0) {
		rc = challenge_http_new(ctx->base, (const char *const *)ctx->cfg->listen.v,
					ctx->cfg->listen.n, fds, (size_t)nfds, &ctx->http01);
		free(fds);
		if (rc < 0)
			return rc;
	} else {
		free(fds);
	}
	ctx->cas = calloc(ctx->cfg->ncas ? ctx->cfg->ncas : 1, sizeof(*ctx->cas));
	if (!ctx->cas)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->cfg->ncas; i++) {
		ctx->cas[i] = acme_ca_new(ctx->base, &ctx->cfg->cas[i], ctx->cfg->state_dir);
		if (!ctx->cas[i])
			return -ENOMEM;
		rc = acme_ca_load_account(ctx->cas[i]);
		if (rc < 0)
			return rc;
	}
	ctx->sched = sched_new(ctx->base, ctx->cfg, ctx->cas, ctx->http01, ctx->once, deadline,
			       on_idle, ctx);
	if (!ctx->sched)
		return -ENOMEM;
	return sched_start(ctx->sched);
}

static void run_teardown(struct run_ctx *ctx)
{
	sched_free(ctx->sched);
	for (size_t i = 0; ctx->cas && i < ctx->cfg->ncas; i++)
		acme_ca_free(ctx->cas[i]);
	free(ctx->cas);
	challenge_http_free(ctx->http01);
	if (ctx->lock_fd >= 0) {
		unlink(ctx->pid_path);
		close(ctx->lock_fd);
	}
	free(ctx->pid_path);
}

static int cmd_run(const char *path, int once, long timeout)
{
	struct run_ctx ctx = { .lock_fd = -1, .once = once };
	struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL, *deadline_ev = NULL;
	int64_t deadline = (int64_t)time(NULL) + timeout;
	int rc, status = 0;

	rc = load_config(path, &ctx.cfg);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	ctx.base = event_base_new();
	if (!ctx.base) {
		log_error(NULL, "cannot create the event loop");
		config_free(ctx.cfg);
		return EXIT_OPERATIONAL;
	}
	sig_term = evsignal_new(ctx.base, SIGTERM, on_stop_signal, &ctx);
	sig_int = evsignal_new(ctx.base, SIGINT, on_stop_signal, &ctx);
	sig_hup = evsignal_new(ctx.base, SIGHUP, on_hup, &ctx);
	if (!sig_term || !sig_int || !sig_hup || evsignal_add(sig_term, NULL) < 0 ||
	    evsignal_add(sig_int, NULL) < 0 || evsignal_add(sig_hup, NULL) < 0) {
		log_error(NULL, "cannot install signal handlers");
		status = EXIT_OPERATIONAL;
		goto out;
	}
	log_info(NULL, "acmed %s starting: %s, %zu certificate%s", ACMED_VERSION, ctx.cfg->path,
		 ctx.cfg->ncerts, ctx.cfg->ncerts == 1 ? "" : "s");
	if (run_setup(&ctx, deadline) < 0) {
		status = EXIT_OPERATIONAL;
		goto out;
	}
	if (once) {
		struct timeval tv = { timeout, 0 };
		deadline_ev = evtimer_new(ctx.base, on_deadline, &ctx);
		if (!deadline_ev || evtimer_add(deadline_ev, &tv) < 0) {
			status = EXIT_OPERATIONAL;
			goto out;
		}
	}
	service_notify_ready("running");
	event_base_dispatch(ctx.base);
	if (once) {
		unsigned failed = sched_failed_count(ctx.sched);
		if (ctx.timed_out || failed > 0)
			status = EXIT_OPERATIONAL;
		if (!ctx.stopping)
			log_info(NULL, "done: %u issued, %u failed%s", sched_issued_count(ctx.sched),
				 failed, ctx.timed_out ? ", timed out" : "");
	}
out:
	if (!ctx.stopping)
		service_notify_stopping();
	run_teardown(&ctx);
	if (deadline_ev)
		event_free(deadline_ev);
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	if (sig_hup)
		event_free(sig_hup);
	event_base_free(ctx.base);
	config_free(ctx.cfg);
	return status;
}

int main(int argc, char **argv)
{
	const char *path = getenv("ACMED_CONFIG");
	int verbosity = 0, i;

	if (!path || !*path)
		path = CONFIG_DEFAULT_PATH;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("acmed %s\n", ACMED_VERSION);
			return 0;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i >= argc)
				return usage_error("%s needs a file name", a);
			path = argv[i];
		} else if (strcmp(a, "-v") == 0) {
			verbosity++;
		} else if (strcmp(a, "-q") == 0) {
			verbosity--;
		} else {
			return usage_error("unknown option %s", a);
		}
	}
	log_init(verbosity);
	if (i >= argc)
		return usage_error("%s", "no command given");
	const char *cmd = argv[i++];
	if (strcmp(cmd, "check-config") == 0) {
		if (i < argc)
			return usage_error("check-config takes no argument: %s", argv[i]);
		return cmd_check_config(path);
	}
	if (strcmp(cmd, "run") == 0) {
		int once = 0;
		long timeout = DEFAULT_ONCE_TIMEOUT;
		for (; i < argc; i++) {
			if (strcmp(argv[i], "--once") == 0) {
				once = 1;
			} else if (strcmp(argv[i], "--timeout") == 0) {
				char *end;
				if (++i >= argc)
					return usage_error("%s", "--timeout needs a number of seconds");
				errno = 0;
				timeout = strtol(argv[i], &end, 10);
				if (errno || *end || end == argv[i] || timeout <= 0 || timeout > 86400 * 7)
					return usage_error("--timeout: expected seconds (1..604800), got %s",
							   argv[i]);
			} else if (strcmp(argv[i], "-v") == 0) {
				log_init(++verbosity);
			} else if (strcmp(argv[i], "-q") == 0) {
				log_init(--verbosity);
			} else {
				return usage_error("run: unknown argument %s", argv[i]);
			}
		}
		return cmd_run(path, once, timeout);
	}
	return usage_error("unknown command %s", cmd);
}
