/* acme_err.h - the classes of failure that decide how long acmed waits (no library types). */
#ifndef ACMED_ACME_ERR_H
#define ACMED_ACME_ERR_H

/* What kind of failure a reply is: decides how long acmed waits (DESIGN.md
 * "Errors and backoff"). */
enum acme_err_class {
	ACME_ERR_NONE = 0,
	ACME_ERR_UNAVAILABLE,   /* connect/TLS/timeout, 5xx, serverInternal, maintenance */
	ACME_ERR_RATELIMIT,     /* rateLimited (429) */
	ACME_ERR_CERT,          /* this certificate: caa, dns, connection, unauthorized, rejectedIdentifier... */
	ACME_ERR_INPUT,         /* what we sent: malformed, badCSR, unsupportedIdentifier, userActionRequired... */
	ACME_ERR_LOCAL,         /* our side: disk, keys, memory */
};
const char *acme_err_class_name(enum acme_err_class c);

#endif
