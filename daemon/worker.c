/* worker.c - work that would stall the event loop done on one thread, results handed back on the loop through an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

/* Where a job lives. Lists marked (mu) are shared with the thread; the rest
 * belong to the loop thread alone. */
enum worker_where {
	WK_PENDING,     /* w->pending (mu) */
	WK_RUNNING,     /* fn runs, on no list */
	WK_DONE,        /* w->done (mu) */
	WK_DELIVER,     /* w->deliver: taken from done, callback next */
	WK_CALLBACK,    /* its done runs now, on no list */
};

struct worker_job {
	TAILQ_ENTRY(worker_job) link;
	struct worker *w;
	worker_fn fn;
	worker_done_fn done;
	worker_drop_fn drop;
	void *arg;
	int rc;
	enum worker_where where;        /* (mu) */
	int cancelled;                  /* (mu) only while WK_RUNNING: the thread drops it */
};

TAILQ_HEAD(worker_list, worker_job);

struct worker {
	struct event_base *base;
	struct event *ev;               /* persistent read on efd, added while outstanding > 0 */
	int efd;
	char name[16];
	size_t outstanding;             /* loop thread only */
	struct worker_list deliver;     /* loop thread only */

	pthread_mutex_t mu;
	pthread_cond_t cv;              /* the thread waits for pending or stopping */
	pthread_cond_t idle_cv;         /* worker_flush waits for pending to drain */
	int running;                    /* (mu) fn runs */
	pthread_t thread;
	int started;
	int stopping;                   /* (mu) */
	struct worker_list pending;     /* (mu) */
	struct worker_list done;        /* (mu) */
};

static void job_drop(struct worker_job *job)
{
	if (job->drop)
		job->drop(job->arg);
	free(job);
}

static void wake_loop(struct worker *w)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is near 2^64: the loop is woken anyway. */
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error(NULL, "%s: eventfd write: %s", w->name, strerror(errno));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_job *job;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stopping && TAILQ_EMPTY(&w->pending))
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stopping)
			break;
		job = TAILQ_FIRST(&w->pending);
		TAILQ_REMOVE(&w->pending, job, link);
		job->where = WK_RUNNING;
		w->running = 1;
		pthread_mutex_unlock(&w->mu);

		rc = job->fn(job->arg);

		pthread_mutex_lock(&w->mu);
		w->running = 0;
		if (TAILQ_EMPTY(&w->pending))
			pthread_cond_broadcast(&w->idle_cv);
		if (job->cancelled) {
			job_drop(job);
			continue;
		}
		job->rc = rc;
		job->where = WK_DONE;
		TAILQ_INSERT_TAIL(&w->done, job, link);
		wake_loop(w);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Loop side: hand every finished job to its callback. Finished jobs move to
 * w->deliver first, so a callback may cancel any of them or submit more. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_job *job;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error(NULL, "%s: eventfd read: %s", w->name, strerror(errno));
	pthread_mutex_lock(&w->mu);
	while ((job = TAILQ_FIRST(&w->done))) {
		TAILQ_REMOVE(&w->done, job, link);
		job->where = WK_DELIVER;
		TAILQ_INSERT_TAIL(&w->deliver, job, link);
	}
	pthread_mutex_unlock(&w->mu);

	while ((job = TAILQ_FIRST(&w->deliver))) {
		TAILQ_REMOVE(&w->deliver, job, link);
		pthread_mutex_lock(&w->mu);
		job->where = WK_CALLBACK;
		pthread_mutex_unlock(&w->mu);
		w->outstanding--;
		job->done(job->arg, job->rc);
		free(job);
	}
	if (w->outstanding == 0)
		event_del(w->ev);
}

