/* test_looplag.c - the loop lag probe with the fake clock: samples, percentiles, the report, the environment switch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "fakeclock.h"
#include "looplag.h"

static struct event_base *base;

static int setup(void **state)
{
	(void)state;
	fakeclock_freeze();
	base = event_base_new();
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	event_base_free(base);
	return 0;
}

/* The probe's timer is the kernel's (a timerfd, in real time); its lateness is
 * read on acmed's clock, which the test moves: let interval + late_ms pass on
 * it, then run the loop until the timer has been served once. */
static void tick(struct looplag *l, long interval_ms, long late_ms)
{
	struct looplag_stats s;
	uint64_t before;

	looplag_get_stats(l, &s);
	before = s.samples;
	fakeclock_advance_ms(interval_ms + late_ms);
	while (s.samples == before) {
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
		looplag_get_stats(l, &s);
	}
	assert_int_equal(s.samples, before + 1);
}

static void test_env_switch(void **state)
{
	(void)state;
	unsetenv(LOOPLAG_ENV);
	assert_null(looplag_from_env(base));
	setenv(LOOPLAG_ENV, "", 1);
	assert_null(looplag_from_env(base));
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
	setenv(LOOPLAG_ENV, "-", 1);            /* the log only */
	{
		struct looplag *l = looplag_from_env(base);
		struct looplag_stats s;

		assert_non_null(l);
		assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 1);
		tick(l, LOOPLAG_INTERVAL_MS, 0);
		looplag_get_stats(l, &s);
		assert_int_equal(s.samples, 1);
		assert_int_equal(s.interval_ms, LOOPLAG_INTERVAL_MS);
		looplag_free(l);
	}
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
	unsetenv(LOOPLAG_ENV);
	looplag_free(NULL);
}

/* On time: 0; a stall of many intervals is one late sample, not many. */
static void test_one_sample_per_stall(void **state)
{
	struct looplag *l = looplag_new(base, 1, NULL);
	struct looplag_stats s;

	(void)state;
	assert_non_null(l);
	looplag_get_stats(l, &s);
	assert_int_equal(s.samples, 0);
	assert_true(s.p99_ms == 0 && s.max_ms == 0);
	tick(l, 1, 0);
	tick(l, 1, 250);                        /* the loop was busy for 250 ms */
	tick(l, 1, 0);
	looplag_get_stats(l, &s);
	assert_int_equal(s.samples, 3);
	assert_true(s.max_ms == 250.0);
	assert_true(s.p50_ms == 0.0);
	assert_int_equal(s.over_50ms, 1);
	assert_int_equal(s.over_5ms, 1);
	looplag_free(l);
}

static void test_percentiles_and_report(void **state)
{
	char dir[] = "/tmp/acmed-test-looplag-XXXXXX", path[64], buf[512], want[64];
	struct looplag *l;
	struct looplag_stats s;
	FILE *f;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lag.json", dir);
	l = looplag_new(base, 1, path);
	assert_non_null(l);
	/* 200 samples: 196 on time, 2 at 3 ms, one at 7 ms, one at 120 ms. */
	for (int i = 0; i < 196; i++)
		tick(l, 1, 0);
	tick(l, 1, 3);
	tick(l, 1, 7);
	tick(l, 1, 3);
	tick(l, 1, 120);
	looplag_get_stats(l, &s);
	assert_int_equal(s.samples, 200);
	assert_true(s.p50_ms == 0.0);
	assert_true(s.p90_ms == 0.0);
	/* the 198th of 200: 3 ms, reported as the top of its bucket (2944..3007 us) */
	assert_true(s.p99_ms == 3.007);
	assert_true(s.p999_ms == 120.0);        /* the 200th: capped at the exact max */
	assert_true(s.max_ms == 120.0);
	assert_int_equal(s.over_5ms, 2);
	assert_int_equal(s.over_50ms, 1);
	assert_true(s.mean_ms > 0.6649 && s.mean_ms < 0.6651);  /* 133 ms / 200 */
	assert_true(s.run_s > 0.332 && s.run_s < 0.334);        /* 200 * 1 ms + 133 ms */
	looplag_free(l);

	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_int_equal(buf[0], '{');
	assert_int_equal(buf[n - 1], '\n');
	assert_non_null(strstr(buf, "\"interval_ms\": 1,"));
	assert_non_null(strstr(buf, "\"samples\": 200,"));
	assert_non_null(strstr(buf, "\"p50_ms\": 0.000,"));
	assert_non_null(strstr(buf, "\"p99_ms\": 3.007,"));
	assert_non_null(strstr(buf, "\"max_ms\": 120.000,"));
	assert_non_null(strstr(buf, "\"over_5ms\": 2,"));
	snprintf(want, sizeof(want), "\"over_50ms\": %d,", 1);
	assert_non_null(strstr(buf, want));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A percentile is never below the true value and at most 1/32 above it. */
static void test_bucket_error(void **state)
{
	static const long lates[] = { 1, 2, 5, 6, 17, 50, 51, 99, 250, 999, 4096, 30000 };

	(void)state;
	for (size_t i = 0; i < sizeof(lates) / sizeof(lates[0]); i++) {
		struct looplag *l = looplag_new(base, 1, NULL);
		struct looplag_stats s;
		double v = (double)lates[i];

		assert_non_null(l);
		tick(l, 1, lates[i]);
		tick(l, 1, lates[i]);
		tick(l, 1, 40000);              /* the max, above every value tested */
		looplag_get_stats(l, &s);
		assert_int_equal(s.samples, 3);
		assert_true(s.p50_ms >= v);
		assert_true(s.p50_ms <= v * (1.0 + 1.0 / 32) + 0.001);
		assert_true(s.max_ms == 40000.0);
		looplag_free(l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_env_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_sample_per_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_percentiles_and_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_error, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
