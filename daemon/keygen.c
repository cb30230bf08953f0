/* keygen.c - private keys made on a worker thread (RSA takes seconds), handed back on the event loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keygen.h"
#include "log.h"
#include "worker.h"

struct keygen {
	struct worker *w;
};

struct keygen_req {
	struct worker_job *job;
	enum key_type kt;
	struct crypto_key *key;         /* set on the worker thread */
	int rc;
	keygen_done_fn done;
	void *arg;
};

static int keygen_run(void *arg)
{
	struct keygen_req *req = arg;

	req->rc = crypto_key_generate(req->kt, &req->key);
	return req->rc;
}

static void keygen_deliver(void *arg, int rc)
{
	struct keygen_req *req = arg;
	struct crypto_key *key = req->key;

	if (!key) {
		const char *name = config_key_type_name(req->kt);

		/* crypto_key_generate logged why, but for a lack of memory. */
		log_msg(rc == -ENOMEM ? LOG_LVL_ERROR : LOG_LVL_DEBUG, NULL, "keygen: no %s key: %s",
			name ? name : "(unknown type)", strerror(-rc));
	}
	req->key = NULL;
	req->done(key, req->arg);
	free(req);
}

static void keygen_drop(void *arg)
{
	struct keygen_req *req = arg;

	crypto_key_free(req->key);
	free(req);
}

struct keygen *keygen_new(struct event_base *base)
{
	struct keygen *kg = calloc(1, sizeof(*kg));

	if (!kg || !(kg->w = worker_new(base, "acmed-keygen"))) {
		if (!kg)
			log_error(NULL, "keygen: out of memory");
		free(kg);
		return NULL;
	}
	return kg;
}

void keygen_free(struct keygen *kg)
{
	if (!kg)
		return;
	worker_free(kg->w);
	free(kg);
}

struct keygen_req *keygen_request(struct keygen *kg, enum key_type kt, keygen_done_fn done, void *arg)
{
	struct keygen_req *req;

	if (!kg || !done)
		return NULL;
	req = calloc(1, sizeof(*req));
	if (!req) {
		log_error(NULL, "keygen: out of memory");
		return NULL;
	}
	req->kt = kt;
	req->done = done;
	req->arg = arg;
	req->job = worker_submit(kg->w, keygen_run, keygen_deliver, keygen_drop, req);
	if (!req->job) {
		free(req);
		return NULL;
	}
	return req;
}

void keygen_cancel(struct keygen_req *req)
{
	if (req)
		worker_cancel(req->job);
}

enum keygen_state keygen_req_state(const struct keygen_req *req)
{
	switch (worker_job_state(req->job)) {
	case WORKER_QUEUED: return KEYGEN_QUEUED;
	case WORKER_RUNNING: return KEYGEN_RUNNING;
	default: return KEYGEN_FINISHED;
	}
}

size_t keygen_outstanding(const struct keygen *kg)
{
	return kg ? worker_outstanding(kg->w) : 0;
}
