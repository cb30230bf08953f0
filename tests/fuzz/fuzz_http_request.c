/* fuzz_http_request.c - libFuzzer target: raw bytes sent over loopback TCP to the http-01 listener (challenge_http); one answer per connection, none for an ambiguous length. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz_target.h"
#include "challenge_http.h"
#include "log.h"

#define PREFIX "/.well-known/acme-challenge/"

static const char *const tokens[][2] = {
	{ "tok", "tok.ka-SECRET-1" },
	{ "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "Loq.ka-SECRET-2" },
};

static struct event_base *base;
static struct challenge_http *listener;
static int port;

struct conn {
	const uint8_t *data;
	size_t len, off;
	char resp[65536];
	size_t rlen;
	int done;
	struct event *ev;
};

static void init(void)
{
	const char *addrs[] = { "127.0.0.1:0" };

	signal(SIGPIPE, SIG_IGN);
	log_init(-1);
	base = event_base_new();
	if (!base || challenge_http_new(base, addrs, 1, NULL, 0, &listener) != 0)
		abort();
	for (size_t i = 0; i < sizeof(tokens) / sizeof(*tokens); i++)
		if (challenge_http_add(listener, tokens[i][0], tokens[i][1]) != 0)
			abort();
	port = challenge_http_port(listener, 0);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_WRITE) {
		ssize_t n = 0;

		if (c->off < c->len)
			n = send(fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n > 0)
			c->off += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			c->off = c->len;
		if (c->off == c->len) {
			shutdown(fd, SHUT_WR);
			event_del(c->ev);
			event_assign(c->ev, base, fd, EV_READ | EV_PERSIST, conn_cb, c);
			event_add(c->ev, NULL);
		}
	}
	if (what & EV_READ) {
		char buf[16384];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			size_t room = sizeof(c->resp) - 1 - c->rlen;
			size_t k = (size_t)n < room ? (size_t)n : room;

			memcpy(c->resp + c->rlen, buf, k);
			c->rlen += k;
			c->resp[c->rlen] = '\0';
		} else if (n == 0 || errno != EAGAIN) {
			c->done = 1;
			event_del(c->ev);
		}
	}
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Lines of the first request's head (up to the first empty line) that start with name (case-insensitive). */
static int head_lines(const uint8_t *data, size_t size, const char *name)
{
	size_t n = strlen(name);
	int count = 0;

	for (size_t i = 0; i < size; i++) {
		if (data[i] != '\n')
			continue;
		if (i + 1 < size && (data[i + 1] == '\n' ||
				     (data[i + 1] == '\r' && i + 2 < size && data[i + 2] == '\n')))
			break;          /* the empty line: the body or the next request follows */
		if (i + 1 + n <= size && strncasecmp((const char *)data + i + 1, name, n) == 0)
			count++;
	}
	return count;
}

/* The answers (status lines) in the response. */
static int answers(const struct conn *c)
{
	int n = 0;

	for (const char *p = c->resp; (p = strstr(p, "HTTP/1.")) != NULL; p += 7)
		if (p == c->resp || p[-1] == '\n')
			n++;
	return n;
}

/* A key authorization may only go out to a request that named its token
 * exactly, and framed its length in one way only; one answer per connection. */
static void check(const uint8_t *data, size_t size, const struct conn *c)
{
	int cl = head_lines(data, size, "Content-Length:");
	int te = head_lines(data, size, "Transfer-Encoding:");

	if (answers(c) > 1) {
		fprintf(stderr, "more than one answer on one connection\n");
		abort();
	}
	for (size_t i = 0; i < sizeof(tokens) / sizeof(*tokens); i++) {
		char want[128];
		int n;

		if (!memmem(c->resp, c->rlen, tokens[i][1], strlen(tokens[i][1])))
			continue;
		n = snprintf(want, sizeof(want), PREFIX "%s ", tokens[i][0]);
		if (!memmem(data, size, want, (size_t)n)) {
			fprintf(stderr, "key authorization for %s served without its exact path\n",
				tokens[i][0]);
			abort();
		}
		if (cl > 1 || (cl > 0 && te > 0)) {
			fprintf(stderr, "key authorization for %s served to a request with "
				"%d Content-Length and %d Transfer-Encoding\n", tokens[i][0], cl, te);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct conn *c;
	struct event *guard;
	struct timeval tv = { 3, 0 };
	int fd, timed_out = 0;

	if (!base)
		init();
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->data = data;
	c->len = size;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS)
		abort();
	c->ev = event_new(base, fd, EV_READ | EV_WRITE | EV_PERSIST, conn_cb, c);
	guard = evtimer_new(base, guard_cb, &timed_out);
	event_add(c->ev, NULL);
	evtimer_add(guard, &tv);
	while (!c->done && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	event_free(c->ev);
	close(fd);
	/* Let the server side notice the close and free the connection. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	check(data, size, c);
	free(c);
	return 0;
}
