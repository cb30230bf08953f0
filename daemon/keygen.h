/* keygen.h - private keys made off the event loop (RSA generation takes seconds): one worker thread, results delivered on the loop. */
#ifndef ACMED_KEYGEN_H
#define ACMED_KEYGEN_H

#include <stddef.h>
#include <event2/event.h>
#include "config.h"
#include "crypto.h"

struct keygen;
struct keygen_req;

/* key: the new key (the callee owns it) or NULL when generation failed (logged). Called from the
 * event loop, never from inside keygen_request. */
typedef void (*keygen_done_fn)(struct crypto_key *key, void *arg);

/* NULL on failure (logged). The worker thread starts with the first request. */
struct keygen *keygen_new(struct event_base *base);
/* Stops and joins the worker; requests not delivered yet are dropped without their callback.
 * Waits for a key being generated. Not from inside a keygen_done_fn. NULL ok. */
void keygen_free(struct keygen *kg);
/* Queue a key of type kt. NULL on allocation failure. Requests are served in order. */
struct keygen_req *keygen_request(struct keygen *kg, enum key_type kt, keygen_done_fn done, void *arg);
/* The callback will not be called; a key made meanwhile is freed. Safe until the callback ran; NULL ok. */
void keygen_cancel(struct keygen_req *req);

/* Where a request is; it only moves forward. For status output and tests. */
enum keygen_state {
	KEYGEN_QUEUED,          /* waiting for the worker */
	KEYGEN_RUNNING,         /* being generated */
	KEYGEN_FINISHED,        /* made (or failed), callback not run yet */
};
/* Valid until the callback ran (or keygen_cancel). */
enum keygen_state keygen_req_state(const struct keygen_req *req);
/* Requests neither delivered nor cancelled (queued, running or finished). */
size_t keygen_outstanding(const struct keygen *kg);

#endif
