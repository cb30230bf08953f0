/* challenge_dns01.c - the dns-01 solver: follows _acme-challenge's CNAMEs, finds the zone, publishes the TXT value through the certificate's DNS provider, and says ready once every name server (or resolver) serves it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "challenge_dns01.h"
#include "clock.h"
#include "crypto.h"
#include "dns.h"
#include "dns_lookup.h"
#include "dns_provider.h"
#include "dns_records.h"
#include "log.h"

#define POLL_FIRST_MS 500
#define POLL_MAX_MS 16000
#define MAX_SERVERS DNS_LOOKUP_MAX_ADDRS

struct prov_slot {
	struct prov_slot *next;
	struct dns_prov *p;
	int current;                    /* in the configuration now (else kept while in use) */
};

struct dns01 {
	struct challenge c;
	struct event_base *base;
	struct dns_client *dc;
	struct dns_resolvers res;
	enum config_dns_propagation prop;
	int64_t prop_timeout_ms;
	struct prov_slot *provs;
	struct dns_records *records;
	struct challenge_answer *answers;
	int configured;                 /* once: then the earlier run's records are read */
};

enum step { A_TARGET, A_ZONE, A_PUBLISH, A_SERVERS, A_PROPAGATE, A_READY };

struct server_check {
	struct challenge_answer *a;
	struct dns_server srv;
	struct dns_req *req;
	int ok;                         /* serves the value */
	char said[200];                 /* what it answered last */
	uint32_t kept_s;                /* a resolver's answer without it: the TTL it may keep it for */
};

struct challenge_answer {
	struct challenge_answer *next;
	struct dns01 *s;
	struct dns_prov *prov;
	enum step step;
	char *cert_name, *identifier;
	char fqdn[300];                 /* _acme-challenge.<identifier>. */
	char target[256];               /* where its CNAMEs lead */
	char zone[256];
	char value[64];
	struct dns_lookup *lookup;
	struct dns_record_ref *rec;
	struct server_check chk[MAX_SERVERS];
	size_t nchk, waiting;
	int64_t deadline_ms;
	long interval_ms;
	struct event *timer;
	char *explain;
	challenge_ready_fn ready;
	void *arg;
};

/* ---- providers ---- */

static struct dns_prov *find_current(void *arg, const char *name)
{
	struct dns01 *s = arg;

	for (struct prov_slot *ps = s->provs; ps; ps = ps->next)
		if (ps->current && strcmp(ps->p->name, name) == 0)
			return ps->p;
	return NULL;
}

static size_t answers_using(const struct dns01 *s, const struct dns_prov *p)
{
	size_t n = 0;

	for (const struct challenge_answer *a = s->answers; a; a = a->next)
		n += a->prov == p;
	return n;
}

/* Providers no longer configured go once nothing uses them. */
static void drop_retired(struct dns01 *s)
{
	for (struct prov_slot **pp = &s->provs; *pp;) {
		struct prov_slot *ps = *pp;

		if (!ps->current && !answers_using(s, ps->p) && !dns_records_using(s->records, ps->p)) {
			*pp = ps->next;
			dns_prov_free(ps->p);
			free(ps);
			continue;
		}
		pp = &ps->next;
	}
}

static void prov_idle(void *arg, struct dns_prov *p)
{
	(void)p;
	drop_retired(arg);
}

/* ---- the end of an answer's way ---- */

static void fire(evutil_socket_t fd, short what, void *arg);

static void stop_checks(struct challenge_answer *a)
{
	for (size_t i = 0; i < a->nchk; i++) {
		dns_cancel(a->chk[i].req);
		a->chk[i].req = NULL;
	}
}

/* Tell the order; never from inside present (callers are loop callbacks). */
static void finish(struct challenge_answer *a, enum acme_err_class err, const char *msg)
{
	a->step = A_READY;
	dns_lookup_cancel(a->lookup);
	a->lookup = NULL;
	stop_checks(a);
	evtimer_del(a->timer);
	a->ready(a->arg, err, msg);     /* the order's failure says it (once) */
}

