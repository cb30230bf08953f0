/* test_http.c - unit tests for http.c against real local HTTP (evhttp) and HTTPS (python) servers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"

#define BIG (2u * 1024 * 1024)

/* ---------- the local HTTP server (evhttp, in the same loop) ---------- */

struct srv {
	struct event_base *base;
	struct evhttp *http;
	int port;
	int nconns;             /* TCP connections accepted */
	int nreqs;
	char last_method[8];
	char last_ct[128];
	char last_ua[128];
};

static struct srv S;

static struct bufferevent *count_conn(struct event_base *base, void *arg)
{
	struct srv *s = arg;

	s->nconns++;
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void copy_hdr(char *dst, size_t n, struct evhttp_request *req, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(dst, n, "%s", v ? v : "");
}

static void send_big(struct evhttp_request *req, size_t len, int chunked)
{
	struct evbuffer *b = evbuffer_new();
	static char chunk[65536];

	memset(chunk, 'x', sizeof(chunk));
	if (!chunked) {
		while (len) {
			size_t n = len < sizeof(chunk) ? len : sizeof(chunk);

			evbuffer_add(b, chunk, n);
			len -= n;
		}
		evhttp_send_reply(req, 200, "OK", b);
	} else {
		evhttp_send_reply_start(req, 200, "OK");
		while (len) {
			size_t n = len < sizeof(chunk) ? len : sizeof(chunk);

			evbuffer_add(b, chunk, n);
			evhttp_send_reply_chunk(req, b);
			len -= n;
		}
		evhttp_send_reply_end(req);
	}
	evbuffer_free(b);
}

static void srv_handler(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *b;

	s->nreqs++;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: strcpy(s->last_method, "GET"); break;
	case EVHTTP_REQ_HEAD: strcpy(s->last_method, "HEAD"); break;
	case EVHTTP_REQ_POST: strcpy(s->last_method, "POST"); break;
	default: strcpy(s->last_method, "?"); break;
	}
	copy_hdr(s->last_ct, sizeof(s->last_ct), req, "Content-Type");
	copy_hdr(s->last_ua, sizeof(s->last_ua), req, "User-Agent");

	if (strcmp(uri, "/hang") == 0)
		return;         /* never answered; evhttp frees it with the connection */
	if (strcmp(uri, "/big") == 0) {
		send_big(req, BIG + 1, 0);
		return;
	}
	if (strcmp(uri, "/bigchunk") == 0) {
		send_big(req, BIG + 65536, 1);
		return;
	}
	if (strcmp(uri, "/exact") == 0) {
		send_big(req, BIG, 1);
		return;
	}
	b = evbuffer_new();
	if (strcmp(uri, "/echo") == 0) {
		evbuffer_add_buffer(b, evhttp_request_get_input_buffer(req));
		evhttp_add_header(out, "Content-Type", "application/octet-stream");
		evhttp_send_reply(req, 201, "Created", b);
	} else if (strcmp(uri, "/down") == 0) {
		evbuffer_add_printf(b, "down");
		evhttp_add_header(out, "Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT");
		evhttp_send_reply(req, 503, "Unavailable", b);
	} else if (strcmp(uri, "/empty") == 0) {
		evhttp_send_reply(req, 204, "No Content", NULL);
	} else if (strncmp(uri, "/hello", 6) == 0) {
		evbuffer_add_printf(b, "hello world");
		evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
		evhttp_add_header(out, "Replay-Nonce", "nonce-1");
		evhttp_add_header(out, "replay-nonce", "  nonce-2 \t");
		evhttp_add_header(out, "Location", "http://x.test/acct/1");
		evhttp_add_header(out, "Retry-After", "  120  ");
		evhttp_add_header(out, "Link", "<http://x.test/dir>;rel=\"index\"");
		evhttp_add_header(out, "Link",
			"<http://x.test/a,b>;rel=\"alternate\", <http://x.test/c>; title=\"x, y\"");
		evhttp_add_header(out, "Link", "<http://x.test/d>; title=\"q\\\", r\",,");
		evhttp_send_reply(req, 200, "OK", b);
	} else {
		evbuffer_add_printf(b, "nope");
		evhttp_send_reply(req, 404, "Not Found", b);
	}
	evbuffer_free(b);
}

