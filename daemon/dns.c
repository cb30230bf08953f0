/* dns.c - DNS on the event loop: queries over UDP (TCP when truncated) and UPDATEs over TCP on our own non-blocking sockets, with tries and deadlines; the messages are dns_wire.c's (ldns). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "crypto.h"
#include "dns.h"
#include "dns_internal.h"

#define DNS_UDP_MAX 65536
#define DNS_UDP_BURST 16        /* datagrams read per wake-up */
#define DNS_TCP_BURST 16        /* reads per wake-up on a TCP connection: a server streaming
				 * bytes never holds the loop */
#define DNS_TCP_JUNK 8          /* messages on one connection that answer nothing asked */

struct dns_client {
	struct event_base *base;
	long try_ms;
	int tries;
	unsigned long queries, updates;
	struct dns_req *reqs;
	uint8_t *buf;                   /* one datagram */
};

enum req_state { ST_START, ST_UDP, ST_TCP };

struct dns_req {
	struct dns_client *c;
	struct dns_req *prev, *next;
	int update;
	dns_done_fn cb;
	void *arg;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char server[64];
	uint8_t qname[DNS_NAME_WIRE_MAX];
	size_t qname_len;
	uint16_t qtype;
	uint8_t *msg;                   /* the request, ID at its start */
	size_t msglen;
	struct dns_tsig_key *key;
	uint8_t mac[DNS_TSIG_MAC_MAX];
	size_t maclen;
	enum req_state state;
	int delivering;                 /* in its callback: dns_cancel() does nothing */
	int fd;
	struct event *io, *timer;
	int tries_done, timeouts, refused, err, failed_now;
	enum dns_reject bad;            /* the last answer not taken (from the right ID), else 0 */
	/* TCP */
	uint8_t *out;                   /* length + message */
	size_t outlen, outoff;
	int connected, reading;
	int junk;                       /* TCP messages that answered nothing asked */
	uint8_t lenbuf[2];
	uint8_t *in;
	size_t inlen, inoff;
	long tcp_ms;
};

/* ---- addresses ---- */

int dns_parse_server(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *port = NULL, *colon;
	long p = default_port;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	size_t hl;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		s++;
		port = end[1] ? end + 2 : NULL;
	} else if ((colon = strchr(s, ':')) && !strchr(colon + 1, ':')) {
		hl = (size_t)(colon - s);
		port = colon + 1;
	} else {
		hl = strlen(s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (port) {
		char *end;

		if (*port < '0' || *port > '9')
			return -EINVAL;
		errno = 0;
		p = strtol(port, &end, 10);
		if (*end || errno)
			return -EINVAL;
	}
	if (p < 1 || p > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *dns_server_str(const struct sockaddr *sa, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, size, "%s:%u", a, ntohs(sin->sin_port));
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, size, "[%s]:%u", a, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "(no address)");
	}
	return buf;
}

/* ---- names for codes ---- */
const char *dns_rcode_str(int rcode)
{
	static const char *const names[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
	};
	static __thread char buf[32];

	if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	if (rcode == 16)
		return "BADVERS";
	snprintf(buf, sizeof(buf), "RCODE%d", rcode);
	return buf;
}

const char *dns_tsig_error_str(int err)
{
	static __thread char buf[32];

	switch (err) {
	case 0:
		return "NOERROR";
	case DNS_TSIG_BADSIG:
		return "BADSIG";
	case DNS_TSIG_BADKEY:
		return "BADKEY";
	case DNS_TSIG_BADTIME:
		return "BADTIME";
	case DNS_TSIG_BADTRUNC:
		return "BADTRUNC";
	}
	snprintf(buf, sizeof(buf), "TSIG error %d", err);
	return buf;
}

/* ---- the client ---- */

struct dns_client *dns_client_new(struct event_base *base)
{
	struct dns_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->buf = malloc(DNS_UDP_MAX);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	c->base = base;
	c->try_ms = 2000;
	c->tries = 3;
	return c;
}

void dns_client_set_timeouts(struct dns_client *c, long try_ms, int tries)
{
	if (try_ms > 0 && try_ms <= 600000)
		c->try_ms = try_ms;
	if (tries > 0 && tries <= 20)
		c->tries = tries;
}

void dns_client_counts(const struct dns_client *c, unsigned long *queries, unsigned long *updates)
{
	if (queries)
		*queries = c->queries;
	if (updates)
		*updates = c->updates;
}

