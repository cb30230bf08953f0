/* worker.h - work that would stall the event loop (RSA keys, fsyncs) done on one thread, results handed back on the loop. */
#ifndef ACMED_WORKER_H
#define ACMED_WORKER_H

#include <stddef.h>
#include <event2/event.h>

struct worker;
struct worker_job;

/* Runs on the worker thread: touches only what arg gives it (no loop state,
 * no log calls that are not thread-safe). Its return value reaches done. */
typedef int (*worker_fn)(void *arg);
/* Called on the loop, never from inside worker_submit. */
typedef void (*worker_done_fn)(void *arg, int rc);
/* Frees arg of a job whose done will not run (cancelled, or dropped by
 * worker_free). May run on the worker thread. NULL: nothing to free. */
typedef void (*worker_drop_fn)(void *arg);

/* NULL on failure (logged). name: the thread's name ("acmed-keygen"). The
 * thread starts with the first job. */
struct worker *worker_new(struct event_base *base, const char *name);
/* Waits for the job being run; the others are dropped without their done.
 * Not from inside a done callback. NULL ok. */
void worker_free(struct worker *w);
/* Block until every job queued has run (their done callbacks are not run:
 * worker_free drops them). For the writes that must land before exit. */
void worker_flush(struct worker *w);
/* Queue fn(arg); jobs run one at a time, in order. NULL on failure. */
struct worker_job *worker_submit(struct worker *w, worker_fn fn, worker_done_fn done,
				 worker_drop_fn drop, void *arg);
/* done will not run; drop(arg) runs now, or on the worker thread once a
 * running fn returns. Safe until done ran; NULL ok. */
void worker_cancel(struct worker_job *job);

/* Where a job is; it only moves forward. For status output and tests. */
enum worker_state {
	WORKER_QUEUED,          /* waiting for the thread */
	WORKER_RUNNING,         /* fn runs */
	WORKER_FINISHED,        /* fn returned, done not run yet */
};
/* Valid until done ran (or worker_cancel). */
enum worker_state worker_job_state(const struct worker_job *job);
/* Jobs neither delivered nor cancelled. */
size_t worker_outstanding(const struct worker *w);

#endif
