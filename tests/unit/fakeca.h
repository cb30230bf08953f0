/* fakeca.h - an ACME CA in memory behind the acme_client interface, for order and scheduler tests: scripted answers, real certificates. */
#ifndef ACMED_TEST_FAKECA_H
#define ACMED_TEST_FAKECA_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "acme_client.h"

struct fakeca;

/* Answers from the loop (never from inside post/get), like a real CA. */
struct fakeca *fakeca_new(struct event_base *base, const char *name);
void fakeca_free(struct fakeca *f);
struct acme_client *fakeca_client(struct fakeca *f);

/* Every request, in order, as "newOrder", "order 1", "authz 1/0", "challenge 1/0",
 * "finalize 1", "cert 1", "renewalInfo <id>". */
size_t fakeca_nrequests(const struct fakeca *f);
const char *fakeca_request(const struct fakeca *f, size_t i);
/* When it was answered (clock_mono_ms: the fake clock in tests that move it). */
int64_t fakeca_request_ms(const struct fakeca *f, size_t i);
/* How many requests start with prefix ("authz" counts every authorization fetch). */
size_t fakeca_count(const struct fakeca *f, const char *prefix);
/* The payload of the last newOrder, for "replaces" checks. */
const char *fakeca_last_new_order(const struct fakeca *f);
/* Requests still unanswered (posted, not delivered or cancelled). */
size_t fakeca_in_flight(const struct fakeca *f);

/* The next count requests whose description starts with prefix get this
 * answer instead: status 0 is a transport failure; problem an ACME error
 * name ("rateLimited", "serverInternal", "alreadyReplaced"...), optionally
 * followed by ":" and its detail, or NULL. */
void fakeca_fail(struct fakeca *f, const char *prefix, int count, long status, const char *problem,
		 int64_t retry_after);
/* The same, as the failure of a request those waited on (newNonce, the
 * directory, newAccount): acme_reply.relayed. */
void fakeca_fail_relayed(struct fakeca *f, const char *prefix, int count, long status, const char *problem);

/* The validator: after a challenge is answered, the authorization stays
 * pending for `polls` fetches (each answered with Retry-After retry_after
 * when >= 0), then asks check(arg, identifier, token, &keyauth) — 1 valid,
 * 0 invalid ("unauthorized" in the challenge's error). NULL check: valid. */
typedef int (*fakeca_check_fn)(void *arg, const char *identifier, const char *token);
void fakeca_set_validation(struct fakeca *f, int polls, int64_t retry_after, fakeca_check_fn check,
			   void *arg);
/* Orders stay "processing" for this many fetches after finalize. */
void fakeca_set_processing(struct fakeca *f, int polls);
/* Lifetime of the certificates it issues (seconds from the clock's now). */
void fakeca_set_lifetime(struct fakeca *f, int64_t seconds);
/* Issue certificates naming this instead of the CSR's names (a CA gone wrong). */
void fakeca_set_wrong_name(struct fakeca *f, const char *name);
/* Authorizations name this identifier instead of the order's (a CA gone wrong). */
void fakeca_set_foreign_authz(struct fakeca *f, const char *name);
/* The directory has renewalInfo (-1 unknown yet: as before the first request). */
void fakeca_set_ari(struct fakeca *f, int has);
/* renewalInfo answers this window (unix seconds), Retry-After retry_after. */
void fakeca_set_ari_window(struct fakeca *f, int64_t start, int64_t end, int64_t retry_after);
/* Orders created so far. */
size_t fakeca_orders(const struct fakeca *f);
/* The order's URL, for resume tests; NULL when there is no such order. */
const char *fakeca_order_url(const struct fakeca *f, size_t n);

#endif
