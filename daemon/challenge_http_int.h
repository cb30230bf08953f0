/* challenge_http_int.h - what the http-01 listener's files share: the listener, its sockets, its connections. */
#ifndef ACMED_CHALLENGE_HTTP_INT_H
#define ACMED_CHALLENGE_HTTP_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "challenge_http.h"
#include "fdguard.h"

#define CH_MAX_HEADERS     8192
#define CH_MAX_BODY        1024
#define CH_TIMEOUT_S       10           /* evhttp's idle timeout (reads and writes) */
#define CH_BACKLOG         128
/* The connection limits (acmed(8), "http-01 listener"). */
#define CH_MAX_CONNS       256          /* open at once, in all */
#define CH_MAX_PER_ADDR    16           /* open at once from one address (IPv6: one /64) */
#define CH_CONNS_PER_TOKEN 4            /* ... and this many more per live token */
#define CH_DEADLINE_MS     10000        /* from accept to the end of the answer */
#define CH_REFUSE_SLACK    32           /* accepted but not yet judged; bounds an accept burst */
#define CH_QUIET_MS        10000        /* no connection refused for so long ends an episode */
#define CH_TOP_SLOTS       8            /* addresses counted while refusing */

struct ch_token {
	char *token;
	char *keyauth;
	size_t keyauth_len;
	challenge_http_served_fn served;
	void *served_arg;
};

struct ch_listener {
	struct evhttp_bound_socket *bs;
	char *addr;                     /* as configured, or "fd N" when inherited */
	struct sockaddr_storage ss;     /* as configured (port 0 stays 0); AF_UNSPEC when inherited */
	socklen_t sl;
	int port;                       /* bound port */
};

/* Where a client comes from, as the limits count it: an IPv4 address (also
 * when mapped into IPv6) or the /64 of an IPv6 one. */
struct ch_peer {
	int family;                     /* AF_INET, AF_INET6; 0 while unknown */
	unsigned char b[8];
};

/* One accepted connection, from evhttp's bufferevent callback until evhttp
 * frees the connection. */
struct ch_conn {
	struct challenge_http *h;
	struct ch_conn *prev, *next;
	struct bufferevent *bev;        /* made for evhttp; holds a reference of ours until judged */
	struct evhttp_connection *evcon;        /* once judged */
	struct event *judge;            /* runs once evhttp has the socket: admit or refuse */
	struct event *deadline;
	struct ch_peer peer;
	int admitted;
};

struct ch_top {
	struct ch_peer peer;
	unsigned long n;
};

struct challenge_http {
	struct event_base *base;
	struct evhttp *http;
	struct ch_listener *ls;         /* in addrs / fds order */
	size_t nlisten;
	int activated;                  /* the sockets came from systemd */
	struct ch_token *tok;           /* sorted by token */
	size_t ntok, captok;

	/* connections (challenge_http_conn.c) */
	struct challenge_http *next_instance;
	struct ch_conn *conns;
	size_t nconns;                  /* every record, judged or not */
	size_t nadmitted;
	size_t max_conns, max_per_addr, budget;   /* budget: records before accept stops */
	int64_t deadline_ms;
	int accepting, full;
	struct fdguard_pause *pause;
	struct event *episode_timer;
	int episode;
	int64_t episode_start_ms, last_refusal_ms;
	unsigned long episode_refused;
	struct ch_top top[CH_TOP_SLOTS];
};

/* challenge_http_conn.c: connection limits, the deadline, accept paused on EMFILE. */
int ch_conn_init(struct challenge_http *h);
/* Before evhttp_free: forgets every connection (evhttp_free closes them). */
void ch_conn_fini(struct challenge_http *h);
/* A new listening socket: accept errors pause it; born paused when accepting is stopped. */
void ch_conn_listener_added(struct challenge_http *h, struct evhttp_bound_socket *bs);

/* challenge_http_listen.c: the listening sockets. */
int ch_listen_open(struct challenge_http *h, const char *const *addrs, size_t naddrs,
		   const int *fds, size_t nfds);
void ch_listeners_free(struct ch_listener *ls, size_t n);

#endif
