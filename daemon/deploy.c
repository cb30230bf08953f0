/* deploy.c - after a new certificate: the exec hook (deploy_exec.c), then batched systemd unit reloads over sd-bus, all on the event loop. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-bus.h>

#include "clock.h"
#include "deploy.h"
#include "deploy_internal.h"
#include "exec.h"
#include "log.h"
#include "timeparse.h"

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

static char *deploy_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *deploy_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void ev_free(struct event *ev)
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
static void deploy_job_fail(struct deploy_job *j, const char *msg)
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
static void deploy_job_finish(struct deploy_job *j)
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

/* ---- systemd over sd-bus ---- */

static void unit_free(struct deploy_unit *u)
{
	TAILQ_REMOVE(&u->d->units, u, link);
	sd_bus_slot_unref(u->call);
	ev_free(u->timer);
	free(u->name);
	free(u->job_path);
	free(u->certs);
	free(u->jobs);
	free(u);
}

/* The unit's job is over: tell its certificates; those with no unit left are done. */
static void unit_finish(struct deploy_unit *u, const char *error)
{
	for (size_t i = 0; i < u->njobs; i++) {
		struct deploy_job *j = u->jobs[i];

		if (error)
			deploy_job_fail(j, error);
		if (--j->units_left == 0)
			deploy_job_finish(j);
	}
	unit_free(u);
}

