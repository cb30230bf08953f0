/* test_challenge_http.c - unit tests for the http-01 listener (challenge_http.c), also on sockets passed by systemd. */
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
#include <event2/event.h>

#include "challenge_http.h"
#include "log.h"
#include "service.h"

static struct event_base *base;

/* ---------- a raw, non-blocking HTTP client driven by the same loop ---------- */

struct rawc {
	int fd;
	const char *req;
	size_t len, off;
	char *resp;
	size_t rlen, rcap;
	int done;
	int keep_open;          /* do not half-close after sending */
	struct event *ev;
};

static void rawc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rawc *c = arg;

	if (what & EV_WRITE) {
		ssize_t n = 0;

		if (c->off < c->len)
			n = send(fd, c->req + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n > 0)
			c->off += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			c->off = c->len;        /* peer gave up on us; read what it said */
		if (c->off == c->len) {
			if (!c->keep_open)
				shutdown(fd, SHUT_WR);
			event_del(c->ev);
			event_assign(c->ev, base, fd, EV_READ | EV_PERSIST, rawc_cb, c);
			event_add(c->ev, NULL);
		}
	}
	if (what & EV_READ) {
		char buf[16384];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			if (c->rlen + (size_t)n + 1 > c->rcap) {
				c->rcap = (c->rlen + (size_t)n + 1) * 2;
				c->resp = realloc(c->resp, c->rcap);
			}
			memcpy(c->resp + c->rlen, buf, (size_t)n);
			c->rlen += (size_t)n;
			c->resp[c->rlen] = '\0';
		} else if (n == 0 || errno != EAGAIN) {
			c->done = 1;
			event_del(c->ev);
		}
	}
}

struct reply {
	int status;             /* 0: no status line came back */
	char *raw;
	size_t raw_len;
	const char *body;       /* after the blank line, or NULL */
	size_t body_len;
};

static void reply_free(struct reply *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static int timed_out;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	timed_out = 1;
}

static void run_ms(int ms, const int *flag)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *g = evtimer_new(base, guard_cb, NULL);

	timed_out = 0;
	evtimer_add(g, &tv);
	while (!timed_out && !(flag && *flag))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(g);
}

/* Send req (len bytes) to [addr]:port, half-close unless keep_open, collect everything until EOF. */
static void exchange2(int family, int port, const char *req, size_t len, int keep_open,
		      struct reply *out)
{
	struct rawc c = { .req = req, .len = len, .keep_open = keep_open };
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	char *sep;

	memset(out, 0, sizeof(*out));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	}
	c.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(c.fd >= 0);
	if (connect(c.fd, (struct sockaddr *)&ss, sl) < 0)
		assert_int_equal(errno, EINPROGRESS);
	c.ev = event_new(base, c.fd, EV_READ | EV_WRITE | EV_PERSIST, rawc_cb, &c);
	event_add(c.ev, NULL);
	run_ms(15000, &c.done);
	assert_true(c.done);
	event_free(c.ev);
	close(c.fd);
	out->raw = c.resp ? c.resp : strdup("");
	out->raw_len = c.rlen;
	if (strncmp(out->raw, "HTTP/1.", 7) == 0 && out->raw_len > 12)
		out->status = atoi(out->raw + 9);
	sep = strstr(out->raw, "\r\n\r\n");
	if (sep) {
		out->body = sep + 4;
		out->body_len = out->raw_len - (size_t)(out->body - out->raw);
	}
}

static void exchange(int family, int port, const char *req, size_t len, struct reply *out)
{
	exchange2(family, port, req, len, 0, out);
}

static void get(int family, int port, const char *method, const char *target, struct reply *out)
{
	char req[4096];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: example.org\r\n"
			 "User-Agent: test\r\nAccept: */*\r\n\r\n", method, target);

	assert_true(n > 0 && (size_t)n < sizeof(req));
	exchange(family, port, req, (size_t)n, out);
}

/* Case-insensitive header lookup in the raw response head. */
static int has_header(const struct reply *r, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = r->raw; p && *p; p = strstr(p, "\r\n")) {
		if (*p == '\r')
			p += 2;
		if (strncasecmp(p, line, n) == 0 && (p[n] == '\r' || p[n] == '\0'))
			return 1;
		if (r->body && p >= r->body)
			break;
	}
	return 0;
}

#define TOKEN "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
#define KEYAUTH TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define PREFIX "/.well-known/acme-challenge/"

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

/* ---------- listener ---------- */

