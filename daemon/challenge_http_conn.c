/* challenge_http_conn.c - the http-01 listener's connections: limits in all and per address, a deadline per request, accept() paused on EMFILE. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "challenge_http_int.h"
#include "clock.h"
#include "fdguard.h"
#include "log.h"

/*
 * evhttp (libevent 2.1) accepts, parses and answers, and has no hook for "a
 * connection came from X". It does let us make each connection's bufferevent
 * (evhttp_set_bevcb): there a record starts, its deadline runs from then, and
 * a callback made active then runs before the loop polls again, once evhttp
 * has set the connection up, so the connection is judged (admitted or
 * refused) before a byte of it is read. The judge finds the connection as the
 * argument evhttp gave the bufferevent's callbacks, checks that it is one
 * (evhttp_connection_get_bufferevent), and asks for a close callback: the
 * record ends when evhttp frees the connection, whoever closes it.
 */

/* evhttp gives its listeners' error callback the evhttp, not us: the live
 * listeners, to find the one it belongs to. */
static struct challenge_http *instances;

/* ---------- client addresses ---------- */

static void peer_of(int fd, struct ch_peer *p)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(p, 0, sizeof(*p));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		p->family = AF_INET;
		memcpy(p->b, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {          /* a dual-stack socket (acmed.socket) */
			p->family = AF_INET;
			memcpy(p->b, &a->s6_addr[12], 4);
		} else {
			p->family = AF_INET6;
			memcpy(p->b, a->s6_addr, 8);    /* one /64: what one client can hold */
		}
	}
}

static int peer_same(const struct ch_peer *x, const struct ch_peer *y)
{
	return x->family == y->family && memcmp(x->b, y->b, sizeof(x->b)) == 0;
}

static const char *peer_str(const struct ch_peer *p, char *buf, size_t len)
{
	struct in6_addr a6;

	if (p->family == AF_INET && inet_ntop(AF_INET, p->b, buf, (socklen_t)len))
		return buf;
	if (p->family == AF_INET6) {
		memset(&a6, 0, sizeof(a6));
		memcpy(a6.s6_addr, p->b, 8);
		if (inet_ntop(AF_INET6, &a6, buf, (socklen_t)len) && strlen(buf) + 4 < len) {
			strcat(buf, "/64");
			return buf;
		}
	}
	snprintf(buf, len, "an unknown address");
	return buf;
}

/* Connections one address may hold: CH_MAX_PER_ADDR, plus CH_CONNS_PER_TOKEN
 * per live token. A CA's validator fetches every live token, each over
 * connections of its own (Connection: close), often all at once from one
 * address: Pebble checks each challenge three times at once (its stand-in for
 * Let's Encrypt's perspectives), and the connections of a token just removed
 * may still be closing. A fixed cap refused the CA itself (11 of 1000
 * certificates failed at max_parallel 20). A client holding connections open
 * is still cut at the deadline, and the cap in all still holds. */
static size_t per_addr_cap(const struct challenge_http *h)
{
	size_t cap = h->max_per_addr + CH_CONNS_PER_TOKEN * h->ntok;

	return cap < h->max_conns ? cap : h->max_conns;
}

/* Admitted connections from p. */
static size_t open_from(const struct challenge_http *h, const struct ch_peer *p)
{
	size_t n = 0;

	for (const struct ch_conn *c = h->conns; c; c = c->next)
		if (c->admitted && peer_same(&c->peer, p))
			n++;
	return n;
}

/* The address with the most admitted connections (once per episode: n is at most max_conns). */
static size_t top_open(const struct challenge_http *h, struct ch_peer *best)
{
	size_t most = 0;

	for (const struct ch_conn *c = h->conns; c; c = c->next) {
		size_t n = c->admitted ? open_from(h, &c->peer) : 0;

		if (n > most) {
			most = n;
			*best = c->peer;
		}
	}
	return most;
}

/* Count a refusal of p among CH_TOP_SLOTS addresses; a new address takes the
 * least counted slot (exact while there are no more addresses than slots). */
static void top_count(struct challenge_http *h, const struct ch_peer *p)
{
	struct ch_top *least = &h->top[0];

	for (size_t i = 0; i < CH_TOP_SLOTS; i++) {
		if (h->top[i].n && peer_same(&h->top[i].peer, p)) {
			h->top[i].n++;
			return;
		}
		if (h->top[i].n < least->n)
			least = &h->top[i];
	}
	least->peer = *p;
	least->n++;
}

