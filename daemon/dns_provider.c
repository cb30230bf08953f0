/* dns_provider.c - makes the DNS provider a dns_providers entry describes, and frees it; the changes queued by the in-order providers. */
#include <stdlib.h>
#include <string.h>

#include "dns_provider.h"
#include "dns_queue.h"
#include "log.h"

struct dns_prov *dns_prov_new(struct event_base *base, struct dns_client *dc, const struct config_dns_provider *cfg,
			      const char *runtime_dir)
{
	struct dns_prov *p = cfg->type == CONFIG_DNS_RFC2136 ? dns_rfc2136_new(base, dc, cfg) :
			     cfg->type == CONFIG_DNS_EXEC ? dns_exec_new(base) :
			     dns_acmedns_new(base, cfg, runtime_dir);

	if (!p)
		return NULL;
	if (config_dns_provider_copy(&p->cfg, cfg) < 0) {
		p->ops->free(p);
		log_error(NULL, "dns provider %s: out of memory", cfg->name);
		return NULL;
	}
	p->name = p->cfg.name;
	return p;
}

void dns_prov_free(struct dns_prov *p)
{
	struct config_dns_provider cfg;

	if (!p)
		return;
	cfg = p->cfg;
	p->ops->free(p);
	config_dns_provider_clear(&cfg);
}

struct dns_prov_op *dns_queue_op_new(const struct dns_prov *p, const struct dns_change_req *rq,
				     dns_prov_done_fn done, void *arg)
{
	struct dns_prov_op *op = calloc(1, sizeof(*op));

	if (!op || !(op->fqdn = strdup(rq->fqdn)) || !(op->value = strdup(rq->value)) ||
	    (rq->cert_name && !(op->cert_name = strdup(rq->cert_name)))) {
		log_error(rq->cert_name, "dns provider %s: out of memory", p->name);
		dns_queue_op_free(op);
		return NULL;
	}
	op->add = rq->add;
	op->done = done;
	op->arg = arg;
	return op;
}

void dns_queue_op_free(struct dns_prov_op *op)
{
	if (!op)
		return;
	free(op->fqdn);
	free(op->value);
	free(op->cert_name);
	free(op);
}
