/* order.h - one certificate's issuance: order -> authorizations -> http-01 -> finalize -> download -> install. */
#ifndef ACMED_ORDER_H
#define ACMED_ORDER_H

#include <stdint.h>
#include <event2/event.h>

#include "acme.h"
#include "config.h"

struct order;
struct challenge_http;

struct order_result {
	int ok;                         /* 1: the new certificate is installed */
	enum acme_err_class err;        /* when !ok */
	int64_t retry_after;            /* seconds, -1 when the CA gave none */
	const char *message;            /* one line for the log and status */
	const char *problem;            /* ACME problem type, or NULL */
	int64_t not_after;              /* when ok: the new certificate's notAfter */
	int64_t not_before;
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
};

struct order *order_start(struct event_base *base, struct acme_ca *ca,
			  struct challenge_http *http01, const struct order_params *p,
			  order_done_fn cb, void *arg);
/* Cancel (no callback) and free; tokens stop being served. */
void order_free(struct order *o);

/* The order URL once the CA created it, else NULL. */
const char *order_url(const struct order *o);

#endif
