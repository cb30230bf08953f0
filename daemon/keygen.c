/* keygen.c - private keys made on one worker thread, handed back on the event loop through an eventfd. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "keygen.h"
#include "log.h"

/* Where a request lives. Lists marked (mu) are shared with the worker; the rest
 * belong to the loop thread alone. */
enum keygen_where {
	KG_PENDING,     /* kg->pending (mu) */
	KG_RUNNING,     /* kg->running (mu), on no list */
	KG_DONE,        /* kg->done (mu) */
	KG_DELIVER,     /* kg->deliver: taken from done, callback next */
	KG_CALLBACK,    /* its callback runs now, on no list */
};

struct keygen_req {
	TAILQ_ENTRY(keygen_req) link;
	struct keygen *kg;
	enum key_type kt;
	keygen_done_fn done;
	void *arg;
	struct crypto_key *key;         /* set by the worker when finished */
	int rc;
	enum keygen_where where;        /* (mu) */
	int cancelled;                  /* (mu) only for KG_RUNNING: the worker frees it */
};

TAILQ_HEAD(keygen_list, keygen_req);

struct keygen {
	struct event_base *base;
	struct event *ev;               /* persistent read on efd, added while outstanding > 0 */
	int efd;
	size_t outstanding;             /* loop thread only */
	struct keygen_list deliver;     /* loop thread only */

	pthread_mutex_t mu;
	pthread_cond_t cv;              /* worker waits for pending or stopping */
	pthread_t thread;
	int started;
	int stopping;                   /* (mu) */
	struct keygen_list pending;     /* (mu) */
	struct keygen_list done;        /* (mu) */
};

static void keygen_req_free(struct keygen_req *req)
{
	crypto_key_free(req->key);
	free(req);
}

