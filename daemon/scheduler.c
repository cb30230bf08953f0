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
#include "db.h"
#include "install.h"
#include "keygen.h"
#include "policy.h"
#include "scheduler_internal.h"
#include "store.h"
#include "timeparse.h"

/* The spread of one certificate: random across certificates, but the same for
 * the same certificate at every start, so a restart does not move it. */
/* A value of its own for each certificate (name) and issuance (not_after):
 * the same after a restart, and in `status` without the daemon. */
static uint64_t seed_of(const char *what, const char *name, int64_t not_after)
{
	char buf[200];
	unsigned char h[32];
	uint64_t v = 0;
	int n = snprintf(buf, sizeof(buf), "%s/%s/%lld", what, name, (long long)not_after);

	crypto_sha256(buf, n > 0 ? (size_t)n : 0, h);
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return v;
}

static uint64_t job_seed(const struct job *j, const char *what)
{
	return seed_of(what, j->cert->name, j->not_after);
}

int64_t sched_lifetime_renewal(const char *name, int64_t not_before, int64_t not_after,
			       int64_t renew_before)
{
	if (renew_before && !policy_renew_before_usable(not_before, not_after, renew_before))
		renew_before = 0;
	return policy_renewal_time(not_before, not_after, renew_before,
				   seed_of("spread", name, not_after));
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

void sched_job_give_up(struct job *j)
{
	sched_job_finish_run(j, 1);
}

void sched_job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	/* The timer was armed for the earlier of the ARI check and the due time
	 * (sched_job_schedule_at): which one this is shows without the wall
	 * clock, which may read a second less than the timer's (libevent's cached
	 * time, a slewed clock): an early ARI check must not become an order. */
	if (j->ari_next && j->has_cert && (j->ari_next <= j->due || j->ari_next <= clock_now())) {
		sched_job_ari_fetch(j);
		return;
	}
	if (j->kept || j->st.issued_kept) {
		j->state = JOB_INSTALLING;      /* an issued certificate waits to be installed */
		sched_keep_retry(j);
		return;
	}
	if (j->has_cert && j->ari_early) {
		j->st.ari_early_at = clock_now();     /* a young certificate replaced for ARI */
		free(j->st.ari_early_cert);
		j->st.ari_early_cert = j->cert_id ? strdup(j->cert_id) : NULL;
		sched_job_save(j);
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
				  "this run", timeparse_format(when, buf, sizeof(buf)));
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
	int64_t rb = job_renew_before(j), floor, again;
	char issued[32], last[32], until[32];

	j->ari_early = 0;
	if (!(j->cert_id && j->st.ari_cert_id && strcmp(j->cert_id, j->st.ari_cert_id) == 0 &&
	      j->st.ari_chosen && rb == 0))
		return policy_renewal_time(j->not_before, j->not_after, rb, job_seed(j, "spread"));
	floor = policy_reissue_floor(j->not_before, j->not_after);
	if (j->st.ari_chosen >= j->not_before + floor)
		return j->st.ari_chosen;
	/* The CA wants a young certificate replaced: once; if it asks the same
	 * of the replacement too, it waits for the floor (a CA that says "now"
	 * of every new certificate would otherwise be ordered from in a loop).
	 * The very certificate replaced last time, in use again (restored), may
	 * be replaced again. */
	again = j->st.ari_early_at + floor;
	if (j->st.ari_early_at && again > j->st.ari_chosen &&
	    !(j->st.ari_early_cert && strcmp(j->st.ari_early_cert, j->cert_id) == 0)) {
		if (!j->ari_early_said) {
			j->ari_early_said = 1;
			log_warn(j->cert->name, "the CA asks again (ARI) to replace a certificate issued "
				 "at %s; the last such replacement was at %s, so this one waits until %s",
				 timeparse_format(j->not_before, issued, sizeof(issued)),
				 timeparse_format(j->st.ari_early_at, last, sizeof(last)),
				 timeparse_format(again, until, sizeof(until)));
		}
		return again;
	}
	j->ari_early = 1;
	return j->st.ari_chosen;
}

/* msgid: the journal's MESSAGE_ID when this line says a certificate was issued. */
static void schedule_renewal(struct job *j, const char *why, const char *msgid)
{
	char when[32], until[32];
	int64_t next = job_renewal_time(j);

	if (next < j->st.next_attempt)
		next = j->st.next_attempt;
	log_event(LOG_LVL_INFO, j->cert->name, msgid, "%s valid until %s; renewal at %s%s", why,
		 timeparse_format(j->not_after, until, sizeof(until)), timeparse_format(next, when, sizeof(when)),
		 next == j->st.ari_chosen ? " (ARI)" : "");
	sched_job_schedule(j, next);
}