/* ---- propagation ---- */

static void poll_round(struct challenge_answer *a);

static int is_silent(const struct server_check *c)
{
	return !c->ok && strncmp(c->said, "no answer", 9) == 0;
}

/* Every name server serves the value: each has an address that serves it, and
 * none of its addresses answers without it. An address that does not answer
 * at all is passed over when another of the same server does (an IPv6
 * address without an IPv6 route, say). */
static int served_everywhere(const struct challenge_answer *a)
{
	for (size_t i = 0; i < a->nchk; i++) {
		int some_ok = 0;

		for (size_t k = 0; k < a->nchk; k++) {
			if (strcmp(a->chk[k].srv.name, a->chk[i].srv.name))
				continue;
			if (!a->chk[k].ok && !is_silent(&a->chk[k]))
				return 0;
			some_ok |= a->chk[k].ok;
		}
		if (!some_ok)
			return 0;
	}
	return 1;
}

/* Some resolver answered without the value, with a TTL it may keep that for. */
static int cached_without(const struct challenge_answer *a)
{
	for (size_t i = 0; i < a->nchk; i++)
		if (!a->chk[i].ok && a->chk[i].kept_s)
			return 1;
	return 0;
}

/* What each server answered, then what to do; the hint always fits (the list
 * is cut short when there are many servers). */
static void report_timeout(const struct challenge_answer *a, int all_silent, char *msg, size_t size)
{
	const char *hint = all_silent ? " (can acmed reach the zone's name servers on port 53? If not: "
					"dns: {propagation: resolvers})" :
			   a->s->prop == CONFIG_DNS_RESOLVERS && cached_without(a) ?
			   " (a caching resolver answers from its cache until the answer's TTL passes; that the name "
			   "does not exist, for the zone's negative TTL, the SOA's last field: raise "
			   "propagation_timeout above it, or use dns: {propagation: authoritative})" : "";
	size_t room = size - strlen(hint) - 32, used;
	int n = snprintf(msg, room, "TXT at %s (zone %s) not served everywhere after %llds (propagation_timeout):",
			 a->target, a->zone, (long long)(a->s->prop_timeout_ms / 1000));

	used = n > 0 && (size_t)n < room ? (size_t)n : 0;
	for (size_t i = 0; i < a->nchk; i++) {
		char addr[80], item[600];

		dns_server_str((const struct sockaddr *)&a->chk[i].srv.addr, addr, sizeof(addr));
		n = snprintf(item, sizeof(item), "%s %s (%s) %s", i ? ";" : "", a->chk[i].srv.name, addr,
			     a->chk[i].ok ? "serves it" : a->chk[i].said);
		if (n < 0 || used + (size_t)n >= room) {
			used += (size_t)snprintf(msg + used, size - used, "; ... and %zu more", a->nchk - i);
			break;
		}
		memcpy(msg + used, item, (size_t)n + 1);
		used += (size_t)n;
	}
	snprintf(msg + used, size - used, "%s", hint);
}

static void round_over(struct challenge_answer *a)
{
	size_t ok = 0, silent = 0;
	char msg[880];                  /* what the order keeps of a failure (1 KiB) with its prefix */

	for (size_t i = 0; i < a->nchk; i++) {
		ok += a->chk[i].ok;
		silent += is_silent(&a->chk[i]);
	}
	if (served_everywhere(a)) {
		size_t names = 0;

		for (size_t i = 0; i < a->nchk; i++) {
			size_t k = 0;

			while (k < i && strcmp(a->chk[k].srv.name, a->chk[i].srv.name))
				k++;
			names += k == i;
		}
		log_info(a->cert_name, "dns-01 for %s: TXT at %s served by %s (%zu)", a->identifier, a->target,
			 a->s->prop == CONFIG_DNS_RESOLVERS ? "every resolver" : "every name server of the zone",
			 a->s->prop == CONFIG_DNS_RESOLVERS ? a->nchk : names);
		finish(a, ACME_ERR_NONE, NULL);
		return;
	}
	int64_t now = clock_mono_ms();

	if (now < a->deadline_ms) {
		struct timeval tv;
		long wait = a->interval_ms;

		if (now + wait > a->deadline_ms)
			wait = (long)(a->deadline_ms - now);
		tv.tv_sec = wait / 1000;
		tv.tv_usec = (wait % 1000) * 1000;
		a->interval_ms = a->interval_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : a->interval_ms * 2;
		evtimer_add(a->timer, &tv);
		return;
	}
	report_timeout(a, silent && ok + silent == a->nchk, msg, sizeof(msg));
	/* servers that answer without it: the DNS setup's problem; only silence passes */
	finish(a, silent && ok + silent == a->nchk ? ACME_ERR_UNAVAILABLE : ACME_ERR_CERT, msg);
}

