/* dns_lookup.c - dns-01's lookups through the resolvers (each tried in turn): CNAMEs from _acme-challenge, the zone by SOA, the zone's name servers and their addresses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dns_lookup.h"
#include "log.h"
#include "store.h"

enum kind { L_TARGET, L_ZONE, L_SERVERS };

/* One lookup under way, shared by every caller asking the same (dns_lookup handles). */
struct job {
	struct job *next;               /* in the resolvers' list */
	enum kind kind;
	struct dns_resolvers *r;
	struct dns_req *req;
	size_t at;                      /* the resolver asked (the last one that answered first) */
	size_t tried;                   /* resolvers that could not say, for this question */
	size_t unknown;                 /* name server addresses no resolver could say */
	uint16_t qtype;
	char qname[256];                /* what is asked */
	char first[256];                /* what the caller asked about */
	int hops;
	char failures[512];             /* what the resolvers said so far */
	/* servers */
	char ns[DNS_LOOKUP_MAX_NS][256];
	size_t nns, ns_at;
	size_t nns_all;                 /* NS records the zone has (more than nns: cut) */
	int addrs_cut;                  /* addresses left out: DNS_LOOKUP_MAX_ADDRS reached */
	struct dns_server out[DNS_LOOKUP_MAX_ADDRS];
	size_t nout;
	struct dns_lookup *waiters;
	int finishing;                  /* telling the waiters: not freed by a cancel */
};

/* What one caller waits for. */
struct dns_lookup {
	struct dns_lookup *next;        /* the job's waiters */
	struct job *job;                /* NULL when answered from the cache */
	struct event *ev;               /* the cache's answer, from the loop */
	enum kind kind;
	char name[256];                 /* cached result */
	struct dns_server out[DNS_LOOKUP_MAX_ADDRS];
	size_t nout;
	dns_lookup_name_fn name_cb;
	dns_lookup_servers_fn servers_cb;
	void *arg;
};

/* Results kept DNS_LOOKUP_CACHE_MS: the wildcard and the base name, and the
 * orders of one zone, ask the same questions within moments. */
#define CACHE_SLOTS 64
struct cached {
	enum kind kind;
	char key[256];
	char name[256];
	struct dns_server out[DNS_LOOKUP_MAX_ADDRS];
	size_t nout;
	int64_t at_ms;
};

struct dns_lookup_state {
	struct job *jobs;
	struct cached cache[CACHE_SLOTS];
	size_t next;
};

int dns_resolvers_set(struct dns_resolvers *r, const char *const *addrs, size_t n, const char *resolv_conf)
{
	if (!r->st && !(r->st = calloc(1, sizeof(*r->st))))
		return -ENOMEM;
	/* new resolvers: nothing they did not say counts (lookups under way finish);
	 * slots never used stay untouched (not resident) */
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (r->st->cache[i].at_ms)
			r->st->cache[i].at_ms = 0;
	r->n = 0;
	for (size_t i = 0; i < n && r->n < 8; i++) {
		if (dns_parse_server(addrs[i], 53, &r->addr[r->n], &r->len[r->n]))
			return -EINVAL;
		r->n++;
	}
	if (n == 0 && resolv_conf) {
		char *text = NULL, *line, *save = NULL;
		size_t len;

		/* resolv.conf(5): "nameserver ADDRESS" lines, at most 3 used by libc; we take 8 */
		if (store_read_file(resolv_conf, &text, &len, 65536) == 0) {
			for (line = strtok_r(text, "\n", &save); line && r->n < 8; line = strtok_r(NULL, "\n", &save)) {
				char word[16], addr[64];

				if (sscanf(line, " %15s %63s", word, addr) == 2 && strcmp(word, "nameserver") == 0 &&
				    dns_parse_server(addr, 53, &r->addr[r->n], &r->len[r->n]) == 0)
					r->n++;
			}
			free(text);
		}
	}
	if (r->n == 0 && dns_parse_server("127.0.0.1", 53, &r->addr[0], &r->len[0]) == 0)
		r->n = 1;
	return 0;
}

