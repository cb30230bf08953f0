/* http.c - asynchronous HTTP(S) client: libcurl multi interface driven by libevent (hiperfifo). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http.h"
#include "http_trust.h"
#include "log.h"

#if LIBCURL_VERSION_NUM < 0x074d00
#error "http.c needs libcurl >= 7.77 (CURLOPT_CAINFO_BLOB)"
#endif

#ifndef ACMED_VERSION
#define ACMED_VERSION "unknown"
#endif

#define HTTP_BODY_MAX        (2u * 1024 * 1024)
#define HTTP_LINKS_MAX       64
#define HTTP_HOST_CONNS      8
#define HTTP_TOTAL_CONNS     64
#define HTTP_CONNECT_MS      10000L
#define HTTP_TOTAL_MS        60000L
#define HTTP_SYSTEM_CA       "/etc/ssl/certs/ca-certificates.crt"
#define HTTP_CA_CACHE_S      86400L     /* curl re-reads the system CA file once a day */

enum req_state { REQ_RUNNING, REQ_DONE, REQ_CALLING };

struct http_req {
	struct http_client *c;
	TAILQ_ENTRY(http_req) link;     /* in c->running or c->done */
	enum req_state state;
	CURL *easy;
	struct curl_slist *hdrs;
	char method[8];
	char *url;
	http_done_fn cb;
	void *arg;
	CURLcode result;
	int too_big;
	char *body;
	size_t body_len, body_cap;
	char *content_type, *location, *replay_nonce, *retry_after;
	char *links[HTTP_LINKS_MAX + 1];
	size_t nlinks;
	char errbuf[CURL_ERROR_SIZE];
};

/* One libevent event per socket curl asks us to watch. */
struct http_sock {
	LIST_ENTRY(http_sock) link;
	struct event *ev;
	curl_socket_t fd;
	short kind;             /* what ev waits for */
};

TAILQ_HEAD(http_req_list, http_req);

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;    /* curl's timeout */
	struct event *deliver;  /* runs completed requests' callbacks */
	LIST_HEAD(, http_sock) socks;
	struct http_req_list running, done;
	long connect_ms, total_ms;
	struct http_trust trust;        /* with a ca_bundle */
	int no_capath;          /* the roots are all in one CA file: no CApath (cacheable) */
	unsigned long nrequests;
	int delivering;         /* inside deliver_cb */
	int dead;               /* http_client_free called while delivering */
};

static int http_global_done;

static void check_multi_info(struct http_client *c);

/* ---------- curl -> libevent glue ---------- */

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct http_client *c = arg;
	int action = 0, running = 0;

	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, action, &running);
	check_multi_info(c);
}

static void timer_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct http_client *c = arg;
	int running = 0;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(c);
}

static void sock_free(struct http_sock *s)
{
	LIST_REMOVE(s, link);
	event_free(s->ev);
	free(s);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_sock *s = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_free(s);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	       ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->ev = event_new(c->base, fd, kind, sock_event_cb, c);
		if (!s->ev) {
			free(s);
			return -1;
		}
		LIST_INSERT_HEAD(&c->socks, s, link);
		curl_multi_assign(c->multi, fd, s);
	} else if (kind == s->kind) {
		return 0;       /* already waiting for that: no epoll_ctl round trip */
	} else {
		event_del(s->ev);
		event_assign(s->ev, c->base, fd, kind, sock_event_cb, c);
	}
	if (event_add(s->ev, NULL) < 0) {
		s->kind = 0;
		return -1;
	}
	s->kind = kind;
	return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(c->timer, &tv) < 0 ? -1 : 0;
}

/* ---------- per-request data ---------- */

