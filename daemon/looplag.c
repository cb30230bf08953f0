/* looplag.c - event-loop lag probe: a timer's lateness in a fixed log-linear histogram, reported at exit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "looplag.h"
#include "store.h"

/* Samples in microseconds: exact below 64 us, then 32 buckets per power of
 * two up to 2^40 us (12 days); later than that lands in the last bucket. */
#define LL_EXACT 64
#define LL_SUB 32
#define LL_SUB_BITS 5
#define LL_MAX_MSB 39
#define LL_BUCKETS (LL_EXACT + (LL_MAX_MSB - LL_SUB_BITS) * LL_SUB)

/* The timer is a timerfd, not an evtimer: libevent 2.1 reads
 * CLOCK_MONOTONIC_COARSE (one tick: 4 ms at HZ=250), so its timers fire up to
 * a tick late on an idle loop. The kernel's timer is exact: what is left is
 * the time the loop took to get to a ready event. */
struct looplag {
	struct event_base *base;
	struct event *timer;
	int fd;
	char *path;                     /* NULL: the log only */
	long interval_ms;
	int armed;
	int64_t started_us, due_us;
	uint64_t samples, sum_us, max_us, over_5ms, over_50ms;
	uint32_t hist[LL_BUCKETS];
};

static size_t ll_bucket(uint64_t us)
{
	int msb;
	size_t i;

	if (us < LL_EXACT)
		return (size_t)us;
	msb = 63 - __builtin_clzll(us);
	if (msb > LL_MAX_MSB)
		return LL_BUCKETS - 1;
	/* us >> shift is in [LL_SUB, 2 * LL_SUB): the top LL_SUB_BITS + 1 bits. */
	i = LL_EXACT + (size_t)(msb - LL_SUB_BITS - 1) * LL_SUB +
	    (size_t)((us >> (msb - LL_SUB_BITS)) - LL_SUB);
	return i < LL_BUCKETS ? i : LL_BUCKETS - 1;
}

/* The largest value bucket i holds. */
static uint64_t ll_bucket_top(size_t i)
{
	size_t k, shift, m;

	if (i < LL_EXACT)
		return i;
	k = i - LL_EXACT;
	shift = k / LL_SUB + 1;
	m = k % LL_SUB + LL_SUB;
	return ((uint64_t)(m + 1) << shift) - 1;
}

static void ll_record(struct looplag *l, uint64_t us)
{
	l->hist[ll_bucket(us)]++;
	l->samples++;
	l->sum_us += us;
	if (us > l->max_us)
		l->max_us = us;
	if (us > 5000)
		l->over_5ms++;
	if (us > 50000)
		l->over_50ms++;
}