static void checked(const struct dns_result *r, void *arg);

static void poll_round(struct challenge_answer *a)
{
	a->waiting = 0;
	for (size_t i = 0; i < a->nchk; i++) {
		struct server_check *c = &a->chk[i];

		if (c->ok)
			continue;
		/* ask the name servers themselves, not for recursion */
		c->req = dns_query(a->s->dc, (const struct sockaddr *)&c->srv.addr, c->srv.len, a->target, DNS_T_TXT,
				   a->s->prop == CONFIG_DNS_RESOLVERS, checked, c);
		if (c->req) {
			a->waiting++;
		} else {
			snprintf(c->said, sizeof(c->said), "cannot be asked (out of memory)");
			c->kept_s = 0;
		}
	}
	if (a->waiting == 0)
		round_over(a);          /* only from a loop callback: the timer or a lookup */
}

static void checked(const struct dns_result *r, void *arg)
{
	struct server_check *c = arg;
	struct challenge_answer *a = c->a;
	size_t others = 0;

	c->req = NULL;
	c->kept_s = 0;
	if (r->status != DNS_ANSWERED) {
		snprintf(c->said, sizeof(c->said), "no answer");
	} else {
		uint32_t ttl = UINT32_MAX;
		char kept[64] = "";

		for (size_t i = 0; i < r->nanswer; i++) {
			if (r->answer[i].type != DNS_T_TXT || strcasecmp(r->answer[i].name, a->target))
				continue;
			if (strcmp(r->answer[i].data, a->value) == 0)
				c->ok = 1;
			else
				others++;
			ttl = r->answer[i].ttl < ttl ? r->answer[i].ttl : ttl;
		}
		/* a resolver's TTLs are what is left of its cache: the TXT set's, or
		 * for a negative answer its SOA's (RFC 2308 5) */
		for (size_t i = 0; !others && i < r->nauthority; i++)
			if (r->authority[i].type == DNS_T_SOA)
				ttl = r->authority[i].ttl;
		if (!c->ok && a->s->prop == CONFIG_DNS_RESOLVERS && ttl != UINT32_MAX && ttl > 0) {
			c->kept_s = ttl;
			snprintf(kept, sizeof(kept), ", an answer it may keep %lu s more", (unsigned long)ttl);
		}
		if (!c->ok)
			snprintf(c->said, sizeof(c->said), "answers %s without it%s%zu other TXT value%s%s%s",
				 dns_rcode_str(r->rcode), others ? " (" : "", others, others == 1 ? "" : "s",
				 others ? ")" : "", kept);
		if (!c->ok && !others)
			snprintf(c->said, sizeof(c->said), "answers %s without it%s", dns_rcode_str(r->rcode), kept);
	}
	if (--a->waiting == 0)
		round_over(a);
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	poll_round(arg);
}

static void start_checks(struct challenge_answer *a, const struct dns_server *srv, size_t n)
{
	a->nchk = n > MAX_SERVERS ? MAX_SERVERS : n;
	for (size_t i = 0; i < a->nchk; i++) {
		memset(&a->chk[i], 0, sizeof(a->chk[i]));
		a->chk[i].a = a;
		a->chk[i].srv = srv[i];
	}
	a->step = A_PROPAGATE;
	a->deadline_ms = clock_mono_ms() + a->s->prop_timeout_ms;
	a->interval_ms = POLL_FIRST_MS;
	poll_round(a);
}