int dns_name_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (strcmp(zone, ".") == 0)
		return 1;
	return n >= z && strcasecmp(name + n - z, zone) == 0 && (n == z || name[n - z - 1] == '.');
}

static void job_unlink(struct job *j)
{
	for (struct job **pp = &j->r->st->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

static void deliver(struct dns_lookup *h, enum acme_err_class err, const char *name, const struct dns_server *out,
		    size_t nout, const char *msg)
{
	struct dns_lookup copy = *h;

	if (h->ev)
		event_free(h->ev);
	free(h);
	if (copy.kind == L_SERVERS)
		copy.servers_cb(copy.arg, err, out, nout, msg);
	else
		copy.name_cb(copy.arg, err, name, msg);
}

/* Every waiter hears the result (a callback may cancel other waiters), then
 * the job goes; a result is cached. */
static void job_finish(struct job *j, enum acme_err_class err, const char *name, const char *msg)
{
	struct dns_lookup_state *st = j->r->st;
	struct dns_lookup *h;

	job_unlink(j);
	if (err == ACME_ERR_NONE) {
		struct cached *c = &st->cache[st->next++ % CACHE_SLOTS];

		c->kind = j->kind;
		snprintf(c->key, sizeof(c->key), "%s", j->first);
		snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
		memcpy(c->out, j->out, j->nout * sizeof(c->out[0]));
		c->nout = j->nout;
		c->at_ms = clock_mono_ms();
	}
	j->finishing = 1;
	while ((h = j->waiters)) {
		j->waiters = h->next;
		h->job = NULL;
		deliver(h, err, name, j->out, j->nout, msg);
	}
	free(j);
}

static void finish_name(struct job *l, enum acme_err_class err, const char *name, const char *msg)
{
	char copy[256];

	snprintf(copy, sizeof(copy), "%s", name ? name : "");
	job_finish(l, err, name ? copy : NULL, msg);
}

static void finish_servers(struct job *l, enum acme_err_class err, const char *msg)
{
	job_finish(l, err, NULL, msg);
}

static void fail(struct job *l, enum acme_err_class err, const char *msg)
{
	job_finish(l, err, NULL, msg);
}

static void answered(const struct dns_result *res, void *arg);

static void cached_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *h = arg, copy = *h;

	(void)fd;
	(void)what;
	event_free(h->ev);
	free(h);
	if (copy.kind == L_SERVERS)
		copy.servers_cb(copy.arg, ACME_ERR_NONE, copy.out, copy.nout, NULL);
	else
		copy.name_cb(copy.arg, ACME_ERR_NONE, copy.name, NULL);
}

static int ask(struct job *l)
{
	l->req = dns_query(l->r->client, (const struct sockaddr *)&l->r->addr[l->at], l->r->len[l->at], l->qname,
			   l->qtype, 1, answered, l);
	return l->req ? 0 : -ENOMEM;
}

/* The next question: the same again at the first resolver. */
static void ask_new(struct job *l, const char *name, uint16_t type)
{
	snprintf(l->qname, sizeof(l->qname), "%s", name);
	l->qtype = type;
	l->tried = 0;
	l->failures[0] = '\0';
	if (ask(l) < 0)
		fail(l, ACME_ERR_LOCAL, "out of memory");
}

static const struct dns_rr *find_rr(const struct dns_rr *rr, size_t n, const char *owner, uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if (rr[i].type == type && (!owner || strcasecmp(rr[i].name, owner) == 0))
			return &rr[i];
	return NULL;
}

/* A host name as the TXT record's owner may be: letters, digits, '-' and '_'
 * in labels that do not start with '-'. What a CNAME's owner writes reaches
 * the provider (an exec hook's argv, an UPDATE): nothing else is followed. */
static int name_plain(const char *n)
{
	int start = 1;

	if (!*n || *n == '.')
		return 0;
	for (const char *p = n; *p; p++) {
		if (*p == '.') {
			if (start)
				return 0;       /* an empty label */
			start = 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || (*p == '-' && !start)))
			return 0;
		start = 0;
	}
	return 1;
}

