/* acme_account.c - the ACME account in the store (its key, which directory, which account URL) and the newAccount payload. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme_account.h"
#include "crypto.h"
#include "db.h"
#include "log.h"

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

/* ---------- reading (or making) the account through the store ---------- */

struct acme_account_load {
	struct db *db;
	char *name, *directory_url;
	struct crypto_key *key;
	struct db_req *req;
	acme_account_loaded_fn done;
	void *arg;
};

static void load_free(struct acme_account_load *l)
{
	crypto_key_free(l->key);
	free(l->name);
	free(l->directory_url);
	free(l);
}

static void load_end(struct acme_account_load *l, int rc, char *kid, const char *why)
{
	struct crypto_key *key = l->key;

	l->key = NULL;
	if (rc < 0) {
		crypto_key_free(key);
		key = NULL;
	}
	l->done(l->arg, rc, key, kid, why);
	load_free(l);
}

static void record_loaded(void *arg, int rc, const char *data, size_t len)
{
	struct acme_account_load *l = arg;
	char *kid = NULL;

	l->req = NULL;
	if (rc == 0 && acme_account_decode(data, len, l->directory_url, &kid) < 0)
		log_warn(NULL, "CA %s: the account record is damaged; looking the account up again",
			 l->name);
	load_end(l, 0, kid, NULL);
}

static void record_load(struct acme_account_load *l)
{
	l->req = db_get(l->db, DB_ACCOUNT, l->name, record_loaded, l);
	if (!l->req)
		load_end(l, -ENOMEM, NULL, "cannot read the account record (out of memory)");
}

static void key_kept(void *arg, int rc)
{
	struct acme_account_load *l = arg;

	l->req = NULL;
	if (rc < 0) {
		load_end(l, rc, NULL, "cannot keep a new account key in state_dir");
		return;
	}
	log_info(NULL, "CA %s: new account key", l->name);
	record_load(l);
}

static void key_loaded(void *arg, int rc, const char *pem, size_t len)
{
	struct acme_account_load *l = arg;
	char *mine = NULL;
	size_t mlen = 0;

	l->req = NULL;
	if (rc == 0) {
		if (crypto_key_from_pem(pem, len, &l->key) < 0)
			load_end(l, -EINVAL, NULL, "the account key in state_dir is not a usable private key");
		else
			record_load(l);
		return;
	}
	if (rc != -ENOENT) {
		load_end(l, rc, NULL, "cannot read the account key in state_dir");
		return;
	}
	/* None yet: made and kept before any request is signed with it. */
	if (crypto_key_generate(KEY_ECDSA_P256, &l->key) < 0 ||
	    crypto_key_to_pem(l->key, &mine, &mlen) < 0 ||
	    !(l->req = db_put(l->db, DB_ACCOUNT_KEY, l->name, mine, mlen, DB_DURABLE | DB_SECRET,
			      key_kept, l)))
		load_end(l, -ENOMEM, NULL, "cannot make a new account key");
	crypto_free_secret(mine, mlen);
}

struct acme_account_load *acme_account_load(struct db *db, const char *ca_name,
					    const char *directory_url, acme_account_loaded_fn done,
					    void *arg)
{
	struct acme_account_load *l = calloc(1, sizeof(*l));

	if (!l || !(l->name = strdup(ca_name)) || !(l->directory_url = strdup(directory_url))) {
		if (l)
			load_free(l);
		return NULL;
	}
	l->db = db;
	l->done = done;
	l->arg = arg;
	l->req = db_get(db, DB_ACCOUNT_KEY, ca_name, key_loaded, l);
	if (!l->req) {
		load_free(l);
		return NULL;
	}
	return l;
}

void acme_account_load_cancel(struct acme_account_load *l)
{
	if (!l)
		return;
	db_cancel(l->db, l->req);
	load_free(l);
}
