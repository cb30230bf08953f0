/* test_policy.c - renewal-time, re-issue floor, backoff and order-ceiling arithmetic (DESIGN.md "Errors and backoff"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy.h"

#define DAY 86400

static void test_renewal_default_third(void **state)
{
	int64_t nb = 1700000000, na = nb + 90 * DAY;

	/* rnd 0: no spread: exactly when 1/3 (30 days) is left. */
	assert_int_equal(policy_renewal_time(nb, na, 0, 0), na - 30 * DAY);
	/* The spread only moves it earlier, by at most an hour. */
	for (uint64_t r = 1; r < 100000; r += 997) {
		int64_t t = policy_renewal_time(nb, na, 0, r * 0x9e3779b97f4a7c15ULL);
		assert_true(t <= na - 30 * DAY);
		assert_true(t >= na - 30 * DAY - 3600);
	}
}

static void test_renewal_short_lived_half(void **state)
{
	int64_t nb = 1700000000, na = nb + 6 * DAY;

	assert_int_equal(policy_renewal_time(nb, na, 0, 0), na - 3 * DAY);
	/* 10 days exactly is not "under 10 days": 1/3 rule. */
	na = nb + 10 * DAY;
	assert_int_equal(policy_renewal_time(nb, na, 0, 0), na - 10 * DAY / 3);
	/* Spread for a 6 day cert is at most 1/100 of its life. */
	na = nb + 6 * DAY;
	for (uint64_t r = 0; r < 5000; r += 7) {
		int64_t t = policy_renewal_time(nb, na, 0, r);
		assert_true(t >= na - 3 * DAY - 6 * DAY / 100);
	}
}

static void test_renewal_renew_before(void **state)
{
	int64_t nb = 1700000000, na = nb + 90 * DAY;

	assert_int_equal(policy_renewal_time(nb, na, 30 * DAY, 0), na - 30 * DAY);
	assert_int_equal(policy_renewal_time(nb, na, 7 * DAY, 0), na - 7 * DAY);
	/* renew_before longer than the lifetime would renew at once: the
	 * default rule instead (1/3 of 90 days left). */
	assert_int_equal(policy_renewal_time(nb, na, 100 * DAY, 0), na - 30 * DAY);
	assert_int_equal(policy_renewal_time(nb, na, 2000 * DAY, 0), na - 30 * DAY);
	assert_false(policy_renew_before_usable(nb, na, 2000 * DAY));
	/* The floor for 90 days is 9 days: 81 days is the longest usable. */
	assert_int_equal(policy_reissue_floor(nb, na), 9 * DAY);
	assert_true(policy_renew_before_usable(nb, na, 81 * DAY));
	assert_int_equal(policy_renewal_time(nb, na, 81 * DAY, 0), nb + 9 * DAY);
	assert_false(policy_renew_before_usable(nb, na, 81 * DAY + 1));
	assert_int_equal(policy_renewal_time(nb, na, 81 * DAY + 1, 0), na - 30 * DAY);
	/* A 6-day certificate and renew_before 7d: the default rule (1/2). */
	na = nb + 6 * DAY;
	assert_int_equal(policy_renewal_time(nb, na, 7 * DAY, 0), na - 3 * DAY);
}

static void test_reissue_floor(void **state)
{
	int64_t nb = 1700000000;

	(void)state;
	/* A tenth of the lifetime, at least an hour. */
	assert_int_equal(policy_reissue_floor(nb, nb + 90 * DAY), 9 * DAY);
	assert_int_equal(policy_reissue_floor(nb, nb + 6 * DAY), 6 * DAY / 10);
	assert_int_equal(policy_reissue_floor(nb, nb + 5 * 3600), 3600);
	assert_int_equal(policy_reissue_floor(nb, nb), 3600);
	assert_int_equal(policy_reissue_floor(nb, nb - 50), 3600);
	/* Whatever the rule, no renewal before notBefore + floor, spread included:
	 * a 2-hour certificate renews no earlier than an hour after notBefore. */
	for (uint64_t r = 0; r < 100000; r += 37)
		assert_true(policy_renewal_time(nb, nb + 7200, 0, r * 0x9e3779b97f4a7c15ULL) >= nb + 3600);
	/* An instant in the past or right after issuance is moved to the floor. */
	assert_int_equal(policy_floor_time(nb, nb + 90 * DAY, nb - 100), nb + 9 * DAY);
	assert_int_equal(policy_floor_time(nb, nb + 90 * DAY, nb + 20 * DAY), nb + 20 * DAY);
	/* No lifetime known: left alone. */
	assert_int_equal(policy_floor_time(0, 0, 5), 5);
}

