/* test_fdguard.c - unit tests for fdguard.c: the descriptor limit raised, the reserve, accept() paused with growing delays on the fake clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "childtest.h"

#include "fdguard.h"
#include "log.h"

static struct event_base *loop;

static int setup(void **state)
{
	fakeclock_freeze();
	tmpdir_make("fdguard");
	capture_start();
	loop = event_base_new();
	return loop ? 0 : -1;
}

static int teardown(void **state)
{
	event_base_free(loop);
	free(capture_end());
	tmpdir_remove();
	return 0;
}

static size_t nlogged(const char *needle)
{
	char *log = captured();
	size_t n = count_substr(log, needle);

	free(log);
	return n;
}

static void set_soft(rlim_t v)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = v;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void test_raise_limit(void **state)
{
	struct rlimit saved, rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max < 200)
		skip();
	set_soft(100);
	assert_int_equal(fdguard_limit(), 100);
	assert_int_equal(fdguard_raise_limit(), (long)saved.rlim_max);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == saved.rlim_max);
	/* Already there: nothing to do, the same answer. */
	assert_int_equal(fdguard_raise_limit(), (long)saved.rlim_max);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

static void test_conn_cap(void **state)
{
	struct rlimit saved;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max < 2048)
		skip();
	set_soft(2048);         /* reserve: an eighth, 256 */
	assert_int_equal(fdguard_conn_cap(288), 288);
	assert_int_equal(fdguard_conn_cap(5000), 2048 - 256);
	set_soft(256);          /* reserve: 64 */
	assert_int_equal(fdguard_conn_cap(288), 192);
	assert_int_equal(fdguard_conn_cap(10), 10);
	assert_int_equal(fdguard_conn_cap(0), 1);
	set_soft(64);           /* no room at all: still one */
	assert_int_equal(fdguard_conn_cap(288), 1);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

/* ---------- the pause ---------- */

static int calls, accepting = 1;

static void set_accepting(void *arg, int on)
{
	assert_ptr_equal(arg, &calls);
	calls++;
	assert_int_not_equal(on, accepting);    /* only real changes */
	accepting = on;
}

/* ms until accepting resumes after an error at the current time. */
static int64_t pause_length(struct fdguard_pause *p, int err)
{
	int64_t ms = 0;

	fdguard_pause_accept(p, err, 7);
	assert_int_equal(accepting, 0);
	assert_true(fdguard_paused(p));
	while (!accepting) {
		advance(loop, 10);
		ms += 10;
		assert_true(ms <= 2000);
	}
	return ms;
}

static void test_pause_episode(void **state)
{
	struct fdguard_pause *p = fdguard_pause_new(loop, "test-listener", set_accepting, &calls);
	const int64_t want[] = { 100, 200, 400, 800, 1000, 1000 };

	assert_non_null(p);
	assert_false(fdguard_paused(p));
	/* The delay doubles while the trouble goes on, up to 1 s. */
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
		assert_int_equal(pause_length(p, EMFILE), want[i]);
	assert_int_equal(fdguard_pause_count(p), 6);
	assert_int_equal(calls, 12);
	/* One line for all of it so far. */
	assert_int_equal(nlogged("too many open files"), 1);
	assert_true(logged("test-listener: too many open files: 7 connections open; "
			   "accepting again in 100 ms"));
	/* An error while paused (a second listener of the group) changes nothing. */
	fdguard_pause_accept(p, EMFILE, 7);
	fdguard_pause_accept(p, EMFILE, 7);
	assert_int_equal(calls, 13);
	while (!accepting)
		advance(loop, 100);
	assert_int_equal(fdguard_pause_count(p), 7);
	/* Quiet for 10 s: the episode ends, said once. */
	assert_false(logged("accepting connections again"));
	advance(loop, FDGUARD_QUIET_MS);
	assert_true(logged("test-listener: accepting connections again (paused 7 times over 4500 ms)"));
	advance(loop, FDGUARD_QUIET_MS);
	assert_int_equal(nlogged("accepting connections again"), 1);
	/* A new episode starts from 100 ms again, with its own line. */
	assert_int_equal(pause_length(p, ENFILE), 100);
	assert_int_equal(nlogged("too many open files"), 2);
	assert_int_equal(pause_length(p, ENOBUFS), 200);
	assert_int_equal(nlogged("accept failed"), 0);
	fdguard_pause_free(p);
	fdguard_pause_free(NULL);
}

static void test_pause_other_error(void **state)
{
	struct fdguard_pause *p = fdguard_pause_new(loop, "x", set_accepting, &calls);

	accepting = 1;
	calls = 0;
	assert_int_equal(pause_length(p, EPERM), 100);
	assert_true(logged("x: accept failed: Operation not permitted: 7 connections open"));
	/* Freed while paused: nothing fires afterwards. */
	fdguard_pause_accept(p, EPERM, 1);
	fdguard_pause_free(p);
	advance(loop, 5000);
	assert_int_equal(accepting, 0);
	assert_int_equal(calls, 3);
	accepting = 1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_raise_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_other_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
