/* acme_account.c - the ACME account of a CA: key and account.json on disk, newAccount registration. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme_internal.h"
#include "crypto.h"
#include "log.h"
#include "store.h"

static int ca_save_account(struct acme_ca *ca)
{
	json_t *j = json_pack("{s:s, s:s}", "directory", ca->directory_url, "kid", ca->kid);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	char *path = store_path(ca->acct_dir, "account.json");
	int rc = -ENOMEM;

	if (s && path)
		rc = store_write_atomic(path, s, strlen(s), 0600);
	if (rc < 0)
		log_error(NULL, "CA %s: cannot save %s: %s", ca->name, path ? path : "account.json",
			  strerror(-rc));
	json_decref(j);
	free(s);
	free(path);
	return rc;
}

static void account_done(const struct acme_reply *reply, void *arg)
{
	struct acme_ca *ca = arg;

	if (reply->err == ACME_ERR_NONE && reply->location && *reply->location) {
		free(ca->kid);
		ca->kid = strdup(reply->location);
		ca->acct_state = ACCT_OK;
		log_info(NULL, "CA %s: account %s %s", ca->name, ca->kid,
			 reply->status == 201 ? "created" : "found");
		ca_save_account(ca);
		acme_ca_kick_waiting(ca);
		return;
	}
	ca->acct_state = ACCT_NONE;
	struct call_failure f = {0};
	f.set = 1;
	f.url = strdup(reply->url ? reply->url : "");
	f.status = reply->status;
	f.err = reply->err == ACME_ERR_NONE ? ACME_ERR_INPUT : reply->err;
	f.retry_after = reply->retry_after;
	f.text = strdup(reply->err_text ? reply->err_text : "newAccount answered without a Location");
	acme_problem_copy(&f.problem, reply->problem);
	log_error(NULL, "CA %s: cannot register the account: %s", ca->name, f.text);
	acme_ca_fail_waiting(ca, &f, 1);
	acme_fail_clear(&f);
}

void acme_ca_register(struct acme_ca *ca)
{
	json_t *p;
	char *payload;
	struct acme_call *call;

	if (ca->acct_state != ACCT_NONE)
		return;
	p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	if (p && json_array_size(ca->contact) > 0)
		json_object_set(p, "contact", ca->contact);
	payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (!payload)
		return;
	call = acme_post(ca, "newAccount", NULL, payload, account_done, ca);
	free(payload);
	if (!call)
		return;
	call->use_jwk = 1;
	call->internal = 1;
	ca->acct_state = ACCT_REGISTERING;
}

int acme_ca_load_account(struct acme_ca *ca)
{
	char *kpath = store_path(ca->acct_dir, "account.key");
	char *jpath = store_path(ca->acct_dir, "account.json");
	char *pem = NULL, *js = NULL;
	size_t len = 0, jlen = 0;
	int rc;

	if (!kpath || !jpath) {
		rc = -ENOMEM;
		goto out;
	}
	rc = store_mkdir_p(ca->acct_dir, 0700);
	if (rc < 0) {
		log_error(NULL, "CA %s: cannot create %s: %s", ca->name, ca->acct_dir, strerror(-rc));
		goto out;
	}
	rc = store_read_file(kpath, &pem, &len, 1 << 20);
	if (rc == 0) {
		rc = crypto_key_from_pem(pem, len, &ca->key);
		if (rc < 0) {
			log_error(NULL, "CA %s: %s is not a usable private key", ca->name, kpath);
			goto out;
		}
	} else if (rc == -ENOENT) {
		rc = crypto_key_generate(KEY_ECDSA_P256, &ca->key);
		if (rc == 0)
			rc = crypto_key_to_pem(ca->key, &pem, &len);
		if (rc == 0)
			rc = store_write_atomic(kpath, pem, len, 0600);
		if (rc < 0) {
			log_error(NULL, "CA %s: cannot create the account key %s: %s", ca->name,
				  kpath, strerror(-rc));
			goto out;
		}
		log_info(NULL, "CA %s: new account key %s", ca->name, kpath);
	} else {
		log_error(NULL, "CA %s: cannot read %s: %s", ca->name, kpath, strerror(-rc));
		goto out;
	}
	if (store_read_file(jpath, &js, &jlen, 1 << 16) == 0) {
		json_t *j = json_loadb(js, jlen, 0, NULL);
		const char *d = json_string_value(json_object_get(j, "directory"));
		const char *k = json_string_value(json_object_get(j, "kid"));
		if (d && k && strcmp(d, ca->directory_url) == 0) {
			ca->kid = strdup(k);
			ca->acct_state = ca->kid ? ACCT_OK : ACCT_NONE;
		}
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

const struct crypto_key *acme_ca_account_key(const struct acme_ca *ca)
{
	return ca->key;
}
