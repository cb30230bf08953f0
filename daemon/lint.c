/* lint.c - what check-config says beyond the syntax: settings that parse but would misbehave. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ca_known.h"
#include "crypto.h"
#include "lint.h"
#include "policy.h"
#include "store.h"
#include "timeparse.h"

/* The lifetime of the certificate in output_dir, else 0. */
static int64_t live_lifetime(const struct config_cert *c)
{
	char *key = NULL, *full = NULL;
	size_t klen = 0, flen = 0;
	struct crypto_cert_info info = {0};
	int64_t lifetime = 0;

	if (store_read_live(c->output_dir, &key, &klen, &full, &flen) == 0 &&
	    crypto_cert_info_pem(full, flen, &info) == 0 && info.not_after > info.not_before)
		lifetime = info.not_after - info.not_before;
	crypto_cert_info_clear(&info);
	crypto_free_secret(key, klen);
	free(full);
	return lifetime;
}

/* renew_before that would renew each new certificate at once (policy.h):
 * said when the lifetime is known, from the live certificate or the CA. */
static int lint_renew_before(const struct config *cfg, const struct config_cert *c, FILE *out)
{
	const struct ca_known *k = ca_known_find(cfg->cas[c->ca].directory);
	int64_t lifetime = live_lifetime(c);
	char rb[16], lt[16], fl[16], whose[160];

	if (c->renew_before == 0)
		return 0;
	if (lifetime)
		snprintf(whose, sizeof(whose), "its certificate in %s lives", c->output_dir);
	else if (k)
		snprintf(whose, sizeof(whose), "certificates of %s usually live", k->label);
	else
		return 0;
	if (!lifetime)
		lifetime = k->lifetime;
	if (policy_renew_before_usable(0, lifetime, c->renew_before))
		return 0;
	fprintf(out, "%s:%d:%d: warning: certificate %s: renew_before %s would renew each new "
		"certificate at once: %s %s, and acmed replaces none younger than %s; it ignores "
		"renew_before and renews when %s of the lifetime is left\n", cfg->path,
		c->renew_before_line, c->renew_before_col, c->name,
		timeparse_format_duration(c->renew_before, rb, sizeof(rb)), whose,
		timeparse_format_duration(lifetime, lt, sizeof(lt)),
		timeparse_format_duration(policy_reissue_floor(0, lifetime), fl, sizeof(fl)),
		lifetime < 10 * POLICY_DAY ? "1/2" : "1/3");
	return 1;
}

int lint_config(const struct config *cfg, FILE *out)
{
	int n = 0;

	for (size_t i = 0; i < cfg->ncerts; i++)
		n += lint_renew_before(cfg, &cfg->certs[i], out);
	return n;
}
