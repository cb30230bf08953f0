/* acme_account.c - the ACME account: its key and record in the store, registering it (with EAB), contact updates. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme_account.h"
#include "acme_internal.h"
#include "crypto.h"
#include "db.h"
#include "jws.h"
#include "log.h"

/* NULL when contact is NULL (not known: no "contact" key at all). */
static json_t *contact_array(const struct config_strv *contact)
{
	json_t *c = contact ? json_array() : NULL;

	for (size_t i = 0; c && contact && i < contact->n; i++)
		if (json_array_append_new(c, json_string(contact->v[i])) < 0) {
			json_decref(c);
			return NULL;
		}
	return c;
}

char *acme_account_encode(const char *directory_url, const char *kid,
			  const struct config_strv *contact, size_t *len)
{
	json_t *j = json_pack("{s:s, s:s, s:o*}", "directory", directory_url, "kid", kid,
			      "contact", contact_array(contact));
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}

int acme_account_decode(const char *data, size_t len, const char *directory_url, char **kid,
			struct config_strv *contact, int *contact_known)
{
	json_t *j = json_loadb(data, len, 0, NULL), *c = json_object_get(j, "contact"), *v;
	const char *d = json_string_value(json_object_get(j, "directory"));
	const char *k = json_string_value(json_object_get(j, "kid"));
	size_t i;
	int rc = 0;

	*kid = NULL;
	*contact_known = 0;
	memset(contact, 0, sizeof(*contact));
	if (!json_is_object(j))
		rc = -EINVAL;
	else if (d && k && *k && strcmp(d, directory_url) == 0 && !(*kid = strdup(k)))
		rc = -ENOMEM;
	if (rc == 0 && *kid && json_is_array(c) && json_array_size(c) <= 64) {
		contact->v = calloc(json_array_size(c) + 1, sizeof(char *));
		if (!contact->v)
			rc = -ENOMEM;
		json_array_foreach(c, i, v) {
			if (rc < 0 || !json_is_string(v))
				continue;
			if (!(contact->v[contact->n] = strdup(json_string_value(v))))
				rc = -ENOMEM;
			else
				contact->n++;
		}
		*contact_known = rc == 0;
	}
	if (rc < 0) {
		config_strv_clear(contact);
		free(*kid);
		*kid = NULL;
		*contact_known = 0;
	}
	json_decref(j);
	return rc;
}

int acme_account_reply_contact(const char *body, size_t len, struct config_strv *contact)
{
	json_t *j = json_loadb(body ? body : "", len, 0, NULL), *c = json_object_get(j, "contact"), *v;
	size_t i;
	int rc = 0;

	memset(contact, 0, sizeof(*contact));
	if (!json_is_object(j) || (c && (!json_is_array(c) || json_array_size(c) > 64))) {
		json_decref(j);
		return -EINVAL;
	}
	contact->v = calloc(json_array_size(c) + 1, sizeof(char *));
	if (!contact->v)
		rc = -ENOMEM;
	json_array_foreach(c, i, v) {
		if (rc == 0 && json_is_string(v) &&
		    !(contact->v[contact->n++] = strdup(json_string_value(v))))
			rc = -ENOMEM;
	}
	if (rc < 0)
		config_strv_clear(contact);
	json_decref(j);
	return rc;
}

char *acme_account_payload(const struct config_strv *contact)
{
	json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1), *c = contact_array(contact);
	char *payload = NULL;

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

static void load_end(struct acme_account_load *l, int rc, char *kid,
		     const struct config_strv *contact, const char *why)
{
	struct crypto_key *key = l->key;

	l->key = NULL;
	if (rc < 0) {
		crypto_key_free(key);
		key = NULL;
	}
	l->done(l->arg, rc, key, kid, contact, why);
	load_free(l);
}

static void record_loaded(void *arg, int rc, const char *data, size_t len)
{
	struct acme_account_load *l = arg;
	struct config_strv contact = { 0 };
	char *kid = NULL;
	int known = 0;

	l->req = NULL;
	if (rc == 0 && acme_account_decode(data, len, l->directory_url, &kid, &contact, &known) < 0)
		log_warn(NULL, "CA %s: the account record is damaged; looking the account up again",
			 l->name);
	load_end(l, 0, kid, known ? &contact : NULL, NULL);
	config_strv_clear(&contact);
}

static void record_load(struct acme_account_load *l)
{
	l->req = db_get(l->db, DB_ACCOUNT, l->name, record_loaded, l);
	if (!l->req)
		load_end(l, -ENOMEM, NULL, NULL, "cannot read the account record (out of memory)");
}