void sched_job_schedule_renewal(struct job *j, const char *why)
{
	schedule_renewal(j, why, NULL);
}

/* ---------- ARI ---------- */

/* The renewalInfo checks of this CA's idle jobs due before `before`: moved
 * by shift seconds, or dropped (shift 0: the lifetime rule's timer alone). */
static void slot_ari_move(struct ca_slot *slot, int64_t before, int64_t shift)
{
	struct sched *s = slot->s;

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];

		if (sched_job_issuer_slot(j) != slot || !j->ari_next || j->ari_next >= before ||
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
		slot_ari_unsupported(sched_job_issuer_slot(j));
		return;
	}
	if (r->err == ACME_ERR_UNAVAILABLE) {
		/* The CA is down: said once by the orders' probe, not per certificate. */
		log_debug(j->cert->name, "renewalInfo: %s; asking again in 6 h", r->err_text);
		j->ari_next = ari_next_check(now, -1, 1);
		sched_job_schedule_renewal(j, "certificate");
		slot_ari_postpone(sched_job_issuer_slot(j));
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
		log_info(j->cert->name, "ARI window %s .. %s%s%s", timeparse_format(w.start, a, sizeof(a)),
			 timeparse_format(w.end, b, sizeof(b)), w.explanation_url ? "; explanation: " : "",
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
	/* Asked of the CA that issued the certificate: its CertID means nothing to another. */
	j->ari_ca = sched_job_issuer_slot(j)->ca;
	j->ari_call = acme_client_get(j->ari_ca, "renewalInfo", j->cert_id, ari_done, j);
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

	if (!j->cert_id || acme_client_has_resource(sched_job_issuer_slot(j)->ca, "renewalInfo") == 0) {
		j->ari_next = 0;
		sched_job_schedule_renewal(j, "certificate");
		return;
	}
	/* run --once looks at everything now: it is a one-off, not a fleet's routine. */
	at = j->s->once ? clock_now() : slot_ari_time(sched_job_issuer_slot(j));
	log_debug(j->cert->name, "renewalInfo check scheduled for %lld", (long long)at);
	if (at <= clock_now()) {
		sched_job_ari_fetch(j);
		return;
	}
	j->ari_next = at;
	sched_job_schedule_renewal(j, "certificate");
}

/* ---------- orders ---------- */

const char *sched_job_directory(const struct job *j)
{
	return j->s->cfg->cas[config_cert_ca_at(j->cert, j->ca_at)].directory;
}

static void job_order_created(struct order *o, const char *url, void *arg)
{
	struct job *j = arg;

	if (j->st.order_url && strcmp(j->st.order_url, url) == 0)
		return;
	free(j->st.order_url);
	j->st.order_url = strdup(url);
	j->st.order_created = clock_now();
	j->st.order_key_type = j->key_type;
	free(j->st.order_directory);
	j->st.order_directory = strdup(sched_job_directory(j));
	free(j->st.order_ca);
	j->st.order_ca = strdup(sched_job_ca_name(j));
	for (size_t i = 0; i < j->st.order_domains.n; i++)
		free(j->st.order_domains.v[i]);
	free(j->st.order_domains.v);
	j->st.order_domains.v = calloc(j->cert->domains.n + 1, sizeof(char *));
	j->st.order_domains.n = 0;
	for (size_t i = 0; j->st.order_domains.v && i < j->cert->domains.n; i++)
		j->st.order_domains.v[j->st.order_domains.n++] = strdup(j->cert->domains.v[i]);
	sched_job_save(j);
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

/* Tell the subscribers how an order ended. */
static void job_emit_done(struct job *j, int ok, enum acme_err_class err, const char *message)
{
	struct sched_event ev = { .kind = SCHED_EV_ORDER_DONE, .cert = j->cert,
				  .ca = acme_client_name(sched_job_slot(j)->ca), .ok = ok,
				  .err = err, .message = message, .failures = j->st.failures,
				  .not_after = j->has_cert ? j->not_after : 0 };

	sched_emit(j->s, &ev);
	if (ok || (j->has_cert && j->not_after - clock_now() > SCHED_EXPIRING_WITHIN))
		return;
	ev.kind = SCHED_EV_EXPIRING;
	sched_emit(j->s, &ev);
}

static void job_success(struct job *j)
{
	struct sched *s = j->s;
	char until[32];
	/* A valid certificate was replaced, or the first one came. */
	const char *msgid = j->has_cert ? LOG_ID_RENEWED : LOG_ID_ISSUED;
	int ari = 0, renew_again = 0;

	if (job_check_installed(j) < 0)
		return;
	j->st.failures = 0;
	j->st.next_attempt = 0;
	free(j->st.last_error);
	j->st.last_error = NULL;
	free(j->st.last_error_class);
	j->st.last_error_class = NULL;
	j->st.last_success = clock_now();
	/* Which CA issued it: a later change of directory (staging to production)
	 * re-issues, on reload and restart alike. */
	free(j->st.issued_by);
	j->st.issued_by = strdup(j->st.order_directory ? j->st.order_directory :
				 sched_job_directory(j));
	j->issuer_at = j->ca_at;        /* its ARI is asked of that CA */
	if (!sched_revoked_replaced(j))
		renew_again = 1;        /* ordered with the key revoked meanwhile: once more */
	sched_job_forget_order(j);
	s->issued++;
	sched_job_save(j);
	job_emit_done(j, 1, ACME_ERR_NONE, NULL);
	j->ca_at = 0;                   /* the next renewal starts from the first CA of the list */
	sched_job_deploy(j);
	/* The daemon's ARI path logs the renewal time only once the CA's window is in
	 * ("certificate valid until ..."): say "issued" now, or with a CA offering ARI
	 * (Let's Encrypt, Pebble >= 2.6) the log never said it. */
	ari = j->cert_id && acme_client_has_resource(sched_job_issuer_slot(j)->ca, "renewalInfo") == 1;
	if (s->once || ari)
		log_event(LOG_LVL_INFO, j->cert->name, msgid, "certificate issued for %s, valid until %s",
			  j->cert->domains.v[0], timeparse_format(j->not_after, until, sizeof(until)));
	if (renew_again) {
		log_warn(j->cert->name, "the certificate just issued was ordered with the key revoked as "
			 "compromised; ordering a replacement with a new key now");
		sched_job_schedule_at(j, clock_now(), 1);
		return;
	}
	if (s->once) {
		sched_job_finish_run(j, 0);
		return;
	}
	if (ari)
		sched_job_ari_refresh(j);
	else
		schedule_renewal(j, "certificate issued,", msgid);
}

static void job_failure(struct job *j, const struct order_result *res)
{
	struct sched *s = j->s;
	char when[32], at_ca[72] = "";
	int64_t wait, next;

	if (sched_job_falls_back(j, res)) {
		job_emit_done(j, 0, res->err, res->message);
		sched_job_fall_back(j, res);
		sched_job_enqueue(j);
		return;
	}
	/* Every CA of the list failed it: the backoff, then the first again (once
	 * the failure is told as the CA's that answered it). */
	if (config_cert_nca(j->cert) > 1)
		snprintf(at_ca, sizeof(at_ca), "CA %.60s: ", sched_job_ca_name(j));
	j->st.failures++;
	wait = policy_backoff(res->err, j->st.failures, res->retry_after, crypto_random_u64());
	next = clock_now() + wait;
	j->st.next_attempt = next;
	free(j->st.last_error);
	j->st.last_error = strdup(res->message);
	free(j->st.last_error_class);
	j->st.last_error_class = strdup(acme_err_class_name(res->err));
	j->st.last_error_at = clock_now();
	if (res->err != ACME_ERR_RATELIMIT && !res->resumable)
		sched_job_forget_order(j);     /* that order is dead; a rate limit may pass */
	job_emit_done(j, 0, res->err, res->message);
	sched_job_ca_restart(j);
	sched_job_save(j);
	if (s->once && (res->err != ACME_ERR_RATELIMIT || next > s->deadline)) {
		log_event(LOG_LVL_ERROR, j->cert->name, LOG_ID_FAILED, "%s%s (%s); giving up for this run%s",
			  at_ca, res->message,
			  acme_err_class_name(res->err),
			  res->err == ACME_ERR_RATELIMIT ? ": the CA's Retry-After is past --timeout" : "");
		sched_job_finish_run(j, 1);
		return;
	}
	log_event(LOG_LVL_ERROR, j->cert->name, LOG_ID_FAILED, "%s%s (%s, failure %d); next attempt at %s",
		  at_ca, res->message,
		  acme_err_class_name(res->err), j->st.failures, timeparse_format(next, when, sizeof(when)));
	sched_job_schedule_at(j, next, 1);
}

/* The issued certificate is written (or not): s->install_done, from
 * scheduler_keep.c. A failed write keeps it and tries again on its own
 * schedule (1 min, 10 min, 100 min, daily): never a new order for it. */
void sched_job_install_done(struct job *j, int rc)
{
	char msg[512], when[32];
	struct order_result f = { .ok = 0, .err = ACME_ERR_LOCAL, .retry_after = -1, .message = msg };
	int64_t next;

	if (rc == 0) {
		sched_keep_forget(j);
		j->install_failures = 0;
		job_success(j);
		return;
	}
	if (rc == -ESTALE) {                    /* kept, but not worth installing any more */
		sched_job_schedule(j, clock_now());
		return;
	}
	snprintf(msg, sizeof(msg), "cannot install the certificate in %s: %s", j->cert->output_dir,
		 strerror(-rc));
	if (!j->kept) {
		job_failure(j, &f);             /* nothing left to install: order again, later */
		return;
	}
	j->install_failures++;
	next = clock_now() + policy_backoff(ACME_ERR_LOCAL, j->install_failures, -1, 0);
	j->st.failures++;
	j->st.next_attempt = next;
	free(j->st.last_error);
	j->st.last_error = strdup(msg);
	free(j->st.last_error_class);
	j->st.last_error_class = strdup(acme_err_class_name(ACME_ERR_LOCAL));
	j->st.last_error_at = clock_now();
	sched_job_forget_order(j);              /* the CA is done with it */
	sched_job_save(j);
	job_emit_done(j, 0, ACME_ERR_LOCAL, msg);
	if (j->s->once) {
		log_error(j->cert->name, "%s; the certificate is kept%s: the next run installs it (no new "
			  "order)", msg, j->st.issued_kept ? " in state_dir" : ", but only in memory");
		sched_job_finish_run(j, 1);
		return;
	}
	log_error(j->cert->name, "%s; the certificate is kept%s and installed again at %s (no new order "
		  "meanwhile)", msg, j->st.issued_kept ? " in state_dir" : " in memory",
		  timeparse_format(next, when, sizeof(when)));
	sched_job_schedule_at(j, next, 1);
}

static void job_order_done(struct order *o, const struct order_result *res, void *arg)
{
	struct job *j = arg;
	struct ca_slot *slot = sched_job_slot(j);
	int was_probe = slot->probe == j;

	/* res lives in o: free the order only once res is no longer needed. */
	j->order = NULL;
	slot->running--;
	if (was_probe)
		slot->probe = NULL;
	if (!res->ok && res->err == ACME_ERR_UNAVAILABLE) {
		/* The CA, not this certificate: park the job (the CA is probed), or
		 * on to the next CA of its list, with those parked here. */
		int moves = sched_job_falls_back(j, res);

		job_emit_done(j, 0, res->err, res->message);
		if (moves)
			sched_job_fall_back(j, res);
		else
			sched_ca_park(slot, j);
		sched_ca_reroute(slot);
		if (slot->st.down_since == 0 || was_probe)
			sched_ca_mark_down(slot, res->retry_after, res->message);
		else
			log_debug(j->cert->name, "parked while CA %s is unavailable: %s",
				  acme_client_name(slot->ca), res->message);
		if (moves)
			sched_job_enqueue(j);
		order_free(o);
		return;
	}
	sched_ca_mark_up(slot);          /* the CA answered */
	if (res->ok) {
		j->state = JOB_INSTALLING;
		sched_keep_start(j, res);       /* kept, then installed off the loop */
	}
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
	struct ca_slot *slot = sched_job_slot(j);
	struct order_params p;

	memset(&p, 0, sizeof(p));
	p.cert = j->cert;
	p.created = job_order_created;
	p.key = key;
	p.resume_url = resume_url;
	p.pick = sched_job_pick;
	p.pick_arg = j;
	/* "replaces" (RFC 9773 5) when the CA that issued the certificate in use (not
	 * another of `ca: [a, b]`) offers ARI: as its directory says, or,
	 * before that is loaded (the first order after a start, due on a window kept
	 * in state_dir), as the window it gave for this very certificate shows. */
	if (!resume_url && j->has_cert && j->cert_id && slot == sched_job_issuer_slot(j) &&
	    (acme_client_has_resource(slot->ca, "renewalInfo") == 1 ||
	     (acme_client_has_resource(slot->ca, "renewalInfo") < 0 && j->st.ari_cert_id &&
	      strcmp(j->st.ari_cert_id, j->cert_id) == 0)))
		p.replaces = j->cert_id;
	j->order = order_start(slot->s->base, slot->ca, &p, job_order_done, j);
	if (!j->order)
		job_start_failed(j, "cannot start an order");
}

/* The new key is on stable storage: only now may the CA see an order for it. */
static void job_key_kept(void *arg, int rc)
{
	struct job *j = arg;
	struct crypto_key *key = j->new_key;

	j->db_req = NULL;
	j->new_key = NULL;
	if (rc < 0) {
		crypto_key_free(key);
		job_start_failed(j, "cannot keep the new private key in state_dir");
		return;
	}
	job_launch(j, key, NULL);
}

/* A fresh key for a new order: kept beside the state first, so an order
 * resumed after a restart finalizes with the key it was created for. */
void sched_job_key_ready(struct crypto_key *key, void *arg)
{
	struct job *j = arg;
	char *pem = NULL;
	size_t len = 0;

	j->keygen_req = NULL;
	if (!key) {
		job_start_failed(j, "private key generation failed");
		return;
	}
	if (crypto_key_to_pem(key, &pem, &len) == 0) {
		j->new_key = key;
		j->db_req = db_put(j->s->db, DB_ORDER_KEY, j->cert->name, pem, len,
				   DB_DURABLE | DB_SECRET, job_key_kept, j);
	}
	crypto_free_secret(pem, len);
	if (!j->db_req) {
		j->new_key = NULL;
		crypto_key_free(key);
		job_start_failed(j, "cannot keep the new private key in state_dir");
	}
}

static void job_new_key(struct job *j);

/* The key of the order in flight, read back: resume with it, or start afresh. */
static void job_key_loaded(void *arg, int rc, const char *pem, size_t len)
{
	struct job *j = arg;
	struct crypto_key *key = NULL;

	j->db_req = NULL;
	if (rc == 0 && crypto_key_from_pem(pem, len, &key) == 0) {
		job_launch(j, key, j->st.order_url);
		return;
	}
	log_info(j->cert->name, "the key of order %s is %s; ordering afresh", j->st.order_url,
		 rc == -ENOENT ? "gone" : "unusable");
	sched_job_forget_order(j);
	sched_job_save(j);
	job_new_key(j);
}

static int key_type_slow(enum key_type kt)
{
	return kt == KEY_RSA_2048 || kt == KEY_RSA_3072 || kt == KEY_RSA_4096;
}

/* The slot gave this job its turn (sched->start). */
void sched_job_start(struct ca_slot *slot, struct job *j)
{
	struct sched *s = slot->s;

	slot->running++;
	j->state = JOB_RUNNING;
	if (j->st.order_url) {
		/* Resumed only for the same names and key type, with its own key. */
		int same = j->st.order_key_type == j->key_type &&
			   names_same_set((const char *const *)j->st.order_domains.v,
					  j->st.order_domains.n,
					  (const char *const *)j->cert->domains.v, j->cert->domains.n);
		if (same) {
			j->db_req = db_get(s->db, DB_ORDER_KEY, j->cert->name, job_key_loaded, j);
			if (j->db_req)
				return;
		}
		sched_job_forget_order(j);
		sched_job_save(j);
	}
	job_new_key(j);
}

static void job_new_key(struct job *j)
{
	if (!sched_reuse_start(j))      /* key_reuse: the key in use, read off the loop */
		sched_job_fresh_key(j);
}

void sched_job_fresh_key(struct job *j)
{
	struct sched *s = j->s;
	struct crypto_key *key;

	/* RSA keys take up to seconds: made on the worker thread, not on the loop. */
	if (key_type_slow(j->key_type) && s->keygen) {
		j->keygen_req = keygen_request(s->keygen, j->key_type, sched_job_key_ready, j);
		if (!j->keygen_req)
			job_start_failed(j, "cannot queue the private key generation");
		return;
	}
	key = NULL;
	crypto_key_generate(j->key_type, &key);
	sched_job_key_ready(key, j);
}

