/* config_values.c - single values of a certificate's settings: booleans, a system group, profile names, plain strings. */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

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

/* key_group: a group of this system, looked up now (a missing one is an error here, not at the first renewal). */
int config_get_group(struct ctx *c, const struct node *v, struct config_cert *ct)
{
	struct group gr, *res = NULL;
	long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 4096;
	char *buf = NULL;
	int rc = config_yaml_want_scalar(&c->msg, "key_group", "a group name like ssl-cert", v), e = ERANGE;

	if (rc)
		return rc;
	/* A group with many members needs a larger buffer: grown until it fits. */
	while (e == ERANGE && size <= (1u << 24)) {
		char *b = realloc(buf, size);

		if (!b) {
			free(buf);
			return -ENOMEM;
		}
		buf = b;
		e = getgrnam_r(v->s, &gr, buf, size, &res);
		size *= 2;
	}
	if (e == 0 && res)
		ct->key_gid = res->gr_gid;
	free(buf);
	if (e != 0)
		return cfg_err(c, v, "key_group: cannot look up group %s: %s", Q(v->s), strerror(e));
	if (!res)
		return cfg_err(c, v, "key_group: no group %s on this system (see getent group)", Q(v->s));
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

