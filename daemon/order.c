/* order.c - one certificate's issuance: order -> authorizations -> http-01 -> finalize -> download -> install. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "clock.h"
#include "challenge_http.h"
#include "crypto.h"
#include "jws.h"
#include "log.h"
#include "order.h"
#include "store.h"

#define POLL_MAX_DELAY_MS 5000
#define POLL_AFTER_FETCH_MS 25  /* after the CA's validator fetched the token */
#define AUTHZ_DEADLINE_S (15 * 60)
#define ORDER_DEADLINE_S (15 * 60)
#define MSG_MAX 1024

struct authz {
	struct order *o;
	char *url;
	char *domain;
	char *token;            /* served while set */
	struct acme_call *call;
	struct event *timer;
	int valid;
	int polls;
	int64_t started_ms;     /* when the challenge was answered */
	int64_t not_before_ms;  /* the CA's Retry-After for this authorization */
	int64_t poll_at_ms;     /* when the armed poll fires */
	int64_t deadline;
};

struct order {
	struct event_base *base;
	struct acme_ca *ca;
	struct challenge_http *http01;
	const struct config_cert *cert; /* points at cert_copy: survives a reload */
	struct config_cert cert_copy;
	order_done_fn cb;
	order_created_fn created;
	void *arg;
	char *replaces;
	int resumed;
	struct crypto_key *key;
	char *url, *finalize_url, *cert_url;
	struct authz *authz;
	size_t nauthz, nvalid;
	struct acme_call *call;
	struct event *timer;
	struct event *finish_ev;
	struct order_result result;     /* kept until finish_ev delivers it */
	char *result_msg, *result_problem;
	int polls;
	int finalized;
	int64_t finalize_ms;
	int64_t deadline;
	int done;
};

static void order_fetch(struct order *o);
static void authz_fetch(struct authz *a);

static void timer_in_ms(struct event *ev, long ms)
{
	struct timeval tv = clock_tv_ms(ms);

	evtimer_add(ev, &tv);
}

static void authz_stop_serving(struct authz *a)
{
	if (a->token) {
		challenge_http_remove(a->o->http01, a->token);
		free(a->token);
		a->token = NULL;
	}
}

static void order_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct order *o = arg;

	o->cb(o, &o->result, o->arg);      /* may free o */
}

/* Stop everything and report from a fresh loop iteration, so the callback
 * can free the order whatever stack we are on. */
static void order_finish(struct order *o, const struct order_result *res)
{
	struct timeval zero = { 0, 0 };

	if (o->done)
		return;
	o->done = 1;
	o->result = *res;
	o->result_msg = strdup(res->message ? res->message : "");
	o->result_problem = res->problem ? strdup(res->problem) : NULL;
	o->result.message = o->result_msg;
	o->result.problem = o->result_problem;
	for (size_t i = 0; i < o->nauthz; i++) {
		struct authz *a = &o->authz[i];
		acme_call_cancel(a->call);
		a->call = NULL;
		if (a->timer)
			evtimer_del(a->timer);
		authz_stop_serving(a);
	}
	acme_call_cancel(o->call);
	o->call = NULL;
	evtimer_del(o->timer);
	evtimer_add(o->finish_ev, &zero);
}

