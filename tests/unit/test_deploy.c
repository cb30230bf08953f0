/* test_deploy.c - unit tests for deploy.c: real exec hooks, and unit reloads against a private dbus-daemon with a dbusmock systemd; acmed's timers on a fake clock. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>
#include <systemd/sd-bus.h>

#include "deploy.h"
#include "fakeclock.h"
#include "log.h"

#define SAFETY_S 60     /* real seconds before a wait that never ends fails the test */

/* ---- helpers ---- */

static char tmpdir[64];

static void rm_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (tmpdir[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static char *tpath(const char *name)
{
	static char buf[32][256];
	static int i;
	char *p = buf[i++ % 32];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {            /* no ftell: /proc files have no size */
		if (cap - len < 4096) {
			cap += 65536;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Writes an executable /bin/sh script into tmpdir; returns its path (static buffer). */
static char *script(const char *name, const char *body)
{
	char *path = tpath(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0700), 0);
	return path;
}

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* stderr capture (log.c writes there) */
static int saved_stderr = -1;

static void capture_start(void)
{
	int fd = open(tpath("stderr.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* What was logged so far (malloc'd). */
static char *captured(void)
{
	char *s;

	fflush(stderr);
	s = slurp(tpath("stderr.log"));
	assert_non_null(s);
	return s;
}

static char *capture_end(void)
{
	char *s = captured();

	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	fputs(s, stderr);       /* keep it visible in the test log */
	return s;
}

/* needles appear in the log in this order (NULL-terminated) */
static void assert_log_order(const char *log, ...)
{
	const char *prev = log, *needle;
	va_list ap;

	va_start(ap, log);
	while ((needle = va_arg(ap, const char *)) != NULL) {
		const char *at = strstr(prev, needle);

		if (!at)
			fail_msg("\"%s\" not in the log after the previous line", needle);
		prev = at + strlen(needle);
	}
	va_end(ap);
}

/* a config_cert built from string lists */
struct tcert {
	struct config_cert c;
	char name[64], out[128];
	char *dom[3], *units[8], *argv[10];
};

static void tcert_init(struct tcert *t, const char *name, const char *const *units,
		       const char *const *argv)
{
	size_t n;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->out, sizeof(t->out), "/srv/certs/%s", name);
	t->dom[0] = (char *)"example.org";
	t->dom[1] = (char *)"www.example.org";
	t->c.name = t->name;
	t->c.output_dir = t->out;
	t->c.domains.v = t->dom;
	t->c.domains.n = 2;
	for (n = 0; units && units[n]; n++)
		t->units[n] = (char *)units[n];
	t->c.reload.v = t->units;
	t->c.reload.n = n;
	for (n = 0; argv && argv[n]; n++)
		t->argv[n] = (char *)argv[n];
	t->c.exec.v = t->argv;
	t->c.exec.n = n;
	t->c.challenge = (char *)"http-01";
}

/* event loop driver */
struct result {
	char *name, *error;
	int ok;
};

struct ctx {
	struct event_base *base;
	struct deploy *d;
	struct result res[64];
	size_t nres;
	int idle, free_in_result;
	struct tcert *again;    /* deployed from the first result callback */
};

static void on_result(const char *name, int ok, const char *error, void *arg)
{
	struct ctx *c = arg;

	assert_true(c->nres < 64);
	assert_true(ok ? error == NULL : error != NULL);
	c->res[c->nres].name = strdup(name);
	c->res[c->nres].error = error ? strdup(error) : NULL;
	c->res[c->nres].ok = ok;
	c->nres++;
	if (c->free_in_result) {
		deploy_free(c->d);
		c->d = NULL;
	}
	if (c->again) {
		struct tcert *t = c->again;

		c->again = NULL;
		assert_int_equal(deploy_certificate(c->d, &t->c), 0);
	}
}

static void on_idle(void *arg)
{
	struct ctx *c = arg;

	c->idle++;
}

static void ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	assert_non_null(c->base);
	c->d = deploy_new(c->base, on_result, c);
	assert_non_null(c->d);
	deploy_set_idle_cb(c->d, on_idle, c);
	deploy_set_batch_window_ms(c->d, 100);
}

static void ctx_done(struct ctx *c)
{
	deploy_free(c->d);
	for (size_t i = 0; i < c->nres; i++) {
		free(c->res[i].name);
		free(c->res[i].error);
	}
	event_base_free(c->base);
}

static int safety_hit;

static void on_safety(evutil_socket_t fd, short what, void *arg)
{
	safety_hit = 1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;
}

static int real_timer(long first_ms, long every_ms)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { every_ms / 1000, (every_ms % 1000) * 1000000 },
	};

	assert_true(fd >= 0);
	assert_int_equal(timerfd_settime(fd, 0, &its, NULL), 0);
	return fd;
}

/*
 * Run the loop on real events (hooks' output and exits, the bus) until pred
 * holds. The fake clock stands still: the deployer's timers (batch window, unit
 * and hook timeouts) fire only when a test moves it with advance(). A real
 * 10 ms tick re-checks pred for conditions outside the loop (the mock's call
 * log); a real SAFETY_S timer fails a wait that never ends.
 */
static void wait_until(struct ctx *c, int (*pred)(struct ctx *, const void *), const void *arg)
{
	int sfd = real_timer(SAFETY_S * 1000, 0), tfd = real_timer(10, 10);
	struct event *safety = event_new(c->base, sfd, EV_READ, on_safety, NULL);
	struct event *tick = event_new(c->base, tfd, EV_READ | EV_PERSIST, on_tick, NULL);

	event_add(safety, NULL);
	event_add(tick, NULL);
	safety_hit = 0;
	while (!pred(c, arg) && !safety_hit)
		event_base_loop(c->base, EVLOOP_ONCE);
	event_free(safety);
	event_free(tick);
	close(sfd);
	close(tfd);
	if (safety_hit)
		fail_msg("waited %d s for an event that never came", SAFETY_S);
}

static int is_idle(struct ctx *c, const void *arg)
{
	return c->idle > 0;
}

static int has_results(struct ctx *c, const void *arg)
{
	return c->nres >= *(const size_t *)arg;
}

static int in_log(struct ctx *c, const void *arg)
{
	char *s = captured();
	int found = strstr(s, arg) != NULL;

	free(s);
	return found;
}

/* Until the deployer is idle (every result delivered). */
static void run(struct ctx *c)
{
	wait_until(c, is_idle, NULL);
}

/* Move the fake clock and run what is due now. */
static void advance(struct ctx *c, int64_t ms)
{
	fakeclock_advance_ms(ms);
	event_base_loop(c->base, EVLOOP_NONBLOCK);
}

static struct result *result_of(struct ctx *c, const char *name)
{
	struct result *r = NULL;

	for (size_t i = 0; i < c->nres; i++)
		if (strcmp(c->res[i].name, name) == 0) {
			assert_null(r);         /* one result per certificate */
			r = &c->res[i];
		}
	assert_non_null(r);
	return r;
}

static void assert_no_children(void)
{
	int st;

	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void assert_gone(pid_t pid)
{
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* A hook's background process, orphaned when the hook was killed, comes to us
 * (a subreaper): wait for its exact end. */
static void assert_orphan_killed(pid_t pid, int sig)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_true(fd >= 0);
	if (poll(&p, 1, SAFETY_S * 1000) != 1)
		fail_msg("process %d outlived its hook's process group", (int)pid);
	close(fd);
	assert_int_equal(waitpid(pid, &st, WNOHANG), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), sig);
}

static pid_t pid_after(const char *log, const char *prefix)
{
	const char *p = strstr(log, prefix);

	assert_non_null(p);
	return (pid_t)atoi(p + strlen(prefix));
}

/* A FIFO in tmpdir nobody writes to: a hook reading it blocks until killed. */
static const char *never_fifo(void)
{
	unlink(tpath("never"));
	assert_int_equal(mkfifo(tpath("never"), 0600), 0);
	return tpath("never");
}

/* ---- exec hooks ---- */

static int exec_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/acmed-test-deploy-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int exec_teardown(void **state)
{
	/* a failed test may leave hooks blocked on the FIFO: let them go */
	int fd = open(tpath("never"), O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	rm_tmpdir();
	return 0;
}

static void test_hook_env_argv(void **state)
{
	int use_pidfd = *(int *)*state;
	const char *hook = script("env.sh",
		"out=$1\n"
		"{ printf 'argc=%s\\n' \"$#\"; printf 'arg0=%s\\n' \"$0\";\n"
		"  for a in \"$@\"; do printf 'arg=[%s]\\n' \"$a\"; done; env;\n"
		"  if read -r x; then echo \"stdin=[$x]\"; else echo stdin=eof; fi\n"
		"  if [ -e /proc/$$/fd/$LEAKFD ]; then echo leaked=$LEAKFD; fi; } > \"$out\"");
	char inject[300];
	const char *argv[] = { hook, tpath("env.out"), "two words", inject, "*", "", NULL };
	struct tcert t;
	struct ctx c;
	char *out, *line, *save, want[400];
	int seen[6] = { 0 };

	int leak = open("/dev/null", O_RDONLY);        /* no O_CLOEXEC: must not reach the hook */
	char leakfd[16];

	assert_true(leak > 2);
	snprintf(leakfd, sizeof(leakfd), "%d", leak);
	setenv("LEAKFD", leakfd, 1);
	snprintf(inject, sizeof(inject), "$(touch %s)", tpath("pwned"));
	setenv("ACMED_CERT_NAME", "stale", 1);
	setenv("RENEWED_LINEAGE", "stale", 1);
	setenv("ACMED_TEST_INHERITED", "yes it is", 1);
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);     /* acmed's, not the hook's */
	setenv("WATCHDOG_USEC", "30000000", 1);
	tcert_init(&t, "web", NULL, argv);
	ctx_init(&c);
	deploy_set_use_pidfd(c.d, use_pidfd);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	assert_true(deploy_busy(c.d));
	run(&c);
	unsetenv("ACMED_CERT_NAME");
	unsetenv("RENEWED_LINEAGE");
	unsetenv("ACMED_TEST_INHERITED");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("LEAKFD");
	close(leak);
	assert_false(deploy_busy(c.d));
	assert_int_equal(c.idle, 1);
	assert_int_equal(c.nres, 1);
	assert_string_equal(c.res[0].name, "web");
	assert_true(c.res[0].ok);
	assert_null(c.res[0].error);

	out = slurp(tpath("env.out"));
	assert_non_null(out);
	assert_true(strstr(out, "argc=5\n") != NULL);
	snprintf(want, sizeof(want), "arg=[two words]\narg=[%s]\narg=[*]\narg=[]\n", inject);
	assert_non_null(strstr(out, want));
	assert_int_equal(access(tpath("pwned"), F_OK), -1);     /* no shell in between */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "arg0=", 5) == 0) {
			assert_string_equal(line + 5, hook);
			seen[0]++;
		} else if (strncmp(line, "ACMED_CERT_NAME=", 16) == 0) {
			assert_string_equal(line, "ACMED_CERT_NAME=web");
			seen[1]++;
		} else if (strncmp(line, "ACMED_DOMAINS=", 14) == 0) {
			assert_string_equal(line, "ACMED_DOMAINS=example.org www.example.org");
			seen[2]++;
		} else if (strncmp(line, "ACMED_OUTPUT_DIR=", 17) == 0) {
			assert_string_equal(line, "ACMED_OUTPUT_DIR=/srv/certs/web");
			seen[3]++;
		} else if (strncmp(line, "RENEWED_LINEAGE=", 16) == 0) {
			assert_string_equal(line, "RENEWED_LINEAGE=/srv/certs/web");
			seen[4]++;
		} else if (strncmp(line, "RENEWED_DOMAINS=", 16) == 0) {
			assert_string_equal(line, "RENEWED_DOMAINS=example.org www.example.org");
			seen[5]++;
		}
	}
	for (int i = 0; i < 6; i++)
		assert_int_equal(seen[i], 1);
	/* acmed's own environment is passed on */
	free(out);
	out = slurp(tpath("env.out"));
	assert_true(strstr(out, "\nACMED_TEST_INHERITED=yes it is\n") != NULL);
	assert_null(strstr(out, "NOTIFY_SOCKET"));
	assert_null(strstr(out, "WATCHDOG_USEC"));
	assert_non_null(strstr(out, "\nstdin=eof\n"));       /* stdin is /dev/null */
	assert_null(strstr(out, "leaked="));
	free(out);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_exit_status(void **state)
{
	const char *hook = script("exit3.sh", "echo about to fail\nexit 3");
	const char *argv[] = { hook, NULL };
	struct tcert t;
	struct ctx c;
	char *log, want[512];

	tcert_init(&t, "web", NULL, argv);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	snprintf(want, sizeof(want), "hook %s exited with status 3", hook);
	assert_string_equal(c.res[0].error, want);
	snprintf(want, sizeof(want), "error: [web] hook %s exited with status 3\n", hook);
	assert_int_equal(count_substr(log, want), 1);
	assert_int_equal(count_substr(log, "[web] hook: about to fail\n"), 1);
	free(log);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_signal(void **state)
{
	const char *hook = script("kill.sh", "kill -KILL $$");
	const char *argv[] = { hook, NULL };
	struct tcert t;
	struct ctx c;

	tcert_init(&t, "sig", NULL, argv);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	run(&c);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "killed by signal 9"));
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_timeout(void **state)
{
	int use_pidfd = *(int *)*state;
	char body[256], want[512], *log;
	const char *argv[] = { NULL, NULL };
	struct tcert t;
	struct ctx c;
	pid_t bg;

	/* the hook's own child must go too: the whole process group is signalled */
	snprintf(body, sizeof(body), "cat '%s' >/dev/null &\necho bg=$!\nwait", never_fifo());
	argv[0] = script("block.sh", body);
	tcert_init(&t, "slow", NULL, argv);
	ctx_init(&c);
	deploy_set_use_pidfd(c.d, use_pidfd);
	deploy_set_exec_timeout_ms(c.d, 300);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	wait_until(&c, in_log, "[slow] hook: bg=");
	advance(&c, 299);
	assert_int_equal(c.nres, 0);                    /* the timeout cannot have fired */
	advance(&c, 1);                                 /* SIGTERM to the group: enough */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	snprintf(want, sizeof(want), "hook %s timed out after 300 ms and was killed", argv[0]);
	assert_string_equal(c.res[0].error, want);
	assert_log_order(log, "[slow] hook: bg=", "warning: [slow] hook ",
			 "block.sh still running after 300 ms, stopping it\n", "error: [slow] hook ",
			 "block.sh timed out after 300 ms and was killed\n", NULL);
	bg = pid_after(log, "[slow] hook: bg=");
	free(log);
	assert_orphan_killed(bg, SIGTERM);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_timeout_sigkill(void **state)
{
	char body[512], *log;
	const char *argv[] = { NULL, NULL };
	struct tcert t;
	struct ctx c;
	pid_t bg;

	/* it and its background child ignore SIGTERM; it says when it gets one */
	snprintf(body, sizeof(body), "trap '' TERM\ncat '%s' >/dev/null &\n"
		 "trap 'echo got-TERM' TERM\necho bg=$!\nwait\nwait", never_fifo());
	argv[0] = script("stubborn.sh", body);
	tcert_init(&t, "stubborn", NULL, argv);
	ctx_init(&c);
	deploy_set_exec_timeout_ms(c.d, 200);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	wait_until(&c, in_log, "[stubborn] hook: bg=");
	advance(&c, 200);                               /* SIGTERM */
	wait_until(&c, in_log, "[stubborn] hook: got-TERM\n");
	advance(&c, 4999);
	assert_int_equal(c.nres, 0);                    /* no SIGKILL before 5 s */
	advance(&c, 1);                                 /* SIGKILL */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "stubborn.sh timed out after 200 ms and was killed"));
	assert_log_order(log, "[stubborn] hook: bg=", "still running after 200 ms, stopping it\n",
			 "[stubborn] hook: got-TERM\n", "error: [stubborn] hook ", NULL);
	bg = pid_after(log, "[stubborn] hook: bg=");
	free(log);
	assert_orphan_killed(bg, SIGKILL);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_output(void **state)
{
	const char *hook = script("talk.sh",
		"echo 'hello world'\necho 'to stderr' >&2\nprintf 'crlf line\\r\\n'\n"
		"printf 'tab\\there\\n'\nprintf 'no newline at the end'");
	const char *argv[] = { hook, NULL };
	struct tcert t;
	struct ctx c;
	char *log;
	const char *a, *b, *e;

	tcert_init(&t, "web", NULL, argv);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 1);
	assert_true(c.res[0].ok);
	a = strstr(log, "info: [web] hook: hello world\n");
	b = strstr(log, "info: [web] hook: to stderr\n");
	e = strstr(log, "info: [web] hook: no newline at the end\n");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(e);
	assert_true(a < b && b < e);
	assert_int_equal(count_substr(log, "[web] hook: crlf line\n"), 1);
	assert_int_equal(count_substr(log, "[web] hook: tab here\n"), 1);
	assert_int_equal(count_substr(log, "[web] hook: "), 5);
	free(log);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_output_bounded(void **state)
{
	/* one 5000-byte line, then 100 KB of 100-byte lines */
	const char *hook = script("flood.sh",
		"i=0; l=''; while [ $i -lt 50 ]; do l=\"${l}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; "
		"i=$((i+1)); done\n"
		"printf '%.5000s\\n' \"$l\"\n"
		"y=yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n"
		"i=0; while [ $i -lt 1000 ]; do echo \"$i $y\"; i=$((i+1)); done");
	const char *argv[] = { hook, NULL };
	struct tcert t;
	struct ctx c;
	char *log, want[1100];
	size_t lines;

	tcert_init(&t, "web", NULL, argv);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 1);
	assert_true(c.res[0].ok);
	/* the long line is cut at 1024 bytes */
	memset(want, 'x', 1024);
	strcpy(want + 1024, " [...]\n");
	assert_int_equal(count_substr(log, want), 1);
	assert_null(strstr(log, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
	/* at most 64 KiB logged, then one notice; the first lines are there */
	lines = count_substr(log, "[web] hook: ");
	assert_true(lines >= 600 && lines <= 1 + 65536 / 100 + 1);
	assert_int_equal(count_substr(log, "] hook: 0 yyyy"), 1);
	assert_int_equal(count_substr(log, "] hook: 999 yyyy"), 0);
	assert_int_equal(count_substr(log, "[web] hook: output truncated after "), 1);
	free(log);
	ctx_done(&c);
	assert_no_children();
}

static void test_hook_missing(void **state)
{
	const char *argv1[] = { "/nonexistent/acmed-hook", "--flag", NULL };
	const char *argv2[] = { "acmed-no-such-hook-in-path", NULL };
	struct tcert t1, t2, t3;
	struct ctx c;
	char *log;

	tcert_init(&t1, "one", NULL, argv1);
	tcert_init(&t2, "two", NULL, argv2);
	tcert_init(&t3, "three", NULL, NULL);   /* nothing to do: ok */
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t3.c), 0);
	assert_int_equal(c.nres, 0);            /* never from inside deploy_certificate */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 3);
	assert_false(result_of(&c, "one")->ok);
	assert_string_equal(result_of(&c, "one")->error,
			    "hook /nonexistent/acmed-hook: cannot run: No such file or directory");
	assert_false(result_of(&c, "two")->ok);
	assert_non_null(strstr(result_of(&c, "two")->error, "No such file or directory"));
	assert_true(result_of(&c, "three")->ok);
	assert_int_equal(count_substr(log, "[one] hook /nonexistent/acmed-hook: cannot run"), 1);
	free(log);
	ctx_done(&c);
	assert_no_children();
}

