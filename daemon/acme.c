/* acme.c - one ACME CA on the loop: directory, nonce pool, signed requests with badNonce retries (the account: acme_account.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "clock.h"
#include "acme_internal.h"
#include "acme_obj.h"
#include "db.h"
#include "http.h"
#include "jws.h"
#include "log.h"
#include "timeparse.h"

#define NONCE_FETCH_MAX 4
#define BAD_NONCE_RETRIES 5     /* resends at once, per round */
#define BAD_NONCE_ROUNDS 3      /* rounds, a second apart: a CA rejecting half of
				   all nonces still gets through (1 in 2^15 fails) */
#define BAD_NONCE_ROUND_DELAY_MS 1000
#define TRANSPORT_RETRIES 1
#define TRANSPORT_RETRY_DELAY_MS 1000
#define POLL_HINT_INITIAL_MS 100
#define POLL_HINT_INITIAL_ORDER_MS 40   /* issuing after finalize is quick at most CAs */
#define POLL_HINT_MIN_MS 20
#define POLL_HINT_MAX_MS 10000

static void call_advance(struct acme_call *call);
static void call_kick(struct acme_call *call, long delay_ms);
static void ca_nonce_pump(struct acme_ca *ca);

/* ---------- nonce pool ---------- */

static void ca_nonce_push(struct acme_ca *ca, const char *nonce)
{
	if (!nonce || !*nonce || strlen(nonce) > 512)
		return;
	if (ca->nnonces == NONCE_POOL_MAX) {
		free(ca->nonces[0]);
		memmove(ca->nonces, ca->nonces + 1, (NONCE_POOL_MAX - 1) * sizeof(char *));
		ca->nnonces--;
	}
	ca->nonces[ca->nnonces] = strdup(nonce);
	if (ca->nonces[ca->nnonces])
		ca->nnonces++;
}

/* The freshest nonce first: the CA may expire old ones. */
static char *ca_nonce_pop(struct acme_ca *ca)
{
	if (ca->nnonces == 0)
		return NULL;
	return ca->nonces[--ca->nnonces];
}

static void nonce_fetch_done(const struct http_response *r, void *arg);

static void nonce_get_done(const struct http_response *r, void *arg)
{
	nonce_fetch_done(r, arg);
}

/* HEAD newNonce answered (200 or 204 both fine), or GET as the fallback. */
static void nonce_fetch_done(const struct http_response *r, void *arg)
{
	struct acme_ca *ca = arg;
	int use_get = r->method && strcmp(r->method, "GET") == 0;

	ca->nonce_fetching--;
	if (r->status >= 200 && r->status < 300 && r->replay_nonce) {
		ca_nonce_push(ca, r->replay_nonce);
		ca_nonce_pump(ca);
		return;
	}
	if (r->replay_nonce)
		ca_nonce_push(ca, r->replay_nonce);
	if (!use_get && r->status != 0 && r->status < 500) {
		/* Some CAs answer HEAD badly: RFC 8555 allows GET (204) too. */
		const char *url = acme_ca_resource(ca, "newNonce");
		if (url && http_send(ca->http, "GET", url, NULL, NULL, 0, nonce_get_done, ca)) {
			ca->nonce_fetching++;
			return;
		}
	}
	/* No nonce: every call waiting for one fails with this reason. */
	struct call_failure f = {0};
	acme_fail_from_response(&f, r, "(newNonce)");
	if (r->status != 0 && r->status < 500 && !r->replay_nonce)
		f.err = ACME_ERR_UNAVAILABLE;
	while (!TAILQ_EMPTY(&ca->nonce_wait) && ca->nnonces == 0) {
		struct acme_call *c = TAILQ_FIRST(&ca->nonce_wait);
		TAILQ_REMOVE(&ca->nonce_wait, c, wait_link);
		c->state = CALL_IDLE;
		acme_fail_copy(&c->fail, &f);
		call_kick(c, 0);
	}
	acme_fail_clear(&f);
	ca_nonce_pump(ca);
}

/* Hand nonces to waiting calls; fetch more only when the responses already
 * on their way will not bring enough. */