static void test_serve_token(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	struct reply r;

	log_init(1);    /* exercise the debug line naming the client */
	assert_int_equal(challenge_http_live_count(h), 0);
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 404);
	reply_free(&r);

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	assert_int_equal(challenge_http_live_count(h), 1);
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: text/plain"));
	assert_non_null(r.body);
	assert_int_equal(r.body_len, strlen(KEYAUTH));
	assert_memory_equal(r.body, KEYAUTH, strlen(KEYAUTH));
	reply_free(&r);

	/* Adding again replaces the value. */
	assert_int_equal(challenge_http_add(h, TOKEN, "other.value"), 0);
	assert_int_equal(challenge_http_live_count(h), 1);
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 11);
	assert_memory_equal(r.body, "other.value", 11);
	reply_free(&r);

	/* Unknown tokens and the bare prefix. */
	get(AF_INET, port, "GET", PREFIX "unknownToken", &r);
	assert_int_equal(r.status, 404);
	assert_null(strstr(r.raw, "other.value"));
	reply_free(&r);

	challenge_http_remove(h, TOKEN);
	challenge_http_remove(h, TOKEN);        /* twice is harmless */
	challenge_http_remove(h, "neverAdded");
	assert_int_equal(challenge_http_live_count(h), 0);
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 404);
	assert_null(strstr(r.raw, "other.value"));
	reply_free(&r);
	log_init(0);
	challenge_http_free(h);
}

static void test_head_and_methods(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	const char *methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "BREW" };
	struct reply r;
	char cl[64];

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	get(AF_INET, port, "HEAD", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Content-Type: text/plain"));
	snprintf(cl, sizeof(cl), "Content-Length: %zu", strlen(KEYAUTH));
	assert_true(has_header(&r, cl));
	assert_non_null(r.body);
	assert_int_equal(r.body_len, 0);        /* headers only */
	reply_free(&r);

	/* evhttp answers methods other than GET/HEAD with 501 before our handler. */
	for (size_t i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
		get(AF_INET, port, methods[i], PREFIX TOKEN, &r);
		assert_true(r.status >= 400);
		assert_int_not_equal(r.status, 200);
		assert_null(strstr(r.raw, KEYAUTH));
		reply_free(&r);
	}
	/* A POST with a body is refused too, and the token is not given away. */
	{
		const char req[] = "POST " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n"
				   "Content-Length: 5\r\n\r\nhello";
		exchange(AF_INET, port, req, sizeof(req) - 1, &r);
		assert_true(r.status >= 400);
		assert_null(strstr(r.raw, KEYAUTH));
		reply_free(&r);
	}
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	challenge_http_free(h);
}

static void test_hostile_paths(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	char long_token[300], long_target[400], max_token[257], max_target[400];
	const char *targets[] = {
		PREFIX,
		PREFIX "/",
		PREFIX TOKEN "/",
		PREFIX TOKEN "?",
		PREFIX TOKEN "?x=1",
		PREFIX TOKEN "#frag",
		PREFIX TOKEN ";param",
		PREFIX TOKEN "%00",
		PREFIX TOKEN "%2e",
		PREFIX TOKEN ".",
		PREFIX TOKEN " ",
		PREFIX "/" TOKEN,
		PREFIX "./" TOKEN,
		PREFIX "../acme-challenge/" TOKEN,
		PREFIX "%2e%2e/acme-challenge/" TOKEN,
		"/.well-known/acme-challenge//" TOKEN,
		"//.well-known/acme-challenge/" TOKEN,
		"/.well-known/./acme-challenge/" TOKEN,
		"/.well-known/x/../acme-challenge/" TOKEN,
		"/.WELL-KNOWN/ACME-CHALLENGE/" TOKEN,
		"/.well-known/acme-challenge%2f" TOKEN,
		"/%2ewell-known/acme-challenge/" TOKEN,
		PREFIX "%4coqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",   /* %4c = 'L' */
		PREFIX "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX",       /* prefix */
		PREFIX TOKEN "0",                                           /* suffix */
		PREFIX "loqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",     /* case */
		"http://example.org" PREFIX TOKEN,
		"*",
		"",
		"/",
	};
	struct reply r;

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	memset(long_token, 'A', sizeof(long_token) - 1);
	long_token[sizeof(long_token) - 1] = '\0';
	assert_int_equal(challenge_http_add(h, long_token, "x"), -EINVAL);   /* > 256 */
	snprintf(long_target, sizeof(long_target), PREFIX "%s", long_token);
	memset(max_token, 'B', 256);
	max_token[256] = '\0';
	assert_int_equal(challenge_http_add(h, max_token, "max.value"), 0);
	snprintf(max_target, sizeof(max_target), PREFIX "%s", max_token);

	for (size_t i = 0; i < sizeof(targets) / sizeof(*targets); i++) {
		get(AF_INET, port, "GET", targets[i], &r);
		if (r.status == 200 || strstr(r.raw, KEYAUTH))
			fail_msg("target \"%s\" gave away the key authorization", targets[i]);
		assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
		reply_free(&r);
	}
	get(AF_INET, port, "GET", long_target, &r);
	assert_int_equal(r.status, 404);
	reply_free(&r);
	get(AF_INET, port, "GET", max_target, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 9);
	reply_free(&r);

	/* Still serving after all that. */
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, KEYAUTH, strlen(KEYAUTH));
	reply_free(&r);
	challenge_http_free(h);
}