static void test_hooks_concurrent(void **state)
{
	char b1[512], b2[512];
	const char *h1, *h2, *h3 = script("c3.sh", "exit 0");
	const char *a1[] = { NULL, NULL }, *a2[] = { NULL, NULL }, *a3[] = { h3, NULL };
	struct tcert t1, t2, t3;
	struct ctx c;

	/* each needs the other running: one after the other they would never end */
	unlink(tpath("c1-to-c2"));
	unlink(tpath("c2-to-c1"));
	assert_int_equal(mkfifo(tpath("c1-to-c2"), 0600), 0);
	assert_int_equal(mkfifo(tpath("c2-to-c1"), 0600), 0);
	snprintf(b1, sizeof(b1), "echo hi > '%s'\nread x < '%s'\nexit 0",
		 tpath("c1-to-c2"), tpath("c2-to-c1"));
	snprintf(b2, sizeof(b2), "read x < '%s'\necho hi > '%s'\nexit 4",
		 tpath("c1-to-c2"), tpath("c2-to-c1"));
	a1[0] = h1 = script("c1.sh", b1);
	a2[0] = h2 = script("c2.sh", b2);
	tcert_init(&t1, "c1", NULL, a1);
	tcert_init(&t2, "c2", NULL, a2);
	tcert_init(&t3, "c3", NULL, a3);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t3.c), 0);
	run(&c);
	assert_int_equal(c.nres, 3);
	assert_int_equal(c.idle, 1);
	assert_true(result_of(&c, "c1")->ok);
	assert_false(result_of(&c, "c2")->ok);
	assert_non_null(strstr(result_of(&c, "c2")->error, "exited with status 4"));
	assert_true(result_of(&c, "c3")->ok);
	ctx_done(&c);
	assert_no_children();
}