static int ll_arm(struct looplag *l)
{
	struct itimerspec its = { { 0, 0 }, { l->interval_ms / 1000, (l->interval_ms % 1000) * 1000000 } };

	l->due_us = clock_mono_us() + (int64_t)l->interval_ms * 1000;
	return timerfd_settime(l->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void ll_tick(evutil_socket_t fd, short what, void *arg)
{
	struct looplag *l = arg;
	int64_t late = clock_mono_us() - l->due_us;
	uint64_t expirations;
	int rc;

	(void)what;
	if (read(fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
		return;         /* not expired after all (EAGAIN) */
	ll_record(l, late > 0 ? (uint64_t)late : 0);
	rc = ll_arm(l);         /* from now: a long stall is one late sample, not many */
	if (rc < 0)
		log_error(NULL, "loop lag probe: timerfd_settime: %s", strerror(-rc));
}

struct looplag *looplag_new(struct event_base *base, long interval_ms, const char *report_path)
{
	struct looplag *l;
	int rc;

	if (!base || interval_ms <= 0)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->base = base;
	l->interval_ms = interval_ms;
	l->path = report_path ? strdup(report_path) : NULL;
	l->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->fd < 0) {
		log_error(NULL, "loop lag probe: timerfd_create: %s", strerror(errno));
		looplag_free(l);
		return NULL;
	}
	l->timer = event_new(base, l->fd, EV_READ | EV_PERSIST, ll_tick, l);
	if ((report_path && !l->path) || !l->timer || event_add(l->timer, NULL) < 0) {
		log_error(NULL, "loop lag probe: out of memory");
		looplag_free(l);
		return NULL;
	}
	l->started_us = clock_mono_us();
	rc = ll_arm(l);
	if (rc < 0) {
		log_error(NULL, "loop lag probe: timerfd_settime: %s", strerror(-rc));
		looplag_free(l);
		return NULL;
	}
	l->armed = 1;
	return l;
}

struct looplag *looplag_from_env(struct event_base *base)
{
	const char *v = getenv(LOOPLAG_ENV);

	if (!v || !*v)
		return NULL;
	return looplag_new(base, LOOPLAG_INTERVAL_MS, strcmp(v, "-") == 0 ? NULL : v);
}

/* The smallest bucket top with at least q (0..1] of the samples at or below it. */
static double ll_quantile_ms(const struct looplag *l, double q)
{
	uint64_t want = (uint64_t)(q * (double)l->samples + 0.999999), seen = 0;

	if (want == 0)
		want = 1;
	for (size_t i = 0; i < LL_BUCKETS; i++) {
		seen += l->hist[i];
		if (seen >= want) {
			uint64_t top = ll_bucket_top(i);

			return (double)(top < l->max_us ? top : l->max_us) / 1000.0;
		}
	}
	return (double)l->max_us / 1000.0;
}

void looplag_get_stats(const struct looplag *l, struct looplag_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!l)
		return;
	out->samples = l->samples;
	out->interval_ms = l->interval_ms;
	out->run_s = (double)(clock_mono_us() - l->started_us) / 1e6;
	if (!l->samples)
		return;
	out->p50_ms = ll_quantile_ms(l, 0.50);
	out->p90_ms = ll_quantile_ms(l, 0.90);
	out->p99_ms = ll_quantile_ms(l, 0.99);
	out->p999_ms = ll_quantile_ms(l, 0.999);
	out->max_ms = (double)l->max_us / 1000.0;
	out->mean_ms = (double)l->sum_us / (double)l->samples / 1000.0;
	out->over_5ms = l->over_5ms;
	out->over_50ms = l->over_50ms;
}

int looplag_format(const struct looplag_stats *s, char *buf, size_t size)
{
	int n = snprintf(buf, size,
			 "{\"interval_ms\": %ld, \"samples\": %llu, \"p50_ms\": %.3f, "
			 "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f, "
			 "\"mean_ms\": %.3f, \"over_5ms\": %llu, \"over_50ms\": %llu, \"run_s\": %.3f}\n",
			 s->interval_ms, (unsigned long long)s->samples, s->p50_ms, s->p90_ms,
			 s->p99_ms, s->p999_ms, s->max_ms, s->mean_ms,
			 (unsigned long long)s->over_5ms, (unsigned long long)s->over_50ms, s->run_s);

	return n < 0 ? -EIO : (size_t)n >= size ? -ENOSPC : 0;
}

void looplag_free(struct looplag *l)
{
	struct looplag_stats s;
	char buf[512];

	if (!l)
		return;
	if (l->armed) {
		looplag_get_stats(l, &s);
		log_info(NULL, "loop lag: %llu samples every %ld ms, p50 %.3f ms, p99 %.3f ms, "
			 "max %.3f ms", (unsigned long long)s.samples, s.interval_ms, s.p50_ms,
			 s.p99_ms, s.max_ms);
		/* store logs a failure with the path */
		if (l->path && looplag_format(&s, buf, sizeof(buf)) == 0)
			store_write_replace(l->path, buf, strlen(buf), 0644);
	}
	if (l->timer)
		event_free(l->timer);
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l);
}
