/* order.c - one certificate's issuance: order -> authorizations -> challenges -> finalize -> download. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_obj.h"
#include "certcheck.h"
#include "clock.h"
#include "crypto.h"
#include "jws.h"
#include "log.h"
#include "order.h"
#include "order_chain.h"
#include "order_internal.h"

static void order_fetch(struct order *o);

void order_timer_in_ms(struct event *ev, long ms)
{
	struct timeval tv = clock_tv_ms(ms);
	evtimer_add(ev, &tv);
}

const char *order_authz_name(const struct authz *a)
{
	return a->identifier ? a->identifier : a->url;
}

void order_authz_withdraw(struct authz *a)
{
	if (a->answer) {
		challenge_cleanup(a->solver, a->answer);
		a->answer = NULL;
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
		acme_client_cancel(o->ca, a->call);
		a->call = NULL;
		if (a->timer)
			evtimer_del(a->timer);
		order_authz_withdraw(a);
	}
	acme_client_cancel(o->ca, o->call);
	o->call = NULL;
	evtimer_del(o->timer);
	evtimer_add(o->finish_ev, &zero);
}

void
order_fail(struct order *o, enum acme_err_class err, int64_t retry_after, const char *problem,
	   const char *fmt, ...)
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
	res.resumable = o->resumable;
	order_finish(o, &res);
}

void order_fail_reply(struct order *o, const struct acme_reply *r, const char *step)
{
	order_fail(o, r->err, r->retry_after, r->problem ? r->problem->type : NULL, "%s: %s",
		   step, r->err_text ? r->err_text : "failed");
}

/* Poll delays: start at what this CA usually needs, then double; the CA's
 * Retry-After always wins. */
long order_poll_delay_ms(struct order *o, enum acme_poll_kind kind, int polls,
			  int64_t retry_after)
{
	long d;

	if (retry_after >= 0)
		return (long)retry_after * 1000;
	d = acme_client_poll_hint_ms(o->ca, kind);
	for (int i = 0; i < polls && d < POLL_MAX_DELAY_MS; i++)
		d *= 2;
	return d > POLL_MAX_DELAY_MS ? POLL_MAX_DELAY_MS : d;
}

/* ---------- download ---------- */

/* What the CA sent must be the certificate we asked for before anything
 * installs it (certcheck.c). */
static void order_check_cert(struct order *o, const char *pem, size_t len)
{
	struct order_result res = {0};
	const char *why;

	if (certcheck_issued(pem, len, o->key, &o->cert->domains, clock_now(), &o->leaf, &o->chain,
			     &res.not_before, &res.not_after, &why) < 0) {
		order_fail(o, why ? ACME_ERR_CERT : ACME_ERR_LOCAL, -1, NULL, "certificate from %s %s",
			   o->cert_url, why ? why : "cannot be read: out of memory");
		return;
	}
	if (crypto_key_to_pem(o->key, &o->key_pem, &o->key_len) < 0) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	res.ok = 1;
	res.retry_after = -1;
	res.message = "issued";
	res.leaf_pem = o->leaf;
	res.chain_pem = o->chain;
	res.key_pem = o->key_pem;
	res.key_len = o->key_len;
	order_finish(o, &res);
}

static void chain_picked(void *arg, const char *pem, size_t len, const char *note)
{
	struct order *o = arg;

	o->chain_pick = NULL;
	if (note)
		log_info(o->cert->name, "%s", note);
	order_check_cert(o, pem, len);
}

static void cert_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;
	const char *want = o->cert->preferred_chain;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(o, r, "downloading the certificate");
		return;
	}
	if (want && !order_chain_top_matches(r->body, r->body_len, want)) {
		o->chain_pick = order_chain_pick(o->ca, o->cert->name, want, r->body, r->body_len, r->links,
						 chain_picked, o);
		if (o->chain_pick)
			return;
		log_info(o->cert->name, "preferred_chain: the default chain is not issued by %s and the CA "
			 "offers no other; keeping it", want);
	}
	order_check_cert(o, r->body, r->body_len);
}

/* ---------- the order object ---------- */

static void order_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	order_fetch(arg);
}

static void order_handle(struct order *o, const struct acme_reply *r);

static void order_fetch_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;

	o->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(o, r, "polling the order");
		return;
	}
	order_handle(o, r);
}

static void order_fetch(struct order *o)
{
	o->call = acme_client_post(o->ca, NULL, o->url, NULL, order_fetch_done, o);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot poll %s", o->url);
}

/* A Retry-After too long to wait inside the order. */
int order_poll_too_far(struct order *o, const char *what, int64_t retry_after)
{
	if (retry_after <= POLL_INLINE_MAX_S)
		return 0;
	order_fail(o, ACME_ERR_RATELIMIT, retry_after, NULL,
		   "the CA asks to wait %lld s before looking at %s again", (long long)retry_after, what);
	return 1;
}

