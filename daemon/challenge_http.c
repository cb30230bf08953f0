/* challenge_http.c - the http-01 listener (evhttp): serves live tokens by exact match, 404 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "challenge_http.h"
#include "log.h"

#define CH_PREFIX          "/.well-known/acme-challenge/"
#define CH_TOKEN_MAX       256
#define CH_MAX_HEADERS     8192
#define CH_MAX_BODY        1024
#define CH_TIMEOUT_S       10
#define CH_BACKLOG         128

struct ch_token {
	char *token;
	char *keyauth;
	size_t keyauth_len;
};

struct challenge_http {
	struct event_base *base;
	struct evhttp *http;
	int *ports;             /* bound port of each listener */
	size_t nlisten;
	struct ch_token *tok;   /* sorted by token */
	size_t ntok, captok;
};

/* ---------- token table ---------- */

static int token_valid(const char *t, size_t len)
{
	if (len == 0 || len > CH_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = t[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Binary search; returns the index of token or where it would go (*found = 0). */
static size_t token_find(const struct challenge_http *h, const char *t, int *found)
{
	size_t lo = 0, hi = h->ntok;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(h->tok[mid].token, t);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int challenge_http_add(struct challenge_http *h, const char *token, const char *key_authorization)
{
	size_t i;
	int found;
	char *ka;

	if (!h || !token || !key_authorization || !token_valid(token, strlen(token))) {
		log_error(NULL, "http-01: refusing invalid token \"%.64s\"", token ? token : "");
		return -EINVAL;
	}
	ka = strdup(key_authorization);
	if (!ka)
		return -ENOMEM;
	i = token_find(h, token, &found);
	if (found) {
		free(h->tok[i].keyauth);
		h->tok[i].keyauth = ka;
		h->tok[i].keyauth_len = strlen(ka);
		return 0;
	}
	if (h->ntok == h->captok) {
		size_t cap = h->captok ? h->captok * 2 : 16;
		struct ch_token *nt = realloc(h->tok, cap * sizeof(*nt));

		if (!nt) {
			free(ka);
			return -ENOMEM;
		}
		h->tok = nt;
		h->captok = cap;
	}
	memmove(&h->tok[i + 1], &h->tok[i], (h->ntok - i) * sizeof(*h->tok));
	h->tok[i].token = strdup(token);
	if (!h->tok[i].token) {
		memmove(&h->tok[i], &h->tok[i + 1], (h->ntok - i) * sizeof(*h->tok));
		free(ka);
		return -ENOMEM;
	}
	h->tok[i].keyauth = ka;
	h->tok[i].keyauth_len = strlen(ka);
	h->ntok++;
	return 0;
}

void challenge_http_remove(struct challenge_http *h, const char *token)
{
	size_t i;
	int found;

	if (!h || !token)
		return;
	i = token_find(h, token, &found);
	if (!found)
		return;
	free(h->tok[i].token);
	free(h->tok[i].keyauth);
	h->ntok--;
	memmove(&h->tok[i], &h->tok[i + 1], (h->ntok - i) * sizeof(*h->tok));
}

size_t challenge_http_live_count(const struct challenge_http *h)
{
	return h ? h->ntok : 0;
}

/* ---------- request handling ---------- */

static void send_not_found(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
	if (b)
		evbuffer_add(b, "not found\n", 10);
	evhttp_send_reply(req, 404, "Not Found", b);
	if (b)
		evbuffer_free(b);
}

static void handle_request(struct evhttp_request *req, void *arg)
{
	struct challenge_http *h = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *uri = evhttp_request_get_uri(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	const struct ch_token *t;
	const char *token;
	char len[32], *peer = NULL;
	ev_uint16_t port = 0;
	size_t i;
	int found;

	/* The raw request target, byte for byte: no decoding, no normalisation, no query. */
	if ((cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) || !uri ||
	    strncmp(uri, CH_PREFIX, sizeof(CH_PREFIX) - 1) != 0) {
		send_not_found(req);
		return;
	}
	token = uri + sizeof(CH_PREFIX) - 1;
	if (!token_valid(token, strlen(token))) {
		send_not_found(req);
		return;
	}
	i = token_find(h, token, &found);
	if (!found) {
		send_not_found(req);
		return;
	}
	t = &h->tok[i];
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
	log_debug(NULL, "http-01: serving token %s to %s port %u", t->token,
		  peer ? peer : "?", (unsigned)port);
	evhttp_add_header(out, "Content-Type", "text/plain");
	if (cmd == EVHTTP_REQ_HEAD) {
		/* Headers only; say how long the GET body would be. */
		snprintf(len, sizeof(len), "%zu", t->keyauth_len);
		evhttp_add_header(out, "Content-Length", len);
		evhttp_send_reply(req, 200, "OK", NULL);
	} else {
		struct evbuffer *b = evbuffer_new();

		if (!b) {
			evhttp_send_error(req, 500, NULL);
			return;
		}
		evbuffer_add(b, t->keyauth, t->keyauth_len);
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
	}
}

/* ---------- listeners ---------- */

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

static int listen_on(const char *addr, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, err;

	err = parse_addr(addr, &ss, &sl);
	if (err) {
		log_error(NULL, "http-01 listener %s: not a numeric host:port or [v6]:port", addr);
		return err;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		log_error(NULL, "http-01 listener %s: socket: %s", addr, strerror(errno));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, CH_BACKLOG) < 0) {
		err = -errno;
		log_error(NULL, "http-01 listener %s: %s", addr, strerror(errno));
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

/* Hand fd to evhttp, which closes it when freed. Closes fd on failure. */
static int add_listener(struct challenge_http *h, int fd, const char *what)
{
	int port = fd_port(fd), err;

	err = fd_prepare(fd);
	if (err || port < 0) {
		err = err ? err : port;
		log_error(NULL, "http-01 listener %s: %s", what, strerror(-err));
		close(fd);
		return err;
	}
	if (!evhttp_accept_socket_with_handle(h->http, fd)) {
		log_error(NULL, "http-01 listener %s: cannot accept on it", what);
		close(fd);
		return -EIO;
	}
	h->ports[h->nlisten++] = port;
	return 0;
}

int challenge_http_new(struct event_base *base, const char *const *addrs, size_t naddrs,
		       const int *fds, size_t nfds, struct challenge_http **out)
{
	struct challenge_http *h;
	size_t n = nfds > 0 ? nfds : naddrs;
	int err = 0;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->base = base;
	h->http = evhttp_new(base);
	h->ports = calloc(n ? n : 1, sizeof(*h->ports));
	if (!h->http || !h->ports) {
		challenge_http_free(h);
		return -ENOMEM;
	}
	evhttp_set_gencb(h->http, handle_request, h);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(h->http, CH_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, CH_MAX_BODY);
	evhttp_set_timeout(h->http, CH_TIMEOUT_S);
	if (nfds > 0) {
		/* Socket activation: take ownership of every fd, even after a failure. */
		for (size_t i = 0; i < nfds; i++) {
			char what[32];

			snprintf(what, sizeof(what), "fd %d", fds[i]);
			if (err)
				close(fds[i]);
			else
				err = add_listener(h, fds[i], what);
		}
	} else {
		for (size_t i = 0; i < naddrs && !err; i++) {
			int fd = -1;

			err = listen_on(addrs[i], &fd);
			if (!err)
				err = add_listener(h, fd, addrs[i]);
		}
	}
	if (err) {
		challenge_http_free(h);
		return err;
	}
	for (size_t i = 0; i < h->nlisten; i++)
		log_debug(NULL, "http-01 listener on port %d", h->ports[i]);
	*out = h;
	return 0;
}

int challenge_http_port(const struct challenge_http *h, size_t i)
{
	if (!h || i >= h->nlisten)
		return -ENOENT;
	return h->ports[i];
}

void challenge_http_free(struct challenge_http *h)
{
	if (!h)
		return;
	if (h->http)
		evhttp_free(h->http);   /* closes the listening sockets and connections */
	for (size_t i = 0; i < h->ntok; i++) {
		free(h->tok[i].token);
		free(h->tok[i].keyauth);
	}
	free(h->tok);
	free(h->ports);
	free(h);
}