/* The first line a hook writes into a FIFO of tmpdir, read without blocking the test forever. */
static void read_fifo(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	assert_true(fd >= 0);
	if (poll(&p, 1, SAFETY_S * 1000) != 1)
		fail_msg("nothing came through %s", path);
	n = read(fd, buf, len - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	close(fd);
}

static void test_free_kills_hook(void **state)
{
	char body[512], line[64];
	const char *argv[] = { NULL, NULL };
	struct tcert t;
	struct ctx c;
	pid_t pid;

	unlink(tpath("pid"));
	assert_int_equal(mkfifo(tpath("pid"), 0600), 0);
	snprintf(body, sizeof(body), "echo $$ > '%s'\nexec cat '%s'", tpath("pid"), never_fifo());
	argv[0] = script("long.sh", body);
	tcert_init(&t, "long", NULL, argv);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	read_fifo(tpath("pid"), line, sizeof(line));   /* it runs */
	pid = (pid_t)atoi(line);
	assert_true(pid > 1);
	assert_true(deploy_busy(c.d));
	assert_int_equal(kill(pid, 0), 0);
	deploy_free(c.d);
	c.d = NULL;
	assert_gone(pid);                       /* killed and reaped: no zombie */
	event_base_loop(c.base, EVLOOP_NONBLOCK);
	assert_int_equal(c.nres, 0);            /* no callbacks */
	assert_int_equal(c.idle, 0);
	assert_int_equal(event_base_get_num_events(c.base, EVENT_BASE_COUNT_ADDED |
						   EVENT_BASE_COUNT_ACTIVE), 0);
	ctx_done(&c);
	assert_no_children();
}

static void test_free_from_result_cb(void **state)
{
	const char *argv[] = { "/nonexistent/hook", NULL };
	struct tcert t1, t2;
	struct ctx c;
	size_t one = 1;

	tcert_init(&t1, "a", NULL, argv);
	tcert_init(&t2, "b", NULL, argv);
	ctx_init(&c);
	c.free_in_result = 1;
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);
	wait_until(&c, has_results, &one);
	/* freed in the first result: the other certificate's is never delivered,
	 * and nothing of the deployer is left on the loop to deliver it later */
	assert_null(c.d);
	assert_int_equal(event_base_get_num_events(c.base, EVENT_BASE_COUNT_ADDED |
						   EVENT_BASE_COUNT_ACTIVE), 0);
	event_base_loop(c.base, EVLOOP_NONBLOCK);
	assert_int_equal(c.nres, 1);
	assert_int_equal(c.idle, 0);
	ctx_done(&c);
	assert_no_children();
}