static void test_order_ceiling(void **state)
{
	struct policy_orders w = {0};
	int64_t t0 = 1700000000;

	(void)state;
	/* Empty: free now. */
	assert_int_equal(policy_orders_next_free(&w, t0, 3), 0);
	assert_int_equal(policy_orders_add(&w, t0), 0);
	assert_int_equal(policy_orders_add(&w, t0 + 10), 0);
	assert_int_equal(policy_orders_next_free(&w, t0 + 20, 3), 0);
	assert_int_equal(policy_orders_add(&w, t0 + 20), 0);
	/* Three in the hour: the next one when the first is an hour old. */
	assert_int_equal(policy_orders_next_free(&w, t0 + 30, 3), t0 + 3600);
	assert_int_equal(policy_orders_next_free(&w, t0 + 3599, 3), t0 + 3600);
	assert_int_equal(policy_orders_next_free(&w, t0 + 3600, 3), 0);
	assert_int_equal(w.n, 2);                     /* the old one expired */
	/* A lower limit after a reload: wait for enough of them to expire. */
	assert_int_equal(policy_orders_next_free(&w, t0 + 3600, 1), t0 + 20 + 3600);
	/* A clock that stepped back keeps the list sorted. */
	assert_int_equal(policy_orders_add(&w, t0 + 15), 0);
	assert_true(w.times[0] <= w.times[1] && w.times[1] <= w.times[2]);
	/* Nonsense limits count as 1. */
	assert_true(policy_orders_next_free(&w, t0 + 3600, 0) > 0);
	policy_orders_clear(&w);
	assert_int_equal(w.n, 0);
	/* Bounded memory whatever the rate. */
	for (int i = 0; i < POLICY_ORDERS_MAX + 10; i++)
		assert_int_equal(policy_orders_add(&w, t0), 0);
	assert_int_equal(w.n, POLICY_ORDERS_MAX);
	policy_orders_clear(&w);
}

static void test_renewal_hostile(void **state)
{
	/* notAfter before notBefore: treated as zero lifetime, no spread, no crash. */
	assert_int_equal(policy_renewal_time(2000, 1000, 0, 12345), 1000);
	assert_int_equal(policy_renewal_time(0, 0, 0, UINT64_MAX), 0);
}

static void test_backoff_unavailable(void **state)
{
	/* down for -> the probe interval before jitter */
	static const int64_t down[] = { -5, 0, 30, 639, 640, 1600, 3200, 9599, 9600, 86400, INT64_MAX };
	static const int64_t base[] = { 40, 40, 40, 40, 40, 100, 200, 599, 600, 600, 600 };

	(void)state;
	for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++) {
		int64_t b = base[i];

		/* rnd 0 is the low edge, -20 %. */
		assert_int_equal(policy_probe_delay(down[i], -1, 0), b - b / 5);
		for (uint64_t r = 0; r < 2000; r += 13) {
			int64_t d = policy_probe_delay(down[i], -1, r * 2654435761ULL);
			assert_true(d >= b - b / 5);
			assert_true(d <= b + b / 5);
		}
	}
	assert_int_equal(policy_probe_delay(100, 7, 99), 7);          /* Retry-After wins */
	assert_int_equal(policy_probe_delay(100000, 0, 99), 0);
	/* The budget: a 10-minute outage costs at most ~16 probes
	 * (even with the shortest jitter) and the one after it comes <= 48 s later. */
	{
		int64_t t = 0;
		int probes = 0;

		while (t < 600) {
			t += policy_probe_delay(t, -1, 0);
			probes++;
		}
		assert_true(probes <= 19);
		assert_true(t - 600 <= 48);
	}
	assert_int_equal(policy_backoff(ACME_ERR_UNAVAILABLE, 3, -1, 0), 32);
}

static void test_backoff_classes(void **state)
{
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 1, -1, 5), 60);
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 2, -1, 5), 600);
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 3, -1, 5), 6000);
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 4, -1, 5), DAY);
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 40, -1, 5), DAY);
	assert_int_equal(policy_backoff(ACME_ERR_INPUT, 1, -1, 5), DAY);
	assert_int_equal(policy_backoff(ACME_ERR_RATELIMIT, 1, -1, 5), 3600);
	assert_int_equal(policy_backoff(ACME_ERR_LOCAL, 1, -1, 5), 60);
	/* Retry-After wins over every class. */
	assert_int_equal(policy_backoff(ACME_ERR_RATELIMIT, 1, 7200, 5), 7200);
	assert_int_equal(policy_backoff(ACME_ERR_UNAVAILABLE, 3, 17, 5), 17);
	assert_int_equal(policy_backoff(ACME_ERR_INPUT, 1, 0, 5), 0);
	/* Nonsense failure counts are treated as the first failure. */
	assert_int_equal(policy_backoff(ACME_ERR_CERT, 0, -1, 5), 60);
	assert_int_equal(policy_backoff(ACME_ERR_CERT, -3, -1, 5), 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renewal_default_third),
		cmocka_unit_test(test_renewal_short_lived_half),
		cmocka_unit_test(test_renewal_renew_before),
		cmocka_unit_test(test_renewal_hostile),
		cmocka_unit_test(test_reissue_floor),
		cmocka_unit_test(test_order_ceiling),
		cmocka_unit_test(test_backoff_unavailable),
		cmocka_unit_test(test_backoff_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
