/* scheduler.c - one timer per certificate: when to renew, how long to back off, how many orders per CA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "crypto.h"
#include "log.h"
#include "order.h"
#include "scheduler.h"
#include "store.h"
#include "timeparse.h"

#define DAY (24 * 3600)

enum job_state { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
	struct sched *s;
	const struct config_cert *cert;
	enum job_state state;
	struct event *timer;
	struct order *order;
	int64_t not_before, not_after;   /* of the certificate in use; 0 when none */
	int64_t due;
	int failures;
	int failed;                      /* --once: gave up */
	TAILQ_ENTRY(job) qlink;
};
TAILQ_HEAD(job_queue, job);

struct ca_slot {
	struct acme_ca *ca;
	int max_parallel;
	int running;
	struct job_queue queue;         /* most urgent first */
};

struct sched {
	struct event_base *base;
	const struct config *cfg;
	struct challenge_http *http01;
	struct ca_slot *slots;
	struct job *jobs;
	size_t njobs;
	int once;
	int64_t deadline;
	sched_idle_fn idle_cb;
	void *idle_arg;
	struct event *idle_ev;
	unsigned issued, failed;
};

static void ca_dispatch(struct sched *s, size_t ca);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* The renewal spread of one certificate: random across certificates, but the
 * same for the same certificate at every start, so a restart does not move
 * the renewal time. */
static uint64_t job_spread_seed(const struct job *j)
{
	char buf[160];
	unsigned char h[32];
	uint64_t v = 0;
	int n = snprintf(buf, sizeof(buf), "%s/%lld", j->cert->name, (long long)j->not_after);

	crypto_sha256(buf, n > 0 ? (size_t)n : 0, h);
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return v;
}

/* ---------- arithmetic ---------- */

int64_t sched_renewal_time(int64_t not_before, int64_t not_after, int64_t renew_before,
			   uint64_t rnd)
{
	int64_t lifetime = not_after - not_before, t, spread;

	if (lifetime < 0)
		lifetime = 0;
	if (renew_before > 0)
		t = not_after - renew_before;
	else if (lifetime < 10 * DAY)
		t = not_after - lifetime / 2;
	else
		t = not_after - lifetime / 3;
	spread = lifetime / 100;
	if (spread > 3600)
		spread = 3600;
	if (spread > 0)
		t -= (int64_t)(rnd % (uint64_t)(spread + 1));
	return t;
}

int64_t sched_backoff(enum acme_err_class c, int failures, int64_t retry_after, uint64_t rnd)
{
	static const int64_t cert_steps[] = { 60, 600, 6000 };
	int64_t d;

	if (failures < 1)
		failures = 1;
	if (retry_after >= 0)
		return retry_after;
	switch (c) {
	case ACME_ERR_UNAVAILABLE: {
		/* 30 s doubling, cap 10 min, +-20 % jitter. */
		d = 30;
		for (int i = 1; i < failures && d < 600; i++)
			d *= 2;
		if (d > 600)
			d = 600;
		int64_t span = d * 2 / 5;             /* 40 % of d: from -20 % to +20 % */
		return d - d / 5 + (int64_t)(rnd % (uint64_t)(span + 1));
	}
	case ACME_ERR_RATELIMIT:
		return 3600;
	case ACME_ERR_INPUT:
		return DAY;
	case ACME_ERR_CERT:
	case ACME_ERR_LOCAL:
	case ACME_ERR_NONE:
	default:
		if (failures <= 3)
			return cert_steps[failures - 1];
		return DAY;
	}
}

/* ---------- the certificate in use ---------- */