static void close_fd(struct dns_req *r)
{
	if (r->io) {
		event_free(r->io);
		r->io = NULL;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
}

/* Out of the client's list, sockets and timer gone: nothing of it runs any more. */
static void detach(struct dns_req *r)
{
	close_fd(r);
	if (r->timer) {
		event_free(r->timer);
		r->timer = NULL;
	}
	if (r->c) {
		if (r->prev)
			r->prev->next = r->next;
		else
			r->c->reqs = r->next;
		if (r->next)
			r->next->prev = r->prev;
		r->c = NULL;
	}
}

static void req_free(struct dns_req *r)
{
	detach(r);
	if (r->key) {
		dns_tsig_key_clear(r->key);
		free(r->key);
	}
	free(r->msg);
	free(r->out);
	free(r->in);
	free(r);
}

void dns_cancel(struct dns_req *r)
{
	if (r && !r->delivering)
		req_free(r);
}

void dns_client_free(struct dns_client *c)
{
	if (!c)
		return;
	while (c->reqs)
		req_free(c->reqs);
	free(c->buf);
	free(c);
}

/* ---- the end of a request: its callback, from one of its events ---- */

static void deliver(struct dns_req *r, const struct dns_result *res)
{
	dns_done_fn cb = r->cb;
	void *arg = r->arg;

	/* Gone from the client before the callback: the callback may free the client,
	 * other requests, or start new ones. */
	detach(r);
	r->delivering = 1;
	cb(res, arg);
	req_free(r);
}

static void finish_reply(struct dns_req *r, struct dns_reply *reply)
{
	deliver(r, dns_reply_result(reply));
	dns_reply_free(reply);
}

static void finish(struct dns_req *r, enum dns_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finish(struct dns_req *r, enum dns_status status, const char *fmt, ...)
{
	char msg[384];
	struct dns_result res = { .status = status, .message = msg };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	deliver(r, &res);
}

/* "6 s", "1.5 s", "150 ms" */
static const char *duration(long ms, char *buf, size_t size)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%ld s", ms / 1000);
	else if (ms >= 1000)
		snprintf(buf, size, "%.1f s", (double)ms / 1000);
	else
		snprintf(buf, size, "%ld ms", ms);
	return buf;
}

static void new_id(struct dns_req *r)
{
	uint64_t rnd = crypto_random_u64();    /* crypto.c owns OpenSSL */
	uint8_t id[2] = { (uint8_t)(rnd >> 8), (uint8_t)rnd };

	memcpy(r->msg, id, 2);
}

static int handle_answer(struct dns_req *r, const uint8_t *buf, size_t len, struct dns_reply **out)
{
	struct dns_expect e = {
		.id = (uint16_t)(r->msg[0] << 8 | r->msg[1]),
		.opcode = r->update ? 5 : 0,
		.qname = r->qname,
		.qname_len = r->qname_len,
		.qtype = r->qtype,
		.key = r->key,
		.req_mac = r->mac,
		.req_mac_len = r->maclen,
		.server = r->server,
	};
	enum dns_reject why;
	int rc = dns_wire_reply(buf, len, &e, clock_now(), out, &why);

	if (rc == -EBADMSG && why != DNS_REJECT_OTHER_ID)
		r->bad = why;
	return rc;
}

/* ---- UDP ---- */

static void udp_try(struct dns_req *r);
static void tcp_start(struct dns_req *r);

/* This try failed at once (refused, unreachable): the next one from the loop, now. */
static void try_failed(struct dns_req *r, int err)
{
	struct timeval now = { 0, 0 };

	close_fd(r);
	r->failed_now = 1;
	if (err == ECONNREFUSED)
		r->refused++;
	else
		r->err = err;
	evtimer_add(r->timer, &now);
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;

	for (int i = 0; i < DNS_UDP_BURST; i++) {
		struct dns_reply *reply;
		ssize_t n = recv(fd, r->c->buf, DNS_UDP_MAX, 0);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				try_failed(r, errno);
			return;
		}
		if (handle_answer(r, r->c->buf, (size_t)n, &reply) < 0)
			continue;       /* not ours, or unusable: keep waiting */
		if (reply->tc) {
			dns_reply_free(reply);
			tcp_start(r);
			return;
		}
		finish_reply(r, reply);
		return;
	}
}

static void udp_no_answer(struct dns_req *r)
{
	char d[32];

	if (r->bad)
		finish(r, DNS_BAD_ANSWER, "%s sent %s", r->server, dns_reject_str(r->bad));
	else if (r->timeouts == 0 && r->refused == r->tries_done)
		finish(r, DNS_NO_ANSWER, "%s: connection refused", r->server);
	else if (r->timeouts == 0 && r->err)
		finish(r, DNS_NO_ANSWER, "%s: %s", r->server, strerror(r->err));
	else
		finish(r, DNS_NO_ANSWER, "no answer from %s (%d %s over UDP, %s)", r->server,
		       r->tries_done, r->tries_done == 1 ? "try" : "tries",
		       duration(r->c->try_ms * r->tries_done, d, sizeof(d)));
}