/* ---- unit reloads against dbus-daemon + dbusmock ---- */

struct bus {
	pid_t daemon, mock;
	char addr[300];
};

static struct bus mainbus;
static int have_dbus;

/* argv with stdout and stderr appended to log and, when fd3 >= 0, fd3 as its fd 3. */
static pid_t spawn(char *const argv[], const char *log, int fd3)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (fd3 >= 0)
			dup2(fd3, 3);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_ok(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

static void bus_stop(struct bus *b)
{
	if (b->mock > 0) {
		kill(b->mock, SIGTERM);
		waitpid(b->mock, NULL, 0);
	}
	if (b->daemon > 0) {
		kill(b->daemon, SIGTERM);
		waitpid(b->daemon, NULL, 0);
	}
	b->mock = b->daemon = 0;
}

static int on_owner_changed(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
	    strcmp(name, *(const char **)arg) == 0 && *new_owner)
		*(const char **)arg = NULL;
	return 0;
}

/* Wait until name has an owner on the bus at addr: its NameOwnerChanged, or
 * NameHasOwner for one that came first. 0, or -1 after SAFETY_S real seconds. */
static int wait_for_name(const char *addr, const char *name)
{
	const char *waiting = name;
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	int has = 0, r, left = SAFETY_S * 10;

	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, addr) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0 ||
	    sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				"org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed,
				&waiting) < 0 ||
	    sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", name) < 0 ||
	    sd_bus_message_read(reply, "b", &has) < 0) {
		sd_bus_message_unref(reply);
		sd_bus_flush_close_unref(bus);
		return -1;
	}
	sd_bus_message_unref(reply);
	while (!has && waiting && left > 0) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r == 0 && sd_bus_wait(bus, 100000) == 0)   /* real 100 ms: the clock is fake */
			left--;
	}
	sd_bus_flush_close_unref(bus);
	return has || !waiting ? 0 : -1;
}

