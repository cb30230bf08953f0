/* scheduler_internal.h - the scheduler's private structures, shared by scheduler.c and scheduler_life.c. */
#ifndef ACMED_SCHEDULER_INTERNAL_H
#define ACMED_SCHEDULER_INTERNAL_H

#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>

#include "order.h"
#include "scheduler.h"
#include "state.h"

#define DAY (24 * 3600)

/* JOB_LOADING: its state is being read (db) and its files looked at, after
 * start-up or a reload added it; nothing is scheduled yet. */
/* JOB_INSTALLING: an issued certificate being kept and written (not counted
 * among its CA's running orders). */
enum job_state { JOB_LOADING, JOB_IDLE, JOB_ARI, JOB_QUEUED, JOB_RUNNING, JOB_INSTALLING,
		 JOB_DONE };

struct job {
	struct sched *s;
	const struct config_cert *cert;
	/* The key type of the next order: the configured one, or without
	 * key_type in the config the type of the certificate in use (a certbot
	 * RSA certificate stays RSA). */
	enum key_type key_type;
	char why[160];                   /* sched_job_inspect's answer, when made up */
	struct challenge *webroot;       /* http-01 through the web server (`webroot:`), or NULL */
	enum job_state state;
	struct event *timer;
	struct order *order;
	struct keygen_req *keygen_req;   /* the order's key being made (RSA) */
	struct worker_job *reuse_job;    /* key_reuse: the key in use being read */
	struct install *install;         /* the new certificate being written */
	struct sched_kept *kept;         /* issued, not installed yet (scheduler_keep.c) */
	int install_failures;
	struct db_req *db_req;           /* its state or order key being read, or the key written */
	struct crypto_key *new_key;      /* the order's key, while db_req writes it */
	int begin_force;                 /* JOB_LOADING: order even if the files are fine */
	int begin_queued;                /* on sched->begin */
	int renew_asked, renew_force;    /* `renew` came while JOB_LOADING */
	TAILQ_ENTRY(job) blink;          /* on sched->begin */
	struct acme_call *ari_call;
	struct state_job st;
	struct state_live live;          /* the live files as last inspected (cached on disk) */
	int live_loaded;                 /* live was read from state_dir (or found absent) */
	char *cert_id;                   /* ARI CertID of the certificate in use */
	int64_t not_before, not_after;   /* of the certificate in use; 0 when none */
	int64_t due;                     /* renewal or next attempt */
	int64_t ari_next;                /* next renewalInfo fetch; 0 when none */
	int has_cert;                    /* a certificate matching the config is in use */
	struct event *deploy_timer;      /* retry of a failed reload/exec */
	int deploy_failures;
	int deploying;
	int failed;                      /* --once: gave up */
	int renew_before_warned;         /* said that renew_before is unusable */
	int ari_early;                   /* the timer is ARI replacing a young certificate */
	int ari_early_said;              /* said that a second such replacement waits */
	size_t ca_at;                    /* the CA of `ca:` orders go to: its position in the list */
	size_t issuer_at;                /* the position of the CA that issued the certificate in use */
	struct acme_client *ari_ca;      /* the CA ari_call was made to */
	struct revoke_req *revoke;       /* `acmed revoke` waiting for the CA */
	sched_revoke_fn revoke_cb;
	void *revoke_arg;
	int revoke_reason;
	char *revoke_cert;               /* the CertID of the certificate being revoked */
	int revoked_in_flight;           /* revoked while an order (maybe with that key) ran */
	TAILQ_ENTRY(job) qlink;
};
TAILQ_HEAD(job_queue, job);

struct ca_slot {
	struct sched *s;
	size_t index;
	struct acme_client *ca;
	int max_parallel;
	int running;
	struct job_queue queue;         /* most urgent first */
	unsigned nqueued;
	struct state_ca st;             /* down_since != 0: unavailable */
	struct job *probe;              /* the one order testing a down CA */
	struct db_req *db_req;          /* its state being read at start-up */
	struct event *probe_timer;
	struct event *ceiling_timer;    /* dispatches again when a new order may start */
	int64_t ceiling_until;          /* != 0: no new order before then (policy_orders) */
	int ceiling_said;               /* logged for this episode */
	int64_t ari_sec;                /* renewalInfo requests: the second being filled */
	unsigned ari_in_sec;            /* and how many are already in it */
};
#define SCHED_ARI_RATE 10               /* renewalInfo requests per second and CA */

struct sched {
	struct event_base *base;
	const struct config *cfg;
	struct challenge *const *solvers;       /* the caller's */
	size_t nsolvers;
	struct worker *io;              /* installs and the store: their fsyncs off the loop */
	struct db *db;                  /* job, order key and CA state: the caller's or own_db */
	struct db *own_db;
	struct job_queue begin;         /* loaded, to be looked at (a few at a time) */
	struct event *begin_ev;
	size_t loading;                 /* jobs in JOB_LOADING */
	struct ca_slot **slots;         /* in config order; each slot lives at one address */
	size_t nslots;
	struct job **jobs;              /* in config order; each job lives at one address */
	size_t njobs;
	int once;
	int64_t deadline;
	sched_idle_fn idle_cb;
	void *idle_arg;
	struct event *idle_ev;
	unsigned issued, failed;
	unsigned deploy_failed;
	struct event *live_flush_ev;    /* writes state_dir/live.json after changes */
	int live_dirty;                 /* a job's live changed since the last write */
	struct state_live_set *live_set; /* state_dir/live.json as read at start-up */
	int64_t begin_ms;               /* monotonic: when sched_start began */
	struct keygen *keygen;          /* RSA keys, off the loop */
	/* How a CA slot hands a job its turn, or gives it up (--once): set by
	 * sched_new, so scheduler_ca.c needs nothing of the job logic. */
	void (*start)(struct ca_slot *slot, struct job *j);
	void (*give_up)(struct job *j);
	void (*install_done)(struct job *j, int rc);   /* scheduler_keep.c reports here */
	struct sched_observer *observers; /* scheduler_observe.c */
	size_t nobservers;
};

