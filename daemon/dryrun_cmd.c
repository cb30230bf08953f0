/* dryrun_cmd.c - `acmed renew NAME --dry-run` when no daemon runs: the same dry run (dryrun.c) on a loop of its own, with acmed's listener or the webroots. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "challenge.h"
#include "challenge_http.h"
#include "challenge_dns01.h"
#include "challenge_http01.h"
#include "challenge_persist.h"
#include "challenge_tlsalpn.h"
#include "control.h"
#include "db_file.h"
#include "dryrun.h"
#include "log.h"
#include "pidfile.h"
#include "store.h"
#include "store_owner.h"
#include "worker.h"

struct standalone {
	struct event_base *base;
	const struct config *cfg;
	struct challenge_http *http;
	int listener_failed;
	json_t *answer;
};

/* The listener of `listen:` (no socket activation here), opened when an order needs it. */
static struct challenge_http *listener(void *arg)
{
	struct standalone *sa = arg;

	if (!sa->http && !sa->listener_failed &&
	    challenge_http_new(sa->base, (const char *const *)sa->cfg->listen.v, sa->cfg->listen.n, NULL, 0,
			       &sa->http) < 0) {
		sa->http = NULL;
		sa->listener_failed = 1;
	}
	return sa->http;
}

static void answered(void *arg, unsigned long id, json_t *answer)
{
	struct standalone *sa = arg;

	(void)id;
	sa->answer = answer;
	event_base_loopexit(sa->base, NULL);
}

/* A certificate of the dry run answers tls-alpn-01: the responder is needed here. */
static int uses_tlsalpn(const struct config *cfg, const char *const *names, size_t n, int all)
{
	for (size_t i = 0; i < cfg->ncerts; i++) {
		int named = all;

		for (size_t k = 0; !named && k < n; k++)
			named = strcmp(names[k], cfg->certs[i].name) == 0;
		if (named && strcmp(cfg->certs[i].challenge, "tls-alpn-01") == 0)
			return 1;
	}
	return 0;
}

int dryrun_cmd_standalone(const struct config *cfg, const char *const *names, size_t n, int all)
{
	struct standalone sa = { .cfg = cfg };
	struct worker *io = NULL;
	struct db *db = NULL;
	struct challenge *solvers[4] = { NULL, NULL, NULL, NULL };      /* http-01, dns-persist-01, tls-alpn-01,
									 * dns-01 */
	struct dryrun_set *set = NULL;
	json_t *started = NULL;
	struct pidfile pid = PIDFILE_INIT;
	struct store_owner owner;
	char err[512] = "";
	int rc = 1;

	/* No control socket is not yet no daemon: `run --once` has none. */
	if (pidfile_take_command(cfg->state_dir, cfg->runtime_dir, "the dry run", &pid, &owner) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	started = json_array();
	sa.base = event_base_new();
	io = sa.base ? worker_new(sa.base, "acmed-store") : NULL;
	db = io ? db_file_new(cfg->state_dir, io) : NULL;
	solvers[0] = sa.base ? challenge_http01_new(sa.base, listener, &sa) : NULL;
	solvers[1] = sa.base ? challenge_persist_new(sa.base) : NULL;
	solvers[2] = sa.base && uses_tlsalpn(cfg, names, n, all) ?
		     challenge_tlsalpn_new(sa.base, (const char *const *)cfg->tls_alpn_listen.v,
					   cfg->tls_alpn_listen.n, NULL, 0) : NULL;
	solvers[3] = db ? challenge_dns01_new(sa.base, db) : NULL;
	if (solvers[3] && challenge_dns01_configure(solvers[3], cfg, "/etc/resolv.conf") < 0) {
		challenge_free(solvers[3]);
		solvers[3] = NULL;
	}
	if (!solvers[3] && db)
		fprintf(stderr, "acmed: no dns-01 for this dry run (see the message above)\n");
	if (db && solvers[0] && solvers[1] && started) {
		struct dryrun_env env = { .base = sa.base, .db = db, .io = io, .solvers = solvers, .nsolvers = 4,
					  .state_dir = cfg->state_dir, .answer = answered, .arg = &sa };
		set = dryrun_set_new(&env);
	}
	if (!set) {
		fprintf(stderr, "acmed: out of memory\n");
		goto out;
	}
	fprintf(stderr, "acmed: no daemon runs: the dry run answers the CA itself (listen: or the webroots)\n");
	rc = dryrun_set_start(set, cfg, names, n, all, 1, started, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "acmed: %s\n", err);
		rc = rc == -ENOENT ? 2 : 1;
		goto out;
	}
	event_base_dispatch(sa.base);
	rc = sa.answer ? control_cli_dry_run_results(sa.answer) : 1;
out:
	dryrun_set_free(set);           /* before the solver its orders use */
	if (solvers[3])
		challenge_dns01_drain(solvers[3], sa.base, DNS01_DRAIN_MS);
	for (size_t i = 0; i < 4; i++)
		challenge_free(solvers[i]);
	worker_flush(io);
	db_free(db);
	worker_free(io);
	challenge_http_free(sa.http);
	json_decref(sa.answer);
	json_decref(started);
	if (sa.base)
		event_base_free(sa.base);
	if (owner.give)
		store_owner_give_tree(cfg->state_dir, owner.uid, owner.gid);
	pidfile_release(&pid);
	return rc;
}