static void ca_nonce_pump(struct acme_ca *ca)
{
	unsigned waiting = 0, expected;
	struct acme_call *c;

	while (!TAILQ_EMPTY(&ca->nonce_wait) && ca->nnonces > 0) {
		c = TAILQ_FIRST(&ca->nonce_wait);
		TAILQ_REMOVE(&ca->nonce_wait, c, wait_link);
		c->state = CALL_IDLE;
		free(c->nonce);
		c->nonce = ca_nonce_pop(ca);
		call_kick(c, 0);
	}
	TAILQ_FOREACH(c, &ca->nonce_wait, wait_link)
		waiting++;
	expected = ca->nsent + ca->nonce_fetching;
	while (waiting > expected && ca->nonce_fetching < NONCE_FETCH_MAX) {
		const char *url = acme_ca_resource(ca, "newNonce");
		if (!url || !http_send(ca->http, "HEAD", url, NULL, NULL, 0, nonce_fetch_done, ca))
			return;
		ca->nonce_fetching++;
		expected++;
	}
}

/* ---------- directory ---------- */

void acme_ca_fail_waiting(struct acme_ca *ca, const struct call_failure *f, int only_account)
{
	struct acme_call *c, *tmp;

	for (c = TAILQ_FIRST(&ca->waiting); c; c = tmp) {
		tmp = TAILQ_NEXT(c, wait_link);
		if (only_account && c->use_jwk)
			continue;
		TAILQ_REMOVE(&ca->waiting, c, wait_link);
		c->state = CALL_IDLE;
		acme_fail_copy(&c->fail, f);
		call_kick(c, 0);
	}
}

void acme_ca_kick_waiting(struct acme_ca *ca)
{
	struct acme_call *c;

	while ((c = TAILQ_FIRST(&ca->waiting))) {
		TAILQ_REMOVE(&ca->waiting, c, wait_link);
		c->state = CALL_IDLE;
		call_kick(c, 0);
	}
}

static void directory_done(const struct http_response *r, void *arg)
{
	struct acme_ca *ca = arg;
	struct acme_directory dir;

	ca->dir_req = NULL;
	if (r->replay_nonce)
		ca_nonce_push(ca, r->replay_nonce);
	if (r->status == 200 && acme_directory_parse(r->body, r->body_len, &dir) == 0) {
		acme_directory_clear(&ca->directory);
		ca->directory = dir;
		ca->dir_state = DIR_OK;
		log_debug(NULL, "CA %s: directory loaded from %s", ca->name, ca->directory_url);
		acme_ca_kick_waiting(ca);
		return;
	}
	ca->dir_state = DIR_NONE;
	struct call_failure f = {0};
	acme_fail_from_response(&f, r, r->status == 200 ? "(not an ACME directory: a maintenance "
				"page?)" : "(directory)");
	/* A page that is not a directory is what a CA shows during maintenance:
	 * unavailable (probed, resumed by itself), not a mistake of ours. A 4xx
	 * (a wrong URL) is ours. */
	if (r->status >= 200 && r->status < 300)
		f.err = ACME_ERR_UNAVAILABLE;
	else if (r->status >= 300 && r->status < 500 && f.err != ACME_ERR_UNAVAILABLE)
		f.err = ACME_ERR_INPUT;
	acme_ca_fail_waiting(ca, &f, 0);
	acme_fail_clear(&f);
}

static void ca_load_directory(struct acme_ca *ca)
{
	if (ca->dir_state != DIR_NONE)
		return;
	ca->dir_req = http_send(ca->http, "GET", ca->directory_url, NULL, NULL, 0,
				directory_done, ca);
	if (ca->dir_req)
		ca->dir_state = DIR_LOADING;
}

const char *acme_ca_resource(const struct acme_ca *ca, const char *name)
{
	return acme_directory_url(&ca->directory, name);
}

/* ---------- calls ---------- */

