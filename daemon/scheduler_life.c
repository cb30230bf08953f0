/* scheduler_life.c - the scheduler's life cycle: start, reload (reconfigure), status, renew now. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "challenge_webroot.h"
#include "clock.h"
#include "ari.h"
#include "crypto.h"
#include "log.h"
#include "db.h"
#include "db_file.h"
#include "install.h"
#include "keygen.h"
#include "policy.h"
#include "scheduler_internal.h"
#include "worker.h"
#include "store.h"
#include "timeparse.h"

/* ---------- life cycle ---------- */

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	s->idle_cb(s, s->idle_arg);
}

static void slot_free(struct ca_slot *slot);

static struct ca_slot *slot_new(struct sched *s, size_t index, struct acme_client *ca)
{
	struct ca_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return NULL;
	slot->s = s;
	slot->index = index;
	slot->ca = ca;
	TAILQ_INIT(&slot->queue);
	slot->probe_timer = evtimer_new(s->base, sched_slot_probe_cb, slot);
	slot->ceiling_timer = evtimer_new(s->base, sched_slot_ceiling_cb, slot);
	if (!slot->probe_timer || !slot->ceiling_timer) {
		slot_free(slot);
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
	if (slot->ceiling_timer)
		event_free(slot->ceiling_timer);
	db_cancel(slot->s->db, slot->db_req);
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
	j->key_type = cert->key_type;
	if (cert->webroot && !(j->webroot = challenge_webroot_new(s->io, cert->webroot))) {
		free(j);
		return NULL;
	}
	j->timer = evtimer_new(s->base, sched_job_timer_cb, j);
	j->deploy_timer = evtimer_new(s->base, sched_job_deploy_timer_cb, j);
	if (!j->timer || !j->deploy_timer) {
		if (j->timer)
			event_free(j->timer);
		if (j->deploy_timer)
			event_free(j->deploy_timer);
		challenge_free(j->webroot);
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
	sched_revoke_cancel(j);
	if (j->state == JOB_QUEUED) {
		slot = sched_job_slot(j);
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
	}
	if (j->order || j->keygen_req || j->reuse_job || (j->state == JOB_RUNNING && j->db_req)) {
		slot = sched_job_slot(j);
		keygen_cancel(j->keygen_req);
		j->keygen_req = NULL;
		worker_cancel(j->reuse_job);
		j->reuse_job = NULL;
		if (j->order)
			order_free(j->order);
		slot->running--;
		if (slot->probe == j)
			slot->probe = NULL;
	}
	if (j->ari_call)
		acme_client_cancel(j->ari_ca, j->ari_call);
	challenge_free(j->webroot);     /* after the order: it removed its token files */
	install_cancel(j->install);
	sched_keep_clear(j);
	db_cancel(j->s->db, j->db_req);
	crypto_key_free(j->new_key);
	if (j->begin_queued)
		TAILQ_REMOVE(&j->s->begin, j, blink);
	if (j->state == JOB_LOADING)
		j->s->loading--;
	if (j->timer)
		event_free(j->timer);
	if (j->deploy_timer)
		event_free(j->deploy_timer);
	state_job_clear(&j->st);
	state_live_clear(&j->live);
	free(j->cert_id);
	free(j);
}

struct sched *sched_new(struct event_base *base, const struct config *cfg,
			struct acme_client **cas, struct db *db, int once, int64_t deadline,
			sched_idle_fn idle_cb_fn, void *arg)
{
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->cfg = cfg;
	s->once = once;
	s->deadline = deadline;
	s->idle_cb = idle_cb_fn;
	s->idle_arg = arg;
	s->slots = calloc(cfg->ncas ? cfg->ncas : 1, sizeof(*s->slots));
	s->jobs = calloc(cfg->ncerts ? cfg->ncerts : 1, sizeof(*s->jobs));
	s->idle_ev = evtimer_new(base, idle_cb, s);
	s->live_flush_ev = evtimer_new(base, sched_live_flush_cb, s);
	TAILQ_INIT(&s->begin);
	s->begin_ev = evtimer_new(base, sched_begin_cb, s);
	s->start = sched_job_start;
	s->give_up = sched_job_give_up;
	s->install_done = sched_job_install_done;
	s->keygen = keygen_new(base);
	s->io = worker_new(base, "acmed-io");
	s->db = db;
	if (!db && s->io) {
		s->db = s->own_db = db_file_new(cfg->state_dir, s->io);
	}
	if (!s->slots || !s->jobs || !s->idle_ev || !s->live_flush_ev || !s->keygen || !s->io ||
	    !s->db || !s->begin_ev) {
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

/* A CA's state read back at start-up: an outage goes on being probed. */
static void slot_loaded(void *arg, int rc, const char *data, size_t len)
{
	struct ca_slot *slot = arg;
	char when[32];
	int64_t delay;
	struct timeval tv;

	slot->db_req = NULL;
	state_ca_clear(&slot->st);
	if (rc < 0 || state_ca_decode(data, len, "the state of a CA", &slot->st) < 0) {
		state_ca_clear(&slot->st);
		return;
	}
	if (slot->st.down_since == 0) {
		state_ca_up(&slot->st);         /* only the order times count */
		sched_ca_dispatch(slot);
		return;
	}
	log_warn(NULL, "CA %s was unavailable before the restart (%s); next probe at %s",
		 acme_client_name(slot->ca), slot->st.last_error ? slot->st.last_error : "?",
		 timeparse_format(slot->st.next_probe, when, sizeof(when)));
	delay = slot->st.next_probe - clock_now();
	tv.tv_sec = delay > 0 ? (time_t)delay : 0;
	tv.tv_usec = 0;
	evtimer_add(slot->probe_timer, &tv);
}

static void slot_load(struct ca_slot *slot)
{
	slot->db_req = db_get(slot->s->db, DB_CA, acme_client_name(slot->ca), slot_loaded, slot);
}

/* Look at a job's certificate and state and arm its timer. force: order a
 * new certificate even if the one on disk is fine (its CA changed). */
static void job_begin(struct job *j, int force)
{
	const char *why, *dir = sched_job_directory(j);
	char other[600];

	store_clean_leftovers(j->cert->output_dir, 1);
	why = sched_job_inspect(j);
	int64_t now = clock_now();
	char when[32];

	/* An order, or a certificate issued and kept, that another CA's directory
	 * made (the config changed while acmed was stopped) is that CA's. With
	 * `ca: [a, b]` any CA of the list is the configured CA. */
	int dpos = j->st.order_directory ? sched_job_dir_pos(j, j->st.order_directory) : 0;
	int ipos = j->st.issued_by ? sched_job_dir_pos(j, j->st.issued_by) : 0;

	j->ca_at = 0;
	j->issuer_at = 0;
	if (!force && dpos < 0 && (j->st.order_url || j->st.issued_kept)) {
		log_info(j->cert->name, "the %s belongs to %s, no longer the configured CA; "
			 "dropping it", j->st.order_url ? "order in flight" : "certificate kept",
			 j->st.order_directory);
		force = 1;
	}
	/* The same directory under another CA name is another account: its
	 * order cannot be finished by this one (a certificate kept stays). */
	if (!force && j->st.order_url && j->st.order_ca && sched_job_order_pos(j) < 0) {
		log_info(j->cert->name, "order %s was made by the account of CA %s; ordering anew",
			 j->st.order_url, j->st.order_ca);
		sched_job_forget_order(j);
		sched_job_save(j);
	}
	/* Resumed, or installed, as the CA of the list that made it. */
	if (!force && (j->st.order_url || j->st.issued_kept) && dpos > 0)
		j->ca_at = (size_t)(j->st.order_url ? sched_job_order_pos(j) : dpos);
	/* The certificate in use came from another directory (staging before
	 * production): re-issued by the configured one, under its usual backoff. */
	if (!why && j->has_cert && j->st.issued_by && ipos < 0) {
		snprintf(other, sizeof(other), "the certificate in use was issued by %.250s, not by the "
			 "configured CA (%.250s)", j->st.issued_by, dir);
		why = other;
	}
	if (ipos > 0)
		j->issuer_at = (size_t)ipos;
	/* `acmed revoke` revoked it, and acmed stopped before its replacement came. */
	if (!why)
		why = sched_revoked_why(j, other, sizeof(other));

	if (j->st.issued_kept && !force) {
		/* At once: a local write, and a restart is often the admin's fix. */
		log_info(j->cert->name, "a certificate issued before the restart is not installed yet; "
			 "installing it");
		sched_job_schedule_at(j, now, 1);
		return;
	}
	if (force) {
		/* Another CA: an order in flight, or a certificate it issued, belongs to the old one. */
		sched_job_forget_order(j);
		sched_keep_forget(j);
		j->st.failures = 0;
		j->st.next_attempt = 0;
		sched_job_save(j);
		if (!why)
			why = "the configured CA changed";
		j->has_cert = 0;
	}
	if (j->st.order_url) {
		log_info(j->cert->name, "order %s was in flight before the restart", j->st.order_url);
		sched_job_schedule_at(j, j->st.next_attempt > now ? j->st.next_attempt : now, 1);
		return;
	}
	if (why) {
		if (j->st.next_attempt > now) {
			log_info(j->cert->name, "%s; after %d failed attempt%s, next at %s (%s)", why,
				 j->st.failures, j->st.failures == 1 ? "" : "s",
				 timeparse_format(j->st.next_attempt, when, sizeof(when)),
				 j->st.last_error ? j->st.last_error : "");
			sched_job_schedule_at(j, j->st.next_attempt, 1);
		} else {
			log_info(j->cert->name, "%s: ordering a certificate for %s%s", why,
				 j->cert->domains.v[0], j->cert->domains.n > 1 ? " and more" : "");
			sched_job_schedule(j, now);
		}
		return;
	}
	if (j->st.deploy_pending) {
		log_info(j->cert->name, "the last new certificate was not deployed yet; deploying it");
		sched_job_deploy(j);
	}
	/* A valid certificate: ARI decides when the CA offers it. */
	if (j->cert_id && j->st.ari_cert_id && strcmp(j->cert_id, j->st.ari_cert_id) == 0 &&
	    j->st.ari_next_check > now) {
		j->ari_next = j->st.ari_next_check;
		sched_job_schedule_renewal(j, "certificate");
	} else if (j->cert_id) {
		sched_job_ari_refresh(j);
	} else {
		sched_job_schedule_renewal(j, "certificate");
	}
}

/* ---------- start-up: state read through the store, files looked at a few at a time ---------- */

#define BEGIN_SLICE_US 5000     /* the loop answers in between (listener, control socket) */

/* All jobs loaded: what start-up parsed is given back. */
static void begin_finished(struct sched *s)
{
	/* Certificates added by a reload are inspected afresh. */
	state_live_set_free(s->live_set);
	s->live_set = NULL;
	/* Start-up parsed a lot (config, live.json, thousands of certificates):
	 * give the freed heap back rather than carry it while idle. */
	malloc_trim(0);
	log_info(NULL, "start-up: every certificate looked at (%zu) in %lld ms", s->njobs,
		 (long long)(clock_mono_ms() - s->begin_ms));
	sched_check_idle(s);
}

void sched_begin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	int64_t until = clock_mono_us() + BEGIN_SLICE_US;
	struct timeval zero = { 0, 0 };
	struct job *j;

	(void)fd;
	(void)what;
	while ((j = TAILQ_FIRST(&s->begin))) {
		TAILQ_REMOVE(&s->begin, j, blink);
		j->begin_queued = 0;
		s->loading--;
		j->state = JOB_IDLE;
		job_begin(j, j->begin_force);
		if (j->renew_asked && j->state != JOB_DONE) {
			j->renew_asked = 0;
			sched_renew_now(s, j->cert->name, j->renew_force);
		}
		if (!TAILQ_EMPTY(&s->begin) && clock_mono_us() >= until) {
			evtimer_add(s->begin_ev, &zero);
			return;
		}
	}
	if (s->loading == 0 && s->live_set)
		begin_finished(s);
}

static void job_loaded(void *arg, int rc, const char *data, size_t len)
{
	struct job *j = arg;
	struct sched *s = j->s;
	struct timeval zero = { 0, 0 };

	j->db_req = NULL;
	state_job_clear(&j->st);
	if (rc == 0)
		state_job_decode(data, len, j->cert->name, &j->st);   /* damaged: afresh */
	TAILQ_INSERT_TAIL(&s->begin, j, blink);
	j->begin_queued = 1;
	if (!evtimer_pending(s->begin_ev, NULL))
		evtimer_add(s->begin_ev, &zero);
}

/* Read the job's state, then look at its files and arm its timer (job_begin).
 * force: order a new certificate even if the one on disk is fine. */
static void job_load(struct job *j, int force)
{
	j->state = JOB_LOADING;
	j->begin_force = force;
	j->s->loading++;
	j->db_req = db_get(j->s->db, DB_JOB, j->cert->name, job_loaded, j);
	if (!j->db_req)
		job_loaded(j, -ENOMEM, NULL, 0);
}

/* What a crash left in state_dir (the files of the store, the cache). */
static void clean_state_dir(struct sched *s)
{
	static const char *const subs[] = { "", "certs", "cas" };
	char path[4096];

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s%s", s->cfg->state_dir, *subs[i] ? "/" : "", subs[i]);
		store_clean_leftovers(path, 0);
	}
	for (size_t i = 0; i < s->cfg->ncas; i++) {
		snprintf(path, sizeof(path), "%s/accounts/%s", s->cfg->state_dir, s->cfg->cas[i].name);
		store_clean_leftovers(path, 0);
	}
}

int sched_start(struct sched *s)
{
	s->begin_ms = clock_mono_ms();
	clean_state_dir(s);
	s->live_set = state_live_set_load(s->cfg->state_dir);
	for (size_t i = 0; i < s->nslots; i++)
		slot_load(s->slots[i]);
	for (size_t i = 0; i < s->njobs; i++)
		job_load(s->jobs[i], 0);
	if (s->njobs == 0)
		begin_finished(s);
	return 0;
}

/* Without key_type the job keeps the type it uses; a key_type added or
 * changed makes the job look at its certificate again. */
static int key_same(const struct config_cert *oc, const struct config_cert *nc)
{
	return !nc->key_type_set || (oc->key_type_set && oc->key_type == nc->key_type);
}

/* The CA that issued the job's certificate (the first of its list before
 * any) is in nc's `ca:` list, by its directory: nothing to re-issue. */
static int issuer_still_listed(const struct sched *s, const struct job *j, const struct config *cfg,
			       const struct config_cert *nc)
{
	const char *dir = s->cfg->cas[sched_job_issuer_slot(j)->index].directory;

	for (size_t at = 0; at < config_cert_nca(nc); at++)
		if (strcmp(cfg->cas[config_cert_ca_at(nc, at)].directory, dir) == 0)
			return 1;
	return 0;
}

/* The same CAs, in the same order, served by the same clients. */
static int same_ca_list(const struct sched *s, const struct config_cert *oc, struct acme_client **cas,
			const struct config_cert *nc)
{
	if (config_cert_nca(oc) != config_cert_nca(nc))
		return 0;
	for (size_t at = 0; at < config_cert_nca(oc); at++)
		if (s->slots[config_cert_ca_at(oc, at)]->ca != cas[config_cert_ca_at(nc, at)])
			return 0;
	return 1;
}

int sched_reconfigure(struct sched *s, const struct config *cfg, struct acme_client **cas,
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
			/* Only another directory makes it another CA's certificate; a
			 * CA set up anew (its name or ca_bundle changed) takes over the
			 * job as a restart would, re-issuing nothing. */
			int same_dir = issuer_still_listed(s, s->jobs[k], cfg, nc);
			int same_cert = names_same_set((const char *const *)oc->domains.v,
						       oc->domains.n,
						       (const char *const *)nc->domains.v,
						       nc->domains.n) &&
					key_same(oc, nc) && same_dir &&
					strcmp(oc->output_dir, nc->output_dir) == 0;

			/* Another webroot: the job is set up anew (its solver), re-issuing nothing. */
			int same_webroot = !oc->webroot == !nc->webroot &&
					   (!oc->webroot || strcmp(oc->webroot, nc->webroot) == 0);

			if (same_cert && same_webroot && same_ca_list(s, oc, cas, nc)) {
				job_from[i] = (ssize_t)k;
				old_kept[k] = 1;
			} else {
				force[i] = !same_dir;
				if (!same_cert)
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
			slot_load(slots[i]);
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
		if (timing)
			j->renew_before_warned = 0;
		if (timing && j->state == JOB_IDLE && j->has_cert) {
			evtimer_del(j->timer);
			sched_job_schedule_renewal(j, "renew_before changed;");
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
			job_load(s->jobs[i], force[i]);
	for (i = 0; i < cfg->ncas; i++)
		sched_ca_dispatch(s->slots[i]);
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
	sched_live_save(s);
	for (size_t i = 0; s->jobs && i < s->njobs; i++)
		job_free(s->jobs[i]);
	for (size_t i = 0; s->slots && i < s->nslots; i++)
		slot_free(s->slots[i]);
	if (s->idle_ev)
		event_free(s->idle_ev);
	if (s->live_flush_ev)
		event_free(s->live_flush_ev);
	keygen_free(s->keygen);
	/* After the jobs: every state write they made lands before acmed exits. */
	worker_flush(s->io);
	worker_free(s->io);
	db_free(s->own_db);
	if (s->begin_ev)
		event_free(s->begin_ev);
	sched_observers_free(s);          /* after the jobs: a write under way completes */
	state_live_set_free(s->live_set); /* stopped before start-up looked at everything */
	free(s->jobs);
	free(s->slots);
	free(s);
}

unsigned sched_failed_count(const struct sched *s)
{
	return s->failed;
}

size_t sched_pending_work(const struct sched *s)
{
	return worker_outstanding(s->io) + keygen_outstanding(s->keygen);
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
	case SCHED_STARTING: return "starting";
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
	slot = sched_job_slot(j);
	memset(out, 0, sizeof(*out));
	out->ca = slot->index;
	out->cert = j->cert;
	out->not_before = j->not_before;
	out->not_after = j->not_after;
	out->issuer = j->not_after ? j->live.issuer : NULL;
	out->key_type = j->key_type;
	out->state = &j->st;
	out->next_at = j->due;
	switch (j->state) {
	case JOB_RUNNING:
	case JOB_INSTALLING:
		out->phase = SCHED_ORDERING;
		break;
	case JOB_QUEUED:
		out->phase = slot->st.down_since ? SCHED_CA_DOWN : SCHED_QUEUED;
		out->next_at = slot->st.down_since ? slot->st.next_probe : clock_now();
		if (!slot->st.down_since && slot->ceiling_until > out->next_at && !j->st.order_url)
			out->next_at = slot->ceiling_until;      /* the ceiling on new orders */
		break;
	case JOB_DONE:
		out->phase = j->failed ? SCHED_FAILED : SCHED_DONE;
		break;
	case JOB_LOADING:
		out->phase = SCHED_STARTING;
		break;
	case JOB_IDLE:
	case JOB_ARI:
	default:
		/* Idle without a certificate in use: its order is due at next_at
		 * (a moment after start-up looked at it), not "valid". */
		out->phase = j->st.failures > 0 && j->st.next_attempt > clock_now() ? SCHED_BACKOFF :
			     j->has_cert ? SCHED_VALID : SCHED_QUEUED;
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
	out->name = acme_client_name(slot->ca);
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
		if (j->state == JOB_LOADING) {
			/* Said once it has been looked at (start-up, reload). */
			j->renew_asked = 1;
			j->renew_force |= force;
			return 0;
		}
		if (j->state == JOB_RUNNING || j->state == JOB_QUEUED || j->state == JOB_INSTALLING)
			return 0;
		if (!force && j->has_cert && j->due > clock_now() && j->st.failures == 0)
			return -EALREADY;       /* valid and not due: nothing to do */
		acme_client_cancel(j->ari_ca, j->ari_call);
		j->ari_call = NULL;
		evtimer_del(j->timer);
		j->st.next_attempt = 0;
		if ((j->kept || j->st.issued_kept) && !force) {
			/* An issued certificate waits: install it now, order nothing. */
			log_info(j->cert->name, "installing the certificate kept since the last failure");
			sched_job_schedule_at(j, clock_now(), 1);
			return 0;
		}
		sched_keep_forget(j);
		log_info(j->cert->name, "renewal requested%s", force ? " (forced)" : "");
		sched_job_enqueue(j);
		return 0;
	}
	return -ENOENT;
}
