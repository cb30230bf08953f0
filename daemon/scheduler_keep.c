/* scheduler_keep.c - an issued certificate is kept (state_dir, else memory) until it is installed: a failed install never costs a new order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "db.h"
#include "install.h"
#include "log.h"
#include "names.h"
#include "scheduler_internal.h"

#define CERT_BEGIN "-----BEGIN CERTIFICATE-----"

/* The kept record: the key's PEM, then the leaf and its issuers. */
struct sched_kept {
	char *data;
	size_t len;
};

static void kept_free(struct sched_kept *k)
{
	if (!k)
		return;
	crypto_free_secret(k->data, k->len);
	free(k);
}

void sched_keep_clear(struct job *j)
{
	kept_free(j->kept);
	j->kept = NULL;
}

static void keep_installed(void *arg, int rc)
{
	struct job *j = arg;

	j->install = NULL;
	j->s->install_done(j, rc);
}

/* Still the certificate the configuration asks for, and far from its end? */
static int keep_worth_it(struct job *j, const char *leaf)
{
	struct crypto_cert_info info = {0};
	int ok = crypto_cert_info_pem(leaf, strlen(leaf), &info) == 0 &&
		 names_same_set((const char *const *)info.names, info.nnames,
				(const char *const *)j->cert->domains.v, j->cert->domains.n) &&
		 info.key_type_known && info.key_type == j->key_type &&
		 info.not_after > clock_now() + 3600;

	if (!ok)
		log_info(j->cert->name, "the certificate kept for %s no longer fits the configuration "
			 "or is about to expire; ordering a new one", j->cert->output_dir);
	crypto_cert_info_clear(&info);
	return ok;
}

/* Write the kept certificate into output_dir (install.c, off the loop). */
static void keep_install(struct job *j)
{
	const char *cert = j->kept ? strstr(j->kept->data, CERT_BEGIN) : NULL;
	char *leaf = NULL, *chain = NULL;
	struct install_pem pem = {0};

	if (!cert || crypto_chain_split(cert, strlen(cert), &leaf, &chain) < 0) {
		log_error(j->cert->name, "the certificate kept for %s is damaged; ordering again",
			  j->cert->output_dir);
		sched_keep_forget(j);
		j->s->install_done(j, -EBADMSG);
		return;
	}
	if (!keep_worth_it(j, leaf)) {
		free(leaf);
		free(chain);
		sched_keep_forget(j);
		j->s->install_done(j, -ESTALE);
		return;
	}
	pem.key = j->kept->data;
	pem.key_len = (size_t)(cert - j->kept->data);
	pem.leaf = leaf;
	pem.chain = chain;
	pem.key_group = j->cert->key_group;
	j->install = install_start(j->s->io, j->cert->output_dir, &pem, keep_installed, j);
	free(leaf);
	free(chain);
	if (!j->install)
		j->s->install_done(j, -ENOMEM);
}

static void keep_stored(void *arg, int rc)
{
	struct job *j = arg;

	j->db_req = NULL;
	if (rc < 0)
		log_warn(j->cert->name, "cannot keep the new certificate in state_dir; it stays in "
			 "memory until it is installed");
	else
		j->st.issued_kept = 1;
	keep_install(j);
}

void sched_keep_start(struct job *j, const struct order_result *res)
{
	struct sched_kept *k = calloc(1, sizeof(*k));
	size_t ll = strlen(res->leaf_pem), cl = strlen(res->chain_pem);

	sched_keep_clear(j);
	if (!k || !(k->data = malloc(res->key_len + ll + cl + 2))) {
		free(k);
		j->s->install_done(j, -ENOMEM);
		return;
	}
	memcpy(k->data, res->key_pem, res->key_len);
	k->len = res->key_len;
	if (k->len && k->data[k->len - 1] != '\n')
		k->data[k->len++] = '\n';
	memcpy(k->data + k->len, res->leaf_pem, ll);
	memcpy(k->data + k->len + ll, res->chain_pem, cl + 1);
	k->len += ll + cl;
	j->kept = k;
	/* On stable storage first: if the install fails, or acmed stops before
	 * it ends, the certificate is still there to be installed. */
	j->db_req = db_put(j->s->db, DB_ISSUED, j->cert->name, k->data, k->len,
			   DB_DURABLE | DB_SECRET, keep_stored, j);
	if (!j->db_req)
		keep_stored(j, -ENOMEM);
}

static void keep_loaded(void *arg, int rc, const char *data, size_t len)
{
	struct job *j = arg;
	struct sched_kept *k;

	j->db_req = NULL;
	if (rc < 0 || !(k = calloc(1, sizeof(*k))) || !(k->data = malloc(len + 1))) {
		if (rc == 0)
			free(k);
		log_info(j->cert->name, "the certificate kept for %s is %s; ordering again",
			 j->cert->output_dir, rc == -ENOENT ? "gone" : "unreadable");
		sched_keep_forget(j);
		j->s->install_done(j, rc < 0 ? rc : -ENOMEM);
		return;
	}
	memcpy(k->data, data, len);
	k->data[len] = '\0';
	k->len = len;
	j->kept = k;
	keep_install(j);
}

void sched_keep_retry(struct job *j)
{
	if (j->kept) {
		keep_install(j);
		return;
	}
	j->db_req = db_get(j->s->db, DB_ISSUED, j->cert->name, keep_loaded, j);
	if (!j->db_req)
		j->s->install_done(j, -ENOMEM);
}

void sched_keep_forget(struct job *j)
{
	sched_keep_clear(j);
	if (j->st.issued_kept) {
		j->st.issued_kept = 0;
		db_del(j->s->db, DB_ISSUED, j->cert->name, NULL, NULL);
	}
}
