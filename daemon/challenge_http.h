/* challenge_http.h - the http-01 listener (evhttp): serves live tokens only. */
#ifndef ACMED_CHALLENGE_HTTP_H
#define ACMED_CHALLENGE_HTTP_H

#include <stddef.h>
#include <event2/event.h>

struct challenge_http;

/* Listen on every "host:port" / "[v6]:port" in addrs (IPv6 sockets are
 * V6ONLY), or, when nfds > 0, on the already-bound listening sockets fds
 * (socket activation) and ignore addrs. Logs and fails when a bind fails. */
int challenge_http_new(struct event_base *base, const char *const *addrs, size_t naddrs,
		       const int *fds, size_t nfds, struct challenge_http **out);
void challenge_http_free(struct challenge_http *h);
/* Serve key_authorization at /.well-known/acme-challenge/<token>. */
int challenge_http_add(struct challenge_http *h, const char *token, const char *key_authorization);
/* Call fn(arg) each time the token was fetched with GET (the CA's validator
 * has it: a good moment to ask the CA for the verdict). -ENOENT when the
 * token is not live. fn may remove the token. */
typedef void (*challenge_http_served_fn)(void *arg);
int challenge_http_on_served(struct challenge_http *h, const char *token,
			     challenge_http_served_fn fn, void *arg);
void challenge_http_remove(struct challenge_http *h, const char *token);
size_t challenge_http_live_count(const struct challenge_http *h);
/* Listen on a new address list without dropping live tokens: listeners whose
 * address is unchanged are kept, new ones are opened first, and only then are
 * the removed ones closed (connections already accepted finish). On failure
 * (bad address, bind error) the old set stays as it was and the error is
 * returned. A no-op returning 0 when the sockets came from systemd. Ports are
 * then reported in the new addrs order. */
int challenge_http_set_listen(struct challenge_http *h, const char *const *addrs, size_t naddrs);
/* A listening TCP socket (non-blocking, close-on-exec) on one numeric
 * "host:port" / "[v6]:port" (what names the listener in errors, logged). */
int ch_listen_numeric(const char *what, const char *addr, int *fd);
/* Local port of the i-th listening socket (in addrs / fds order), or -ENOENT. */
int challenge_http_port(const struct challenge_http *h, size_t i);

#endif