void sched_job_timer_cb(evutil_socket_t fd, short what, void *arg);
void sched_slot_probe_cb(evutil_socket_t fd, short what, void *arg);
void sched_slot_ceiling_cb(evutil_socket_t fd, short what, void *arg);
void sched_job_deploy_timer_cb(evutil_socket_t fd, short what, void *arg);
const char *sched_job_inspect(struct job *j);
void sched_live_flush_cb(evutil_socket_t fd, short what, void *arg);
void sched_begin_cb(evutil_socket_t fd, short what, void *arg);
void sched_live_changed(struct sched *s);
void sched_live_save(struct sched *s);
void sched_job_schedule_at(struct job *j, int64_t when, int urgent);
void sched_job_schedule(struct job *j, int64_t when);
void sched_job_schedule_renewal(struct job *j, const char *why);
void sched_job_ari_refresh(struct job *j);
void sched_job_ari_fetch(struct job *j);
void sched_job_deploy(struct job *j);
void sched_job_forget_order(struct job *j);
void sched_job_save(struct job *j);
/* The directory URL of the CA the job orders at. */
const char *sched_job_directory(const struct job *j);
void sched_job_enqueue(struct job *j);
void sched_job_start(struct ca_slot *slot, struct job *j);
void sched_job_give_up(struct job *j);

void sched_job_install_done(struct job *j, int rc);

/* scheduler_keep.c: an issued certificate kept until it is installed */
void sched_keep_start(struct job *j, const struct order_result *res);
void sched_keep_retry(struct job *j);
void sched_keep_forget(struct job *j);          /* installed, or not worth it: gone */
void sched_keep_clear(struct job *j);           /* the memory copy only */

/* scheduler_ca.c */
void sched_ca_dispatch(struct ca_slot *slot);
void sched_ca_enqueue(struct ca_slot *slot, struct job *j);
void sched_ca_park(struct ca_slot *slot, struct job *j);
void sched_ca_mark_down(struct ca_slot *slot, int64_t retry_after, const char *message);
void sched_ca_mark_up(struct ca_slot *slot);

/* scheduler_solver.c: challenge_pick_fn for a job (arg: the job). */
struct challenge *sched_job_pick(void *arg, const char *id_type, const char *identifier, int wildcard,
				 const char **why);

/* scheduler_fallback.c: `ca: [a, b]`. The slot of the CA the job orders
 * at, of the one that issued its certificate, the former's name. */
struct ca_slot *sched_job_slot(const struct job *j);
struct ca_slot *sched_job_issuer_slot(const struct job *j);
const char *sched_job_ca_name(const struct job *j);
/* 1 when this failure moves the order to the next CA of the list. */
int sched_job_falls_back(const struct job *j, const struct order_result *res);
/* Note the failure, to the next CA (its order at this one forgotten); the caller enqueues. */
void sched_job_fall_back(struct job *j, const struct order_result *res);
/* The next order starts again from the first CA of the list. */
void sched_job_ca_restart(struct job *j);
/* The CA of slot does not answer: its queued jobs with a next CA go there. */
void sched_ca_reroute(struct ca_slot *slot);
/* The position in the list of the CA of the order in flight (its name and
 * directory, from st), of the first CA with this directory; -1: none. */
int sched_job_order_pos(const struct job *j);
int sched_job_dir_pos(const struct job *j, const char *directory);

/* scheduler_revoke.c: the revocation in flight given up (its client told);
 * why the certificate in use must be replaced (revoked), or NULL; the
 * replacement installed: the revocation forgotten (0 when that order may
 * carry the compromised key: kept, and one more order follows). */
void sched_revoke_cancel(struct job *j);
const char *sched_revoked_why(const struct job *j, char *buf, size_t len);
int sched_revoked_replaced(struct job *j);     /* 0: replace it once more (see there) */

/* scheduler_observe.c */
void sched_emit(struct sched *s, const struct sched_event *ev);
void sched_observers_free(struct sched *s);
void sched_job_finish_run(struct job *j, int failed);
void sched_check_idle(struct sched *s);

/* scheduler.c: the order's key is there (NULL: it could not be made); a new key for the order. */
void sched_job_key_ready(struct crypto_key *key, void *arg);
void sched_job_fresh_key(struct job *j);
/* scheduler_reuse.c: key_reuse: 1 when the key in use is being read for the
 * order (sched_job_key_ready or sched_job_fresh_key follows), 0 when not. */
int sched_reuse_start(struct job *j);

#endif