/* "http://" and a loopback host (127.0.0.0/8, [::1], localhost): a test CA. */
static int url_http_loopback(const char *url)
{
	const char *h;

	if (strncasecmp(url, "http://", 7) != 0)
		return 0;
	h = url + 7;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0 ||
	       (strncasecmp(h, "localhost", 9) == 0 && strchr(":/", h[9] ? h[9] : '/'));
}

/* Where a request may go: https always; http only when the directory itself
 * is a loopback test CA on http (the rule config_check_directory applies),
 * and then only to loopback. Never a downgrade from an https directory. */
static int ca_url_allowed(const struct acme_ca *ca, const char *url)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	return url_http_loopback(ca->directory_url) && url_http_loopback(url);
}

static void call_free(struct acme_call *call)
{
	struct acme_ca *ca = call->ca;

	if (call->state == CALL_WAITING)
		TAILQ_REMOVE(&ca->waiting, call, wait_link);
	else if (call->state == CALL_NONCE_WAIT)
		TAILQ_REMOVE(&ca->nonce_wait, call, wait_link);
	if (call->req) {
		http_cancel(call->req);
		ca->nsent--;
	}
	TAILQ_REMOVE(&ca->all, call, all_link);
	if (call->timer)
		event_free(call->timer);
	acme_fail_clear(&call->fail);
	free(call->resource);
	free(call->suffix);
	free(call->url);
	free(call->payload);
	free(call->nonce);
	free(call->signed_kid);
	free(call);
}

static void call_deliver(struct acme_call *call, struct acme_reply *reply)
{
	acme_reply_fn cb = call->cb;
	void *arg = call->arg;
	char *url = call->url;          /* reply->url may be it: it lives through the callback */

	/* The call is gone before the callback runs: it may start new calls or
	 * free what it likes. */
	call->cb = NULL;
	call->url = NULL;
	call_free(call);
	cb(reply, arg);
	free(url);
}

static void call_deliver_failure(struct acme_call *call)
{
	struct acme_reply reply = {0};
	struct call_failure f = call->fail;

	memset(&call->fail, 0, sizeof(call->fail));
	reply.url = f.url;
	reply.relayed = f.relayed;
	reply.status = f.status;
	reply.body = "";
	reply.retry_after = f.retry_after;
	reply.err = f.err;
	reply.problem = f.problem.type || f.problem.detail ? &f.problem : NULL;
	reply.err_text = f.text;
	reply.missing_resource = f.missing_resource;
	call_deliver(call, &reply);
	acme_fail_clear(&f);
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acme_call *call = arg;

	call->state = CALL_IDLE;
	if (call->fail.set) {
		/* A transport failure is tried once more before it counts. */
		if (call->fail.status == 0 && call->fail.err == ACME_ERR_UNAVAILABLE &&
		    call->transport_tries < TRANSPORT_RETRIES) {
			call->transport_tries++;
			log_debug(NULL, "%s; trying again in %d ms", call->fail.text,
				  TRANSPORT_RETRY_DELAY_MS);
			acme_fail_clear(&call->fail);
			call_kick(call, TRANSPORT_RETRY_DELAY_MS);
			return;
		}
		call_deliver_failure(call);
		return;
	}
	call_advance(call);
}

static void call_kick(struct acme_call *call, long delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	call->state = CALL_DELAY;
	evtimer_add(call->timer, &tv);
}

