/* dns_lookup.c - dns-01's lookups through the resolvers (each tried in turn): CNAMEs from _acme-challenge, the zone by SOA, the zone's name servers and their addresses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_lookup.h"
#include "store.h"

enum kind { L_TARGET, L_ZONE, L_SERVERS };

struct dns_lookup {
	enum kind kind;
	struct dns_resolvers *r;
	struct dns_req *req;
	size_t at;                      /* the resolver asked */
	uint16_t qtype;
	char qname[256];                /* what is asked */
	char first[256];                /* what the caller asked about */
	int hops;
	char failures[512];             /* what the resolvers said so far */
	/* servers */
	char ns[DNS_LOOKUP_MAX_NS][256];
	size_t nns, ns_at;
	struct dns_server out[DNS_LOOKUP_MAX_ADDRS];
	size_t nout;
	dns_lookup_name_fn name_cb;
	dns_lookup_servers_fn servers_cb;
	void *arg;
};

int dns_resolvers_set(struct dns_resolvers *r, const char *const *addrs, size_t n, const char *resolv_conf)
{
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

static void finish_name(struct dns_lookup *l, enum acme_err_class err, const char *name, const char *msg)
{
	dns_lookup_name_fn cb = l->name_cb;
	void *arg = l->arg;

	free(l);
	cb(arg, err, name, msg);
}

static void finish_servers(struct dns_lookup *l, enum acme_err_class err, const char *msg)
{
	struct dns_lookup copy = *l;

	free(l);
	copy.servers_cb(copy.arg, err, copy.out, copy.nout, msg);
}

static void fail(struct dns_lookup *l, enum acme_err_class err, const char *msg)
{
	if (l->kind == L_SERVERS)
		finish_servers(l, err, msg);
	else
		finish_name(l, err, NULL, msg);
}

static void answered(const struct dns_result *res, void *arg);

static int ask(struct dns_lookup *l)
{
	l->req = dns_query(l->r->client, (const struct sockaddr *)&l->r->addr[l->at], l->r->len[l->at], l->qname,
			   l->qtype, 1, answered, l);
	return l->req ? 0 : -ENOMEM;
}

/* The next question: the same again at the first resolver. */
static void ask_new(struct dns_lookup *l, const char *name, uint16_t type)
{
	snprintf(l->qname, sizeof(l->qname), "%s", name);
	l->qtype = type;
	l->at = 0;
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

static void target_step(struct dns_lookup *l, const struct dns_result *res)
{
	const struct dns_rr *cname = find_rr(res->answer, res->nanswer, l->qname, DNS_T_CNAME);
	char msg[600];

	if (!cname || res->rcode != DNS_RCODE_NOERROR) {
		char name[256];

		snprintf(name, sizeof(name), "%s", l->qname);
		finish_name(l, ACME_ERR_NONE, name, NULL);
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

static void zone_step(struct dns_lookup *l, const struct dns_result *res)
{
	const struct dns_rr *soa = find_rr(res->answer, res->nanswer, l->qname, DNS_T_SOA);
	char msg[600];

	if (!soa && (res->rcode == DNS_RCODE_NOERROR || res->rcode == DNS_RCODE_NXDOMAIN)) {
		soa = find_rr(res->authority, res->nauthority, NULL, DNS_T_SOA);
		if (soa && !dns_name_in_zone(l->qname, soa->name))
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

static void servers_next(struct dns_lookup *l)
{
	char msg[600];

	while (l->ns_at < l->nns * 2 && l->nout < DNS_LOOKUP_MAX_ADDRS) {
		size_t i = l->ns_at / 2;

		ask_new(l, l->ns[i], l->ns_at % 2 ? DNS_T_AAAA : DNS_T_A);
		return;
	}
	if (l->nout == 0) {
		snprintf(msg, sizeof(msg), "no address found for the name servers of zone %s (%s%s)", l->first,
			 l->ns[0], l->nns > 1 ? ", ..." : "");
		fail(l, ACME_ERR_CERT, msg);
		return;
	}
	finish_servers(l, ACME_ERR_NONE, NULL);
}

static void servers_step(struct dns_lookup *l, const struct dns_result *res)
{
	char msg[600];

	if (l->qtype == DNS_T_NS) {
		for (size_t i = 0; i < res->nanswer && l->nns < DNS_LOOKUP_MAX_NS; i++)
			if (res->answer[i].type == DNS_T_NS && strcasecmp(res->answer[i].name, l->first) == 0)
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

	for (size_t i = 0; i < res->nanswer && l->nout < DNS_LOOKUP_MAX_ADDRS; i++) {
		struct dns_server *s = &l->out[l->nout];

		if (res->answer[i].type != l->qtype)
			continue;
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
	struct dns_lookup *l = arg;
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
	if (++l->at < l->r->n) {
		if (ask(l) < 0)
			fail(l, ACME_ERR_LOCAL, "out of memory");
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
	struct dns_lookup *l = calloc(1, sizeof(*l));
	char *canon = dns_name_canonical(name);

	if (!l || !canon || r->n == 0) {
		free(l);
		free(canon);
		return NULL;
	}
	l->kind = kind;
	l->r = r;
	l->arg = arg;
	snprintf(l->first, sizeof(l->first), "%s", canon);
	snprintf(l->qname, sizeof(l->qname), "%s", canon);
	free(canon);
	l->qtype = type;
	if (ask(l) < 0) {
		free(l);
		return NULL;
	}
	return l;
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

void dns_lookup_cancel(struct dns_lookup *l)
{
	if (!l)
		return;
	dns_cancel(l->req);
	free(l);
}