/* ---------- helpers ---------- */

static int timed_out;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	timed_out = 1;
}

/* Run the loop until *flag is set or ms pass; returns 1 when the flag was set. */
static int run_until(const int *flag, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *guard = evtimer_new(S.base, guard_cb, NULL);

	timed_out = 0;
	evtimer_add(guard, &tv);
	while (!(flag && *flag) && !timed_out)
		event_base_loop(S.base, EVLOOP_ONCE);
	event_free(guard);
	return flag && *flag;
}

struct result {
	int called;
	int in_send_when_called;
	long status;
	int error;
	char *body;
	size_t body_len;
	char *ct, *loc, *nonce, *ra, *etext;
	char *links[8];
	int nlinks;
	char method[8];
	char url[256];
	int *done_counter;
};

static int g_in_send;

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void result_cb(const struct http_response *r, void *arg)
{
	struct result *res = arg;

	res->called++;
	res->in_send_when_called = g_in_send;
	res->status = r->status;
	res->error = r->error;
	assert_non_null(r->body);
	assert_int_equal(r->body[r->body_len], '\0');
	res->body = malloc(r->body_len + 1);
	memcpy(res->body, r->body, r->body_len + 1);
	res->body_len = r->body_len;
	res->ct = dup_or_null(r->content_type);
	res->loc = dup_or_null(r->location);
	res->nonce = dup_or_null(r->replay_nonce);
	res->ra = dup_or_null(r->retry_after);
	res->etext = dup_or_null(r->error_text);
	assert_non_null(r->links);
	for (res->nlinks = 0; r->links[res->nlinks] && res->nlinks < 8; res->nlinks++)
		res->links[res->nlinks] = strdup(r->links[res->nlinks]);
	snprintf(res->method, sizeof(res->method), "%s", r->method);
	snprintf(res->url, sizeof(res->url), "%s", r->url);
	if (res->done_counter)
		(*res->done_counter)++;
}

static void result_clear(struct result *r)
{
	free(r->body);
	free(r->ct);
	free(r->loc);
	free(r->nonce);
	free(r->ra);
	free(r->etext);
	for (int i = 0; i < r->nlinks; i++)
		free(r->links[i]);
	memset(r, 0, sizeof(*r));
}

static struct http_req *send_req(struct http_client *c, const char *method, const char *url,
				 const char *ct, const char *body, size_t len, struct result *res)
{
	struct http_req *r;

	g_in_send = 1;
	r = http_send(c, method, url, ct, body, len, result_cb, res);
	g_in_send = 0;
	return r;
}

static void url_of(char *buf, size_t n, const char *path)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", S.port, path);
}

/* One request, run to completion. */
static void fetch(struct http_client *c, const char *method, const char *path,
		  const char *ct, const char *body, size_t len, struct result *res)
{
	char url[256];

	url_of(url, sizeof(url), path);
	assert_non_null(send_req(c, method, url, ct, body, len, res));
	assert_int_equal(res->called, 0);
	assert_true(run_until(&res->called, 10000));
	assert_int_equal(res->called, 1);
	assert_int_equal(res->in_send_when_called, 0);
}

static int setup(void **state)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	memset(&S, 0, sizeof(S));
	S.base = event_base_new();
	S.http = evhttp_new(S.base);
	evhttp_set_gencb(S.http, srv_handler, &S);
	evhttp_set_bevcb(S.http, count_conn, &S);
	bs = evhttp_bind_socket_with_handle(S.http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
	S.port = ntohs(sin.sin_port);
	return 0;
}

static int teardown(void **state)
{
	evhttp_free(S.http);
	event_base_free(S.base);
	return 0;
}

/* ---------- plain HTTP ---------- */