static void order_fail(struct order *o, enum acme_err_class err, int64_t retry_after,
		       const char *problem, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void order_fail(struct order *o, enum acme_err_class err, int64_t retry_after,
		       const char *problem, const char *fmt, ...)
{
	char msg[MSG_MAX];
	struct order_result res = {0};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	res.ok = 0;
	res.err = err;
	res.retry_after = retry_after;
	res.message = msg;
	res.problem = problem;
	order_finish(o, &res);
}

static void order_fail_reply(struct order *o, const struct acme_reply *r, const char *step)
{
	order_fail(o, r->err, r->retry_after, r->problem ? r->problem->type : NULL, "%s: %s",
		   step, r->err_text ? r->err_text : "failed");
}

/* Poll delays: start at what this CA usually needs, then double; the CA's
 * Retry-After always wins. */
static long poll_delay_ms(struct order *o, enum acme_poll_kind kind, int polls,
			  int64_t retry_after)
{
	long d;

	if (retry_after >= 0)
		return (long)retry_after * 1000;
	d = acme_ca_poll_hint_ms(o->ca, kind);
	for (int i = 0; i < polls && d < POLL_MAX_DELAY_MS; i++)
		d *= 2;
	return d > POLL_MAX_DELAY_MS ? POLL_MAX_DELAY_MS : d;
}

/* ---------- download and install ---------- */

static void order_install(struct order *o, const char *pem, size_t len)
{
	struct crypto_cert_info info = {0};
	struct store_bundle b = {0};
	struct order_result res = {0};
	char *leaf = NULL, *chain = NULL, *full = NULL, *key = NULL;
	size_t keylen = 0;
	int rc;

	if (crypto_chain_split(pem, len, &leaf, &chain) < 0 ||
	    crypto_cert_info_pem(leaf, strlen(leaf), &info) < 0) {
		order_fail(o, ACME_ERR_CERT, -1, NULL,
			   "certificate from %s is not a PEM certificate chain", o->cert_url);
		goto out;
	}
	if (crypto_cert_matches_key(leaf, strlen(leaf), o->key) != 1) {
		order_fail(o, ACME_ERR_CERT, -1, NULL,
			   "certificate from %s does not match the key acmed sent", o->cert_url);
		goto out;
	}
	if (!names_same_set((const char *const *)info.names, info.nnames,
			    (const char *const *)o->cert->domains.v, o->cert->domains.n)) {
		order_fail(o, ACME_ERR_CERT, -1, NULL,
			   "certificate from %s does not name exactly the configured domains",
			   o->cert_url);
		goto out;
	}
	if (info.not_after <= clock_now()) {
		order_fail(o, ACME_ERR_CERT, -1, NULL, "certificate from %s is already expired",
			   o->cert_url);
		goto out;
	}
	rc = crypto_key_to_pem(o->key, &key, &keylen);
	full = malloc(strlen(leaf) + strlen(chain) + 1);
	if (rc < 0 || !full) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		goto out;
	}
	strcpy(full, leaf);
	strcat(full, chain);
	b.key_pem = key;
	b.key_len = keylen;
	b.cert_pem = leaf;
	b.cert_len = strlen(leaf);
	b.chain_pem = chain;
	b.chain_len = strlen(chain);
	b.fullchain_pem = full;
	b.fullchain_len = strlen(full);
	rc = store_install_bundle(o->cert->output_dir, &b);
	if (rc < 0) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot install the certificate in %s: %s",
			   o->cert->output_dir, strerror(-rc));
		goto out;
	}
	res.ok = 1;
	res.retry_after = -1;
	res.not_after = info.not_after;
	res.not_before = info.not_before;
	res.message = "issued";
	order_finish(o, &res);
out:
	crypto_cert_info_clear(&info);
	crypto_free_secret(key, keylen);
	free(leaf);
	free(chain);
	free(full);
}

static void cert_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(o, r, "downloading the certificate");
		return;
	}
	order_install(o, r->body, r->body_len);
}

/* ---------- the order object ---------- */

static void order_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	order_fetch(arg);
}

static void order_handle(struct order *o, json_t *obj, int64_t retry_after);

static void order_fetch_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE || !r->json) {
		order_fail_reply(o, r, "polling the order");
		return;
	}
	order_handle(o, r->json, r->retry_after);
}

static void order_fetch(struct order *o)
{
	o->call = acme_post(o->ca, NULL, o->url, NULL, order_fetch_done, o);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot poll %s", o->url);
}

static void order_poll_later(struct order *o, int64_t retry_after)
{
	if (clock_now() > o->deadline) {
		order_fail(o, ACME_ERR_CERT, -1, NULL,
			   "order %s still processing after %d minutes", o->url,
			   ORDER_DEADLINE_S / 60);
		return;
	}
	timer_in_ms(o->timer, poll_delay_ms(o, ACME_POLL_ORDER, o->polls++, retry_after));
}

