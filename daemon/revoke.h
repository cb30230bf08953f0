/* revoke.h - RFC 8555 7.6: revoking one certificate with the account key, and the reasons an admin may give. */
#ifndef ACMED_REVOKE_H
#define ACMED_REVOKE_H

#include <stddef.h>

#include "acme_client.h"

/* RFC 5280 5.3.1 CRLReason codes acmed offers (the ones CAs accept from a subscriber). */
#define REVOKE_UNSPECIFIED 0
#define REVOKE_KEY_COMPROMISE 1
#define REVOKE_AFFILIATION_CHANGED 3
#define REVOKE_SUPERSEDED 4
#define REVOKE_CESSATION 5

/* "unspecified", "keyCompromise", "affiliationChanged", "superseded",
 * "cessationOfOperation" (case-insensitive) -> code; -EINVAL otherwise. */
int revoke_reason_parse(const char *name, int *code);
const char *revoke_reason_name(int code);
/* The names, for messages: "unspecified, keyCompromise, ..." */
extern const char revoke_reason_list[];

struct revoke_req;
/* rc 0: revoked (or the CA says it already was: already set); else a
 * negative code and message, one line naming the CA's answer. */
typedef void (*revoke_done_fn)(void *arg, int rc, int already, const char *message);
/* POST revokeCert for the first certificate of cert_pem, signed by the
 * account of ca. cb is called from the loop, unless cancelled. NULL: could
 * not start (not a certificate, no memory). */
struct revoke_req *revoke_start(struct acme_client *ca, const char *cert_pem, size_t len, int reason,
				revoke_done_fn cb, void *arg);
void revoke_cancel(struct revoke_req *r);

#endif
