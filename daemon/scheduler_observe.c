/* scheduler_observe.c - the scheduler's subscribers: order done, installed, deploy done, CA down/up, expiring. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler_internal.h"

struct sched_observer {
	sched_observer_fn fn;
	void *arg;
};

int sched_subscribe(struct sched *s, sched_observer_fn fn, void *arg)
{
	struct sched_observer *o = realloc(s->observers, (s->nobservers + 1) * sizeof(*o));

	if (!o)
		return -ENOMEM;
	s->observers = o;
	o[s->nobservers].fn = fn;
	o[s->nobservers].arg = arg;
	s->nobservers++;
	return 0;
}

void sched_unsubscribe(struct sched *s, sched_observer_fn fn, void *arg)
{
	for (size_t i = 0; i < s->nobservers; i++) {
		if (s->observers[i].fn != fn || s->observers[i].arg != arg)
			continue;
		memmove(&s->observers[i], &s->observers[i + 1],
			(s->nobservers - i - 1) * sizeof(s->observers[0]));
		s->nobservers--;
		return;
	}
}

void sched_emit(struct sched *s, const struct sched_event *ev)
{
	/* On a copy: a subscriber may subscribe or unsubscribe from its callback
	 * (one removed meanwhile still gets this event). */
	size_t n = s->nobservers;
	struct sched_observer *copy = n ? malloc(n * sizeof(*copy)) : NULL;

	if (!copy)
		return;
	memcpy(copy, s->observers, n * sizeof(*copy));
	for (size_t i = 0; i < n; i++)
		copy[i].fn(ev, copy[i].arg);
	free(copy);
}

void sched_observers_free(struct sched *s)
{
	free(s->observers);
	s->observers = NULL;
	s->nobservers = 0;
}
