/* deploy_bus.c - the systemd half of a deployment: ReloadOrRestartUnit over sd-bus, the JobRemoved signals, the bus driven by the event loop. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <systemd/sd-bus.h>

#include "clock.h"
#include "deploy.h"
#include "deploy_internal.h"
#include "log.h"
#include "timeparse.h"


void deploy_bus_unit_free(struct deploy_unit *u)
{
	TAILQ_REMOVE(&u->d->units, u, link);
	sd_bus_slot_unref(u->call);
	deploy_ev_free(u->timer);
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
	deploy_bus_unit_free(u);
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

void deploy_bus_close(struct deploy *d)
{
	if (!d->bus)
		return;
	d->match_slot = sd_bus_slot_unref(d->match_slot);
	d->subscribe_slot = sd_bus_slot_unref(d->subscribe_slot);
	deploy_ev_free(d->bus_io_ev);
	deploy_ev_free(d->bus_timer_ev);
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
	deploy_bus_close(d);
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
		deploy_bus_close(d);
		return -ENOMEM;
	}
	/* Match first, then Subscribe, then the calls: the bus keeps that order. */
	r = sd_bus_match_signal_async(d->bus, &d->match_slot, SD_DEST, SD_PATH, SD_MGR,
				      "JobRemoved", on_job_removed, on_match_added, d);
	if (r >= 0)
		r = sd_bus_call_method_async(d->bus, &d->subscribe_slot, SD_DEST, SD_PATH, SD_MGR,
					     "Subscribe", on_subscribed, d, "");
	if (r < 0)
		deploy_bus_close(d);
	return r;
}

static void on_unit_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct deploy_unit *u = arg;

	char t[32];

	unit_fail(u, 1, "reload of %s (for %s) timed out after %s waiting for systemd",
		  u->name, u->certs, timeparse_format_ms(u->d->unit_timeout_ms, t, sizeof(t)));
}

void deploy_bus_start(struct deploy *d, struct unit_list *batch)
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

struct deploy_unit *deploy_bus_unit(struct deploy *d, struct unit_list *batch, const char *name)
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

int deploy_bus_unit_add_job(struct deploy_unit *u, struct deploy_job *j)
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

