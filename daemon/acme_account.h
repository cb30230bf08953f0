/* acme_account.h - the ACME account record (which directory, which account URL) and the newAccount payload. */
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

#endif
