/* dns_records.h - the TXT records dns-01 has published and not yet removed: shared by answers that need the same one, withdrawn when the last lets go, remembered in state_dir so a crash does not leave them behind. */
#ifndef ACMED_DNS_RECORDS_H
#define ACMED_DNS_RECORDS_H

#include <event2/event.h>

#include "acme_err.h"

struct db;
struct dns_prov;
struct dns_records;
struct dns_record_ref;

/* The record is served by the provider's server (err ACME_ERR_NONE), or why not. Once. */
typedef void (*dns_record_fn)(void *arg, enum acme_err_class err, const char *message);
/* The provider named name, or NULL (no longer configured). */
typedef struct dns_prov *(*dns_records_find_fn)(void *arg, const char *name);
/* No record uses p any more. */
typedef void (*dns_records_idle_fn)(void *arg, struct dns_prov *p);

/* db NULL: nothing remembered (dry runs). */
struct dns_records *dns_records_new(struct event_base *base, struct db *db, dns_records_find_fn find,
				    dns_records_idle_fn idle, void *arg);
/* Read what an earlier run left (records it published and did not remove)
 * and remove them; those whose provider is gone are kept and said in the
 * log. Publishing waits until they are read. */
void dns_records_load(struct dns_records *rs);
/* Try again the records whose provider was gone (after a reload). */
void dns_records_retry(struct dns_records *rs);

struct dns_publish {
	struct dns_prov *prov;
	const char *zone;               /* "example.org.", or NULL */
	const char *fqdn;               /* canonical */
	const char *value;
	const char *identifier;
	const char *cert_name;
};
/* Publish the record (first written to state_dir), or share it when it is
 * published already; cb once it is there or could not be. NULL on ENOMEM. */
struct dns_record_ref *dns_records_publish(struct dns_records *rs, const struct dns_publish *pub, dns_record_fn cb,
					   void *arg);
/* No callback after this; the record is removed when nothing else uses it. NULL ok. */
void dns_records_release(struct dns_record_ref *ref);
/* Records that still use p (published, or being added or removed). */
size_t dns_records_using(const struct dns_records *rs, const struct dns_prov *p);
/* Records being added, published or being removed (not those left for the
 * next start), and 1 more while the list is being written. */
size_t dns_records_busy(const struct dns_records *rs);
/* 1 while a failed removal waits to be tried again (1 min after the first
 * failure, doubling up to 1 h; a reload and the next start try at once). */
int dns_records_retry_pending(const struct dns_records *rs);
/* Records in the set, and how many changes were asked of providers (tests, benchmark). */
size_t dns_records_count(const struct dns_records *rs);
/* Pending changes are dropped (the records stay remembered for the next start). */
void dns_records_free(struct dns_records *rs);

#endif
