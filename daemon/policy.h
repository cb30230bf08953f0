/* policy.h - the renewal policy as pure arithmetic: when to renew, how long to back off, how often to order. */
#ifndef ACMED_POLICY_H
#define ACMED_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "acme_err.h"

#define POLICY_DAY (24 * 3600)

/* The youngest a certificate may be and still be replaced by the lifetime
 * rule or renew_before: the larger of one hour and a tenth of its lifetime.
 * Whatever the config says, a certificate issued less than this ago is not
 * ordered again (unless an admin forces it or the CA's ARI window asks for
 * it), so no setting can make acmed order without pause. */
int64_t policy_reissue_floor(int64_t not_before, int64_t not_after);

/* 1 when renew_before leaves a certificate valid [not_before, not_after] at
 * least policy_reissue_floor() of life before its renewal; 0 when it would
 * renew the new certificate (almost) at once. */
int policy_renew_before_usable(int64_t not_before, int64_t not_after, int64_t renew_before);

/* When to renew a certificate valid [not_before, not_after]: not_after -
 * renew_before when set (> 0) and usable, else when 1/3 of the lifetime is
 * left (1/2 for lifetimes under 10 days), minus a spread of up to 1/100 of
 * the lifetime (at most one hour) so a fleet does not renew in the same
 * second; never before not_before + policy_reissue_floor(). rnd is a uniform
 * random 64-bit value. */
int64_t policy_renewal_time(int64_t not_before, int64_t not_after, int64_t renew_before,
			    uint64_t rnd);
/* chosen, moved no earlier than not_before + the floor. */
int64_t policy_floor_time(int64_t not_before, int64_t not_after, int64_t chosen);

/* Seconds to wait after the failures-th consecutive failure of class c
 * (DESIGN.md "Errors and backoff"); retry_after >= 0 wins. A CA that is
 * unavailable is probed instead (policy_probe_delay). */
int64_t policy_backoff(enum acme_err_class c, int failures, int64_t retry_after, uint64_t rnd);

/* Seconds until the next probe of a CA that has been unavailable for
 * down_for seconds: 1/16 of that, at least 40 s, at most 10 min, +-20 %
 * jitter; retry_after >= 0 wins. A short outage is noticed soon after it ends
 * (a 10-minute one within 48 s, ~15 probes), a long one costs a request
 * every 10 minutes. */
#define POLICY_PROBE_MIN      40
#define POLICY_PROBE_MAX      600
#define POLICY_PROBE_FRACTION 16
int64_t policy_probe_delay(int64_t down_for, int64_t retry_after, uint64_t rnd);

/* The ceiling on new orders per CA: at most `limit` in any hour (a sliding
 * window). times[] holds the creation times of the last orders, oldest
 * first, at most POLICY_ORDERS_MAX of them. */
#define POLICY_ORDER_WINDOW 3600
#define POLICY_ORDERS_DEFAULT 50        /* an hour; Let's Encrypt allows 300 per 3 h */
#define POLICY_ORDERS_MAX 100000
struct policy_orders {
	int64_t *times;
	size_t n, cap;
};
/* Forget orders older than the window. */
void policy_orders_expire(struct policy_orders *w, int64_t now);
/* 0 when a new order may start now, else the instant it may. */
int64_t policy_orders_next_free(struct policy_orders *w, int64_t now, int limit);
/* Remember an order started at now; -ENOMEM. */
int policy_orders_add(struct policy_orders *w, int64_t now);
void policy_orders_clear(struct policy_orders *w);

#endif
