/* scheduler.c - one timer per certificate: when to renew (ARI or lifetime), backoff, per-CA outages and slots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "ari.h"
#include "crypto.h"
#include "log.h"
#include "order.h"
#include "scheduler.h"
#include "state.h"
#include "store.h"
#include "timeparse.h"

#define DAY (24 * 3600)

enum job_state { JOB_IDLE, JOB_ARI, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
	struct sched *s;
	const struct config_cert *cert;
	enum job_state state;
	struct event *timer;
	struct order *order;
	struct acme_call *ari_call;
	struct state_job st;
	char *cert_id;                   /* ARI CertID of the certificate in use */
	int64_t not_before, not_after;   /* of the certificate in use; 0 when none */
	int64_t due;                     /* renewal or next attempt */
	int64_t ari_next;                /* next renewalInfo fetch; 0 when none */
	int has_cert;                    /* a certificate matching the config is in use */
	struct event *deploy_timer;      /* retry of a failed reload/exec */
	int deploy_failures;
	int deploying;
	int failed;                      /* --once: gave up */
	TAILQ_ENTRY(job) qlink;
};
TAILQ_HEAD(job_queue, job);

struct ca_slot {
	struct sched *s;
	size_t index;
	struct acme_ca *ca;
	int max_parallel;
	int running;
	struct job_queue queue;         /* most urgent first */
	unsigned nqueued;
	struct state_ca st;             /* down_since != 0: unavailable */
	struct job *probe;              /* the one order testing a down CA */
	struct event *probe_timer;
};

struct sched {
	struct event_base *base;
	const struct config *cfg;
	struct challenge_http *http01;
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
	sched_installed_fn installed_cb;
	void *installed_arg;
	unsigned deploy_failed;
};

static void ca_dispatch(struct ca_slot *slot);
static void job_ari_refresh(struct job *j);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static const char *fmt_time(int64_t t, char *buf, unsigned len)
{
	return timeparse_format(t, buf, len);
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

/* ---------- persistent state ---------- */

static void job_save(struct job *j)
{
	state_job_save(j->s->cfg->state_dir, j->cert->name, &j->st);
}

static void job_forget_order(struct job *j)
{
	if (!j->st.order_url)
		return;
	free(j->st.order_url);
	j->st.order_url = NULL;
	for (size_t i = 0; i < j->st.order_domains.n; i++)
		free(j->st.order_domains.v[i]);
	j->st.order_domains.n = 0;
	if (j->st.order_domains.v)
		j->st.order_domains.v[0] = NULL;
	state_order_key_remove(j->s->cfg->state_dir, j->cert->name);
}

static void ca_save(struct ca_slot *slot)
{
	state_ca_save(slot->s->cfg->state_dir, slot->ca ? acme_ca_name(slot->ca) :
		      slot->s->cfg->cas[slot->index].name, &slot->st);
}

/* The spread of one certificate: random across certificates, but the same for
 * the same certificate at every start, so a restart does not move it. */
static uint64_t job_seed(const struct job *j, const char *what)
{
	char buf[200];
	unsigned char h[32];
	uint64_t v = 0;
	int n = snprintf(buf, sizeof(buf), "%s/%s/%lld", what, j->cert->name,
			 (long long)j->not_after);

	crypto_sha256(buf, n > 0 ? (size_t)n : 0, h);
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return v;
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
	j->has_cert = 0;
	free(j->cert_id);
	j->cert_id = NULL;
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
	j->not_before = info.not_before;
	j->not_after = info.not_after;
	ari_cert_id(full, flen, &j->cert_id);     /* none without an AKI: no ARI then */
	if (!order_names_match(&info, &c->domains)) {
		why = "the configured domains changed";
		goto out;
	}
	if (!info.key_type_known || info.key_type != c->key_type) {
		why = "the configured key type changed";
		goto out;
	}
	if (info.not_after <= now_s()) {
		why = "the certificate has expired";
		goto out;
	}
	j->has_cert = 1;
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
		if (s->jobs[i]->state != JOB_DONE)
			return;
	evtimer_add(s->idle_ev, &zero);
}

static void job_finish_run(struct job *j, int failed)
{
	if (failed && !j->failed) {
		j->failed = 1;
		j->s->failed++;
	}
	j->state = JOB_DONE;
	sched_check_idle(j->s);
}

static void job_enqueue(struct job *j)
{
	struct ca_slot *slot = j->s->slots[j->cert->ca];
	struct job *it;

	/* Closest to expiry first; a certificate without one is most urgent. */
	TAILQ_FOREACH(it, &slot->queue, qlink)
		if (j->not_after < it->not_after)
			break;
	if (it)
		TAILQ_INSERT_BEFORE(it, j, qlink);
	else
		TAILQ_INSERT_TAIL(&slot->queue, j, qlink);
	slot->nqueued++;
	j->state = JOB_QUEUED;
	ca_dispatch(slot);
}

static void job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	if (j->ari_next && j->ari_next <= now_s() && j->has_cert) {
		job_ari_refresh(j);
		return;
	}
	job_enqueue(j);
}

