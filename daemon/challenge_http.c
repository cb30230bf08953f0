/* challenge_http.c - the http-01 listener (evhttp): serves live tokens by exact match, 404 otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "challenge_http_int.h"
#include "log.h"

#define CH_PREFIX          "/.well-known/acme-challenge/"
#define CH_TOKEN_MAX       256

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
	h->tok[i].served = NULL;
	h->tok[i].served_arg = NULL;
	h->ntok++;
	return 0;
}

int challenge_http_on_served(struct challenge_http *h, const char *token,
			     challenge_http_served_fn fn, void *arg)
{
	size_t i;
	int found;

	if (!h || !token)
		return -EINVAL;
	i = token_find(h, token, &found);
	if (!found)
		return -ENOENT;
	h->tok[i].served = fn;
	h->tok[i].served_arg = arg;
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

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
	if (b)
		evbuffer_add(b, text, strlen(text));
	evhttp_send_reply(req, code, reason, b);
	if (b)
		evbuffer_free(b);
}

static void send_not_found(struct evhttp_request *req)
{
	send_text(req, 404, "Not Found", "not found\n");
}

/* Framing a request smuggler would play with: more than one Content-Length,
 * or Content-Length beside Transfer-Encoding (RFC 9112 6.3). evhttp reads the
 * first Content-Length only, so such a request is refused, never answered. */
static int ambiguous_length(struct evhttp_request *req)
{
	const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const struct evkeyval *kv;
	int cl = 0, te = 0;

	for (kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			cl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0)
			te++;
	}
	return cl > 1 || (cl > 0 && te > 0);
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

	/* One request per connection: the answer says so, and a request sent
	 * behind it (pipelined) meets a clear close, never silence. The deadline
	 * of the connection is then the deadline of the request. */
	evhttp_add_header(out, "Connection", "close");
	if (ambiguous_length(req)) {
		send_text(req, 400, "Bad Request", "bad request\n");
		return;
	}
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
		if (t->served)
			t->served(t->served_arg);    /* last: it may remove the token */
	}
}

int challenge_http_new(struct event_base *base, const char *const *addrs, size_t naddrs,
		       const int *fds, size_t nfds, struct challenge_http **out)
{
	struct challenge_http *h;
	size_t n = nfds > 0 ? nfds : naddrs;
	int err = 0;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -ENOMEM;
	}
	h->base = base;
	h->http = evhttp_new(base);
	h->ls = calloc(n ? n : 1, sizeof(*h->ls));
	if (!h->http || !h->ls)
		err = -ENOMEM;
	else {
		evhttp_set_gencb(h->http, handle_request, h);
		evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
		evhttp_set_max_headers_size(h->http, CH_MAX_HEADERS);
		evhttp_set_max_body_size(h->http, CH_MAX_BODY);
		evhttp_set_timeout(h->http, CH_TIMEOUT_S);
	}
	if (!err)
		err = ch_conn_init(h);
	if (!err)
		err = ch_listen_open(h, addrs, naddrs, fds, nfds);
	else
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
	if (err) {
		challenge_http_free(h);
		return err;
	}
	for (size_t i = 0; i < h->nlisten; i++)
		log_debug(NULL, "http-01 listener on %s, port %d", h->ls[i].addr, h->ls[i].port);
	*out = h;
	return 0;
}

int challenge_http_port(const struct challenge_http *h, size_t i)
{
	if (!h || i >= h->nlisten)
		return -ENOENT;
	return h->ls[i].port;
}

void challenge_http_free(struct challenge_http *h)
{
	if (!h)
		return;
	ch_conn_fini(h);
	if (h->http)
		evhttp_free(h->http);   /* closes the listening sockets and connections */
	for (size_t i = 0; i < h->ntok; i++) {
		free(h->tok[i].token);
		free(h->tok[i].keyauth);
	}
	free(h->tok);
	ch_listeners_free(h->ls, h->nlisten);
	free(h);
}