static void order_poll_later(struct order *o, int64_t retry_after)
{
	if (order_poll_too_far(o, o->url, retry_after))
		return;
	if (clock_now() > o->deadline) {
		order_fail(o, ACME_ERR_CERT, -1, NULL,
			   "order %s still processing after %d minutes", o->url,
			   ORDER_DEADLINE_S / 60);
		return;
	}
	order_timer_in_ms(o->timer, order_poll_delay_ms(o, ACME_POLL_ORDER, o->polls++, retry_after));
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
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(o, r, "finalizing the order");
		return;
	}
	o->polls = 0;
	order_handle(o, r);
}

void order_finalize(struct order *o)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	char *payload;

	if (o->finalized) {
		order_poll_later(o, -1);
		return;
	}
	if (crypto_csr_der(o->key, (const char *const *)o->cert->domains.v, o->cert->domains.n,
			   &der, &derlen) < 0) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot build the CSR");
		return;
	}
	payload = acme_finalize_payload(der, derlen);
	free(der);
	if (!payload) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	o->finalized = 1;
	o->finalize_ms = clock_mono_ms();
	o->call = acme_client_post(o->ca, NULL, o->finalize_url, payload, finalize_done, o);
	free(payload);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot finalize %s", o->url);
}

static void order_start_authz(struct order *o, const struct acme_order_obj *obj)
{
	size_t i;

	if (o->authz)
		return;
	if (obj->nauthz == 0) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no usable authorizations",
			   o->url);
		return;
	}
	o->authz = calloc(obj->nauthz, sizeof(*o->authz));
	if (!o->authz) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	o->nauthz = obj->nauthz;
	for (i = 0; i < o->nauthz; i++) {
		struct authz *a = &o->authz[i];
		a->o = o;
		a->deadline = clock_now() + AUTHZ_DEADLINE_S;
		if (!obj->authorizations[i]) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s lists a bad authorization",
				   o->url);
			return;
		}
		if (!(a->url = strdup(obj->authorizations[i]))) {
			order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
			return;
		}
	}
	for (i = 0; i < o->nauthz && !o->done; i++)
		order_authz_fetch(&o->authz[i]);
}

static void order_handle(struct order *o, const struct acme_reply *r)
{
	struct acme_order_obj obj;

	if (acme_order_parse(r->body, r->body_len, &obj) < 0) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s: the CA's answer is not an order object",
			   o->url);
		return;
	}
	if (obj.finalize && !o->finalize_url)
		o->finalize_url = strdup(obj.finalize);
	switch (obj.status) {
	case ACME_STATUS_PENDING:
		if (o->authz)
			order_poll_later(o, r->retry_after);
		else
			order_start_authz(o, &obj);
		break;
	case ACME_STATUS_READY:
		if (!o->finalize_url)
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no finalize URL", o->url);
		else
			order_finalize(o);
		break;
	case ACME_STATUS_PROCESSING:
		order_poll_later(o, r->retry_after);
		break;
	case ACME_STATUS_VALID:
		if (!obj.certificate) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "valid order %s has no certificate URL",
				   o->url);
			break;
		}
		if (o->finalize_ms)
			acme_client_poll_learn(o->ca, ACME_POLL_ORDER,
					       (long)(clock_mono_ms() - o->finalize_ms), o->polls <= 1);
		free(o->cert_url);
		o->cert_url = strdup(obj.certificate);
		o->call = o->cert_url ? acme_client_post(o->ca, NULL, o->cert_url, NULL, cert_done, o)
				      : NULL;
		if (!o->call)
			order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot download %s", obj.certificate);
		break;
	case ACME_STATUS_UNKNOWN:
		if (!obj.status_text) {
			order_fail(o, ACME_ERR_INPUT, -1, NULL, "order %s has no status", o->url);
			break;
		}
		/* a status we do not know ends the order */
		__attribute__((fallthrough));
	default:
		order_fail(o, ACME_ERR_CERT, -1, obj.error.type, "order %s is %s%s%s", o->url,
			   obj.status_text, obj.error.detail ? ": " : "",
			   obj.error.detail ? obj.error.detail : "");
		break;
	}
	acme_order_obj_clear(&obj);
}

/* ---------- new order ---------- */

static void order_create(struct order *o);

/* Why the CA's answer to a newOrder carrying "replaces" may be about
 * "replaces" rather than the order, or NULL. "replaces" (RFC 9773 5) is a
 * hint, never a reason to go without a certificate, so such an order is sent
 * again without it, once:
 * - alreadyReplaced: someone already replaced that certificate;
 * - a refusal naming the replacement: another account ordered that
 *   certificate (after `account deactivate`, an imported certificate);
 * - a plain HTTP 500 serverInternal (no Retry-After) to the newOrder itself
 *   (not relayed from the nonce, directory or account it waited on): the CA
 *   failed to look the replaced certificate up (Pebble 2.10 cannot find a
 *   serial whose DER starts with a zero byte). A CA really down fails the
 *   second try too, and that one is handled as its outage; a CA whose 500 was
 *   a passing one issues without the ARI link (the renewal then counts
 *   against its rate limits), which beats a certificate that never renews. */