static void target_step(struct job *l, const struct dns_result *res)
{
	const struct dns_rr *cname = find_rr(res->answer, res->nanswer, l->qname, DNS_T_CNAME);
	char msg[600];

	if (!cname || res->rcode != DNS_RCODE_NOERROR) {
		char name[256];

		snprintf(name, sizeof(name), "%s", l->qname);
		finish_name(l, ACME_ERR_NONE, name, NULL);
		return;
	}
	if (strlen(cname->data) >= sizeof(l->qname)) {
		snprintf(msg, sizeof(msg), "%s: a CNAME leads to a name of %zu characters, more than acmed takes",
			 l->first, strlen(cname->data));
		fail(l, ACME_ERR_CERT, msg);
		return;
	}
	if (!name_plain(cname->data)) {
		snprintf(msg, sizeof(msg), "%s: a CNAME leads to \"%.200s\", not a host name (only letters, digits, "
			 "'-' and '_'); acmed publishes nothing there", l->first, cname->data);
		fail(l, ACME_ERR_CERT, msg);
		return;
	}
	if (++l->hops > DNS_LOOKUP_MAX_CNAME) {
		snprintf(msg, sizeof(msg), "%s: more than %d CNAMEs in a row (a loop?); point _acme-challenge "
			 "at the zone the TXT record goes in", l->first, DNS_LOOKUP_MAX_CNAME);
		fail(l, ACME_ERR_CERT, msg);
		return;
	}
	ask_new(l, cname->data, DNS_T_CNAME);
}

static void zone_step(struct job *l, const struct dns_result *res)
{
	const struct dns_rr *soa = find_rr(res->answer, res->nanswer, l->qname, DNS_T_SOA);
	char msg[600];

	if (!soa && (res->rcode == DNS_RCODE_NOERROR || res->rcode == DNS_RCODE_NXDOMAIN)) {
		soa = find_rr(res->authority, res->nauthority, NULL, DNS_T_SOA);
		if (soa && (!dns_name_in_zone(l->qname, soa->name) || strlen(soa->name) >= sizeof(l->qname)))
			soa = NULL;
	}
	if (soa) {
		char zone[256];

		snprintf(zone, sizeof(zone), "%s", soa->name);
		finish_name(l, ACME_ERR_NONE, zone, NULL);
		return;
	}
	/* one label up */
	const char *dot = strchr(l->qname, '.');

	if (!dot || !dot[1]) {
		snprintf(msg, sizeof(msg), "no zone holds %s (no SOA record at or above it); set zone: in the "
			 "DNS provider", l->first);
		fail(l, ACME_ERR_CERT, msg);
		return;
	}
	char up[256];

	snprintf(up, sizeof(up), "%s", dot + 1);
	ask_new(l, up, DNS_T_SOA);
}

static void servers_next(struct job *l)
{
	char msg[600];

	while (l->ns_at < l->nns * 2 && l->nout < DNS_LOOKUP_MAX_ADDRS) {
		size_t i = l->ns_at / 2;

		ask_new(l, l->ns[i], l->ns_at % 2 ? DNS_T_AAAA : DNS_T_A);
		return;
	}
	if (l->nout == 0) {
		snprintf(msg, sizeof(msg), "no address found for the name servers of zone %s (%s%s)%s", l->first,
			 l->ns[0], l->nns > 1 ? ", ..." : "", l->unknown ? ": the resolvers did not answer" : "");
		fail(l, l->unknown ? ACME_ERR_UNAVAILABLE : ACME_ERR_CERT, msg);
		return;
	}
	if (l->nns_all > l->nns)
		log_info(NULL, "dns-01: zone %s has %zu name servers; propagation is checked on the first %d "
			 "(%zu addresses)", l->first, l->nns_all, DNS_LOOKUP_MAX_NS, l->nout);
	else if (l->addrs_cut || l->ns_at < l->nns * 2)
		log_info(NULL, "dns-01: the name servers of zone %s have more than %d addresses; propagation is "
			 "checked on the first %zu", l->first, DNS_LOOKUP_MAX_ADDRS, l->nout);
	finish_servers(l, ACME_ERR_NONE, NULL);
}

