/* scheduler.c - one timer per certificate: when to renew (ARI or lifetime), backoff, per-CA outages and slots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "clock.h"
#include "ari.h"
#include "crypto.h"
#include "log.h"
#include "keygen.h"
#include "policy.h"
#include "scheduler_internal.h"
#include "store.h"
#include "timeparse.h"

void sched_ca_dispatch(struct ca_slot *slot);
void sched_job_ari_refresh(struct job *j);
void sched_job_ari_fetch(struct job *j);

const char *sched_fmt_time(int64_t t, char *buf, unsigned len)
{
	return timeparse_format(t, buf, len);
}

/* ---------- persistent state ---------- */

void sched_job_save(struct job *j)
{
	state_job_save(j->s->cfg->state_dir, j->cert->name, &j->st);
}

void sched_job_forget_order(struct job *j)
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

static void ca_save(struct ca_slot *slot, int durable)
{
	state_ca_save(slot->s->cfg->state_dir, slot->ca ? acme_ca_name(slot->ca) :
		      slot->s->cfg->cas[slot->index].name, &slot->st, durable);
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

/* ---------- jobs ---------- */

void sched_check_idle(struct sched *s)
{
	struct timeval zero = { 0, 0 };

	if (!s->once)
		return;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i]->state != JOB_DONE)
			return;
	evtimer_add(s->idle_ev, &zero);
}

void sched_job_finish_run(struct job *j, int failed)
{
	if (failed && !j->failed) {
		j->failed = 1;
		j->s->failed++;
	}
	j->state = JOB_DONE;
	sched_check_idle(j->s);
}

void sched_job_enqueue(struct job *j)
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
	sched_ca_dispatch(slot);
}

void sched_job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	if (j->ari_next && j->ari_next <= clock_now() && j->has_cert) {
		sched_job_ari_fetch(j);
		return;
	}
	sched_job_enqueue(j);
}

/* Arm the job's one timer for the earlier of its due time and its ARI check.
 * urgent: the certificate is needed now and `when` is only a backoff; in
 * --once mode that is waited for (within --timeout), a future renewal is not. */
void sched_job_schedule_at(struct job *j, int64_t when, int urgent)
{
	struct sched *s = j->s;
	int64_t at = when, delay;
	struct timeval tv;
	char buf[32];

	j->due = when;
	if (s->once && when > clock_now()) {
		if (!urgent) {
			sched_job_finish_run(j, 0);
			return;
		}
		if (when > s->deadline) {
			log_error(j->cert->name, "next attempt at %s is after --timeout; giving up for "
				  "this run", sched_fmt_time(when, buf, sizeof(buf)));
			sched_job_finish_run(j, 1);
			return;
		}
	}
	if (j->ari_next && j->ari_next < at && j->has_cert)
		at = j->ari_next;
	delay = at - clock_now();
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = 0;
	j->state = JOB_IDLE;
	evtimer_add(j->timer, &tv);
}

void sched_job_schedule(struct job *j, int64_t when)
{
	sched_job_schedule_at(j, when, 0);
}

/* renew_before, unless it would renew this very certificate (almost) at
 * once: then 0 (the default rule), said once per certificate and config. */
static int64_t job_renew_before(struct job *j)
{
	int64_t rb = j->cert->renew_before;
	char a[16], b[16], c[16];

	if (rb == 0 || policy_renew_before_usable(j->not_before, j->not_after, rb))
		return rb;
	if (!j->renew_before_warned) {
		j->renew_before_warned = 1;
		log_warn(j->cert->name, "renew_before %s would renew each new certificate at once "
			 "(it lives %s, and acmed replaces none younger than %s); ignoring it: "
			 "renewal when %s of the lifetime is left", timeparse_format_duration(rb, a, sizeof(a)),
			 timeparse_format_duration(j->not_after - j->not_before, b, sizeof(b)),
			 timeparse_format_duration(policy_reissue_floor(j->not_before, j->not_after), c, sizeof(c)),
			 j->not_after - j->not_before < 10 * DAY ? "1/2" : "1/3");
	}
	return 0;
}

