/* config_eab.c - a CA's eab: (External Account Binding, RFC 8555 7.3.4): its kid, MAC algorithm and key file, the key decoded tolerantly. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "crypto.h"
#include "store.h"

#define EAB_FILE_MAX 4096

enum { E_KID, E_KEY_FILE, E_ALG, E_NKEYS };
static const char *const eab_keys[] = { "kid", "hmac_key_file", "alg" };

int config_eab_key_decode(const char *text, size_t len, unsigned char **key, size_t *keylen)
{
	char *s = malloc(len + 1);
	size_t n = 0;
	int rc;

	*key = NULL;
	*keylen = 0;
	if (!s)
		return -ENOMEM;
	/* CAs hand the key out as base64url (ZeroSSL, Google) or standard base64
	 * (some portals), with or without padding, often with a newline. */
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
			continue;
		s[n++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
	}
	while (n > 0 && s[n - 1] == '=')
		n--;
	rc = n ? crypto_b64url_decode(s, n, key, keylen) : -EINVAL;
	crypto_free_secret(s, len + 1);
	if (rc == 0 && *keylen == 0)
		rc = -EINVAL;
	if (rc < 0) {
		crypto_free_secret(*key, *keylen);
		*key = NULL;
		*keylen = 0;
	}
	return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

void config_eab_clear(struct config_ca *ca)
{
	free(ca->eab_kid);
	crypto_free_secret(ca->eab_key, ca->eab_key_len);
	free(ca->eab_key_file);
	ca->eab_kid = NULL;
	ca->eab_key = NULL;
	ca->eab_key_len = 0;
	ca->eab_key_file = NULL;
	ca->eab_alg = NULL;
}

static int read_key(struct ctx *c, const struct node *v, struct config_ca *ca)
{
	char *text = NULL;
	size_t len = 0;
	int rc = store_read_file(ca->eab_key_file, &text, &len, EAB_FILE_MAX);

	if (rc == -EFBIG)
		return cfg_err(c, v, "eab: hmac_key_file %s: larger than %d bytes; expected the CA's MAC key "
			       "(base64)", ca->eab_key_file, EAB_FILE_MAX);
	if (rc < 0)
		return rc == -ENOMEM ? rc : cfg_err(c, v, "eab: hmac_key_file %s: %s", ca->eab_key_file,
						    strerror(-rc));
	size_t blank = 0;

	while (blank < len && strchr(" \t\r\n", text[blank]))
		blank++;
	/* "-----BEGIN ..." decodes as base64url too: a PEM file is a mistake, not a key */
	rc = strstr(text, "-----BEGIN") ? -EINVAL :
	     config_eab_key_decode(text, len, &ca->eab_key, &ca->eab_key_len);
	if (rc == -EINVAL && strstr(text, "-----BEGIN"))
		blank = SIZE_MAX;
	crypto_free_secret(text, len);
	/* Never the key itself in a message: only what is wrong with it. */
	if (rc == -EINVAL)
		return cfg_err(c, v, "eab: hmac_key_file %s %s; expected the MAC key the CA gave, in base64url "
			       "or standard base64 (padded or not)", ca->eab_key_file,
			       blank == len ? "is empty" : blank == SIZE_MAX ? "is a PEM file" : "is not base64");
	return rc;
}

int config_parse_eab(struct ctx *c, const struct node *v, struct config_ca *ca)
{
	const struct node *e[E_NKEYS];
	int rc;

	if (v->type != NODE_MAP)
		return cfg_err(c, v, "eab: expected a mapping with kid and hmac_key_file, got %s", GOT(v));
	if ((rc = config_yaml_map_keys(&c->msg, v, "in eab", eab_keys, E_NKEYS, e)))
		return rc;
	if (!e[E_KID] || !e[E_KEY_FILE])
		return cfg_err(c, v, "eab: missing required key \"%s\"", e[E_KID] ? "hmac_key_file" : "kid");
	if ((rc = config_yaml_want_scalar(&c->msg, "eab: kid", "the key identifier the CA gave",
					  e[E_KID])))
		return rc;
	if (!(ca->eab_kid = strdup(e[E_KID]->s)))
		return -ENOMEM;
	ca->eab_alg = "HS256";
	if (e[E_ALG]) {
		static const char *const algs[] = { "HS256", "HS384", "HS512" };
		size_t i = 0;

		if ((rc = config_yaml_want_scalar(&c->msg, "eab: alg", "HS256, HS384 or HS512", e[E_ALG])))
			return rc;
		while (i < 3 && strcmp(algs[i], e[E_ALG]->s) != 0)
			i++;
		if (i == 3)
			return cfg_err(c, e[E_ALG], "eab: alg: expected HS256, HS384 or HS512, got %s",
				       GOT(e[E_ALG]));
		ca->eab_alg = algs[i];
	}
	if ((rc = config_get_path(c, "eab: hmac_key_file", e[E_KEY_FILE], &ca->eab_key_file)))
		return rc;
	ca->eab_line = e[E_KEY_FILE]->line;
	ca->eab_col = e[E_KEY_FILE]->col;
	return read_key(c, e[E_KEY_FILE], ca);
}
