/* testloop.h - waiting on the event loop in unit tests: until a condition holds, bounded by a safety timer that fails the test (never a measure of speed). Include after <cmocka.h> and <event2/event.h>. */
#ifndef ACMED_TESTLOOP_H
#define ACMED_TESTLOOP_H

static inline void testloop_safety_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Runs base until pred(a) holds; a wait of safety_s real seconds fails the test.
 * (testloop_safety_cb sets the int its arg points to: a timer that marks a moment.) */
static inline void testloop_run_until(struct event_base *base, int (*pred)(void *), void *a, int safety_s)
{
	int hit = 0;
	struct timeval tv = { safety_s, 0 };
	struct event *safety = evtimer_new(base, testloop_safety_cb, &hit);

	evtimer_add(safety, &tv);
	while (!pred(a) && !hit)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(safety);
	if (hit)
		fail_msg("waited %d s for an event that never came", safety_s);
}

#endif