/* The renewal time of a certificate in use: ARI's choice when the CA gave a
 * window for this very certificate, else the lifetime rule, which never
 * renews before the re-issue floor (policy.h). ARI may: a CA asking for a
 * replacement at once (a revocation coming) is obeyed; the ceiling on new
 * orders bounds a CA that asks it of every new certificate. */
static int64_t job_renewal_time(struct job *j)
{
	int64_t rb = job_renew_before(j);

	if (j->cert_id && j->st.ari_cert_id && strcmp(j->cert_id, j->st.ari_cert_id) == 0 &&
	    j->st.ari_chosen && rb == 0)
		return j->st.ari_chosen;
	return policy_renewal_time(j->not_before, j->not_after, rb, job_seed(j, "spread"));
}

void sched_job_schedule_renewal(struct job *j, const char *why)
{
	char when[32], until[32];
	int64_t next = job_renewal_time(j);

	if (next < j->st.next_attempt)
		next = j->st.next_attempt;
	log_info(j->cert->name, "%s valid until %s; renewal at %s%s", why,
		 sched_fmt_time(j->not_after, until, sizeof(until)), sched_fmt_time(next, when, sizeof(when)),
		 next == j->st.ari_chosen ? " (ARI)" : "");
	sched_job_schedule(j, next);
}

/* ---------- ARI ---------- */

/* The renewalInfo checks of this CA's idle jobs due before `before`: moved
 * by shift seconds, or dropped (shift 0: the lifetime rule's timer alone). */
static void slot_ari_move(struct ca_slot *slot, int64_t before, int64_t shift)
{
	struct sched *s = slot->s;

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];

		if (s->slots[j->cert->ca] != slot || !j->ari_next || j->ari_next >= before ||
		    j->state != JOB_IDLE)
			continue;
		j->ari_next = shift ? j->ari_next + shift : 0;
		if (evtimer_pending(j->timer, NULL))
			sched_job_schedule_at(j, j->due, 0);
	}
	slot->ari_sec = 0;
	slot->ari_in_sec = 0;
}

/* The CA's directory has no renewalInfo: the checks spread over the next
 * minutes (slot_ari_time) are dropped at once rather than waking up 10 times
 * a second for nothing. */
static void slot_ari_unsupported(struct ca_slot *slot)
{
	slot_ari_move(slot, INT64_MAX, 0);
}

/* The CA did not answer a renewalInfo request: the checks due within the
 * hour wait 6 h more (keeping their spread) instead of each knocking at a CA
 * that is down; the orders' probe deals with the outage. */
static void slot_ari_postpone(struct ca_slot *slot)
{
	slot_ari_move(slot, clock_now() + 3600, ARI_POLL_DEFAULT_S);
}

static void ari_done(const struct acme_reply *r, void *arg)
{
	struct job *j = arg;
	struct ari_window w = {0};
	char a[32], b[32];
	int64_t now = clock_now();

	j->ari_call = NULL;
	if (r->missing_resource) {
		j->ari_next = 0;            /* the CA has no ARI: the lifetime rule */
		sched_job_schedule_renewal(j, "certificate");
		slot_ari_unsupported(j->s->slots[j->cert->ca]);
		return;
	}
	if (r->err == ACME_ERR_UNAVAILABLE) {
		/* The CA is down: said once by the orders' probe, not per certificate. */
		log_debug(j->cert->name, "renewalInfo: %s; asking again in 6 h", r->err_text);
		j->ari_next = ari_next_check(now, -1, 1);
		sched_job_schedule_renewal(j, "certificate");
		slot_ari_postpone(j->s->slots[j->cert->ca]);
		return;
	}
	if (r->err != ACME_ERR_NONE || ari_parse(r->body, r->body_len, &w) < 0) {
		log_warn(j->cert->name, "renewalInfo: %s; asking again in 6 h",
			 r->err != ACME_ERR_NONE ? r->err_text : "not a valid renewal window");
		j->ari_next = ari_next_check(now, -1, 1);
		j->st.ari_next_check = j->ari_next;
		sched_job_save(j);
		sched_job_schedule_renewal(j, "certificate");
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
		log_info(j->cert->name, "ARI window %s .. %s%s%s", sched_fmt_time(w.start, a, sizeof(a)),
			 sched_fmt_time(w.end, b, sizeof(b)), w.explanation_url ? "; explanation: " : "",
			 w.explanation_url ? w.explanation_url : "");
	}
	j->ari_next = ari_next_check(now, r->retry_after, 0);
	j->st.ari_next_check = j->ari_next;
	sched_job_save(j);
	ari_window_clear(&w);
	sched_job_schedule_renewal(j, "certificate");
}