/* Arm the job's one timer for the earlier of its due time and its ARI check.
 * urgent: the certificate is needed now and `when` is only a backoff; in
 * --once mode that is waited for (within --timeout), a future renewal is not. */
static void job_schedule_at(struct job *j, int64_t when, int urgent)
{
	struct sched *s = j->s;
	int64_t at = when, delay;
	struct timeval tv;
	char buf[32];

	j->due = when;
	if (s->once && when > now_s()) {
		if (!urgent) {
			job_finish_run(j, 0);
			return;
		}
		if (when > s->deadline) {
			log_error(j->cert->name, "next attempt at %s is after --timeout; giving up for "
				  "this run", fmt_time(when, buf, sizeof(buf)));
			job_finish_run(j, 1);
			return;
		}
	}
	if (j->ari_next && j->ari_next < at && j->has_cert)
		at = j->ari_next;
	delay = at - now_s();
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = 0;
	j->state = JOB_IDLE;
	evtimer_add(j->timer, &tv);
}

static void job_schedule(struct job *j, int64_t when)
{
	job_schedule_at(j, when, 0);
}

/* The renewal time of a certificate in use: ARI's choice when the CA gave a
 * window for this very certificate, else the lifetime rule. */
static int64_t job_renewal_time(struct job *j)
{
	if (j->cert_id && j->st.ari_cert_id && strcmp(j->cert_id, j->st.ari_cert_id) == 0 &&
	    j->st.ari_chosen && j->cert->renew_before == 0)
		return j->st.ari_chosen;
	return sched_renewal_time(j->not_before, j->not_after, j->cert->renew_before,
				  job_seed(j, "spread"));
}

static void job_schedule_renewal(struct job *j, const char *why)
{
	char when[32], until[32];
	int64_t next = job_renewal_time(j);

	if (next < j->st.next_attempt)
		next = j->st.next_attempt;
	log_info(j->cert->name, "%s valid until %s; renewal at %s%s", why,
		 fmt_time(j->not_after, until, sizeof(until)), fmt_time(next, when, sizeof(when)),
		 next == j->st.ari_chosen ? " (ARI)" : "");
	job_schedule(j, next);
}

/* ---------- ARI ---------- */

static void ari_done(const struct acme_reply *r, void *arg)
{
	struct job *j = arg;
	struct ari_window w = {0};
	char a[32], b[32];
	int64_t now = now_s();

	j->ari_call = NULL;
	if (r->missing_resource) {
		j->ari_next = 0;            /* the CA has no ARI: the lifetime rule */
		job_schedule_renewal(j, "certificate");
		return;
	}
	if (r->err != ACME_ERR_NONE || ari_parse(r->body, r->body_len, &w) < 0) {
		log_warn(j->cert->name, "renewalInfo: %s; asking again in 6 h",
			 r->err != ACME_ERR_NONE ? r->err_text : "not a valid renewal window");
		j->ari_next = ari_next_check(now, -1, 1);
		j->st.ari_next_check = j->ari_next;
		job_save(j);
		job_schedule_renewal(j, "certificate");
		return;
	}
	if (!j->st.ari_cert_id || strcmp(j->st.ari_cert_id, j->cert_id) != 0 ||
	    j->st.ari_start != w.start || j->st.ari_end != w.end) {
		free(j->st.ari_cert_id);
		j->st.ari_cert_id = strdup(j->cert_id);
		j->st.ari_start = w.start;
		j->st.ari_end = w.end;
		j->st.ari_chosen = ari_choose(&w, now, job_seed(j, "ari") ^ crypto_random_u64());
		free(j->st.ari_explanation);
		j->st.ari_explanation = w.explanation_url ? strdup(w.explanation_url) : NULL;
		log_info(j->cert->name, "ARI window %s .. %s%s%s", fmt_time(w.start, a, sizeof(a)),
			 fmt_time(w.end, b, sizeof(b)), w.explanation_url ? "; explanation: " : "",
			 w.explanation_url ? w.explanation_url : "");
	}
	j->ari_next = ari_next_check(now, r->retry_after, 0);
	j->st.ari_next_check = j->ari_next;
	job_save(j);
	ari_window_clear(&w);
	job_schedule_renewal(j, "certificate");
}

