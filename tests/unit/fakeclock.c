/* fakeclock.c - a clock the test moves: replaces clock_gettime() for the whole test process. */
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fakeclock.h"

static int frozen;
static int64_t mono_ns, wall_ns;        /* while frozen */

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

static int64_t ns_of(clockid_t id)
{
	struct timespec ts;

	real_clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int64_t ns;

	if (!frozen)
		return real_clock_gettime(id, ts);
	switch (id) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		ns = wall_ns;
		break;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_BOOTTIME:
		ns = mono_ns;
		break;
	default:
		return real_clock_gettime(id, ts);
	}
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

void fakeclock_freeze(void)
{
	if (frozen)
		return;
	mono_ns = ns_of(CLOCK_MONOTONIC);
	wall_ns = ns_of(CLOCK_REALTIME);
	frozen = 1;
}

void fakeclock_advance_ms(int64_t ms)
{
	fakeclock_freeze();
	mono_ns += ms * 1000000;
	wall_ns += ms * 1000000;
}

void fakeclock_set_wall(int64_t unix_seconds)
{
	fakeclock_freeze();
	wall_ns = unix_seconds * 1000000000;
}

int64_t fakeclock_wall(void)
{
	fakeclock_freeze();
	return wall_ns / 1000000000;
}