static void test_get_headers(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};
	char url[256];

	assert_non_null(c);
	assert_int_equal(http_client_request_count(c), 0);
	fetch(c, "GET", "/hello", NULL, NULL, 0, &res);
	url_of(url, sizeof(url), "/hello");
	assert_string_equal(res.method, "GET");
	assert_string_equal(res.url, url);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.error, 0);
	assert_null(res.etext);
	assert_int_equal(res.body_len, 11);
	assert_string_equal(res.body, "hello world");
	assert_string_equal(res.ct, "text/plain; charset=utf-8");
	assert_string_equal(res.nonce, "nonce-2");      /* last occurrence, trimmed */
	assert_string_equal(res.loc, "http://x.test/acct/1");
	assert_string_equal(res.ra, "120");
	assert_int_equal(res.nlinks, 4);
	assert_string_equal(res.links[0], "<http://x.test/dir>;rel=\"index\"");
	assert_string_equal(res.links[1], "<http://x.test/a,b>;rel=\"alternate\"");
	assert_string_equal(res.links[2], "<http://x.test/c>; title=\"x, y\"");
	assert_string_equal(res.links[3], "<http://x.test/d>; title=\"q\\\", r\"");
	assert_string_equal(S.last_method, "GET");
	assert_true(strncmp(S.last_ua, "acmed/", 6) == 0);
	assert_int_equal(http_client_request_count(c), 1);
	result_clear(&res);

	/* Absent headers are NULL; 204 gives an empty, non-NULL body. */
	fetch(c, "GET", "/empty", NULL, NULL, 0, &res);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.body_len, 0);
	assert_string_equal(res.body, "");
	assert_null(res.nonce);
	assert_null(res.loc);
	assert_null(res.ra);
	assert_int_equal(res.nlinks, 0);
	result_clear(&res);

	/* An HTTP error status is not a transfer error. */
	fetch(c, "GET", "/down", NULL, NULL, 0, &res);
	assert_int_equal(res.status, 503);
	assert_int_equal(res.error, 0);
	assert_string_equal(res.body, "down");
	assert_string_equal(res.ra, "Wed, 21 Oct 2015 07:28:00 GMT");
	result_clear(&res);
	assert_int_equal(http_client_request_count(c), 3);
	http_client_free(c);
}

static void test_head(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};

	fetch(c, "HEAD", "/hello", NULL, NULL, 0, &res);
	assert_string_equal(S.last_method, "HEAD");
	assert_int_equal(res.status, 200);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.body_len, 0);
	assert_string_equal(res.body, "");
	assert_string_equal(res.nonce, "nonce-2");
	assert_string_equal(res.method, "HEAD");
	result_clear(&res);
	http_client_free(c);
}

static void test_post_echo(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};
	const char small[] = "{\"protected\":\"e30\",\"payload\":\"\",\"signature\":\"x\"}";
	size_t blen = 300000;
	char *big = malloc(blen);

	fetch(c, "POST", "/echo", "application/jose+json", small, strlen(small), &res);
	assert_string_equal(S.last_method, "POST");
	assert_string_equal(S.last_ct, "application/jose+json");
	assert_int_equal(res.status, 201);
	assert_int_equal(res.body_len, strlen(small));
	assert_string_equal(res.body, small);
	result_clear(&res);

	/* A large binary body (with NUL bytes) arrives intact, the caller's copy is not needed. */
	for (size_t i = 0; i < blen; i++)
		big[i] = (char)(i * 7);
	{
		char url[256];
		char *copy = malloc(blen);

		memcpy(copy, big, blen);
		url_of(url, sizeof(url), "/echo");
		assert_non_null(send_req(c, "POST", url, "application/octet-stream", copy, blen, &res));
		memset(copy, 0, blen);
		free(copy);
		assert_true(run_until(&res.called, 10000));
	}
	assert_int_equal(res.status, 201);
	assert_int_equal(res.body_len, blen);
	assert_memory_equal(res.body, big, blen);
	result_clear(&res);

	/* POST without a body. */
	fetch(c, "POST", "/echo", "application/jose+json", NULL, 0, &res);
	assert_int_equal(res.status, 201);
	assert_int_equal(res.body_len, 0);
	result_clear(&res);
	free(big);
	http_client_free(c);
}

#define NCONC 200