static void key_kept(void *arg, int rc)
{
	struct acme_account_load *l = arg;

	l->req = NULL;
	if (rc < 0) {
		load_end(l, rc, NULL, NULL, "cannot keep a new account key in state_dir");
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
			load_end(l, -EINVAL, NULL, NULL, "the account key in state_dir is not a usable private key");
		else
			record_load(l);
		return;
	}
	if (rc != -ENOENT) {
		load_end(l, rc, NULL, NULL, "cannot read the account key in state_dir");
		return;
	}
	/* None yet: made and kept before any request is signed with it. */
	if (crypto_key_generate(KEY_ECDSA_P256, &l->key) < 0 ||
	    crypto_key_to_pem(l->key, &mine, &mlen) < 0 ||
	    !(l->req = db_put(l->db, DB_ACCOUNT_KEY, l->name, mine, mlen, DB_DURABLE | DB_SECRET,
			      key_kept, l)))
		load_end(l, -ENOMEM, NULL, NULL, "cannot make a new account key");
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

/* ---------- the record and the contact the CA has ---------- */

void acme_account_save(struct acme_ca *ca)
{
	size_t len = 0;
	char *text = acme_account_encode(ca->directory_url, ca->kid,
					 ca->acct_contact_known ? &ca->acct_contact : NULL, &len);

	if (!text || !db_put(ca->db, DB_ACCOUNT, ca->name, text, len, DB_DURABLE, NULL, NULL))
		log_error(NULL, "CA %s: cannot keep the account URL; it is looked up again "
			  "at the next start", ca->name);
	free(text);
}

static int strv_same(const struct config_strv *a, const struct config_strv *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	return 1;
}

static void contact_updated(const struct acme_reply *reply, void *arg)
{
	struct acme_ca *ca = arg;
	struct config_strv sent = ca->contact_sent;

	ca->contact_call = NULL;
	memset(&ca->contact_sent, 0, sizeof(ca->contact_sent));
	if (reply->err != ACME_ERR_NONE) {
		/* Not worth an order's failure: said once, tried again at the next
		 * start or reload. */
		log_error(NULL, "CA %s: cannot update the account's contact at %s: %s; acmed tries "
			  "again at the next reload or start", ca->name, ca->kid ? ca->kid : "?",
			  reply->err_text ? reply->err_text : "the CA refused it");
		config_strv_clear(&sent);
		acme_ca_idle_check(ca);
		return;
	}
	config_strv_clear(&ca->acct_contact);
	ca->acct_contact = sent;
	ca->acct_contact_known = 1;
	log_info(NULL, "CA %s: the account's contact is now %s%s", ca->name,
		 sent.n ? sent.v[0] : "(none)", sent.n > 1 ? " and more" : "");
	acme_account_save(ca);
	acme_account_contact_sync(ca);          /* changed again meanwhile */
	acme_ca_idle_check(ca);
}

int acme_ca_busy(const struct acme_ca *ca)
{
	return ca && (ca->contact_call != NULL || ca->acct_state == ACCT_LOADING || ca->keychange);
}

void acme_ca_idle_check(struct acme_ca *ca)
{
	if (ca->idle_cb && !acme_ca_busy(ca))
		ca->idle_cb(ca->idle_arg);
}

void acme_ca_on_idle(struct acme_ca *ca, void (*cb)(void *arg), void *arg)
{
	ca->idle_cb = cb;
	ca->idle_arg = arg;
}

void acme_account_contact_sync(struct acme_ca *ca)
{
	json_t *p;
	char *payload;

	if (ca->acct_state != ACCT_OK || !ca->kid || ca->contact_call ||
	    (ca->acct_contact_known && strv_same(&ca->acct_contact, &ca->contact)))
		return;
	/* RFC 8555 7.3.2: an empty array removes every contact. */
	p = json_pack("{s:o*}", "contact", contact_array(&ca->contact));
	payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (payload && config_strv_copy(&ca->contact_sent, &ca->contact) < 0)
		config_strv_clear(&ca->contact_sent);   /* a partial copy */
	else if (payload) {
		log_info(NULL, "CA %s: updating the account's contact at %s", ca->name, ca->kid);
		ca->contact_call = acme_ca_call_signed(ca, ca->kid, payload, contact_updated, ca);
		if (!ca->contact_call)
			config_strv_clear(&ca->contact_sent);
	}
	free(payload);
}

/* ---------- External Account Binding (RFC 8555 7.3.4) ---------- */

void acme_account_eab_clear(struct acme_ca *ca)
{
	free(ca->eab_kid);
	crypto_free_secret(ca->eab_key, ca->eab_key_len);
	ca->eab_kid = NULL;
	ca->eab_key = NULL;
	ca->eab_key_len = 0;
	ca->eab_alg = NULL;
}

int acme_account_eab_set(struct acme_ca *ca, const struct config_ca *cfg)
{
	acme_account_eab_clear(ca);
	if (!cfg->eab_kid)
		return 0;
	ca->eab_kid = strdup(cfg->eab_kid);
	ca->eab_key = malloc(cfg->eab_key_len);
	ca->eab_key_len = ca->eab_key ? cfg->eab_key_len : 0;
	ca->eab_alg = cfg->eab_alg;
	if (!ca->eab_kid || !ca->eab_key) {
		acme_account_eab_clear(ca);
		return -ENOMEM;
	}
	memcpy(ca->eab_key, cfg->eab_key, cfg->eab_key_len);
	return 0;
}

int acme_account_eab_apply(struct acme_ca *ca, struct acme_call *call, char *why, size_t whylen)
{
	json_t *p, *eab;
	char *payload;

	if (!call->resource || strcmp(call->resource, "newAccount") != 0)
		return 0;
	if (!ca->eab_kid) {
		if (!ca->directory.external_account_required)
			return 0;
		snprintf(why, whylen, "CA %s requires External Account Binding (its directory says "
			 "externalAccountRequired): add eab: {kid: ..., hmac_key_file: ...} to it in the "
			 "configuration, with the key ID and MAC key the CA gives", ca->name);
		return -1;
	}
	p = json_loads(call->payload ? call->payload : "{}", 0, NULL);
	eab = jws_eab(ca->key, ca->eab_kid, ca->eab_alg, ca->eab_key, ca->eab_key_len, call->url);
	payload = p && eab && json_object_set_new(p, "externalAccountBinding", eab) == 0 ?
		  json_dumps(p, JSON_COMPACT) : NULL;
	if (!p || !payload)
		json_decref(eab);
	json_decref(p);
	if (!payload) {
		snprintf(why, whylen, "cannot make the external account binding for CA %s", ca->name);
		return -1;
	}
	free(call->payload);
	call->payload = payload;
	return 0;
}

/* ---------- registering, and the account read at start ---------- */

static void account_done(const struct acme_reply *reply, void *arg)
{
	struct acme_ca *ca = arg;
	struct call_failure f = {0};

	if (reply->err == ACME_ERR_NONE && reply->location && *reply->location) {
		free(ca->kid);
		ca->kid = strdup(reply->location);
		ca->acct_state = ACCT_OK;
		log_info(NULL, "CA %s: account %s %s", ca->name, ca->kid,
			 reply->status == 201 ? "created" : "found");
		/* An account found (200) keeps the contact it had: the CA says which. */
		config_strv_clear(&ca->acct_contact);
		ca->acct_contact_known = acme_account_reply_contact(reply->body, reply->body_len,
								    &ca->acct_contact) == 0;
		acme_account_save(ca);
		acme_ca_kick_waiting(ca);
		acme_account_contact_sync(ca);
		return;
	}
	ca->acct_state = ACCT_NONE;
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

/* Start the newAccount call unless one is under way or the account is known;
 * the waiting calls are kicked or failed when it answers. */
void acme_account_register(struct acme_ca *ca)
{
	char *payload;

	if (ca->acct_state != ACCT_NONE)
		return;
	payload = acme_account_payload(&ca->contact);
	if (payload && acme_ca_call_new_account(ca, payload, account_done, ca))
		ca->acct_state = ACCT_REGISTERING;
	free(payload);
}

/* The account can sign: the calls waiting for it go on. */
static void account_ready(struct acme_ca *ca)
{
	ca->acct_state = ca->kid ? ACCT_OK : ACCT_NONE;
	acme_ca_kick_waiting(ca);
	acme_account_contact_sync(ca);
	acme_keychange_account_ready(ca);
	acme_ca_idle_check(ca);
}

/* The account key and record are read (acme_account.c): signed calls go on;
 * or they cannot be had: every signed call fails with why, now and later. */
static void account_loaded(void *arg, int rc, struct crypto_key *key, char *kid,
			   const struct config_strv *contact, const char *why)
{
	struct acme_ca *ca = arg;
	struct call_failure f = {0};

	ca->acct_load = NULL;
	if (rc < 0) {
		log_error(NULL, "CA %s: %s", ca->name, why);
		free(ca->acct_error);
		ca->acct_error = strdup(why);
		ca->acct_state = ACCT_BROKEN;
		acme_fail_local(&f, ca->directory_url, why);
		acme_ca_fail_waiting(ca, &f, 0);
		acme_fail_clear(&f);
		acme_keychange_account_ready(ca);      /* refused: the key cannot be had */
		acme_ca_idle_check(ca);
		return;
	}
	crypto_key_free(ca->key);
	ca->key = key;
	free(ca->kid);
	ca->kid = kid;
	config_strv_clear(&ca->acct_contact);
	ca->acct_contact_known = contact && config_strv_copy(&ca->acct_contact, contact) == 0;
	/* A key rollover cut off by a crash: which key is the account's is
	 * settled (acme_keychange.c) before anything is signed. */
	acme_keychange_resume(ca, account_ready);
}

int acme_ca_load_account(struct acme_ca *ca)
{
	if (!ca->db)
		return -EINVAL;
	ca->acct_state = ACCT_LOADING;
	ca->acct_load = acme_account_load(ca->db, ca->name, ca->directory_url, account_loaded, ca);
	return ca->acct_load ? 0 : -ENOMEM;
}