/* A private bus (socket tmpdir/NAME); with_mock: dbusmock's systemd on it. */
static int bus_start(struct bus *b, const char *name, int with_mock)
{
	char conf[300], sock[256], params[600], logf[300];
	FILE *f;
	const char *data = getenv("ACMED_TEST_DATA");
	char tmpl[300];

	memset(b, 0, sizeof(*b));
	snprintf(sock, sizeof(sock), "%s/%s", tmpdir, name);
	snprintf(conf, sizeof(conf), "%s.conf", sock);
	snprintf(logf, sizeof(logf), "%s.log", sock);
	snprintf(b->addr, sizeof(b->addr), "unix:path=%s", sock);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig><type>session</type><listen>%s</listen><auth>EXTERNAL</auth>\n"
		"<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
		"<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n", b->addr);
	fclose(f);
	{
		char arg[320], line[400];
		char *argv[] = { (char *)"dbus-daemon", arg, (char *)"--nofork",
				 (char *)"--print-address=3", NULL };
		int p[2];
		ssize_t n;

		snprintf(arg, sizeof(arg), "--config-file=%s", conf);
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		b->daemon = spawn(argv, logf, p[1]);
		close(p[1]);
		/* it prints its address once it listens (EOF: it failed) */
		{
			struct pollfd pf = { .fd = p[0], .events = POLLIN };

			n = poll(&pf, 1, SAFETY_S * 1000) == 1 ? read(p[0], line, sizeof(line) - 1) : -1;
		}
		close(p[0]);
		if (n <= 0)
			return -1;
	}
	if (!with_mock)
		return 0;
	snprintf(tmpl, sizeof(tmpl), "%s/systemd_mock.py", data ? data : "tests/unit/data");
	snprintf(params, sizeof(params),
		 "{\"results\": {\"bad.service\": \"failed\", \"tmo.service\": \"timeout\", "
		 "\"hang.service\": \"hang\"}, \"early\": [\"early.service\"], "
		 "\"delays\": {\"slow.service\": 400}, \"marker_dir\": \"%s\"}", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", b->addr, 1);
	{
		char *argv[] = { (char *)"/usr/bin/python3", (char *)"-m", (char *)"dbusmock",
				 (char *)"--template", tmpl, (char *)"-p", params, NULL };

		b->mock = spawn(argv, logf, -1);
	}
	/* the mock takes the name when its objects are there (calls queue until its loop runs) */
	if (wait_for_name(b->addr, "org.freedesktop.systemd1") < 0)
		return -1;
	return sh_ok("busctl --address=%s call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
		     "org.freedesktop.DBus.Mock ClearCalls >/dev/null", b->addr) ? 0 : -1;
}