static size_t body_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;

	if (len > HTTP_BODY_MAX - r->body_len) {
		r->too_big = 1;
		return 0;               /* curl aborts with CURLE_WRITE_ERROR */
	}
	if (r->body_len + len + 1 > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 4096;
		char *nb;

		while (cap < r->body_len + len + 1)
			cap *= 2;
		nb = realloc(r->body, cap);
		if (!nb)
			return 0;
		r->body = nb;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

static void headers_reset(struct http_req *r)
{
	free(r->content_type);
	free(r->location);
	free(r->replay_nonce);
	free(r->retry_after);
	r->content_type = r->location = r->replay_nonce = r->retry_after = NULL;
	for (size_t i = 0; i < r->nlinks; i++)
		free(r->links[i]);
	r->nlinks = 0;
	r->links[0] = NULL;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static char *trimmed_dup(const char *s, size_t len)
{
	while (len && is_space(*s)) {
		s++;
		len--;
	}
	while (len && is_space(s[len - 1]))
		len--;
	return strndup(s, len);
}

static void replace_header(char **slot, const char *v, size_t len)
{
	char *dup = trimmed_dup(v, len);

	if (!dup)
		return;
	free(*slot);
	*slot = dup;
}

/* A Link header may carry several comma-separated link-values (RFC 8288);
 * commas inside <URI> or quoted strings do not separate. */
static void add_link(struct http_req *r, const char *v, size_t len)
{
	char *one = trimmed_dup(v, len);

	if (one && *one && r->nlinks < HTTP_LINKS_MAX) {
		r->links[r->nlinks++] = one;
		r->links[r->nlinks] = NULL;
	} else {
		free(one);
	}
}

static void add_links(struct http_req *r, const char *v, size_t len)
{
	size_t start = 0;
	int in_uri = 0, in_quote = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = v[i];

		if (in_quote) {
			if (ch == '\\' && i + 1 < len)
				i++;
			else if (ch == '"')
				in_quote = 0;
		} else if (in_uri) {
			if (ch == '>')
				in_uri = 0;
		} else if (ch == '<') {
			in_uri = 1;
		} else if (ch == '"') {
			in_quote = 1;
		} else if (ch == ',') {
			add_link(r, v + start, i - start);
			start = i + 1;
		}
	}
	add_link(r, v + start, len - start);
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req *r = arg;
	size_t len = size * n;
	const char *colon;
	size_t nlen;

	/* A new status line (after 1xx or a proxy's CONNECT) starts a new header set. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		headers_reset(r);
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - data);
	colon++;
	len -= nlen + 1;
#define HDR_IS(name) (nlen == sizeof(name) - 1 && strncasecmp(data, name, nlen) == 0)
	if (HDR_IS("Content-Type"))
		replace_header(&r->content_type, colon, len);
	else if (HDR_IS("Location"))
		replace_header(&r->location, colon, len);
	else if (HDR_IS("Replay-Nonce"))
		replace_header(&r->replay_nonce, colon, len);
	else if (HDR_IS("Retry-After"))
		replace_header(&r->retry_after, colon, len);
	else if (HDR_IS("Link"))
		add_links(r, colon, len);
#undef HDR_IS
	return size * n;
}

static void req_free(struct http_req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	headers_reset(r);
	free(r->body);
	free(r->url);
	free(r);
}

static int map_error(const struct http_req *r)
{
	if (r->too_big)
		return -EMSGSIZE;
	switch (r->result) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP3:
	case CURLE_SSL_CLIENTCERT:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* ---------- completion and delivery ---------- */

static void check_multi_info(struct http_client *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct http_req *r;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		if (!priv)
			continue;
		r = (struct http_req *)(void *)priv;
		r->result = msg->data.result;
		curl_multi_remove_handle(c->multi, r->easy);  /* msg is invalid from here */
		TAILQ_REMOVE(&c->running, r, link);
		TAILQ_INSERT_TAIL(&c->done, r, link);
		r->state = REQ_DONE;
	}
	if (!TAILQ_EMPTY(&c->done))
		event_active(c->deliver, EV_TIMEOUT, 0);
}

static void client_destroy(struct http_client *c);

static void deliver_one(struct http_req *r)
{
	struct http_response resp = {0};
	int err = map_error(r);

	resp.method = r->method;
	resp.url = r->url;
	resp.error = err;
	if (err == 0)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
	if (err) {
		if (err == -EMSGSIZE)
			resp.error_text = "response body larger than 2 MiB";
		else
			resp.error_text = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
		log_debug(NULL, "%s %s: %s", r->method, r->url, resp.error_text);
	} else {
		log_debug(NULL, "%s %s: HTTP %ld, %zu bytes", r->method, r->url, resp.status,
			  r->body_len);
	}
	resp.body = (err || !r->body) ? (char *)"" : r->body;
	resp.body_len = (err || !r->body) ? 0 : r->body_len;
	resp.content_type = r->content_type;
	resp.location = r->location;
	resp.replay_nonce = r->replay_nonce;
	resp.retry_after = r->retry_after;
	resp.links = (const char *const *)r->links;
	r->cb(&resp, r->arg);
}

static void deliver_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct http_client *c = arg;
	struct http_req *r;

	c->delivering++;
	while (!c->dead && (r = TAILQ_FIRST(&c->done))) {
		TAILQ_REMOVE(&c->done, r, link);
		r->state = REQ_CALLING;
		deliver_one(r);
		req_free(r);
	}
	c->delivering--;
	if (c->dead && !c->delivering)
		client_destroy(c);
}

