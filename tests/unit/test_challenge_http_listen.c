/* test_challenge_http_listen.c - unit tests for the http-01 listener's sockets (challenge_http_listen.c): systemd's sockets, changing the addresses without dropping tokens. */
#include <dirent.h>
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
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "rawhttp.h"

#include "challenge_http.h"
#include "log.h"
#include "service.h"

static int setup(void **state)
{
	base = event_base_new();
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	event_base_free(base);
	return 0;
}

static struct challenge_http *new_v4(void)
{
	const char *addrs[] = { "127.0.0.1:0" };
	struct challenge_http *h = NULL;

	assert_int_equal(challenge_http_new(base, addrs, 1, NULL, 0, &h), 0);
	assert_non_null(h);
	assert_true(challenge_http_port(h, 0) > 0);
	assert_int_equal(challenge_http_port(h, 1), -ENOENT);
	return h;
}

/* ---------- socket activation: challenge_http on the fds service_listen_fds passes ---------- */

static void test_socket_activation(void **state)
{
	int port, saved, *fds = NULL, *alpn = NULL, n;
	size_t nh = 0, na = 0;
	int sock = listening_socket(&port);
	struct challenge_http *h = NULL;
	struct reply r;

	saved = move_to_3(sock);
	base = event_base_new();        /* after fd 3 is taken, so the loop's own fd is elsewhere */
	set_listen_env("1", (long)getpid());
	assert_int_equal(service_listen_fds(&fds, &nh, &alpn, &na), 0);
	n = (int)nh;
	assert_int_equal(n, 1);
	assert_int_equal(na, 0);
	free(alpn);
	assert_non_null(fds);
	assert_int_equal(fds[0], 3);

	/* addrs are ignored when fds are given. */
	{
		const char *addrs[] = { "bogus" };

		assert_int_equal(challenge_http_new(base, addrs, 1, fds, (size_t)n, &h), 0);
	}
	free(fds);
	assert_int_equal(challenge_http_port(h, 0), port);
	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	/* systemd owns the addresses: a new listen: list changes nothing. */
	{
		const char *addrs[] = { "127.0.0.1:0" };

		assert_int_equal(challenge_http_set_listen(h, addrs, 1), 0);
		assert_int_equal(challenge_http_port(h, 0), port);
		assert_int_equal(challenge_http_port(h, 1), -ENOENT);
	}
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, KEYAUTH, strlen(KEYAUTH));
	reply_free(&r);
	challenge_http_free(h);                 /* the daemon owns and closes fd 3 */
	assert_true(fcntl(3, F_GETFD) < 0);
	event_base_free(base);
	restore_3(saved);
}

static void test_passed_fds_rejects(void **state)
{
	int port, tcp;

	base = event_base_new();
	/* challenge_http refuses a non-socket fd passed in, and closes it. */
	{
		int pfd[2];
		struct challenge_http *h = (struct challenge_http *)1;

		assert_int_equal(pipe(pfd), 0);
		tcp = listening_socket(&port);
		{
			int fds2[2] = { pfd[0], tcp };

			assert_true(challenge_http_new(base, NULL, 0, fds2, 2, &h) < 0);
		}
		assert_null(h);
		assert_true(fcntl(pfd[0], F_GETFD) < 0);
		assert_true(fcntl(tcp, F_GETFD) < 0);
		close(pfd[1]);
	}
	event_base_free(base);
}

/* ---------- changing the listen addresses ---------- */

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A port nobody listens on right now (bound, then released). */
static int free_port(void)
{
	int port, fd = listening_socket(&port);

	close(fd);
	return port;
}

static void assert_serves(int port, const char *value)
{
	struct reply r;

	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.body);
	assert_int_equal(r.body_len, strlen(value));
	assert_memory_equal(r.body, value, strlen(value));
	reply_free(&r);
}

