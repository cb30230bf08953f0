/* acme_account.c - the ACME account of a CA on disk (key and account.json) and the newAccount payload. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme_account.h"
#include "crypto.h"
#include "log.h"
#include "store.h"

int acme_account_save(const char *acct_dir, const char *ca_name, const char *directory_url,
		      const char *kid)
{
	json_t *j = json_pack("{s:s, s:s}", "directory", directory_url, "kid", kid);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	char *path = store_path(acct_dir, "account.json");
	int rc = -ENOMEM;

	if (s && path)
		rc = store_write_atomic(path, s, strlen(s), 0600);
	if (rc < 0)
		log_error(NULL, "CA %s: cannot save %s: %s", ca_name, path ? path : "account.json",
			  strerror(-rc));
	json_decref(j);
	free(s);
	free(path);
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

int acme_account_load(const char *acct_dir, const char *ca_name, const char *directory_url,
		      struct crypto_key **key, char **kid)
{
	char *kpath = store_path(acct_dir, "account.key");
	char *jpath = store_path(acct_dir, "account.json");
	char *pem = NULL, *js = NULL;
	size_t len = 0, jlen = 0;
	int rc;

	*key = NULL;
	*kid = NULL;
	if (!kpath || !jpath) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_mkdir_p(acct_dir, 0700);
	if (rc < 0) {
		log_error(NULL, "CA %s: cannot create %s: %s", ca_name, acct_dir, strerror(-rc));
		goto out;
	}
	rc = store_read_file(kpath, &pem, &len, 1 << 20);
	if (rc == 0) {
		rc = crypto_key_from_pem(pem, len, key);
		if (rc < 0) {
			log_error(NULL, "CA %s: %s is not a usable private key", ca_name, kpath);
			goto out;
		}
	} else if (rc == -ENOENT) {
		rc = crypto_key_generate(KEY_ECDSA_P256, key);
		if (rc == 0)
			rc = crypto_key_to_pem(*key, &pem, &len);
		if (rc == 0)
			rc = store_write_atomic(kpath, pem, len, 0600);
		if (rc < 0) {
			log_error(NULL, "CA %s: cannot create the account key %s: %s", ca_name,
				  kpath, strerror(-rc));
			crypto_key_free(*key);
			*key = NULL;
			goto out;
		}
		log_info(NULL, "CA %s: new account key %s", ca_name, kpath);
	} else {
		log_error(NULL, "CA %s: cannot read %s: %s", ca_name, kpath, strerror(-rc));
		goto out;
	}
	if (store_read_file(jpath, &js, &jlen, 1 << 16) == 0) {
		json_t *j = json_loadb(js, jlen, 0, NULL);
		const char *d = json_string_value(json_object_get(j, "directory"));
		const char *k = json_string_value(json_object_get(j, "kid"));
		if (d && k && strcmp(d, directory_url) == 0)
			*kid = strdup(k);
		json_decref(j);
	}
	rc = 0;
out:
	crypto_free_secret(pem, len);
	free(js);
	free(kpath);
	free(jpath);
	return rc;
}
