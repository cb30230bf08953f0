/* challenge_persist.h - the dns-persist-01 solver: a TXT record the admin publishes once; acmed only tells the CA to look. */
#ifndef ACMED_CHALLENGE_PERSIST_H
#define ACMED_CHALLENGE_PERSIST_H

#include <event2/event.h>

#include "challenge.h"

struct challenge *challenge_persist_new(struct event_base *base);
/* The record the CA looks for (draft-ietf-acme-dns-persist):
 * `_validation-persist.IDENT. IN TXT "ISSUER; accounturi=URI[; policy=wildcard]"`,
 * malloc'd; NULL on ENOMEM. */
char *challenge_persist_record(const char *identifier, const char *issuer, const char *account_uri,
			       int wildcard);

#endif
