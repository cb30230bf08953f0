/* dns_queue.h - a DNS change waiting its turn in a provider that makes them in order (rfc2136, exec): what was asked, and whom to tell. */
#ifndef ACMED_DNS_QUEUE_H
#define ACMED_DNS_QUEUE_H

#include "dns_provider.h"

struct dns_prov_op {
	struct dns_prov_op *next;
	int add;                        /* 1 publish, 0 withdraw */
	char *fqdn, *value, *cert_name;
	int canceled;                   /* nobody to tell, but still made in its turn: a later
					 * change of the same record must not overtake it */
	int solo;                       /* rfc2136: in an UPDATE of its own (its batch was refused) */
	dns_prov_done_fn done;
	void *arg;
};

/* A copy of rq with its callback; NULL on ENOMEM (logged, naming the provider). */
struct dns_prov_op *dns_queue_op_new(const struct dns_prov *p, const struct dns_change_req *rq,
				     dns_prov_done_fn done, void *arg);
void dns_queue_op_free(struct dns_prov_op *op);

#endif