/* ---------- client ---------- */

/* The PEM file libcurl reads the system roots from by default, or NULL. */
static const char *curl_default_ca_file(void)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

	return vi->age >= CURLVERSION_SEVENTH ? vi->cainfo : NULL;
}

struct http_client *http_client_new(struct event_base *base, const char *ca_bundle,
				    const char *trust_file)
{
	struct http_client *c;

	if (!http_global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_error(NULL, "curl_global_init failed");
			return NULL;
		}
		http_global_done = 1;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base = base;
	c->connect_ms = HTTP_CONNECT_MS;
	c->total_ms = HTTP_TOTAL_MS;
	LIST_INIT(&c->socks);
	TAILQ_INIT(&c->running);
	TAILQ_INIT(&c->done);
	if (ca_bundle) {
		const char *sys = curl_default_ca_file();

		if (http_trust_load(&c->trust, sys ? sys : HTTP_SYSTEM_CA, ca_bundle, trust_file) < 0)
			goto fail;
		/* With the system roots in the file (or the blob), curl's CApath (the
		 * same roots, hashed) adds nothing; without them, it stays as it was. */
		c->no_capath = c->trust.has_system;
	} else {
		/* System roots only: curl's CA file alone, so its store is cached
		 * too (a CApath beside it would make curl parse the file again for
		 * every connection). Without a CA file, curl's defaults stay. */
		const char *sys = curl_default_ca_file();

		c->no_capath = sys && access(sys, R_OK) == 0;
	}
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, timer_event_cb, c);
	c->deliver = event_new(base, -1, 0, deliver_cb, c);
	if (!c->multi || !c->timer || !c->deliver)
		goto fail;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTP_HOST_CONNS);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)HTTP_TOTAL_CONNS);
	/* Keep idle connections for reuse (curl's default cache follows the number
	 * of transfers, so a lull closed them): each new TLS connection costs a
	 * handshake and ~20 ms of CPU loading the trusted roots. */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_TOTAL_CONNS);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return c;
fail:
	client_destroy(c);
	return NULL;
}

static void client_destroy(struct http_client *c)
{
	struct http_req *r;
	struct http_sock *s;

	while ((r = TAILQ_FIRST(&c->running))) {
		TAILQ_REMOVE(&c->running, r, link);
		curl_multi_remove_handle(c->multi, r->easy);
		req_free(r);
	}
	while ((r = TAILQ_FIRST(&c->done))) {
		TAILQ_REMOVE(&c->done, r, link);
		req_free(r);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);   /* may still call the socket/timer callbacks */
	while ((s = LIST_FIRST(&c->socks)))
		sock_free(s);
	if (c->timer)
		event_free(c->timer);
	if (c->deliver)
		event_free(c->deliver);
	http_trust_clear(&c->trust);
	free(c);
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->delivering) {
		c->dead = 1;    /* deliver_cb finishes the job when the callback returns */
		return;
	}
	client_destroy(c);
}

void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms)
{
	c->connect_ms = connect_ms > 0 ? connect_ms : HTTP_CONNECT_MS;
	c->total_ms = total_ms > 0 ? total_ms : HTTP_TOTAL_MS;
}

unsigned long http_client_request_count(const struct http_client *c)
{
	return c->nrequests;
}

