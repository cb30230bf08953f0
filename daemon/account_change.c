/* account_change.c - `acmed account rollover [CA]` and `account deactivate CA --yes`: through the running daemon (its CA objects sign), or on a loop of this command's own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "acme.h"
#include "account_cmd.h"
#include "control.h"
#include "db_file.h"
#include "pidfile.h"
#include "store_owner.h"
#include "worker.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2

int account_change_start(struct acme_ca *ca, const char *action, acme_ca_done_fn cb, void *arg, char *err,
			 size_t errlen)
{
	if (strcmp(action, "rollover") == 0)
		return acme_ca_rollover(ca, cb, arg, err, errlen);
	if (strcmp(action, "deactivate") == 0)
		return acme_ca_deactivate(ca, cb, arg, err, errlen);
	snprintf(err, errlen, "account: unknown action %s (rollover, deactivate)", action);
	return -EINVAL;
}

/* ---------- without a daemon ---------- */

struct changing {
	struct event_base *base;
	struct acme_ca *ca;
	const char *action;
	int phase;              /* 0 the account being read, 1 the change sent, 2 done */
	int rc;
	char message[600];
};

static void changed(void *arg, int rc, const char *message)
{
	struct changing *c = arg;

	c->phase = 2;
	c->rc = rc;
	snprintf(c->message, sizeof(c->message), "%s", message);
	event_base_loopexit(c->base, NULL);
}

/* The account is read (and a contact update sent, if any): the change goes out. */
static void account_idle(void *arg)
{
	struct changing *c = arg;

	if (c->phase != 0)
		return;
	c->phase = 1;
	if (account_change_start(c->ca, c->action, changed, c, c->message, sizeof(c->message)) < 0) {
		c->phase = 2;
		c->rc = -EINVAL;
		event_base_loopexit(c->base, NULL);
	}
}

static int change_here(const struct config *cfg, const struct config_ca *ca, const char *action)
{
	struct changing c = { .action = action };
	struct worker *io = NULL;
	struct db *db = NULL;

	c.base = event_base_new();
	io = c.base ? worker_new(c.base, "acmed-store") : NULL;
	db = io ? db_file_new(cfg->state_dir, io) : NULL;
	c.ca = db ? acme_ca_new(c.base, ca, cfg->state_dir, db) : NULL;
	if (!c.ca) {
		fprintf(stderr, "acmed: out of memory\n");
		c.rc = -ENOMEM;
		goto out;
	}
	acme_ca_on_idle(c.ca, account_idle, &c);
	if (acme_ca_load_account(c.ca) < 0) {
		fprintf(stderr, "acmed: CA %s: cannot read its account in %s\n", ca->name, cfg->state_dir);
		c.rc = -EIO;
		goto out;
	}
	event_base_dispatch(c.base);
	if (c.phase != 2)
		snprintf(c.message, sizeof(c.message), "CA %s: no answer", ca->name);
	if (c.phase != 2 || c.rc < 0)
		fprintf(stderr, "acmed: %s\n", c.message);
	else
		printf("CA %s: %s\n", ca->name, c.message);
out:
	acme_ca_free(c.ca);
	worker_flush(io);
	db_free(db);
	worker_free(io);
	if (c.base)
		event_base_free(c.base);
	return c.phase == 2 && c.rc == 0 ? 0 : EXIT_OPERATIONAL;
}

static int change_standalone(const struct config *cfg, const char *action, const char *ca_name)
{
	struct pidfile pid = PIDFILE_INIT;
	struct store_owner owner;
	int rc = 0, done = 0;

	if (pidfile_take_command(cfg->state_dir, cfg->runtime_dir, "the account change", &pid, &owner) < 0)
		return EXIT_OPERATIONAL;
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < cfg->ncas; i++) {
		if (ca_name && strcmp(cfg->cas[i].name, ca_name) != 0)
			continue;
		done++;
		rc |= change_here(cfg, &cfg->cas[i], action);
	}
	if (owner.give)
		store_owner_give_tree(cfg->state_dir, owner.uid, owner.gid);
	pidfile_release(&pid);
	return done ? rc : EXIT_USAGE;
}

int account_cmd_change(const struct config *cfg, const char *action, const char *ca_name)
{
	int rc = 0;

	if (ca_name) {
		size_t i;
		for (i = 0; i < cfg->ncas && strcmp(cfg->cas[i].name, ca_name) != 0; i++)
			;
		if (i == cfg->ncas) {
			fprintf(stderr, "acmed: account %s: no CA %s in %s\n", action, ca_name, cfg->path);
			return EXIT_USAGE;
		}
	}
	rc = control_cli_account(cfg, action, ca_name);
	if (rc == -ENOENT)              /* no daemon: done here */
		return change_standalone(cfg, action, ca_name);
	return rc;
}
