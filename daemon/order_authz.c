/* order_authz.c - an order's authorizations: the challenge chosen and answered through its solver, the authorization polled until valid. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_obj.h"
#include "clock.h"
#include "ident.h"
#include "jws.h"
#include "log.h"
#include "order_internal.h"


static void authz_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	order_authz_fetch(arg);
}

static void authz_valid(struct authz *a)
{
	struct order *o = a->o;

	if (a->valid)
		return;
	a->valid = 1;
	order_authz_withdraw(a);
	if (a->started_ms)
		acme_client_poll_learn(o->ca, ACME_POLL_AUTHZ, (long)(clock_mono_ms() - a->started_ms),
				       a->polls <= 1);
	log_debug(o->cert->name, "authorization for %s is valid", order_authz_name(a));
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

	const char *hint = a->solver ? challenge_explain(a->solver, a->answer) : NULL;

	order_fail(a->o, ACME_ERR_CERT, -1, type, "authorization for %s is %s%s%s%s%s%s%s",
		   order_authz_name(a), obj->status_text ? obj->status_text : "?", type ? ": " : "",
		   type ? type : "", detail ? ": " : "", detail ? detail : "", hint ? "; " : "", hint ? hint : "");
}

static void authz_poll_later(struct authz *a, int64_t retry_after)
{
	long d;
	int64_t until;

	if (clock_now() > a->deadline) {
		order_fail(a->o, ACME_ERR_CERT, -1, NULL,
			   "authorization for %s still pending after %d minutes (%s)",
			   order_authz_name(a), AUTHZ_DEADLINE_S / 60, a->url);
		return;
	}
	if (!a->timer)
		a->timer = evtimer_new(a->o->base, authz_timer_cb, a);
	if (!a->timer) {
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "out of memory");
		return;
	}
	d = order_poll_delay_ms(a->o, ACME_POLL_AUTHZ, a->polls++, retry_after);
	until = a->not_before_ms - clock_mono_ms();
	if (until > d)
		d = (long)until;
	if (order_poll_too_far(a->o, a->url, (d + 999) / 1000))
		return;
	a->poll_at_ms = clock_mono_ms() + d;
	order_timer_in_ms(a->timer, d);
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
	order_timer_in_ms(a->timer, POLL_AFTER_SEEN_MS);
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
		/* A solver's server that does not answer (a DNS server) is not the CA's
		 * outage: this certificate is retried with its own backoff. */
		if (err == ACME_ERR_UNAVAILABLE)
			err = ACME_ERR_LOCAL;
		a->o->resumable = 1;    /* nothing was asked of the CA: the order can still be finished */
		order_fail(a->o, err, -1, NULL, "%s for %s: %s", challenge_name(a->solver),
			   order_authz_name(a), message ? message : "the answer could not be put in place");
		return;
	}
	a->started_ms = clock_mono_ms();
	if (a->answered) {
		authz_poll_later(a, -1);
		return;
	}
	log_debug(a->o->cert->name, "answering %s for %s", challenge_name(a->solver), order_authz_name(a));
	a->call = acme_client_post(a->o->ca, NULL, a->chal_url, "{}", challenge_done, a);
	if (!a->call)
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "cannot answer %s", a->chal_url);
}

/* The authorization is for one of the certificate's names: a CA's answer
 * never chooses where acmed writes (a DNS record, a token). */
static int authz_ours(const struct order *o, const struct acme_authz_obj *obj)
{
	unsigned char want[16], have[16];
	int ip = obj->id_type && strcmp(obj->id_type, "ip") == 0;
	int wl = ip ? ident_ip_bytes(obj->id_value, want) : 0;

	if (!obj->id_value || (ip && !wl))
		return 0;
	for (size_t i = 0; i < o->cert->domains.n; i++) {
		const char *d = o->cert->domains.v[i];

		if (ip ? ident_ip_bytes(d, have) == wl && memcmp(have, want, (size_t)wl) == 0 :
		    obj->wildcard ? strncmp(d, "*.", 2) == 0 && strcasecmp(d + 2, obj->id_value) == 0 :
		    strcasecmp(d, obj->id_value) == 0)
			return 1;
	}
	return 0;
}

/* A pending authorization: pick the solver, present the answer. */
static void authz_respond(struct authz *a, const struct acme_authz_obj *obj)
{
	struct order *o = a->o;
	const struct acme_chal_obj *ch;
	const char *why = NULL;
	struct challenge_request rq = {0};
	char *keyauth;

	if (!authz_ours(o, obj)) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "the CA asks to validate %s%s, which certificate %s does "
			   "not name", obj->wildcard ? "*." : "", obj->id_value ? obj->id_value : "(nothing)",
			   o->cert->name);
		return;
	}
	a->solver = o->pick(o->pick_arg, obj->id_type ? obj->id_type : "dns", obj->id_value,
			    obj->wildcard, &why);
	if (!a->solver) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "no way to validate %s: %s", order_authz_name(a),
			   why ? why : "no challenge solver");
		return;
	}
	ch = acme_authz_challenge(obj, challenge_name(a->solver));
	if (!ch) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "the CA offers no %s challenge for %s",
			   challenge_name(a->solver), order_authz_name(a));
		return;
	}
	if ((!ch->token && !a->solver->type->tokenless) || !ch->url ||
	    (a->solver->type->tokenless && !ch->nissuers)) {
		order_fail(o, ACME_ERR_INPUT, -1, NULL, "%s challenge for %s is malformed%s",
			   challenge_name(a->solver), order_authz_name(a),
			   a->solver->type->tokenless ? " (no issuer-domain-names)" : "");
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
	keyauth = ch->token ? jws_key_authorization(ch->token, acme_client_account_key(o->ca)) : NULL;
	if (!keyauth && !a->solver->type->tokenless) {
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot compute the key authorization");
		return;
	}
	rq.cert_name = o->cert->name;
	rq.id_type = obj->id_type ? obj->id_type : "dns";
	rq.identifier = obj->id_value;
	rq.wildcard = obj->wildcard;
	rq.token = ch->token;
	rq.key_authorization = keyauth;
	/* The record names the account: as the CA says it, else the URL it gave us. */
	rq.account_uri = ch->accounturi ? ch->accounturi : acme_client_account_url(o->ca);
	rq.issuers = (const char *const *)ch->issuers;
	rq.nissuers = ch->nissuers;
	for (size_t i = 0; i < o->cert->domains.n && !rq.wildcard_too; i++)
		rq.wildcard_too = strncmp(o->cert->domains.v[i], "*.", 2) == 0 &&
				  strcmp(o->cert->domains.v[i] + 2, obj->id_value) == 0;
	rq.dns_provider = o->cert->dns_provider;
	rq.ready = authz_ready;
	rq.seen = authz_seen;
	rq.arg = a;
	if (challenge_present(a->solver, &rq, &a->answer) < 0)
		order_fail(o, ACME_ERR_LOCAL, -1, NULL, "cannot answer %s for %s",
			   challenge_name(a->solver), order_authz_name(a));
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

void order_authz_fetch(struct authz *a)
{
	a->call = acme_client_post(a->o->ca, NULL, a->url, NULL, authz_fetch_done, a);
	if (!a->call)
		order_fail(a->o, ACME_ERR_LOCAL, -1, NULL, "cannot fetch %s", a->url);
}

