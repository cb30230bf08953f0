/* fdguard.c - file descriptors as a budget: RLIMIT_NOFILE raised at start-up, a reserve listeners leave free, accept() paused on EMFILE. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clock.h"
#include "fdguard.h"
#include "log.h"

/* ---------- the limit and the reserve ---------- */

static long rlim_long(rlim_t v)
{
	return v == RLIM_INFINITY || v > (rlim_t)LONG_MAX ? LONG_MAX : (long)v;
}

long fdguard_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return rlim_long(rl.rlim_cur);
}

long fdguard_raise_limit(void)
{
	struct rlimit rl;
	long was;
	int err;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		err = -errno;
		log_error(NULL, "cannot read the file descriptor limit: %s", strerror(errno));
		return err;
	}
	was = rlim_long(rl.rlim_cur);
	if (rl.rlim_cur == rl.rlim_max)
		return was;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		/* A sandbox without @resources: LimitNOFILE= sets both limits instead. */
		log_info(NULL, "file descriptors: keeping the limit of %ld (raising it to %ld: %s)",
			 was, rlim_long(rl.rlim_max), strerror(errno));
		return was;
	}
	log_debug(NULL, "file descriptors: limit raised from %ld to %ld", was, rlim_long(rl.rlim_max));
	return rlim_long(rl.rlim_max);
}

size_t fdguard_conn_cap(size_t want)
{
	long lim = fdguard_limit(), reserve, room;

	if (want == 0)
		want = 1;
	if (lim <= 0)
		return want;
	reserve = lim / 8 > FDGUARD_RESERVE_MIN ? lim / 8 : FDGUARD_RESERVE_MIN;
	room = lim - reserve;
	if (room < 1)
		room = 1;
	return (unsigned long)room < want ? (size_t)room : want;
}

/* ---------- accept() paused, not spun ---------- */

struct fdguard_pause {
	char *what;
	fdguard_accept_fn set_accepting;
	void *arg;
	struct event *timer;    /* paused: when to accept again; else: end of the episode */
	int paused;
	int episode;            /* its start was logged, its end not yet */
	int64_t delay_ms;       /* of the last pause */
	int64_t started_ms, resumed_ms;
	unsigned long pauses, episode_pauses;
};

static void pause_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fdguard_pause *p = arg;
	struct timeval tv;

	if (p->paused) {
		p->paused = 0;
		p->resumed_ms = clock_mono_ms();
		p->set_accepting(p->arg, 1);
		tv = clock_tv_ms(FDGUARD_QUIET_MS);
		evtimer_add(p->timer, &tv);
		return;
	}
	/* Accepting has worked for FDGUARD_QUIET_MS. */
	log_info(NULL, "%s: accepting connections again (paused %lu time%s over %lld ms)",
		 p->what, p->episode_pauses, p->episode_pauses == 1 ? "" : "s",
		 (long long)(p->resumed_ms - p->started_ms));
	p->episode = 0;
	p->episode_pauses = 0;
}

void fdguard_pause_accept(struct fdguard_pause *p, int err, size_t nopen)
{
	struct timeval tv;

	if (!p || p->paused)
		return;
	if (!p->episode) {
		p->episode = 1;
		p->started_ms = clock_mono_ms();
		p->delay_ms = FDGUARD_PAUSE_MIN_MS;
		if (err == EMFILE || err == ENFILE)
			log_warn(NULL, "%s: too many open files: %zu connection%s open; "
				 "accepting again in %lld ms", p->what, nopen, nopen == 1 ? "" : "s",
				 (long long)p->delay_ms);
		else
			log_warn(NULL, "%s: accept failed: %s: %zu connection%s open; "
				 "accepting again in %lld ms", p->what, strerror(err), nopen,
				 nopen == 1 ? "" : "s", (long long)p->delay_ms);
	} else {
		p->delay_ms = p->delay_ms * 2 > FDGUARD_PAUSE_MAX_MS ? FDGUARD_PAUSE_MAX_MS
								     : p->delay_ms * 2;
	}
	p->paused = 1;
	p->pauses++;
	p->episode_pauses++;
	p->set_accepting(p->arg, 0);
	tv = clock_tv_ms(p->delay_ms);
	evtimer_add(p->timer, &tv);
}

struct fdguard_pause *fdguard_pause_new(struct event_base *base, const char *what,
					fdguard_accept_fn set_accepting, void *arg)
{
	struct fdguard_pause *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->what = strdup(what);
	p->timer = evtimer_new(base, pause_timer, p);
	if (!p->what || !p->timer) {
		fdguard_pause_free(p);
		return NULL;
	}
	p->set_accepting = set_accepting;
	p->arg = arg;
	return p;
}

void fdguard_pause_free(struct fdguard_pause *p)
{
	if (!p)
		return;
	if (p->timer)
		event_free(p->timer);
	free(p->what);
	free(p);
}

int fdguard_paused(const struct fdguard_pause *p)
{
	return p ? p->paused : 0;
}

unsigned long fdguard_pause_count(const struct fdguard_pause *p)
{
	return p ? p->pauses : 0;
}