static void test_concurrent_reuse(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	static struct result res[NCONC];
	int done = 0, conns;
	char url[256];

	memset(res, 0, sizeof(res));
	S.nconns = 0;
	S.nreqs = 0;
	for (int i = 0; i < NCONC; i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello/%d", S.port, i);
		res[i].done_counter = &done;
		assert_non_null(send_req(c, "GET", url, NULL, NULL, 0, &res[i]));
	}
	assert_int_equal(http_client_request_count(c), NCONC);
	{
		struct timeval start, now;

		gettimeofday(&start, NULL);
		while (done < NCONC) {
			event_base_loop(S.base, EVLOOP_ONCE);
			gettimeofday(&now, NULL);
			assert_true(now.tv_sec - start.tv_sec < 30);
		}
	}
	for (int i = 0; i < NCONC; i++) {
		assert_int_equal(res[i].called, 1);
		assert_int_equal(res[i].status, 200);
		assert_string_equal(res[i].body, "hello world");
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello/%d", S.port, i);
		assert_string_equal(res[i].url, url);
		result_clear(&res[i]);
	}
	assert_int_equal(S.nreqs, NCONC);
	assert_true(S.nconns >= 1);
	assert_true(S.nconns <= 8);     /* CURLMOPT_MAX_HOST_CONNECTIONS */

	/* Later requests reuse the kept-alive connections. */
	conns = S.nconns;
	for (int i = 0; i < 10; i++) {
		struct result r = {0};

		fetch(c, "GET", "/hello", NULL, NULL, 0, &r);
		assert_int_equal(r.status, 200);
		result_clear(&r);
	}
	assert_int_equal(S.nconns, conns);
	assert_int_equal(http_client_request_count(c), NCONC + 10);
	http_client_free(c);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void test_refused(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
	assert_non_null(send_req(c, "GET", url, NULL, NULL, 0, &res));
	assert_true(run_until(&res.called, 10000));
	assert_int_equal(res.in_send_when_called, 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -ECONNREFUSED);
	assert_non_null(res.etext);
	assert_string_equal(res.body, "");
	result_clear(&res);
	http_client_free(c);
}

static void test_timeout(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};
	struct timeval t0, t1;
	long ms;

	http_client_set_timeouts(c, 1000, 300);
	gettimeofday(&t0, NULL);
	fetch(c, "GET", "/hang", NULL, NULL, 0, &res);
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -ETIMEDOUT);
	assert_non_null(res.etext);
	assert_true(ms >= 250 && ms < 3000);
	result_clear(&res);
	http_client_free(c);
}

static void test_body_limit(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};

	fetch(c, "GET", "/big", NULL, NULL, 0, &res);            /* Content-Length too big */
	assert_int_equal(res.error, -EMSGSIZE);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.body_len, 0);
	result_clear(&res);
	fetch(c, "GET", "/bigchunk", NULL, NULL, 0, &res);       /* chunked, grows too big */
	assert_int_equal(res.error, -EMSGSIZE);
	assert_int_equal(res.status, 0);
	result_clear(&res);
	fetch(c, "GET", "/exact", NULL, NULL, 0, &res);          /* exactly the limit is fine */
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.body_len, BIG);
	assert_int_equal(res.body[BIG - 1], 'x');
	result_clear(&res);
	http_client_free(c);
}

static void test_bad_input(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res = {0};
	char url[128];

	url_of(url, sizeof(url), "/hello");
	assert_null(send_req(c, "PUT", url, NULL, NULL, 0, &res));
	assert_null(send_req(c, "DELETE", url, NULL, NULL, 0, &res));
	assert_int_equal(http_client_request_count(c), 0);
	/* A malformed URL fails from the loop, not inside http_send. */
	assert_non_null(send_req(c, "GET", "no-scheme-here:::", NULL, NULL, 0, &res));
	assert_int_equal(res.called, 0);
	assert_true(run_until(&res.called, 5000));
	assert_int_equal(res.in_send_when_called, 0);
	assert_int_equal(res.status, 0);
	assert_true(res.error < 0);
	result_clear(&res);
	/* Only http and https. */
	assert_non_null(send_req(c, "GET", "file:///etc/passwd", NULL, NULL, 0, &res));
	assert_true(run_until(&res.called, 5000));
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -EIO);
	assert_int_equal(res.body_len, 0);
	result_clear(&res);
	http_client_free(c);
}