static void job_ari_refresh(struct job *j)
{
	if (!j->cert_id) {
		job_schedule_renewal(j, "certificate");
		return;
	}
	j->state = JOB_ARI;
	j->ari_call = acme_get(j->s->slots[j->cert->ca]->ca, "renewalInfo", j->cert_id, ari_done, j);
	if (!j->ari_call)
		job_schedule_renewal(j, "certificate");
}

/* ---------- per-CA outages ---------- */

static void slot_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ca_slot *slot = arg;

	ca_dispatch(slot);
}

static void slot_give_up_parked(struct ca_slot *slot, const char *why)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&slot->queue))) {
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		job_finish_run(j, 1);
	}
	log_error(NULL, "CA %s: %s; giving up for this run", acme_ca_name(slot->ca), why);
}

static void slot_mark_down(struct ca_slot *slot, const struct order_result *res)
{
	struct sched *s = slot->s;
	char when[32];
	int64_t wait;
	struct timeval tv;
	int was_up = slot->st.down_since == 0;

	if (was_up) {
		slot->st.down_since = now_s();
		slot->st.probe_failures = 0;
	}
	slot->st.probe_failures++;
	wait = sched_backoff(ACME_ERR_UNAVAILABLE, slot->st.probe_failures, res->retry_after,
			     crypto_random_u64());
	slot->st.next_probe = now_s() + wait;
	free(slot->st.last_error);
	slot->st.last_error = strdup(res->message);
	ca_save(slot);
	if (was_up)
		log_error(NULL, "CA %s unavailable (%s); %u certificate%s waiting; next probe at %s",
			  acme_ca_name(slot->ca), res->message, slot->nqueued + slot->running,
			  slot->nqueued + slot->running == 1 ? "" : "s",
			  fmt_time(slot->st.next_probe, when, sizeof(when)));
	else
		log_info(NULL, "CA %s still unavailable (%s); %u waiting; next probe at %s",
			 acme_ca_name(slot->ca), res->message, slot->nqueued + slot->running,
			 fmt_time(slot->st.next_probe, when, sizeof(when)));
	if (s->once && slot->st.next_probe > s->deadline) {
		slot_give_up_parked(slot, "still unavailable when --timeout runs out");
		return;
	}
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = 0;
	evtimer_add(slot->probe_timer, &tv);
}

static void slot_mark_up(struct ca_slot *slot)
{
	if (slot->st.down_since == 0)
		return;
	log_info(NULL, "CA %s is back; resuming %u certificate%s", acme_ca_name(slot->ca),
		 slot->nqueued, slot->nqueued == 1 ? "" : "s");
	state_ca_clear(&slot->st);
	ca_save(slot);
	evtimer_del(slot->probe_timer);
}

/* ---------- orders ---------- */

static void job_order_created(struct order *o, const char *url, void *arg)
{
	struct job *j = arg;

	if (j->st.order_url && strcmp(j->st.order_url, url) == 0)
		return;
	free(j->st.order_url);
	j->st.order_url = strdup(url);
	j->st.order_created = now_s();
	j->st.order_key_type = j->cert->key_type;
	for (size_t i = 0; i < j->st.order_domains.n; i++)
		free(j->st.order_domains.v[i]);
	free(j->st.order_domains.v);
	j->st.order_domains.v = calloc(j->cert->domains.n + 1, sizeof(char *));
	j->st.order_domains.n = 0;
	for (size_t i = 0; j->st.order_domains.v && i < j->cert->domains.n; i++)
		j->st.order_domains.v[j->st.order_domains.n++] = strdup(j->cert->domains.v[i]);
	job_save(j);
}

/* Hand a freshly installed certificate to the deployer (reload units, exec). */
static void job_deploy(struct job *j)
{
	struct sched *s = j->s;

	if (!s->installed_cb || (j->cert->reload.n == 0 && j->cert->exec.n == 0)) {
		if (j->st.deploy_pending) {
			j->st.deploy_pending = 0;
			job_save(j);
		}
		return;
	}
	if (!j->st.deploy_pending) {
		j->st.deploy_pending = 1;
		job_save(j);
	}
	j->deploying = 1;
	s->installed_cb(j->cert, s->installed_arg);
}

