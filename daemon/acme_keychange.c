/* acme_keychange.c - the account's key rolled over (RFC 8555 7.3.5, the new key kept before the CA sees it) and the account deactivated (7.3.6). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme.h"
#include "acme_internal.h"
#include "crypto.h"
#include "db.h"
#include "jws.h"
#include "log.h"

struct acme_keychange {
	struct crypto_key *next;        /* the key the account moves to */
	struct acme_call *call;
	struct db_req *req;
	acme_ca_done_fn cb;
	void *arg;
	void (*ready)(struct acme_ca *ca);   /* resume: the account may be used */
	char message[512];
	int rc;
};

static void kc_free(struct acme_ca *ca)
{
	struct acme_keychange *k = ca->keychange;

	if (!k)
		return;
	ca->keychange = NULL;
	if (k->call)
		acme_client_cancel(&ca->client, k->call);
	if (k->req)
		db_cancel(ca->db, k->req);
	crypto_key_free(k->next);
	free(k);
}

void acme_keychange_free(struct acme_ca *ca)
{
	acme_ca_done_fn cb = ca->keychange ? ca->keychange->cb : NULL;
	void *arg = ca->keychange ? ca->keychange->arg : NULL;

	kc_free(ca);
	if (cb)                 /* its client is told (and freed) */
		cb(arg, -ECANCELED, "acmed stopped before the CA answered");
}

/* The end of a rollover or deactivation: its caller told. */
static void kc_end(struct acme_ca *ca, int rc, const char *fmt, const char *detail)
{
	struct acme_keychange *k = ca->keychange;
	acme_ca_done_fn cb = k->cb;
	void *arg = k->arg;
	char msg[600];

	snprintf(msg, sizeof(msg), fmt, detail ? detail : "");
	k->cb = NULL;
	kc_free(ca);
	if (rc < 0)
		log_error(NULL, "CA %s: %s", ca->name, msg);
	else
		log_info(NULL, "CA %s: %s", ca->name, msg);
	if (cb)
		cb(arg, rc, msg);
	acme_ca_idle_check(ca);
}

static struct acme_keychange *kc_new(struct acme_ca *ca, acme_ca_done_fn cb, void *arg)
{
	struct acme_keychange *k;

	if (ca->keychange || ca->acct_state != ACCT_OK || !ca->kid)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (k) {
		k->cb = cb;
		k->arg = arg;
		ca->keychange = k;
	}
	return k;
}

static const char *kc_refusal(const struct acme_ca *ca)
{
	if (ca->keychange)
		return "a key rollover or deactivation is already under way";
	if (ca->acct_state == ACCT_BROKEN)
		return ca->acct_error ? ca->acct_error : "the account key cannot be read";
	return "no account at this CA yet (acmed registers one at the first order)";
}

int acme_ca_has_account(const struct acme_ca *ca)
{
	return ca->acct_state == ACCT_OK && ca->kid;
}

/* ---------- rollover ---------- */

int acme_keychange_apply(struct acme_ca *ca, struct acme_call *call, char *why, size_t whylen)
{
	char *payload;

	if (!call->resource || strcmp(call->resource, "keyChange") != 0)
		return 0;
	if (!ca->keychange || !ca->keychange->next) {
		snprintf(why, whylen, "keyChange without a new key");
		return -1;
	}
	payload = jws_key_change(ca->keychange->next, ca->key, ca->kid, call->url);
	if (!payload) {
		snprintf(why, whylen, "cannot sign the key change");
		return -1;
	}
	free(call->payload);
	call->payload = payload;
	return 0;
}

/* The CA's key is the new one now, kept: the next key's file goes. */
static void new_key_kept(void *arg, int rc)
{
	struct acme_ca *ca = arg;

	ca->keychange->req = NULL;
	if (rc < 0) {
		/* The next key's file stays: the next start finds the account's key
		 * by asking the CA (acme_keychange_resume). */
		kc_end(ca, -EIO, "the CA moved account %s to the new key, but it cannot be written as "
		       "account.key; account.key.next holds it, and the next start takes it", ca->kid);
		return;
	}
	db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
	kc_end(ca, 0, "account %s now signs with its new key; the old key is gone", ca->kid);
}

static void key_changed(const struct acme_reply *r, void *arg)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;
	struct crypto_key *old;
	char *pem = NULL;
	size_t len = 0;

	k->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		/* The CA kept the old key: the next one is forgotten. */
		db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
		kc_end(ca, -EPERM, "key rollover refused; the account keeps its key: %s", r->err_text);
		return;
	}
	old = ca->key;
	ca->key = k->next;
	k->next = NULL;
	crypto_key_free(old);
	if (crypto_key_to_pem(ca->key, &pem, &len) == 0)
		k->req = db_put(ca->db, DB_ACCOUNT_KEY, ca->name, pem, len, DB_DURABLE | DB_SECRET,
				new_key_kept, ca);
	crypto_free_secret(pem, len);
	if (!k->req)
		new_key_kept(ca, -ENOMEM);
}

/* The next key is on stable storage: only now may the CA see it. */
static void next_kept(void *arg, int rc)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;

	k->req = NULL;
	if (rc < 0) {
		kc_end(ca, rc, "cannot keep the new account key in state_dir%s; nothing was sent", NULL);
		return;
	}
	k->call = acme_client_post(&ca->client, "keyChange", NULL, "{}", key_changed, ca);
	if (!k->call)
		kc_end(ca, -ENOMEM, "cannot send the key change%s", NULL);
}