/* ReloadOrRestartUnit calls for unit received by the mock (mode must be "replace"). */
static int count_reloads_on(const struct bus *b, const char *unit)
{
	char cmd[512], buf[65536];
	size_t n;
	FILE *p;
	json_t *root, *data;
	json_error_t err;
	int count = 0;
	size_t i;
	json_t *call;

	snprintf(cmd, sizeof(cmd), "busctl --address=%s --json=short call org.freedesktop.systemd1 "
		 "/org/freedesktop/systemd1 org.freedesktop.DBus.Mock GetCalls", b->addr);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	root = json_loads(buf, 0, &err);
	assert_non_null(root);
	data = json_array_get(json_object_get(root, "data"), 0);
	assert_true(json_is_array(data));
	json_array_foreach(data, i, call) {
		const char *method = json_string_value(json_array_get(call, 1));
		json_t *args = json_array_get(call, 2);

		if (!method || strcmp(method, unit ? "ReloadOrRestartUnit" : "Subscribe") != 0)
			continue;
		if (!unit) {
			count++;
			continue;
		}
		if (strcmp(json_string_value(json_object_get(json_array_get(args, 0), "data")), unit))
			continue;
		assert_string_equal(json_string_value(json_object_get(json_array_get(args, 1), "data")),
				    "replace");
		count++;
	}
	json_decref(root);
	return count;
}

static int count_reloads(const char *unit)
{
	return count_reloads_on(&mainbus, unit);
}

struct asked {
	const struct bus *bus;
	const char *unit;
};

/* The mock has received the ReloadOrRestartUnit call (checked on each tick). */
static int unit_asked(struct ctx *c, const void *arg)
{
	const struct asked *a = arg;

	return count_reloads_on(a->bus, a->unit) > 0;
}

static int bus_group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/acmed-test-deploy-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	have_dbus = sh_ok("command -v dbus-daemon >/dev/null && command -v busctl >/dev/null && "
			  "/usr/bin/python3 -c 'import dbusmock' 2>/dev/null");
	if (!have_dbus)
		return 0;
	if (bus_start(&mainbus, "bus", 1) < 0) {
		bus_stop(&mainbus);
		fprintf(stderr, "cannot start dbus-daemon + dbusmock, see %s/bus.log\n", tmpdir);
		return -1;
	}
	return 0;
}

static int bus_group_teardown(void **state)
{
	bus_stop(&mainbus);
	unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	rm_tmpdir();
	return 0;
}

static int bus_test_setup(void **state)
{
	if (!have_dbus)
		return 0;
	setenv("DBUS_SYSTEM_BUS_ADDRESS", mainbus.addr, 1);
	assert_true(sh_ok("busctl --address=%s call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
			  "org.freedesktop.DBus.Mock ClearCalls", mainbus.addr));
	return 0;
}

#define NEED_DBUS() do { \
	if (!have_dbus) { \
		print_message("dbus-daemon, busctl or python3-dbusmock missing: skipped\n"); \
		skip(); \
	} \
} while (0)

static void test_shared_unit_once(void **state)
{
	char body[256];
	const char *argv[] = { NULL, NULL };
	const char *u1[] = { "slow.service", "nginx.service", NULL }, *u2[] = { "nginx.service", NULL };
	struct tcert t1, t2;
	struct ctx c;

	NEED_DBUS();
	/* the hook runs only after its units' jobs are removed */
	snprintf(body, sizeof(body), "ls %s/slow.service.*.removed >/dev/null || exit 7", tmpdir);
	argv[0] = script("after.sh", body);
	tcert_init(&t1, "web", u1, argv);
	tcert_init(&t2, "api", u2, NULL);
	ctx_init(&c);
	deploy_set_batch_window_ms(c.d, 300);
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	advance(&c, 200);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);   /* extends the window */
	advance(&c, 299);
	assert_int_equal(c.nres, 0);                    /* still collecting */
	assert_int_equal(count_reloads(NULL), 0);       /* not even connected */
	advance(&c, 1);                                 /* 300 ms after the last one */
	run(&c);
	assert_int_equal(c.nres, 2);
	assert_true(result_of(&c, "web")->ok);
	assert_true(result_of(&c, "api")->ok);
	assert_int_equal(count_reloads("nginx.service"), 1);
	assert_int_equal(count_reloads("slow.service"), 1);
	assert_int_equal(count_reloads(NULL), 1);       /* Subscribe */
	ctx_done(&c);
}