static void job_deploy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	job_deploy(arg);
}

void sched_deploy_done(struct sched *s, const char *name, int ok, const char *error)
{
	static const int64_t steps[] = { 60, 600, 6000 };
	char when[32];

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];
		int64_t wait;
		struct timeval tv;

		if (strcmp(j->cert->name, name) != 0 || !j->deploying)
			continue;
		j->deploying = 0;
		if (ok) {
			j->deploy_failures = 0;
			j->st.deploy_pending = 0;
			job_save(j);
			return;
		}
		j->deploy_failures++;
		if (s->once) {
			s->deploy_failed++;
			log_error(name, "deploying the new certificate failed (%s); the next run tries "
				  "again", error ? error : "?");
			return;
		}
		wait = j->deploy_failures <= 3 ? steps[j->deploy_failures - 1] : DAY;
		log_error(name, "deploying the new certificate failed (%s); trying again at %s",
			  error ? error : "?", fmt_time(now_s() + wait, when, sizeof(when)));
		tv.tv_sec = (time_t)wait;
		tv.tv_usec = 0;
		evtimer_add(j->deploy_timer, &tv);
		return;
	}
}

void sched_set_installed_cb(struct sched *s, sched_installed_fn cb, void *arg)
{
	s->installed_cb = cb;
	s->installed_arg = arg;
}

unsigned sched_deploy_failed_count(const struct sched *s)
{
	return s->deploy_failed;
}

static void job_success(struct job *j, const struct order_result *res)
{
	struct sched *s = j->s;

	j->st.failures = 0;
	j->st.next_attempt = 0;
	free(j->st.last_error);
	j->st.last_error = NULL;
	free(j->st.last_error_class);
	j->st.last_error_class = NULL;
	j->st.last_success = now_s();
	job_forget_order(j);
	s->issued++;
	job_inspect(j);                  /* the new certificate: its dates and CertID */
	job_save(j);
	job_deploy(j);
	if (s->once) {
		char until[32];
		log_info(j->cert->name, "certificate issued for %s, valid until %s",
			 j->cert->domains.v[0], fmt_time(j->not_after, until, sizeof(until)));
		job_finish_run(j, 0);
		return;
	}
	if (j->cert_id && acme_ca_has_resource(s->slots[j->cert->ca]->ca, "renewalInfo"))
		job_ari_refresh(j);
	else
		job_schedule_renewal(j, "certificate issued,");
}

static void job_failure(struct job *j, const struct order_result *res)
{
	struct sched *s = j->s;
	char when[32];
	int64_t wait, next;

	j->st.failures++;
	wait = sched_backoff(res->err, j->st.failures, res->retry_after, crypto_random_u64());
	next = now_s() + wait;
	j->st.next_attempt = next;
	free(j->st.last_error);
	j->st.last_error = strdup(res->message);
	free(j->st.last_error_class);
	j->st.last_error_class = strdup(acme_err_class_name(res->err));
	j->st.last_error_at = now_s();
	if (res->err != ACME_ERR_RATELIMIT)
		job_forget_order(j);     /* that order is dead; a rate limit may pass */
	job_save(j);
	if (s->once && (res->err != ACME_ERR_RATELIMIT || next > s->deadline)) {
		log_error(j->cert->name, "%s (%s); giving up for this run%s", res->message,
			  acme_err_class_name(res->err),
			  res->err == ACME_ERR_RATELIMIT ? ": the CA's Retry-After is past --timeout" : "");
		job_finish_run(j, 1);
		return;
	}
	log_error(j->cert->name, "%s (%s, failure %d); next attempt at %s", res->message,
		  acme_err_class_name(res->err), j->st.failures, fmt_time(next, when, sizeof(when)));
	job_schedule_at(j, next, 1);
}

