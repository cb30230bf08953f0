/* timeparse.c - strict, locale- and TZ-free parsers for Retry-After (RFC 9110) and RFC 3339 times. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timeparse.h"

#define TP_DAY 86400

/* A cursor over [p, end): every parser below consumes exactly what it matches. */
struct tp_cur {
	const char *p;
	const char *end;
};

static const char *const tp_wday_short[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const tp_wday_long[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
					     "Thursday", "Friday", "Saturday" };
static const char *const tp_month[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int tp_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int tp_is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t tp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

/* Year of the given day count since the epoch (inverse of the above, year only). */
static int64_t tp_year_from_days(int64_t z)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;

	return (int64_t)yoe + era * 400 + (m <= 2);
}

static int64_t tp_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int tp_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned tp_days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && tp_is_leap(y) ? 29 : dim[m - 1];
}

/* 0 = Sunday. */
static unsigned tp_weekday(int64_t days)
{
	return (unsigned)(((days % 7) + 7 + 4) % 7);
}

/* Exactly n digits. */
static int tp_digits(struct tp_cur *c, int n, int *out)
{
	int v = 0;

	if (c->end - c->p < n)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (!tp_is_digit(c->p[i]))
			return -EINVAL;
		v = v * 10 + (c->p[i] - '0');
	}
	c->p += n;
	*out = v;
	return 0;
}

/* The literal s, case-sensitive. */
static int tp_lit(struct tp_cur *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return -EINVAL;
	c->p += n;
	return 0;
}

/* A run of letters that equals one of the n names; returns its index. */
static int tp_name(struct tp_cur *c, const char *const *names, int n, int *idx)
{
	const char *q = c->p;

	while (q < c->end && tp_is_alpha(*q))
		q++;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]);

		if ((size_t)(q - c->p) == len && memcmp(c->p, names[i], len) == 0) {
			*idx = i;
			c->p = q;
			return 0;
		}
	}
	return -EINVAL;
}

static int tp_month_name(struct tp_cur *c, int *mon)
{
	int r = tp_name(c, tp_month, 12, mon);

	if (r == 0)
		(*mon)++;
	return r;
}

/* "HH:MM:SS"; a leap second (60) counts as 59. */
static int tp_time_of_day(struct tp_cur *c, int *secs)
{
	int h, m, s;

	if (tp_digits(c, 2, &h) || tp_lit(c, ":") || tp_digits(c, 2, &m) || tp_lit(c, ":") ||
	    tp_digits(c, 2, &s))
		return -EINVAL;
	if (h > 23 || m > 59 || s > 60)
		return -EINVAL;
	if (s == 60)
		s = 59;
	*secs = h * 3600 + m * 60 + s;
	return 0;
}

/* Validates the calendar date and the weekday, if one was given (wday >= 0). */
static int tp_make_time(int64_t y, int mon, int day, int secs, int wday, int64_t *out)
{
	int64_t days;

	if (mon < 1 || mon > 12 || day < 1 || (unsigned)day > tp_days_in_month(y, (unsigned)mon))
		return -EINVAL;
	days = tp_days_from_civil(y, (unsigned)mon, (unsigned)day);
	if (wday >= 0 && tp_weekday(days) != (unsigned)wday)
		return -EINVAL;
	*out = days * TP_DAY + secs;
	return 0;
}

/* IMF-fixdate / rfc850-date / asctime-date (RFC 9110 section 5.6.7). */
static int tp_http_date(struct tp_cur *c, int64_t now, int64_t *out)
{
	int wday, day, mon, year, secs;
	struct tp_cur save = *c;

	if (tp_name(c, tp_wday_short, 7, &wday) == 0) {
		if (tp_lit(c, ", ") == 0) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (tp_digits(c, 2, &day) || tp_lit(c, " ") || tp_month_name(c, &mon) ||
			    tp_lit(c, " ") || tp_digits(c, 4, &year) || tp_lit(c, " ") ||
			    tp_time_of_day(c, &secs) || tp_lit(c, " GMT"))
				return -EINVAL;
		} else {
			/* asctime-date: Sun Nov  6 08:49:37 1994 */
			if (tp_lit(c, " ") || tp_month_name(c, &mon) || tp_lit(c, " "))
				return -EINVAL;
			if (tp_lit(c, " ") == 0) {
				if (tp_digits(c, 1, &day))
					return -EINVAL;
			} else if (tp_digits(c, 2, &day)) {
				return -EINVAL;
			}
			if (tp_lit(c, " ") || tp_time_of_day(c, &secs) || tp_lit(c, " ") ||
			    tp_digits(c, 4, &year))
				return -EINVAL;
		}
	} else {
		int64_t now_year, full;

		/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
		*c = save;
		if (tp_name(c, tp_wday_long, 7, &wday) || tp_lit(c, ", ") ||
		    tp_digits(c, 2, &day) || tp_lit(c, "-") || tp_month_name(c, &mon) ||
		    tp_lit(c, "-") || tp_digits(c, 2, &year) || tp_lit(c, " ") ||
		    tp_time_of_day(c, &secs) || tp_lit(c, " GMT"))
			return -EINVAL;
		/* The two-digit year is the one within (now - 50, now + 50] years:
		 * more than 50 years ahead means the previous century. */
		now_year = tp_year_from_days(tp_floor_div(now, TP_DAY));
		full = tp_floor_div(now_year, 100) * 100 + year;
		if (full > now_year + 50)
			full -= 100;
		else if (full <= now_year - 50)
			full += 100;
		if (c->p != c->end)
			return -EINVAL;
		return tp_make_time(full, mon, day, secs, wday, out);
	}
	if (c->p != c->end)
		return -EINVAL;
	return tp_make_time(year, mon, day, secs, wday, out);
}

