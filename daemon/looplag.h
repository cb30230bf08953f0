/* looplag.h - event-loop lag probe: how late the loop serves a periodic kernel timer, summarised at exit (ACMED_LOOP_LAG_REPORT). */
#ifndef ACMED_LOOPLAG_H
#define ACMED_LOOPLAG_H

#include <stdint.h>
#include <event2/event.h>

#define LOOPLAG_ENV "ACMED_LOOP_LAG_REPORT"
#define LOOPLAG_INTERVAL_MS 10

struct looplag;

/* ACMED_LOOP_LAG_REPORT=PATH: a probe on base (a timerfd due every
 * LOOPLAG_INTERVAL_MS, re-armed from each callback) whose report looplag_free
 * writes to PATH ("-": to the log only). NULL, and nothing armed, when the
 * variable is unset or empty; NULL on failure too (logged). Arm it just before
 * the loop runs: a sample is the delay between when the timer was due and when
 * its callback ran, i.e. how long a ready event waited for the loop. */
struct looplag *looplag_from_env(struct event_base *base);
/* The same with explicit settings; report_path NULL: the log only. */
struct looplag *looplag_new(struct event_base *base, long interval_ms, const char *report_path);

struct looplag_stats {
	uint64_t samples;
	long interval_ms;
	/* Percentiles are the upper bound of the histogram bucket holding them
	 * (buckets 1 us wide below 64 us, then 1/32 of a power of two: <= 3.2 %
	 * high), never above max_ms, which is exact. */
	double p50_ms, p90_ms, p99_ms, p999_ms, max_ms, mean_ms;
	uint64_t over_5ms, over_50ms;   /* samples later than that */
	double run_s;                   /* from looplag_new to now */
};
void looplag_get_stats(const struct looplag *l, struct looplag_stats *out);
/* The report as one JSON object and a newline, into buf (truncated to size). */
int looplag_format(const struct looplag_stats *s, char *buf, size_t size);
/* Disarm, log a summary line, write the report to its path, free. NULL is fine. */
void looplag_free(struct looplag *l);

#endif