static void finalize_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE && r->problem && r->problem->name &&
	    strcmp(r->problem->name, "orderNotReady") == 0) {
		/* A finalize that reached the CA before a dropped connection makes
		 * the resend fail this way: look at the order itself. */
		log_debug(o->cert->name, "finalize answered orderNotReady; fetching %s", o->url);
		o->finalized = 0;
		order_fetch(o);
		return;
	}
	if (r->err != ACME_ERR_NONE || !r->json) {
		order_fail_reply(o, r, "finalizing the order");
		return;
	}
	o->polls = 0;
	order_handle(o, r->json, r->retry_after);
}

static void order_finalize(struct order *o)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	char *csr, *payload;
	json_t *p;

	if (o->finalized) {
		order_poll_later(o, -1);
		return;
	}
	if (crypto_csr_der(o->key, (const char *const *)o->cert->domains.v, o->cert->domains.n,
			   &der, &derlen) < 0) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot build the CSR");
		return;
	}
	csr = crypto_b64url_encode(der, derlen);
	free(der);
	p = csr ? json_pack("{s:s}", "csr", csr) : NULL;
	payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	free(csr);
	if (!payload) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	o->finalized = 1;
	o->finalize_ms = clock_mono_ms();
	o->call = acme_post(o->ca, NULL, o->finalize_url, payload, finalize_done, o);
	free(payload);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot finalize %s", o->url);
}

static void order_start_authz(struct order *o, json_t *list)
{
	size_t i;
	json_t *u;

	if (o->authz)
		return;
	if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 100) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no usable authorizations",
			   o->url);
		return;
	}
	o->nauthz = json_array_size(list);
	o->authz = calloc(o->nauthz, sizeof(*o->authz));
	if (!o->authz) {
		o->nauthz = 0;
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	json_array_foreach(list, i, u) {
		struct authz *a = &o->authz[i];
		a->o = o;
		a->url = json_is_string(u) ? strdup(json_string_value(u)) : NULL;
		a->deadline = clock_now() + AUTHZ_DEADLINE_S;
	}
	for (i = 0; i < o->nauthz; i++) {
		struct authz *a = &o->authz[i];
		if (!a->url) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s lists a bad authorization",
				   o->url);
			return;
		}
	}
	for (i = 0; i < o->nauthz && !o->done; i++)
		authz_fetch(&o->authz[i]);
}

static void order_handle(struct order *o, json_t *obj, int64_t retry_after)
{
	const char *status = json_string_value(json_object_get(obj, "status"));
	const char *fin = json_string_value(json_object_get(obj, "finalize"));
	const char *cert = json_string_value(json_object_get(obj, "certificate"));

	if (!status) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no status", o->url);
		return;
	}
	if (fin && !o->finalize_url)
		o->finalize_url = strdup(fin);
	if (strcmp(status, "pending") == 0) {
		if (o->authz)
			order_poll_later(o, retry_after);
		else
			order_start_authz(o, json_object_get(obj, "authorizations"));
	} else if (strcmp(status, "ready") == 0) {
		if (!o->finalize_url) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no finalize URL", o->url);
			return;
		}
		order_finalize(o);
	} else if (strcmp(status, "processing") == 0) {
		order_poll_later(o, retry_after);
	} else if (strcmp(status, "valid") == 0) {
		if (!cert) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "valid order %s has no certificate URL",
				   o->url);
			return;
		}
		if (o->finalize_ms)
			acme_ca_poll_learn(o->ca, ACME_POLL_ORDER, (long)(clock_mono_ms() - o->finalize_ms),
					   o->polls <= 1);
		free(o->cert_url);
		o->cert_url = strdup(cert);
		o->call = acme_post(o->ca, NULL, o->cert_url, NULL, cert_done, o);
		if (!o->call)
			order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot download %s", cert);
	} else {
		json_t *err = json_object_get(obj, "error");
		const char *d = json_string_value(json_object_get(err, "detail"));
		const char *t = json_string_value(json_object_get(err, "type"));
		order_fail(o, ACME_ERR_CERT, -1, t, "order %s is %s%s%s", o->url, status,
			   d ? ": " : "", d ? d : "");
	}
}