void sched_job_ari_fetch(struct job *j)
{
	j->state = JOB_ARI;
	j->ari_call = acme_get(j->s->slots[j->cert->ca]->ca, "renewalInfo", j->cert_id, ari_done, j);
	if (!j->ari_call) {
		j->ari_next = 0;
		sched_job_schedule_renewal(j, "certificate");
	}
}

/* The next free instant for a renewalInfo request to this CA: at most
 * SCHED_ARI_RATE a second, so 10 000 certificates checked at start-up reach
 * the CA spread over minutes, and stay spread at every later refresh. */
static int64_t slot_ari_time(struct ca_slot *slot)
{
	int64_t now = clock_now();

	if (slot->ari_sec < now) {
		slot->ari_sec = now;
		slot->ari_in_sec = 0;
	}
	if (slot->ari_in_sec >= SCHED_ARI_RATE) {
		slot->ari_sec++;
		slot->ari_in_sec = 0;
	}
	slot->ari_in_sec++;
	return slot->ari_sec;
}

void sched_job_ari_refresh(struct job *j)
{
	int64_t at;

	if (!j->cert_id || acme_ca_lacks_resource(j->s->slots[j->cert->ca]->ca, "renewalInfo")) {
		j->ari_next = 0;
		sched_job_schedule_renewal(j, "certificate");
		return;
	}
	/* run --once looks at everything now: it is a one-off, not a fleet's routine. */
	at = j->s->once ? clock_now() : slot_ari_time(j->s->slots[j->cert->ca]);
	log_debug(j->cert->name, "renewalInfo check scheduled for %lld", (long long)at);
	if (at <= clock_now()) {
		sched_job_ari_fetch(j);
		return;
	}
	j->ari_next = at;
	sched_job_schedule_renewal(j, "certificate");
}

/* ---------- per-CA outages ---------- */

void sched_slot_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ca_slot *slot = arg;

	sched_ca_dispatch(slot);
}

static void slot_give_up_parked(struct ca_slot *slot, const char *why)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&slot->queue))) {
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		sched_job_finish_run(j, 1);
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
		slot->st.down_since = clock_now();
		slot->st.probe_failures = 0;
	}
	slot->st.probe_failures++;
	wait = policy_probe_delay(clock_now() - slot->st.down_since, res->retry_after,
				 crypto_random_u64());
	slot->st.next_probe = clock_now() + wait;
	free(slot->st.last_error);
	slot->st.last_error = strdup(res->message);
	ca_save(slot, 1);
	if (was_up)
		log_error(NULL, "CA %s unavailable (%s); %u certificate%s waiting; next probe at %s",
			  acme_ca_name(slot->ca), res->message, slot->nqueued + slot->running,
			  slot->nqueued + slot->running == 1 ? "" : "s",
			  sched_fmt_time(slot->st.next_probe, when, sizeof(when)));
	else
		log_info(NULL, "CA %s still unavailable (%s); %u waiting; next probe at %s",
			 acme_ca_name(slot->ca), res->message, slot->nqueued + slot->running,
			 sched_fmt_time(slot->st.next_probe, when, sizeof(when)));
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
	state_ca_up(&slot->st);
	ca_save(slot, 1);
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
	j->st.order_created = clock_now();
	j->st.order_key_type = j->cert->key_type;
	for (size_t i = 0; i < j->st.order_domains.n; i++)
		free(j->st.order_domains.v[i]);
	free(j->st.order_domains.v);
	j->st.order_domains.v = calloc(j->cert->domains.n + 1, sizeof(char *));
	j->st.order_domains.n = 0;
	for (size_t i = 0; j->st.order_domains.v && i < j->cert->domains.n; i++)
		j->st.order_domains.v[j->st.order_domains.n++] = strdup(j->cert->domains.v[i]);
	sched_job_save(j);
}