static void got_servers(void *arg, enum acme_err_class err, const struct dns_server *srv, size_t n, const char *msg)
{
	struct challenge_answer *a = arg;

	a->lookup = NULL;
	if (err != ACME_ERR_NONE) {
		finish(a, err, msg);
		return;
	}
	start_checks(a, srv, n);
}

static void check_propagation(struct challenge_answer *a)
{
	struct dns01 *s = a->s;
	struct dns_server rs[8];

	if (s->prop == CONFIG_DNS_NONE) {
		finish(a, ACME_ERR_NONE, NULL);
		return;
	}
	if (s->prop == CONFIG_DNS_RESOLVERS) {
		for (size_t i = 0; i < s->res.n; i++) {
			snprintf(rs[i].name, sizeof(rs[i].name), "resolver %zu", i + 1);
			rs[i].addr = s->res.addr[i];
			rs[i].len = s->res.len[i];
		}
		start_checks(a, rs, s->res.n);
		return;
	}
	a->step = A_SERVERS;            /* shared with the answers asking the same (dns_lookup.c) */
	if (!(a->lookup = dns_lookup_servers(&s->res, a->zone, got_servers, a)))
		finish(a, ACME_ERR_LOCAL, "out of memory");
}

/* ---- publishing ---- */

static void published(void *arg, enum acme_err_class err, const char *msg)
{
	struct challenge_answer *a = arg;

	if (err != ACME_ERR_NONE) {
		finish(a, err, msg);
		return;
	}
	log_info(a->cert_name, "dns-01 for %s: TXT published at %s through dns provider %s", a->identifier,
		 a->target, a->prov->name);
	check_propagation(a);
}

static void publish(struct challenge_answer *a)
{
	struct dns_publish pub = { .prov = a->prov, .zone = a->zone[0] ? a->zone : NULL, .fqdn = a->target,
				   .value = a->value, .identifier = a->identifier, .cert_name = a->cert_name };

	a->step = A_PUBLISH;
	if (!(a->rec = dns_records_publish(a->s->records, &pub, published, a)))
		finish(a, ACME_ERR_LOCAL, "out of memory");
}

static void got_zone(void *arg, enum acme_err_class err, const char *zone, const char *msg)
{
	struct challenge_answer *a = arg;

	a->lookup = NULL;
	if (err != ACME_ERR_NONE) {
		finish(a, err, msg);
		return;
	}
	snprintf(a->zone, sizeof(a->zone), "%s", zone);
	publish(a);
}

/* The configured zone when the target is in it, else the SOA's. */
static void find_zone(struct challenge_answer *a)
{
	const char *z = a->prov->cfg.zone;

	if (z) {
		char canon[256];

		snprintf(canon, sizeof(canon), "%s.", z);
		if (dns_name_in_zone(a->target, canon)) {
			snprintf(a->zone, sizeof(a->zone), "%s", canon);
			publish(a);
			return;
		}
	}
	a->step = A_ZONE;
	if (!(a->lookup = dns_lookup_zone(&a->s->res, a->target, got_zone, a)))
		finish(a, ACME_ERR_LOCAL, "out of memory");
}

static void got_target(void *arg, enum acme_err_class err, const char *name, const char *msg)
{
	struct challenge_answer *a = arg;

	a->lookup = NULL;
	if (err != ACME_ERR_NONE) {
		finish(a, err, msg);
		return;
	}
	snprintf(a->target, sizeof(a->target), "%s", name);
	if (strcasecmp(a->target, a->fqdn))
		log_info(a->cert_name, "dns-01 for %s: %s is a CNAME to %s; the TXT record goes there",
			 a->identifier, a->fqdn, a->target);
	find_zone(a);
}

/* ---- the challenge interface ---- */

