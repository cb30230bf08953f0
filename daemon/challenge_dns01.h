/* challenge_dns01.h - the dns-01 solver (RFC 8555 8.4) through the configured DNS providers. */
#ifndef ACMED_CHALLENGE_DNS01_H
#define ACMED_CHALLENGE_DNS01_H

#include <event2/event.h>

#include "challenge.h"
#include "config.h"

struct db;

/* db: where published records are remembered (NULL: nowhere, dry runs).
 * challenge_dns01_configure must follow before the first present. */
struct challenge *challenge_dns01_new(struct event_base *base, struct db *db);
/* The dns: settings and dns_providers (again at each reload: unchanged
 * providers stay, the others are replaced once what they published is
 * removed). resolv_conf: where the system's resolvers are read when
 * dns.resolvers is not set ("/etc/resolv.conf"). 0 or -EINVAL (logged). */
int challenge_dns01_configure(struct challenge *c, const struct config *cfg, const char *resolv_conf);
/* For the benchmark and tests. */
struct dns_client *challenge_dns01_client(struct challenge *c);
/* Records published and not yet removed (a clean stop waits for 0). */
size_t challenge_dns01_pending(struct challenge *c);
/* After the answers were withdrawn: run base until the records are removed,
 * at most timeout_ms (what remains is removed at the next start). */
#define DNS01_DRAIN_MS 10000
void challenge_dns01_drain(struct challenge *c, struct event_base *base, long timeout_ms);

#endif
