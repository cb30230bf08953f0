/* revoke_cmd.c - `acmed revoke NAME` when no daemon runs: the revocation on a loop of its own, then the replacement ordered as `run --once` does. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "acme.h"
#include "ari.h"
#include "cli.h"
#include "db_file.h"
#include "pidfile.h"
#include "revoke.h"
#include "state.h"
#include "store.h"
#include "store_owner.h"
#include "worker.h"

#define EXIT_OPERATIONAL 1
#define ONCE_TIMEOUT 300

struct revoking {
	struct event_base *base;
	int done, rc, already;
	char message[512];
};

static void revoked(void *arg, int rc, int already, const char *message)
{
	struct revoking *r = arg;

	r->done = 1;
	r->rc = rc;
	r->already = already;
	snprintf(r->message, sizeof(r->message), "%s", message);
	event_base_loopexit(r->base, NULL);
}

/* The CA of the certificate's list that issued it (by the directory in its
 * state), else the first. */
static const struct config_ca *issuer_of(const struct config *cfg, const struct config_cert *c,
					 const struct state_job *st)
{
	for (size_t at = 0; st->issued_by && at < config_cert_nca(c); at++)
		if (strcmp(cfg->cas[config_cert_ca_at(c, at)].directory, st->issued_by) == 0)
			return &cfg->cas[config_cert_ca_at(c, at)];
	return &cfg->cas[c->ca];
}

/* Revoke at ca; 0 when the CA revoked it (r says how), else 1 (said). */
static int revoke_at(const struct config *cfg, const struct config_ca *ca, const char *pem, size_t len,
		     int reason, struct revoking *r)
{
	struct worker *io = NULL;
	struct db *db = NULL;
	struct acme_ca *acme = NULL;
	struct revoke_req *q = NULL;
	int rc = EXIT_OPERATIONAL;

	r->base = event_base_new();
	io = r->base ? worker_new(r->base, "acmed-store") : NULL;
	db = io ? db_file_new(cfg->state_dir, io) : NULL;
	acme = db ? acme_ca_new(r->base, ca, cfg->state_dir, db) : NULL;
	if (!acme || acme_ca_load_account(acme) < 0) {
		fprintf(stderr, "acmed: cannot use the account of CA %s (state_dir %s)\n", ca->name, cfg->state_dir);
		goto out;
	}
	q = revoke_start(acme_ca_client(acme), pem, len, reason, revoked, r);
	if (!q) {
		fprintf(stderr, "acmed: cannot send the revocation to CA %s\n", ca->name);
		goto out;
	}
	event_base_dispatch(r->base);
	q = NULL;               /* done: revoke.c freed it */
	rc = r->done && r->rc == 0 ? 0 : EXIT_OPERATIONAL;
out:
	revoke_cancel(q);
	acme_ca_free(acme);
	worker_flush(io);
	db_free(db);
	worker_free(io);
	if (r->base)
		event_base_free(r->base);
	return rc;
}

int revoke_cmd_standalone(const struct config *cfg, const char *name, const char *reason_name)
{
	const struct config_cert *c = config_find_cert(cfg, name);
	struct pidfile pid = PIDFILE_INIT;
	struct store_owner owner;
	struct state_job st = { 0 };
	struct revoking r = { 0 };
	const struct config_ca *ca;
	char *path = NULL, *pem = NULL, *cid = NULL;
	size_t len = 0;
	int reason, rc;

	if (!c || revoke_reason_parse(reason_name, &reason) < 0)
		return 2;
	if (pidfile_take_command(cfg->state_dir, cfg->runtime_dir, "the revocation", &pid, &owner) < 0)
		return EXIT_OPERATIONAL;
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "acmed: no daemon runs: the revocation and the new certificate are done here\n");
	path = store_path(c->output_dir, "cert.pem");
	rc = path ? store_read_file(path, &pem, &len, 1u << 20) : -ENOMEM;
	if (rc == 0 && ari_cert_id(pem, len, &cid) < 0)
		rc = -EINVAL;
	if (rc < 0) {
		fprintf(stderr, "acmed: %s: no certificate to revoke in %s (%s)\n", name, path ? path : "",
			rc == -EINVAL ? "not a certificate with an authority key identifier" : strerror(-rc));
		rc = EXIT_OPERATIONAL;
		goto out;
	}
	state_job_load(cfg->state_dir, name, &st);
	ca = issuer_of(cfg, c, &st);
	rc = revoke_at(cfg, ca, pem, len, reason, &r);
	if (rc) {
		fprintf(stderr, "acmed: %s: %s\n", name, r.done ? r.message : "the CA did not answer");
		goto out;
	}
	/* As the daemon keeps it: the run below replaces the certificate, with a
	 * new key after keyCompromise, and a crash before then loses nothing. */
	state_job_clear(&st);
	state_job_load(cfg->state_dir, name, &st);
	free(st.revoked_cert);
	st.revoked_cert = cid;
	cid = NULL;
	st.revoked_reason = reason;
	st.key_compromised |= reason == REVOKE_KEY_COMPROMISE;
	if (state_job_save(cfg->state_dir, name, &st) < 0) {
		fprintf(stderr, "acmed: %s: revoked, but the state cannot be written in %s: the next `acmed run` "
			"will not know; run `acmed renew %s --force` once a daemon runs\n", name, cfg->state_dir,
			name);
		rc = EXIT_OPERATIONAL;
		goto out;
	}
	printf("%s: %s at CA %s (%s); ordering its replacement now%s\n", name,
	       r.already ? "the CA says it was revoked already" : "revoked", ca->name, reason_name,
	       reason == REVOKE_KEY_COMPROMISE ? ", with a new key" : "");
	fflush(stdout);
	if (owner.give)
		store_owner_give_tree(cfg->state_dir, owner.uid, owner.gid);
	pidfile_release(&pid);          /* run --once takes it itself */
	rc = run_main(cfg->path, 1, ONCE_TIMEOUT);
	if (owner.give)
		store_owner_give_tree(cfg->state_dir, owner.uid, owner.gid);
out:
	pidfile_release(&pid);
	state_job_clear(&st);
	free(cid);
	free(pem);
	free(path);
	return rc;
}