/* ---------- authorizations ---------- */

static void authz_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	authz_fetch(arg);
}

static void authz_valid(struct authz *a)
{
	struct order *o = a->o;

	if (a->valid)
		return;
	a->valid = 1;
	authz_stop_serving(a);
	if (a->started_ms)
		acme_ca_poll_learn(o->ca, ACME_POLL_AUTHZ, (long)(clock_mono_ms() - a->started_ms),
				   a->polls <= 1);
	log_debug(o->cert->name, "authorization for %s is valid", a->domain ? a->domain : a->url);
	/* All valid means the order is "ready" (RFC 8555 7.1.6): finalize
	 * without fetching it; orderNotReady sends us back to the order. */
	if (++o->nvalid == o->nauthz) {
		o->polls = 0;
		order_finalize(o);
	}
}

/* The first failed challenge's error, for the log. */
static void authz_invalid(struct authz *a, json_t *obj, const char *status)
{
	json_t *chs = json_object_get(obj, "challenges"), *ch;
	const char *detail = NULL, *type = NULL;
	size_t i;

	json_array_foreach(chs, i, ch) {
		json_t *e = json_object_get(ch, "error");
		if (json_is_object(e)) {
			detail = json_string_value(json_object_get(e, "detail"));
			type = json_string_value(json_object_get(e, "type"));
			break;
		}
	}
	order_fail(a->o, ACME_ERR_CERT, -1, type, "authorization for %s is %s%s%s%s%s",
		   a->domain ? a->domain : a->url, status, type ? ": " : "", type ? type : "",
		   detail ? ": " : "", detail ? detail : "");
}

static void authz_poll_later(struct authz *a, int64_t retry_after)
{
	if (clock_now() > a->deadline) {
		order_fail(a->o, ACME_ERR_CERT, -1, NULL,
			   "authorization for %s still pending after %d minutes (%s)",
			   a->domain ? a->domain : a->url, AUTHZ_DEADLINE_S / 60, a->url);
		return;
	}
	if (!a->timer)
		a->timer = evtimer_new(a->o->base, authz_timer_cb, a);
	if (!a->timer) {
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	long d = poll_delay_ms(a->o, ACME_POLL_AUTHZ, a->polls++, retry_after);
	int64_t until = a->not_before_ms - clock_mono_ms();
	if (until > d)
		d = (long)until;
	a->poll_at_ms = clock_mono_ms() + d;
	timer_in_ms(a->timer, d);
}

/* The validator fetched our token: the verdict is close. Poll a little
 * after the last fetch instead of waiting out the guess (never earlier than
 * the CA's Retry-After, never later than already planned). */
static void authz_token_served(void *arg)
{
	struct authz *a = arg;
	int64_t now = clock_mono_ms(), at = now + POLL_AFTER_FETCH_MS;

	if (!a->timer || !evtimer_pending(a->timer, NULL) || a->not_before_ms > at ||
	    a->poll_at_ms <= at)
		return;
	a->poll_at_ms = at;
	timer_in_ms(a->timer, POLL_AFTER_FETCH_MS);
}

static void challenge_done(const struct acme_reply *r, void *arg)
{
	struct authz *a = arg;

	a->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(a->o, r, "answering the http-01 challenge");
		return;
	}
	/* Poll the authorization, not the challenge: its status is the one
	 * that counts (RFC 8555 7.5.1). */
	authz_poll_later(a, r->retry_after);
}

