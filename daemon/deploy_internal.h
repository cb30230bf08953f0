/* deploy_internal.h - private to deploy.c and deploy_exec.c: the deployer's state and the calls between them. */
#ifndef ACMED_DEPLOY_INTERNAL_H
#define ACMED_DEPLOY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/types.h>

#include <event2/event.h>

#include "deploy.h"

#define DEPLOY_LINE_MAX       1024    /* hook output: longer lines are cut */
#define DEPLOY_EARLY_MAX      64      /* JobRemoved seen before the job path was known */

/* sd-bus handles, opaque here: deploy.c is the only file that includes sd-bus.h. */
struct sd_bus;
struct sd_bus_slot;

enum job_state { JOB_WINDOW, JOB_UNITS, JOB_HOOK, JOB_DONE };

struct deploy_job {                     /* one certificate's deployment */
	TAILQ_ENTRY(deploy_job) link;
	struct deploy *d;
	enum job_state state;
	char *name, *domains, *output_dir;
	char **units, **argv;
	size_t nunits, argc, units_left;
	char *error;                    /* what went wrong, "; "-separated */
	int failed;
	/* the hook, while it runs */
	pid_t pid;
	int pidfd, out_fd, timed_out, cut, truncated;
	struct event *out_ev, *pid_ev, *timeout_ev, *kill_ev;
	char line[DEPLOY_LINE_MAX];
	size_t linelen, logged;
};

struct deploy_unit;                     /* deploy.c: one ReloadOrRestartUnit of a batch */

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
	int64_t window_start;
	struct event *window_ev, *report_ev, *sigchld_ev;
	struct sd_bus *bus;
	struct sd_bus_slot *match_slot, *subscribe_slot;
	struct event *bus_io_ev, *bus_timer_ev;
	struct { char *path, *result; } early[DEPLOY_EARLY_MAX];
	size_t early_next;
};

/* ---- deploy.c ---- */

char *deploy_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "60 s" or "250 ms"; returns buf. */
const char *deploy_dur(long ms, char *buf, size_t len);
/* Mark the job failed, appending msg to its "; "-separated error. */
void deploy_job_fail(struct deploy_job *j, const char *msg);
/* The job is over: move it from active to done and schedule its result. */
void deploy_job_finish(struct deploy_job *j);

/* ---- deploy_exec.c ---- */

/* Units done: run the certificate's hook (or finish the job when it has none). */
void deploy_job_start_hook(struct deploy_job *j);
/* The SIGCHLD evsignal callback (arg: the deploy), for hooks without a pidfd. */
void deploy_on_sigchld(evutil_socket_t fd, short what, void *arg);
/* Teardown: SIGTERM running hooks' process groups, SIGKILL after a grace period, reap. */
void deploy_hooks_kill(struct deploy *d);

#endif
