/* dns_lookup.h - what dns-01 looks up through the resolvers before and after publishing: where _acme-challenge leads (CNAMEs), the zone (SOA), the zone's name servers and their addresses. */
#ifndef ACMED_DNS_LOOKUP_H
#define ACMED_DNS_LOOKUP_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "acme_err.h"
#include "dns.h"

#define DNS_LOOKUP_MAX_CNAME 8          /* CNAMEs followed from _acme-challenge.<name> */
#define DNS_LOOKUP_MAX_NS 13            /* name servers of a zone asked (as many as the root has) */
#define DNS_LOOKUP_MAX_ADDRS 32         /* addresses of those */

#define DNS_LOOKUP_CACHE_MS 60000       /* a lookup's result is used again this long */

struct dns_lookup_state;

/* The resolvers (dns.resolvers, else /etc/resolv.conf's, else 127.0.0.1),
 * and the lookups under way and their recent results: a lookup asked while
 * the same one is under way waits for it, one answered within
 * DNS_LOOKUP_CACHE_MS is answered again (from the loop). */
struct dns_resolvers {
	struct event_base *base;
	struct dns_client *client;
	struct sockaddr_storage addr[8];
	socklen_t len[8];
	size_t n;
	struct dns_lookup_state *st;
};

/* Set base and client first. From "ip:port" strings (n == 0:
 * /etc/resolv.conf's nameserver lines, else 127.0.0.1:53); the cache is
 * emptied. 0, -EINVAL (a string that is not an address), -ENOMEM. */
int dns_resolvers_set(struct dns_resolvers *r, const char *const *addrs, size_t n, const char *resolv_conf);
/* The lookups still under way are dropped without their callbacks. */
void dns_resolvers_free(struct dns_resolvers *r);

/* One name server of a zone, by one of its addresses. */
struct dns_server {
	char name[256];                 /* "ns1.example.org." */
	struct sockaddr_storage addr;
	socklen_t len;
};

struct dns_lookup;

/* err ACME_ERR_NONE and the result, or why not: ACME_ERR_UNAVAILABLE (no
 * resolver answered), ACME_ERR_CERT (the name's DNS is wrong: a CNAME loop,
 * no zone, no name server), with message. Called from the loop. */
typedef void (*dns_lookup_name_fn)(void *arg, enum acme_err_class err, const char *name, const char *message);
typedef void (*dns_lookup_servers_fn)(void *arg, enum acme_err_class err, const struct dns_server *servers,
				      size_t n, const char *message);

/* Where a TXT record for fqdn must go: fqdn itself, or where its CNAMEs
 * lead (at most DNS_LOOKUP_MAX_CNAME), absolute with the final dot. */
struct dns_lookup *dns_lookup_target(struct dns_resolvers *r, const char *fqdn, dns_lookup_name_fn cb, void *arg);
/* The zone fqdn is in (the owner of the SOA), with the final dot. */
struct dns_lookup *dns_lookup_zone(struct dns_resolvers *r, const char *fqdn, dns_lookup_name_fn cb, void *arg);
/* The zone's name servers (NS) and their addresses (A, AAAA). */
struct dns_lookup *dns_lookup_servers(struct dns_resolvers *r, const char *zone, dns_lookup_servers_fn cb,
				      void *arg);
/* No callback after this. NULL ok. */
void dns_lookup_cancel(struct dns_lookup *l);

/* 1 when name is zone or below it (both canonical). */
int dns_name_in_zone(const char *name, const char *zone);

#endif
