/* scheduler.h - one timer per certificate: when to renew, how long to back off, how many orders per CA. */
#ifndef ACMED_SCHED_H
#define ACMED_SCHED_H

#include <stdint.h>
#include <event2/event.h>

#include "acme_client.h"
#include "challenge.h"
#include "config.h"

struct sched;

/* Called when, in --once mode, nothing is due or running any more. */
typedef void (*sched_idle_fn)(struct sched *s, void *arg);

/* cas[i] is the client of cfg->cas[i]. once: issue what is due now, retry
 * transient errors until deadline (unix seconds), then call idle_cb. */
struct db;
/* db: where job and CA state are kept (db.h), the caller's; NULL: a file
 * store in cfg->state_dir of the scheduler's own. */
struct sched *sched_new(struct event_base *base, const struct config *cfg,
			struct acme_client **cas, struct db *db, int once, int64_t deadline,
			sched_idle_fn idle_cb, void *arg);
/* The challenge solvers (challenge.h), owned by the caller: a certificate's
 * identifiers are answered by the solver named by its `challenge:` key
 * that supports them. Set before sched_start. */
void sched_set_solvers(struct sched *s, struct challenge *const *solvers, size_t n);
/* Look at the certificates on disk and arm the timers. */
int sched_start(struct sched *s);
void sched_free(struct sched *s);
/* --once outcome: number of certificates that failed for good or ran out of time. */
unsigned sched_failed_count(const struct sched *s);
unsigned sched_issued_count(const struct sched *s);
/* Work handed to threads and not delivered back yet: installs, RSA keys,
 * and the store when it is the scheduler's own. Tests that move a fake
 * clock wait for 0 first, so time never passes while a thread works. */
size_t sched_pending_work(const struct sched *s);

/* What `acmed status` shows of one certificate. */
enum sched_phase {
	SCHED_VALID,            /* certificate fine; renewal timer armed */
	SCHED_QUEUED,           /* due; waiting for a free slot at its CA */
	SCHED_ORDERING,         /* order in flight */
	SCHED_BACKOFF,          /* last attempt failed; waiting for next_at */
	SCHED_CA_DOWN,          /* parked while its CA is unavailable */
	SCHED_DONE,             /* --once: nothing more this run */
	SCHED_FAILED,           /* --once: gave up */
	SCHED_STARTING,         /* its state and files are being looked at (start-up, reload) */
};
const char *sched_phase_name(enum sched_phase p);   /* "valid", "queued", ... */

struct state_job;
struct sched_job_info {
	const struct config_cert *cert;
	int64_t not_before, not_after;  /* certificate in use; 0 when none */
	const char *issuer;             /* its issuer's CN, or NULL */
	enum key_type key_type;         /* of the next order (config, or the certificate in use) */
	enum sched_phase phase;
	int64_t next_at;                /* next renewal / attempt; 0 when none */
	const struct state_job *state;  /* failures, last error, ARI, order URL */
	size_t ca;                      /* the CA it orders at (`ca:` list): index into config.cas */
};
size_t sched_job_count(const struct sched *s);
int sched_job_info(const struct sched *s, size_t i, struct sched_job_info *out);
/* When the daemon renews a certificate by the lifetime rule (no ARI window):
 * renew_before when usable, else when 1/3 (1/2) of its life is left, minus
 * the spread of its own; `status` without a daemon says the same time. */
int64_t sched_lifetime_renewal(const char *name, int64_t not_before, int64_t not_after,
			       int64_t renew_before);

struct sched_ca_info {
	const char *name;
	int up;                         /* 0 while the CA is marked unavailable */
	int64_t next_probe;             /* when down */
	unsigned waiting, running;
};
int sched_ca_info(const struct sched *s, size_t i, struct sched_ca_info *out);

/* Apply a new configuration (reload). cas[i] serves cfg->cas[i]; the caller
 * passes the same acme_client for a CA that did not change. Certificates
 * whose names, key type, CA and output_dir are unchanged keep their timers,
 * backoff and orders in flight; changed ones are issued again; removed ones
 * stop (their files stay). cfg must outlive the scheduler or the next call. */
struct sched_diff { unsigned added, removed, changed, kept; };
int sched_reconfigure(struct sched *s, const struct config *cfg, struct acme_client **cas,
		      struct sched_diff *diff);


/* What the scheduler tells its subscribers (metrics, notify, the deployer). */
enum sched_event_kind {
	SCHED_EV_ORDER_DONE,    /* an order ended: ok, or failed with err and message */
	SCHED_EV_INSTALLED,     /* a new certificate is in output_dir and must be deployed (also
				 * at start-up when the last one was not): the deployer reloads
				 * units / runs the hook and reports with sched_deploy_done() */
	SCHED_EV_DEPLOY_DONE,   /* that deploy ended: ok, or failed with message */
	SCHED_EV_CA_DOWN,       /* ca found unavailable (message: why) */
	SCHED_EV_CA_UP,         /* ca answers again */
	SCHED_EV_EXPIRING,      /* an order failed and the certificate in use ends within
				 * SCHED_EXPIRING_WITHIN (not_after), or has no certificate */
};
#define SCHED_EXPIRING_WITHIN (7 * 24 * 3600)

struct sched_event {
	enum sched_event_kind kind;
	const struct config_cert *cert; /* NULL for CA events */
	const char *ca;                 /* the CA's name */
	int ok;
	enum acme_err_class err;        /* when !ok */
	const char *message;            /* one line, or NULL */
	int failures;                   /* consecutive failures so far (ORDER_DONE, EXPIRING) */
	int64_t not_after;              /* of the certificate in use; 0 when none */
};
/* Called on the loop, in subscription order; ev is valid only during the call. */
typedef void (*sched_observer_fn)(const struct sched_event *ev, void *arg);
/* -ENOMEM. The same fn/arg twice is two subscriptions. */
int sched_subscribe(struct sched *s, sched_observer_fn fn, void *arg);
void sched_unsubscribe(struct sched *s, sched_observer_fn fn, void *arg);

/* The deployer's report on a SCHED_EV_INSTALLED. Failures are retried after
 * 1 min, 10 min, 100 min, then daily (never by ordering again). */
void sched_deploy_done(struct sched *s, const char *name, int ok, const char *error);
unsigned sched_deploy_failed_count(const struct sched *s);

/* Renew now (force: even when not due). -ENOENT for an unknown name. */
int sched_renew_now(struct sched *s, const char *name, int force);
/* `acmed revoke`: revoke the certificate in NAME's output_dir at the CA that
 * issued it (reason: revoke.h), then order its replacement at once. cb(arg,
 * 0, message) once the CA revoked it, else a negative code; not called when
 * this returns an error (-ENOENT unknown name, err set). */
typedef void (*sched_revoke_fn)(void *arg, int rc, const char *message);
int sched_revoke(struct sched *s, const char *name, int reason, sched_revoke_fn cb, void *arg, char *err,
		 size_t errlen);

/* The arithmetic (renewal time, backoff, probes, the order ceiling) is in policy.h. */

#endif