struct worker *worker_new(struct event_base *base, const char *name)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w) {
		log_error(NULL, "%s: out of memory", name);
		return NULL;
	}
	w->base = base;
	snprintf(w->name, sizeof(w->name), "%s", name);
	TAILQ_INIT(&w->pending);
	TAILQ_INIT(&w->done);
	TAILQ_INIT(&w->deliver);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		log_error(NULL, "%s: eventfd: %s", name, strerror(errno));
		free(w);
		return NULL;
	}
	w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_ready, w);
	if (!w->ev) {
		log_error(NULL, "%s: cannot create the completion event", name);
		close(w->efd);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->idle_cv, NULL);
	return w;
}

/* The thread blocks every signal: they stay with the loop thread (libevent's handlers). */
static int worker_start(struct worker *w)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_error(NULL, "%s: cannot start the worker thread: %s", w->name, strerror(rc));
		return -rc;
	}
	pthread_setname_np(w->thread, w->name);
	w->started = 1;
	return 0;
}

struct worker_job *worker_submit(struct worker *w, worker_fn fn, worker_done_fn done,
				 worker_drop_fn drop, void *arg)
{
	struct worker_job *job;

	if (!w || !fn || !done)
		return NULL;
	if (!w->started && worker_start(w) < 0)
		return NULL;
	job = calloc(1, sizeof(*job));
	if (!job) {
		log_error(NULL, "%s: out of memory", w->name);
		return NULL;
	}
	if (w->outstanding == 0 && event_add(w->ev, NULL) < 0) {
		log_error(NULL, "%s: cannot watch the completion event", w->name);
		free(job);
		return NULL;
	}
	job->w = w;
	job->fn = fn;
	job->done = done;
	job->drop = drop;
	job->arg = arg;
	job->where = WK_PENDING;
	w->outstanding++;
	pthread_mutex_lock(&w->mu);
	TAILQ_INSERT_TAIL(&w->pending, job, link);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return job;
}

void worker_cancel(struct worker_job *job)
{
	struct worker *w;
	struct worker_job *drop = NULL;

	if (!job)
		return;
	w = job->w;
	pthread_mutex_lock(&w->mu);
	switch (job->where) {
	case WK_PENDING:
		TAILQ_REMOVE(&w->pending, job, link);
		drop = job;
		break;
	case WK_RUNNING:
		job->cancelled = 1;     /* the thread drops it when fn returns */
		break;
	case WK_DONE:
		TAILQ_REMOVE(&w->done, job, link);
		drop = job;
		break;
	case WK_DELIVER:
		TAILQ_REMOVE(&w->deliver, job, link);
		drop = job;
		break;
	case WK_CALLBACK:
		/* Its own done runs: nothing left to cancel. */
		pthread_mutex_unlock(&w->mu);
		return;
	}
	pthread_mutex_unlock(&w->mu);
	if (drop)
		job_drop(drop);
	if (--w->outstanding == 0)
		event_del(w->ev);
}

enum worker_state worker_job_state(const struct worker_job *job)
{
	enum worker_where where;

	pthread_mutex_lock(&job->w->mu);
	where = job->where;
	pthread_mutex_unlock(&job->w->mu);
	switch (where) {
	case WK_PENDING: return WORKER_QUEUED;
	case WK_RUNNING: return WORKER_RUNNING;
	default: return WORKER_FINISHED;
	}
}

size_t worker_outstanding(const struct worker *w)
{
	return w ? w->outstanding : 0;
}

static void list_drop(struct worker_list *l)
{
	struct worker_job *job;

	while ((job = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, job, link);
		job_drop(job);
	}
}

void worker_flush(struct worker *w)
{
	if (!w || !w->started)
		return;
	pthread_mutex_lock(&w->mu);
	while (!TAILQ_EMPTY(&w->pending) || w->running)
		pthread_cond_wait(&w->idle_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stopping = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		/* A job being run is finished first: neither OpenSSL nor fsync can be interrupted. */
		pthread_join(w->thread, NULL);
	}
	list_drop(&w->pending);
	list_drop(&w->done);
	list_drop(&w->deliver);
	event_free(w->ev);
	close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->idle_cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
