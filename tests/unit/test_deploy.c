/* test_deploy.c - unit tests for deploy.c's exec hooks (through exec.c): real children, the deployer's timers on a fake clock. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "deploy.h"
#include "deploytest.h"
#include "log.h"

static int group_setup(void **state)
{
	tmpdir_make("deploy");
	return 0;
}

static int group_teardown(void **state)
{
	never_fifo_release();   /* hooks a failed test left blocked on it */
	tmpdir_remove();
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
	wait_until(c.base, in_log, &c, "[slow] hook: bg=");
	advance(c.base, 299);
	assert_int_equal(c.nres, 0);                    /* the timeout cannot have fired */
	advance(c.base, 1);                                 /* SIGTERM to the group: enough */
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
	wait_until(c.base, in_log, &c, "[stubborn] hook: bg=");
	advance(c.base, 200);                               /* SIGTERM */
	wait_until(c.base, in_log, &c, "[stubborn] hook: got-TERM\n");
	advance(c.base, 4999);
	assert_int_equal(c.nres, 0);                    /* no SIGKILL before 5 s */
	advance(c.base, 1);                                 /* SIGKILL */
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
	wait_until(c.base, has_results, &c, &one);
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

int main(void)
{
	static int pidfd = 1, sigchld = 0;
	const struct CMUnitTest tests[] = {
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

	if (become_subreaper() < 0)
		return 1;
	unsetenv("JOURNAL_STREAM");
	log_init(0);
	fakeclock_freeze();     /* the deployer's timers move only when a test says so */
	return cmocka_run_group_tests_name("deploy exec hooks", tests, group_setup, group_teardown);
}
