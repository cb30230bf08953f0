/* test_timeparse.c - unit tests for the Retry-After and RFC 3339 parsers, with hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timeparse.h"

#define NOV6_1994 784111777LL /* Sun, 06 Nov 1994 08:49:37 GMT */
#define DAY 86400

static void expect_ra(const char *v, int64_t now, int64_t min_s, int64_t max_s, int64_t want)
{
	int64_t got = -12345;
	int r = timeparse_retry_after(v, now, min_s, max_s, &got);

	if (r != 0 || got != want)
		fail_msg("retry_after(\"%s\") = %d, %lld; want 0, %lld", v, r, (long long)got,
			 (long long)want);
}

static void expect_ra_bad(const char *v)
{
	int64_t got = -12345;
	int r = timeparse_retry_after(v, NOV6_1994, 0, INT64_MAX, &got);

	if (r != -EINVAL || got != -12345)
		fail_msg("retry_after(\"%s\") = %d, %lld; want -EINVAL, untouched", v, r,
			 (long long)got);
}

static void expect_3339(const char *s, int64_t want)
{
	int64_t got = -12345;
	int r = timeparse_rfc3339(s, &got);

	if (r != 0 || got != want)
		fail_msg("rfc3339(\"%s\") = %d, %lld; want 0, %lld", s, r, (long long)got,
			 (long long)want);
}

static void expect_3339_bad(const char *s)
{
	int64_t got = -12345;
	int r = timeparse_rfc3339(s, &got);

	if (r != -EINVAL || got != -12345)
		fail_msg("rfc3339(\"%s\") = %d, %lld; want -EINVAL", s, r, (long long)got);
}

static void test_delta_seconds(void **state)
{
	(void)state;
	expect_ra("120", 0, 1, 86400, 120);
	expect_ra("0", 0, 1, 86400, 1);             /* clamped up */
	expect_ra("0", 0, 0, 86400, 0);
	expect_ra("86401", 0, 1, 86400, 86400);     /* clamped down */
	expect_ra("0000005", 0, 1, 86400, 5);       /* leading zeros are digits */
	expect_ra("  7\t", 0, 1, 86400, 7);         /* OWS trimmed */
	expect_ra("\t 3600 \r\n", 0, 1, 86400, 3600);
	expect_ra("99999999999999999999999", 0, 1, 86400, 86400); /* overflow caps */
	expect_ra("9223372036854775807", 0, 0, INT64_MAX, INT64_MAX);
	expect_ra("9223372036854775808", 0, 0, INT64_MAX, INT64_MAX);
	expect_ra("18446744073709551617", 0, 0, INT64_MAX, INT64_MAX);
	expect_ra("5", 0, 10, 10, 10);              /* min == max */
}

static void test_delta_hostile(void **state)
{
	(void)state;
	expect_ra_bad("");
	expect_ra_bad("   ");
	expect_ra_bad("\t\r\n");
	expect_ra_bad("-1");
	expect_ra_bad("+5");
	expect_ra_bad("1e3");
	expect_ra_bad("0x10");
	expect_ra_bad("1.5");
	expect_ra_bad("1 2");
	expect_ra_bad("12s");
	expect_ra_bad("١٢"); /* Arabic-Indic digits are not DIGIT */
	expect_ra_bad("5\v");
	expect_ra_bad("\f5");
	expect_ra_bad("1,2");
	/* min > max is a caller bug */
	int64_t out = -1;
	assert_int_equal(timeparse_retry_after("5", 0, 10, 9, &out), -EINVAL);
	assert_int_equal(timeparse_retry_after(NULL, 0, 0, 9, &out), -EINVAL);
	assert_int_equal(timeparse_retry_after("5", 0, 0, 9, NULL), -EINVAL);
}