/* A window kept open by a steady trickle still closes 60 s after it opened. */
static void test_batch_window_cap(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	static struct tcert t[48];
	struct ctx c;
	char env[300], name[16];
	size_t n = 0;

	snprintf(env, sizeof(env), "unix:path=%s/no-such-bus", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", env, 1);     /* every batch fails at once: no bus needed */
	ctx_init(&c);
	deploy_set_batch_window_ms(c.d, 2000);
	for (int64_t at = 0; at < 60000; at += 1500) { /* one every 1.5 s: never 2 s of quiet */
		snprintf(name, sizeof(name), "c%zu", n);
		tcert_init(&t[n], name, u, NULL);
		assert_int_equal(deploy_certificate(c.d, &t[n].c), 0);
		n++;
		advance(&c, at + 1500 < 60000 ? 1500 : 60000 - at - 1);
		assert_int_equal(c.nres, 0);
	}
	advance(&c, 1);                                 /* 60 s after the first */
	run(&c);
	assert_int_equal(c.nres, n);                    /* all of them, in one batch */
	for (size_t i = 0; i < n; i++)
		assert_non_null(strstr(c.res[i].error, "cannot reach systemd on the system bus"));
	ctx_done(&c);
}

static void test_distinct_units(void **state)
{
	const char *ua[] = { "nginx.service", "a.service", "a.service", NULL };
	const char *ub[] = { "b.service", NULL };
	const char *uc[] = { "nginx.service", "b.service", NULL };
	struct tcert ta, tb, tc;
	struct ctx c;
	char *log;

	NEED_DBUS();
	tcert_init(&ta, "A", ua, NULL);
	tcert_init(&tb, "B", ub, NULL);
	tcert_init(&tc, "C", uc, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tb.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tc.c), 0);
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);    /* again: same job */
	advance(&c, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 3);
	assert_true(result_of(&c, "A")->ok);
	assert_true(result_of(&c, "B")->ok);
	assert_true(result_of(&c, "C")->ok);
	assert_int_equal(count_reloads("nginx.service"), 1);
	assert_int_equal(count_reloads("a.service"), 1);
	assert_int_equal(count_reloads("b.service"), 1);
	assert_int_equal(count_substr(log, "reloaded nginx.service (for A, C)\n"), 1);
	assert_int_equal(count_substr(log, "reloaded b.service (for B, C)\n"), 1);
	free(log);
	ctx_done(&c);
}

static void test_failed_unit(void **state)
{
	const char *ua[] = { "bad.service", "nginx.service", NULL }, *ub[] = { "bad.service", NULL };
	const char *uc[] = { "nginx.service", NULL }, *ud[] = { "tmo.service", NULL };
	const char *ue[] = { "missing-thing.service", NULL };
	struct tcert ta, tb, tc, td, te;
	struct ctx c;
	char *log;

	NEED_DBUS();
	tcert_init(&ta, "A", ua, NULL);
	tcert_init(&tb, "B", ub, NULL);
	tcert_init(&tc, "C", uc, NULL);
	tcert_init(&td, "D", ud, NULL);
	tcert_init(&te, "E", ue, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tb.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tc.c), 0);
	assert_int_equal(deploy_certificate(c.d, &td.c), 0);
	assert_int_equal(deploy_certificate(c.d, &te.c), 0);
	advance(&c, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 5);
	assert_false(result_of(&c, "A")->ok);
	assert_string_equal(result_of(&c, "A")->error,
			    "reload of bad.service (for A, B) failed: job result \"failed\"");
	assert_false(result_of(&c, "B")->ok);
	assert_string_equal(result_of(&c, "B")->error, result_of(&c, "A")->error);
	assert_true(result_of(&c, "C")->ok);
	assert_false(result_of(&c, "D")->ok);
	assert_non_null(strstr(result_of(&c, "D")->error, "job result \"timeout\""));
	assert_false(result_of(&c, "E")->ok);
	assert_non_null(strstr(result_of(&c, "E")->error, "missing-thing.service not found"));
	assert_int_equal(count_substr(log, "error: reload of bad.service (for A, B) failed"), 1);
	assert_int_equal(count_reloads("bad.service"), 1);
	assert_int_equal(count_reloads("nginx.service"), 1);
	free(log);
	ctx_done(&c);
}

static void test_signal_before_reply(void **state)
{
	const char *u[] = { "early.service", NULL };
	struct tcert t;
	struct ctx c;

	NEED_DBUS();
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(&c, 100);
	run(&c);                /* the unit timeout cannot fire: the clock stands still */
	assert_int_equal(c.nres, 1);
	assert_true(c.res[0].ok);               /* matched */
	assert_int_equal(count_reloads("early.service"), 1);
	ctx_done(&c);
}

static void test_unit_timeout(void **state)
{
	const char *u[] = { "hang.service", NULL };
	const char *argv[] = { NULL, NULL };
	struct tcert t;
	struct ctx c;

	NEED_DBUS();
	argv[0] = script("ran.sh", "touch \"$0.ran\"");
	tcert_init(&t, "web", u, argv);
	ctx_init(&c);
	struct asked hang = { &mainbus, "hang.service" };

	deploy_set_unit_timeout_ms(c.d, 400);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(&c, 100);
	wait_until(&c, unit_asked, &hang);              /* systemd has the call */
	advance(&c, 399);
	assert_int_equal(c.nres, 0);
	assert_int_equal(access(tpath("ran.sh.ran"), F_OK), -1);       /* no hook yet */
	advance(&c, 1);
	run(&c);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_string_equal(c.res[0].error,
			    "reload of hang.service (for web) timed out after 400 ms waiting for systemd");
	assert_int_equal(access(tpath("ran.sh.ran"), F_OK), 0);  /* the hook still ran */
	assert_int_equal(count_reloads("hang.service"), 1);
	ctx_done(&c);
}