static void call_response(const struct http_response *r, void *arg)
{
	struct acme_call *call = arg;
	struct acme_ca *ca = call->ca;
	struct acme_problem problem = {0};
	struct acme_reply reply = {0};
	char text[ERR_TEXT_MAX];

	call->req = NULL;
	call->state = CALL_IDLE;
	ca->nsent--;
	if (r->status == 0) {
		acme_fail_from_response(&call->fail, r, NULL);
		call_kick(call, 0);
		ca_nonce_pump(ca);
		return;
	}
	if (r->status >= 400)
		acme_problem_parse(r->body, r->body_len, &problem);
	if (problem.name && strcmp(problem.name, "badNonce") == 0 &&
	    call->bad_nonce_tries < BAD_NONCE_RETRIES * BAD_NONCE_ROUNDS) {
		int delay = ++call->bad_nonce_tries % BAD_NONCE_RETRIES == 0 ?
			    BAD_NONCE_ROUND_DELAY_MS : 0;
		log_debug(NULL, "CA %s: badNonce on %s, resending (%d)", ca->name, call->url,
			  call->bad_nonce_tries);
		free(call->nonce);
		call->nonce = r->replay_nonce ? strdup(r->replay_nonce) : NULL;
		acme_problem_clear(&problem);
		call_kick(call, delay);
		ca_nonce_pump(ca);
		return;
	}
	if (r->replay_nonce)
		ca_nonce_push(ca, r->replay_nonce);
	if (problem.name && strcmp(problem.name, "accountDoesNotExist") == 0 && !call->use_jwk &&
	    !call->reregistered) {
		/* The CA forgot us (or the state is from another CA): register
		 * again, once, however many requests were signed with the old
		 * account; each of them is sent again with the new one. */
		if (ca->acct_state == ACCT_OK && call->signed_kid && ca->kid &&
		    strcmp(call->signed_kid, ca->kid) == 0) {
			log_warn(NULL, "CA %s: account %s is unknown to the CA; registering again",
				 ca->name, ca->kid);
			free(ca->kid);
			ca->kid = NULL;
			ca->acct_state = ACCT_NONE;
		}
		call->reregistered = 1;
		acme_problem_clear(&problem);
		call_kick(call, 0);
		ca_nonce_pump(ca);
		return;
	}
	reply.url = call->url;
	reply.status = r->status;
	reply.body = r->body;
	reply.body_len = r->body_len;
	reply.location = r->location;
	reply.links = r->links;
	reply.retry_after = -1;
	if (r->retry_after) {
		int64_t s;
		if (timeparse_retry_after(r->retry_after, clock_now(), 1, 86400, &s) == 0)
			reply.retry_after = s;
	}
	if (r->status >= 200 && r->status < 300) {
		reply.err = ACME_ERR_NONE;
	} else {
		reply.err = acme_classify(r->status, problem.name);
		if (reply.err == ACME_ERR_NONE)
			reply.err = ACME_ERR_INPUT;
		reply.problem = problem.type || problem.detail ? &problem : NULL;
		snprintf(text, sizeof(text), "%s %s: HTTP %ld%s%s%s%s", r->method, call->url, r->status,
			 problem.type ? " " : "", problem.type ? problem.type : "",
			 problem.detail ? ": " : "", problem.detail ? problem.detail : "");
		reply.err_text = text;
	}
	log_debug(NULL, "CA %s: %s %s -> %ld", ca->name, r->method, call->url, r->status);
	call_deliver(call, &reply);
	acme_problem_clear(&problem);
	ca_nonce_pump(ca);
}

