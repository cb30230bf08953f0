/* certcheck.c - a certificate from the CA checked before anything installs it: our key, exactly our names, not expired. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certcheck.h"
#include "names.h"

int certcheck_issued(const char *pem, size_t len, const struct crypto_key *key,
		     const struct config_strv *domains, int64_t now, char **leaf, char **chain,
		     int64_t *not_before, int64_t *not_after, const char **why)
{
	struct crypto_cert_info info = {0};
	int rc = -EINVAL;

	*leaf = *chain = NULL;
	*why = NULL;
	if (crypto_chain_split(pem, len, leaf, chain) < 0 ||
	    crypto_cert_info_pem(*leaf, strlen(*leaf), &info) < 0)
		*why = "is not a PEM certificate chain";
	else if (crypto_cert_matches_key(*leaf, strlen(*leaf), key) != 1)
		*why = "does not match the key acmed sent";
	else if (!names_same_set((const char *const *)info.names, info.nnames,
				 (const char *const *)domains->v, domains->n))
		*why = "does not name exactly the configured domains";
	else if (info.not_after <= now)
		*why = "is already expired";
	else
		rc = 0;
	*not_before = info.not_before;
	*not_after = info.not_after;
	crypto_cert_info_clear(&info);
	if (rc < 0) {
		free(*leaf);
		free(*chain);
		*leaf = *chain = NULL;
	}
	return rc;
}
