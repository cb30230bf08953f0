/* config_values.c - single values of a certificate's settings: booleans, a system group, profile names, plain strings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "ident.h"

int config_get_str(struct ctx *c, const char *key, const char *what, const struct node *v, char **out)
{
	int rc = config_yaml_want_scalar(&c->msg, key, what, v);

	return rc ? rc : (*out = strdup(v->s)) ? 0 : -ENOMEM;
}

/* true or false (YAML 1.1's yes/no/on/off are refused: a typo must not read as a choice). */
int config_get_bool(struct ctx *c, const char *key, const struct node *v, int *out)
{
	int rc = config_yaml_want_scalar(&c->msg, key, "true or false", v);

	if (rc)
		return rc;
	if (strcmp(v->s, "true") && strcmp(v->s, "false"))
		return cfg_err(c, v, "%s: expected true or false, got %s", key, GOT(v));
	*out = strcmp(v->s, "true") == 0;
	return 0;
}

/* key_group: a group name; whether the system has it is looked up off the event
 * loop (NSS may ask a network directory): by check-config, and at each install. */
int config_get_group(struct ctx *c, const struct node *v, struct config_cert *ct)
{
	int rc = config_yaml_want_scalar(&c->msg, "key_group", "a group name like ssl-cert", v);
	size_t n = rc ? 0 : strlen(v->s);

	if (rc)
		return rc;
	if (n == 0 || n > 256 || strchr(v->s, ':') || strchr(v->s, '/'))
		return cfg_err(c, v, "key_group: expected a group name like ssl-cert, got %s", GOT(v));
	ct->key_group_line = v->line;
	ct->key_group_col = v->col;
	return (ct->key_group = strdup(v->s)) ? 0 : -ENOMEM;
}

/* profile: a name the CA lists in its directory's meta.profiles (checked when it is reached). */
int config_get_profile(struct ctx *c, const struct node *v, char **out)
{
	int rc = config_yaml_want_scalar(&c->msg, "profile", "a profile name like tlsserver", v);
	size_t n = rc ? 0 : strlen(v->s);

	if (rc)
		return rc;
	if (n == 0 || n > CFG_MAX_NAME || strspn(v->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						     "0123456789._-") != n)
		return cfg_err(c, v, "profile: expected a profile name (letters, digits, '.', '_', '-'; at most "
			       "%d), got %s", CFG_MAX_NAME, GOT(v));
	return (*out = strdup(v->s)) ? 0 : -ENOMEM;
}

int config_get_challenge(struct ctx *c, const struct node *v, const struct node *webroot,
			 const struct node *domains, struct config_cert *ct)
{
	static const char *const known[] = { "http-01", "dns-01", "tls-alpn-01", "dns-persist-01" };
	const char *name = v && v->type == NODE_SCALAR ? v->s : "http-01";
	int dns = strcmp(name, "dns-01") == 0 || strcmp(name, "dns-persist-01") == 0;
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]) && strcmp(name, known[i]); i++)
		;
	if (v && (v->type != NODE_SCALAR || i == sizeof(known) / sizeof(known[0])))
		return cfg_err(c, v, "challenge: expected \"http-01\", \"dns-01\", \"tls-alpn-01\" or "
			       "\"dns-persist-01\", got %s", GOT(v));
	if (webroot && strcmp(name, "http-01") != 0)
		return cfg_err(c, webroot, "webroot: only with the http-01 challenge (this certificate uses %s)",
			       name);
	/* A wildcard needs a DNS challenge; an address cannot have one (RFC 8738 7). */
	for (i = 0; domains && domains->type == NODE_SEQ && i < ct->domains.n && i < domains->n; i++) {
		const char *d = ct->domains.v[i];

		if (!dns && strncmp(d, "*.", 2) == 0)
			return cfg_err(c, domains->kids[i], "domains: %s: a wildcard needs a DNS challenge: "
				       "challenge: dns-01 (with a dns_provider) or dns-persist-01", Q(d));
		if (dns && strcmp(ident_type(d), "ip") == 0)
			return cfg_err(c, domains->kids[i], "domains: %s: an IP address cannot be validated by "
				       "%s (http-01 or tls-alpn-01 can)", Q(d), name);
	}
	return (ct->challenge = strdup(name)) ? 0 : -ENOMEM;
}