static void test_next_batch_reloads_again(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	struct tcert t1, t2;
	struct ctx c;
	size_t one = 1;

	NEED_DBUS();
	tcert_init(&t1, "web", u, NULL);
	tcert_init(&t2, "api", u, NULL);
	ctx_init(&c);
	c.again = &t2;          /* a certificate renewed after the first batch started */
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	advance(&c, 100);
	wait_until(&c, has_results, &one);              /* the first batch, and api deployed */
	advance(&c, 100);                               /* api's own batch */
	run(&c);
	assert_int_equal(c.nres, 2);
	assert_true(result_of(&c, "web")->ok);
	assert_true(result_of(&c, "api")->ok);
	assert_int_equal(count_reloads("nginx.service"), 2);
	assert_int_equal(count_reloads(NULL), 2);       /* a connection per batch */
	ctx_done(&c);
}

static void test_bus_unreachable(void **state)
{
	const char *u[] = { "nginx.service", "a.service", NULL };
	const char *argv[] = { NULL, NULL };
	struct tcert t1, t2;
	struct ctx c;
	char *log, env[300];

	NEED_DBUS();
	snprintf(env, sizeof(env), "unix:path=%s/no-such-bus", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", env, 1);
	argv[0] = script("ran2.sh", "touch \"$0.ran\"");
	tcert_init(&t1, "web", u, argv);
	tcert_init(&t2, "api", u + 1, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);
	advance(&c, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 2);
	assert_false(result_of(&c, "web")->ok);
	assert_non_null(strstr(result_of(&c, "web")->error, "cannot reach systemd on the system bus ("));
	assert_non_null(strstr(result_of(&c, "web")->error, "nginx.service not reloaded"));
	assert_false(result_of(&c, "api")->ok);
	assert_int_equal(count_substr(log, "cannot reach systemd"), 1);         /* logged once */
	assert_int_equal(count_substr(log, "error: cannot reach systemd on the system bus (No such "
				       "file or directory): units nginx.service a.service not reloaded\n"), 1);
	assert_int_equal(access(tpath("ran2.sh.ran"), F_OK), 0);
	assert_int_equal(count_reloads("nginx.service"), 0);
	free(log);
	ctx_done(&c);
}

static void test_no_systemd_on_bus(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	struct tcert t;
	struct ctx c;
	struct bus empty;

	NEED_DBUS();
	assert_int_equal(bus_start(&empty, "empty", 0), 0);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", empty.addr, 1);
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(&c, 100);                               /* the batch window */
	run(&c);
	bus_stop(&empty);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "systemd did not reload nginx.service (for web): "));
	assert_non_null(strstr(c.res[0].error, "org.freedesktop.systemd1"));
	ctx_done(&c);
}

static void test_bus_lost(void **state)
{
	const char *u[] = { "hang.service", NULL };
	struct tcert t;
	struct ctx c;
	struct bus own;
	struct asked hang = { &own, "hang.service" };

	NEED_DBUS();
	assert_int_equal(bus_start(&own, "own", 1), 0);
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(&c, 100);
	wait_until(&c, unit_asked, &hang);              /* the job is in systemd's hands */
	kill(own.daemon, SIGKILL);
	run(&c);                /* the unit timeout cannot fire: the clock stands still */
	bus_stop(&own);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "lost the connection to systemd on the system bus"));
	ctx_done(&c);
}

int main(void)
{
	static int pidfd = 1, sigchld = 0;
	const struct CMUnitTest exec_tests[] = {
		cmocka_unit_test_prestate(test_hook_env_argv, &pidfd),
		cmocka_unit_test_prestate(test_hook_env_argv, &sigchld),
		cmocka_unit_test(test_hook_exit_status),
		cmocka_unit_test(test_hook_signal),
		cmocka_unit_test_prestate(test_hook_timeout, &pidfd),
		cmocka_unit_test_prestate(test_hook_timeout, &sigchld),
		cmocka_unit_test(test_hook_timeout_sigkill),
		cmocka_unit_test(test_hook_output),
		cmocka_unit_test(test_hook_output_bounded),
		cmocka_unit_test(test_hook_missing),
		cmocka_unit_test(test_hooks_concurrent),
		cmocka_unit_test(test_free_kills_hook),
		cmocka_unit_test(test_free_from_result_cb),
	};
	const struct CMUnitTest bus_tests[] = {
		cmocka_unit_test_setup(test_shared_unit_once, bus_test_setup),
		cmocka_unit_test_setup(test_batch_window_cap, bus_test_setup),
		cmocka_unit_test_setup(test_distinct_units, bus_test_setup),
		cmocka_unit_test_setup(test_failed_unit, bus_test_setup),
		cmocka_unit_test_setup(test_signal_before_reply, bus_test_setup),
		cmocka_unit_test_setup(test_unit_timeout, bus_test_setup),
		cmocka_unit_test_setup(test_next_batch_reloads_again, bus_test_setup),
		cmocka_unit_test_setup(test_bus_unreachable, bus_test_setup),
		cmocka_unit_test_setup(test_no_systemd_on_bus, bus_test_setup),
		cmocka_unit_test_setup(test_bus_lost, bus_test_setup),
	};
	int failed;

	/* orphans of killed hooks come to us: a test waits for their exact end */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	unsetenv("JOURNAL_STREAM");
	log_init(0);
	fakeclock_freeze();     /* the deployer's timers move only when a test says so */
	failed = cmocka_run_group_tests_name("deploy exec hooks", exec_tests, exec_setup, exec_teardown);
	failed += cmocka_run_group_tests_name("deploy unit reloads", bus_tests, bus_group_setup,
					      bus_group_teardown);
	return failed;
}
