/* dns_provider.h - how dns-01 puts a TXT record in place and takes it away: one interface, three kinds (rfc2136, exec, acme-dns). */
#ifndef ACMED_DNS_PROVIDER_H
#define ACMED_DNS_PROVIDER_H

#include <event2/event.h>

#include "acme_err.h"
#include "config.h"

struct dns_client;
struct dns_prov;
struct dns_prov_op;

/* The change is made (err ACME_ERR_NONE), or why not (ACME_ERR_CERT: the
 * provider refused, e.g. REFUSED or a bad TSIG key; ACME_ERR_UNAVAILABLE: no
 * answer; ACME_ERR_LOCAL), with a message naming the server, zone, rcode.
 * Called from the loop, once. */
typedef void (*dns_prov_done_fn)(void *arg, enum acme_err_class err, const char *message);

struct dns_change_req {
	int add;                        /* 1: publish, 0: withdraw */
	const char *zone;               /* "example.org." (found or configured), or NULL */
	const char *fqdn;               /* where the CA will look, after CNAMEs: "_acme-challenge.example.org." */
	const char *value;              /* the TXT value */
	const char *identifier;         /* the name being validated ("example.org"), for acme-dns */
	const char *cert_name;          /* for the log, or NULL */
};

struct dns_prov_ops {
	const char *type;               /* "rfc2136" */
	int withdraws;                  /* 0: records are not taken away (acme-dns keeps two, rotating) */
	/* Start a change; the request is copied. NULL: could not start (logged by
	 * the provider); then done is never called. Changes to one provider are
	 * made in the order they were asked for (rfc2136 batches them). */
	struct dns_prov_op *(*change)(struct dns_prov *p, const struct dns_change_req *rq, dns_prov_done_fn done,
				      void *arg);
	/* No callback after this; a change already sent still happens. */
	void (*cancel)(struct dns_prov *p, struct dns_prov_op *op);
	/* Drops pending changes without callbacks. */
	void (*free)(struct dns_prov *p);
};

/* Every provider starts with this. */
struct dns_prov {
	const struct dns_prov_ops *ops;
	char *name;                     /* its name in dns_providers */
	struct config_dns_provider cfg; /* a copy (the TSIG secret with it) */
};

/* The provider a configuration entry describes; NULL on failure (logged: an
 * acme-dns credentials file that cannot be read...). */
struct dns_prov *dns_prov_new(struct event_base *base, struct dns_client *dc, const struct config_dns_provider *cfg,
			      const char *runtime_dir);
void dns_prov_free(struct dns_prov *p);

/* Each kind's constructor; dns_prov_new sets name and cfg (a copy) after. */
struct dns_prov *dns_rfc2136_new(struct event_base *base, struct dns_client *dc,
				 const struct config_dns_provider *cfg);
struct dns_prov *dns_exec_new(struct event_base *base);
struct dns_prov *dns_acmedns_new(struct event_base *base, const struct config_dns_provider *cfg,
				 const char *runtime_dir);

#endif
