/* rawhttp.h - a raw, non-blocking HTTP client on the test's event loop, for the http-01 listener's unit tests (real sockets on loopback). */
#ifndef ACMED_TEST_RAWHTTP_H
#define ACMED_TEST_RAWHTTP_H

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#define TOKEN "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
#define KEYAUTH TOKEN ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define PREFIX "/.well-known/acme-challenge/"

/* The loop the listener and these clients run on (each test file's own). */
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

static inline void rawc_cb(evutil_socket_t fd, short what, void *arg)
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

static inline void reply_free(struct reply *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static int timed_out;

static inline void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	timed_out = 1;
}

static inline void run_ms(int ms, const int *flag)
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
static inline void exchange2(int family, int port, const char *req, size_t len, int keep_open,
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

static inline void exchange(int family, int port, const char *req, size_t len, struct reply *out)
{
	exchange2(family, port, req, len, 0, out);
}

static inline void get(int family, int port, const char *method, const char *target, struct reply *out)
{
	char req[4096];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: example.org\r\n"
			 "User-Agent: test\r\nAccept: */*\r\n\r\n", method, target);

	assert_true(n > 0 && (size_t)n < sizeof(req));
	exchange(family, port, req, (size_t)n, out);
}

/* Case-insensitive header lookup in the raw response head. */
static inline int has_header(const struct reply *r, const char *line)
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

/* A blocking connection to 127.0.0.1:port (-errno when refused). */
static inline int connect_blocking(int port)
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

#endif
