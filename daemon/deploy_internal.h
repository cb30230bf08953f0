/* deploy_internal.h - shared by deploy.c, deploy_bus.c and deploy_exec.c: the deployment's structures, the sd-bus half, the exec hook. */
#ifndef ACMED_DEPLOY_INTERNAL_H
#define ACMED_DEPLOY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <systemd/sd-bus.h>

#include "deploy.h"

#include "exec.h"

/* What a certificate's hook is told about it. */
struct deploy_hook_cert {
	const char *name;               /* ACMED_CERT_NAME */
	const char *domains;            /* ACMED_DOMAINS, RENEWED_DOMAINS: space-separated */
	const char *output_dir;         /* ACMED_OUTPUT_DIR, RENEWED_LINEAGE */
};

/* Start argv as the certificate's deploy hook: exec.c with the hook environment,
 * the output logged as "[name] hook: ...", timeout_ms then SIGTERM and SIGKILL
 * 5 s later. cb reports the end (see exec.h); the caller frees *out. 0 or a
 * negative errno (nothing started). */
int deploy_hook_start(struct event_base *base, char *const *argv, const struct deploy_hook_cert *c,
		      long timeout_ms, int reap_on_sigchld, exec_done_fn cb, void *arg,
		      struct exec **out);

/* ---- the deployment (deploy.c) ---- */
#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MGR  "org.freedesktop.systemd1.Manager"

#define DEPLOY_BATCH_CAP_MS   60000L  /* a batch window never stays open longer */
#define DEPLOY_EARLY_MAX      64      /* JobRemoved seen before the job path was known */

enum job_state { JOB_WINDOW, JOB_HOOK, JOB_UNITS, JOB_DONE };

struct deploy_batch;

struct deploy_job {                     /* one certificate's deployment */
	TAILQ_ENTRY(deploy_job) link;
	struct deploy *d;
	enum job_state state;
	char *name, *domains, *output_dir;
	char **units, **argv;
	size_t nunits, argc, units_left;
	char *error;                    /* what went wrong, "; "-separated */
	int failed;
	struct exec *hook;              /* while the hook runs */
	struct deploy_batch *batch;     /* JOB_HOOK: the window it came in */
};

/* The certificates of one batch window: their hooks run first (a hook copies
 * files that a service then reads: postfix, dovecot, a keystore), then each
 * distinct unit is reloaded once for all of them. */
struct deploy_batch {
	LIST_ENTRY(deploy_batch) link;
	struct deploy *d;
	struct deploy_job **jobs;
	size_t njobs, hooks_left;
};

struct deploy_unit {                    /* one ReloadOrRestartUnit of a batch */
	TAILQ_ENTRY(deploy_unit) link;
	struct deploy *d;
	char *name, *job_path, *certs;  /* certs: "web, api" for messages */
	struct deploy_job **jobs;
	size_t njobs;
	sd_bus_slot *call;
	struct event *timer;
};

TAILQ_HEAD(job_list, deploy_job);
TAILQ_HEAD(unit_list, deploy_unit);

struct deploy {
	struct event_base *base;
	deploy_result_fn result_cb;
	void *arg;
	deploy_idle_fn idle_cb;
	void *idle_arg;
	long window_ms, exec_timeout_ms, unit_timeout_ms;
	int use_pidfd, reporting, free_requested, idle_notified;
	struct job_list window, active, done;
	struct unit_list units;
	LIST_HEAD(, deploy_batch) batches;
	int64_t window_start;
	struct event *window_ev, *report_ev;
	sd_bus *bus;
	sd_bus_slot *match_slot, *subscribe_slot;
	struct event *bus_io_ev, *bus_timer_ev;
	struct { char *path, *result; } early[DEPLOY_EARLY_MAX];
	size_t early_next;
};


char *deploy_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void deploy_ev_free(struct event *ev);
/* A certificate's deployment failed in part (msg added to its error), or ended. */
void deploy_job_fail(struct deploy_job *j, const char *msg);
void deploy_job_finish(struct deploy_job *j);

/* ---- the systemd half (deploy_bus.c) ---- */
/* The unit of that name in batch, made when new; NULL on ENOMEM. */
struct deploy_unit *deploy_bus_unit(struct deploy *d, struct unit_list *batch, const char *name);
int deploy_bus_unit_add_job(struct deploy_unit *u, struct deploy_job *j);
/* Reload every unit of batch (moved to d->units); each ends its jobs' units. */
void deploy_bus_start(struct deploy *d, struct unit_list *batch);
void deploy_bus_unit_free(struct deploy_unit *u);
void deploy_bus_close(struct deploy *d);

#endif