static void test_hostile_requests(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	struct reply r;
	size_t bomb_len = 64 * 1024;
	char *bomb = malloc(bomb_len + 256);
	const char *garbage[] = {
		"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
		"GET\r\n\r\n",
		"GET " PREFIX TOKEN "\r\n\r\n",                        /* HTTP/0.9 */
		"GET " PREFIX TOKEN " HTTP/9.9\r\n\r\n",
		"GET " PREFIX TOKEN " HTTP/1.1\r\n",                   /* never finished */
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
		"\r\n\r\n\r\n",
	};
	size_t n;

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	/* One header far over the 8 KiB limit. */
	n = (size_t)snprintf(bomb, 256, "GET " PREFIX TOKEN " HTTP/1.1\r\nX-Bomb: ");
	memset(bomb + n, 'a', bomb_len);
	memcpy(bomb + n + bomb_len, "\r\n\r\n", 4);
	exchange(AF_INET, port, bomb, n + bomb_len + 4, &r);
	assert_true(r.status == 0 || r.status >= 400);
	assert_null(strstr(r.raw, KEYAUTH));
	reply_free(&r);
	/* Many small headers. */
	n = (size_t)snprintf(bomb, 256, "GET " PREFIX TOKEN " HTTP/1.1\r\n");
	while (n + 16 < bomb_len)
		n += (size_t)sprintf(bomb + n, "X-H%05zu: v\r\n", n);
	memcpy(bomb + n, "\r\n", 2);
	exchange(AF_INET, port, bomb, n + 2, &r);
	assert_true(r.status == 0 || r.status >= 400);
	assert_null(strstr(r.raw, KEYAUTH));
	reply_free(&r);
	/* A body far over the limit. */
	n = (size_t)snprintf(bomb, 256, "GET " PREFIX TOKEN " HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
			     bomb_len);
	memset(bomb + n, 'b', bomb_len);
	exchange(AF_INET, port, bomb, n + bomb_len, &r);
	assert_int_not_equal(r.status, 200);
	reply_free(&r);
	free(bomb);

	for (size_t i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
		size_t len = i == 0 ? 10 : strlen(garbage[i]);

		exchange(AF_INET, port, garbage[i], len, &r);
		assert_int_not_equal(r.status, 200);
		reply_free(&r);
	}
	/* Two pipelined requests on one kept-open connection: both answered, in order. */
	{
		const char req[] = "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n"
				   "GET " PREFIX "nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		exchange2(AF_INET, port, req, sizeof(req) - 1, 1, &r);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.raw, KEYAUTH));
		assert_non_null(strstr(r.raw, "HTTP/1.1 404"));
		reply_free(&r);
	}
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	challenge_http_free(h);
}

static void test_token_table(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	const char *bad[] = { "", "a/b", "a.b", "%41", "a b", "a?b", "..", "tok\n", "é" };
	char tok[32], ka[64], target[128];
	struct reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(challenge_http_add(h, bad[i], "x"), -EINVAL);
	assert_int_equal(challenge_http_add(h, NULL, "x"), -EINVAL);
	assert_int_equal(challenge_http_add(h, "ok", NULL), -EINVAL);
	assert_int_equal(challenge_http_live_count(h), 0);

	/* Many tokens, added in scrambled order, half removed. */
	for (int i = 0; i < 1000; i++) {
		int k = (i * 389) % 1000;

		snprintf(tok, sizeof(tok), "t%d", k);
		snprintf(ka, sizeof(ka), "t%d.ka", k);
		assert_int_equal(challenge_http_add(h, tok, ka), 0);
	}
	assert_int_equal(challenge_http_live_count(h), 1000);
	for (int k = 0; k < 1000; k += 2) {
		snprintf(tok, sizeof(tok), "t%d", k);
		challenge_http_remove(h, tok);
	}
	assert_int_equal(challenge_http_live_count(h), 500);
	for (int k = 0; k < 1000; k += 97) {
		snprintf(target, sizeof(target), PREFIX "t%d", k);
		snprintf(ka, sizeof(ka), "t%d.ka", k);
		get(AF_INET, port, "GET", target, &r);
		if (k % 2) {
			assert_int_equal(r.status, 200);
			assert_int_equal(r.body_len, strlen(ka));
			assert_memory_equal(r.body, ka, strlen(ka));
		} else {
			assert_int_equal(r.status, 404);
		}
		reply_free(&r);
	}
	challenge_http_free(h);
}