/* ---------- cancel and free ---------- */

static void test_cancel(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result a = {0}, b = {0}, h = {0};
	struct http_req *ra, *rh;
	char url[128];

	url_of(url, sizeof(url), "/hello");
	ra = send_req(c, "GET", url, NULL, NULL, 0, &a);
	assert_non_null(ra);
	http_cancel(ra);                        /* before it even started */
	url_of(url, sizeof(url), "/hang");
	rh = send_req(c, "GET", url, NULL, NULL, 0, &h);
	assert_non_null(rh);
	fetch(c, "GET", "/hello", NULL, NULL, 0, &b);
	assert_int_equal(b.status, 200);
	http_cancel(rh);                        /* in flight, server holding it */
	run_until(NULL, 300);
	assert_int_equal(a.called, 0);
	assert_int_equal(h.called, 0);
	result_clear(&b);
	/* The client still works afterwards. */
	fetch(c, "GET", "/hello", NULL, NULL, 0, &b);
	assert_int_equal(b.status, 200);
	result_clear(&b);
	http_cancel(NULL);
	http_client_free(c);
}

struct pair {
	struct http_req *req[2];
	int calls[2];
	int total;
};

static void pair_cb0(const struct http_response *r, void *arg);
static void pair_cb1(const struct http_response *r, void *arg);

static void pair_cb(struct pair *p, int me)
{
	p->calls[me]++;
	p->total++;
	p->req[me] = NULL;
	if (p->req[!me]) {
		http_cancel(p->req[!me]);
		p->req[!me] = NULL;
	}
}

static void pair_cb0(const struct http_response *r, void *arg) { pair_cb(arg, 0); }
static void pair_cb1(const struct http_response *r, void *arg) { pair_cb(arg, 1); }

static void test_cancel_from_callback(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	char url[128];

	url_of(url, sizeof(url), "/hello");
	/* Both complete close together: whichever is delivered first cancels the other,
	 * whether it is still running or already completed and queued. */
	for (int round = 0; round < 20; round++) {
		struct pair p = {0};

		p.req[0] = http_send(c, "GET", url, NULL, NULL, 0, pair_cb0, &p);
		p.req[1] = http_send(c, "GET", url, NULL, NULL, 0, pair_cb1, &p);
		assert_non_null(p.req[0]);
		assert_non_null(p.req[1]);
		assert_true(run_until(&p.total, 5000));
		run_until(NULL, 30);
		assert_int_equal(p.total, 1);
		assert_int_equal(p.calls[0] + p.calls[1], 1);
	}
	http_client_free(c);
}

static void self_cancel_cb(const struct http_response *r, void *arg)
{
	struct pair *p = arg;

	p->total++;
	http_cancel(p->req[0]);         /* our own request: ignored, freed after we return */
}

static void test_cancel_self(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct pair p = {0};
	char url[128];

	url_of(url, sizeof(url), "/hello");
	p.req[0] = http_send(c, "GET", url, NULL, NULL, 0, self_cancel_cb, &p);
	assert_true(run_until(&p.total, 5000));
	run_until(NULL, 30);
	assert_int_equal(p.total, 1);
	http_client_free(c);
}

/* A raw TCP server that misbehaves: closes at once, or sends a truncated reply. */
struct rude {
	int lfd, port, truncate;
	struct event *ev;
};

static void rude_read(evutil_socket_t fd, short what, void *arg)
{
	const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
	char buf[4096];

	if (read(fd, buf, sizeof(buf)) > 0 && write(fd, reply, sizeof(reply) - 1) < 0)
		fail_msg("write: %s", strerror(errno));
	close(fd);
}

static void rude_accept(evutil_socket_t fd, short what, void *arg)
{
	struct rude *r = arg;
	int c = accept(fd, NULL, NULL);

	if (c < 0)
		return;
	if (r->truncate)        /* answer once the request is in, without blocking the loop */
		event_base_once(S.base, c, EV_READ, rude_read, NULL, NULL);
	else
		close(c);
}

