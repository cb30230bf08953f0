/* control_client.c - the CLI side of the control socket: `acmed status`, `acmed renew`, `acmed reload`. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "control.h"
#include "dryrun.h"
#include "status.h"
#include "store.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2
#define DRY_RUN_TIMEOUT_MS (20u * 60 * 1000)    /* orders at a busy staging CA */
#define ANSWER_MAX (256u << 20)        /* a STATUS of 10 000 certificates is a few MB */

static unsigned cli_timeout_ms = 60000;

void control_cli_set_timeout(unsigned ms)
{
	cli_timeout_ms = ms ? ms : 60000;
}

struct cli_conn {
	int fd;
	char *buf;
	size_t len, cap;
	char *path;             /* of the socket, for messages */
};

static void cli_close(struct cli_conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free(k->buf);
	free(k->path);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

/* -errno of connect(): ENOENT / ECONNREFUSED mean nobody listens. */
static int cli_connect(const struct config *cfg, struct cli_conn *k)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int rc;

	memset(k, 0, sizeof(*k));
	k->fd = -1;
	k->path = store_path(cfg->runtime_dir, CONTROL_SOCKET_NAME);
	if (!k->path)
		return -ENOMEM;
	if (strlen(k->path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, k->path, strlen(k->path) + 1);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return -errno;
	if (connect(k->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		close(k->fd);
		k->fd = -1;
		return rc;
	}
	return 0;
}

static int cli_send(struct cli_conn *k, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len, off = 0;
	int rc = 0;

	json_decref(req);
	if (!s)
		return -ENOMEM;
	len = strlen(s);
	s[len++] = '\n';        /* json_dumps' NUL becomes the line end */
	while (off < len) {
		ssize_t w = send(k->fd, s + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	free(s);
	return rc;
}

/* Next answer line as JSON. -ETIMEDOUT, -ECONNRESET (closed), -EBADMSG. */
static int cli_recv(struct cli_conn *k, unsigned timeout_ms, json_t **out)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	char *nl;

	*out = NULL;
	while (!(nl = k->len ? memchr(k->buf, '\n', k->len) : NULL)) {
		struct pollfd p = { .fd = k->fd, .events = POLLIN };
		int64_t left = deadline - clock_mono_ms();
		ssize_t r;
		int pr;

		if (left <= 0)
			return -ETIMEDOUT;
		pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			return -ETIMEDOUT;
		if (k->cap - k->len < 65536) {
			size_t cap = k->cap ? k->cap * 2 : 131072;
			char *b;
			if (cap > ANSWER_MAX)
				return -EBADMSG;
			b = realloc(k->buf, cap);
			if (!b)
				return -ENOMEM;
			k->buf = b;
			k->cap = cap;
		}
		r = read(k->fd, k->buf + k->len, k->cap - k->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		if (r == 0)
			return -ECONNRESET;
		k->len += (size_t)r;
	}
	*out = json_loadb(k->buf, (size_t)(nl - k->buf), 0, NULL);
	k->len -= (size_t)(nl + 1 - k->buf);
	memmove(k->buf, nl + 1, k->len);
	return json_is_object(*out) ? 0 : (json_decref(*out), *out = NULL, -EBADMSG);
}

/* One request, one answer. Messages printed here; returns 0 or an exit code. */
static int cli_call(struct cli_conn *k, json_t *req, json_t **answer)
{
	int rc = cli_send(k, req);

	if (rc == 0)
		rc = cli_recv(k, cli_timeout_ms, answer);
	if (rc == -ETIMEDOUT)
		fprintf(stderr, "acmed: no answer on %s within %u s\n", k->path,
			cli_timeout_ms / 1000);
	else if (rc == -ECONNRESET || rc == -EPIPE)
		fprintf(stderr, "acmed: the daemon closed %s without answering\n", k->path);
	else if (rc == -EBADMSG)
		fprintf(stderr, "acmed: malformed answer on %s\n", k->path);
	else if (rc < 0)
		fprintf(stderr, "acmed: %s: %s\n", k->path, strerror(-rc));
	return rc < 0 ? EXIT_OPERATIONAL : 0;
}

static const char *answer_error(const json_t *a)
{
	const char *e = json_string_value(json_object_get(a, "error"));

	return e ? e : "the daemon refused the request";
}

/* The running daemon's pid: its pid file is locked while it runs. -ESRCH:
 * none; -EAGAIN: a daemon is starting and has not written its pid yet. */
static int cli_daemon_pid(const struct config *cfg, pid_t *pid)
{
	char *path = store_path(cfg->runtime_dir, CONTROL_PID_NAME), buf[32];
	long v = 0;
	int fd, rc = -ESRCH;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = errno == ENOENT ? -ESRCH : -errno;
		if (rc != -ESRCH)
			fprintf(stderr, "acmed: cannot open %s: %s\n", path, strerror(errno));
		free(path);
		return rc;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		rc = -ESRCH;    /* left behind by an acmed that is gone */
	} else if (errno == EWOULDBLOCK) {
		/* Locked. The daemon writes its pid right after taking the lock
		 * and before opening its control socket: empty only while it starts. */
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		char *end;

		buf[n > 0 ? n : 0] = '\0';
		v = strtol(buf, &end, 10);
		if (n > 0 && end != buf && (*end == '\n' || *end == '\0') && v > 1) {
			*pid = (pid_t)v;
			rc = 0;
		} else {
			rc = -EAGAIN;
		}
	} else {
		rc = -errno;
		fprintf(stderr, "acmed: cannot lock %s: %s\n", path, strerror(errno));
	}
	close(fd);
	free(path);
	return rc;
}

int control_cli_reload(const struct config *cfg)
{
	struct cli_conn k = { .fd = -1 };
	json_t *ack = NULL, *a = NULL;
	pid_t pid = 0;
	int rc, status = EXIT_OPERATIONAL;

	rc = cli_connect(cfg, &k);
	if (rc < 0) {
		int prc = cli_daemon_pid(cfg, &pid);

		if (prc == -ESRCH)
			fprintf(stderr, "acmed is not running (runtime_dir %s)\n", cfg->runtime_dir);
		else if (prc == -EAGAIN)
			fprintf(stderr, "acmed is starting (%s/%s holds no pid yet); try again\n",
				cfg->runtime_dir, CONTROL_PID_NAME);
		else if (prc == 0)
			fprintf(stderr, "acmed (pid %ld) is running, but its control socket %s cannot be "
				"reached: %s\n", (long)pid, k.path ? k.path : cfg->runtime_dir,
				strerror(-rc));
		goto out;
	}
	/* The socket answers, so the pid is written (it comes first). */
	rc = cli_daemon_pid(cfg, &pid);
	if (rc < 0) {
		if (rc == -EAGAIN || rc == -ESRCH)
			fprintf(stderr, "acmed: %s/%s holds no pid of a running daemon\n",
				cfg->runtime_dir, CONTROL_PID_NAME);
		goto out;
	}
	/* Ask for the answer first, so the reload cannot finish before we listen. */
	if (cli_call(&k, json_pack("{s:s}", "cmd", "reload-wait"), &ack))
		goto out;
	if (!json_is_true(json_object_get(ack, "ok")) ||
	    !json_is_true(json_object_get(ack, "waiting"))) {
		fprintf(stderr, "acmed: %s\n", answer_error(ack));
		goto out;
	}
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "acmed: cannot signal pid %ld: %s\n", (long)pid, strerror(errno));
		goto out;
	}
	rc = cli_recv(&k, cli_timeout_ms, &a);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "acmed: the daemon (pid %ld) did not report its reload within "
			"%u s; see its log\n", (long)pid, cli_timeout_ms / 1000);
	} else if (rc < 0) {
		fprintf(stderr, "acmed: the daemon (pid %ld) closed %s before the reload "
			"finished\n", (long)pid, k.path);
	} else if (json_is_true(json_object_get(a, "ok"))) {
		json_int_t n = json_integer_value(json_object_get(a, "certificates"));
		printf("reloaded: %lld certificate%s (%lld added, %lld removed, %lld changed)\n",
		       (long long)n, n == 1 ? "" : "s",
		       (long long)json_integer_value(json_object_get(a, "added")),
		       (long long)json_integer_value(json_object_get(a, "removed")),
		       (long long)json_integer_value(json_object_get(a, "changed")));
		status = 0;
	} else {
		fprintf(stderr, "reload failed (the running configuration stays): %s\n",
			answer_error(a));
	}