static void keygen_wake_loop(struct keygen *kg)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is near 2^64: the loop is woken anyway. */
	if (write(kg->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error(NULL, "keygen: eventfd write: %s", strerror(errno));
}

static void *keygen_worker(void *arg)
{
	struct keygen *kg = arg;
	struct keygen_req *req;
	struct crypto_key *key;
	int rc;

	pthread_mutex_lock(&kg->mu);
	for (;;) {
		while (!kg->stopping && TAILQ_EMPTY(&kg->pending))
			pthread_cond_wait(&kg->cv, &kg->mu);
		if (kg->stopping)
			break;
		req = TAILQ_FIRST(&kg->pending);
		TAILQ_REMOVE(&kg->pending, req, link);
		req->where = KG_RUNNING;
		pthread_mutex_unlock(&kg->mu);

		key = NULL;
		rc = crypto_key_generate(req->kt, &key);

		pthread_mutex_lock(&kg->mu);
		if (req->cancelled) {
			crypto_key_free(key);
			free(req);
			continue;
		}
		req->key = key;
		req->rc = rc;
		req->where = KG_DONE;
		TAILQ_INSERT_TAIL(&kg->done, req, link);
		keygen_wake_loop(kg);
	}
	pthread_mutex_unlock(&kg->mu);
	return NULL;
}

/* Loop side: hand every finished key to its callback. Finished requests move
 * to kg->deliver first, so a callback may cancel any of them or queue more. */
static void keygen_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct keygen *kg = arg;
	struct keygen_req *req;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error(NULL, "keygen: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&kg->mu);
	while ((req = TAILQ_FIRST(&kg->done))) {
		TAILQ_REMOVE(&kg->done, req, link);
		req->where = KG_DELIVER;
		TAILQ_INSERT_TAIL(&kg->deliver, req, link);
	}
	pthread_mutex_unlock(&kg->mu);

	while ((req = TAILQ_FIRST(&kg->deliver))) {
		struct crypto_key *key = req->key;

		TAILQ_REMOVE(&kg->deliver, req, link);
		pthread_mutex_lock(&kg->mu);
		req->where = KG_CALLBACK;
		pthread_mutex_unlock(&kg->mu);
		req->key = NULL;
		kg->outstanding--;
		if (!key) {
			const char *name = config_key_type_name(req->kt);

			/* crypto_key_generate logged why, but for a lack of memory. */
			log_msg(req->rc == -ENOMEM ? LOG_LVL_ERROR : LOG_LVL_DEBUG, NULL,
				"keygen: no %s key: %s", name ? name : "(unknown type)",
				strerror(-req->rc));
		}
		req->done(key, req->arg);
		free(req);
	}
	if (kg->outstanding == 0)
		event_del(kg->ev);
}

struct keygen *keygen_new(struct event_base *base)
{
	struct keygen *kg = calloc(1, sizeof(*kg));

	if (!kg) {
		log_error(NULL, "keygen: out of memory");
		return NULL;
	}
	kg->base = base;
	TAILQ_INIT(&kg->pending);
	TAILQ_INIT(&kg->done);
	TAILQ_INIT(&kg->deliver);
	kg->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (kg->efd < 0) {
		log_error(NULL, "keygen: eventfd: %s", strerror(errno));
		free(kg);
		return NULL;
	}
	kg->ev = event_new(base, kg->efd, EV_READ | EV_PERSIST, keygen_on_ready, kg);
	if (!kg->ev) {
		log_error(NULL, "keygen: cannot create the completion event");
		close(kg->efd);
		free(kg);
		return NULL;
	}
	pthread_mutex_init(&kg->mu, NULL);
	pthread_cond_init(&kg->cv, NULL);
	return kg;
}

/* The worker blocks every signal: they stay with the loop thread (libevent's handlers). */
static int keygen_start(struct keygen *kg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&kg->thread, NULL, keygen_worker, kg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_error(NULL, "keygen: cannot start the worker thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(kg->thread, "acmed-keygen");
	kg->started = 1;
	return 0;
}

struct keygen_req *keygen_request(struct keygen *kg, enum key_type kt, keygen_done_fn done, void *arg)
{
	struct keygen_req *req;

	if (!kg || !done)
		return NULL;
	if (!kg->started && keygen_start(kg) < 0)
		return NULL;
	req = calloc(1, sizeof(*req));
	if (!req) {
		log_error(NULL, "keygen: out of memory");
		return NULL;
	}
	if (kg->outstanding == 0 && event_add(kg->ev, NULL) < 0) {
		log_error(NULL, "keygen: cannot watch the completion event");
		free(req);
		return NULL;
	}
	req->kg = kg;
	req->kt = kt;
	req->done = done;
	req->arg = arg;
	req->where = KG_PENDING;
	kg->outstanding++;
	pthread_mutex_lock(&kg->mu);
	TAILQ_INSERT_TAIL(&kg->pending, req, link);
	pthread_cond_signal(&kg->cv);
	pthread_mutex_unlock(&kg->mu);
	return req;
}

void keygen_cancel(struct keygen_req *req)
{
	struct keygen *kg;
	struct keygen_req *drop = NULL;

	if (!req)
		return;
	kg = req->kg;
	pthread_mutex_lock(&kg->mu);
	switch (req->where) {
	case KG_PENDING:
		TAILQ_REMOVE(&kg->pending, req, link);
		drop = req;
		break;
	case KG_RUNNING:
		req->cancelled = 1;     /* the worker frees it and its key */
		break;
	case KG_DONE:
		TAILQ_REMOVE(&kg->done, req, link);
		drop = req;
		break;
	case KG_DELIVER:
		TAILQ_REMOVE(&kg->deliver, req, link);
		drop = req;
		break;
	case KG_CALLBACK:
		/* Its own callback runs: the key is handed over already. */
		pthread_mutex_unlock(&kg->mu);
		return;
	}
	pthread_mutex_unlock(&kg->mu);
	if (drop)
		keygen_req_free(drop);
	if (--kg->outstanding == 0)
		event_del(kg->ev);
}

enum keygen_state keygen_req_state(const struct keygen_req *req)
{
	enum keygen_where w;

	pthread_mutex_lock(&req->kg->mu);
	w = req->where;
	pthread_mutex_unlock(&req->kg->mu);
	switch (w) {
	case KG_PENDING: return KEYGEN_QUEUED;
	case KG_RUNNING: return KEYGEN_RUNNING;
	default: return KEYGEN_FINISHED;
	}
}

size_t keygen_outstanding(const struct keygen *kg)
{
	return kg ? kg->outstanding : 0;
}

static void keygen_list_free(struct keygen_list *l)
{
	struct keygen_req *req;

	while ((req = TAILQ_FIRST(l))) {
		TAILQ_REMOVE(l, req, link);
		keygen_req_free(req);
	}
}

void keygen_free(struct keygen *kg)
{
	if (!kg)
		return;
	if (kg->started) {
		pthread_mutex_lock(&kg->mu);
		kg->stopping = 1;
		pthread_cond_signal(&kg->cv);
		pthread_mutex_unlock(&kg->mu);
		/* A key being made is finished first: OpenSSL cannot be interrupted. */
		pthread_join(kg->thread, NULL);
	}
	keygen_list_free(&kg->pending);
	keygen_list_free(&kg->done);
	keygen_list_free(&kg->deliver);
	event_free(kg->ev);
	close(kg->efd);
	pthread_cond_destroy(&kg->cv);
	pthread_mutex_destroy(&kg->mu);
	free(kg);
}
