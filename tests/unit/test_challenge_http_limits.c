/* test_challenge_http_limits.c - the http-01 listener under attack (challenge_http_conn.c): connection caps, the request deadline on the fake clock, accept() paused on EMFILE. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "childtest.h"          /* before rawhttp.h: its helpers take a parameter named base */
#include "rawhttp.h"

#include "challenge_http.h"
#include "log.h"

/* These tests use only what the listener always offered (sockets, the log):
 * the limits are its defaults, 256 connections in all, 16 per address and
 * 4 more per live token, 10 s
 * from accept to the end of the answer. */
#define MAX_CONNS       256
#define MAX_PER_ADDR    20      /* 16, and 4 for the one live token */
#define DEADLINE_S      10
#define QUIET_MS        10000   /* an episode ends after this long without trouble */

/* ---------- accept() as libevent calls it, counted ---------- */

static long accept_calls, accepted;

int accept4(int fd, __SOCKADDR_ARG sa, socklen_t *restrict sl, int flags)
{
	long r = syscall(SYS_accept4, fd, sa.__sockaddr__, sl, flags);

	accept_calls++;
	if (r >= 0)
		accepted++;
	return (int)r;
}

/* ---------- clients the test holds open ---------- */

struct client {
	int fd;
	struct event *ev;
	char buf[4096];
	size_t len;
	int closed;             /* EOF or reset seen */
};

static void client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	char tmp[1024];
	ssize_t n;

	while ((n = recv(fd, tmp, sizeof(tmp), 0)) > 0) {
		size_t k = (size_t)n < sizeof(c->buf) - 1 - c->len ? (size_t)n
								    : sizeof(c->buf) - 1 - c->len;

		memcpy(c->buf + c->len, tmp, k);
		c->len += k;
		c->buf[c->len] = '\0';
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		c->closed = 1;
		event_del(c->ev);
	}
}

static int accepted_reaches(void *a, const void *b)
{
	return accepted >= *(const long *)b;
}

/* A connection from the loopback address from (127.0.0.N), not yet accepted. */
static struct client *client_connect(const char *from, int port)
{
	struct client *c = calloc(1, sizeof(*c));
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	assert_non_null(c);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(inet_pton(AF_INET, from, &src.sin_addr), 1);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	assert_int_equal(fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK), 0);
	c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, client_cb, c);
	assert_non_null(c->ev);
	event_add(c->ev, NULL);
	return c;
}

/* ... accepted, and admitted or refused, before this returns. */
static struct client *client_open(const char *from, int port)
{
	long want = accepted + 1;
	struct client *c = client_connect(from, port);

	wait_until(base, accepted_reaches, NULL, &want);
	return c;
}

