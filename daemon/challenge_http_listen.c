/* challenge_http_listen.c - the http-01 listener's sockets: numeric addresses, bind, systemd's sockets, and changing them without dropping tokens. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/http.h>

#include "challenge_http_int.h"
#include "log.h"

/* ---------- listening sockets ---------- */

static int fd_prepare(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static int fd_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

/* "host:port" or "[v6]:port", numeric host only (no DNS on the way up). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port, *end;
	struct addrinfo hints = {0}, *ai = NULL;
	size_t hlen;
	char *stop;
	long p;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - addr - 1);
		addr++;
		port = end + 2;
		hints.ai_family = AF_INET6;
	} else {
		end = strrchr(addr, ':');
		if (!end)
			return -EINVAL;
		hlen = (size_t)(end - addr);
		port = end + 1;
		hints.ai_family = AF_INET;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	errno = 0;
	p = strtol(port, &stop, 10);
	if (!*port || *stop || errno || p < 0 || p > 65535)
		return -EINVAL;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* Parse addr into l (which then owns a copy of the string). */
static int listener_parse(const char *addr, struct ch_listener *l)
{
	int err = parse_addr(addr, &l->ss, &l->sl);

	if (err) {
		log_error(NULL, "http-01 listener %s: not a numeric host:port or [v6]:port", addr);
		return err;
	}
	l->addr = strdup(addr);
	return l->addr ? 0 : -ENOMEM;
}

/* A bound, listening socket for l's address. EADDRINUSE is not logged when quiet_inuse. */
static int listen_on_as(const char *what, const struct ch_listener *l, int quiet_inuse, int *out)
{
	int fd, one = 1, err;

	fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		log_error(NULL, "%s listener %s: socket: %s", what, l->addr, strerror(errno));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (l->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&l->ss, l->sl) < 0 || listen(fd, CH_BACKLOG) < 0) {
		err = -errno;
		if (!(quiet_inuse && err == -EADDRINUSE))
			log_error(NULL, "%s listener %s: %s", what, l->addr, strerror(errno));
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static int listen_on(const struct ch_listener *l, int quiet_inuse, int *out)
{
	return listen_on_as("http-01", l, quiet_inuse, out);
}

int ch_listen_numeric(const char *what, const char *addr, int *fd)
{
	struct ch_listener l = { .addr = (char *)addr };

	if (parse_addr(addr, &l.ss, &l.sl) < 0) {
		log_error(NULL, "%s listener %s: not a numeric host:port or [v6]:port", what, addr);
		return -EINVAL;
	}
	return listen_on_as(what, &l, 0, fd);
}

/* Hand fd to evhttp, which closes it when freed; sets l->bs and l->port. Closes fd on failure. */
static int add_listener(struct challenge_http *h, int fd, struct ch_listener *l)
{
	struct evhttp_bound_socket *bs;
	int port = fd_port(fd), err;

	err = fd_prepare(fd);
	if (err || port < 0) {
		err = err ? err : port;
		log_error(NULL, "http-01 listener %s: %s", l->addr, strerror(-err));
		close(fd);
		return err;
	}
	bs = evhttp_accept_socket_with_handle(h->http, fd);
	if (!bs) {
		log_error(NULL, "http-01 listener %s: cannot accept on it", l->addr);
		close(fd);
		return -EIO;
	}
	ch_conn_listener_added(h, bs);
	l->bs = bs;
	l->port = port;
	return 0;
}

void ch_listeners_free(struct ch_listener *ls, size_t n)
{
	for (size_t i = 0; ls && i < n; i++)
		free(ls[i].addr);
	free(ls);
}

/* Open the first listeners: on the inherited fds (owning every one of them,
 * even after a failure) or on addrs. */
int ch_listen_open(struct challenge_http *h, const char *const *addrs, size_t naddrs,
		   const int *fds, size_t nfds)
{
	int err = 0;

	if (nfds > 0) {
		/* Socket activation: take ownership of every fd, even after a failure. */
		h->activated = 1;
		for (size_t i = 0; i < nfds; i++) {
			struct ch_listener *l;
			char what[32];

			if (err) {
				close(fds[i]);
				continue;
			}
			l = &h->ls[h->nlisten];
			snprintf(what, sizeof(what), "fd %d", fds[i]);
			l->ss.ss_family = AF_UNSPEC;
			l->addr = strdup(what);
			if (!l->addr) {
				err = -ENOMEM;
				close(fds[i]);
			} else if (!(err = add_listener(h, fds[i], l))) {
				h->nlisten++;
			} else {
				free(l->addr);
				l->addr = NULL;
			}
		}
		return err;
	}
	for (size_t i = 0; i < naddrs && !err; i++) {
		struct ch_listener *l = &h->ls[h->nlisten];
		int fd = -1;

		err = listener_parse(addrs[i], l);
		if (!err)
			err = listen_on(l, 0, &fd);
		if (!err)
			err = add_listener(h, fd, l);
		if (!err) {
			h->nlisten++;
		} else {
			free(l->addr);
			l->addr = NULL;
		}
	}
	return err;
}

/* ---------- changing the listen addresses ---------- */

static int same_addr(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
	if (x->ss_family != y->ss_family)
		return 0;
	if (x->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)x;
		const struct sockaddr_in *b = (const struct sockaddr_in *)y;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	if (x->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)x;
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)y;

		return a->sin6_port == b->sin6_port && a->sin6_scope_id == b->sin6_scope_id &&
		       memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
	}
	return 0;
}

