/* test_challenge_http.c - unit tests for the http-01 listener (challenge_http.c): tokens, hostile requests, one request per connection. */
#include <errno.h>
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

#include "rawhttp.h"

#include "challenge_http.h"
#include "log.h"

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
	get(AF_INET, port, "GET", PREFIX TOKEN, &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	challenge_http_free(h);
}

/* The answers (status lines) in a raw response. */
static int answers(const struct reply *r)
{
	int n = 0;

	for (const char *p = r->raw; (p = strstr(p, "HTTP/1.")) != NULL; p += 7)
		n++;
	return n;
}

/* Requests sent behind the first on one connection (pipelined), the client
 * half-closing or not: the first is answered, and every answer is either
 * followed by the next one or says that the connection closes. Nothing is
 * dropped in silence. */
static void test_pipelined(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	const char two[] = "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n"
			   "GET " PREFIX "nope HTTP/1.1\r\nHost: x\r\n\r\n";
	const char three[] = "HEAD " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n"
			     "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\n\r\n"
			     "GET " PREFIX TOKEN " HTTP/1.0\r\n\r\n";
	const char *const reqs[] = { two, three };
	const size_t lens[] = { sizeof(two) - 1, sizeof(three) - 1 };
	struct reply r;

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	for (size_t i = 0; i < 2; i++) {
		for (int keep_open = 0; keep_open <= 1; keep_open++) {
			int n;

			exchange2(AF_INET, port, reqs[i], lens[i], keep_open, &r);
			assert_int_equal(r.status, 200);
			n = answers(&r);
			assert_true(n >= 1);
			if (n < (i == 0 ? 2 : 3) && !has_header(&r, "Connection: close"))
				fail_msg("request %zu (%s): %d answer(s) and no \"Connection: close\": "
					 "the rest was dropped in silence:\n%s", i,
					 keep_open ? "kept open" : "half-closed", n, r.raw);
			reply_free(&r);
		}
	}
	challenge_http_free(h);
}

/* Framing a smuggler plays with is refused with 400, never answered. */
static void test_ambiguous_length(void **state)
{
	struct challenge_http *h = new_v4();
	int port = challenge_http_port(h, 0);
	const char *const reqs[] = {
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		"Content-Length: 0\r\n\r\n",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		"Content-Length: 5\r\n\r\nhello",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"content-length: 0\r\n\r\nhello",
		"HEAD " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		"Content-Length: 0\r\n\r\n",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 0\r\n\r\n0\r\n\r\n",
		"GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};
	const char one[] = "GET " PREFIX TOKEN " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
	struct reply r;

	assert_int_equal(challenge_http_add(h, TOKEN, KEYAUTH), 0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
		exchange(AF_INET, port, reqs[i], strlen(reqs[i]), &r);
		if (r.status != 400)
			fail_msg("request %zu answered %d, not 400:\n%s", i, r.status, r.raw);
		assert_null(strstr(r.raw, KEYAUTH));
		assert_int_equal(answers(&r), 1);
		reply_free(&r);
	}
	/* One Content-Length is fine. */
	exchange(AF_INET, port, one, sizeof(one) - 1, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.raw, KEYAUTH));
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

		int rc = -EADDRINUSE;

		/* The kernel picks P among IPv6 ports: another process on this
		 * machine may hold it on IPv4. Then try another P. */
		for (int tries = 0; tries < 20 && rc == -EADDRINUSE; tries++) {
			assert_int_equal(challenge_http_new(base, any6, 1, NULL, 0, &h), 0);
			snprintf(any4, sizeof(any4), "0.0.0.0:%d", challenge_http_port(h, 0));
			rc = challenge_http_new(base, a4, 1, NULL, 0, &h4);
			if (rc == -EADDRINUSE)
				challenge_http_free(h);
		}
		assert_int_equal(rc, 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serve_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_and_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_and_two_listeners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