/* Hand a freshly installed certificate to the deployer (reload units, exec). */
void sched_job_deploy(struct job *j)
{
	struct sched *s = j->s;

	if (!s->installed_cb || (j->cert->reload.n == 0 && j->cert->exec.n == 0)) {
		if (j->st.deploy_pending) {
			j->st.deploy_pending = 0;
			sched_job_save(j);
		}
		return;
	}
	if (!j->st.deploy_pending) {
		j->st.deploy_pending = 1;
		sched_job_save(j);
	}
	j->deploying = 1;
	s->installed_cb(j->cert, s->installed_arg);
}

void sched_job_deploy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_job_deploy(arg);
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
			sched_job_save(j);
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
			  error ? error : "?", sched_fmt_time(clock_now() + wait, when, sizeof(when)));
		tv.tv_sec = (time_t)wait;
		tv.tv_usec = 0;
		evtimer_add(j->deploy_timer, &tv);
		return;
	}
}

void sched_set_listener_cb(struct sched *s, sched_listener_fn cb, void *arg)
{
	s->listener_cb = cb;
	s->listener_arg = arg;
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

static void job_failure(struct job *j, const struct order_result *res);

/* The certificate just installed does not pass the inspection that decides
 * whether to order (it cannot be read back, its key type is unknown...):
 * ordering again would give the same, so it is this certificate's failure
 * and backs off like one, instead of being re-ordered at once. */
static int job_check_installed(struct job *j)
{
	const char *why = sched_job_inspect(j);
	char msg[512];
	struct order_result f = { .ok = 0, .err = ACME_ERR_CERT, .retry_after = -1, .message = msg };

	if (!why)
		return 0;
	snprintf(msg, sizeof(msg), "the certificate just installed in %s is not usable: %s",
		 j->cert->output_dir, why);
	j->s->issued++;
	sched_job_forget_order(j);
	sched_job_deploy(j);                   /* its files did change */
	job_failure(j, &f);
	return -1;
}

static void job_success(struct job *j, const struct order_result *res)
{
	struct sched *s = j->s;

	if (job_check_installed(j) < 0)
		return;
	j->st.failures = 0;
	j->st.next_attempt = 0;
	free(j->st.last_error);
	j->st.last_error = NULL;
	free(j->st.last_error_class);
	j->st.last_error_class = NULL;
	j->st.last_success = clock_now();
	sched_job_forget_order(j);
	s->issued++;
	sched_job_save(j);
	sched_job_deploy(j);
	if (s->once) {
		char until[32];
		log_info(j->cert->name, "certificate issued for %s, valid until %s",
			 j->cert->domains.v[0], sched_fmt_time(j->not_after, until, sizeof(until)));
		sched_job_finish_run(j, 0);
		return;
	}
	if (j->cert_id && acme_ca_has_resource(s->slots[j->cert->ca]->ca, "renewalInfo"))
		sched_job_ari_refresh(j);
	else
		sched_job_schedule_renewal(j, "certificate issued,");
}

static void job_failure(struct job *j, const struct order_result *res)
{
	struct sched *s = j->s;
	char when[32];
	int64_t wait, next;

	j->st.failures++;
	wait = policy_backoff(res->err, j->st.failures, res->retry_after, crypto_random_u64());
	next = clock_now() + wait;
	j->st.next_attempt = next;
	free(j->st.last_error);
	j->st.last_error = strdup(res->message);
	free(j->st.last_error_class);
	j->st.last_error_class = strdup(acme_err_class_name(res->err));
	j->st.last_error_at = clock_now();
	if (res->err != ACME_ERR_RATELIMIT)
		sched_job_forget_order(j);     /* that order is dead; a rate limit may pass */
	sched_job_save(j);
	if (s->once && (res->err != ACME_ERR_RATELIMIT || next > s->deadline)) {
		log_error(j->cert->name, "%s (%s); giving up for this run%s", res->message,
			  acme_err_class_name(res->err),
			  res->err == ACME_ERR_RATELIMIT ? ": the CA's Retry-After is past --timeout" : "");
		sched_job_finish_run(j, 1);
		return;
	}
	log_error(j->cert->name, "%s (%s, failure %d); next attempt at %s", res->message,
		  acme_err_class_name(res->err), j->st.failures, sched_fmt_time(next, when, sizeof(when)));
	sched_job_schedule_at(j, next, 1);
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
	sched_ca_dispatch(slot);
}

static void job_start_failed(struct job *j, const char *why)
{
	struct order_result res = { .ok = 0, .err = ACME_ERR_LOCAL, .retry_after = -1, .message = why };

	job_order_done(NULL, &res, j);
}

/* Start the order with its key (taken over); resume_url: the order in flight. */
static void job_launch(struct job *j, struct crypto_key *key, const char *resume_url)
{
	struct ca_slot *slot = j->s->slots[j->cert->ca];
	struct order_params p;

	memset(&p, 0, sizeof(p));
	p.cert = j->cert;
	p.created = job_order_created;
	p.key = key;
	p.resume_url = resume_url;
	if (!resume_url && j->has_cert && j->cert_id && acme_ca_has_resource(slot->ca, "renewalInfo"))
		p.replaces = j->cert_id;
	j->order = order_start(slot->s->base, slot->ca, slot->s->http01, &p, job_order_done, j);
	if (!j->order)
		job_start_failed(j, "cannot start an order");
}

/* A fresh key for a new order: kept beside the state first, so an order
 * resumed after a restart finalizes with the key it was created for. */
static void job_key_ready(struct crypto_key *key, void *arg)
{
	struct job *j = arg;
	char *pem = NULL;
	size_t len = 0;

	j->keygen_req = NULL;
	if (!key) {
		job_start_failed(j, "private key generation failed");
		return;
	}
	if (crypto_key_to_pem(key, &pem, &len) < 0 ||
	    state_order_key_save(j->s->cfg->state_dir, j->cert->name, pem, len) < 0) {
		crypto_free_secret(pem, len);
		crypto_key_free(key);
		job_start_failed(j, "cannot keep the new private key in state_dir");
		return;
	}
	crypto_free_secret(pem, len);
	job_launch(j, key, NULL);
}

/* The saved key when an order is in flight for the same names and key type. */
static struct crypto_key *job_resumable_key(struct job *j)
{
	const struct config_cert *c = j->cert;
	struct crypto_key *key = NULL;
	char *pem = NULL;
	size_t len = 0;
	int same = j->st.order_key_type == c->key_type &&
		   names_same_set((const char *const *)j->st.order_domains.v, j->st.order_domains.n,
				  (const char *const *)c->domains.v, c->domains.n);

	if (same && state_order_key_load(j->s->cfg->state_dir, c->name, &pem, &len) == 0 &&
	    crypto_key_from_pem(pem, len, &key) < 0)
		key = NULL;
	crypto_free_secret(pem, len);
	return key;
}

static int key_type_slow(enum key_type kt)
{
	return kt == KEY_RSA_2048 || kt == KEY_RSA_3072 || kt == KEY_RSA_4096;
}

static void job_start(struct ca_slot *slot, struct job *j)
{
	struct sched *s = slot->s;
	struct crypto_key *key;

	slot->running++;
	j->state = JOB_RUNNING;
	if (!s->http01 && s->listener_cb)
		s->http01 = s->listener_cb(s->listener_arg);
	if (!s->http01) {
		job_start_failed(j, "no http-01 listener");
		return;
	}
	if (j->st.order_url) {
		key = job_resumable_key(j);
		if (key) {
			job_launch(j, key, j->st.order_url);
			return;
		}
		sched_job_forget_order(j);
		sched_job_save(j);
	}
	/* RSA keys take up to seconds: made on the worker thread, not on the loop. */
	if (key_type_slow(j->cert->key_type) && s->keygen) {
		j->keygen_req = keygen_request(s->keygen, j->cert->key_type, job_key_ready, j);
		if (!j->keygen_req)
			job_start_failed(j, "cannot queue the private key generation");
		return;
	}
	key = NULL;
	crypto_key_generate(j->cert->key_type, &key);
	job_key_ready(key, j);
}

/* ---------- the ceiling on new orders (policy.h) ---------- */

void sched_slot_ceiling_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_ca_dispatch(arg);
}

