/* test_exec.c - unit tests for exec.c, the child-process runner: real children, a fake clock for its timers, events not durations. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "childtest.h"
#include "exec.h"
#include "log.h"

static struct event_base *base;

/* ---- runs ---- */

struct run {
	struct exec *e;
	struct exec_result r;
	char msg[1024];
	int calls, free_in_cb;
	int log_before_cb;      /* the last output line was in the log when the callback ran */
	const char *last_line;
};

static void on_done(struct exec *e, const struct exec_result *r, void *arg)
{
	struct run *run = arg;

	assert_ptr_equal(e, run->e);
	run->calls++;
	run->r = *r;
	assert_non_null(r->message);
	snprintf(run->msg, sizeof(run->msg), "%s", r->message);
	run->r.message = run->msg;
	if (run->last_line)
		run->log_before_cb = logged(run->last_line);
	if (run->free_in_cb) {
		exec_free(e);
		run->e = NULL;
	}
}

static void start(struct run *run, const char *const *argv, long timeout_ms, int sigchld)
{
	struct exec_opts o = { .argv = argv, .log_cert = "web", .label = "t",
			       .timeout_ms = timeout_ms, .reap_on_sigchld = sigchld };

	assert_int_equal(exec_start(base, &o, on_done, run, &run->e), 0);
	assert_non_null(run->e);
	assert_int_equal(run->calls, 0);        /* never from inside exec_start() */
}

/* wait_until() predicates */
static int run_done(void *a, const void *b)
{
	return ((struct run *)a)->calls > 0;
}

struct runs {
	struct run *v;
	int n;
};

static int all_done(void *a, const void *b)
{
	struct runs *rs = a;

	for (int i = 0; i < rs->n; i++)
		if (!rs->v[i].calls)
			return 0;
	return 1;
}

static int setup(void **state)
{
	base = event_base_new();
	assert_non_null(base);
	capture_start();
	return 0;
}

static int teardown(void **state)
{
	never_fifo_release();   /* children a failed test left blocked on it */
	free(capture_end());
	event_base_free(base);
	assert_no_children();
	return 0;
}

/* ---- tests ---- */

