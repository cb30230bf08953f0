/* clock.h - the one place acmed reads the time: wall clock seconds, monotonic milliseconds. */
#ifndef ACMED_CLOCK_H
#define ACMED_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Unix seconds (CLOCK_REALTIME). */
int64_t clock_now(void);
/* Monotonic milliseconds / microseconds (CLOCK_MONOTONIC), for intervals and deadlines. */
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
/* ms as a struct timeval for evtimer_add (negative: 0). */
struct timeval clock_tv_ms(int64_t ms);

/* Everything here (and libevent's and libcurl's timers) reads clock_gettime():
 * a test binary that defines its own clock_gettime() moves all of them at once
 * (tests/unit/fakeclock.c). Nothing in daemon/ calls time() or gettimeofday(). */

#endif