static void rude_start(struct rude *r, int truncate)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	r->truncate = truncate;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(r->lfd, 16), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sin, &sl), 0);
	r->port = ntohs(sin.sin_port);
	r->ev = event_new(S.base, r->lfd, EV_READ | EV_PERSIST, rude_accept, r);
	event_add(r->ev, NULL);
}

static void rude_stop(struct rude *r)
{
	event_free(r->ev);
	close(r->lfd);
}

static void test_connection_reset(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);

	for (int truncate = 0; truncate < 2; truncate++) {
		struct rude rs;
		struct result res = {0};
		char url[128];

		rude_start(&rs, truncate);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", rs.port);
		assert_non_null(send_req(c, "GET", url, NULL, NULL, 0, &res));
		assert_true(run_until(&res.called, 10000));
		assert_int_equal(res.status, 0);
		assert_int_equal(res.error, -ECONNRESET);
		assert_string_equal(res.body, "");
		result_clear(&res);
		rude_stop(&rs);
	}
	http_client_free(c);
}

struct freeer {
	struct http_client *c;
	int calls;
};

static void free_in_cb(const struct http_response *r, void *arg)
{
	struct freeer *f = arg;

	f->calls++;
	assert_int_equal(r->status, 200);
	http_client_free(f->c);
	assert_string_equal(r->body, "hello world");   /* resp stays valid */
}

static void test_free_from_callback(void **state)
{
	struct freeer f = {0};
	char url[128];

	for (int round = 0; round < 10; round++) {
		f.c = http_client_new(S.base, NULL, NULL);
		f.calls = 0;
		url_of(url, sizeof(url), "/hello");
		for (int i = 0; i < 5; i++)
			assert_non_null(http_send(f.c, "GET", url, NULL, NULL, 0, free_in_cb, &f));
		url_of(url, sizeof(url), "/hang");
		assert_non_null(http_send(f.c, "GET", url, NULL, NULL, 0, free_in_cb, &f));
		assert_true(run_until(&f.calls, 5000));
		run_until(NULL, 50);
		assert_int_equal(f.calls, 1);
	}
}

static void test_free_pending(void **state)
{
	struct http_client *c = http_client_new(S.base, NULL, NULL);
	struct result res[10];
	char url[128];

	memset(res, 0, sizeof(res));
	url_of(url, sizeof(url), "/hang");
	for (int i = 0; i < 5; i++)
		assert_non_null(send_req(c, i % 2 ? "GET" : "POST", url, "text/plain", "x", 1, &res[i]));
	run_until(NULL, 50);    /* connected, sent, waiting for the answer */
	assert_int_equal(S.nreqs, 5);
	url_of(url, sizeof(url), "/hello");
	for (int i = 5; i < 10; i++)      /* and some not started yet */
		assert_non_null(send_req(c, i % 2 ? "GET" : "POST", url, "text/plain", "x", 1, &res[i]));
	http_client_free(c);
	run_until(NULL, 200);
	for (int i = 0; i < 10; i++)
		assert_int_equal(res[i].called, 0);
	http_client_free(NULL);
}

/* ---------- HTTPS against a python server with a throwaway certificate ---------- */

static const char py_server[] =
	"import http.server, ssl, sys\n"
	"conns = 0\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def do_GET(self):\n"
	"        global conns\n"
	"        if not getattr(self, 'counted', False):\n"
	"            self.counted = True\n"
	"            conns += 1\n"
	"        b = str(conns).encode() if self.path in ('/conns', '/close') else b'secure'\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Type', 'text/plain')\n"
	"        self.send_header('Replay-Nonce', 'tls-nonce')\n"
	"        self.send_header('Content-Length', str(len(b)))\n"
	"        if self.path == '/close':\n"
	"            self.send_header('Connection', 'close')\n"
	"            self.close_connection = True\n"
	"        self.end_headers()\n"
	"        self.wfile.write(b)\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"class S(http.server.ThreadingHTTPServer):\n"
	"    def handle_error(self, *a):\n"
	"        pass\n"
	"s = S(('127.0.0.1', 0), H)\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
	"s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
	"print(s.server_address[1], flush=True)\n"
	"s.serve_forever()\n";