out:
	json_decref(ack);
	json_decref(a);
	cli_close(&k);
	return status;
}

int control_cli_status(const struct config *cfg, enum control_status_mode mode)
{
	struct cli_conn k = { .fd = -1 };
	json_t *a = NULL, *st = NULL;
	pid_t pid;
	int rc, status = mode == CONTROL_STATUS_CHECK ? STATUS_CHECK_UNKNOWN : EXIT_OPERATIONAL;

	rc = cli_connect(cfg, &k);
	if (rc == 0) {
		if (cli_call(&k, json_pack("{s:s}", "cmd", "status"), &a))
			goto out;
		if (!json_is_true(json_object_get(a, "ok")) ||
		    !json_is_object(json_object_get(a, "status"))) {
			fprintf(stderr, "acmed: %s\n", answer_error(a));
			goto out;
		}
		st = json_incref(json_object_get(a, "status"));
	} else if (rc == -ENOENT || rc == -ECONNREFUSED) {
		if (cli_daemon_pid(cfg, &pid) == 0)
			fprintf(stderr, "acmed: pid %ld holds %s/%s but does not answer on %s; "
				"showing what is on disk\n", (long)pid, cfg->runtime_dir,
				CONTROL_PID_NAME, k.path);
		st = status_from_disk(cfg);
		if (!st) {
			fprintf(stderr, "acmed: out of memory\n");
			goto out;
		}
	} else {
		fprintf(stderr, "acmed: cannot connect to %s: %s%s\n", k.path ? k.path : "",
			strerror(-rc), rc == -EACCES ? " (run as root or as acmed's user)" : "");
		goto out;
	}
	if (mode == CONTROL_STATUS_CHECK) {
		status = status_check(stdout, st);
		if (fflush(stdout) != 0)
			status = STATUS_CHECK_UNKNOWN;
		goto out;
	}
	if (mode == CONTROL_STATUS_JSON) {
		json_dumpf(st, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		status_print_table(stdout, st);
	}
	status = fflush(stdout) == 0 ? 0 : EXIT_OPERATIONAL;
out:
	if (mode == CONTROL_STATUS_CHECK && !st)
		printf("ACMED UNKNOWN - cannot get acmed's status (see its message on stderr)\n");
	json_decref(st);
	json_decref(a);
	cli_close(&k);
	return status;
}

/* Connect to the running daemon; when there is none, say so and what to do instead. */
static int cli_connect_daemon(const struct config *cfg, struct cli_conn *k, const char *instead)
{
	int rc = cli_connect(cfg, k);

	if (rc == -ENOENT || rc == -ECONNREFUSED)
		fprintf(stderr, "acmed is not running (runtime_dir %s); %s\n", cfg->runtime_dir, instead);
	else if (rc < 0)
		fprintf(stderr, "acmed: cannot connect to %s: %s\n", k->path ? k->path : "",
			strerror(-rc));
	return rc;
}

static json_t *names_array(const char *const *names, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

/* A renew or dry-run request; its answer in *a. -1 when it failed (said;
 * *status set to 2 for an unknown name). */
static int renew_call(struct cli_conn *k, const char *cmd, const char *const *names, size_t n, int all,
		      int force, json_t **a, int *status)
{
	if (cli_call(k, json_pack("{s:s, s:o*, s:b, s:b}", "cmd", cmd, "names", names_array(names, n),
				  "all", all, "force", force), a))
		return -1;
	if (json_is_true(json_object_get(*a, "ok")))
		return 0;
	fprintf(stderr, "acmed: %s\n", answer_error(*a));
	if (json_is_true(json_object_get(*a, "unknown")))
		*status = EXIT_USAGE;
	return -1;
}

int control_cli_renew(const struct config *cfg, const char *const *names, size_t n, int all,
		      int force)
{
	struct cli_conn k = { .fd = -1 };
	json_t *a = NULL, *v;
	int status = EXIT_OPERATIONAL;
	size_t i;

	if (!all && n == 0) {
		fprintf(stderr, "acmed: renew: name the certificates to renew, or use --all\n");
		return EXIT_USAGE;
	}
	if (all && n > 0) {
		fprintf(stderr, "acmed: renew: certificate names and --all exclude each other\n");
		return EXIT_USAGE;
	}
	if (cli_connect_daemon(cfg, &k, "start it, or use `acmed run --once`") < 0 ||
	    renew_call(&k, "renew", names, n, all, force, &a, &status) < 0)
		goto out;
	if (json_array_size(json_object_get(a, "renewing")) > 0) {
		printf("renewing:");
		json_array_foreach(json_object_get(a, "renewing"), i, v)
			printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
		printf("\n");
	}
	if (json_array_size(json_object_get(a, "not_due")) > 0) {
		printf("not due yet (use --force to renew anyway):");
		json_array_foreach(json_object_get(a, "not_due"), i, v)
			printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
		printf("\n");
	}
	if (json_array_size(json_object_get(a, "renewing")) == 0 &&
	    json_array_size(json_object_get(a, "not_due")) == 0)
		printf("nothing to renew\n");
	status = 0;
out:
	json_decref(a);
	cli_close(&k);
	return status;
}

/* One result line of a dry run. */
static int dry_run_result(const json_t *r)
{
	const char *name = json_string_value(json_object_get(r, "name"));
	const char *msg = json_string_value(json_object_get(r, "message"));
	const char *dir = json_string_value(json_object_get(r, "directory"));

	if (json_is_true(json_object_get(r, "ok"))) {
		printf("%s: ok: the staging CA (%s) issued it; nothing installed\n", name ? name : "?",
		       dir ? dir : "?");
		return 1;
	}
	printf("%s: FAILED: %s\n", name ? name : "?", msg ? msg : "no reason given");
	return 0;
}

int control_cli_dry_run_results(const json_t *a)
{
	const json_t *v;
	size_t i, ok = 0;

	if (!json_is_true(json_object_get(a, "ok"))) {
		fprintf(stderr, "acmed: %s\n", answer_error(a));
		return EXIT_OPERATIONAL;
	}
	json_array_foreach(json_object_get(a, "results"), i, v)
		ok += (size_t)dry_run_result(v);
	return ok > 0 && ok == json_array_size(json_object_get(a, "results")) ? 0 : EXIT_OPERATIONAL;
}

int control_cli_dry_run(const struct config *cfg, const char *const *names, size_t n, int all)
{
	struct cli_conn k = { .fd = -1 };
	json_t *a = NULL;
	int rc, status = EXIT_OPERATIONAL;

	if (all ? n > 0 : n == 0) {
		fprintf(stderr, "acmed: renew --dry-run: give certificate names or --all\n");
		return EXIT_USAGE;
	}
	/* A running daemon answers the CA's challenges: port 80 stays its own.
	 * Without one, the dry run runs here (dryrun_cmd.c). */
	rc = cli_connect(cfg, &k);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		cli_close(&k);
		return dryrun_cmd_standalone(cfg, names, n, all);
	}
	if (rc < 0) {
		fprintf(stderr, "acmed: cannot connect to %s: %s\n", k.path ? k.path : "", strerror(-rc));
		goto out;
	}
	if (renew_call(&k, "dry-run", names, n, all, 0, &a, &status) < 0)
		goto out;
	if (!json_is_true(json_object_get(a, "waiting"))) {
		fprintf(stderr, "acmed: the daemon did not start a dry run (an older acmed? restart it)\n");
		goto out;
	}
	fprintf(stderr, "acmed: dry run of %zu certificate%s at the staging CA; waiting for the orders\n",
		json_array_size(json_object_get(a, "dry_run")),
		json_array_size(json_object_get(a, "dry_run")) == 1 ? "" : "s");
	json_decref(a);
	a = NULL;
	rc = cli_recv(&k, DRY_RUN_TIMEOUT_MS, &a);
	if (rc < 0) {
		fprintf(stderr, "acmed: no result of the dry run on %s: %s\n", k.path,
			rc == -ETIMEDOUT ? "timed out" : rc == -ECONNRESET ? "the daemon closed the socket"
			: strerror(-rc));
		goto out;
	}
	status = control_cli_dry_run_results(a);
out:
	json_decref(a);
	cli_close(&k);
	return status;
}

/* A request the daemon answers once the CA did (revoke, account): sent on the
 * connected k, its answer printed as "label: message" (errors on stderr,
 * after err_label when given). 0, or an exit status (2 for an unknown name). */
static int later_call(struct cli_conn *k, json_t *req, const char *label, const char *err_label)
{
	json_t *a = NULL;
	int rc = req ? cli_send(k, req) : -ENOMEM, status = EXIT_OPERATIONAL;

	if (rc == 0)
		rc = cli_recv(k, DRY_RUN_TIMEOUT_MS, &a);
	if (rc < 0) {
		fprintf(stderr, "acmed: no answer on %s: %s\n", k->path, rc == -ETIMEDOUT ? "timed out" :
			rc == -ECONNRESET ? "the daemon closed the socket" : strerror(-rc));
	} else if (!json_is_true(json_object_get(a, "ok"))) {
		fprintf(stderr, "acmed: %s%s%s\n", err_label ? err_label : "", err_label ? ": " : "",
			answer_error(a));
		status = json_is_true(json_object_get(a, "unknown")) ? EXIT_USAGE : EXIT_OPERATIONAL;
	} else {
		printf("%s: %s\n", label, json_string_value(json_object_get(a, "message")));
		status = 0;
	}
	json_decref(a);
	return status;
}

int control_cli_revoke(const struct config *cfg, const char *name, const char *reason)
{
	struct cli_conn k = { .fd = -1 };
	int rc, status = EXIT_OPERATIONAL;

	/* The daemon revokes with the account and orders the replacement itself;
	 * without one the command does both (revoke_cmd.c). */
	rc = cli_connect(cfg, &k);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		cli_close(&k);
		return revoke_cmd_standalone(cfg, name, reason);
	}
	if (rc < 0)
		fprintf(stderr, "acmed: cannot connect to %s: %s\n", k.path ? k.path : "", strerror(-rc));
	else
		status = later_call(&k, json_pack("{s:s, s:s, s:s}", "cmd", "revoke", "name", name, "reason",
						  reason), name, name);
	cli_close(&k);
	return status;
}

/* One account change through the daemon: 0 or an exit status. */
static int account_one(const struct config *cfg, const char *action, const char *ca)
{
	struct cli_conn k = { .fd = -1 };
	int rc = cli_connect(cfg, &k), status = EXIT_OPERATIONAL;
	char label[80];

	snprintf(label, sizeof(label), "CA %s", ca);
	if (rc < 0)
		fprintf(stderr, "acmed: cannot connect to %s: %s\n", k.path ? k.path : "", strerror(-rc));
	else
		status = later_call(&k, json_pack("{s:s, s:s, s:s}", "cmd", "account", "action", action, "ca", ca),
				    label, NULL);
	cli_close(&k);
	return status;
}

int control_cli_account(const struct config *cfg, const char *action, const char *ca)
{
	struct cli_conn k = { .fd = -1 };
	int rc = cli_connect(cfg, &k), status = 0;

	cli_close(&k);
	if (rc == -ENOENT || rc == -ECONNREFUSED)
		return -ENOENT;
	for (size_t i = 0; i < cfg->ncas; i++)
		if (!ca || strcmp(cfg->cas[i].name, ca) == 0)
			status |= account_one(cfg, action, cfg->cas[i].name);
	return status;
}