static void job_order_done(struct order *o, const struct order_result *res, void *arg)
{
	struct job *j = arg;
	struct ca_slot *slot = j->s->slots[j->cert->ca];
	int was_probe = slot->probe == j;

	/* res lives in o: free the order only once res is no longer needed. */
	j->order = NULL;
	slot->running--;
	if (was_probe)
		slot->probe = NULL;
	if (!res->ok && res->err == ACME_ERR_UNAVAILABLE) {
		/* The CA, not this certificate: park the job; the CA is probed. */
		TAILQ_INSERT_HEAD(&slot->queue, j, qlink);
		slot->nqueued++;
		j->state = JOB_QUEUED;
		if (slot->st.down_since == 0 || was_probe)
			slot_mark_down(slot, res);
		else
			log_debug(j->cert->name, "parked while CA %s is unavailable: %s",
				  acme_ca_name(slot->ca), res->message);
		order_free(o);
		return;
	}
	slot_mark_up(slot);              /* the CA answered */
	if (res->ok)
		job_success(j, res);
	else
		job_failure(j, res);
	order_free(o);
	ca_dispatch(slot);
}

/* The key and order for a job: the saved ones when an order is in flight for
 * the same names and key type, else a fresh key. */
static int job_order_params(struct job *j, struct order_params *p)
{
	const struct config_cert *c = j->cert;
	const char *dir = j->s->cfg->state_dir;
	char *pem = NULL;
	size_t len = 0;

	memset(p, 0, sizeof(*p));
	p->cert = c;
	p->created = job_order_created;
	if (j->st.order_url) {
		int same = j->st.order_key_type == c->key_type &&
			   j->st.order_domains.n == c->domains.n;
		for (size_t i = 0; same && i < c->domains.n; i++) {
			size_t k;
			for (k = 0; k < j->st.order_domains.n; k++)
				if (strcmp(j->st.order_domains.v[k], c->domains.v[i]) == 0)
					break;
			same = k < j->st.order_domains.n;
		}
		if (same && state_order_key_load(dir, c->name, &pem, &len) == 0 &&
		    crypto_key_from_pem(pem, len, &p->key) == 0) {
			p->resume_url = j->st.order_url;
			crypto_free_secret(pem, len);
			return 0;
		}
		crypto_free_secret(pem, len);
		pem = NULL;
		job_forget_order(j);
		job_save(j);
	}
	if (crypto_key_generate(c->key_type, &p->key) < 0)
		return -EIO;
	if (crypto_key_to_pem(p->key, &pem, &len) < 0 ||
	    state_order_key_save(dir, c->name, pem, len) < 0) {
		crypto_free_secret(pem, len);
		crypto_key_free(p->key);
		p->key = NULL;
		return -EIO;
	}
	crypto_free_secret(pem, len);
	if (j->has_cert && j->cert_id &&
	    acme_ca_has_resource(j->s->slots[c->ca]->ca, "renewalInfo"))
		p->replaces = j->cert_id;
	return 0;
}

static void job_start(struct ca_slot *slot, struct job *j)
{
	struct order_params p;

	slot->running++;
	j->state = JOB_RUNNING;
	if (job_order_params(j, &p) == 0)
		j->order = order_start(slot->s->base, slot->ca, slot->s->http01, &p,
				       job_order_done, j);
	if (!j->order) {
		struct order_result res = { .ok = 0, .err = ACME_ERR_LOCAL, .retry_after = -1,
					    .message = "cannot start an order (key generation or disk)" };
		job_order_done(NULL, &res, j);
	}
}

static void ca_dispatch(struct ca_slot *slot)
{
	struct job *j;

	if (slot->st.down_since) {
		/* One probe at a time, when its time has come. */
		if (slot->probe || slot->st.next_probe > now_s() || !(j = TAILQ_FIRST(&slot->queue)))
			return;
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		slot->probe = j;
		log_info(j->cert->name, "probing CA %s", acme_ca_name(slot->ca));
		job_start(slot, j);
		return;
	}
	while (slot->running < slot->max_parallel && (j = TAILQ_FIRST(&slot->queue))) {
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		job_start(slot, j);
		if (slot->st.down_since)
			return;
	}
}

/* ---------- life cycle ---------- */

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	s->idle_cb(s, s->idle_arg);
}

static struct ca_slot *slot_new(struct sched *s, size_t index, struct acme_ca *ca)
{
	struct ca_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return NULL;
	slot->s = s;
	slot->index = index;
	slot->ca = ca;
	TAILQ_INIT(&slot->queue);
	slot->probe_timer = evtimer_new(s->base, slot_probe_cb, slot);
	if (!slot->probe_timer) {
		free(slot);
		return NULL;
	}
	return slot;
}

static void slot_free(struct ca_slot *slot)
{
	if (!slot)
		return;
	if (slot->probe_timer)
		event_free(slot->probe_timer);
	state_ca_clear(&slot->st);
	free(slot);
}

