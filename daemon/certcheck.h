/* certcheck.h - a certificate from the CA checked before anything installs it: our key, exactly our names, not expired. */
#ifndef ACMED_CERTCHECK_H
#define ACMED_CERTCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "crypto.h"

/* pem: what the CA's certificate URL answered (leaf then issuers). On
 * success *leaf and *chain (the issuers, maybe "") are malloc'd PEM and
 * *not_before and *not_after the dates of the leaf. -EINVAL with *why (a phrase to
 * follow "certificate from <url>") when it is not what was ordered; -ENOMEM. */
int certcheck_issued(const char *pem, size_t len, const struct crypto_key *key,
		     const struct config_strv *domains, int64_t now, char **leaf, char **chain,
		     int64_t *not_before, int64_t *not_after, const char **why);

#endif