int acme_ca_rollover(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen)
{
	struct acme_keychange *k;
	enum key_type kt = KEY_ECDSA_P256;
	char *pem = NULL;
	size_t len = 0;

	if (!(k = kc_new(ca, cb, arg))) {
		snprintf(err, errlen, "CA %s: %s", ca->name, kc_refusal(ca));
		return -EINVAL;
	}
	/* The same type as the old key: an RSA account stays RSA. */
	crypto_key_type(ca->key, &kt);
	if (crypto_key_generate(kt, &k->next) == 0 && crypto_key_to_pem(k->next, &pem, &len) == 0)
		k->req = db_put(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, pem, len, DB_DURABLE | DB_SECRET,
				next_kept, ca);
	crypto_free_secret(pem, len);
	if (!k->req) {
		k->cb = NULL;
		kc_free(ca);
		snprintf(err, errlen, "CA %s: cannot make and keep a new account key", ca->name);
		return -ENOMEM;
	}
	log_info(NULL, "CA %s: rolling over the key of account %s", ca->name, ca->kid);
	return 0;
}

/* ---------- a rollover cut off: which key is the account's? ---------- */

static void resume_done(struct acme_ca *ca, int next_is_it)
{
	struct acme_keychange *k = ca->keychange;
	void (*ready)(struct acme_ca *) = k->ready;
	struct crypto_key *old;
	char *pem = NULL;
	size_t len = 0;

	if (next_is_it) {
		log_warn(NULL, "CA %s: a key rollover was cut off after the CA took the new key; "
			 "account %s signs with it", ca->name, ca->kid);
		old = ca->key;
		ca->key = k->next;
		k->next = NULL;
		crypto_key_free(old);
		if (crypto_key_to_pem(ca->key, &pem, &len) == 0 &&
		    db_put(ca->db, DB_ACCOUNT_KEY, ca->name, pem, len, DB_DURABLE | DB_SECRET, NULL, NULL))
			db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
		crypto_free_secret(pem, len);
	} else {
		log_warn(NULL, "CA %s: a key rollover was cut off before the CA took the new key; "
			 "account %s keeps its key", ca->name, ca->kid);
		db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
	}
	kc_free(ca);
	ready(ca);
}

static void lookup_done(const struct acme_reply *r, void *arg)
{
	struct acme_ca *ca = arg;
	const char *name = r->problem ? r->problem->name : NULL;

	ca->keychange->call = NULL;
	if (r->err == ACME_ERR_NONE && r->location && ca->kid && strcmp(r->location, ca->kid) == 0) {
		resume_done(ca, 1);
	} else if (name && strcmp(name, "accountDoesNotExist") == 0) {
		resume_done(ca, 0);
	} else {
		/* Not known yet (the CA is down): the old key, the next key kept to
		 * be asked about at the next start. */
		void (*ready)(struct acme_ca *) = ca->keychange->ready;

		log_warn(NULL, "CA %s: a key rollover was cut off, and the CA cannot say which key is the "
			 "account's now (%s); the old key until the next start", ca->name,
			 r->err_text ? r->err_text : "another account answered");
		kc_free(ca);
		ready(ca);
	}
}

static void next_loaded(void *arg, int rc, const char *pem, size_t len)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;
	void (*ready)(struct acme_ca *) = k->ready;

	k->req = NULL;
	if (rc < 0 || !ca->kid || crypto_key_from_pem(pem, len, &k->next) < 0) {
		if (rc == 0)
			db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);     /* useless */
		kc_free(ca);
		ready(ca);
		return;
	}
	/* RFC 8555 7.3.1: onlyReturnExisting, signed by the next key: its account, or none. */
	k->call = acme_ca_call_with_key(ca, "newAccount", "{\"onlyReturnExisting\":true}", k->next, lookup_done,
					ca);
	if (!k->call) {
		kc_free(ca);
		ready(ca);
	}
}

void acme_keychange_resume(struct acme_ca *ca, void (*ready)(struct acme_ca *ca))
{
	struct acme_keychange *k = ca->keychange ? NULL : calloc(1, sizeof(*k));

	if (!k) {
		ready(ca);
		return;
	}
	k->ready = ready;
	ca->keychange = k;
	k->req = db_get(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, next_loaded, ca);
	if (!k->req) {
		kc_free(ca);
		ready(ca);
	}
}

/* ---------- deactivation ---------- */

static void deactivated(const struct acme_reply *r, void *arg)
{
	struct acme_ca *ca = arg;
	char *kid = ca->kid;

	ca->keychange->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		kc_end(ca, -EPERM, "the CA did not deactivate the account: %s", r->err_text);
		return;
	}
	/* Its key and record go: the next order registers a new account. */
	db_del(ca->db, DB_ACCOUNT, ca->name, NULL, NULL);
	db_del(ca->db, DB_ACCOUNT_KEY, ca->name, NULL, NULL);
	ca->kid = NULL;
	ca->acct_state = ACCT_NONE;
	kc_end(ca, 0, "account %s deactivated; its key and record are removed from state_dir (a new "
	       "account is registered at the next order)", kid);
	free(kid);
}

int acme_ca_deactivate(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen)
{
	struct acme_keychange *k;

	if (!(k = kc_new(ca, cb, arg))) {
		snprintf(err, errlen, "CA %s: %s", ca->name, kc_refusal(ca));
		return -EINVAL;
	}
	k->call = acme_client_post(&ca->client, NULL, ca->kid, "{\"status\":\"deactivated\"}", deactivated, ca);
	if (!k->call) {
		k->cb = NULL;
		kc_free(ca);
		snprintf(err, errlen, "CA %s: cannot send the deactivation", ca->name);
		return -ENOMEM;
	}
	log_info(NULL, "CA %s: deactivating account %s", ca->name, ca->kid);
	return 0;
}
