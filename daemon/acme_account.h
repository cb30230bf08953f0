/* acme_account.h - the ACME account of a CA on disk (key and account.json) and the newAccount payload. */
#ifndef ACMED_ACME_ACCOUNT_H
#define ACMED_ACME_ACCOUNT_H

#include "config.h"
#include "crypto.h"

/* Load state_dir/accounts/<ca>/account.key, or create it (0600), and the
 * account URL (kid) of account.json when it was made for directory_url
 * (*kid NULL otherwise). */
int acme_account_load(const char *acct_dir, const char *ca_name, const char *directory_url,
		      struct crypto_key **key, char **kid);
int acme_account_save(const char *acct_dir, const char *ca_name, const char *directory_url,
		      const char *kid);
/* {"termsOfServiceAgreed": true, "contact": [...]}, malloc'd; NULL on ENOMEM. */
char *acme_account_payload(const struct config_strv *contact);

#endif