static void call_advance(struct acme_call *call)
{
	struct acme_ca *ca = call->ca;
	char *jws;

	if (ca->dir_state != DIR_OK) {
		ca_load_directory(ca);
		if (ca->dir_state != DIR_LOADING) {
			acme_fail_local(&call->fail, ca->directory_url, "cannot start a request");
			call_kick(call, 0);
			return;
		}
		call->state = CALL_WAITING;
		TAILQ_INSERT_TAIL(&ca->waiting, call, wait_link);
		return;
	}
	if (call->resource) {
		const char *u = acme_ca_resource(ca, call->resource);
		if (!u) {
			char t[256];
			snprintf(t, sizeof(t), "the CA's directory %s has no \"%s\"",
				 ca->directory_url, call->resource);
			acme_fail_local(&call->fail, ca->directory_url, t);
			call->fail.err = ACME_ERR_INPUT;
			call->fail.missing_resource = 1;
			call_kick(call, 0);
			return;
		}
		free(call->url);
		call->url = NULL;
		if (call->is_get) {
			size_t n = strlen(u);
			if (asprintf(&call->url, "%s%s%s", u, n && u[n - 1] == '/' ? "" : "/",
				     call->suffix) < 0)
				call->url = NULL;
		} else {
			call->url = strdup(u);
		}
		if (!call->url) {
			acme_fail_local(&call->fail, u, "out of memory");
			call_kick(call, 0);
			return;
		}
	}
	if (!ca_url_allowed(ca, call->url)) {
		char t[512];
		snprintf(t, sizeof(t), "refusing to send a %s request to %s: the CA's directory is https "
			 "and acmed never downgrades to cleartext", call->is_get ? "" : "signed", call->url);
		acme_fail_local(&call->fail, call->url, t);
		call->fail.err = ACME_ERR_INPUT;
		call_kick(call, 0);
		return;
	}
	if (call->is_get) {
		call->req = http_send(ca->http, "GET", call->url, NULL, NULL, 0, call_response, call);
		if (!call->req) {
			acme_fail_local(&call->fail, call->url, "cannot start the HTTP request");
			call_kick(call, 0);
			return;
		}
		call->state = CALL_SENT;
		ca->nsent++;
		return;
	}
	if (!call->use_jwk && ca->acct_state == ACCT_BROKEN) {
		acme_fail_local(&call->fail, call->url, ca->acct_error);
		call_kick(call, 0);
		return;
	}
	if (!call->use_jwk && ca->acct_state != ACCT_OK) {
		acme_account_register(ca);  /* unless the account is still being read */
		call->state = CALL_WAITING;
		TAILQ_INSERT_TAIL(&ca->waiting, call, wait_link);
		return;
	}
	if (!call->nonce)
		call->nonce = ca_nonce_pop(ca);
	if (!call->nonce) {
		call->state = CALL_NONCE_WAIT;
		TAILQ_INSERT_TAIL(&ca->nonce_wait, call, wait_link);
		ca_nonce_pump(ca);
		return;
	}
	{
		char why[512];

		if ((call->use_jwk && !call->sign_key && acme_account_eab_apply(ca, call, why, sizeof(why)) < 0) ||
		    acme_profile_check(ca, call, why, sizeof(why)) < 0 ||
		    acme_keychange_apply(ca, call, why, sizeof(why)) < 0) {
			acme_fail_local(&call->fail, call->url, why);
			call->fail.err = ACME_ERR_INPUT;        /* the configuration's: no retry helps */
			call_kick(call, 0);
			return;
		}
	}
	free(call->signed_kid);
	call->signed_kid = call->use_jwk || !ca->kid ? NULL : strdup(ca->kid);
	jws = jws_sign(call->sign_key ? call->sign_key : ca->key, call->use_jwk ? NULL : ca->kid, call->nonce,
		       call->url, call->payload);
	free(call->nonce);
	call->nonce = NULL;
	if (!jws) {
		acme_fail_local(&call->fail, call->url, "cannot sign the request");
		call_kick(call, 0);
		return;
	}
	call->req = http_send(ca->http, "POST", call->url, "application/jose+json", jws,
			      strlen(jws), call_response, call);
	free(jws);
	if (!call->req) {
		acme_fail_local(&call->fail, call->url, "cannot start the HTTP request");
		call_kick(call, 0);
		return;
	}
	call->state = CALL_SENT;
	ca->nsent++;
}

/* What a call is, fixed before it starts. */
struct call_opts {
	const char *resource, *url, *payload, *suffix;
	int is_get, use_jwk, internal;
	const struct crypto_key *sign_key;
};

static struct acme_call *call_start(struct acme_ca *ca, const struct call_opts *o,
				    acme_reply_fn cb, void *arg)
{
	struct acme_call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	call->ca = ca;
	call->cb = cb;
	call->arg = arg;
	call->is_get = o->is_get;
	call->use_jwk = o->use_jwk;
	call->internal = o->internal;
	call->sign_key = o->sign_key;
	call->resource = o->resource ? strdup(o->resource) : NULL;
	call->url = o->url ? strdup(o->url) : NULL;
	call->payload = o->payload ? strdup(o->payload) : NULL;
	call->suffix = o->suffix ? strdup(o->suffix) : NULL;
	call->timer = evtimer_new(ca->base, call_timer_cb, call);
	if ((o->resource && !call->resource) || (o->url && !call->url) || (!o->resource && !o->url) ||
	    (o->payload && !call->payload) || (o->suffix && !call->suffix) || !call->timer) {
		if (call->timer)
			event_free(call->timer);
		free(call->resource);
		free(call->url);
		free(call->payload);
		free(call->suffix);
		free(call);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&ca->all, call, all_link);
	call_kick(call, 0);
	return call;
}