/* ---------- accepting, or not ---------- */

static void apply_accepting(struct challenge_http *h)
{
	int on = !h->full && !fdguard_paused(h->pause);

	if (on == h->accepting)
		return;
	h->accepting = on;
	for (size_t i = 0; i < h->nlisten; i++) {
		struct evconnlistener *l;

		if (!h->ls[i].bs)
			continue;
		l = evhttp_bound_socket_get_listener(h->ls[i].bs);
		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
}

static void pause_set(void *arg, int on)
{
	apply_accepting(arg);
}

static void accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct challenge_http *h = instances;

	while (h && h->http != arg)
		h = h->next_instance;
	if (!h) {
		evconnlistener_disable(lev);    /* not ours: at least do not spin */
		return;
	}
	fdguard_pause_accept(h->pause, err, h->nconns);
}

void ch_conn_listener_added(struct challenge_http *h, struct evhttp_bound_socket *bs)
{
	struct evconnlistener *l = evhttp_bound_socket_get_listener(bs);

	evconnlistener_set_error_cb(l, accept_error);
	if (!h->accepting)
		evconnlistener_disable(l);
}

/* ---------- refusing, one episode at a time ---------- */

static void episode_end(evutil_socket_t fd, short what, void *arg)
{
	struct challenge_http *h = arg;
	int64_t idle = clock_mono_ms() - h->last_refusal_ms;
	const struct ch_top *best = &h->top[0];
	struct timeval tv;
	char who[INET6_ADDRSTRLEN + 8];

	if (idle < CH_QUIET_MS) {
		tv = clock_tv_ms(CH_QUIET_MS - idle);
		evtimer_add(h->episode_timer, &tv);
		return;
	}
	for (size_t i = 1; i < CH_TOP_SLOTS; i++)
		if (h->top[i].n > best->n)
			best = &h->top[i];
	log_info(NULL, "http-01: connection limit no longer reached: %lu connection%s refused "
		 "in %lld s, most from %s (%lu)", h->episode_refused,
		 h->episode_refused == 1 ? "" : "s",
		 (long long)((h->last_refusal_ms - h->episode_start_ms) / 1000),
		 peer_str(&best->peer, who, sizeof(who)), best->n);
	h->episode = 0;
	memset(h->top, 0, sizeof(h->top));
}

static void refuse(struct challenge_http *h, struct ch_conn *c)
{
	h->last_refusal_ms = clock_mono_ms();
	if (!h->episode) {
		struct ch_peer best = c->peer;
		size_t most = top_open(h, &best);
		char who[INET6_ADDRSTRLEN + 8];
		struct timeval tv = clock_tv_ms(CH_QUIET_MS);

		h->episode = 1;
		h->episode_start_ms = h->last_refusal_ms;
		h->episode_refused = 0;
		log_warn(NULL, "http-01: connection limit reached (%zu open; at most %zu in all, "
			 "%zu per address): refusing new connections; most open from %s (%zu)",
			 h->nadmitted, h->max_conns, per_addr_cap(h),
			 peer_str(&best, who, sizeof(who)), most);
		evtimer_add(h->episode_timer, &tv);
	}
	h->episode_refused++;
	top_count(h, &c->peer);
}

/* ---------- one connection ---------- */

static void conn_unlink(struct ch_conn *c)
{
	struct challenge_http *h = c->h;

	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	if (c->admitted)
		h->nadmitted--;
	event_free(c->judge);
	event_free(c->deadline);
	if (h->full && h->nconns < h->budget) {
		h->full = 0;
		apply_accepting(h);
	}
	free(c);
}

