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

#define POLL_MAX_DELAY_MS 5000
#define POLL_AFTER_SEEN_MS 25   /* after the CA's validator looked at the answer */
#define AUTHZ_DEADLINE_S (15 * 60)
#define ORDER_DEADLINE_S (15 * 60)
#define MSG_MAX 1024
/* A longer Retry-After on a poll ends the order as "rate limited": the
 * scheduler keeps it, waits (status says until when) and resumes it. */
#define POLL_INLINE_MAX_S 600

struct authz {
	struct order *o;
	char *url;
	char *identifier;               /* for messages: "example.org", "*.example.org" */
	struct challenge *solver;       /* answering for it */
	struct challenge_answer *answer;        /* presented while set */
	char *chal_url;                 /* the challenge answered */
	int answered;                   /* the CA had it answered already */
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
	struct acme_client *ca;
	const struct config_cert *cert; /* points at cert_copy: survives a reload */
	struct config_cert cert_copy;
	order_done_fn cb;
	order_created_fn created;
	challenge_pick_fn pick;
	void *pick_arg;
	void *arg;
	char *replaces;
	struct crypto_key *key;
	char *url, *finalize_url, *cert_url;
	struct authz *authz;
	size_t nauthz, nvalid;
	struct acme_call *call;
	struct order_chain *chain_pick; /* preferred_chain: alternates being fetched */
	struct event *timer;
	struct event *finish_ev;
	struct order_result result;     /* kept until finish_ev delivers it */
	char *result_msg, *result_problem;
	char *leaf, *chain, *key_pem;   /* the issued certificate, when ok */
	size_t key_len;
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

static const char *authz_name(const struct authz *a)
{
	return a->identifier ? a->identifier : a->url;
}

static void authz_withdraw(struct authz *a)
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
		authz_withdraw(a);
	}
	acme_client_cancel(o->ca, o->call);
	o->call = NULL;
	evtimer_del(o->timer);
	evtimer_add(o->finish_ev, &zero);
}

static __attribute__((format(printf, 5, 6))) void
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
static int poll_too_far(struct order *o, const char *what, int64_t retry_after)
{
	if (retry_after <= POLL_INLINE_MAX_S)
		return 0;
	order_fail(o, ACME_ERR_RATELIMIT, retry_after, NULL,
		   "the CA asks to wait %lld s before looking at %s again", (long long)retry_after, what);
	return 1;
}

static void order_poll_later(struct order *o, int64_t retry_after)
{
	if (poll_too_far(o, o->url, retry_after))
		return;
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
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(o, r, "finalizing the order");
		return;
	}
	o->polls = 0;
	order_handle(o, r);
}

static void order_finalize(struct order *o)
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
		authz_fetch(&o->authz[i]);
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
	authz_withdraw(a);
	if (a->started_ms)
		acme_client_poll_learn(o->ca, ACME_POLL_AUTHZ, (long)(clock_mono_ms() - a->started_ms),
				       a->polls <= 1);
	log_debug(o->cert->name, "authorization for %s is valid", authz_name(a));
	/* All valid means the order is "ready" (RFC 8555 7.1.6): finalize
	 * without fetching it; orderNotReady sends us back to the order. */
	if (++o->nvalid == o->nauthz) {
		o->polls = 0;
		order_finalize(o);
	}
}

/* The first failed challenge's error, for the log. */
static void authz_invalid(struct authz *a, const struct acme_authz_obj *obj)
{
	const struct acme_chal_obj *ch = acme_authz_failed_challenge(obj);
	const char *type = ch ? ch->error.type : NULL, *detail = ch ? ch->error.detail : NULL;

	order_fail(a->o, ACME_ERR_CERT, -1, type, "authorization for %s is %s%s%s%s%s",
		   authz_name(a), obj->status_text ? obj->status_text : "?", type ? ": " : "",
		   type ? type : "", detail ? ": " : "", detail ? detail : "");
}

static void authz_poll_later(struct authz *a, int64_t retry_after)
{
	long d;
	int64_t until;

	if (clock_now() > a->deadline) {
		order_fail(a->o, ACME_ERR_CERT, -1, NULL,
			   "authorization for %s still pending after %d minutes (%s)",
			   authz_name(a), AUTHZ_DEADLINE_S / 60, a->url);
		return;
	}
	if (!a->timer)
		a->timer = evtimer_new(a->o->base, authz_timer_cb, a);
	if (!a->timer) {
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	d = poll_delay_ms(a->o, ACME_POLL_AUTHZ, a->polls++, retry_after);
	until = a->not_before_ms - clock_mono_ms();
	if (until > d)
		d = (long)until;
	if (poll_too_far(a->o, a->url, (d + 999) / 1000))
		return;
	a->poll_at_ms = clock_mono_ms() + d;
	timer_in_ms(a->timer, d);
}

/* The validator looked at our answer: the verdict is close. Poll a little
 * after that instead of waiting out the guess (never earlier than the CA's
 * Retry-After, never later than already planned). */
static void authz_seen(void *arg)
{
	struct authz *a = arg;
	int64_t at = clock_mono_ms() + POLL_AFTER_SEEN_MS;

	if (!a->timer || !evtimer_pending(a->timer, NULL) || a->not_before_ms > at ||
	    a->poll_at_ms <= at)
		return;
	a->poll_at_ms = at;
	timer_in_ms(a->timer, POLL_AFTER_SEEN_MS);
}

static void challenge_done(const struct acme_reply *r, void *arg)
{
	struct authz *a = arg;
	char step[80];

	a->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		snprintf(step, sizeof(step), "answering the %s challenge", challenge_name(a->solver));
		order_fail_reply(a->o, r, step);
		return;
	}
	/* Poll the authorization, not the challenge: its status is the one
	 * that counts (RFC 8555 7.5.1). */
	authz_poll_later(a, r->retry_after);
}