struct acme_call *acme_ca_call_signed(struct acme_ca *ca, const char *url, const char *payload,
				      acme_reply_fn cb, void *arg)
{
	struct call_opts o = { .url = url, .payload = payload, .internal = 1 };

	return call_start(ca, &o, cb, arg);
}

struct acme_call *acme_ca_call_new_account(struct acme_ca *ca, const char *payload, acme_reply_fn cb,
					   void *arg)
{
	struct call_opts o = { .resource = "newAccount", .payload = payload, .use_jwk = 1, .internal = 1 };

	return call_start(ca, &o, cb, arg);
}

struct acme_call *acme_ca_call_with_key(struct acme_ca *ca, const char *resource, const char *payload,
					const struct crypto_key *key, acme_reply_fn cb, void *arg)
{
	struct call_opts o = { .resource = resource, .payload = payload, .use_jwk = 1, .internal = 1,
			       .sign_key = key };

	return call_start(ca, &o, cb, arg);
}

/* ---------- the CA as an acme_client ---------- */

#define CA_OF(c) ((struct acme_ca *)(c))

static const char *client_name(const struct acme_client *c)
{
	return acme_ca_name(CA_OF(c));
}

static struct acme_call *client_post(struct acme_client *c, const char *resource, const char *url,
				     const char *payload, acme_reply_fn cb, void *arg)
{
	struct call_opts o = { .resource = resource, .url = url, .payload = payload };

	return call_start(CA_OF(c), &o, cb, arg);
}

static struct acme_call *client_get(struct acme_client *c, const char *resource, const char *suffix,
				    acme_reply_fn cb, void *arg)
{
	struct call_opts o = { .resource = resource, .suffix = suffix ? suffix : "", .is_get = 1 };

	return call_start(CA_OF(c), &o, cb, arg);
}

static void client_cancel(struct acme_client *c, struct acme_call *call)
{
	(void)c;
	call_free(call);
}

static const struct crypto_key *client_account_key(const struct acme_client *c)
{
	return CA_OF(c)->key;
}

static const char *client_account_url(const struct acme_client *c)
{
	return CA_OF(c)->kid;
}

static int client_has_resource(const struct acme_client *c, const char *resource)
{
	const struct acme_ca *ca = CA_OF(c);

	if (ca->dir_state != DIR_OK)
		return -1;
	return acme_ca_resource(ca, resource) != NULL;
}

static long client_poll_hint_ms(const struct acme_client *c, enum acme_poll_kind kind)
{
	return acme_ca_poll_hint_ms(CA_OF(c), kind);
}

static void client_poll_learn(struct acme_client *c, enum acme_poll_kind kind, long observed_ms,
			      int first_look)
{
	acme_ca_poll_learn(CA_OF(c), kind, observed_ms, first_look);
}

static const struct acme_client_ops acme_ca_ops = {
	.name = client_name,
	.post = client_post,
	.get = client_get,
	.cancel = client_cancel,
	.account_key = client_account_key,
	.account_url = client_account_url,
	.has_resource = client_has_resource,
	.poll_hint_ms = client_poll_hint_ms,
	.poll_learn = client_poll_learn,
};

struct acme_client *acme_ca_client(struct acme_ca *ca)
{
	return &ca->client;
}

/* ---------- the CA ---------- */

/* timeout: each request's limit (connecting: at most 10 s of it); 0: http.c's defaults. */
static void ca_apply_timeout(struct acme_ca *ca, const struct config_ca *cfg)
{
	long ms = cfg->timeout > 0 ? (long)cfg->timeout * 1000 : 0;

	if (ca->http)
		http_client_set_timeouts(ca->http, ms > 10000 ? 10000 : ms, ms);
}