/* evhttp frees the connection (answered, closed by the client, timed out, refused). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	conn_unlink(arg);
}

static void conn_judge(evutil_socket_t fd, short what, void *arg)
{
	struct ch_conn *c = arg;
	struct challenge_http *h = c->h;
	struct bufferevent *bev = c->bev;
	bufferevent_event_cb evcb = NULL;
	void *cbarg = NULL;

	bufferevent_getcb(bev, NULL, NULL, &evcb, &cbarg);
	if (!evcb || !cbarg ||
	    evhttp_connection_get_bufferevent(cbarg) != bev) {
		/* evhttp let go of it before it was set up (out of memory). */
		conn_unlink(c);
		bufferevent_decref(bev);
		return;
	}
	c->evcon = cbarg;
	evhttp_connection_set_closecb(c->evcon, conn_closed, c);
	peer_of(bufferevent_getfd(bev), &c->peer);
	c->bev = NULL;
	bufferevent_decref(bev);        /* evhttp's alone now */
	if (h->nadmitted >= h->max_conns ||
	    (c->peer.family && open_from(h, &c->peer) >= per_addr_cap(h))) {
		refuse(h, c);
		evhttp_connection_free(c->evcon);       /* no answer: closed at once */
		return;
	}
	c->admitted = 1;
	h->nadmitted++;
}

static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct ch_conn *c = arg;
	char who[INET6_ADDRSTRLEN + 8];

	log_debug(NULL, "http-01: closing a connection from %s: no answer within %lld ms",
		  peer_str(&c->peer, who, sizeof(who)), (long long)c->h->deadline_ms);
	if (c->evcon)
		evhttp_connection_free(c->evcon);
}

/* evhttp's bufferevent callback: one call per accepted connection. */
static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
	struct challenge_http *h = arg;
	struct ch_conn *c = calloc(1, sizeof(*c));
	struct timeval tv;

	if (c) {
		c->judge = event_new(base, -1, 0, conn_judge, c);
		c->deadline = evtimer_new(base, conn_deadline, c);
		/* What evhttp makes itself: it closes the socket when done. */
		c->bev = bufferevent_socket_new(base, -1, 0);
	}
	if (!c || !c->judge || !c->deadline || !c->bev) {
		/* evhttp makes a bufferevent itself: this one connection goes unguarded. */
		log_error(NULL, "http-01: out of memory for a connection");
		if (c && c->bev)
			bufferevent_free(c->bev);
		if (c && c->judge)
			event_free(c->judge);
		if (c && c->deadline)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	bufferevent_incref(c->bev);     /* alive for the judge, whatever evhttp does */
	c->h = h;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	if (++h->nconns >= h->budget) {
		/* Accepted faster than judged: the rest wait in the backlog. */
		h->full = 1;
		apply_accepting(h);
	}
	event_active(c->judge, EV_TIMEOUT, 0);
	tv = clock_tv_ms(h->deadline_ms);
	evtimer_add(c->deadline, &tv);
	return c->bev;
}

/* ---------- the listener's part ---------- */

int ch_conn_init(struct challenge_http *h)
{
	h->budget = fdguard_conn_cap(CH_MAX_CONNS + CH_REFUSE_SLACK);
	h->max_conns = h->budget > 2 * CH_REFUSE_SLACK ? h->budget - CH_REFUSE_SLACK
						       : (h->budget + 1) / 2;
	h->max_per_addr = CH_MAX_PER_ADDR;
	h->deadline_ms = CH_DEADLINE_MS;
	h->accepting = 1;
	h->pause = fdguard_pause_new(h->base, "http-01", pause_set, h);
	h->episode_timer = evtimer_new(h->base, episode_end, h);
	if (!h->pause || !h->episode_timer)
		return -ENOMEM;
	evhttp_set_bevcb(h->http, conn_new, h);
	h->next_instance = instances;
	instances = h;
	if (h->max_conns < CH_MAX_CONNS)
		log_info(NULL, "http-01: at most %zu connections at once, to stay within the limit "
			 "of %ld file descriptors", h->max_conns, fdguard_limit());
	return 0;
}

void ch_conn_fini(struct challenge_http *h)
{
	for (struct challenge_http **pp = &instances; *pp; pp = &(*pp)->next_instance)
		if (*pp == h) {
			*pp = h->next_instance;
			break;
		}
	/* evhttp_free closes the connections next: forget them first. */
	while (h->conns) {
		struct ch_conn *c = h->conns;
		struct bufferevent *bev = c->bev;

		if (c->evcon)
			evhttp_connection_set_closecb(c->evcon, NULL, NULL);
		h->full = 0;
		conn_unlink(c);
		if (bev)
			bufferevent_decref(bev);
	}
	if (h->episode_timer)
		event_free(h->episode_timer);
	h->episode_timer = NULL;
	fdguard_pause_free(h->pause);
	h->pause = NULL;
}
