/* dns_rfc2136.c - the rfc2136 DNS provider: TXT records added and deleted by DNS UPDATE signed with TSIG, batched per zone (one UPDATE in flight per zone carries every change asked for meanwhile). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns_provider.h"
#include "dns_queue.h"
#include "log.h"

#define BATCH_MAX 256                   /* changes in one UPDATE */
#define BATCH_GATHER_MS 20              /* from the first change to its UPDATE, when none is in flight */

struct zoneq {
	struct zoneq *next;
	char *zone;
	struct dns_prov_op *head, **tail;       /* waiting */
	struct dns_prov_op *sent;               /* in the UPDATE in flight */
	struct dns_req *req;
	struct event *flush_ev;
	struct rfc2136 *owner;
};

struct rfc2136 {
	struct dns_prov p;
	struct event_base *base;
	struct dns_client *dc;
	struct sockaddr_storage server;
	socklen_t len;
	char server_str[80];
	struct zoneq *zones;
	int calling;                    /* in updated()'s callbacks */
	int dead;                       /* freed by one of them */
};

static void flush(evutil_socket_t fd, short what, void *arg);

static void schedule(struct zoneq *z)
{
	struct timeval gather = { 0, BATCH_GATHER_MS * 1000 };

	/* a moment later: every change asked for meanwhile (the other names of an
	 * order, the other orders) goes in the same UPDATE */
	if (!z->req && z->head && !evtimer_pending(z->flush_ev, NULL))
		evtimer_add(z->flush_ev, &gather);
}

/* How the server's answer reads for an admin, and whose problem it is. */
static enum acme_err_class classify(struct rfc2136 *r, struct zoneq *z, const struct dns_result *res, char *msg,
				    size_t size)
{
	if (res->status == DNS_NO_ANSWER) {
		snprintf(msg, size, "DNS UPDATE of zone %s: %s", z->zone, res->message);
		return ACME_ERR_UNAVAILABLE;
	}
	if (res->status == DNS_BAD_ANSWER) {
		/* whether the server made the change is not known: cleaned up as if it had */
		snprintf(msg, size, "DNS UPDATE of zone %s: %s (is tsig_secret_file of dns provider %s the key "
			 "the server has?)", z->zone, res->message, r->p.name);
		return ACME_ERR_UNAVAILABLE;
	}
	if (res->rcode == DNS_RCODE_NOERROR && !res->tsig_error)
		return ACME_ERR_NONE;
	if (res->tsig_error)
		snprintf(msg, size, "DNS UPDATE of zone %s refused by %s: %s (TSIG %s): check tsig_key, "
			 "tsig_algorithm and tsig_secret_file of dns provider %s against the server's key%s", z->zone,
			 r->server_str, dns_rcode_str(res->rcode), dns_tsig_error_str(res->tsig_error), r->p.name,
			 res->tsig_error == DNS_TSIG_BADKEY ? " (knot says BADKEY too when its ACL does not let the key "
			 "update this name)" : "");
	else if (res->rcode == DNS_RCODE_NOTAUTH || res->rcode == DNS_RCODE_NOTZONE)
		snprintf(msg, size, "DNS UPDATE of zone %s refused by %s: %s (the server is not authoritative "
			 "for that zone, or wants a TSIG key; set zone: or the server of dns provider %s)", z->zone,
			 r->server_str, dns_rcode_str(res->rcode), r->p.name);
	else
		snprintf(msg, size, "DNS UPDATE of zone %s refused by %s: %s%s", z->zone, r->server_str,
			 dns_rcode_str(res->rcode), res->rcode == DNS_RCODE_REFUSED ?
			 " (does the server's update ACL allow this key for this zone?)" : "");
	/* a server failure passes; anything else is the configuration's */
	return res->rcode == DNS_RCODE_SERVFAIL ? ACME_ERR_UNAVAILABLE : ACME_ERR_CERT;
}

static void updated(const struct dns_result *res, void *arg)
{
	struct zoneq *z = arg;
	struct rfc2136 *r = z->owner;
	struct dns_prov_op *op = z->sent, *next;
	char msg[700] = "";
	enum acme_err_class err = classify(r, z, res, msg, sizeof(msg));
	size_t n = 0;

	z->req = NULL;
	z->sent = NULL;
	for (next = op; next; next = next->next)
		n++;
	/* An UPDATE is all or nothing (RFC 2136 3.4): a policy refusing one name
	 * refuses its whole batch (BIND: REFUSED; knot: NOTAUTH with TSIG BADKEY,
	 * as for a key it does not know). Each change again alone, in order, so
	 * that only the refused one fails. */
	if (err == ACME_ERR_CERT && n > 1 && res->status == DNS_ANSWERED) {
		struct dns_prov_op *last = op;

		log_debug(NULL, "dns provider %s: %s (%zu changes together): sending them one by one", r->p.name,
			  msg, n);
		for (next = op; next; next = next->next) {
			next->solo = 1;
			last = next;
		}
		last->next = z->head;
		if (!z->head)
			z->tail = &last->next;
		z->head = op;
		schedule(z);
		return;
	}
	if (err != ACME_ERR_NONE)
		log_debug(NULL, "%s (%zu change%s)", msg, n, n == 1 ? "" : "s");
	schedule(z);            /* what waits goes next, whatever the callbacks do */
	r->calling++;
	for (; op; op = next) {
		next = op->next;
		if (!op->canceled && !r->dead)  /* a callback may free the provider: no more after */
			op->done(op->arg, err, err == ACME_ERR_NONE ? NULL : msg);
		dns_queue_op_free(op);
	}
	if (--r->calling == 0 && r->dead)
		free(r);
}

