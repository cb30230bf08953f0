/* order_internal.h - shared by order.c and order_authz.c: the order, its authorizations, the helpers both use. */
#ifndef ACMED_ORDER_INTERNAL_H
#define ACMED_ORDER_INTERNAL_H

#include <stdint.h>
#include <event2/event.h>

#include "acme_client.h"
#include "challenge.h"
#include "order.h"

struct order_chain;

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
	int resumable;                  /* failing now leaves the CA's order finishable (order_result) */
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


/* order.c */
void order_timer_in_ms(struct event *ev, long ms);
const char *order_authz_name(const struct authz *a);
void order_authz_withdraw(struct authz *a);
void order_fail(struct order *o, enum acme_err_class err, int64_t retry_after, const char *problem,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void order_fail_reply(struct order *o, const struct acme_reply *r, const char *step);
long order_poll_delay_ms(struct order *o, enum acme_poll_kind kind, int polls, int64_t retry_after);
int order_poll_too_far(struct order *o, const char *what, int64_t retry_after);
void order_finalize(struct order *o);

/* order_authz.c: fetch the authorization (and answer its challenge, poll it). */
void order_authz_fetch(struct authz *a);

#endif