static void authz_respond(struct authz *a, json_t *obj)
{
	struct order *o = a->o;
	json_t *chs = json_object_get(obj, "challenges"), *ch, *found = NULL;
	const char *token, *url, *cstatus;
	char *keyauth;
	size_t i;

	json_array_foreach(chs, i, ch) {
		const char *t = json_string_value(json_object_get(ch, "type"));
		if (t && strcmp(t, "http-01") == 0) {
			found = ch;
			break;
		}
	}
	if (!found) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "the CA offers no http-01 challenge for %s",
			   a->domain ? a->domain : a->url);
		return;
	}
	token = json_string_value(json_object_get(found, "token"));
	url = json_string_value(json_object_get(found, "url"));
	cstatus = json_string_value(json_object_get(found, "status"));
	if (!token || !url || strlen(token) > 256 || strspn(token,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(token)) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "http-01 challenge for %s is malformed",
			   a->domain ? a->domain : a->url);
		return;
	}
	if (!a->token) {
		keyauth = jws_key_authorization(token, acme_ca_account_key(o->ca));
		if (!keyauth || challenge_http_add(o->http01, token, keyauth) < 0) {
			free(keyauth);
			order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot serve the http-01 token");
			return;
		}
		free(keyauth);
		a->token = strdup(token);
		challenge_http_on_served(o->http01, token, authz_token_served, a);
	}
	a->started_ms = clock_mono_ms();
	if (cstatus && strcmp(cstatus, "pending") != 0) {
		/* Already answered (processing): just wait for the verdict. */
		authz_poll_later(a, -1);
		return;
	}
	log_debug(o->cert->name, "answering http-01 for %s", a->domain ? a->domain : a->url);
	a->call = acme_post(o->ca, NULL, url, "{}", challenge_done, a);
	if (!a->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot answer %s", url);
}

static void authz_fetch_done(const struct acme_reply *r, void *arg)
{
	struct authz *a = arg;
	const char *status;

	a->call = NULL;
	if (r->err != ACME_ERR_NONE || !r->json) {
		order_fail_reply(a->o, r, "fetching an authorization");
		return;
	}
	if (!a->domain) {
		const char *d = json_string_value(json_object_get(
			json_object_get(r->json, "identifier"), "value"));
		if (d)
			a->domain = strdup(d);
	}
	if (r->retry_after >= 0)
		a->not_before_ms = clock_mono_ms() + r->retry_after * 1000;
	status = json_string_value(json_object_get(r->json, "status"));
	if (!status) {
		order_fail(a->o, ACME_ERR_INPUT, -1, NULL, "authorization %s has no status", a->url);
		return;
	}
	/* The HTTP status (200 or 202) says nothing: the body's status does. */
	if (strcmp(status, "valid") == 0)
		authz_valid(a);
	else if (strcmp(status, "pending") == 0 && (a->token || a->polls > 0))
		authz_poll_later(a, r->retry_after);
	else if (strcmp(status, "pending") == 0)
		authz_respond(a, r->json);
	else
		authz_invalid(a, r->json, status);
}

static void authz_fetch(struct authz *a)
{
	a->call = acme_post(a->o->ca, NULL, a->url, NULL, authz_fetch_done, a);
	if (!a->call)
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "cannot fetch %s", a->url);
}

/* ---------- new order ---------- */

static void order_create(struct order *o);

static void new_order_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE && o->replaces && r->problem && r->problem->name &&
	    strcmp(r->problem->name, "alreadyReplaced") == 0) {
		/* RFC 9773 5: someone already replaced that certificate; order
		 * without "replaces", once. */
		log_info(o->cert->name, "the CA says the certificate was already replaced; "
			 "ordering without \"replaces\"");
		free(o->replaces);
		o->replaces = NULL;
		order_create(o);
		return;
	}
	if (r->err != ACME_ERR_NONE || !r->json) {
		order_fail_reply(o, r, "creating the order");
		return;
	}
	if (!r->location || !*r->location) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "newOrder answered without a Location");
		return;
	}
	o->url = strdup(r->location);
	if (!o->url) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	log_info(o->cert->name, "order %s created%s%s", o->url, o->replaces ? ", replacing " : "",
		 o->replaces ? o->replaces : "");
	if (o->created)
		o->created(o, o->url, o->arg);
	order_handle(o, r->json, r->retry_after);
}