static void flush(evutil_socket_t fd, short what, void *arg)
{
	struct zoneq *z = arg;
	struct rfc2136 *r = z->owner;
	struct dns_change ch[BATCH_MAX];
	struct dns_tsig tsig = { r->p.cfg.tsig_key, r->p.cfg.tsig_algorithm, r->p.cfg.tsig_secret };
	struct dns_prov_op *op, **tailp = &z->sent;
	size_t n = 0;

	(void)fd;
	(void)what;
	if (z->req || !z->head)
		return;
	while ((op = z->head) && n < BATCH_MAX && !(op->solo && n > 0)) {
		z->head = op->next;
		op->next = NULL;
		*tailp = op;
		tailp = &op->next;
		ch[n++] = (struct dns_change){ .add = op->add, .name = op->fqdn, .txt = op->value,
					      .ttl = (uint32_t)r->p.cfg.ttl };
		if (op->solo)
			break;
	}
	if (!z->head)
		z->tail = &z->head;
	log_debug(NULL, "dns provider %s: one UPDATE of zone %s to %s with %zu change%s", r->p.name, z->zone,
		  r->server_str, n, n == 1 ? "" : "s");
	z->req = dns_update(r->dc, (const struct sockaddr *)&r->server, r->len, z->zone,
			    r->p.cfg.tsig_key ? &tsig : NULL, ch, n, updated, z);
	if (!z->req) {
		struct dns_result res = { .status = DNS_NO_ANSWER, .message = "cannot send (out of memory)" };

		/* as if it had been sent and lost: the callers hear of it from the loop */
		updated(&res, z);
	}
}

static struct zoneq *zone_of(struct rfc2136 *r, const char *zone)
{
	struct zoneq *z;

	for (z = r->zones; z; z = z->next)
		if (strcasecmp(z->zone, zone) == 0)
			return z;
	if (!(z = calloc(1, sizeof(*z))) || !(z->zone = strdup(zone)) ||
	    !(z->flush_ev = evtimer_new(r->base, flush, z))) {
		if (z)
			free(z->zone);
		free(z);
		return NULL;
	}
	z->owner = r;
	z->tail = &z->head;
	z->next = r->zones;
	r->zones = z;
	return z;
}

static struct dns_prov_op *rfc_change(struct dns_prov *p, const struct dns_change_req *rq, dns_prov_done_fn done,
				      void *arg)
{
	struct rfc2136 *r = (struct rfc2136 *)p;
	const char *zone = rq->zone ? rq->zone : p->cfg.zone;
	struct zoneq *z = zone ? zone_of(r, zone) : NULL;
	struct dns_prov_op *op;

	char *canon;

	if (!zone) {
		log_error(rq->cert_name, "dns provider %s: no zone for %s", p->name, rq->fqdn);
		return NULL;
	}
	/* what dns_update() would refuse must not fail a whole batch */
	if (strlen(rq->value) > 255 || !(canon = dns_name_canonical(rq->fqdn))) {
		log_error(rq->cert_name, "dns provider %s: cannot put TXT %.40s%s at %.80s (a value over 255 bytes "
			  "or not a domain name)", p->name, rq->value, strlen(rq->value) > 40 ? "..." : "", rq->fqdn);
		return NULL;
	}
	free(canon);
	if (!z) {
		log_error(rq->cert_name, "dns provider %s: out of memory", p->name);
		return NULL;
	}
	if (!(op = dns_queue_op_new(p, rq, done, arg)))
		return NULL;
	*z->tail = op;
	z->tail = &op->next;
	schedule(z);
	return op;
}

static void rfc_cancel(struct dns_prov *p, struct dns_prov_op *op)
{
	(void)p;
	/* still sent, in its place: a later change of the same record must not overtake it */
	op->canceled = 1;
}

static void rfc_free(struct dns_prov *p)
{
	struct rfc2136 *r = (struct rfc2136 *)p;
	struct zoneq *z, *zn;
	struct dns_prov_op *op, *next;

	for (z = r->zones; z; z = zn) {
		zn = z->next;
		dns_cancel(z->req);
		event_free(z->flush_ev);
		for (op = z->head; op; op = next) {
			next = op->next;
			dns_queue_op_free(op);
		}
		for (op = z->sent; op; op = next) {
			next = op->next;
			dns_queue_op_free(op);
		}
		free(z->zone);
		free(z);
	}
	r->zones = NULL;
	if (r->calling)
		r->dead = 1;            /* freed when updated() is done with its callbacks */
	else
		free(r);
}

static const struct dns_prov_ops rfc2136_ops = {
	.type = "rfc2136",
	.withdraws = 1,
	.change = rfc_change,
	.cancel = rfc_cancel,
	.free = rfc_free,
};

struct dns_prov *dns_rfc2136_new(struct event_base *base, struct dns_client *dc,
				 const struct config_dns_provider *cfg)
{
	struct rfc2136 *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (dns_parse_server(cfg->server, 53, &r->server, &r->len)) {
		log_error(NULL, "dns provider %s: server %s is not an IP address", cfg->name, cfg->server);
		free(r);
		return NULL;
	}
	dns_server_str((const struct sockaddr *)&r->server, r->server_str, sizeof(r->server_str));
	r->p.ops = &rfc2136_ops;
	r->base = base;
	r->dc = dc;
	return &r->p;
}
