/* timeparse.h - parsers for times that come from the network: Retry-After, RFC 3339. */
#ifndef ACMED_TIMEPARSE_H
#define ACMED_TIMEPARSE_H

#include <stdint.h>

/* Retry-After (RFC 9110): delta-seconds or an HTTP-date (IMF-fixdate, and
 * the obsolete RFC 850 / asctime forms). Result in seconds from now (0 when
 * the date is in the past), clamped to [min_s, max_s]. -EINVAL on garbage. */
int timeparse_retry_after(const char *value, int64_t now, int64_t min_s, int64_t max_s,
			  int64_t *out_seconds);
/* RFC 3339 date-time ("2025-01-02T03:04:05Z", fractional seconds and
 * numeric offsets accepted) to unix seconds. -EINVAL on garbage. */
int timeparse_rfc3339(const char *s, int64_t *out);
/* Format unix seconds as local "YYYY-MM-DD HH:MM:SS" into buf. */
const char *timeparse_format(int64_t t, char *buf, unsigned len);
/* A delay for messages: "60 s" when whole seconds, else "250 ms". */
const char *timeparse_format_ms(long ms, char *buf, unsigned len);
/* A duration the way the config writes it: "90d", "12h", "15m", "90s"
 * (rounded to the largest unit it holds twice, or holds exactly). */
const char *timeparse_format_duration(int64_t s, char *buf, unsigned len);

#endif
