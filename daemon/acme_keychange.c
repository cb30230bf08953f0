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
	char refusal[512];              /* the CA's answer to keyChange, when not a success */
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
	cb = ca->change_wait.cb;
	arg = ca->change_wait.arg;
	memset(&ca->change_wait, 0, sizeof(ca->change_wait));
	if (cb)
		cb(arg, -ECANCELED, "acmed stopped before the account was read");
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

static void settle(struct acme_ca *ca);

/* The account's key is the next one now: it replaces the old in memory, then
 * as account.key; only once that is on disk does account.key.next go. */
static void promoted(void *arg, int rc)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;

	k->req = NULL;
	if (rc == 0)
		db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
	k->rc = rc == 0 ? 1 : -2;
	if (rc < 0)
		snprintf(k->message, sizeof(k->message), "the CA moved account %s to the new key, but it cannot "
			 "be written as account.key; account.key.next keeps it and the next start takes it",
			 ca->kid);
	settle(ca);
}

static void promote(struct acme_ca *ca)
{
	struct acme_keychange *k = ca->keychange;
	struct crypto_key *old = ca->key;
	char *pem = NULL;
	size_t len = 0;

	ca->key = k->next;
	k->next = NULL;
	crypto_key_free(old);
	if (crypto_key_to_pem(ca->key, &pem, &len) == 0)
		k->req = db_put(ca->db, DB_ACCOUNT_KEY, ca->name, pem, len, DB_DURABLE | DB_SECRET, promoted, ca);
	crypto_free_secret(pem, len);
	if (!k->req)
		promoted(ca, -ENOMEM);
}

static void lookup_done(const struct acme_reply *r, void *arg);

/* Which key is the account's: asked of the CA by a lookup signed with the
 * next key (RFC 8555 7.3.1 onlyReturnExisting). */
static void lookup(struct acme_ca *ca)
{
	struct acme_keychange *k = ca->keychange;

	k->call = acme_ca_call_with_key(ca, "newAccount", "{\"onlyReturnExisting\":true}", k->next, lookup_done, ca);
	if (!k->call) {
		k->rc = -1;
		snprintf(k->message, sizeof(k->message), "out of memory");
		settle(ca);
	}
}

static void lookup_done(const struct acme_reply *r, void *arg)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;
	const char *name = r->problem ? r->problem->name : NULL;

	k->call = NULL;
	if (r->err == ACME_ERR_NONE && r->location && ca->kid && strcmp(r->location, ca->kid) == 0) {
		promote(ca);            /* the CA took it: settle() follows */
		return;
	}
	if (name && strcmp(name, "accountDoesNotExist") == 0) {
		db_del(ca->db, DB_ACCOUNT_KEY_NEXT, ca->name, NULL, NULL);
		k->rc = 0;
	} else {
		k->rc = -1;             /* not known now: account.key.next stays for the next start */
		snprintf(k->message, sizeof(k->message), "%s", r->err_text ? r->err_text : "another account answered");
	}
	settle(ca);
}

/* k->rc: 1 the next key is the account's (-2: but it could not be written),
 * 0 the old one still is, -1 not known. */