static struct job *job_new(struct sched *s, const struct config_cert *cert)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->s = s;
	j->cert = cert;
	j->timer = evtimer_new(s->base, job_timer_cb, j);
	j->deploy_timer = evtimer_new(s->base, job_deploy_timer_cb, j);
	if (!j->timer || !j->deploy_timer) {
		if (j->timer)
			event_free(j->timer);
		if (j->deploy_timer)
			event_free(j->deploy_timer);
		free(j);
		return NULL;
	}
	return j;
}

/* Stop everything a job does; its files stay where they are. */
static void job_free(struct job *j)
{
	struct ca_slot *slot;

	if (!j)
		return;
	if (j->state == JOB_QUEUED) {
		slot = j->s->slots[j->cert->ca];
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
	}
	if (j->order) {
		slot = j->s->slots[j->cert->ca];
		order_free(j->order);
		slot->running--;
		if (slot->probe == j)
			slot->probe = NULL;
	}
	acme_call_cancel(j->ari_call);
	if (j->timer)
		event_free(j->timer);
	if (j->deploy_timer)
		event_free(j->deploy_timer);
	state_job_clear(&j->st);
	free(j->cert_id);
	free(j);
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
		s->slots[i] = slot_new(s, i, cas[i]);
		if (!s->slots[i]) {
			sched_free(s);
			return NULL;
		}
		s->nslots++;
		s->slots[i]->max_parallel = cfg->cas[i].max_parallel > 0 ? cfg->cas[i].max_parallel : 4;
	}
	for (size_t i = 0; i < cfg->ncerts; i++) {
		s->jobs[i] = job_new(s, &cfg->certs[i]);
		if (!s->jobs[i]) {
			sched_free(s);
			return NULL;
		}
		s->njobs++;
	}
	return s;
}

static void slot_restore(struct ca_slot *slot)
{
	char when[32];
	int64_t delay;
	struct timeval tv;

	if (state_ca_load(slot->s->cfg->state_dir, acme_ca_name(slot->ca), &slot->st) < 0 ||
	    slot->st.down_since == 0) {
		state_ca_clear(&slot->st);
		return;
	}
	log_warn(NULL, "CA %s was unavailable before the restart (%s); next probe at %s",
		 acme_ca_name(slot->ca), slot->st.last_error ? slot->st.last_error : "?",
		 fmt_time(slot->st.next_probe, when, sizeof(when)));
	delay = slot->st.next_probe - now_s();
	tv.tv_sec = delay > 0 ? (time_t)delay : 0;
	tv.tv_usec = 0;
	evtimer_add(slot->probe_timer, &tv);
}

/* Look at a job's certificate and state and arm its timer. force: order a
 * new certificate even if the one on disk is fine (its CA changed). */
static void job_begin(struct job *j, int force)
{
	struct sched *s = j->s;
	const char *why = job_inspect(j);
	int64_t now = now_s();
	char when[32];

	state_job_load(s->cfg->state_dir, j->cert->name, &j->st);
	if (force) {
		/* Another CA: an order in flight belongs to the old one. */
		job_forget_order(j);
		j->st.failures = 0;
		j->st.next_attempt = 0;
		job_save(j);
		if (!why)
			why = "the configured CA changed";
		j->has_cert = 0;
	}
	if (j->st.order_url) {
		log_info(j->cert->name, "order %s was in flight before the restart", j->st.order_url);
		job_schedule_at(j, j->st.next_attempt > now ? j->st.next_attempt : now, 1);
		return;
	}
	if (why) {
		if (j->st.next_attempt > now) {
			log_info(j->cert->name, "%s; after %d failed attempt%s, next at %s (%s)", why,
				 j->st.failures, j->st.failures == 1 ? "" : "s",
				 fmt_time(j->st.next_attempt, when, sizeof(when)),
				 j->st.last_error ? j->st.last_error : "");
			job_schedule_at(j, j->st.next_attempt, 1);
		} else {
			log_info(j->cert->name, "%s: ordering a certificate for %s%s", why,
				 j->cert->domains.v[0], j->cert->domains.n > 1 ? " and more" : "");
			job_schedule(j, now);
		}
		return;
	}
	if (j->st.deploy_pending) {
		log_info(j->cert->name, "the last new certificate was not deployed yet; deploying it");
		job_deploy(j);
	}
	/* A valid certificate: ARI decides when the CA offers it. */
	if (j->cert_id && j->st.ari_cert_id && strcmp(j->cert_id, j->st.ari_cert_id) == 0 &&
	    j->st.ari_next_check > now) {
		j->ari_next = j->st.ari_next_check;
		job_schedule_renewal(j, "certificate");
	} else if (j->cert_id) {
		job_ari_refresh(j);
	} else {
		job_schedule_renewal(j, "certificate");
	}
}