/* Could listener x (bound to port xport) be why y cannot bind? Same family and
 * port, and one of them the wildcard address (or both the same address). */
static int addr_conflicts(const struct sockaddr_storage *x, int xport,
			  const struct sockaddr_storage *y)
{
	if (x->ss_family != y->ss_family)
		return 0;
	if (x->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)x;
		const struct sockaddr_in *b = (const struct sockaddr_in *)y;

		return ntohs(b->sin_port) == xport &&
		       (a->sin_addr.s_addr == htonl(INADDR_ANY) ||
			b->sin_addr.s_addr == htonl(INADDR_ANY) ||
			a->sin_addr.s_addr == b->sin_addr.s_addr);
	}
	if (x->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)x;
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)y;

		return ntohs(b->sin6_port) == xport &&
		       (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
			IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
			IN6_ARE_ADDR_EQUAL(&a->sin6_addr, &b->sin6_addr));
	}
	return 0;
}

struct ch_change {
	struct ch_listener *nl; /* the new set, in addrs order */
	size_t n;
	int *fds;               /* bound, not yet handed to evhttp; -1 otherwise */
	int *from;              /* index of the kept old listener, or -1 */
	unsigned char *defer;   /* bind waits until a removed listener is closed */
	unsigned char *kept;    /* per old listener: reused */
	unsigned char *dropped; /* per old listener: closed early to free its address */
};

/* A removed old listener that may hold the address new listener i wants. */
static int change_blocker(const struct challenge_http *h, const struct ch_change *c, size_t i)
{
	for (size_t j = 0; j < h->nlisten; j++)
		if (!c->kept[j] && h->ls[j].bs &&
		    addr_conflicts(&h->ls[j].ss, h->ls[j].port, &c->nl[i].ss))
			return (int)j;
	return -1;
}

/* Undo a failed change: close what was opened, bring back what was closed early. */
static void change_rollback(struct challenge_http *h, struct ch_change *c)
{
	size_t j, k;

	for (size_t i = 0; i < c->n; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		else if (c->from[i] < 0 && c->nl[i].bs)
			evhttp_del_accept_socket(h->http, c->nl[i].bs);
	}
	for (j = 0; j < h->nlisten; j++) {
		struct ch_listener again;
		int fd = -1;

		if (!c->dropped[j])
			continue;
		/* The very port it had, even when it was configured as port 0. */
		again = h->ls[j];
		if (again.ss.ss_family == AF_INET)
			((struct sockaddr_in *)&again.ss)->sin_port = htons((uint16_t)again.port);
		else
			((struct sockaddr_in6 *)&again.ss)->sin6_port = htons((uint16_t)again.port);
		if (listen_on(&again, 0, &fd) < 0 || add_listener(h, fd, &h->ls[j]) < 0) {
			log_error(NULL, "http-01: lost the listener on %s while undoing a failed change",
				  h->ls[j].addr);
			h->ls[j].bs = NULL;
		}
	}
	/* Forget listeners that could not be restored. */
	for (j = k = 0; j < h->nlisten; j++) {
		if (h->ls[j].bs)
			h->ls[k++] = h->ls[j];
		else
			free(h->ls[j].addr);
	}
	h->nlisten = k;
}