static void settle(struct acme_ca *ca)
{
	struct acme_keychange *k = ca->keychange;
	void (*ready)(struct acme_ca *) = k->ready;
	char why[600];

	if (ready) {                    /* at start: a rollover cut off by a crash */
		if (k->rc == 1)
			log_warn(NULL, "CA %s: a key rollover was cut off after the CA took the new key; account %s "
				 "signs with it", ca->name, ca->kid);
		else if (k->rc == 0)
			log_warn(NULL, "CA %s: a key rollover was cut off before the CA took the new key; account "
				 "%s keeps its key", ca->name, ca->kid);
		else if (k->rc == -2)
			log_error(NULL, "CA %s: %s", ca->name, k->message);
		else
			log_warn(NULL, "CA %s: a key rollover was cut off, and the CA cannot say which key is the "
				 "account's now (%s); the old key until the next start", ca->name, k->message);
		kc_free(ca);
		ready(ca);
		return;
	}
	/* a rollover whose answer was a failure (or lost): settled the same way */
	snprintf(why, sizeof(why), "%s", k->message);
	if (k->rc == 1)
		kc_end(ca, 0, "account %s now signs with its new key; the old key is gone", ca->kid);
	else if (k->rc == -2)
		kc_end(ca, -EIO, "%s", why);
	else if (k->rc == 0)
		kc_end(ca, -EPERM, "key rollover refused; the account keeps its key: %s", k->refusal);
	else
		kc_end(ca, -EAGAIN, "key rollover: the CA did not answer (%s); account.key.next is kept and the "
		       "next start asks the CA which key the account has", why);
}

static void key_changed(const struct acme_reply *r, void *arg)
{
	struct acme_ca *ca = arg;
	struct acme_keychange *k = ca->keychange;

	k->call = NULL;
	if (r->err == ACME_ERR_NONE) {
		promote(ca);
		return;
	}
	/* Refused, or no answer: a first send the CA took may have been lost and
	 * its retry refused. Only the CA can say which key is the account's. */
	snprintf(k->refusal, sizeof(k->refusal), "%s", r->err_text ? r->err_text : "error");
	lookup(ca);
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

/* Asked while the account is still being read (just after a start): done once it is. */
static int kc_wait(struct acme_ca *ca, int deactivate, acme_ca_done_fn cb, void *arg)
{
	if (ca->acct_state != ACCT_LOADING || ca->change_wait.cb)
		return 0;
	ca->change_wait.cb = cb;
	ca->change_wait.arg = arg;
	ca->change_wait.deactivate = deactivate;
	return 1;
}

void acme_keychange_account_ready(struct acme_ca *ca)
{
	acme_ca_done_fn cb = ca->change_wait.cb;
	void *arg = ca->change_wait.arg;
	int deactivate = ca->change_wait.deactivate;
	char err[512];
	int rc;

	if (!cb)
		return;
	memset(&ca->change_wait, 0, sizeof(ca->change_wait));
	rc = deactivate ? acme_ca_deactivate(ca, cb, arg, err, sizeof(err)) :
			  acme_ca_rollover(ca, cb, arg, err, sizeof(err));
	if (rc < 0)
		cb(arg, rc, err);
}

int acme_ca_rollover(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen)
{
	struct acme_keychange *k;

	if (kc_wait(ca, 0, cb, arg))
		return 0;
	enum key_type kt = KEY_ECDSA_P256;
	char *pem = NULL;
	size_t len = 0;

	if (!(k = kc_new(ca, cb, arg))) {
		snprintf(err, errlen, "CA %s: %s", ca->name, kc_refusal(ca));
		return -EINVAL;
	}
	/* ECDSA P-256, as every account key acmed makes, whatever the old one was
	 * (an RSA key from certbot): made at once, never seconds on the loop. */
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
	lookup(ca);
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
	/* Its key and record go, and the CA refuses that key from now on: a new
	 * key is made and kept (read back after the deletions, the store keeping
	 * their order) before the next order registers a new account with it. */
	db_del(ca->db, DB_ACCOUNT, ca->name, NULL, NULL);
	db_del(ca->db, DB_ACCOUNT_KEY, ca->name, NULL, NULL);
	ca->kid = NULL;
	kc_end(ca, 0, "account %s deactivated; its key and record are removed from state_dir (a new "
	       "account is registered at the next order)", kid);
	free(kid);
	if (acme_ca_load_account(ca) < 0)
		ca->acct_state = ACCT_NONE;
}

int acme_ca_deactivate(struct acme_ca *ca, acme_ca_done_fn cb, void *arg, char *err, size_t errlen)
{
	struct acme_keychange *k;

	if (kc_wait(ca, 1, cb, arg))
		return 0;
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