/* Why the live certificate must be replaced, or NULL when it is fine. */
static const char *job_inspect(struct job *j)
{
	const struct config_cert *c = j->cert;
	char *key = NULL, *full = NULL;
	size_t klen = 0, flen = 0;
	struct crypto_cert_info info = {0};
	struct crypto_key *k = NULL;
	const char *why = NULL;
	int rc;

	j->not_before = j->not_after = 0;
	rc = store_read_live(c->output_dir, &key, &klen, &full, &flen);
	if (rc == -ENOENT)
		return "no certificate yet";
	if (rc < 0)
		return "the certificate files cannot be read";
	if (crypto_cert_info_pem(full, flen, &info) < 0) {
		why = "fullchain.pem is not a certificate";
		goto out;
	}
	if (crypto_key_from_pem(key, klen, &k) < 0 || crypto_cert_matches_key(full, flen, k) != 1) {
		why = "privkey.pem does not match the certificate";
		goto out;
	}
	if (!order_names_match(&info, &c->domains)) {
		why = "the configured domains changed";
		goto out;
	}
	if (!info.key_type_known || info.key_type != c->key_type) {
		why = "the configured key type changed";
		goto out;
	}
	j->not_before = info.not_before;
	j->not_after = info.not_after;
	if (info.not_after <= now_s())
		why = "the certificate has expired";
out:
	crypto_cert_info_clear(&info);
	crypto_key_free(k);
	crypto_free_secret(key, klen);
	free(full);
	return why;
}

/* ---------- jobs ---------- */

static void sched_check_idle(struct sched *s)
{
	struct timeval zero = { 0, 0 };

	if (!s->once)
		return;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i].state != JOB_DONE)
			return;
	evtimer_add(s->idle_ev, &zero);
}

static void job_enqueue(struct job *j)
{
	struct ca_slot *slot = &j->s->slots[j->cert->ca];
	struct job *it;

	/* Closest to expiry first; a certificate without one is most urgent. */
	TAILQ_FOREACH(it, &slot->queue, qlink)
		if (j->not_after < it->not_after)
			break;
	if (it)
		TAILQ_INSERT_BEFORE(it, j, qlink);
	else
		TAILQ_INSERT_TAIL(&slot->queue, j, qlink);
	j->state = JOB_QUEUED;
	ca_dispatch(j->s, j->cert->ca);
}

static void job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	job_enqueue(arg);
}

static void job_schedule(struct job *j, int64_t when)
{
	struct sched *s = j->s;
	int64_t delay = when - now_s();
	struct timeval tv;

	j->due = when;
	if (s->once && when > now_s()) {
		j->state = JOB_DONE;
		sched_check_idle(s);
		return;
	}
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = 0;
	j->state = JOB_IDLE;
	evtimer_add(j->timer, &tv);
}

static void job_order_done(struct order *o, const struct order_result *res, void *arg)
{
	struct job *j = arg;
	struct sched *s = j->s;
	size_t ca = j->cert->ca;
	char when[32], until[32];

	order_free(o);
	j->order = NULL;
	s->slots[ca].running--;
	if (res->ok) {
		int64_t next;

		j->failures = 0;
		j->not_before = res->not_before;
		j->not_after = res->not_after;
		s->issued++;
		next = sched_renewal_time(j->not_before, j->not_after, j->cert->renew_before,
					  job_spread_seed(j));
		log_info(j->cert->name, "certificate issued for %s, valid until %s; renewal at %s",
			 j->cert->domains.v[0], timeparse_format(j->not_after, until, sizeof(until)),
			 timeparse_format(next, when, sizeof(when)));
		if (s->once) {
			j->state = JOB_DONE;
			sched_check_idle(s);
		} else {
			job_schedule(j, next);
		}
	} else {
		int64_t wait, next;
		int transient = res->err == ACME_ERR_UNAVAILABLE || res->err == ACME_ERR_RATELIMIT;

		j->failures++;
		wait = sched_backoff(res->err, j->failures, res->retry_after, crypto_random_u64());
		next = now_s() + wait;
		if (s->once && (!transient || next > s->deadline)) {
			log_error(j->cert->name, "%s (%s); giving up for this run%s", res->message,
				  acme_err_class_name(res->err),
				  transient ? ": the next attempt would be after --timeout" : "");
			j->failed = 1;
			s->failed++;
			j->state = JOB_DONE;
			sched_check_idle(s);
		} else {
			log_error(j->cert->name, "%s (%s, failure %d); next attempt at %s",
				  res->message, acme_err_class_name(res->err), j->failures,
				  timeparse_format(next, when, sizeof(when)));
			job_schedule(j, next);
		}
	}
	ca_dispatch(s, ca);
}

