/* challenge.h - one interface for every challenge type: present the answer, say when it is ready, clean up. */
#ifndef ACMED_CHALLENGE_H
#define ACMED_CHALLENGE_H

#include "acme_err.h"

struct challenge;               /* one solver: the http-01 listener, a DNS provider... */
struct challenge_answer;        /* one answer presented for one identifier */

/* The answer is in place (err ACME_ERR_NONE) and the CA may validate, or it
 * could not be put in place: err classifies why (ACME_ERR_CERT: this
 * certificate's problem, e.g. a refused DNS update; ACME_ERR_LOCAL: ours;
 * ACME_ERR_UNAVAILABLE: a server that did not answer, retried later, with
 * the certificate's backoff: never taken for the CA's outage), with
 * a one-line message naming what failed. Called from the loop, never from
 * inside challenge_present, at most once. */
typedef void (*challenge_ready_fn)(void *arg, enum acme_err_class err, const char *message);
/* The CA's validator looked at the answer (http-01: fetched the token):
 * the verdict is close. Optional, may be called several times. */
typedef void (*challenge_seen_fn)(void *arg);

struct challenge_request {
	const char *cert_name;          /* for the log */
	const char *id_type;            /* "dns" or "ip" */
	const char *identifier;         /* "example.org" (the base name of a wildcard), or an address */
	int wildcard;                   /* the authorization is for "*.<identifier>" */
	const char *token;              /* from the CA's challenge object (NULL for a tokenless type) */
	const char *key_authorization;  /* token "." thumbprint (RFC 8555 8.1); NULL when tokenless */
	/* dns-persist-01: the account URI and the CA's issuer domain names the
	 * record must carry (from the challenge object); NULL / 0 otherwise. */
	const char *account_uri;
	const char *const *issuers;
	size_t nissuers;
	int wildcard_too;               /* the certificate also names "*.<identifier>" */
	const char *dns_provider;       /* dns-01: the certificate's dns_provider, else NULL */
	challenge_ready_fn ready;
	challenge_seen_fn seen;         /* may be NULL */
	void *arg;
};

struct challenge_type {
	const char *name;               /* the ACME challenge type, "http-01" */
	int tokenless;                  /* answers without a token (dns-persist-01) */
	/* Optional: what an admin must know when the CA found the answer
	 * wanting (dns-persist-01: the record to publish), or NULL. */
	const char *(*explain)(struct challenge *c, struct challenge_answer *a);
	/* 1 when this solver can answer for the identifier. */
	int (*supports)(struct challenge *c, const char *id_type, const char *identifier,
			int wildcard);
	/* Put the answer in place; the request is copied. <0 when it cannot
	 * even start (logged); then ready is never called. */
	int (*present)(struct challenge *c, const struct challenge_request *rq,
		       struct challenge_answer **out);
	/* Withdraw it (after success, failure or cancel); no callback after.
	 * Whatever takes time (a DNS update) finishes on its own. */
	void (*cleanup)(struct challenge *c, struct challenge_answer *a);
	void (*free)(struct challenge *c);
};

/* A solver: type and the implementation's own data. */
struct challenge {
	const struct challenge_type *type;
	void *impl;
};

static inline const char *challenge_name(const struct challenge *c)
{
	return c->type->name;
}

static inline int challenge_supports(struct challenge *c, const char *id_type,
				     const char *identifier, int wildcard)
{
	return c->type->supports(c, id_type, identifier, wildcard);
}

static inline int challenge_present(struct challenge *c, const struct challenge_request *rq,
				    struct challenge_answer **out)
{
	return c->type->present(c, rq, out);
}

/* NULL when the type has nothing to add (or a is NULL). */
static inline const char *challenge_explain(struct challenge *c, struct challenge_answer *a)
{
	return a && c->type->explain ? c->type->explain(c, a) : NULL;
}

/* NULL a ok. */
static inline void challenge_cleanup(struct challenge *c, struct challenge_answer *a)
{
	if (a)
		c->type->cleanup(c, a);
}

/* NULL c ok. */
static inline void challenge_free(struct challenge *c)
{
	if (c)
		c->type->free(c);
}

/* Which solver answers for one identifier of a certificate: chosen by the
 * caller (the certificate's `challenge:` setting, the identifier's kind).
 * NULL when none can: the order fails with why. */
typedef struct challenge *(*challenge_pick_fn)(void *arg, const char *id_type,
					       const char *identifier, int wildcard,
					       const char **why);

#endif