static void client_send(struct client *c, const char *s, size_t len)
{
	assert_int_equal(send(c->fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

static int client_is_closed(void *a, const void *b)
{
	return ((struct client *)a)->closed;
}

static void client_wait_closed(struct client *c)
{
	wait_until(base, client_is_closed, c, NULL);
}

static void client_free(struct client *c)
{
	event_free(c->ev);
	close(c->fd);
	free(c);
}

static const char req[] = "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: example.org\r\n\r\n";

/* Closed by the listener without a byte of answer. */
static void assert_refused(struct client *c)
{
	client_wait_closed(c);
	if (c->len)
		fail_msg("a refused connection was answered:\n%s", c->buf);
}

static int client_has_answer(void *a, const void *b)
{
	const struct client *c = a;

	return c->closed || strstr(c->buf, KEYAUTH) != NULL;
}

/* The rest of the request (after the first `sent` bytes) gets the key authorization. */
static void assert_answered(struct client *c, size_t sent)
{
	client_send(c, req + sent, sizeof(req) - 1 - sent);
	wait_until(base, client_has_answer, c, NULL);
	if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0 || !strstr(c->buf, KEYAUTH))
		fail_msg("not answered with the key authorization:\n%s", c->buf);
}

/* ---------- fixtures ---------- */

static struct challenge_http *listener(void)
{
	const char *addrs[] = { "127.0.0.1:0" };
	struct challenge_http *h = NULL;

	assert_int_equal(challenge_http_new(base, addrs, 1, NULL, 0, &h), 0);
	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	return h;
}

static int setup(void **state)
{
	fakeclock_freeze();
	tmpdir_make("http-limits");
	capture_start();
	base = event_base_new();
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	event_base_free(base);
	free(capture_end());
	tmpdir_remove();
	return 0;
}

static size_t logged_count(const char *needle)
{
	char *log = captured();
	size_t n = count_substr(log, needle);

	free(log);
	return n;
}

/* ---------- caps ---------- */

static void test_per_address_cap(void **state)
{
	struct challenge_http *h = listener();
	int port = challenge_http_port(h, 0);
	struct client *held[MAX_PER_ADDR], *extra[3], *other;

	/* 20 connections from one address (one token is live), each with half a request. */
	for (int i = 0; i < MAX_PER_ADDR; i++) {
		held[i] = client_open("127.0.0.1", port);
		client_send(held[i], req, 4);
	}
	/* The 21st, 22nd, 23rd: closed at once, no answer. */
	for (int i = 0; i < 3; i++) {
		extra[i] = client_open("127.0.0.1", port);
		assert_refused(extra[i]);
	}
	/* Another address is not held back. */
	other = client_open("127.0.0.2", port);
	assert_answered(other, 0);
	/* The 20 were admitted all along: each gets its answer. */
	for (int i = 0; i < MAX_PER_ADDR; i++)
		assert_answered(held[i], 4);
	/* One line for the episode, naming the address. */
	assert_int_equal(logged_count("connection limit reached"), 1);
	assert_true(logged("most open from 127.0.0.1 (20)"));
	assert_int_equal(logged_count("no longer reached"), 0);
	/* Room again: a new one from the same address is answered. */
	client_free(other);
	other = client_open("127.0.0.1", port);
	assert_answered(other, 0);
	/* Quiet for a while: the episode's end, once, with its count. */
	advance(base, QUIET_MS);
	assert_int_equal(logged_count("no longer reached"), 1);
	assert_true(logged("3 connections refused"));
	assert_true(logged("most from 127.0.0.1 (3)"));
	for (int i = 0; i < MAX_PER_ADDR; i++)
		client_free(held[i]);
	for (int i = 0; i < 3; i++)
		client_free(extra[i]);
	client_free(other);
	challenge_http_free(h);
}

/* A CA validating 40 live tokens at once from one address (Pebble's VA, one
 * perspective of Let's Encrypt's) is not taken for an attacker: every fetch
 * is admitted and answered (Pebble makes three connections per token at
 * once); past 16 and four per live token, the cap holds again. */
static void test_per_address_cap_follows_live_tokens(void **state)
{
	enum { NTOK = 40, CAP = 16 + 4 * (NTOK + 1) };  /* TOKEN and 40 more are live */
	struct challenge_http *h = listener();
	int port = challenge_http_port(h, 0);
	struct client *held[CAP], *extra;
	char tok[NTOK][48], get[NTOK][256];

	for (int i = 0; i < NTOK; i++) {
		snprintf(tok[i], sizeof(tok[i]), "tok%02d-abcdefghijklmnopqrstuvwxyz0123456", i);
		assert_int_equal(challenge_http_add(h, tok[i], KEYAUTH), 0);
		snprintf(get[i], sizeof(get[i]), "GET " PREFIX "%.47s HTTP/1.1\r\nHost: a%d.example.org\r\n\r\n",
			 tok[i], i);
	}
	/* 180 open from one address, each with half a request: all admitted. */
	for (int i = 0; i < CAP; i++) {
		held[i] = client_open("127.0.0.1", port);
		client_send(held[i], get[i % NTOK], 4);
	}
	assert_int_equal(logged_count("connection limit reached"), 0);
	/* The 181st: refused, and the log gives the cap. */
	extra = client_open("127.0.0.1", port);
	assert_refused(extra);
	assert_true(logged("180 per address"));
	/* Every fetch of the 180 gets its key authorization. */
	for (int i = 0; i < CAP; i++) {
		const char *g = get[i % NTOK];

		client_send(held[i], g + 4, strlen(g) - 4);
		wait_until(base, client_has_answer, held[i], NULL);
		if (strncmp(held[i]->buf, "HTTP/1.1 200 ", 13) != 0 || !strstr(held[i]->buf, KEYAUTH))
			fail_msg("fetch %d not answered:\n%s", i, held[i]->buf);
	}
	client_free(extra);
	for (int i = 0; i < CAP; i++)
		client_free(held[i]);
	challenge_http_free(h);
}

static void test_total_cap(void **state)
{
	struct challenge_http *h = listener();
	int port = challenge_http_port(h, 0);
	struct client *c[MAX_CONNS], *extra, *again;
	char from[32];
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 1024)
		skip();         /* both ends of 257 connections are in this process */

	/* 256 from 16 addresses (16 each, the most one address may hold). */
	for (int i = 0; i < MAX_CONNS; i++) {
		snprintf(from, sizeof(from), "127.0.0.%d", 1 + i / MAX_PER_ADDR);
		c[i] = client_open(from, port);
		client_send(c[i], req, 4);
	}
	extra = client_open("127.0.0.200", port);
	assert_refused(extra);
	assert_int_equal(logged_count("connection limit reached (256 open; at most 256 in all"), 1);
	/* One finishes: room for a new one. */
	assert_answered(c[0], 4);
	again = client_open("127.0.0.200", port);
	assert_answered(again, 0);
	assert_answered(c[MAX_CONNS - 1], 4);
	for (int i = 0; i < MAX_CONNS; i++)
		client_free(c[i]);
	client_free(extra);
	client_free(again);
	challenge_http_free(h);
}

/* With a low descriptor limit the listener keeps at least 64 of them free. */
static void test_fd_reserve(void **state)
{
	const char *addrs[] = { "127.0.0.1:0" };
	struct rlimit saved, low;
	struct challenge_http *h = NULL;
	struct client *c[140];
	int port, answered = 0, refused = 0, cap = -1, rc;
	char *log, *at;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 400)
		skip();
	low = saved;
	low.rlim_cur = 200;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = challenge_http_new(base, addrs, 1, NULL, 0, &h);     /* it reads the limit now */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	port = challenge_http_port(h, 0);
	/* 140 from 10 addresses, 14 each: under the per-address cap. */
	for (int i = 0; i < 140; i++) {
		char from[32];

		snprintf(from, sizeof(from), "127.0.1.%d", 1 + i / 14);
		c[i] = client_open(from, port);
		client_send(c[i], req, 4);
	}
	for (int i = 0; i < 140; i++) {
		if (c[i]->closed && c[i]->len == 0) {
			refused++;
			continue;
		}
		client_send(c[i], req + 4, sizeof(req) - 5);
		wait_until(base, client_has_answer, c[i], NULL);
		if (c[i]->len == 0)
			refused++;      /* its refusal was still on the way */
		else if (strncmp(c[i]->buf, "HTTP/1.1 200 ", 13) == 0)
			answered++;
	}
	assert_int_equal(answered + refused, 140);
	assert_true(refused > 0);
	assert_true(answered <= 200 - 64);
	assert_true(answered >= 64);
	log = captured();
	at = strstr(log, "connection limit reached (");
	assert_non_null(at);
	at = strstr(at, "at most ");
	assert_non_null(at);
	cap = atoi(at + 8);
	assert_int_equal(cap, answered);
	free(log);
	for (int i = 0; i < 140; i++)
		client_free(c[i]);
	challenge_http_free(h);
}