static int change_apply(struct challenge_http *h, struct ch_change *c, const char *const *addrs)
{
	size_t i, j;
	int err = 0, any_deferred = 0;

	for (i = 0; i < c->n; i++) {
		c->fds[i] = -1;
		c->from[i] = -1;
	}
	/* Every address must parse before anything changes. */
	for (i = 0; i < c->n; i++) {
		err = listener_parse(addrs[i], &c->nl[i]);
		if (err)
			return err;
	}
	/* Keep listeners whose address is unchanged (each at most once). */
	for (i = 0; i < c->n; i++)
		for (j = 0; j < h->nlisten; j++)
			if (!c->kept[j] && same_addr(&h->ls[j].ss, &c->nl[i].ss)) {
				c->kept[j] = 1;
				c->from[i] = (int)j;
				break;
			}
	/* Open the new ones while the old ones still serve. */
	for (i = 0; i < c->n; i++) {
		int blocker;

		if (c->from[i] >= 0)
			continue;
		blocker = change_blocker(h, c, i);
		err = listen_on(&c->nl[i], blocker >= 0, &c->fds[i]);
		if (err == -EADDRINUSE && blocker >= 0) {
			c->defer[i] = 1;        /* e.g. 0.0.0.0:80 becoming 192.0.2.1:80 */
			any_deferred = 1;
			err = 0;
		}
		if (err)
			return err;
	}
	/* Addresses only a removed listener stands in the way of: close it first. */
	if (any_deferred) {
		for (i = 0; i < c->n; i++) {
			int blocker;

			if (!c->defer[i])
				continue;
			while ((blocker = change_blocker(h, c, i)) >= 0) {
				evhttp_del_accept_socket(h->http, h->ls[blocker].bs);
				h->ls[blocker].bs = NULL;
				c->dropped[blocker] = 1;
			}
			err = listen_on(&c->nl[i], 0, &c->fds[i]);
			if (err)
				return err;
		}
	}
	for (i = 0; i < c->n; i++) {
		if (c->from[i] >= 0) {
			c->nl[i].bs = h->ls[c->from[i]].bs;
			c->nl[i].port = h->ls[c->from[i]].port;
			continue;
		}
		err = add_listener(h, c->fds[i], &c->nl[i]);
		c->fds[i] = -1;         /* evhttp's now, or closed */
		if (err)
			return err;
	}
	return 0;
}

int challenge_http_set_listen(struct challenge_http *h, const char *const *addrs, size_t naddrs)
{
	struct ch_change c = { .n = naddrs };
	size_t one = naddrs ? naddrs : 1, old = h && h->nlisten ? h->nlisten : 1, i, j;
	int err;

	if (!h || (naddrs > 0 && !addrs))
		return -EINVAL;
	if (h->activated) {
		log_info(NULL, "http-01: the listening sockets belong to systemd (acmed.socket); "
			 "listen: is not used, change the socket unit instead");
		return 0;
	}
	c.nl = calloc(one, sizeof(*c.nl));
	c.fds = calloc(one, sizeof(*c.fds));
	c.from = calloc(one, sizeof(*c.from));
	c.defer = calloc(one, 1);
	c.kept = calloc(old, 1);
	c.dropped = calloc(old, 1);
	if (!c.nl || !c.fds || !c.from || !c.defer || !c.kept || !c.dropped) {
		free(c.nl);
		err = -ENOMEM;
		goto out;
	}
	err = change_apply(h, &c, addrs);
	if (err) {
		change_rollback(h, &c);
		ch_listeners_free(c.nl, naddrs);
		goto out;
	}
	/* The new set is live: close the listeners no longer wanted. Connections
	 * already accepted on them finish normally; the tokens never moved. */
	for (j = 0; j < h->nlisten; j++) {
		if (c.kept[j])
			continue;
		log_info(NULL, "http-01: no longer listening on %s", h->ls[j].addr);
		if (h->ls[j].bs)
			evhttp_del_accept_socket(h->http, h->ls[j].bs);
	}
	for (i = 0; i < naddrs; i++)
		if (c.from[i] < 0)
			log_info(NULL, "http-01: now listening on %s (port %d)", addrs[i], c.nl[i].port);
	ch_listeners_free(h->ls, h->nlisten);
	h->ls = c.nl;
	h->nlisten = naddrs;
out:
	free(c.fds);
	free(c.from);
	free(c.defer);
	free(c.kept);
	free(c.dropped);
	return err;
}