static void order_create(struct order *o)
{
	const struct config_cert *cert = o->cert;
	json_t *ids = json_array(), *p;
	char *payload;

	for (size_t i = 0; i < cert->domains.n; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns",
						     "value", cert->domains.v[i]));
	p = json_pack("{s:o}", "identifiers", ids);
	if (p && o->replaces)
		json_object_set_new(p, "replaces", json_string(o->replaces));
	payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (payload)
		o->call = acme_post(o->ca, "newOrder", NULL, payload, new_order_done, o);
	free(payload);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot start the order");
}

/* An order from before a restart: carry on while the CA still has it. */
static void resume_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;
	const char *status = r->json ? json_string_value(json_object_get(r->json, "status")) : NULL;

	o->call = NULL;
	if (r->err == ACME_ERR_UNAVAILABLE || r->err == ACME_ERR_RATELIMIT) {
		order_fail_reply(o, r, "resuming the order");
		return;
	}
	if (r->err != ACME_ERR_NONE || !status || strcmp(status, "invalid") == 0) {
		log_info(o->cert->name, "order %s cannot be resumed (%s); creating a new one", o->url,
			 r->err != ACME_ERR_NONE ? r->err_text : status ? status : "no status");
		free(o->url);
		o->url = NULL;
		o->resumed = 0;
		order_create(o);
		return;
	}
	log_info(o->cert->name, "resuming order %s (%s)", o->url, status);
	if (o->created)
		o->created(o, o->url, o->arg);
	order_handle(o, r->json, r->retry_after);
}

struct order *order_start(struct event_base *base, struct acme_ca *ca,
			  struct challenge_http *http01, const struct order_params *p,
			  order_done_fn cb, void *arg)
{
	struct order *o = calloc(1, sizeof(*o));

	if (!o) {
		crypto_key_free(p->key);
		return NULL;
	}
	o->base = base;
	o->ca = ca;
	o->http01 = http01;
	o->cert = &o->cert_copy;
	o->key = p->key;
	o->cb = cb;
	o->created = p->created;
	o->arg = arg;
	o->deadline = clock_now() + ORDER_DEADLINE_S;
	o->timer = evtimer_new(base, order_timer_cb, o);
	o->finish_ev = evtimer_new(base, order_finish_cb, o);
	o->replaces = p->replaces ? strdup(p->replaces) : NULL;
	o->url = p->resume_url ? strdup(p->resume_url) : NULL;
	if (config_cert_copy(&o->cert_copy, p->cert) < 0 || !o->timer || !o->finish_ev || !o->key || (p->replaces && !o->replaces) ||
	    (p->resume_url && !o->url)) {
		order_free(o);
		return NULL;
	}
	if (o->url) {
		o->resumed = 1;
		o->call = acme_post(ca, NULL, o->url, NULL, resume_done, o);
		if (!o->call) {
			order_free(o);
			return NULL;
		}
		return o;
	}
	order_create(o);
	if (!o->call) {
		order_free(o);
		return NULL;
	}
	return o;
}

void order_free(struct order *o)
{
	if (!o)
		return;
	o->done = 1;
	for (size_t i = 0; i < o->nauthz; i++) {
		struct authz *a = &o->authz[i];
		acme_call_cancel(a->call);
		if (a->timer)
			event_free(a->timer);
		authz_stop_serving(a);
		free(a->url);
		free(a->domain);
	}
	free(o->authz);
	acme_call_cancel(o->call);
	if (o->timer)
		event_free(o->timer);
	if (o->finish_ev)
		event_free(o->finish_ev);
	free(o->result_msg);
	free(o->result_problem);
	crypto_key_free(o->key);
	config_cert_clear(&o->cert_copy);
	free(o->replaces);
	free(o->url);
	free(o->finalize_url);
	free(o->cert_url);
	free(o);
}

const char *order_url(const struct order *o)
{
	return o->url;
}