static int req_setup(struct http_client *c, struct http_req *r, const char *content_type,
		     const char *body, size_t body_len, const char *const *headers)
{
	CURL *e = r->easy;
	CURLcode rc = CURLE_OK;
	char ct[512];

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PRIVATE, (void *)r);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, "acmed/" ACMED_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	SET(CURLOPT_TIMEOUT_MS, c->total_ms);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_BODY_MAX);
	SET(CURLOPT_WRITEFUNCTION, body_cb);
	SET(CURLOPT_WRITEDATA, (void *)r);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, (void *)r);
	if (c->trust.file) {
		SET(CURLOPT_CAINFO, c->trust.file);
	} else if (c->trust.blob) {
		/* The client outlives its transfers: no per-request copy of the roots. */
		struct curl_blob blob = { c->trust.blob, c->trust.blob_len, CURL_BLOB_NOCOPY };

		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->no_capath)
		SET(CURLOPT_CAPATH, (char *)NULL);
#if LIBCURL_VERSION_NUM >= 0x075700
	/* The parsed roots are kept by the multi handle for new connections. Our
	 * trust file is only written when the client is made: it is read once and
	 * kept for the client's life (as the in-memory roots were), so nothing
	 * depends on the file afterwards; the system's own file is re-read daily. */
	SET(CURLOPT_CA_CACHE_TIMEOUT, c->trust.file ? -1L : HTTP_CA_CACHE_S);
#endif
	if (strcmp(r->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
		SET(CURLOPT_COPYPOSTFIELDS, body ? body : "");
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}
#undef SET
	if (rc != CURLE_OK) {
		log_error(NULL, "%s %s: %s", r->method, r->url, curl_easy_strerror(rc));
		return -EINVAL;
	}
	/* No "Expect: 100-continue" round trip for larger POSTs. */
	r->hdrs = curl_slist_append(NULL, "Expect:");
	if (r->hdrs && content_type) {
		struct curl_slist *l;

		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		l = curl_slist_append(r->hdrs, ct);
		if (!l)
			return -ENOMEM;
		r->hdrs = l;
	}
	for (size_t i = 0; r->hdrs && headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(r->hdrs, headers[i]);

		if (!l)
			return -ENOMEM;
		r->hdrs = l;
	}
	if (!r->hdrs)
		return -ENOMEM;
	if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs) != CURLE_OK)
		return -EINVAL;
	return 0;
}

struct http_req *http_send(struct http_client *c, const char *method, const char *url,
			   const char *content_type, const char *body, size_t body_len,
			   http_done_fn cb, void *arg)
{
	return http_send_headers(c, method, url, content_type, body, body_len, NULL, cb, arg);
}

struct http_req *http_send_headers(struct http_client *c, const char *method, const char *url,
				   const char *content_type, const char *body, size_t body_len,
				   const char *const *headers, http_done_fn cb, void *arg)
{
	struct http_req *r;

	if (!c || c->dead || !method || !url || !cb)
		return NULL;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    strcmp(method, "POST") != 0) {
		log_error(NULL, "%s %s: unsupported HTTP method", method, url);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->c = c;
	snprintf(r->method, sizeof(r->method), "%s", method);
	r->cb = cb;
	r->arg = arg;
	r->url = strdup(url);
	r->easy = curl_easy_init();
	if (!r->url || !r->easy || req_setup(c, r, content_type, body, body_len, headers) < 0) {
		req_free(r);
		return NULL;
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		log_error(NULL, "%s %s: cannot start the transfer", method, url);
		req_free(r);
		return NULL;
	}
	r->state = REQ_RUNNING;
	TAILQ_INSERT_TAIL(&c->running, r, link);
	c->nrequests++;
	return r;
}

void http_cancel(struct http_req *r)
{
	struct http_client *c;

	if (!r)
		return;
	c = r->c;
	switch (r->state) {
	case REQ_RUNNING:
		TAILQ_REMOVE(&c->running, r, link);
		curl_multi_remove_handle(c->multi, r->easy);
		req_free(r);
		break;
	case REQ_DONE:
		TAILQ_REMOVE(&c->done, r, link);
		req_free(r);
		break;
	case REQ_CALLING:
		break;          /* its callback is running; freed when it returns */
	}
}
