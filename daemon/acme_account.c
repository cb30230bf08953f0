/* acme_account.c - the ACME account record (which directory, which account URL) and the newAccount payload. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme_account.h"

char *acme_account_encode(const char *directory_url, const char *kid, size_t *len)
{
	json_t *j = json_pack("{s:s, s:s}", "directory", directory_url, "kid", kid);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}

int acme_account_decode(const char *data, size_t len, const char *directory_url, char **kid)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	const char *d = json_string_value(json_object_get(j, "directory"));
	const char *k = json_string_value(json_object_get(j, "kid"));
	int rc = 0;

	*kid = NULL;
	if (!json_is_object(j))
		rc = -EINVAL;
	else if (d && k && *k && strcmp(d, directory_url) == 0 && !(*kid = strdup(k)))
		rc = -ENOMEM;
	json_decref(j);
	return rc;
}

char *acme_account_payload(const struct config_strv *contact)
{
	json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1), *c = json_array();
	char *payload = NULL;

	for (size_t i = 0; c && i < contact->n; i++)
		json_array_append_new(c, json_string(contact->v[i]));
	if (p && c && contact->n > 0)
		json_object_set(p, "contact", c);
	if (p && c)
		payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	json_decref(c);
	return payload;
}