/* The answer is in place: tell the CA to validate it. */
static void authz_ready(void *arg, enum acme_err_class err, const char *message)
{
	struct authz *a = arg;

	if (err != ACME_ERR_NONE) {
		order_fail(a->o, err, -1, NULL, "%s for %s: %s", challenge_name(a->solver),
			   authz_name(a), message ? message : "the answer could not be put in place");
		return;
	}
	a->started_ms = clock_mono_ms();
	if (a->answered) {
		authz_poll_later(a, -1);
		return;
	}
	log_debug(a->o->cert->name, "answering %s for %s", challenge_name(a->solver), authz_name(a));
	a->call = acme_client_post(a->o->ca, NULL, a->chal_url, "{}", challenge_done, a);
	if (!a->call)
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "cannot answer %s", a->chal_url);
}

/* A pending authorization: pick the solver, present the answer. */
static void authz_respond(struct authz *a, const struct acme_authz_obj *obj)
{
	struct order *o = a->o;
	const struct acme_chal_obj *ch;
	const char *why = NULL;
	struct challenge_request rq = {0};
	char *keyauth;

	a->solver = o->pick(o->pick_arg, obj->id_type ? obj->id_type : "dns", obj->id_value,
			    obj->wildcard, &why);
	if (!a->solver) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "no way to validate %s: %s", authz_name(a),
			   why ? why : "no challenge solver");
		return;
	}
	ch = acme_authz_challenge(obj, challenge_name(a->solver));
	if (!ch) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "the CA offers no %s challenge for %s",
			   challenge_name(a->solver), authz_name(a));
		return;
	}
	if (!ch->token || !ch->url) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "%s challenge for %s is malformed",
			   challenge_name(a->solver), authz_name(a));
		return;
	}
	free(a->chal_url);
	if (!(a->chal_url = strdup(ch->url))) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	/* A challenge already answered (processing, e.g. before a restart) is
	 * presented again but not answered twice: its verdict is awaited. */
	a->answered = ch->status != ACME_STATUS_PENDING && ch->status != ACME_STATUS_UNKNOWN;
	keyauth = jws_key_authorization(ch->token, acme_client_account_key(o->ca));
	if (!keyauth) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot compute the key authorization");
		return;
	}
	rq.cert_name = o->cert->name;
	rq.id_type = obj->id_type ? obj->id_type : "dns";
	rq.identifier = obj->id_value;
	rq.wildcard = obj->wildcard;
	rq.token = ch->token;
	rq.key_authorization = keyauth;
	rq.ready = authz_ready;
	rq.seen = authz_seen;
	rq.arg = a;
	if (challenge_present(a->solver, &rq, &a->answer) < 0)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot answer %s for %s",
			   challenge_name(a->solver), authz_name(a));
	free(keyauth);
}

static void authz_fetch_done(const struct acme_reply *r, void *arg)
{
	struct authz *a = arg;
	struct acme_authz_obj obj;

	a->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		order_fail_reply(a->o, r, "fetching an authorization");
		return;
	}
	if (acme_authz_parse(r->body, r->body_len, &obj) < 0) {
		order_fail(a->o, ACME_ERR_INPUT, -1, NULL, "authorization %s is not an authorization object",
			   a->url);
		return;
	}
	if (!a->identifier && obj.id_value &&
	    asprintf(&a->identifier, "%s%s", obj.wildcard ? "*." : "", obj.id_value) < 0)
		a->identifier = NULL;
	if (r->retry_after >= 0)
		a->not_before_ms = clock_mono_ms() + r->retry_after * 1000;
	/* The HTTP status (200 or 202) says nothing: the body's status does. */
	switch (obj.status) {
	case ACME_STATUS_VALID:
		authz_valid(a);
		break;
	case ACME_STATUS_PENDING:
		if (a->answer || a->polls > 0)
			authz_poll_later(a, r->retry_after);
		else if (!obj.id_value)
			order_fail(a->o, ACME_ERR_INPUT, -1, NULL, "authorization %s names no identifier",
				   a->url);
		else
			authz_respond(a, &obj);
		break;
	case ACME_STATUS_UNKNOWN:
		if (!obj.status_text) {
			order_fail(a->o, ACME_ERR_INPUT, -1, NULL, "authorization %s has no status", a->url);
			break;
		}
		__attribute__((fallthrough));
	default:
		authz_invalid(a, &obj);
		break;
	}
	acme_authz_obj_clear(&obj);
}

static void authz_fetch(struct authz *a)
{
	a->call = acme_client_post(a->o->ca, NULL, a->url, NULL, authz_fetch_done, a);
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
		authz_withdraw(a);
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