static void ca_dispatch(struct sched *s, size_t ca)
{
	struct ca_slot *slot = &s->slots[ca];
	struct job *j;

	while (slot->running < slot->max_parallel && (j = TAILQ_FIRST(&slot->queue))) {
		TAILQ_REMOVE(&slot->queue, j, qlink);
		j->order = order_start(s->base, slot->ca, s->http01, j->cert, job_order_done, j);
		if (!j->order) {
			/* Local trouble (key generation, memory): like a failed order. */
			struct order_result res = { .ok = 0, .err = ACME_ERR_LOCAL, .retry_after = -1,
						    .message = "cannot start an order" };
			slot->running++;
			j->state = JOB_RUNNING;
			job_order_done(NULL, &res, j);
			continue;
		}
		slot->running++;
		j->state = JOB_RUNNING;
	}
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	s->idle_cb(s, s->idle_arg);
}

struct sched *sched_new(struct event_base *base, const struct config *cfg,
			struct acme_ca **cas, struct challenge_http *http01,
			int once, int64_t deadline, sched_idle_fn idle_cb_fn, void *arg)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->cfg = cfg;
	s->http01 = http01;
	s->once = once;
	s->deadline = deadline;
	s->idle_cb = idle_cb_fn;
	s->idle_arg = arg;
	s->slots = calloc(cfg->ncas ? cfg->ncas : 1, sizeof(*s->slots));
	s->jobs = calloc(cfg->ncerts ? cfg->ncerts : 1, sizeof(*s->jobs));
	s->idle_ev = evtimer_new(base, idle_cb, s);
	if (!s->slots || !s->jobs || !s->idle_ev) {
		sched_free(s);
		return NULL;
	}
	for (size_t i = 0; i < cfg->ncas; i++) {
		s->slots[i].ca = cas[i];
		s->slots[i].max_parallel = cfg->cas[i].max_parallel > 0 ? cfg->cas[i].max_parallel : 4;
		TAILQ_INIT(&s->slots[i].queue);
	}
	s->njobs = cfg->ncerts;
	for (size_t i = 0; i < cfg->ncerts; i++) {
		struct job *j = &s->jobs[i];
		j->s = s;
		j->cert = &cfg->certs[i];
		j->timer = evtimer_new(base, job_timer_cb, j);
		if (!j->timer) {
			sched_free(s);
			return NULL;
		}
	}
	return s;
}

int sched_start(struct sched *s)
{
	char when[32], until[32];

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = &s->jobs[i];
		const char *why = job_inspect(j);

		if (why) {
			log_info(j->cert->name, "%s: ordering a certificate for %s%s", why,
				 j->cert->domains.v[0], j->cert->domains.n > 1 ? " and more" : "");
			job_schedule(j, now_s());
			continue;
		}
		int64_t next = sched_renewal_time(j->not_before, j->not_after,
						  j->cert->renew_before, job_spread_seed(j));
		log_info(j->cert->name, "certificate valid until %s; renewal at %s",
			 timeparse_format(j->not_after, until, sizeof(until)),
			 timeparse_format(next, when, sizeof(when)));
		job_schedule(j, next);
	}
	sched_check_idle(s);
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->jobs && i < s->njobs; i++) {
		order_free(s->jobs[i].order);
		if (s->jobs[i].timer)
			event_free(s->jobs[i].timer);
	}
	if (s->idle_ev)
		event_free(s->idle_ev);
	free(s->jobs);
	free(s->slots);
	free(s);
}

unsigned sched_failed_count(const struct sched *s)
{
	return s->failed;
}

unsigned sched_issued_count(const struct sched *s)
{
	return s->issued;
}
