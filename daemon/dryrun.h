/* dryrun.h - `acmed renew NAME --dry-run` in the daemon: whole orders at the CAs' staging directories, their results told, nothing kept. */
#ifndef ACMED_DRYRUN_H
#define ACMED_DRYRUN_H

#include <stddef.h>
#include <jansson.h>
#include <event2/event.h>

#include "config.h"

struct challenge;
struct db;
struct worker;

/* The results of dry run id: {"ok":true,"results":[...]}; the reference is the callee's. */
typedef void (*dryrun_answer_fn)(void *arg, unsigned long id, json_t *answer);

struct dryrun_env {
	struct event_base *base;
	struct db *db;                  /* the staging accounts: accounts/<ca>.staging/ */
	struct worker *io;              /* webroot token files */
	/* The solvers (the caller's array, NULL entries skipped: a tls-alpn-01
	 * responder made later lands there): http-01 on the daemon's listener,
	 * dns-persist-01, tls-alpn-01. */
	struct challenge *const *solvers;
	size_t nsolvers;
	const char *state_dir;
	dryrun_answer_fn answer;
	void *arg;
};

struct dryrun_set;

/* The staging directory of ca: its `staging:`, the one acmed knows for it
 * (Let's Encrypt, Google), or its own directory when it is a staging CA
 * itself; NULL when there is none. */
const char *dryrun_staging_of(const struct config_ca *ca);

/* env is copied (its pointers must outlive the set). NULL on ENOMEM. */
struct dryrun_set *dryrun_set_new(const struct dryrun_env *env);
/* Order names (or every certificate) at their CAs' staging directories with
 * fresh keys, through the daemon's solvers; names go to started. Nothing is
 * installed, deployed or written to the certificates' state. -ENOENT for an
 * unknown name, -EINVAL for a CA without a staging directory (err says which);
 * then nothing starts. */
int dryrun_set_start(struct dryrun_set *set, const struct config *cfg, const char *const *names,
		     size_t n, int all, unsigned long id, json_t *started, char *err, size_t errlen);
/* dryrun_cmd.c: the dry run without a daemon, on a loop of this process; prints the
 * results. The exit code: 0 all issued, 1 otherwise, 2 an unknown name. */
int dryrun_cmd_standalone(const struct config *cfg, const char *const *names, size_t n, int all);
/* Stops every dry run; their clients are told acmed is stopping. NULL ok. */
void dryrun_set_free(struct dryrun_set *set);

#endif
