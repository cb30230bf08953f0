/* acme_client.h - what an order and the scheduler need of a CA, as an interface: acme.c is the real one, tests bring a fake. */
#ifndef ACMED_ACME_CLIENT_H
#define ACMED_ACME_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "acme_err.h"

struct crypto_key;

/* RFC 8555 section 6.7 problem document (RFC 7807). */
struct acme_problem {
	char *type;             /* as sent, e.g. "urn:ietf:params:acme:error:badNonce"; NULL when absent */
	const char *name;       /* the part after either ACME namespace ("badNonce"), else NULL */
	char *detail;           /* NULL when absent; subproblems appended as "; value: detail" */
};

struct acme_reply {
	const char *url;
	long status;                    /* HTTP status; 0 when the transfer failed */
	const char *body;               /* raw body (NUL-terminated) */
	size_t body_len;
	const char *location;
	int64_t retry_after;            /* seconds from now (clamped 1 s..24 h), -1 when absent */
	enum acme_err_class err;        /* ACME_ERR_NONE for 2xx */
	const struct acme_problem *problem; /* when the CA sent one */
	const char *err_text;           /* one line for the log when err != NONE */
	int missing_resource;           /* get: the directory has no such resource */
	const char *const *links;       /* the Link header values, NULL-terminated (or NULL) */
	int relayed;                    /* the failure of a request this one waited on (directory,
					 * nonce, account), not the CA's answer to this one */
};
/* reply is valid only during the call. */
typedef void (*acme_reply_fn)(const struct acme_reply *reply, void *arg);

/* How long the CA usually takes to validate an authorization / to issue
 * after finalize, learned from earlier orders, so the first poll lands when
 * the answer is likely ready. */
enum acme_poll_kind { ACME_POLL_AUTHZ, ACME_POLL_ORDER };

struct acme_call;               /* one request in flight; each implementation defines it */
struct acme_client;

struct acme_client_ops {
	const char *(*name)(const struct acme_client *c);
	/* Signed POST to url (resource != NULL: the directory resource of that
	 * name, url ignored). payload NULL: POST-as-GET. cb is always called,
	 * from the loop, unless the call is cancelled. NULL: could not start. */
	struct acme_call *(*post)(struct acme_client *c, const char *resource, const char *url,
				  const char *payload, acme_reply_fn cb, void *arg);
	/* Unauthenticated GET of the directory resource + "/" + suffix
	 * (renewalInfo); missing_resource in the reply when the CA has none. */
	struct acme_call *(*get)(struct acme_client *c, const char *resource, const char *suffix,
				 acme_reply_fn cb, void *arg);
	void (*cancel)(struct acme_client *c, struct acme_call *call);
	const struct crypto_key *(*account_key)(const struct acme_client *c);
	/* The account's URL (kid) once registered, else NULL; optional (NULL op). */
	const char *(*account_url)(const struct acme_client *c);
	/* 1: the directory has the resource, 0: it lacks it, -1: not known yet. */
	int (*has_resource)(const struct acme_client *c, const char *resource);
	long (*poll_hint_ms)(const struct acme_client *c, enum acme_poll_kind kind);
	/* observed_ms: from the request (challenge, finalize) to seeing the
	 * result; first_look: the result was there at the first poll. */
	void (*poll_learn)(struct acme_client *c, enum acme_poll_kind kind, long observed_ms,
			   int first_look);
};

struct acme_client {
	const struct acme_client_ops *ops;
};

static inline const char *acme_client_name(const struct acme_client *c)
{
	return c->ops->name(c);
}

static inline struct acme_call *acme_client_post(struct acme_client *c, const char *resource,
						 const char *url, const char *payload,
						 acme_reply_fn cb, void *arg)
{
	return c->ops->post(c, resource, url, payload, cb, arg);
}

static inline struct acme_call *acme_client_get(struct acme_client *c, const char *resource,
						const char *suffix, acme_reply_fn cb, void *arg)
{
	return c->ops->get(c, resource, suffix, cb, arg);
}

/* NULL call ok. */
static inline void acme_client_cancel(struct acme_client *c, struct acme_call *call)
{
	if (call)
		c->ops->cancel(c, call);
}

static inline const char *acme_client_account_url(const struct acme_client *c)
{
	return c->ops->account_url ? c->ops->account_url(c) : NULL;
}

static inline const struct crypto_key *acme_client_account_key(const struct acme_client *c)
{
	return c->ops->account_key(c);
}

static inline int acme_client_has_resource(const struct acme_client *c, const char *resource)
{
	return c->ops->has_resource(c, resource);
}

static inline long acme_client_poll_hint_ms(const struct acme_client *c, enum acme_poll_kind kind)
{
	return c->ops->poll_hint_ms(c, kind);
}

static inline void acme_client_poll_learn(struct acme_client *c, enum acme_poll_kind kind,
					  long observed_ms, int first_look)
{
	c->ops->poll_learn(c, kind, observed_ms, first_look);
}

#endif