int sched_start(struct sched *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		slot_restore(s->slots[i]);
	for (size_t i = 0; i < s->njobs; i++)
		job_begin(s->jobs[i], 0);
	sched_check_idle(s);
	return 0;
}

static int strv_same_set(const struct config_strv *a, const struct config_strv *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		size_t k;
		for (k = 0; k < b->n && strcmp(a->v[i], b->v[k]) != 0; k++)
			;
		if (k == b->n)
			return 0;
	}
	return 1;
}

int sched_reconfigure(struct sched *s, const struct config *cfg, struct acme_ca **cas,
		      struct sched_diff *diff)
{
	size_t nca = cfg->ncas ? cfg->ncas : 1, ncert = cfg->ncerts ? cfg->ncerts : 1, i, k;
	struct ca_slot **slots = calloc(nca, sizeof(*slots));
	struct job **jobs = calloc(ncert, sizeof(*jobs));
	ssize_t *slot_from = calloc(nca, sizeof(*slot_from));   /* old slot index, or -1 */
	ssize_t *job_from = calloc(ncert, sizeof(*job_from));   /* old job index, or -1 */
	unsigned char *force = calloc(ncert, 1);
	unsigned char *old_kept = calloc(s->njobs ? s->njobs : 1, 1);
	int rc = -ENOMEM;

	memset(diff, 0, sizeof(*diff));
	if (!slots || !jobs || !slot_from || !job_from || !force || !old_kept)
		goto out;
	/* Pass 1: decide and allocate; nothing of the running state changes. */
	for (i = 0; i < cfg->ncas; i++) {
		slot_from[i] = -1;
		for (k = 0; k < s->nslots; k++)
			if (s->slots[k]->ca == cas[i])
				slot_from[i] = (ssize_t)k;
		if (slot_from[i] < 0 && !(slots[i] = slot_new(s, i, cas[i])))
			goto out;
	}
	for (i = 0; i < cfg->ncerts; i++) {
		const struct config_cert *nc = &cfg->certs[i];
		job_from[i] = -1;
		for (k = 0; k < s->njobs; k++) {
			const struct config_cert *oc = s->jobs[k]->cert;
			if (strcmp(oc->name, nc->name) != 0)
				continue;
			if (strv_same_set(&oc->domains, &nc->domains) && oc->key_type == nc->key_type &&
			    s->slots[oc->ca]->ca == cas[nc->ca] &&
			    strcmp(oc->output_dir, nc->output_dir) == 0) {
				job_from[i] = (ssize_t)k;
				old_kept[k] = 1;
			} else {
				force[i] = s->slots[oc->ca]->ca != cas[nc->ca];
				diff->changed++;
			}
			break;
		}
		if (k == s->njobs)
			diff->added++;
		if (job_from[i] < 0 && !(jobs[i] = job_new(s, nc)))
			goto out;
	}
	/* Pass 2: commit. Jobs that end go first, while the old slots are in place. */
	for (k = 0; k < s->njobs; k++) {
		if (old_kept[k])
			continue;
		if (!config_find_cert(cfg, s->jobs[k]->cert->name)) {
			diff->removed++;
			log_info(s->jobs[k]->cert->name, "removed from the configuration; its files stay");
		}
		job_free(s->jobs[k]);
		s->jobs[k] = NULL;
	}
	for (i = 0; i < cfg->ncas; i++) {
		if (slot_from[i] >= 0) {
			slots[i] = s->slots[slot_from[i]];
			s->slots[slot_from[i]] = NULL;
		} else {
			state_ca_load(cfg->state_dir, cfg->cas[i].name, &slots[i]->st);
		}
		slots[i]->index = i;
		slots[i]->max_parallel = cfg->cas[i].max_parallel > 0 ? cfg->cas[i].max_parallel : 4;
	}
	for (i = 0; i < cfg->ncerts; i++) {
		if (job_from[i] < 0)
			continue;
		struct job *j = jobs[i] = s->jobs[job_from[i]];
		int timing = j->cert->renew_before != cfg->certs[i].renew_before;
		s->jobs[job_from[i]] = NULL;
		j->cert = &cfg->certs[i];
		diff->kept++;
		if (timing && j->state == JOB_IDLE && j->has_cert) {
			evtimer_del(j->timer);
			job_schedule_renewal(j, "renew_before changed;");
		}
	}
	for (k = 0; k < s->nslots; k++)
		slot_free(s->slots[k]);
	free(s->jobs);
	free(s->slots);
	s->jobs = jobs;
	s->njobs = cfg->ncerts;
	s->slots = slots;
	s->nslots = cfg->ncas;
	s->cfg = cfg;
	jobs = NULL;
	slots = NULL;
	for (i = 0; i < cfg->ncerts; i++)
		if (job_from[i] < 0)
			job_begin(s->jobs[i], force[i]);
	for (i = 0; i < cfg->ncas; i++)
		ca_dispatch(s->slots[i]);
	sched_check_idle(s);
	rc = 0;
out:
	if (rc < 0) {
		for (i = 0; jobs && i < cfg->ncerts; i++)
			if (job_from && job_from[i] < 0)
				job_free(jobs[i]);
		for (i = 0; slots && i < cfg->ncas; i++)
			if (slot_from && slot_from[i] < 0)
				slot_free(slots[i]);
	}
	free(jobs);
	free(slots);
	free(slot_from);
	free(job_from);
	free(force);
	free(old_kept);
	return rc;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->jobs && i < s->njobs; i++)
		job_free(s->jobs[i]);
	for (size_t i = 0; s->slots && i < s->nslots; i++)
		slot_free(s->slots[i]);
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

