/* policy.c - the renewal policy as pure arithmetic: when to renew, how long to back off, how often to order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static int64_t lifetime_of(int64_t not_before, int64_t not_after)
{
	return not_after > not_before ? not_after - not_before : 0;
}

int64_t policy_reissue_floor(int64_t not_before, int64_t not_after)
{
	int64_t tenth = lifetime_of(not_before, not_after) / 10;

	return tenth > 3600 ? tenth : 3600;
}

int policy_renew_before_usable(int64_t not_before, int64_t not_after, int64_t renew_before)
{
	int64_t lifetime = lifetime_of(not_before, not_after);

	return renew_before <= lifetime - policy_reissue_floor(not_before, not_after);
}

int64_t policy_floor_time(int64_t not_before, int64_t not_after, int64_t chosen)
{
	int64_t floor;

	if (not_after <= not_before)
		return chosen;             /* no lifetime: nothing to protect */
	floor = not_before + policy_reissue_floor(not_before, not_after);
	return chosen < floor ? floor : chosen;
}

int64_t policy_renewal_time(int64_t not_before, int64_t not_after, int64_t renew_before,
			    uint64_t rnd)
{
	int64_t lifetime = lifetime_of(not_before, not_after), t, spread;

	if (renew_before > 0 && policy_renew_before_usable(not_before, not_after, renew_before))
		t = not_after - renew_before;
	else if (lifetime < 10 * POLICY_DAY)
		t = not_after - lifetime / 2;
	else
		t = not_after - lifetime / 3;
	spread = lifetime / 100;
	if (spread > 3600)
		spread = 3600;
	if (spread > 0)
		t -= (int64_t)(rnd % (uint64_t)(spread + 1));
	return policy_floor_time(not_before, not_after, t);
}

int64_t policy_probe_delay(int64_t down_for, int64_t retry_after, uint64_t rnd)
{
	int64_t d, span;

	if (retry_after >= 0)
		return retry_after;
	d = down_for > 0 ? down_for / POLICY_PROBE_FRACTION : 0;
	if (d < POLICY_PROBE_MIN)
		d = POLICY_PROBE_MIN;
	if (d > POLICY_PROBE_MAX)
		d = POLICY_PROBE_MAX;
	span = d * 2 / 5;                     /* 40 % of d: from -20 % to +20 % */
	return d - d / 5 + (int64_t)(rnd % (uint64_t)(span + 1));
}

int64_t policy_backoff(enum acme_err_class c, int failures, int64_t retry_after, uint64_t rnd)
{
	static const int64_t cert_steps[] = { 60, 600, 6000 };

	if (failures < 1)
		failures = 1;
	if (retry_after >= 0)
		return retry_after;
	switch (c) {
	case ACME_ERR_UNAVAILABLE:
		return policy_probe_delay(0, -1, rnd);    /* the CA is probed, not the job */
	case ACME_ERR_RATELIMIT:
		return 3600;
	case ACME_ERR_INPUT:
		return POLICY_DAY;
	case ACME_ERR_CERT:
	case ACME_ERR_LOCAL:
	case ACME_ERR_NONE:
	default:
		if (failures <= 3)
			return cert_steps[failures - 1];
		return POLICY_DAY;
	}
}

/* ---------- the ceiling on new orders ---------- */

void policy_orders_expire(struct policy_orders *w, int64_t now)
{
	size_t k = 0;

	while (k < w->n && w->times[k] <= now - POLICY_ORDER_WINDOW)
		k++;
	if (k) {
		memmove(w->times, w->times + k, (w->n - k) * sizeof(*w->times));
		w->n -= k;
	}
}

int64_t policy_orders_next_free(struct policy_orders *w, int64_t now, int limit)
{
	policy_orders_expire(w, now);
	if (limit < 1)
		limit = 1;
	if (w->n < (size_t)limit)
		return 0;
	/* The oldest order whose expiry brings the count under the limit. */
	return w->times[w->n - (size_t)limit] + POLICY_ORDER_WINDOW;
}

int policy_orders_add(struct policy_orders *w, int64_t now)
{
	if (w->n == POLICY_ORDERS_MAX) {
		memmove(w->times, w->times + 1, (w->n - 1) * sizeof(*w->times));
		w->n--;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		int64_t *t = realloc(w->times, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		w->times = t;
		w->cap = cap;
	}
	/* Kept sorted even if the clock stepped back. */
	size_t i = w->n;
	while (i > 0 && w->times[i - 1] > now) {
		w->times[i] = w->times[i - 1];
		i--;
	}
	w->times[i] = now;
	w->n++;
	return 0;
}

void policy_orders_clear(struct policy_orders *w)
{
	free(w->times);
	memset(w, 0, sizeof(*w));
}
