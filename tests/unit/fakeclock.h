/* fakeclock.h - a clock the test moves: replaces clock_gettime() for the whole test process. */
#ifndef ACMED_TEST_FAKECLOCK_H
#define ACMED_TEST_FAKECLOCK_H

#include <stdint.h>

/* Linking fakeclock.c into a test executable defines clock_gettime(): acmed's
 * clock.c, libevent's timers and libcurl's all read it. Until the first call
 * below the clock is real; after it, time stands still except when moved. */
void fakeclock_freeze(void);
/* Move both clocks forward by ms milliseconds. Timers now due fire at the next
 * loop iteration (event_base_loop(base, EVLOOP_NONBLOCK)). */
void fakeclock_advance_ms(int64_t ms);
/* Set the wall clock (unix seconds); the monotonic clock is not touched. */
void fakeclock_set_wall(int64_t unix_seconds);
int64_t fakeclock_wall(void);

#endif