static void udp_try(struct dns_req *r)
{
	struct timeval tv;
	int fd;

	close_fd(r);
	if (r->tries_done >= r->c->tries) {
		udp_no_answer(r);
		return;
	}
	r->tries_done++;
	r->failed_now = 0;
	r->state = ST_UDP;
	new_id(r);
	fd = socket(r->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		try_failed(r, errno);
		return;
	}
	r->fd = fd;
	r->c->queries++;
	if (connect(fd, (struct sockaddr *)&r->ss, r->sslen) < 0 ||
	    send(fd, r->msg, r->msglen, 0) < 0) {
		try_failed(r, errno);
		return;
	}
	r->io = event_new(r->c->base, fd, EV_READ | EV_PERSIST, on_udp, r);
	if (!r->io || event_add(r->io, NULL) < 0) {
		try_failed(r, ENOMEM);
		return;
	}
	tv = clock_tv_ms(r->c->try_ms);
	evtimer_add(r->timer, &tv);
}

/* ---- TCP ---- */

static void tcp_fail(struct dns_req *r, int err)
{
	if (err == ECONNREFUSED)
		finish(r, DNS_NO_ANSWER, "%s: TCP connection refused", r->server);
	else if (err == 0)
		finish(r, DNS_NO_ANSWER, "%s closed the TCP connection without answering", r->server);
	else
		finish(r, DNS_NO_ANSWER, "%s: TCP: %s", r->server, strerror(err));
}

/* A whole message read: 1 the request ended, 0 keep reading (an answer to another ID). */
static int tcp_message(struct dns_req *r)
{
	struct dns_reply *reply;
	int rc = handle_answer(r, r->in, r->inlen, &reply);

	if (rc == 0) {
		finish_reply(r, reply);
		return 1;
	}
	if (rc == -ENOMEM) {
		finish(r, DNS_NO_ANSWER, "%s: out of memory", r->server);
		return 1;
	}
	if (r->bad) {
		finish(r, DNS_BAD_ANSWER, "%s sent %s", r->server, dns_reject_str(r->bad));
		return 1;
	}
	/* one request per connection: a server that keeps sending something else is not answering */
	if (++r->junk >= DNS_TCP_JUNK) {
		finish(r, DNS_NO_ANSWER, "%s sent %d messages over TCP that answer nothing asked", r->server,
		       r->junk);
		return 1;
	}
	free(r->in);
	r->in = NULL;
	r->inoff = 0;
	return 0;
}

/* Reads what is there, a few reads at a time (the loop calls again while
 * more is waiting); 1 when the request ended. */
static int tcp_read(struct dns_req *r)
{
	for (int i = 0; i < DNS_TCP_BURST; i++) {
		uint8_t *dst = r->in ? r->in + r->inoff : r->lenbuf + r->inoff;
		size_t want = r->in ? r->inlen - r->inoff : 2 - r->inoff;
		ssize_t n = recv(r->fd, dst, want, 0);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0) {
			tcp_fail(r, n == 0 ? 0 : errno);
			return 1;
		}
		r->inoff += (size_t)n;
		if (!r->in && r->inoff == 2) {
			r->inlen = (size_t)(r->lenbuf[0] << 8 | r->lenbuf[1]);
			r->inoff = 0;
			r->in = malloc(r->inlen ? r->inlen : 1);
			if (!r->in) {
				finish(r, DNS_NO_ANSWER, "%s: out of memory", r->server);
				return 1;
			}
		}
		if (r->in && r->inoff == r->inlen && tcp_message(r))
			return 1;
	}
	return 0;
}

static void on_tcp(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;

	if (!r->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err) {
			tcp_fail(r, err);
			return;
		}
		r->connected = 1;
	}
	if (!r->reading) {
		while (r->outoff < r->outlen) {
			ssize_t n = send(fd, r->out + r->outoff, r->outlen - r->outoff, MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				return;
			if (n < 0) {
				tcp_fail(r, errno);
				return;
			}
			r->outoff += (size_t)n;
		}
		r->reading = 1;
		event_free(r->io);
		r->io = event_new(r->c->base, fd, EV_READ | EV_PERSIST, on_tcp, r);
		if (!r->io || event_add(r->io, NULL) < 0) {
			tcp_fail(r, ENOMEM);
			return;
		}
	}
	tcp_read(r);
}

