/* deploy.c - after a new certificate: batch windows, the exec hooks first (deploy_exec.c), then one reload per unit (deploy_bus.c), all on the event loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "clock.h"
#include "deploy.h"
#include "deploy_internal.h"
#include "exec.h"
#include "log.h"

char *deploy_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

void deploy_ev_free(struct event *ev)
{
	if (ev)
		event_free(ev);
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **strv_copy(const struct config_strv *src, size_t *n)
{
	char **v = calloc(src->n + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < src->n; i++)
		if (!(v[i] = strdup(src->v[i]))) {
			strv_free(v);
			return NULL;
		}
	*n = src->n;
	return v;
}

static char *strv_join(char **v, size_t n, const char *sep)
{
	size_t len = 1, seplen = strlen(sep);
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + seplen;
	if (!(p = s = malloc(len)))
		return NULL;
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? sep : ""), v[i]);
	return s;
}

/* ---- certificate jobs ---- */

/* Mark the job failed, appending msg to its "; "-separated error. */
void deploy_job_fail(struct deploy_job *j, const char *msg)
{
	char *e = j->error ? deploy_xasprintf("%s; %s", j->error, msg) : strdup(msg);

	j->failed = 1;
	if (e) {
		free(j->error);
		j->error = e;
	}
}


static void job_free(struct deploy_job *j)
{
	exec_free(j->hook);             /* a hook still running is killed and reaped */
	free(j->name);
	free(j->domains);
	free(j->output_dir);
	strv_free(j->units);
	strv_free(j->argv);
	free(j->error);
	free(j);
}

/* The job is over: move it from active to done and schedule its result. */
void deploy_job_finish(struct deploy_job *j)
{
	struct deploy *d = j->d;

	TAILQ_REMOVE(&d->active, j, link);
	j->state = JOB_DONE;
	TAILQ_INSERT_TAIL(&d->done, j, link);
	event_active(d->report_ev, EV_TIMEOUT, 1);
}

/* ---- the exec hook (deploy_exec.c, exec.c) ---- */

static void batch_units(struct deploy_batch *b);

/* The job's hook ended (or it has none): its units wait for the batch's other hooks. */
static void job_hook_done(struct deploy_job *j)
{
	struct deploy_batch *b = j->batch;

	j->batch = NULL;
	if (!b) {
		deploy_job_finish(j);   /* no units: done */
		return;
	}
	if (--b->hooks_left == 0)
		batch_units(b);
}

static void on_hook_done(struct exec *e, const struct exec_result *r, void *arg)
{
	struct deploy_job *j = arg;

	if (r->ok) {
		log_info(j->name, "%s", r->message);
	} else {
		log_error(j->name, "%s", r->message);
		deploy_job_fail(j, r->message);
	}
	exec_free(e);
	j->hook = NULL;
	job_hook_done(j);
}

/* Run the certificate's hook (or go on at once when it has none). */
static void job_start_hook(struct deploy_job *j)
{
	struct deploy *d = j->d;
	struct deploy_hook_cert hc = { j->name, j->domains, j->output_dir };
	int r;

	j->state = JOB_HOOK;
	if (j->argc == 0) {
		job_hook_done(j);
		return;
	}
	r = deploy_hook_start(d->base, j->argv, &hc, d->exec_timeout_ms, !d->use_pidfd,
			      on_hook_done, j, &j->hook);
	if (r < 0) {
		char *msg = deploy_xasprintf("hook %s: cannot run: %s", j->argv[0], strerror(-r));

		log_error(j->name, "%s", msg ? msg : "hook: cannot run");
		deploy_job_fail(j, msg ? msg : "hook: cannot run");
		free(msg);
		job_hook_done(j);
	}
}

static void batch_free(struct deploy_batch *b)
{
	LIST_REMOVE(b, link);
	free(b->jobs);
	free(b);
}