static int tp_is_ows(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int timeparse_retry_after(const char *value, int64_t now, int64_t min_s, int64_t max_s,
			  int64_t *out_seconds)
{
	struct tp_cur c;
	int64_t secs;

	if (!value || !out_seconds || min_s > max_s)
		return -EINVAL;
	c.p = value;
	c.end = value + strlen(value);
	while (c.p < c.end && tp_is_ows(*c.p))
		c.p++;
	while (c.end > c.p && tp_is_ows(c.end[-1]))
		c.end--;
	if (c.p == c.end)
		return -EINVAL;

	if (tp_is_digit(*c.p)) {
		/* delta-seconds = 1*DIGIT; saturate instead of overflowing. */
		secs = 0;
		for (const char *q = c.p; q < c.end; q++) {
			int d;

			if (!tp_is_digit(*q))
				return -EINVAL;
			d = *q - '0';
			if (secs > (INT64_MAX - d) / 10)
				secs = INT64_MAX;
			else
				secs = secs * 10 + d;
		}
	} else {
		int64_t when;

		if (tp_http_date(&c, now, &when))
			return -EINVAL;
		if (when <= now)
			secs = 0;
		else if (__builtin_sub_overflow(when, now, &secs))
			secs = INT64_MAX;
	}
	if (secs < min_s)
		secs = min_s;
	if (secs > max_s)
		secs = max_s;
	*out_seconds = secs;
	return 0;
}

int timeparse_rfc3339(const char *s, int64_t *out)
{
	struct tp_cur c;
	int year, mon, day, secs, off = 0;
	int64_t t;

	if (!s || !out)
		return -EINVAL;
	c.p = s;
	c.end = s + strlen(s);
	if (tp_digits(&c, 4, &year) || tp_lit(&c, "-") || tp_digits(&c, 2, &mon) ||
	    tp_lit(&c, "-") || tp_digits(&c, 2, &day))
		return -EINVAL;
	if (c.p == c.end || (*c.p != 'T' && *c.p != 't'))
		return -EINVAL;
	c.p++;
	if (tp_time_of_day(&c, &secs))
		return -EINVAL;
	if (c.p < c.end && *c.p == '.') {
		int n = 0;

		c.p++;
		while (c.p < c.end && tp_is_digit(*c.p)) {
			c.p++;
			n++;
		}
		if (n < 1 || n > 9)
			return -EINVAL;
	}
	if (c.p == c.end)
		return -EINVAL;
	if (*c.p == 'Z' || *c.p == 'z') {
		c.p++;
	} else if (*c.p == '+' || *c.p == '-') {
		int sign = *c.p == '-' ? -1 : 1, oh, om;

		c.p++;
		if (tp_digits(&c, 2, &oh) || tp_lit(&c, ":") || tp_digits(&c, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (c.p != c.end)
		return -EINVAL;
	if (tp_make_time(year, mon, day, secs, -1, &t))
		return -EINVAL;
	*out = t - off;
	return 0;
}

const char *timeparse_format(int64_t t, char *buf, unsigned len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!buf || len == 0)
		return "";
	if ((int64_t)tt != t || !localtime_r(&tt, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "@%" PRId64, t);
	return buf;
}

const char *timeparse_format_duration(int64_t s, char *buf, unsigned len)
{
	static const struct { int64_t unit; char c; } units[] = {
		{ TP_DAY, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};

	if (!buf || len == 0)
		return "";
	if (s < 0)
		s = 0;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s % units[i].unit == 0 || s >= 2 * units[i].unit) {
			if (s >= units[i].unit) {
				snprintf(buf, len, "%" PRId64 "%c", (s + units[i].unit / 2) / units[i].unit,
					 units[i].c);
				return buf;
			}
		}
	}
	snprintf(buf, len, "%" PRId64 "s", s);
	return buf;
}

const char *timeparse_format_ms(long ms, char *buf, unsigned len)
{
	if (!buf || len == 0)
		return "";
	if (ms % 1000 == 0)
		snprintf(buf, len, "%ld s", ms / 1000);
	else
		snprintf(buf, len, "%ld ms", ms);
	return buf;
}
