/* acme_account.h - the ACME account in the store (its key, which directory, which account URL) and the newAccount payload. */
#ifndef ACMED_ACME_ACCOUNT_H
#define ACMED_ACME_ACCOUNT_H

#include <stddef.h>

#include "config.h"

/* The DB_ACCOUNT record: {"directory": ..., "kid": ..., "contact": [...]}
 * (contact: what the CA was last told), malloc'd; NULL on ENOMEM. */
char *acme_account_encode(const char *directory_url, const char *kid,
			  const struct config_strv *contact, size_t *len);
/* *kid: the account URL when the record was made for directory_url, else
 * NULL (another CA behind the same name: register again). contact: filled
 * when the record says what the CA has (*contact_known 1), else left empty
 * (records made before acmed kept it). -EINVAL when the record is not JSON,
 * -ENOMEM. */
int acme_account_decode(const char *data, size_t len, const char *directory_url, char **kid,
			struct config_strv *contact, int *contact_known);
/* The "contact" of an account object the CA sent (absent: none). -EINVAL
 * when body is not a JSON object or contact not an array of at most 64. */
int acme_account_reply_contact(const char *body, size_t len, struct config_strv *contact);
/* {"termsOfServiceAgreed": true, "contact": [...]}, malloc'd; NULL on ENOMEM. */
char *acme_account_payload(const struct config_strv *contact);

struct crypto_key;
struct db;
struct acme_account_load;
/* rc 0: key (taken over) and kid (the account URL, malloc'd; NULL when none
 * is known for this directory: register); contact: what the CA was last told,
 * NULL when the record does not say. rc < 0: why (one line). From the loop,
 * never from inside acme_account_load. */
typedef void (*acme_account_loaded_fn)(void *arg, int rc, struct crypto_key *key, char *kid,
				       const struct config_strv *contact, const char *why);
/* Read the CA's account key and record from db, or make the key and keep it
 * (durably, 0600) before anything may be signed with it. NULL on ENOMEM. */
struct acme_account_load *acme_account_load(struct db *db, const char *ca_name,
					    const char *directory_url, acme_account_loaded_fn done,
					    void *arg);
/* done will not be called. NULL ok. */
void acme_account_load_cancel(struct acme_account_load *l);

struct acme_ca;
/* Keep the account record (the CA's account URL and the contact it has). */
void acme_account_save(struct acme_ca *ca);
/* When the CA's account has another contact than the configured one (the
 * config changed, or the record predates kept contacts): send it as an
 * account update (RFC 8555 7.3.2), once at a time; the record follows when
 * the CA accepts it. Nothing while the account is not registered: the
 * registration carries the configured contact. */
void acme_account_contact_sync(struct acme_ca *ca);
/* Start the newAccount call unless one is under way or the account is known;
 * the waiting calls are kicked or failed when it answers. */
void acme_account_register(struct acme_ca *ca);
/* Tell acme_ca_on_idle's callback when nothing (account load, update) is in flight. */
void acme_ca_idle_check(struct acme_ca *ca);
/* The CA's External Account Binding from its configuration (replaced; none when
 * cfg has no eab). 0 or -ENOMEM. */
int acme_account_eab_set(struct acme_ca *ca, const struct config_ca *cfg);
void acme_account_eab_clear(struct acme_ca *ca);
/* Just before a newAccount request is signed for url: its payload gets the
 * externalAccountBinding when the CA has one; a CA whose directory requires
 * one that is not configured fails with why. 0, or -1 with why set. */
struct acme_call;
int acme_account_eab_apply(struct acme_ca *ca, struct acme_call *call, char *why, size_t whylen);

#endif