static const char *replaces_refusal(const struct order *o, const struct acme_reply *r)
{
	const char *name = r->problem ? r->problem->name : NULL;

	if (r->err == ACME_ERR_NONE || !o->replaces || !name || r->relayed)
		return NULL;
	if (strcmp(name, "alreadyReplaced") == 0)
		return "already replaced";
	if ((r->err == ACME_ERR_CERT || r->err == ACME_ERR_INPUT) && r->problem->detail &&
	    strcasestr(r->problem->detail, "replace"))
		return r->err_text ? r->err_text : name;
	if (strcmp(name, "serverInternal") == 0 && r->status == 500 && r->retry_after < 0)
		return r->err_text ? r->err_text : name;
	return NULL;
}

static void new_order_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;
	const char *refusal = replaces_refusal(o, r);

	o->call = NULL;
	if (refusal) {
		log_info(o->cert->name, "the CA refuses \"replaces\" (%s); ordering without it", refusal);
		free(o->replaces);
		o->replaces = NULL;
		order_create(o);
		return;
	}
	if (r->err != ACME_ERR_NONE) {
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
	order_handle(o, r);
}

static void order_create(struct order *o)
{
	char *payload = acme_new_order_payload((const char *const *)o->cert->domains.v,
					       o->cert->domains.n, o->replaces, o->cert->profile);

	if (payload)
		o->call = acme_client_post(o->ca, "newOrder", NULL, payload, new_order_done, o);
	free(payload);
	if (!o->call)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot start the order");
}

/* An order from before a restart: carry on while the CA still has it. */
static void resume_done(const struct acme_reply *r, void *arg)
{
	struct order *o = arg;
	struct acme_order_obj obj = {0};
	int parsed = r->err == ACME_ERR_NONE && acme_order_parse(r->body, r->body_len, &obj) == 0;

	o->call = NULL;
	if (r->err == ACME_ERR_UNAVAILABLE || r->err == ACME_ERR_RATELIMIT) {
		order_fail_reply(o, r, "resuming the order");
		return;
	}
	if (!parsed || !obj.status_text || obj.status == ACME_STATUS_INVALID) {
		log_info(o->cert->name, "order %s cannot be resumed (%s); creating a new one", o->url,
			 r->err != ACME_ERR_NONE ? r->err_text : obj.status_text ? obj.status_text :
			 "no status");
		acme_order_obj_clear(&obj);
		free(o->url);
		o->url = NULL;
		order_create(o);
		return;
	}
	log_info(o->cert->name, "resuming order %s (%s)", o->url, obj.status_text);
	acme_order_obj_clear(&obj);
	if (o->created)
		o->created(o, o->url, o->arg);
	order_handle(o, r);
}

struct order *order_start(struct event_base *base, struct acme_client *ca,
			  const struct order_params *p, order_done_fn cb, void *arg)
{
	struct order *o = calloc(1, sizeof(*o));

	if (!o) {
		crypto_key_free(p->key);
		return NULL;
	}
	o->base = base;
	o->ca = ca;
	o->cert = &o->cert_copy;
	o->key = p->key;
	o->cb = cb;
	o->created = p->created;
	o->pick = p->pick;
	o->pick_arg = p->pick_arg;
	o->arg = arg;
	o->deadline = clock_now() + ORDER_DEADLINE_S;
	o->timer = evtimer_new(base, order_timer_cb, o);
	o->finish_ev = evtimer_new(base, order_finish_cb, o);
	o->replaces = p->replaces ? strdup(p->replaces) : NULL;
	o->url = p->resume_url ? strdup(p->resume_url) : NULL;
	if (config_cert_copy(&o->cert_copy, p->cert) < 0 || !o->timer || !o->finish_ev || !o->key ||
	    !o->pick || (p->replaces && !o->replaces) || (p->resume_url && !o->url)) {
		order_free(o);
		return NULL;
	}
	if (o->url)
		o->call = acme_client_post(ca, NULL, o->url, NULL, resume_done, o);
	else
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
	order_chain_cancel(o->chain_pick);
	for (size_t i = 0; i < o->nauthz; i++) {
		struct authz *a = &o->authz[i];
		acme_client_cancel(o->ca, a->call);
		if (a->timer)
			event_free(a->timer);
		order_authz_withdraw(a);
		free(a->url);
		free(a->identifier);
		free(a->chal_url);
	}
	free(o->authz);
	acme_client_cancel(o->ca, o->call);
	if (o->timer)
		event_free(o->timer);
	if (o->finish_ev)
		event_free(o->finish_ev);
	free(o->result_msg);
	free(o->result_problem);
	crypto_key_free(o->key);
	crypto_free_secret(o->key_pem, o->key_len);
	free(o->leaf);
	free(o->chain);
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
