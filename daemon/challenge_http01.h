/* challenge_http01.h - the http-01 solver (challenge.h) on top of the listener of challenge_http.c. */
#ifndef ACMED_CHALLENGE_HTTP01_H
#define ACMED_CHALLENGE_HTTP01_H

#include <event2/event.h>

#include "challenge.h"

struct challenge_http;

/* The listener, opened on first use (run --once opens it only when an order
 * needs it); NULL when it cannot be (the reason logged). */
typedef struct challenge_http *(*challenge_http01_listener_fn)(void *arg);

/* NULL on allocation failure. */
struct challenge *challenge_http01_new(struct event_base *base,
				       challenge_http01_listener_fn listener, void *arg);

#endif