static void unit_fail(struct deploy_unit *u, int log, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void unit_fail(struct deploy_unit *u, int log, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (log)
		log_error(NULL, "%s", msg ? msg : u->name);
	unit_finish(u, msg ? msg : "unit reload failed");
	free(msg);
}

static void unit_job_removed(struct deploy_unit *u, const char *result)
{
	if (strcmp(result, "done") == 0) {
		log_info(NULL, "reloaded %s (for %s)", u->name, u->certs);
		unit_finish(u, NULL);
	} else {
		unit_fail(u, 1, "reload of %s (for %s) failed: job result \"%s\"", u->name, u->certs,
			  result);
	}
}

static void bus_close(struct deploy *d)
{
	if (!d->bus)
		return;
	d->match_slot = sd_bus_slot_unref(d->match_slot);
	d->subscribe_slot = sd_bus_slot_unref(d->subscribe_slot);
	ev_free(d->bus_io_ev);
	ev_free(d->bus_timer_ev);
	d->bus_io_ev = d->bus_timer_ev = NULL;
	d->bus = sd_bus_close_unref(d->bus);
	for (size_t i = 0; i < DEPLOY_EARLY_MAX; i++) {
		free(d->early[i].path);
		free(d->early[i].result);
		d->early[i].path = d->early[i].result = NULL;
	}
}

/* "nginx.service php-fpm.service" */
static char *unit_names(struct unit_list *list)
{
	struct deploy_unit *u;
	char *names = NULL, *tmp;

	TAILQ_FOREACH(u, list, link) {
		tmp = names ? deploy_xasprintf("%s %s", names, u->name) : strdup(u->name);
		free(names);
		names = tmp;
	}
	return names;
}

/* The connection broke: every unit still waiting on it fails, logged once. */
static void bus_lost(struct deploy *d, int err)
{
	struct deploy_unit *u;

	if (!TAILQ_EMPTY(&d->units)) {
		char *names = unit_names(&d->units);

		log_error(NULL, "lost the connection to systemd on the system bus (%s): units %s "
			  "not confirmed reloaded", strerror(-err), names ? names : "?");
		free(names);
	}
	while ((u = TAILQ_FIRST(&d->units)))
		unit_fail(u, 0, "lost the connection to systemd on the system bus (%s): %s not "
			  "confirmed reloaded", strerror(-err), u->name);
	bus_close(d);
}

static void bus_run(struct deploy *d);

static void on_bus_io(evutil_socket_t fd, short what, void *arg)
{
	bus_run(arg);
}

static void bus_rearm(struct deploy *d)
{
	int fd = sd_bus_get_fd(d->bus), ev = sd_bus_get_events(d->bus);
	uint64_t until;
	short what = 0;

	if (fd < 0 || ev < 0) {
		bus_lost(d, fd < 0 ? fd : ev);
		return;
	}
	event_del(d->bus_io_ev);
	if (ev & POLLIN)
		what |= EV_READ;
	if (ev & POLLOUT)
		what |= EV_WRITE;
	event_assign(d->bus_io_ev, d->base, fd, what, on_bus_io, d);
	if (what)
		event_add(d->bus_io_ev, NULL);
	evtimer_del(d->bus_timer_ev);
	if (sd_bus_get_timeout(d->bus, &until) >= 0 && until != UINT64_MAX) {
		uint64_t now = (uint64_t)clock_mono_us();
		struct timeval tv;

		until = until > now ? until - now : 0;
		tv.tv_sec = (time_t)(until / 1000000);
		tv.tv_usec = (suseconds_t)(until % 1000000);
		evtimer_add(d->bus_timer_ev, &tv);
	}
}

/* Dispatch everything sd-bus has; callbacks below run from here. */
static void bus_run(struct deploy *d)
{
	int r;

	do
		r = sd_bus_process(d->bus, NULL);
	while (r > 0);
	if (r < 0)
		bus_lost(d, r);
	else
		bus_rearm(d);
}

static int on_unit_reply(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	struct deploy_unit *u = arg;
	struct deploy *d = u->d;
	const char *path;

	if (sd_bus_message_is_method_error(m, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(m);

		unit_fail(u, 1, "systemd did not reload %s (for %s): %s", u->name, u->certs,
			  e && e->message ? e->message : e && e->name ? e->name : "error");
		return 0;
	}
	if (sd_bus_message_read(m, "o", &path) < 0 || !(u->job_path = strdup(path))) {
		unit_fail(u, 1, "reload of %s (for %s): unexpected answer from systemd", u->name,
			  u->certs);
		return 0;
	}
	log_debug(NULL, "reload of %s queued as %s", u->name, path);
	for (size_t i = 0; i < DEPLOY_EARLY_MAX; i++) {
		if (d->early[i].path && strcmp(d->early[i].path, path) == 0) {
			char *result = d->early[i].result;

			free(d->early[i].path);
			d->early[i].path = d->early[i].result = NULL;
			unit_job_removed(u, result);
			free(result);
			break;
		}
	}
	return 0;
}

static int on_job_removed(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	struct deploy *d = arg;
	struct deploy_unit *u;
	const char *path, *unit, *result;
	uint32_t id;
	int waiting = 0;

	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	TAILQ_FOREACH(u, &d->units, link) {
		if (u->job_path && strcmp(u->job_path, path) == 0) {
			unit_job_removed(u, result);
			return 0;
		}
		waiting |= u->call && !u->job_path;
	}
	if (waiting) {          /* the signal overtook the method reply */
		size_t i = d->early_next++ % DEPLOY_EARLY_MAX;

		free(d->early[i].path);
		free(d->early[i].result);
		d->early[i].path = strdup(path);
		d->early[i].result = strdup(result);
	}
	return 0;
}

static int on_match_added(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	if (e)
		log_warn(NULL, "cannot watch systemd jobs on the system bus: %s",
			 e->message ? e->message : e->name);
	return 0;
}

static int on_subscribed(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	if (e)
		log_debug(NULL, "systemd Subscribe: %s", e->message ? e->message : e->name);
	return 0;
}

static int bus_connect(struct deploy *d)
{
	int r;

	if (d->bus)
		return 0;
	r = sd_bus_open_system(&d->bus);
	if (r < 0) {
		d->bus = NULL;
		return r;
	}
	d->bus_io_ev = event_new(d->base, -1, 0, NULL, NULL);
	d->bus_timer_ev = evtimer_new(d->base, on_bus_io, d);
	if (!d->bus_io_ev || !d->bus_timer_ev) {
		bus_close(d);
		return -ENOMEM;
	}
	/* Match first, then Subscribe, then the calls: the bus keeps that order. */
	r = sd_bus_match_signal_async(d->bus, &d->match_slot, SD_DEST, SD_PATH, SD_MGR,
				      "JobRemoved", on_job_removed, on_match_added, d);
	if (r >= 0)
		r = sd_bus_call_method_async(d->bus, &d->subscribe_slot, SD_DEST, SD_PATH, SD_MGR,
					     "Subscribe", on_subscribed, d, "");
	if (r < 0)
		bus_close(d);
	return r;
}

static void on_unit_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct deploy_unit *u = arg;

	char t[32];

	unit_fail(u, 1, "reload of %s (for %s) timed out after %s waiting for systemd",
		  u->name, u->certs, timeparse_format_ms(u->d->unit_timeout_ms, t, sizeof(t)));
}

static void units_start(struct deploy *d, struct unit_list *batch)
{
	struct deploy_unit *u;
	struct timeval tv = clock_tv_ms(d->unit_timeout_ms);
	int r = bus_connect(d);

	if (r < 0) {
		char *names = unit_names(batch);

		log_error(NULL, "cannot reach systemd on the system bus (%s): units %s not reloaded",
			  strerror(-r), names ? names : "?");
		free(names);
	}
	while ((u = TAILQ_FIRST(batch))) {
		TAILQ_REMOVE(batch, u, link);
		TAILQ_INSERT_TAIL(&d->units, u, link);
		if (r < 0) {
			unit_fail(u, 0, "cannot reach systemd on the system bus (%s): %s not reloaded",
				  strerror(-r), u->name);
			continue;
		}
		int c = sd_bus_call_method_async(d->bus, &u->call, SD_DEST, SD_PATH, SD_MGR,
						 "ReloadOrRestartUnit", on_unit_reply, u, "ss",
						 u->name, "replace");
		if (c < 0) {
			unit_fail(u, 1, "cannot ask systemd to reload %s (for %s): %s", u->name,
				  u->certs, strerror(-c));
			continue;
		}
		evtimer_add(u->timer, &tv);
		log_debug(NULL, "reloading %s (for %s)", u->name, u->certs);
	}
	if (d->bus)
		bus_rearm(d);
}

static struct deploy_unit *batch_unit(struct deploy *d, struct unit_list *batch, const char *name)
{
	struct deploy_unit *u;

	TAILQ_FOREACH(u, batch, link)
		if (strcmp(u->name, name) == 0)
			return u;
	if (!(u = calloc(1, sizeof(*u))))
		return NULL;
	u->d = d;
	if (!(u->name = strdup(name)) || !(u->timer = evtimer_new(d->base, on_unit_timeout, u))) {
		free(u->name);
		free(u);
		return NULL;
	}
	TAILQ_INSERT_TAIL(batch, u, link);
	return u;
}

static int unit_add_job(struct deploy_unit *u, struct deploy_job *j)
{
	struct deploy_job **jobs;
	char *certs;

	for (size_t i = 0; i < u->njobs; i++)
		if (u->jobs[i] == j)
			return 0;       /* listed twice by the same certificate */
	if (!(jobs = realloc(u->jobs, (u->njobs + 1) * sizeof(*jobs))))
		return -ENOMEM;
	u->jobs = jobs;
	certs = u->certs ? deploy_xasprintf("%s, %s", u->certs, j->name) : strdup(j->name);
	if (!certs)
		return -ENOMEM;
	free(u->certs);
	u->certs = certs;
	u->jobs[u->njobs++] = j;
	j->units_left++;
	return 1;
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
			struct deploy_unit *u = batch_unit(d, &units, j->units[i]);

			if (!u || unit_add_job(u, j) < 0) {
				log_error(j->name, "out of memory: %s not reloaded", j->units[i]);
				deploy_job_fail(j, "out of memory");
			}
		}
		if (j->units_left == 0)         /* none could be queued */
			deploy_job_finish(j);
	}
	batch_free(b);
	units_start(d, &units);
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
		ev_free(d->window_ev);
		ev_free(d->report_ev);
		free(d);
		return NULL;
	}
	return d;
}

static void deploy_destroy(struct deploy *d)
{
	struct deploy_job *j;

	while (!TAILQ_EMPTY(&d->units))
		unit_free(TAILQ_FIRST(&d->units));
	while (!LIST_EMPTY(&d->batches))
		batch_free(LIST_FIRST(&d->batches));
	bus_close(d);
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
	ev_free(d->window_ev);
	ev_free(d->report_ev);
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
		bus_close(d);
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