/* Every hook of the batch ended: each distinct unit once, for all its certificates. */
static void batch_units(struct deploy_batch *b)
{
	struct deploy *d = b->d;
	struct unit_list units = TAILQ_HEAD_INITIALIZER(units);

	for (size_t k = 0; k < b->njobs; k++) {
		struct deploy_job *j = b->jobs[k];

		j->state = JOB_UNITS;
		for (size_t i = 0; i < j->nunits; i++) {
			struct deploy_unit *u = deploy_bus_unit(d, &units, j->units[i]);

			if (!u || deploy_bus_unit_add_job(u, j) < 0) {
				log_error(j->name, "out of memory: %s not reloaded", j->units[i]);
				deploy_job_fail(j, "out of memory");
			}
		}
		if (j->units_left == 0)         /* none could be queued */
			deploy_job_finish(j);
	}
	batch_free(b);
	deploy_bus_start(d, &units);
}

/* The batch window closed: the hooks of its certificates start. */
static void on_window(evutil_socket_t fd, short what, void *arg)
{
	struct deploy *d = arg;
	struct deploy_batch *b = calloc(1, sizeof(*b));
	struct deploy_job *j;
	size_t n = 0;

	TAILQ_FOREACH(j, &d->window, link)
		n++;
	if (!b || !(b->jobs = calloc(n ? n : 1, sizeof(*b->jobs)))) {
		free(b);
		while ((j = TAILQ_FIRST(&d->window))) {
			log_error(j->name, "out of memory: new certificate not deployed");
			deploy_job_fail(j, "out of memory");
			TAILQ_REMOVE(&d->window, j, link);
			TAILQ_INSERT_TAIL(&d->active, j, link);
			deploy_job_finish(j);
		}
		return;
	}
	b->d = d;
	LIST_INSERT_HEAD(&d->batches, b, link);
	while ((j = TAILQ_FIRST(&d->window))) {
		TAILQ_REMOVE(&d->window, j, link);
		TAILQ_INSERT_TAIL(&d->active, j, link);
		j->batch = b;
		b->jobs[b->njobs++] = j;
	}
	/* One more than the jobs, so that a hook ending at once cannot start
	 * the units before every hook of the batch was started. */
	b->hooks_left = b->njobs + 1;
	for (size_t k = 0; k < b->njobs; k++)
		job_start_hook(b->jobs[k]);
	if (--b->hooks_left == 0)
		batch_units(b);
}

/* ---- public API ---- */

static void on_report(evutil_socket_t fd, short what, void *arg);

struct deploy *deploy_new(struct event_base *base, deploy_result_fn result_cb, void *arg)
{
	struct deploy *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->base = base;
	d->result_cb = result_cb;
	d->arg = arg;
	d->window_ms = 2000;
	d->exec_timeout_ms = 60000;
	d->unit_timeout_ms = 90000;
	d->use_pidfd = 1;
	TAILQ_INIT(&d->window);
	TAILQ_INIT(&d->active);
	TAILQ_INIT(&d->done);
	TAILQ_INIT(&d->units);
	LIST_INIT(&d->batches);
	d->window_ev = evtimer_new(base, on_window, d);
	d->report_ev = event_new(base, -1, 0, on_report, d);
	if (!d->window_ev || !d->report_ev) {
		deploy_ev_free(d->window_ev);
		deploy_ev_free(d->report_ev);
		free(d);
		return NULL;
	}
	return d;
}

static void deploy_destroy(struct deploy *d)
{
	struct deploy_job *j;

	while (!TAILQ_EMPTY(&d->units))
		deploy_bus_unit_free(TAILQ_FIRST(&d->units));
	while (!LIST_EMPTY(&d->batches))
		batch_free(LIST_FIRST(&d->batches));
	deploy_bus_close(d);
	while ((j = TAILQ_FIRST(&d->window))) {
		TAILQ_REMOVE(&d->window, j, link);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&d->active))) {
		TAILQ_REMOVE(&d->active, j, link);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&d->done))) {
		TAILQ_REMOVE(&d->done, j, link);
		job_free(j);
	}
	deploy_ev_free(d->window_ev);
	deploy_ev_free(d->report_ev);
	free(d);
}

