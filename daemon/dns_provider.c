/* dns_provider.c - makes the DNS provider a dns_providers entry describes, and frees it. */
#include <stdlib.h>

#include "dns_provider.h"
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