struct tls_env {
	char dir[64];
	char cert[128], key[128];
	char cert2[128], key2[128];     /* another self-signed root, trusted by nobody */
	pid_t pid;
	int port;
	int pipe;
};

static struct tls_env T;

static int tls_setup(void **state)
{
	char cmd[1024], line[32] = {0};
	int pfd[2];
	struct pollfd p;
	ssize_t n;

	setup(state);
	memset(&T, 0, sizeof(T));
	if (access("/usr/bin/python3", X_OK) != 0 || access("/usr/bin/openssl", X_OK) != 0)
		return 0;
	strcpy(T.dir, "/tmp/acmed-test-http-XXXXXX");
	assert_non_null(mkdtemp(T.dir));
	snprintf(T.cert, sizeof(T.cert), "%s/cert.pem", T.dir);
	snprintf(T.key, sizeof(T.key), "%s/key.pem", T.dir);
	snprintf(T.cert2, sizeof(T.cert2), "%s/cert2.pem", T.dir);
	snprintf(T.key2, sizeof(T.key2), "%s/key2.pem", T.dir);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes -keyout %s -out %s -days 2 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost 2>/dev/null", T.key, T.cert);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes -keyout %s -out %s -days 2 -subj /CN=other-root 2>/dev/null",
		 T.key2, T.cert2);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pipe(pfd), 0);
	T.pid = fork();
	assert_true(T.pid >= 0);
	if (T.pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl("/usr/bin/python3", "python3", "-c", py_server, T.cert, T.key, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	T.pipe = pfd[0];        /* kept open until teardown: the server's stdout */
	p.fd = pfd[0];
	p.events = POLLIN;
	for (size_t got = 0; !strchr(line, '\n') && got < sizeof(line) - 1; got += (size_t)n) {
		assert_int_equal(poll(&p, 1, 15000), 1);
		n = read(pfd[0], line + got, sizeof(line) - 1 - got);
		assert_true(n > 0);
	}
	T.port = atoi(line);
	assert_true(T.port > 0);
	return 0;
}

static int tls_teardown(void **state)
{
	char cmd[256];

	if (T.pid > 0) {
		kill(T.pid, SIGTERM);
		waitpid(T.pid, NULL, 0);
		close(T.pipe);
	}
	if (T.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", T.dir);
		if (system(cmd) != 0)
			return -1;
	}
	return teardown(state);
}

static void tls_get(struct http_client *c, const char *host, const char *path,
		    struct result *res)
{
	char url[128];

	snprintf(url, sizeof(url), "https://%s:%d%s", host, T.port, path);
	assert_non_null(send_req(c, "GET", url, NULL, NULL, 0, res));
	assert_true(run_until(&res->called, 15000));
}

static void tls_fetch(struct http_client *c, const char *host, struct result *res)
{
	tls_get(c, host, "/x", res);
}

/* GET path; returns the number of connections that had carried a request then. */
static int tls_conns(struct http_client *c, const char *path)
{
	struct result res = {0};
	int n;

	tls_get(c, "localhost", path, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	n = atoi(res.body);
	assert_true(n > 0);
	result_clear(&res);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spill(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The trust file must be the system roots, a newline, then the bundle. */
static void assert_trust_file(const char *trust, const char *bundle)
{
	const char *sys = curl_version_info(CURLVERSION_NOW)->cainfo;
	char *t, *s, *b;
	size_t tl, sl, bl;
	struct stat st;

	assert_non_null(sys);
	assert_int_equal(lstat(trust, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	t = slurp(trust, &tl);
	s = slurp(sys, &sl);
	b = slurp(bundle, &bl);
	assert_true(sl > 0);
	assert_int_equal(tl, sl + 1 + bl);
	assert_memory_equal(t, s, sl);
	assert_int_equal(t[sl], '\n');
	assert_memory_equal(t + sl + 1, b, bl);
	free(t);
	free(s);
	free(b);
}

static void test_tls(void **state)
{
	struct http_client *c;
	struct result res = {0};

	if (!T.port)
		skip();
	/* Self-signed and not in the system store: refused. */
	c = http_client_new(S.base, NULL, NULL);
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -EPROTO);
	assert_non_null(res.etext);
	result_clear(&res);
	http_client_free(c);

	/* Trusted through ca_bundle (handed to curl in memory: no trust file). */
	c = http_client_new(S.base, T.cert, NULL);
	assert_non_null(c);
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "secure");
	assert_string_equal(res.nonce, "tls-nonce");
	result_clear(&res);
	/* ...but the host name is still checked: the certificate names only localhost. */
	tls_fetch(c, "127.0.0.1", &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -EPROTO);
	result_clear(&res);
	http_client_free(c);

	/* A missing bundle is an error at creation. */
	assert_null(http_client_new(S.base, "/nonexistent/acmed-roots.pem", NULL));
}

/* ca_bundle through a trust file: its content and mode, curl keeping the
 * parsed store for new connections, rebuilt when the bundle changes. */
static void test_trust_file(void **state)
{
	char bundle[160], trust[192], dir[160], *data;
	struct http_client *c;
	struct result res = {0};
	struct stat st, st2;
	size_t len, len2;
	int before;

	if (!T.port)
		skip();
	snprintf(bundle, sizeof(bundle), "%s/bundle.pem", T.dir);
	snprintf(dir, sizeof(dir), "%s/state/trust", T.dir);
	snprintf(trust, sizeof(trust), "%s/ca.pem", dir);
	data = slurp(T.cert, &len);
	spill(bundle, data, len);
	free(data);

	c = http_client_new(S.base, bundle, trust);
	assert_non_null(c);
	assert_trust_file(trust, bundle);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* Trusted only through ca_bundle, and the host name is still checked. */
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "secure");
	result_clear(&res);
	tls_fetch(c, "127.0.0.1", &res);
	assert_int_equal(res.error, -EPROTO);
	result_clear(&res);

	/* The store curl parsed is reused: with the file now unusable, a new
	 * connection still verifies the server (without the cache, curl would
	 * read the file again and fail). */
	before = tls_conns(c, "/close");        /* the server closes this connection */
	spill(trust, "not a certificate\n", 18);
	assert_int_equal(tls_conns(c, "/conns"), before + 1);
	http_client_free(c);

	/* A new client (start-up, reload) rebuilds the file it finds wrong... */
	c = http_client_new(S.base, bundle, trust);
	assert_non_null(c);
	assert_trust_file(trust, bundle);
	http_client_free(c);
	/* ...leaves a right one alone... */
	assert_int_equal(stat(trust, &st), 0);
	c = http_client_new(S.base, bundle, trust);
	assert_non_null(c);
	assert_int_equal(stat(trust, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	http_client_free(c);
	/* ...and follows a changed bundle: another root first, ours second. */
	data = slurp(T.cert2, &len);
	{
		char *ours = slurp(T.cert, &len2);

		data = realloc(data, len + len2);
		assert_non_null(data);
		memcpy(data + len, ours, len2);
		free(ours);
	}
	spill(bundle, data, len + len2);
	free(data);
	c = http_client_new(S.base, bundle, trust);
	assert_non_null(c);
	assert_trust_file(trust, bundle);
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	result_clear(&res);
	http_client_free(c);

	/* Without our root in the bundle, the server is refused. */
	data = slurp(T.cert2, &len);
	spill(bundle, data, len);
	free(data);
	c = http_client_new(S.base, bundle, trust);
	assert_non_null(c);
	assert_trust_file(trust, bundle);
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.error, -EPROTO);
	result_clear(&res);
	http_client_free(c);
}

/* A trust file that cannot be written: the roots go to curl in memory, still trusted. */
static void test_trust_file_unwritable(void **state)
{
	char trust[192];
	struct http_client *c;
	struct result res = {0};

	if (!T.port)
		skip();
	snprintf(trust, sizeof(trust), "%s/trust/ca.pem", T.cert);    /* under a regular file */
	c = http_client_new(S.base, T.cert, trust);
	assert_non_null(c);
	tls_fetch(c, "localhost", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	result_clear(&res);
	http_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_self, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, tls_setup, tls_teardown),
		cmocka_unit_test_setup_teardown(test_trust_file, tls_setup, tls_teardown),
		cmocka_unit_test_setup_teardown(test_trust_file_unwritable, tls_setup, tls_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