/* ---------- what status shows, renew now ---------- */

const char *sched_phase_name(enum sched_phase p)
{
	switch (p) {
	case SCHED_VALID: return "valid";
	case SCHED_QUEUED: return "queued";
	case SCHED_ORDERING: return "ordering";
	case SCHED_BACKOFF: return "backoff";
	case SCHED_CA_DOWN: return "ca-down";
	case SCHED_DONE: return "done";
	case SCHED_FAILED: return "failed";
	}
	return "unknown";
}

size_t sched_job_count(const struct sched *s)
{
	return s->njobs;
}

int sched_job_info(const struct sched *s, size_t i, struct sched_job_info *out)
{
	const struct job *j;
	const struct ca_slot *slot;

	if (i >= s->njobs)
		return -ENOENT;
	j = s->jobs[i];
	slot = s->slots[j->cert->ca];
	memset(out, 0, sizeof(*out));
	out->cert = j->cert;
	out->not_before = j->not_before;
	out->not_after = j->not_after;
	out->state = &j->st;
	out->next_at = j->due;
	switch (j->state) {
	case JOB_RUNNING:
		out->phase = SCHED_ORDERING;
		break;
	case JOB_QUEUED:
		out->phase = slot->st.down_since ? SCHED_CA_DOWN : SCHED_QUEUED;
		out->next_at = slot->st.down_since ? slot->st.next_probe : now_s();
		break;
	case JOB_DONE:
		out->phase = j->failed ? SCHED_FAILED : SCHED_DONE;
		break;
	case JOB_IDLE:
	case JOB_ARI:
	default:
		out->phase = j->st.failures > 0 && j->st.next_attempt > now_s() ? SCHED_BACKOFF
									  : SCHED_VALID;
		break;
	}
	return 0;
}

int sched_ca_info(const struct sched *s, size_t i, struct sched_ca_info *out)
{
	const struct ca_slot *slot;

	if (i >= s->cfg->ncas)
		return -ENOENT;
	slot = s->slots[i];
	memset(out, 0, sizeof(*out));
	out->name = acme_ca_name(slot->ca);
	out->up = slot->st.down_since == 0;
	out->next_probe = slot->st.next_probe;
	out->waiting = slot->nqueued;
	out->running = (unsigned)slot->running;
	return 0;
}

int sched_renew_now(struct sched *s, const char *name, int force)
{
	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];

		if (strcmp(j->cert->name, name) != 0)
			continue;
		if (j->state == JOB_RUNNING || j->state == JOB_QUEUED)
			return 0;
		if (!force && j->has_cert && j->due > now_s() && j->st.failures == 0)
			return -EALREADY;       /* valid and not due: nothing to do */
		acme_call_cancel(j->ari_call);
		j->ari_call = NULL;
		evtimer_del(j->timer);
		j->st.next_attempt = 0;
		log_info(j->cert->name, "renewal requested%s", force ? " (forced)" : "");
		job_enqueue(j);
		return 0;
	}
	return -ENOENT;
}