static int slot_orders_limit(const struct ca_slot *slot)
{
	return slot->s->cfg->cas[slot->index].orders_per_hour;
}

/* The first queued job that resumes an order (no new order needed). */
static struct job *slot_first_resume(struct ca_slot *slot)
{
	struct job *j;

	TAILQ_FOREACH(j, &slot->queue, qlink)
		if (j->st.order_url)
			return j;
	return NULL;
}

/* 1 when no new order may start now: the queued jobs that need one wait
 * (said once per episode), and a timer dispatches again when one may. */
static int slot_at_ceiling(struct ca_slot *slot)
{
	struct sched *s = slot->s;
	int64_t now = clock_now(), at = policy_orders_next_free(&slot->st.orders, now,
								 slot_orders_limit(slot));
	struct timeval tv = { 0, 0 };
	char when[32];

	slot->ceiling_until = at;
	if (!at) {
		slot->ceiling_said = 0;
		return 0;
	}
	if (!slot->ceiling_said) {
		slot->ceiling_said = 1;
		log_warn(NULL, "CA %s: %zu new orders in the last hour, the ceiling (orders_per_hour: %d); "
			 "%u certificate%s wait%s; next new order at %s", acme_ca_name(slot->ca),
			 slot->st.orders.n, slot_orders_limit(slot), slot->nqueued,
			 slot->nqueued == 1 ? "" : "s", slot->nqueued == 1 ? "s" : "",
			 sched_fmt_time(at, when, sizeof(when)));
	}
	if (s->once && at > s->deadline) {
		struct job *j, *next;
		for (j = TAILQ_FIRST(&slot->queue); j; j = next) {
			next = TAILQ_NEXT(j, qlink);
			if (j->st.order_url)
				continue;
			TAILQ_REMOVE(&slot->queue, j, qlink);
			slot->nqueued--;
			log_error(j->cert->name, "not ordered: CA %s reached its ceiling of %d new orders "
				  "an hour, and the next one may start only after --timeout; giving up "
				  "for this run", acme_ca_name(slot->ca), slot_orders_limit(slot));
			sched_job_finish_run(j, 1);
		}
		return 1;
	}
	tv.tv_sec = (time_t)(at - now);
	evtimer_add(slot->ceiling_timer, &tv);
	return 1;
}

/* A new order is about to start: counted (and kept in state_dir) for the ceiling. */
static void slot_count_order(struct ca_slot *slot)
{
	if (policy_orders_add(&slot->st.orders, clock_now()) == 0)
		ca_save(slot, 0);
}

void sched_ca_dispatch(struct ca_slot *slot)
{
	struct job *j;

	if (slot->st.down_since) {
		/* One probe at a time, when its time has come. */
		if (slot->probe || slot->st.next_probe > clock_now() || !(j = TAILQ_FIRST(&slot->queue)))
			return;
		if (!j->st.order_url && slot_at_ceiling(slot) && !(j = slot_first_resume(slot)))
			return;
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		if (!j->st.order_url)
			slot_count_order(slot);
		slot->probe = j;
		log_info(j->cert->name, "probing CA %s", acme_ca_name(slot->ca));
		job_start(slot, j);
		return;
	}
	while (slot->running < slot->max_parallel && (j = TAILQ_FIRST(&slot->queue))) {
		if (!j->st.order_url && slot_at_ceiling(slot) && !(j = slot_first_resume(slot)))
			return;
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		if (!j->st.order_url)
			slot_count_order(slot);
		job_start(slot, j);
		if (slot->st.down_since)
			return;
	}
}