static int dns01_supports(struct challenge *c, const char *id_type, const char *identifier, int wildcard)
{
	(void)c;
	(void)identifier;
	(void)wildcard;
	return strcmp(id_type, "dns") == 0;
}

static void answer_free(struct challenge_answer *a)
{
	free(a->cert_name);
	free(a->identifier);
	free(a->explain);
	if (a->timer)
		event_free(a->timer);
	free(a);
}

static int dns01_present(struct challenge *c, const struct challenge_request *rq, struct challenge_answer **out)
{
	struct dns01 *s = c->impl;
	struct dns_prov *p = rq->dns_provider ? find_current(s, rq->dns_provider) : NULL;
	struct challenge_answer *a = calloc(1, sizeof(*a));
	unsigned char digest[32];
	char *v;

	*out = NULL;
	if (!p) {
		log_error(rq->cert_name, "dns-01 for %s: no dns provider %s", rq->identifier,
			  rq->dns_provider ? rq->dns_provider : "(none set)");
		free(a);
		return -EINVAL;
	}
	if (!a || !rq->key_authorization || !(a->cert_name = strdup(rq->cert_name)) ||
	    !(a->identifier = strdup(rq->identifier)) || !(a->timer = evtimer_new(s->base, fire, a))) {
		log_error(rq->cert_name, "dns-01 for %s: out of memory", rq->identifier);
		if (a)
			answer_free(a);
		return -ENOMEM;
	}
	/* RFC 8555 8.4: base64url(SHA-256(key authorization)) at _acme-challenge.<name> */
	crypto_sha256(rq->key_authorization, strlen(rq->key_authorization), digest);
	if (!(v = crypto_b64url_encode(digest, sizeof(digest)))) {
		log_error(rq->cert_name, "dns-01 for %s: out of memory", rq->identifier);
		answer_free(a);
		return -ENOMEM;
	}
	snprintf(a->value, sizeof(a->value), "%s", v);
	free(v);
	snprintf(a->fqdn, sizeof(a->fqdn), "_acme-challenge.%s.", rq->identifier);
	a->s = s;
	a->prov = p;
	a->ready = rq->ready;
	a->arg = rq->arg;
	a->step = A_TARGET;
	if (!(a->lookup = dns_lookup_target(&s->res, a->fqdn, got_target, a))) {
		log_error(rq->cert_name, "dns-01 for %s: cannot look up %s", rq->identifier, a->fqdn);
		answer_free(a);
		return -ENOMEM;
	}
	a->next = s->answers;
	s->answers = a;
	*out = a;
	return 0;
}

static const char *dns01_explain(struct challenge *c, struct challenge_answer *a)
{
	(void)c;
	free(a->explain);
	a->explain = NULL;
	if (a->target[0] && asprintf(&a->explain, "the CA looked for TXT \"%s\" at %s%s%s%s", a->value, a->target,
				     strcasecmp(a->target, a->fqdn) ? " (where " : "",
				     strcasecmp(a->target, a->fqdn) ? a->fqdn : "",
				     strcasecmp(a->target, a->fqdn) ? " leads)" : "") < 0)
		a->explain = NULL;
	return a->explain;
}