static void test_exit_codes(void **state)
{
	static const struct { const char *code; int want; } cases[] = {
		{ "exit 0", 0 }, { "exit 1", 1 }, { "exit 3", 3 }, { "exit 255", 255 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { "/bin/sh", "-c", cases[i].code, NULL };
		struct run run = { 0 };
		char want[128];

		start(&run, argv, 0, 0);
		wait_until(base, run_done, &run, NULL);
		assert_int_equal(run.calls, 1);
		assert_int_equal(run.r.end, EXEC_EXITED);
		assert_int_equal(run.r.exit_code, cases[i].want);
		assert_int_equal(run.r.signal, 0);
		assert_int_equal(run.r.error, 0);
		assert_int_equal(run.r.ok, cases[i].want == 0);
		assert_true(run.r.pid > 0);
		if (cases[i].want)
			snprintf(want, sizeof(want), "t /bin/sh exited with status %d", cases[i].want);
		else
			snprintf(want, sizeof(want), "t /bin/sh finished");
		assert_string_equal(run.r.message, want);
		assert_int_equal(exec_pid(run.e), -1);
		exec_free(run.e);
		assert_gone(run.r.pid);
	}
	{       /* a name found in PATH; the message names it as given */
		const char *argv[] = { "sh", "-c", "exit 4", NULL };
		struct run run = { 0 };

		start(&run, argv, 0, 0);
		wait_until(base, run_done, &run, NULL);
		assert_int_equal(run.r.exit_code, 4);
		assert_string_equal(run.r.message, "t sh exited with status 4");
		exec_free(run.e);
	}
}

static void test_signal(void **state)
{
	int sigchld = *(int *)*state;
	const char *argv[] = { "/bin/sh", "-c", "kill -USR1 $$", NULL };
	struct run run = { 0 };

	start(&run, argv, 0, sigchld);
	wait_until(base, run_done, &run, NULL);
	assert_int_equal(run.calls, 1);
	assert_int_equal(run.r.end, EXEC_SIGNALED);
	assert_int_equal(run.r.signal, SIGUSR1);
	assert_int_equal(run.r.exit_code, -1);
	assert_false(run.r.ok);
	assert_string_equal(run.r.message, "t /bin/sh killed by signal 10 (User defined signal 1)");
	exec_free(run.e);
}

/* Blocks on a FIFO nobody writes to: only a signal ends it. */
static const char *blocking_child(void)
{
	char body[512];

	snprintf(body, sizeof(body), "echo ready\nexec cat '%s'", never_fifo());
	return script("block.sh", body);
}

/* Ignores SIGTERM (and so does its background cat); says so when it gets one. */
static const char *stubborn_child(void)
{
	char body[512];

	snprintf(body, sizeof(body),
		 "trap '' TERM\n"
		 "cat '%s' >/dev/null &\n"
		 "trap 'echo got-TERM' TERM\n"
		 "echo ready bg=$!\n"
		 "wait\n"
		 "wait\n", never_fifo());
	return script("stubborn.sh", body);
}

static void test_timeout_sigterm(void **state)
{
	int sigchld = *(int *)*state;
	const char *argv[] = { blocking_child(), NULL };
	struct run run = { 0 };
	char *log;

	start(&run, argv, 60000, sigchld);
	wait_until(base, in_log, NULL, "[web] t: ready\n");
	advance(base, 59999);
	assert_int_equal(run.calls, 0);                 /* the timer cannot have fired */
	assert_false(logged("still running"));
	advance(base, 1);                                     /* SIGTERM, and cat dies of it */
	wait_until(base, run_done, &run, NULL);
	assert_int_equal(run.r.end, EXEC_TIMED_OUT);
	assert_int_equal(run.r.signal, SIGTERM);
	assert_false(run.r.ok);
	assert_non_null(strstr(run.r.message, "block.sh timed out after 60 s and was killed"));
	log = captured();
	assert_log_order(log, "[web] t: ready\n", "warning: [web] t ",
			 "block.sh still running after 60 s, stopping it\n", NULL);
	free(log);
	exec_free(run.e);
	assert_gone(run.r.pid);
}

static void test_timeout_sigkill(void **state)
{
	int sigchld = *(int *)*state;
	const char *argv[] = { stubborn_child(), NULL };
	struct exec_opts o = { .argv = argv, .log_cert = "web", .label = "t", .timeout_ms = 1000,
			       .kill_grace_ms = 3000, .reap_on_sigchld = sigchld };
	struct run run = { 0 };
	char *log;
	pid_t pid, bg;

	assert_int_equal(exec_start(base, &o, on_done, &run, &run.e), 0);
	pid = exec_pid(run.e);
	assert_true(pid > 0);
	wait_until(base, in_log, NULL, "[web] t: ready bg=");
	advance(base, 1000);                                  /* SIGTERM to the group */
	wait_until(base, in_log, NULL, "[web] t: got-TERM\n");      /* caught, and ignored by cat */
	assert_int_equal(run.calls, 0);
	advance(base, 2999);
	assert_int_equal(run.calls, 0);                 /* no SIGKILL before the grace period */
	assert_int_equal(kill(pid, 0), 0);
	advance(base, 1);                                     /* SIGKILL */
	wait_until(base, run_done, &run, NULL);
	assert_int_equal(run.r.end, EXEC_TIMED_OUT);
	assert_int_equal(run.r.signal, SIGKILL);
	assert_int_equal(run.r.pid, pid);
	log = captured();
	assert_log_order(log, "[web] t: ready bg=", "still running after 1 s, stopping it\n",
			 "[web] t: got-TERM\n", NULL);
	bg = pid_after(log, "ready bg=");
	free(log);
	assert_orphan_killed(bg, SIGKILL);              /* the whole group went */
	exec_free(run.e);
	assert_gone(pid);
}

static void test_output_lines(void **state)
{
	const char *child = script("talk.sh",
		"echo 'hello world'\necho 'to stderr' >&2\nprintf 'crlf line\\r\\n'\n"
		"printf 'tab\\there\\n'\necho\necho 'last but one'\nprintf 'no newline at the end'");
	const char *argv[] = { child, NULL };
	struct run run = { .last_line = "[web] t: no newline at the end\n" };
	char *log;

	start(&run, argv, 0, 0);
	wait_until(base, run_done, &run, NULL);
	assert_true(run.r.ok);
	assert_true(run.log_before_cb);
	assert_false(run.r.output_truncated);
	assert_int_equal(run.r.output_bytes, strlen("hello world\nto stderr\ncrlf line\r\n"
						    "tab\there\n\nlast but one\nno newline at the end"));
	log = captured();
	assert_log_order(log, "info: [web] t: hello world\n", "info: [web] t: to stderr\n",
			 "info: [web] t: crlf line\n", "info: [web] t: tab here\n",
			 "info: [web] t: \n", "info: [web] t: last but one\n",
			 "info: [web] t: no newline at the end\n", NULL);
	assert_int_equal(count_substr(log, "[web] t: "), 7);
	free(log);
	exec_free(run.e);
}

static void test_missing_program(void **state)
{
	static const struct { const char *prog; const char *want; int err; } cases[] = {
		{ "/nonexistent/acmed-prog", "t /nonexistent/acmed-prog: cannot run: No such file or directory", -ENOENT },
		{ "acmed-no-such-prog-in-path", "t acmed-no-such-prog-in-path: cannot run: No such file or directory", -ENOENT },
		{ NULL, ": cannot run: Permission denied", -EACCES },
		{ "/tmp", "t /tmp: cannot run: Is a directory", -EISDIR },
	};
	char *noexec = tpath("noexec.sh");
	int fd = open(noexec, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { cases[i].prog ? cases[i].prog : noexec, "--flag", NULL };
		struct run run = { 0 };
		char want[256];

		start(&run, argv, 1000, 0);
		assert_int_equal(exec_pid(run.e), -1);
		wait_until(base, run_done, &run, NULL);
		assert_int_equal(run.calls, 1);
		assert_int_equal(run.r.end, EXEC_SPAWN_FAILED);
		assert_int_equal(run.r.error, cases[i].err);
		assert_int_equal(run.r.pid, -1);
		assert_false(run.r.ok);
		snprintf(want, sizeof(want), "%s%s", cases[i].prog ? "" : noexec, cases[i].want);
		assert_non_null(strstr(run.r.message, want));
		assert_non_null(strstr(run.r.message, argv[0]));        /* it names the program */
		exec_free(run.e);
	}
	{       /* no argv: nothing starts, no callback */
		const char *argv[] = { NULL };
		struct exec_opts o = { .argv = argv };
		struct exec *e = (struct exec *)1;

		assert_int_equal(exec_start(base, &o, on_done, NULL, &e), -EINVAL);
		assert_null(e);
	}
}

static void test_huge_output(void **state)
{
	/* one 3 MB line, then a million short ones, then exit 7 */
	const char *child = script("flood.sh",
		"head -c 3000000 /dev/zero | tr '\\0' x\necho\n"
		"yes 'line of output' | head -n 1000000\nexit 7");
	const char *argv[] = { child, NULL };
	struct run run = { 0 };
	struct rusage before, after;
	char *log, want[EXEC_LINE_MAX + 32];
	size_t lines;

	getrusage(RUSAGE_SELF, &before);
	start(&run, argv, 0, 0);
	wait_until(base, run_done, &run, NULL);
	getrusage(RUSAGE_SELF, &after);
	assert_int_equal(run.r.end, EXEC_EXITED);
	assert_int_equal(run.r.exit_code, 7);               /* not lost in the flood */
	assert_int_equal(run.r.output_bytes, 3000001 + 15 * 1000000);   /* all of it read */
	assert_true(run.r.output_truncated);
	/* 18 MB went through a fixed buffer: the peak did not grow by anything like that */
	assert_true(after.ru_maxrss - before.ru_maxrss < 8 * 1024);
	log = captured();
	strcpy(want, "[web] t: ");
	memset(want + 9, 'x', EXEC_LINE_MAX);
	strcpy(want + 9 + EXEC_LINE_MAX, " [...]\n");
	assert_int_equal(count_substr(log, want), 1);       /* the long line, cut */
	lines = count_substr(log, "[web] t: line of output\n");
	assert_true(lines > 1000);
	assert_true(lines * 15 + EXEC_LINE_MAX <= EXEC_LOG_MAX);
	assert_int_equal(count_substr(log, "warning: [web] t: output truncated after "), 1);
	assert_true(strlen(log) < 20 * EXEC_LOG_MAX);
	free(log);
	exec_free(run.e);
}

/* A child that writes without pause cannot hold the loop: its timeout still fires. */
static void test_endless_output(void **state)
{
	const char *argv[] = { "yes", "endless output", NULL };
	struct run run = { 0 };
	char *log;

	start(&run, argv, 1000, 0);
	/* the loop comes back between reads: a predicate is checked, a timer fires */
	wait_until(base, in_log, NULL, "warning: [web] t: output truncated after ");
	advance(base, 1000);
	wait_until(base, run_done, &run, NULL);
	assert_int_equal(run.r.end, EXEC_TIMED_OUT);
	assert_int_equal(run.r.signal, SIGTERM);
	assert_true(run.r.output_truncated);
	log = captured();
	assert_int_equal(count_substr(log, "warning: [web] t: output truncated after "), 1);
	assert_log_order(log, "[web] t: endless output\n", "t: output truncated after ",
			 "t yes still running after 1 s", NULL);
	free(log);
	exec_free(run.e);
}

static void test_cancel(void **state)
{
	int sigchld = *(int *)*state;
	struct exec_opts o = { .log_cert = "web", .label = "t", .kill_grace_ms = 2000,
			       .reap_on_sigchld = sigchld };
	const char *argv1[] = { blocking_child(), NULL };
	struct run run = { 0 };
	pid_t pid;

	/* a child that dies of SIGTERM */
	o.argv = argv1;
	assert_int_equal(exec_start(base, &o, on_done, &run, &run.e), 0);
	pid = exec_pid(run.e);
	wait_until(base, in_log, NULL, "[web] t: ready\n");
	exec_cancel(run.e);
	exec_cancel(run.e);                     /* twice is harmless */
	assert_int_equal(run.calls, 0);         /* never from inside exec_cancel() */
	wait_until(base, run_done, &run, NULL);
	assert_int_equal(run.r.end, EXEC_CANCELED);
	assert_int_equal(run.r.signal, SIGTERM);
	assert_non_null(strstr(run.r.message, "block.sh was stopped"));
	assert_gone(pid);
	exec_cancel(run.e);                     /* over: harmless */
	exec_free(run.e);

	/* one that ignores it: SIGKILL after the grace period */
	{
		const char *argv2[] = { stubborn_child(), NULL };
		struct run r2 = { 0 };
		char *log;

		o.argv = argv2;
		assert_int_equal(exec_start(base, &o, on_done, &r2, &r2.e), 0);
		pid = exec_pid(r2.e);
		wait_until(base, in_log, NULL, "[web] t: ready bg=");
		exec_cancel(r2.e);
		wait_until(base, in_log, NULL, "[web] t: got-TERM\n");
		advance(base, 1999);
		assert_int_equal(r2.calls, 0);
		advance(base, 1);
		wait_until(base, run_done, &r2, NULL);
		assert_int_equal(r2.r.end, EXEC_CANCELED);
		assert_int_equal(r2.r.signal, SIGKILL);
		log = captured();
		assert_orphan_killed(pid_after(log, "ready bg="), SIGKILL);
		free(log);
		assert_gone(pid);
		exec_free(r2.e);
	}
}

static void test_free_running(void **state)
{
	int sigchld = *(int *)*state;
	const char *argv[] = { stubborn_child(), NULL };
	struct run run = { 0 };
	char *log;
	pid_t pid, bg;

	/* a child ignoring SIGTERM, with a background child of its own */
	start(&run, argv, 60000, sigchld);
	pid = exec_pid(run.e);
	assert_true(pid > 0);
	wait_until(base, in_log, NULL, "[web] t: ready bg=");
	log = captured();
	bg = pid_after(log, "ready bg=");
	free(log);
	assert_int_equal(kill(pid, 0), 0);
	exec_free(run.e);
	assert_gone(pid);                       /* killed and reaped, no zombie */
	assert_orphan_killed(bg, SIGKILL);
	advance(base, 120000);                        /* its timers went with it */
	assert_int_equal(run.calls, 0);         /* no callback after exec_free() */

	/* freed before a spawn failure was reported: no callback either */
	{
		const char *missing[] = { "/nonexistent/acmed-prog", NULL };
		struct run r2 = { 0 };

		start(&r2, missing, 0, sigchld);
		exec_free(r2.e);
		event_base_loop(base, EVLOOP_NONBLOCK);
		assert_int_equal(r2.calls, 0);
	}
	/* freed from its own callback */
	{
		const char *quick[] = { "/bin/sh", "-c", "echo bye; exit 2", NULL };
		struct run r3 = { .free_in_cb = 1 };

		start(&r3, quick, 0, sigchld);
		wait_until(base, run_done, &r3, NULL);
		assert_null(r3.e);
		assert_int_equal(r3.r.exit_code, 2);
		assert_gone(r3.r.pid);
	}
	exec_free(NULL);
}

static void test_many_children(void **state)
{
	int sigchld = *(int *)*state;
	enum { N = 64 };
	static struct run runs[N];
	struct runs rs = { runs, N };
	char code[N][64], line[64];
	char *log;

	memset(runs, 0, sizeof(runs));
	for (int i = 0; i < N; i++) {
		const char *argv[] = { "/bin/sh", "-c", code[i], NULL };

		snprintf(code[i], sizeof(code[i]), "echo child %d; exit %d", i, i % 7);
		start(&runs[i], argv, 0, sigchld);
	}
	wait_until(base, all_done, &rs, NULL);
	log = captured();
	for (int i = 0; i < N; i++) {
		assert_int_equal(runs[i].calls, 1);
		assert_int_equal(runs[i].r.end, EXEC_EXITED);
		assert_int_equal(runs[i].r.exit_code, i % 7);
		snprintf(line, sizeof(line), "[web] t: child %d\n", i);
		assert_int_equal(count_substr(log, line), 1);
		exec_free(runs[i].e);
	}
	free(log);
	assert_no_children();
}

static void test_environment(void **state)
{
	const char *child = script("env.sh",
		"env\nif read -r x; then echo stdin=data; else echo stdin=eof; fi\n"
		"if [ -e /proc/$$/fd/$LEAKFD ]; then echo leaked; else echo not-leaked; fi");
	const char *argv[] = { child, NULL };
	char leakfd[32];
	const char *env[] = { "ACMED_TEST_SET=new value", "ACMED_TEST_OVERRIDE=ours", leakfd, NULL };
	struct exec_opts o = { .argv = argv, .env = env, .log_cert = "web", .label = "t" };
	struct run run = { 0 };
	int leak = open("/dev/null", O_RDONLY);         /* no O_CLOEXEC: must not reach the child */
	char *log;

	assert_true(leak > 2);
	snprintf(leakfd, sizeof(leakfd), "LEAKFD=%d", leak);
	setenv("ACMED_TEST_INHERITED", "kept", 1);
	setenv("ACMED_TEST_OVERRIDE", "acmed's", 1);
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	setenv("LISTEN_FDNAMES", "http", 1);
	assert_int_equal(exec_start(base, &o, on_done, &run, &run.e), 0);
	unsetenv("ACMED_TEST_INHERITED");
	unsetenv("ACMED_TEST_OVERRIDE");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("LISTEN_FDNAMES");
	close(leak);
	wait_until(base, run_done, &run, NULL);
	assert_true(run.r.ok);
	log = captured();
	assert_int_equal(count_substr(log, "[web] t: ACMED_TEST_SET=new value\n"), 1);
	assert_int_equal(count_substr(log, "[web] t: ACMED_TEST_OVERRIDE=ours\n"), 1);
	assert_int_equal(count_substr(log, "ACMED_TEST_OVERRIDE="), 1);
	assert_int_equal(count_substr(log, "[web] t: ACMED_TEST_INHERITED=kept\n"), 1);
	assert_null(strstr(log, "NOTIFY_SOCKET"));
	assert_null(strstr(log, "WATCHDOG_"));
	assert_null(strstr(log, "LISTEN_FDNAMES"));
	assert_non_null(strstr(log, "[web] t: stdin=eof\n"));
	assert_non_null(strstr(log, "[web] t: not-leaked\n"));
	free(log);
	exec_free(run.e);
}

static void test_status_lost(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "exit 0", NULL };
	struct run run = { 0 };

	/* SIGCHLD ignored: the kernel reaps the child and its status is gone */
	signal(SIGCHLD, SIG_IGN);
	start(&run, argv, 0, 0);
	wait_until(base, run_done, &run, NULL);
	signal(SIGCHLD, SIG_DFL);
	assert_int_equal(run.r.end, EXEC_LOST);
	assert_false(run.r.ok);
	assert_non_null(strstr(run.r.message, "exit status lost (is SIGCHLD ignored?)"));
	exec_free(run.e);
}