static void test_http_date_forms(void **state)
{
	int64_t now = NOV6_1994 - 100;

	(void)state;
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", now, 0, INT64_MAX, 100);
	expect_ra("Sunday, 06-Nov-94 08:49:37 GMT", now, 0, INT64_MAX, 100);
	expect_ra("Sun Nov  6 08:49:37 1994", now, 0, INT64_MAX, 100);
	expect_ra("Sun Nov 06 08:49:37 1994", now, 0, INT64_MAX, 100);
	expect_ra("  Sun, 06 Nov 1994 08:49:37 GMT\r\n", now, 0, INT64_MAX, 100);
	/* In the past, or exactly now: min_s. */
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", NOV6_1994, 0, 86400, 0);
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", NOV6_1994 + 5000, 1, 86400, 1);
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", NOV6_1994 - 1, 1, 86400, 1);
	/* Far future: max_s. */
	expect_ra("Fri, 31 Dec 9999 23:59:59 GMT", 0, 1, 86400, 86400);
	expect_ra("Fri, 31 Dec 9999 23:59:59 GMT", 0, 0, INT64_MAX, 253402300799LL);
	/* Leap second counts as :59. */
	expect_ra("Sat, 31 Dec 2016 23:59:60 GMT", 1483228799LL - 10, 0, INT64_MAX, 10);
	/* Leap day. */
	expect_ra("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000LL - 42, 0, INT64_MAX, 42);
	expect_ra("Wed, 01 Mar 2000 00:00:00 GMT", 951868800LL - 1, 0, INT64_MAX, 1);
	/* Year 0000 is far in the past: min_s. */
	expect_ra("Sat, 01 Jan 0000 00:00:00 GMT", 0, 3, 86400, 3);
	/* A "now" at the edge of int64 does not overflow. */
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN, 0, INT64_MAX, INT64_MAX);
	expect_ra("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MAX, 0, 10, 0);
}

static void test_rfc850_two_digit_year(void **state)
{
	int64_t now2025 = 1735787045LL; /* 2025-01-02 */

	(void)state;
	/* Within 50 years ahead: this century. */
	expect_ra("Wednesday, 01-Jan-70 00:00:00 GMT", now2025, 0, INT64_MAX,
		  3155760000LL - now2025);
	/* A century boundary: "00" seen in 1999 is 2000, not 1900. */
	expect_ra("Saturday, 01-Jan-00 00:00:00 GMT", 946684799LL, 0, INT64_MAX, 1);
	/* More than 50 years ahead: last century, i.e. in the past. */
	expect_ra("Tuesday, 01-Jan-80 00:00:00 GMT", now2025, 0, INT64_MAX, 0);
	expect_ra("Friday, 03-Jan-25 03:04:05 GMT", now2025, 0, INT64_MAX, DAY);
}

static void test_http_date_hostile(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Sun, 06 Nov 1994 08:49:37",          /* missing GMT */
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 gmt",
		"Sun, 06 Nov 1994 08:49:37 GMTx",
		"Sun, 06 Nov 1994 08:49:37 GMT x",    /* trailing garbage */
		"Sun, 06 Nov 1994 08:49 GMT",         /* missing seconds */
		"Sun, 6 Nov 1994 08:49:37 GMT",       /* one-digit day */
		"Sun,  06 Nov 1994 08:49:37 GMT",
		"Sun,06 Nov 1994 08:49:37 GMT",
		"Sun, 06 nov 1994 08:49:37 GMT",      /* month is case-sensitive */
		"Sun, 06 November 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sun, 06 Nov 19945 08:49:37 GMT",
		"sun, 06 Nov 1994 08:49:37 GMT",      /* wrong weekday names */
		"Sunday, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06-Nov-94 08:49:37 GMT",
		"Mon, 06 Nov 1994 08:49:37 GMT",      /* weekday does not match the date */
		"Sux, 06 Nov 1994 08:49:37 GMT",
		"Tue, 30 Feb 1993 00:00:00 GMT",      /* Feb 30 */
		"Thu, 29 Feb 2001 00:00:00 GMT",      /* not a leap year */
		"Wed, 29 Feb 1900 00:00:00 GMT",      /* 1900 is not a leap year */
		"Sun, 31 Nov 1994 08:49:37 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 06 Nov 1994 8:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:3a GMT",
		"Sun, 06 Nov 1994 08-49-37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",   /* rfc850 wants two digits */
		"Sun, 06-Nov-94 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37",
		"Sunday 06-Nov-94 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",            /* asctime pads with a space */
		"Sun Nov   6 08:49:37 1994",
		"Sun Nov  6 08:49:37 1994 GMT",
		"Sun Nov  6 08:49:37 94",
		"Sun  Nov  6 08:49:37 1994",
		"Sun",
		"Sun,",
		"Sun, ",
		"GMT",
		",",
		"Sun, 06 Nov 1994 08:49:37 GMT\v",
		"Sun, 06 Nov -994 08:49:37 GMT",
		"Sun, +6 Nov 1994 08:49:37 GMT",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_ra_bad(bad[i]);
}

static void test_long_strings(void **state)
{
	size_t n = 10 * 1024;
	char *s = malloc(n + 1);

	(void)state;
	assert_non_null(s);
	memset(s, '9', n);
	s[n] = '\0';
	expect_ra(s, 0, 1, 86400, 86400);
	expect_3339_bad(s);
	memset(s, ' ', n);
	expect_ra_bad(s);
	memcpy(s + n / 2, "60", 2);
	expect_ra(s, 0, 1, 86400, 60);
	memset(s, 'A', n);
	expect_ra_bad(s);
	expect_3339_bad(s);
	/* A valid prefix followed by kilobytes of garbage. */
	memset(s, 'x', n);
	memcpy(s, "2025-01-02T03:04:05Z", 20);
	expect_3339_bad(s);
	memcpy(s, "Sun, 06 Nov 1994 08:49:37 GMT", 29);
	expect_ra_bad(s);
	/* Kilobytes of fraction digits. */
	memset(s, '1', n);
	memcpy(s, "2025-01-02T03:04:05.", 20);
	s[n - 1] = 'Z';
	expect_3339_bad(s);
	free(s);
}

static void test_rfc3339_valid(void **state)
{
	(void)state;
	expect_3339("2025-01-02T03:04:05Z", 1735787045LL);
	expect_3339("2025-01-02t03:04:05z", 1735787045LL);
	expect_3339("1970-01-01T00:00:00Z", 0);
	expect_3339("1969-12-31T23:59:59Z", -1);
	expect_3339("2025-01-02T03:04:05.123456789Z", 1735787045LL); /* truncated */
	expect_3339("2025-01-02T03:04:05.9Z", 1735787045LL);
	expect_3339("2025-01-02T04:04:05+01:00", 1735787045LL);
	expect_3339("2025-01-01T22:34:05-04:30", 1735787045LL);
	expect_3339("2025-01-02T03:04:05-00:00", 1735787045LL);
	expect_3339("2025-01-02T03:04:05+00:00", 1735787045LL);
	expect_3339("2025-01-03T03:03:05+23:59", 1735787045LL);
	expect_3339("2024-02-29T12:00:00Z", 1709208000LL);
	expect_3339("2000-02-29T00:00:00Z", 951782400LL);
	expect_3339("9999-12-31T23:59:60Z", 253402300799LL); /* leap second = :59 */
	expect_3339("9999-12-31T23:59:59Z", 253402300799LL);
	expect_3339("0000-01-01T00:00:00Z", -62167219200LL);
	expect_3339("0000-02-29T00:00:00Z", -62167219200LL + 59 * DAY); /* year 0 is leap */
	expect_3339("2016-12-31T23:59:60.5+00:00", 1483228799LL);
	expect_3339("1994-11-06T08:49:37Z", NOV6_1994);
}

static void test_rfc3339_hostile(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		" ",
		"2025-01-02T03:04:05",           /* no offset */
		"2025-01-02T03:04Z",             /* missing seconds */
		"2025-01-02T03:04:5Z",
		"2025-01-02",
		"2025-01-02T",
		"2025-01-02 03:04:05Z",          /* space instead of T */
		"2025-01-02X03:04:05Z",
		" 2025-01-02T03:04:05Z",
		"2025-01-02T03:04:05Z ",
		"2025-01-02T03:04:05Zjunk",      /* trailing garbage */
		"2025-01-02T03:04:05+01:00x",
		"2025-01-02T03:04:05.Z",         /* empty fraction */
		"2025-01-02T03:04:05.1234567890Z", /* 10 fraction digits */
		"2025-01-02T03:04:05,5Z",
		"2025-01-02T03:04:05+24:00",     /* offset hour out of range */
		"2025-01-02T03:04:05+01:60",
		"2025-01-02T03:04:05+0100",
		"2025-01-02T03:04:05+1:00",
		"2025-01-02T03:04:05+01",
		"2025-01-02T03:04:05+",
		"2025-01-02T03:04:05UTC",
		"2025-02-30T00:00:00Z",          /* Feb 30 */
		"2023-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2025-04-31T00:00:00Z",
		"2025-00-10T00:00:00Z",
		"2025-13-10T00:00:00Z",
		"2025-01-00T00:00:00Z",
		"2025-01-32T00:00:00Z",
		"2025-01-02T24:00:00Z",
		"2025-01-02T23:60:00Z",
		"2025-01-02T23:59:61Z",
		"+2025-01-02T03:04:05Z",
		"-2025-01-02T03:04:05Z",
		"20250-01-02T03:04:05Z",
		"225-01-02T03:04:05Z",
		"2025-1-02T03:04:05Z",
		"2025/01/02T03:04:05Z",
		"0x7E9-01-02T03:04:05Z",
		"2025-01-02T03:04:05.-1Z",
		"1735787045",
		"-1",
		"+5",
		"1e3",
		"Sun, 06 Nov 1994 08:49:37 GMT",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_3339_bad(bad[i]);
	int64_t out;
	assert_int_equal(timeparse_rfc3339(NULL, &out), -EINVAL);
	assert_int_equal(timeparse_rfc3339("2025-01-02T03:04:05Z", NULL), -EINVAL);
}

/* Cross-check both parsers against libc's gmtime_r over a wide range of instants. */
static void test_against_gmtime(void **state)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const wdl[] = { "Sunday", "Monday", "Tuesday", "Wednesday",
					   "Thursday", "Friday", "Saturday" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		char buf[96];
		struct tm tm;
		time_t t;
		int64_t got, now;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Years 0000..9999. */
		t = (time_t)((int64_t)(x % 315537897600ULL) - 62167219200LL);
		assert_non_null(gmtime_r(&t, &tm));
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		assert_int_equal(timeparse_rfc3339(buf, &got), 0);
		assert_int_equal(got, (int64_t)t);

		snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
			 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
		now = (int64_t)t - (int64_t)(x % 100000) - 1;
		expect_ra(buf, now, 0, INT64_MAX, (int64_t)t - now);

		snprintf(buf, sizeof(buf), "%s %s %2d %02d:%02d:%02d %04d", wd[tm.tm_wday],
			 mo[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 tm.tm_year + 1900);
		expect_ra(buf, now, 0, INT64_MAX, (int64_t)t - now);

		snprintf(buf, sizeof(buf), "%s, %02d-%s-%02d %02d:%02d:%02d GMT", wdl[tm.tm_wday],
			 tm.tm_mday, mo[tm.tm_mon], (tm.tm_year + 1900) % 100, tm.tm_hour,
			 tm.tm_min, tm.tm_sec);
		expect_ra(buf, now, 0, INT64_MAX, (int64_t)t - now);

		/* Any other weekday is rejected. */
		snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
			 wd[(tm.tm_wday + 1 + (int)(x % 6)) % 7], tm.tm_mday, mo[tm.tm_mon],
			 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		expect_ra_bad(buf);
	}
}

static void test_format(void **state)
{
	char buf[64];
	char small[8];
	const char *r;

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	r = timeparse_format(1735787045LL, buf, sizeof(buf));
	assert_ptr_equal(r, buf);
	assert_string_equal(buf, "2025-01-02 03:04:05");
	setenv("TZ", "EST5", 1);
	tzset();
	assert_string_equal(timeparse_format(1735787045LL, buf, sizeof(buf)),
			    "2025-01-01 22:04:05");
	setenv("TZ", "UTC", 1);
	tzset();
	/* Too small a buffer: truncated, still a NUL-terminated string. */
	r = timeparse_format(1735787045LL, small, sizeof(small));
	assert_ptr_equal(r, small);
	assert_true(strlen(small) < sizeof(small));
	assert_string_equal(timeparse_format(0, buf, 0), "");
	unsetenv("TZ");
	tzset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delta_seconds),
		cmocka_unit_test(test_delta_hostile),
		cmocka_unit_test(test_http_date_forms),
		cmocka_unit_test(test_rfc850_two_digit_year),
		cmocka_unit_test(test_http_date_hostile),
		cmocka_unit_test(test_long_strings),
		cmocka_unit_test(test_rfc3339_valid),
		cmocka_unit_test(test_rfc3339_hostile),
		cmocka_unit_test(test_against_gmtime),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