static void dns01_cleanup(struct challenge *c, struct challenge_answer *a)
{
	struct dns01 *s = c->impl;

	for (struct challenge_answer **pp = &s->answers; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	dns_lookup_cancel(a->lookup);
	stop_checks(a);
	/* the record goes when no other answer shares it */
	dns_records_release(a->rec);
	answer_free(a);
	drop_retired(s);
}

static void dns01_free(struct challenge *c)
{
	struct dns01 *s = c->impl;

	while (s->answers)
		dns01_cleanup(c, s->answers);
	dns_records_free(s->records);
	dns_resolvers_free(&s->res);
	while (s->provs) {
		struct prov_slot *ps = s->provs;

		s->provs = ps->next;
		dns_prov_free(ps->p);
		free(ps);
	}
	dns_client_free(s->dc);
	free(s);
}

static const struct challenge_type dns01_type = {
	.name = "dns-01",
	.explain = dns01_explain,
	.supports = dns01_supports,
	.present = dns01_present,
	.cleanup = dns01_cleanup,
	.free = dns01_free,
};

int challenge_dns01_configure(struct challenge *c, const struct config *cfg, const char *resolv_conf)
{
	struct dns01 *s = c->impl;

	if (dns_resolvers_set(&s->res, (const char *const *)cfg->dns.resolvers.v, cfg->dns.resolvers.n,
			      resolv_conf))
		return -EINVAL;
	s->prop = cfg->dns.propagation;
	s->prop_timeout_ms = cfg->dns.propagation_timeout * 1000;
	/* a provider whose settings are unchanged stays (its batches and records with it) */
	for (struct prov_slot *ps = s->provs; ps; ps = ps->next) {
		const struct config_dns_provider *np = config_find_dns_provider(cfg, ps->p->name);

		if (ps->current && (!np || !config_dns_provider_same(np, &ps->p->cfg)))
			ps->current = 0;
	}
	for (size_t i = 0; i < cfg->ndns_providers; i++) {
		const struct config_dns_provider *np = &cfg->dns_providers[i];
		struct prov_slot *ps;

		if (find_current(s, np->name))
			continue;
		if (!(ps = calloc(1, sizeof(*ps))) || !(ps->p = dns_prov_new(s->base, s->dc, np, cfg->runtime_dir))) {
			free(ps);
			return -EINVAL;         /* logged */
		}
		ps->current = 1;
		ps->next = s->provs;
		s->provs = ps;
	}
	drop_retired(s);
	if (!s->configured)
		dns_records_load(s->records);
	else
		dns_records_retry(s->records);
	s->configured = 1;
	return 0;
}

struct challenge *challenge_dns01_new(struct event_base *base, struct db *db)
{
	struct dns01 *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->c.type = &dns01_type;
	s->c.impl = s;
	s->base = base;
	s->prop_timeout_ms = 120000;
	if (!(s->dc = dns_client_new(base)) ||
	    !(s->records = dns_records_new(base, db, find_current, prov_idle, s))) {
		dns_client_free(s->dc);
		free(s);
		return NULL;
	}
	s->res.client = s->dc;
	s->res.base = base;
	return &s->c;
}

struct dns_client *challenge_dns01_client(struct challenge *c)
{
	return ((struct dns01 *)c->impl)->dc;
}

size_t challenge_dns01_pending(struct challenge *c)
{
	return dns_records_busy(((struct dns01 *)c->impl)->records);
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct challenge *c = arg;

	(void)fd;
	(void)what;
	if (challenge_dns01_pending(c) == 0)
		event_base_loopbreak(((struct dns01 *)c->impl)->base);
}

void challenge_dns01_drain(struct challenge *c, struct event_base *base, long timeout_ms)
{
	size_t n = challenge_dns01_pending(c);
	struct timeval tick = { 0, 50000 }, limit = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct event *check, *stop;

	if (n == 0)
		return;
	log_info(NULL, "dns-01: removing %zu DNS record%s before stopping", n, n == 1 ? "" : "s");
	check = event_new(base, -1, EV_PERSIST, drain_check, c);
	stop = evtimer_new(base, drain_check, c);
	if (!check || !stop) {
		if (check)
			event_free(check);
		if (stop)
			event_free(stop);
		return;
	}
	/* the loop's other events go on meanwhile; a timer looks at what is left */
	event_add(check, &tick);
	event_add(stop, &limit);
	while (challenge_dns01_pending(c) > 0 && evtimer_pending(stop, NULL))
		event_base_loop(base, EVLOOP_ONCE);
	if ((n = challenge_dns01_pending(c)) > 0)
		log_warn(NULL, "dns-01: %zu DNS record%s not removed yet; the next start removes %s", n,
			 n == 1 ? "" : "s", n == 1 ? "it" : "them");
	event_free(check);
	event_free(stop);
}