static int group_setup(void **state)
{
	tmpdir_make("exec");
	return 0;
}

static int group_teardown(void **state)
{
	tmpdir_remove();
	return 0;
}

int main(void)
{
	static int pidfd = 0, sigchld = 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_signal, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_signal, setup, teardown, &sigchld),
		cmocka_unit_test_prestate_setup_teardown(test_timeout_sigterm, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_timeout_sigterm, setup, teardown, &sigchld),
		cmocka_unit_test_prestate_setup_teardown(test_timeout_sigkill, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_timeout_sigkill, setup, teardown, &sigchld),
		cmocka_unit_test_setup_teardown(test_output_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endless_output, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_cancel, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_cancel, setup, teardown, &sigchld),
		cmocka_unit_test_prestate_setup_teardown(test_free_running, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_free_running, setup, teardown, &sigchld),
		cmocka_unit_test_prestate_setup_teardown(test_many_children, setup, teardown, &pidfd),
		cmocka_unit_test_prestate_setup_teardown(test_many_children, setup, teardown, &sigchld),
		cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_lost, setup, teardown),
	};

	if (become_subreaper() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	unsetenv("JOURNAL_STREAM");
	log_init(0);
	fakeclock_freeze();
	return cmocka_run_group_tests_name("exec", tests, group_setup, group_teardown);
}
