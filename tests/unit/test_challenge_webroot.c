/* test_challenge_webroot.c - unit tests for challenge_webroot.c: token files written off the loop, mode 0644, removed after, hostile tokens refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "challenge_webroot.h"
#include "store.h"
#include "testutil.h"
#include "worker.h"

struct fx {
	char dir[64];
	struct event_base *base;
	struct worker *io;
	struct challenge *c;
	int nready;
	enum acme_err_class err;
	char msg[600];
};

static void on_ready(void *arg, enum acme_err_class err, const char *message)
{
	struct fx *x = arg;

	x->nready++;
	x->err = err;
	snprintf(x->msg, sizeof(x->msg), "%s", message ? message : "");
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	snprintf(x->dir, sizeof(x->dir), "/tmp/acmed-test-webroot-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	x->base = event_base_new();
	x->io = worker_new(x->base, "test-io");
	x->c = challenge_webroot_new(x->io, x->dir);
	assert_non_null(x->c);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	challenge_free(x->c);
	worker_free(x->io);
	event_base_free(x->base);
	rm_rf(x->dir);
	free(x);
	return 0;
}

static struct challenge_request request(struct fx *x, const char *token)
{
	struct challenge_request rq = { .cert_name = "web", .id_type = "dns",
					.identifier = "web.example.org", .token = token,
					.key_authorization = "tok_en-1.thumbprint", .ready = on_ready,
					.arg = x };
	return rq;
}

/* Until n ready calls came and the worker is idle (real time: a thread). */
static void settle(struct fx *x, int n)
{
	for (int i = 0; i < 100000 && (x->nready < n || worker_outstanding(x->io)); i++) {
		event_base_loop(x->base, EVLOOP_NONBLOCK);
		usleep(100);
	}
	event_base_loop(x->base, EVLOOP_NONBLOCK);
}

static char *token_path(struct fx *x, const char *token)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/.well-known/acme-challenge/%s", x->dir, token) > 0);
	return p;
}

static void test_written_then_removed(void **state)
{
	struct fx *x = *state;
	struct challenge_request rq = request(x, "tok_en-1");
	struct challenge_answer *a = NULL;
	char *path = token_path(x, "tok_en-1"), *data = NULL;
	size_t len = 0;
	struct stat st;

	assert_true(challenge_supports(x->c, "dns", "web.example.org", 0));
	assert_false(challenge_supports(x->c, "dns", "example.org", 1));        /* a wildcard: dns-01 */
	assert_int_equal(challenge_present(x->c, &rq, &a), 0);
	assert_non_null(a);
	assert_int_equal(x->nready, 0);          /* never from inside present */
	settle(x, 1);
	assert_int_equal(x->nready, 1);
	assert_int_equal(x->err, ACME_ERR_NONE);
	assert_int_equal(store_read_file(path, &data, &len, 4096), 0);
	assert_string_equal(data, "tok_en-1.thumbprint");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	free(data);
	challenge_cleanup(x->c, a);
	settle(x, 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	free(path);
}

/* Cleaned up before the write ran: nothing is left behind, ready never comes. */
static void test_cleanup_before_the_write(void **state)
{
	struct fx *x = *state;
	struct challenge_request rq = request(x, "early");
	struct challenge_answer *a = NULL;
	char *path = token_path(x, "early");

	assert_int_equal(challenge_present(x->c, &rq, &a), 0);
	challenge_cleanup(x->c, a);
	settle(x, 0);
	assert_int_equal(x->nready, 0);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
}

/* A token is a file name from the network: only base64url. */
static void test_hostile_tokens(void **state)
{
	struct fx *x = *state;
	static const char *const bad[] = { "../../etc/passwd", "a/b", "..", "", "tok en", "t\nk",
					   "%2e%2e", "tok.en" };
	struct challenge_answer *a = NULL;
	char big[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct challenge_request rq = request(x, bad[i]);

		assert_int_equal(challenge_present(x->c, &rq, &a), -EINVAL);
		assert_null(a);
	}
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		struct challenge_request rq = request(x, big);
		assert_int_equal(challenge_present(x->c, &rq, &a), -EINVAL);
	}
	settle(x, 0);
	assert_int_equal(x->nready, 0);
	assert_int_equal(access(x->dir, F_OK), 0);
}

/* The webroot must exist: acmed does not make one nobody serves. */
static void test_missing_webroot(void **state)
{
	struct fx *x = *state;
	char root[128];
	struct challenge *c;
	struct challenge_answer *a = NULL;
	struct challenge_request rq = request(x, "tok");

	snprintf(root, sizeof(root), "%s/gone", x->dir);
	c = challenge_webroot_new(x->io, root);
	assert_int_equal(challenge_present(c, &rq, &a), 0);
	settle(x, 1);
	assert_int_equal(x->err, ACME_ERR_LOCAL);
	assert_non_null(strstr(x->msg, "webroot "));
	assert_non_null(strstr(x->msg, "/gone: No such file or directory"));
	assert_int_equal(access(root, F_OK), -1);
	challenge_cleanup(c, a);
	settle(x, 1);
	challenge_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_written_then_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_before_the_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_webroot, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
