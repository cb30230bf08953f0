/* http.h - asynchronous HTTPS client: libcurl multi driven by the libevent loop. */
#ifndef ACMED_HTTP_H
#define ACMED_HTTP_H

#include <stddef.h>
#include <event2/event.h>

struct http_client;
struct http_req;

struct http_response {
	const char *method, *url;
	long status;            /* HTTP status; 0 when the transfer failed */
	int error;              /* 0, or -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET,
				   -EPROTO (TLS / protocol), -EMSGSIZE (body too big), -EIO */
	const char *error_text; /* curl's message when error != 0 */
	char *body;             /* NUL-terminated (body_len excludes it); "" when none */
	size_t body_len;
	/* Header values (last occurrence), NULL when absent. */
	const char *content_type, *location, *replay_nonce, *retry_after;
	const char *const *links;       /* every Link header value, NULL-terminated */
};

/* resp is only valid during the call. */
typedef void (*http_done_fn)(const struct http_response *resp, void *arg);

/* ca_bundle: extra PEM roots added to the system store (NULL: system only).
 * trust_file: where the system roots + ca_bundle are kept as one PEM file
 * (0644, rewritten only when different, its directory made 0700) so that
 * libcurl parses them once and reuses the store for new connections; NULL (or
 * not writable): they are handed over in memory and parsed for every new
 * connection. Unused without ca_bundle. */
struct http_client *http_client_new(struct event_base *base, const char *ca_bundle,
				    const char *trust_file);
/* Frees pending requests without calling their callbacks. */
void http_client_free(struct http_client *c);
void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms);
/* Requests started since http_client_new (for statistics and tests). */
unsigned long http_client_request_count(const struct http_client *c);

/* method: "GET", "HEAD" or "POST". body may be NULL. Returns NULL on
 * immediate failure (then cb is never called). cb is always called from the
 * loop, never from inside http_send. */
struct http_req *http_send(struct http_client *c, const char *method, const char *url,
			   const char *content_type, const char *body, size_t body_len,
			   http_done_fn cb, void *arg);
/* The same with more request headers ("Name: value", NULL-terminated). */
struct http_req *http_send_headers(struct http_client *c, const char *method, const char *url,
				   const char *content_type, const char *body, size_t body_len,
				   const char *const *headers, http_done_fn cb, void *arg);
/* Abort; cb will not be called. */
void http_cancel(struct http_req *req);

#endif