static void servers_step(struct job *l, const struct dns_result *res)
{
	char msg[600];

	if (l->qtype == DNS_T_NS) {
		for (size_t i = 0; i < res->nanswer; i++)
			if (res->answer[i].type == DNS_T_NS && strcasecmp(res->answer[i].name, l->first) == 0 &&
			    strlen(res->answer[i].data) < sizeof(l->ns[0]) && l->nns_all++ < DNS_LOOKUP_MAX_NS)
				snprintf(l->ns[l->nns++], sizeof(l->ns[0]), "%s", res->answer[i].data);
		if (l->nns == 0) {
			snprintf(msg, sizeof(msg), "zone %s has no NS records (%s)", l->first,
				 dns_rcode_str(res->rcode));
			fail(l, ACME_ERR_CERT, msg);
			return;
		}
		l->ns_at = 0;
		servers_next(l);
		return;
	}
	size_t nsi = l->ns_at / 2;

	for (size_t i = 0; i < res->nanswer; i++) {
		struct dns_server *s = &l->out[l->nout];

		if (res->answer[i].type != l->qtype)
			continue;
		if (l->nout == DNS_LOOKUP_MAX_ADDRS) {
			l->addrs_cut = 1;
			break;
		}
		if (dns_parse_server(res->answer[i].data, 53, &s->addr, &s->len))
			continue;
		memcpy(s->name, l->ns[nsi], sizeof(s->name));
		l->nout++;
	}
	l->ns_at++;
	servers_next(l);
}

static void answered(const struct dns_result *res, void *arg)
{
	struct job *l = arg;
	size_t used = strlen(l->failures);

	l->req = NULL;
	if (res->status == DNS_ANSWERED && res->rcode != DNS_RCODE_SERVFAIL && res->rcode != DNS_RCODE_REFUSED) {
		if (l->kind == L_TARGET)
			target_step(l, res);
		else if (l->kind == L_ZONE)
			zone_step(l, res);
		else
			servers_step(l, res);
		return;
	}
	/* this resolver could not say: the next one */
	snprintf(l->failures + used, sizeof(l->failures) - used, "%s%s", used ? "; " : "", res->message);
	l->at = (l->at + 1) % l->r->n;
	if (++l->tried < l->r->n) {
		if (ask(l) < 0)
			fail(l, ACME_ERR_LOCAL, "out of memory");
		return;
	}
	if (l->kind == L_SERVERS && l->qtype != DNS_T_NS) {
		/* one name server whose address cannot be had: the others are asked */
		log_debug(NULL, "dns-01: cannot look up %s %s: %s; its other addresses and the other name servers "
			  "are asked", l->qname, l->qtype == DNS_T_A ? "A" : "AAAA", l->failures);
		l->ns_at++;
		l->unknown++;
		servers_next(l);
		return;
	}
	char msg[800];

	snprintf(msg, sizeof(msg), "cannot look up %s %s: %s", l->qname,
		 l->qtype == DNS_T_SOA ? "SOA" : l->qtype == DNS_T_NS ? "NS" : l->qtype == DNS_T_CNAME ? "CNAME" :
		 l->qtype == DNS_T_A ? "A" : "AAAA", l->failures);
	/* REFUSED or SERVFAIL from every resolver is as good as no answer: try again later */
	fail(l, ACME_ERR_UNAVAILABLE, msg);
}