int acme_ca_reconfigure(struct acme_ca *ca, const struct config_ca *cfg)
{
	struct config_strv contact;

	ca_apply_timeout(ca, cfg);
	if (config_strv_copy(&contact, &cfg->contact) < 0) {
		config_strv_clear(&contact);
		return -ENOMEM;
	}
	config_strv_clear(&ca->contact);
	ca->contact = contact;
	if (acme_account_eab_set(ca, cfg) < 0)
		return -ENOMEM;
	acme_account_contact_sync(ca);
	return 0;
}

struct acme_ca *acme_ca_new(struct event_base *base, const struct config_ca *cfg,
			    const char *state_dir, struct db *db)
{
	struct acme_ca *ca = calloc(1, sizeof(*ca));
	char *trust = NULL;

	if (!ca)
		return NULL;
	ca->client.ops = &acme_ca_ops;
	ca->base = base;
	TAILQ_INIT(&ca->all);
	TAILQ_INIT(&ca->waiting);
	TAILQ_INIT(&ca->nonce_wait);
	ca->poll_hint_ms[ACME_POLL_AUTHZ] = POLL_HINT_INITIAL_MS;
	ca->poll_hint_ms[ACME_POLL_ORDER] = POLL_HINT_INITIAL_ORDER_MS;
	ca->name = strdup(cfg->name);
	ca->directory_url = strdup(cfg->directory);
	ca->db = db;
	config_strv_copy(&ca->contact, &cfg->contact);
	/* state_dir/trust/<ca>.pem: the system roots + ca_bundle, parsed once by curl. */
	if (cfg->ca_bundle && state_dir && asprintf(&trust, "%s/trust/%s.pem", state_dir, cfg->name) < 0)
		trust = NULL;
	ca->http = http_client_new(base, cfg->ca_bundle, trust);
	free(trust);
	ca_apply_timeout(ca, cfg);
	if (!ca->name || !ca->directory_url || !ca->contact.v || !ca->http || acme_account_eab_set(ca, cfg) < 0) {
		acme_ca_free(ca);
		return NULL;
	}
	return ca;
}

void acme_ca_free(struct acme_ca *ca)
{
	struct acme_call *c;

	if (!ca)
		return;
	acme_account_load_cancel(ca->acct_load);
	acme_keychange_free(ca);         /* its calls are among these */
	while ((c = TAILQ_FIRST(&ca->all)))
		call_free(c);
	if (ca->http)
		http_client_free(ca->http);   /* cancels the directory and nonce fetches */
	for (size_t i = 0; i < ca->nnonces; i++)
		free(ca->nonces[i]);
	acme_directory_clear(&ca->directory);
	config_strv_clear(&ca->contact);
	acme_account_eab_clear(ca);
	config_strv_clear(&ca->acct_contact);
	config_strv_clear(&ca->contact_sent);
	crypto_key_free(ca->key);
	free(ca->kid);
	free(ca->name);
	free(ca->directory_url);
	free(ca->acct_error);
	free(ca);
}

const char *acme_ca_name(const struct acme_ca *ca)
{
	return ca->name;
}

long acme_ca_poll_hint_ms(const struct acme_ca *ca, enum acme_poll_kind kind)
{
	return ca->poll_hint_ms[kind];
}

void acme_ca_poll_learn(struct acme_ca *ca, enum acme_poll_kind kind, long observed_ms,
			int first_look)
{
	long h = ca->poll_hint_ms[kind];

	if (first_look) {
		/* Done by the first look: it may have been done long before, and
		 * observed_ms (>= the wait we chose) says nothing more. Look sooner
		 * next time; without this the hint could only ever grow. */
		h = h * 3 / 4;
	} else {
		/* Not done at the first look: it takes about this long. */
		if (observed_ms > POLL_HINT_MAX_MS)
			observed_ms = POLL_HINT_MAX_MS;
		h = (h + 3 * observed_ms) / 4;     /* weighted towards the recent past */
	}
	if (h < POLL_HINT_MIN_MS)
		h = POLL_HINT_MIN_MS;
	if (h > POLL_HINT_MAX_MS)
		h = POLL_HINT_MAX_MS;
	ca->poll_hint_ms[kind] = h;
}
