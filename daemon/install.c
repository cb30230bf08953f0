/* install.c - a new certificate and its key written into output_dir on the I/O worker: the fsyncs never stall the loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "install.h"
#include "log.h"
#include "store.h"
#include "worker.h"

struct install {
	struct worker_job *job;
	char *output_dir;
	char *key, *leaf, *chain, *full;
	size_t key_len;
	char *key_group;
	install_done_fn done;
	void *arg;
};

static void install_free(struct install *in)
{
	crypto_free_secret(in->key, in->key_len);
	free(in->output_dir);
	free(in->key_group);
	free(in->leaf);
	free(in->chain);
	free(in->full);
	free(in);
}

/* On the worker thread: only what the request owns. */
static int install_run(void *arg)
{
	struct install *in = arg;
	struct store_bundle b = {
		.key_pem = in->key, .key_len = in->key_len,
		.cert_pem = in->leaf, .cert_len = strlen(in->leaf),
		.chain_pem = in->chain, .chain_len = strlen(in->chain),
		.fullchain_pem = in->full, .fullchain_len = strlen(in->full),
	};
	int rc;

	if (in->key_group) {
		rc = store_group_gid(in->key_group, &b.key_gid);
		if (rc < 0) {
			log_error(NULL, "%s: key_group %s: %s", in->output_dir, in->key_group,
				  rc == -ENOENT ? "no such group on this system" : strerror(-rc));
			return rc;
		}
		b.key_group_set = 1;
	}
	return store_install_bundle(in->output_dir, &b);
}

static void install_deliver(void *arg, int rc)
{
	struct install *in = arg;

	in->done(in->arg, rc);
	install_free(in);
}

static void install_drop(void *arg)
{
	install_free(arg);
}

struct install *install_start(struct worker *io, const char *output_dir,
			      const struct install_pem *pem, install_done_fn done, void *arg)
{
	struct install *in = calloc(1, sizeof(*in));
	size_t ll = strlen(pem->leaf), cl = strlen(pem->chain);

	if (!in)
		goto oom;
	in->done = done;
	in->arg = arg;
	if (pem->key_group && !(in->key_group = strdup(pem->key_group)))
		goto oom;
	in->output_dir = strdup(output_dir);
	in->leaf = strdup(pem->leaf);
	in->chain = strdup(pem->chain);
	in->full = malloc(ll + cl + 1);
	in->key = malloc(pem->key_len + 1);
	if (!in->output_dir || !in->leaf || !in->chain || !in->full || !in->key)
		goto oom;
	in->key_len = pem->key_len;
	memcpy(in->key, pem->key, pem->key_len);
	in->key[pem->key_len] = '\0';
	memcpy(in->full, pem->leaf, ll);
	memcpy(in->full + ll, pem->chain, cl + 1);
	in->job = worker_submit(io, install_run, install_deliver, install_drop, in);
	if (!in->job) {
		install_free(in);
		return NULL;
	}
	return in;
oom:
	log_error(NULL, "%s: out of memory for the new certificate", output_dir);
	if (in)
		install_free(in);
	return NULL;
}

void install_cancel(struct install *in)
{
	if (in)
		worker_cancel(in->job);
}