void deploy_free(struct deploy *d)
{
	if (!d)
		return;
	if (d->reporting) {
		d->free_requested = 1;  /* on_report finishes the job */
		return;
	}
	deploy_destroy(d);
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
	struct deploy *d = arg;
	struct deploy_job *j;

	d->reporting = 1;
	while ((j = TAILQ_FIRST(&d->done))) {
		TAILQ_REMOVE(&d->done, j, link);
		if (!d->free_requested && d->result_cb)
			d->result_cb(j->name, !j->failed,
				     j->failed ? (j->error ? j->error : "out of memory") : NULL, d->arg);
		job_free(j);
	}
	/* no idle connection kept: it would wake us for every job on the system */
	if (!d->free_requested && TAILQ_EMPTY(&d->units))
		deploy_bus_close(d);
	if (!d->free_requested && !deploy_busy(d) && !d->idle_notified) {
		d->idle_notified = 1;
		if (d->idle_cb)
			d->idle_cb(d->idle_arg);
	}
	d->reporting = 0;
	if (d->free_requested)
		deploy_destroy(d);
}

static struct deploy_job *job_new(struct deploy *d, const struct config_cert *cert)
{
	struct deploy_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->d = d;
	j->name = strdup(cert->name);
	j->domains = strv_join(cert->domains.v, cert->domains.n, " ");
	j->output_dir = strdup(cert->output_dir ? cert->output_dir : "");
	j->units = strv_copy(&cert->reload, &j->nunits);
	j->argv = strv_copy(&cert->exec, &j->argc);
	if (!j->name || !j->domains || !j->output_dir || !j->units || !j->argv) {
		job_free(j);
		return NULL;
	}
	return j;
}

int deploy_certificate(struct deploy *d, const struct config_cert *cert)
{
	struct deploy_job *j = job_new(d, cert), *old;
	int64_t now = clock_mono_ms(), fire;
	struct timeval tv;

	if (!j) {
		log_error(cert->name, "out of memory: new certificate not deployed");
		return -ENOMEM;
	}
	d->idle_notified = 0;
	if (j->nunits == 0) {   /* nothing to batch: the hook can start now */
		TAILQ_INSERT_TAIL(&d->active, j, link);
		job_start_hook(j);
		return 0;
	}
	TAILQ_FOREACH(old, &d->window, link)
		if (strcmp(old->name, j->name) == 0)
			break;
	if (old) {
		TAILQ_INSERT_BEFORE(old, j, link);
		TAILQ_REMOVE(&d->window, old, link);
		job_free(old);
	} else {
		if (TAILQ_EMPTY(&d->window))
			d->window_start = now;
		TAILQ_INSERT_TAIL(&d->window, j, link);
	}
	j->state = JOB_WINDOW;
	fire = now + d->window_ms;
	if (fire > d->window_start + DEPLOY_BATCH_CAP_MS)
		fire = d->window_start + DEPLOY_BATCH_CAP_MS;
	tv = clock_tv_ms(fire > now ? fire - now : 0);
	evtimer_add(d->window_ev, &tv);
	return 0;
}

int deploy_busy(const struct deploy *d)
{
	return !TAILQ_EMPTY(&d->window) || !TAILQ_EMPTY(&d->active) || !TAILQ_EMPTY(&d->done);
}

void deploy_set_idle_cb(struct deploy *d, deploy_idle_fn cb, void *arg)
{
	d->idle_cb = cb;
	d->idle_arg = arg;
}

void deploy_set_batch_window_ms(struct deploy *d, long ms)
{
	d->window_ms = ms < 0 ? 0 : ms;
}

void deploy_set_exec_timeout_ms(struct deploy *d, long ms)
{
	d->exec_timeout_ms = ms <= 0 ? 60000 : ms;
}

void deploy_set_unit_timeout_ms(struct deploy *d, long ms)
{
	d->unit_timeout_ms = ms <= 0 ? 90000 : ms;
}

void deploy_set_use_pidfd(struct deploy *d, int on)
{
	d->use_pidfd = !!on;
}