static struct dns_lookup *start(struct dns_resolvers *r, enum kind kind, const char *name, uint16_t type, void *arg)
{
	struct dns_lookup *h = calloc(1, sizeof(*h));
	char *canon = dns_name_canonical(name);
	struct job *j;

	if (!h || !canon || r->n == 0 || !r->st) {
		free(h);
		free(canon);
		return NULL;
	}
	h->kind = kind;
	h->arg = arg;
	/* the same question answered a moment ago */
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		const struct cached *c = &r->st->cache[i];
		struct timeval zero = { 0, 0 };

		if (!c->at_ms || c->kind != kind || strcmp(c->key, canon) ||
		    clock_mono_ms() - c->at_ms >= DNS_LOOKUP_CACHE_MS)
			continue;
		snprintf(h->name, sizeof(h->name), "%s", c->name);
		memcpy(h->out, c->out, c->nout * sizeof(h->out[0]));
		h->nout = c->nout;
		free(canon);
		if (!(h->ev = evtimer_new(r->base, cached_cb, h))) {
			free(h);
			return NULL;
		}
		evtimer_add(h->ev, &zero);
		return h;
	}
	/* ... or being asked now */
	for (j = r->st->jobs; j; j = j->next)
		if (j->kind == kind && strcmp(j->first, canon) == 0)
			break;
	if (!j) {
		if (!(j = calloc(1, sizeof(*j)))) {
			free(h);
			free(canon);
			return NULL;
		}
		j->kind = kind;
		j->r = r;
		snprintf(j->first, sizeof(j->first), "%s", canon);
		snprintf(j->qname, sizeof(j->qname), "%s", canon);
		j->qtype = type;
		if (ask(j) < 0) {
			free(j);
			free(h);
			free(canon);
			return NULL;
		}
		j->next = r->st->jobs;
		r->st->jobs = j;
	}
	free(canon);
	h->job = j;
	h->next = j->waiters;
	j->waiters = h;
	return h;
}

struct dns_lookup *dns_lookup_target(struct dns_resolvers *r, const char *fqdn, dns_lookup_name_fn cb, void *arg)
{
	struct dns_lookup *l = start(r, L_TARGET, fqdn, DNS_T_CNAME, arg);

	if (l)
		l->name_cb = cb;
	return l;
}

struct dns_lookup *dns_lookup_zone(struct dns_resolvers *r, const char *fqdn, dns_lookup_name_fn cb, void *arg)
{
	struct dns_lookup *l = start(r, L_ZONE, fqdn, DNS_T_SOA, arg);

	if (l)
		l->name_cb = cb;
	return l;
}

struct dns_lookup *dns_lookup_servers(struct dns_resolvers *r, const char *zone, dns_lookup_servers_fn cb,
				      void *arg)
{
	struct dns_lookup *l = start(r, L_SERVERS, zone, DNS_T_NS, arg);

	if (l)
		l->servers_cb = cb;
	return l;
}

void dns_lookup_cancel(struct dns_lookup *h)
{
	struct job *j;

	if (!h)
		return;
	if ((j = h->job)) {
		for (struct dns_lookup **pp = &j->waiters; *pp; pp = &(*pp)->next)
			if (*pp == h) {
				*pp = h->next;
				break;
			}
		/* nobody else wants it: stop asking */
		if (!j->waiters && !j->finishing) {
			dns_cancel(j->req);
			job_unlink(j);
			free(j);
		}
	}
	if (h->ev)
		event_free(h->ev);
	free(h);
}

void dns_resolvers_free(struct dns_resolvers *r)
{
	if (!r->st)
		return;
	struct job *j;

	while ((j = r->st->jobs)) {
		if (j->waiters) {
			dns_lookup_cancel(j->waiters);  /* the last one frees and unlinks j */
			continue;
		}
		r->st->jobs = j->next;
		dns_cancel(j->req);
		free(j);
	}
	free(r->st);
	r->st = NULL;
}