/* ---------- the deadline ---------- */

static void test_deadline_slow_sender(void **state)
{
	struct challenge_http *h = listener();
	int port = challenge_http_port(h, 0);
	struct client *slow = client_open("127.0.0.1", port);   /* one byte a second, for ever */
	struct client *late = client_open("127.0.0.1", port);   /* the same, done at 9 s */
	struct client *idle = client_open("127.0.0.1", port);   /* nothing at all */

	for (int s = 0; s < DEADLINE_S - 1; s++) {
		client_send(slow, req + s, 1);  /* each byte would restart an idle timeout */
		client_send(late, req + s, 1);
		event_base_loop(base, EVLOOP_NONBLOCK);
		advance(base, 1000);
	}
	/* 9 s: a request finished before the deadline is answered. */
	assert_answered(late, DEADLINE_S - 1);
	client_send(slow, req + DEADLINE_S - 1, 1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_false(slow->closed);
	assert_false(idle->closed);
	/* 10 s after accept: closed, bytes or not, without an answer. */
	advance(base, 1000);
	assert_refused(slow);
	assert_refused(idle);
	client_free(slow);
	client_free(late);
	client_free(idle);
	challenge_http_free(h);
}

/* ---------- out of descriptors ---------- */

/* The listening socket on port (ours: the listener lives in this process). */
static int listening_fd(int port)
{
	for (int fd = 0; fd < 1024; fd++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		int on = 0;
		socklen_t ol = sizeof(on);

		if (getsockname(fd, (struct sockaddr *)&sin, &sl) == 0 && sin.sin_family == AF_INET &&
		    ntohs(sin.sin_port) == port &&
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == 0 && on)
			return fd;
	}
	fail_msg("no listening socket on port %d", port);
	return -1;
}

static void test_emfile_pauses_accept(void **state)
{
	struct challenge_http *h = listener();
	int port = challenge_http_port(h, 0), next;
	struct client *c[8];
	struct pollfd pending = { .fd = listening_fd(port), .events = POLLIN };
	struct rlimit saved, none;
	long calls;

	/* Clients waiting in the backlog, their requests sent. */
	for (int i = 0; i < 8; i++) {
		c[i] = client_connect("127.0.0.1", port);
		client_send(c[i], req, sizeof(req) - 1);
	}
	assert_int_equal(poll(&pending, 1, SAFETY_S * 1000), 1);
	/* From now on no descriptor can be opened: accept() fails with EMFILE. */
	next = dup(0);
	assert_true(next >= 0);
	close(next);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	none = saved;
	none.rlim_cur = (rlim_t)next;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
	accept_calls = 0;
	/* 3 s of loop turns, 10 ms apart (one turn each: a spinning listener
	 * would keep EVLOOP_NONBLOCK alone turning for ever). */
	for (int t = 0; t < 300; t++) {
		fakeclock_advance_ms(10);
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	calls = accept_calls;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	/* Tried at 0, 0.1, 0.3, 0.7, 1.5, 2.5 s: pauses of 100 ms doubling to 1 s. */
	if (calls < 1 || calls > 8)
		fail_msg("%ld accept() calls in 3 s of EMFILE", calls);
	assert_int_equal(logged_count("too many open files"), 1);
	assert_true(logged("http-01: too many open files: 0 connections open; accepting again in 100 ms"));
	assert_int_equal(logged_count("Error from accept"), 0);     /* libevent's own line */
	/* Descriptors again: the next try takes them all, and each is answered. */
	advance(base, 1000);
	for (int i = 0; i < 8; i++) {
		wait_until(base, client_has_answer, c[i], NULL);
		if (strncmp(c[i]->buf, "HTTP/1.1 200 ", 13) != 0)
			fail_msg("client %d not answered:\n%s", i, c[i]->buf);
	}
	assert_int_equal(logged_count("accepting connections again"), 0);
	advance(base, QUIET_MS);
	assert_int_equal(logged_count("accepting connections again"), 1);
	assert_int_equal(logged_count("too many open files"), 1);
	for (int i = 0; i < 8; i++)
		client_free(c[i]);
	challenge_http_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_per_address_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_address_cap_follows_live_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_total_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_slow_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_pauses_accept, setup, teardown),
	};
	struct rlimit rl;

	signal(SIGPIPE, SIG_IGN);
	/* Both ends of 257 connections live in this process. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
