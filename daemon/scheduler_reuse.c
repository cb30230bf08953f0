/* scheduler_reuse.c - key_reuse: an order signs with the key in use (TLSA/DANE, pinning), read off the loop, while it is of the configured type. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "scheduler_internal.h"
#include "store.h"
#include "worker.h"

struct reuse_read {
	struct job *j;
	char *dir;
	char *key, *full;
	size_t key_len, full_len;
};

static void reuse_free(struct reuse_read *r)
{
	free(r->dir);
	crypto_free_secret(r->key, r->key_len);
	free(r->full);
	free(r);
}

static void reuse_drop(void *arg)
{
	reuse_free(arg);
}

/* On the worker: the two files as a pair, as the services read them. */
static int reuse_run(void *arg)
{
	struct reuse_read *r = arg;

	return store_read_live(r->dir, &r->key, &r->key_len, &r->full, &r->full_len);
}

static void reuse_done(void *arg, int rc)
{
	struct reuse_read *r = arg;
	struct job *j = r->j;
	struct crypto_key *key = NULL;
	enum key_type kt;
	const char *why = NULL;

	j->reuse_job = NULL;
	if (rc < 0)
		why = "cannot be read";
	else if (crypto_key_from_pem(r->key, r->key_len, &key) < 0 || crypto_key_type(key, &kt) < 0)
		why = "is not a key acmed can use";
	else if (kt != j->key_type)
		why = "is not of the configured key_type";
	else if (crypto_cert_matches_key(r->full, r->full_len, key) != 1)
		why = "does not belong to the certificate beside it";
	reuse_free(r);
	if (why) {
		crypto_key_free(key);
		log_info(j->cert->name, "key_reuse: the key in use %s; ordering with a new key", why);
		sched_job_fresh_key(j);
		return;
	}
	log_info(j->cert->name, "key_reuse: ordering with the key in use");
	sched_job_key_ready(key, j);
}

int sched_reuse_start(struct job *j)
{
	struct reuse_read *r;

	if (!j->cert->key_reuse || !j->has_cert)
		return 0;
	if (j->st.key_compromised) {
		log_warn(j->cert->name, "key_reuse: the key in use was revoked as compromised; a new key");
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->dir = strdup(j->cert->output_dir))) {
		free(r);
		return 0;
	}
	r->j = j;
	j->reuse_job = worker_submit(j->s->io, reuse_run, reuse_done, reuse_drop, r);
	if (!j->reuse_job) {
		reuse_free(r);
		return 0;
	}
	return 1;
}
