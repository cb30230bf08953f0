/* acme.h - one ACME CA on the loop: directory, nonce pool, account, signed requests, problem documents. */
#ifndef ACMED_ACME_H
#define ACMED_ACME_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "acme_client.h"
#include "acme_err.h"
#include "config.h"
#include "crypto.h"


/* Parse body (any bytes). Returns 0 when it is a JSON object (even without
 * "type"), -EINVAL otherwise; p is always left safe to clear. */
int acme_problem_parse(const char *body, size_t len, struct acme_problem *p);
void acme_problem_clear(struct acme_problem *p);
/* Class of a reply from its HTTP status (0 = transport failure) and problem name. */
enum acme_err_class acme_classify(long http_status, const char *problem_name);

struct acme_ca;
struct acme_call;
struct http_client;

struct db;
/* db: where the account key and record are kept (db.h); NULL only for a
 * CA that never signs (tests). state_dir: where the CA's trust store file is
 * made (trust/<ca>.pem, with ca_bundle); NULL: none, curl reads the roots. */
struct acme_ca *acme_ca_new(struct event_base *base, const struct config_ca *ca,
			    const char *state_dir, struct db *db);
void acme_ca_free(struct acme_ca *ca);
/* Settings that need no new CA (same name, directory and ca_bundle): timeout
 * for the next requests, and contact, sent to the CA as an account update when
 * it differs from what the CA has. 0 or -ENOMEM. */
int acme_ca_reconfigure(struct acme_ca *ca, const struct config_ca *cfg);
/* 1 while an account update (contact) is in flight: `run --once` waits for it
 * rather than cut it off at every run. cb runs when one ends and none follows. */
int acme_ca_busy(const struct acme_ca *ca);
void acme_ca_on_idle(struct acme_ca *ca, void (*cb)(void *arg), void *arg);
/* The CA as orders and the scheduler see it (acme_client.h). */
struct acme_client *acme_ca_client(struct acme_ca *ca);
const char *acme_ca_name(const struct acme_ca *ca);
/* Read the account key and record through the store, or make the key (kept
 * before it signs anything); signed calls wait meanwhile. A key that cannot
 * be had fails every signed call with why (logged). 0 or -ENOMEM/-EINVAL. */
int acme_ca_load_account(struct acme_ca *ca);
/* `acmed account rollover` / `deactivate`: cb(arg, 0 or -errno, one line)
 * from the loop once the CA answered (and the new key is kept). The account
 * must be loaded and registered: else -EINVAL and err (cb not called). */
typedef void (*acme_ca_done_fn)(void *arg, int rc, const char *message);
int acme_ca_rollover(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen);
int acme_ca_deactivate(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen);
/* 1 while the account is registered (its URL known). */
int acme_ca_has_account(const struct acme_ca *ca);
const struct crypto_key *acme_ca_account_key(const struct acme_ca *ca);
/* Directory resource URL ("newOrder", "renewalInfo"...), NULL until the
 * directory is loaded or when absent. */
const char *acme_ca_resource(const struct acme_ca *ca, const char *name);

/* How long the CA usually takes to validate an authorization / to issue
 * after finalize, learned from earlier orders (acme_client.h). */
long acme_ca_poll_hint_ms(const struct acme_ca *ca, enum acme_poll_kind kind);
/* observed_ms: from the request (challenge, finalize) to seeing the result;
 * first_look: the result was there at the first poll (or in the answer). */
void acme_ca_poll_learn(struct acme_ca *ca, enum acme_poll_kind kind, long observed_ms,
			int first_look);

/* Requests go through acme_ca_client(): signed POSTs load the directory, get
 * a nonce and register the account first when needed; they are resent on
 * badNonce (up to 5 times, then 3 rounds a second apart) and once after a
 * transport error. A GET of a directory resource that the CA lacks answers
 * status 0, ACME_ERR_INPUT and missing_resource. */

#endif