static void test_ipv6_and_two_listeners(void **state)
{
	const char *addrs[] = { "127.0.0.1:0", "[::1]:0" };
	struct challenge_http *h = NULL;
	struct reply r;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	if (fd < 0 || bind(fd, (struct sockaddr *)&s6, sizeof(s6)) < 0) {
		if (fd >= 0)
			close(fd);
		skip();
	}
	close(fd);
	assert_int_equal(challenge_http_new(base, addrs, 2, NULL, 0, &h), 0);
	assert_true(challenge_http_port(h, 0) > 0);
	assert_true(challenge_http_port(h, 1) > 0);
	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	get(AF_INET, challenge_http_port(h, 0), "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	get(AF_INET6, challenge_http_port(h, 1), "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, KEYAUTH, strlen(KEYAUTH));
	reply_free(&r);
	challenge_http_free(h);

	/* "[::]:P" is IPv6 only, so "0.0.0.0:P" can be bound beside it. */
	{
		const char *any6[] = { "[::]:0" };
		struct challenge_http *h4 = NULL;
		char any4[32];
		const char *a4[] = { any4 };

		assert_int_equal(challenge_http_new(base, any6, 1, NULL, 0, &h), 0);
		snprintf(any4, sizeof(any4), "0.0.0.0:%d", challenge_http_port(h, 0));
		assert_int_equal(challenge_http_new(base, a4, 1, NULL, 0, &h4), 0);
		assert_int_equal(challenge_http_port(h4, 0), challenge_http_port(h, 0));
		assert_int_equal(challenge_http_add(h4, TOKEN, "v4"), 0);
		assert_int_equal(challenge_http_add(h, TOKEN, "v6"), 0);
		get(AF_INET, challenge_http_port(h4, 0), "GET", PREFIX TOKEN, &r);
		assert_int_equal(r.status, 200);
		assert_memory_equal(r.body, "v4", 2);
		reply_free(&r);
		get(AF_INET6, challenge_http_port(h, 0), "GET", PREFIX TOKEN, &r);
		assert_int_equal(r.status, 200);
		assert_memory_equal(r.body, "v6", 2);
		reply_free(&r);
		challenge_http_free(h4);
		challenge_http_free(h);
	}
}

static void test_bind_errors(void **state)
{
	struct challenge_http *a = new_v4(), *b = (struct challenge_http *)1;
	char busy[64];
	const char *addrs[2];
	const char *bad[] = { "nohost", "localhost:80", "127.0.0.1:99999", "127.0.0.1:",
			      "127.0.0.1:-1", "[::1]80", "[::1]:", "::1:80", "[127.0.0.1]:80",
			      "1.2.3:80x", ":80" };

	snprintf(busy, sizeof(busy), "127.0.0.1:%d", challenge_http_port(a, 0));
	addrs[0] = "127.0.0.1:0";
	addrs[1] = busy;
	assert_int_equal(challenge_http_new(base, addrs, 2, NULL, 0, &b), -EADDRINUSE);
	assert_null(b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		b = (struct challenge_http *)1;
		assert_int_equal(challenge_http_new(base, &bad[i], 1, NULL, 0, &b), -EINVAL);
		assert_null(b);
	}
	/* The first listener still works. */
	{
		struct reply r;

		assert_int_equal(challenge_http_add(a, TOKEN, KEYAUTH), 0);
		get(AF_INET, challenge_http_port(a, 0), "GET", PREFIX TOKEN, &r);
		assert_int_equal(r.status, 200);
		reply_free(&r);
	}
	challenge_http_free(a);
	challenge_http_free(NULL);
}

/* ---------- socket activation: challenge_http on the fds service_listen_fds passes ---------- */

static void test_socket_activation(void **state)
{
	int port, saved, *fds = NULL, n;
	int sock = listening_socket(&port);
	struct challenge_http *h = NULL;
	struct reply r;

	saved = move_to_3(sock);
	base = event_base_new();        /* after fd 3 is taken, so the loop's own fd is elsewhere */
	set_listen_env("1", (long)getpid());
	n = service_listen_fds(&fds);
	assert_int_equal(n, 1);
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

static int connect_blocking(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
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
		cmocka_unit_test_setup_teardown(test_serve_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_and_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_and_two_listeners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_listen_same_port, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
