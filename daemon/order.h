/* order.h - one certificate's issuance: order -> authorizations -> challenges -> finalize -> download. */
#ifndef ACMED_ORDER_H
#define ACMED_ORDER_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "acme_client.h"
#include "challenge.h"
#include "config.h"

struct order;
struct crypto_key;

struct order_result {
	int ok;                         /* 1: the CA issued the certificate below */
	enum acme_err_class err;        /* when !ok */
	int64_t retry_after;            /* seconds, -1 when the CA gave none */
	const char *message;            /* one line for the log and status */
	const char *problem;            /* ACME problem type, or NULL */
	/* The failure was ours (a challenge's answer could not be put in place,
	 * e.g. a DNS server down): the CA's order is as it was, and the next
	 * attempt resumes it rather than ordering again. */
	int resumable;
	/* When ok: the new certificate, checked (it holds the order's key, names
	 * exactly the configured domains, is not expired), as PEM, and its key. */
	const char *leaf_pem;
	const char *chain_pem;          /* the issuers; may be "" */
	const char *key_pem;            /* a secret */
	size_t key_len;
	int64_t not_before, not_after;
};

/* res is valid only during the call; the order may be freed from it. */
typedef void (*order_done_fn)(struct order *o, const struct order_result *res, void *arg);

/* The CA created the order (or it was resumed): url is where it lives. */
typedef void (*order_created_fn)(struct order *o, const char *url, void *arg);

struct order_params {
	const struct config_cert *cert; /* copied: the order survives a reload */
	struct crypto_key *key;         /* the certificate's new key; the order takes it over */
	const char *resume_url;         /* an order from before a restart, or NULL */
	const char *replaces;           /* ARI CertID of the certificate being replaced, or NULL */
	order_created_fn created;       /* may be NULL */
	challenge_pick_fn pick;         /* the solver for each identifier */
	void *pick_arg;
};

/* Talks to the CA through ca only; answers challenges through the solvers
 * p->pick returns; installs nothing. NULL on failure (p->key freed). */
struct order *order_start(struct event_base *base, struct acme_client *ca,
			  const struct order_params *p, order_done_fn cb, void *arg);
/* Cancel (no callback) and free; every answer presented is cleaned up. */
void order_free(struct order *o);

/* The order URL once the CA created it, else NULL. */
const char *order_url(const struct order *o);

#endif