static void tcp_start(struct dns_req *r)
{
	struct timeval tv;
	int fd;

	close_fd(r);
	r->state = ST_TCP;
	r->bad = 0;                     /* what came over UDP does not end the TCP exchange */
	r->junk = 0;
	if (!r->update)
		new_id(r);
	free(r->out);
	r->out = malloc(r->msglen + 2);
	if (!r->out) {
		finish(r, DNS_NO_ANSWER, "%s: out of memory", r->server);
		return;
	}
	r->out[0] = (uint8_t)(r->msglen >> 8);
	r->out[1] = (uint8_t)r->msglen;
	memcpy(r->out + 2, r->msg, r->msglen);
	r->outlen = r->msglen + 2;
	if (r->update)
		r->c->updates++;
	else
		r->c->queries++;
	fd = socket(r->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		tcp_fail(r, errno);
		return;
	}
	r->fd = fd;
	if (connect(fd, (struct sockaddr *)&r->ss, r->sslen) < 0 && errno != EINPROGRESS) {
		tcp_fail(r, errno);
		return;
	}
	r->io = event_new(r->c->base, fd, EV_WRITE | EV_PERSIST, on_tcp, r);
	if (!r->io || event_add(r->io, NULL) < 0) {
		tcp_fail(r, ENOMEM);
		return;
	}
	r->tcp_ms = r->c->try_ms * r->c->tries;
	tv = clock_tv_ms(r->tcp_ms);
	evtimer_add(r->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;
	char d[32];

	switch (r->state) {
	case ST_START:
		if (r->update)
			tcp_start(r);
		else
			udp_try(r);
		break;
	case ST_UDP:
		if (!r->failed_now)
			r->timeouts++;
		udp_try(r);
		break;
	case ST_TCP:
		if (r->bad)
			finish(r, DNS_BAD_ANSWER, "%s sent %s", r->server, dns_reject_str(r->bad));
		else
			finish(r, DNS_NO_ANSWER, "no answer from %s over TCP (%s)", r->server,
			       duration(r->tcp_ms, d, sizeof(d)));
		break;
	}
}

/* ---- requests ---- */

static struct dns_req *req_new(struct dns_client *c, const struct sockaddr *server, socklen_t len,
			       dns_done_fn cb, void *arg)
{
	struct dns_req *r;
	struct timeval now = { 0, 0 };

	if (!c || !server || !cb || len > sizeof(r->ss) ||
	    (server->sa_family != AF_INET && server->sa_family != AF_INET6)) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = -1;
	r->cb = cb;
	r->arg = arg;
	memcpy(&r->ss, server, len);
	r->sslen = len;
	dns_server_str(server, r->server, sizeof(r->server));
	r->timer = evtimer_new(c->base, on_timer, r);
	if (!r->timer) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	/* The first message goes from the loop: the callback can never run inside the call. */
	evtimer_add(r->timer, &now);
	r->c = c;
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	return r;
}

struct dns_req *dns_query(struct dns_client *c, const struct sockaddr *server, socklen_t len,
			  const char *name, uint16_t type, int recursion, dns_done_fn cb, void *arg)
{
	uint8_t w[DNS_NAME_WIRE_MAX];
	size_t wl;
	struct dns_req *r;
	int rc;

	if (dns_wire_name(name, w, &wl) < 0) {
		errno = EINVAL;
		return NULL;
	}
	r = req_new(c, server, len, cb, arg);
	if (!r)
		return NULL;
	memcpy(r->qname, w, wl);
	r->qname_len = wl;
	r->qtype = type;
	rc = dns_wire_query(0, w, wl, type, recursion, &r->msg, &r->msglen);
	if (rc < 0) {
		req_free(r);
		errno = -rc;
		return NULL;
	}
	return r;
}

struct dns_req *dns_update(struct dns_client *c, const struct sockaddr *server, socklen_t len,
			   const char *zone, const struct dns_tsig *tsig, const struct dns_change *changes,
			   size_t nchanges, dns_done_fn cb, void *arg)
{
	struct dns_req *r;
	uint16_t id;
	int rc;

	r = req_new(c, server, len, cb, arg);
	if (!r)
		return NULL;
	r->update = 1;
	r->qtype = DNS_T_SOA;
	rc = dns_wire_name(zone, r->qname, &r->qname_len);
	if (rc < 0)
		goto fail;
	if (tsig) {
		r->key = malloc(sizeof(*r->key));
		rc = r->key ? dns_tsig_key_set(r->key, tsig) : -ENOMEM;
		if (rc < 0)
			goto fail;
	}
	id = (uint16_t)crypto_random_u64();
	rc = dns_wire_update(id, r->qname, r->qname_len, changes, nchanges, r->key, clock_now(),
			     &r->msg, &r->msglen, r->mac, &r->maclen);
	if (rc < 0)
		goto fail;
	return r;
fail:
	req_free(r);
	errno = -rc;
	return NULL;
}
