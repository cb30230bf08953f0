/* acme_account.h - the ACME account in the store (its key, which directory, which account URL) and the newAccount payload. */
#ifndef ACMED_ACME_ACCOUNT_H
#define ACMED_ACME_ACCOUNT_H

#include <stddef.h>

#include "config.h"

/* The DB_ACCOUNT record: {"directory": ..., "kid": ...}, malloc'd; NULL on ENOMEM. */
char *acme_account_encode(const char *directory_url, const char *kid, size_t *len);
/* *kid: the account URL when the record was made for directory_url, else
 * NULL (another CA behind the same name: register again). -EINVAL when the
 * record is not JSON, -ENOMEM. */
int acme_account_decode(const char *data, size_t len, const char *directory_url, char **kid);
/* {"termsOfServiceAgreed": true, "contact": [...]}, malloc'd; NULL on ENOMEM. */
char *acme_account_payload(const struct config_strv *contact);

struct crypto_key;
struct db;
struct acme_account_load;
/* rc 0: key (taken over) and kid (the account URL, malloc'd; NULL when none
 * is known for this directory: register). rc < 0: why (one line). From the
 * loop, never from inside acme_account_load. */
typedef void (*acme_account_loaded_fn)(void *arg, int rc, struct crypto_key *key, char *kid,
				       const char *why);
/* Read the CA's account key and record from db, or make the key and keep it
 * (durably, 0600) before anything may be signed with it. NULL on ENOMEM. */
struct acme_account_load *acme_account_load(struct db *db, const char *ca_name,
					    const char *directory_url, acme_account_loaded_fn done,
					    void *arg);
/* done will not be called. NULL ok. */
void acme_account_load_cancel(struct acme_account_load *l);

#endif