static void test_set_listen(void **state)
{
	struct challenge_http *h = new_v4();
	int p0 = challenge_http_port(h, 0), p1, p2, live, fds_before;
	const char *same[] = { "127.0.0.1:0" };
	const char *any[] = { "0.0.0.0:0" };
	const char *two[] = { "0.0.0.0:0", "127.0.0.1:0" };
	const char half[] = "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n";

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	assert_serves(p0, KEYAUTH);

	/* The same address: the listener is kept, port and all. */
	assert_int_equal(challenge_http_set_listen(h, same, 1), 0);
	assert_int_equal(challenge_http_port(h, 0), p0);
	assert_int_equal(challenge_http_port(h, 1), -ENOENT);
	assert_serves(p0, KEYAUTH);

	/* A request under way on the old listener when the address changes. */
	live = connect_blocking(p0);
	assert_true(live >= 0);
	assert_int_equal(send(live, half, sizeof(half) - 1, 0), (ssize_t)(sizeof(half) - 1));
	run_ms(100, NULL);      /* evhttp accepts it and reads the first half */

	assert_int_equal(challenge_http_set_listen(h, any, 1), 0);
	p1 = challenge_http_port(h, 0);
	assert_true(p1 > 0);
	assert_int_not_equal(p1, p0);
	assert_int_equal(challenge_http_port(h, 1), -ENOENT);
	assert_int_equal(challenge_http_live_count(h), 1);
	assert_serves(p1, KEYAUTH);                     /* the token moved with it */
	assert_int_equal(connect_blocking(p0), -ECONNREFUSED);   /* old port closed */

	/* ... and the request under way is still answered. */
	{
		struct rawc c = { .fd = live, .req = "\r\n", .len = 2 };

		assert_int_equal(fcntl(live, F_SETFL, fcntl(live, F_GETFL) | O_NONBLOCK), 0);
		c.ev = event_new(base, live, EV_READ | EV_WRITE | EV_PERSIST, rawc_cb, &c);
		event_add(c.ev, NULL);
		run_ms(5000, &c.done);
		assert_true(c.done);
		event_free(c.ev);
		close(live);
		assert_non_null(c.resp);
		assert_int_equal(strncmp(c.resp, "HTTP/1.1 200", 12), 0);
		assert_non_null(strstr(c.resp, KEYAUTH));
		free(c.resp);
	}

	/* One kept, one added: the kept one keeps its port, both serve. */
	assert_int_equal(challenge_http_set_listen(h, two, 2), 0);
	assert_int_equal(challenge_http_port(h, 0), p1);
	p2 = challenge_http_port(h, 1);
	assert_true(p2 > 0);
	assert_int_not_equal(p2, p1);
	assert_serves(p1, KEYAUTH);
	assert_serves(p2, KEYAUTH);

	/* Failures leave the old set exactly as it was, and leak nothing. */
	{
		int busy_port, busy = listening_socket(&busy_port);
		char busy_addr[32];
		const char *fail1[] = { "127.0.0.1:0", busy_addr };
		const char *fail2[] = { "0.0.0.0:0", "nohost" };
		const char *fail3[] = { "[::1]80" };

		snprintf(busy_addr, sizeof(busy_addr), "127.0.0.1:%d", busy_port);
		fds_before = open_fds();
		assert_int_equal(challenge_http_set_listen(h, fail1, 2), -EADDRINUSE);
		assert_int_equal(open_fds(), fds_before);
		assert_int_equal(challenge_http_set_listen(h, fail2, 2), -EINVAL);
		assert_int_equal(challenge_http_set_listen(h, fail3, 1), -EINVAL);
		assert_int_equal(open_fds(), fds_before);
		assert_int_equal(challenge_http_port(h, 0), p1);
		assert_int_equal(challenge_http_port(h, 1), p2);
		assert_int_equal(challenge_http_port(h, 2), -ENOENT);
		assert_serves(p1, KEYAUTH);
		assert_serves(p2, KEYAUTH);
		close(busy);
	}
	assert_int_equal(challenge_http_set_listen(NULL, same, 1), -EINVAL);
	assert_int_equal(challenge_http_set_listen(h, NULL, 1), -EINVAL);

	/* No listener at all, then one again: the token table is untouched. */
	assert_int_equal(challenge_http_set_listen(h, NULL, 0), 0);
	assert_int_equal(challenge_http_port(h, 0), -ENOENT);
	assert_int_equal(connect_blocking(p1), -ECONNREFUSED);
	assert_int_equal(connect_blocking(p2), -ECONNREFUSED);
	assert_int_equal(challenge_http_live_count(h), 1);
	assert_int_equal(challenge_http_set_listen(h, same, 1), 0);
	assert_serves(challenge_http_port(h, 0), KEYAUTH);
	challenge_http_free(h);
}

/* 0.0.0.0:P becoming 127.0.0.1:P: the old socket holds the port, so it has to
 * go first; when the new bind then fails anyway, the old one comes back. */
static void test_set_listen_same_port(void **state)
{
	struct challenge_http *h = NULL;
	char wild[32], lo[32];
	const char *a[] = { wild }, *b[] = { lo };
	int port = free_port(), fds_before;

	snprintf(wild, sizeof(wild), "0.0.0.0:%d", port);
	snprintf(lo, sizeof(lo), "127.0.0.1:%d", port);
	assert_int_equal(challenge_http_new(base, a, 1, NULL, 0, &h), 0);
	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	assert_int_equal(challenge_http_port(h, 0), port);

	assert_int_equal(challenge_http_set_listen(h, b, 1), 0);
	assert_int_equal(challenge_http_port(h, 0), port);
	assert_serves(port, KEYAUTH);

	/* Back to the wildcard while a second address in the list cannot be bound. */
	{
		int busy_port, busy = listening_socket(&busy_port);
		char busy_addr[32];
		const char *c[] = { wild, busy_addr };

		snprintf(busy_addr, sizeof(busy_addr), "127.0.0.1:%d", busy_port);
		fds_before = open_fds();
		assert_int_equal(challenge_http_set_listen(h, c, 2), -EADDRINUSE);
		assert_int_equal(open_fds(), fds_before);
		assert_int_equal(challenge_http_port(h, 0), port);
		assert_int_equal(challenge_http_port(h, 1), -ENOENT);
		assert_serves(port, KEYAUTH);
		close(busy);
	}
	/* Back to the wildcard while another process holds 127.0.0.2:port: ours
	 * is closed to free the port, the bind still fails, ours comes back. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		int other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

		sin.sin_addr.s_addr = htonl(0x7f000002);
		assert_true(other >= 0);
		assert_int_equal(setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
		if (bind(other, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			close(other);
			challenge_http_free(h);
			skip();         /* no 127.0.0.2 here */
		}
		assert_int_equal(listen(other, 4), 0);
		fds_before = open_fds();
		assert_int_equal(challenge_http_set_listen(h, a, 1), -EADDRINUSE);
		assert_int_equal(open_fds(), fds_before);
		assert_int_equal(challenge_http_port(h, 0), port);
		assert_serves(port, KEYAUTH);
		close(other);
	}
	assert_int_equal(challenge_http_set_listen(h, a, 1), 0);
	assert_int_equal(challenge_http_port(h, 0), port);
	assert_serves(port, KEYAUTH);
	challenge_http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_passed_fds_rejects),
		cmocka_unit_test_setup_teardown(test_set_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_listen_same_port, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
