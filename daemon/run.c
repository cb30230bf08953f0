/* run.c - `acmed run [--once]`: wires the modules (CAs, scheduler, listener, control socket, deploy) and runs the loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "account_cmd.h"
#include "acme.h"
#include "challenge_dns01.h"
#include "challenge_http01.h"
#include "challenge_http.h"
#include "challenge_persist.h"
#include "challenge_tlsalpn.h"
#include "cli.h"
#include "config.h"
#include "control.h"
#include "db_file.h"
#include "deploy.h"
#include "dryrun.h"
#include "fdguard.h"
#include "log.h"
#include "looplag.h"
#include "pidfile.h"
#include "scheduler.h"
#include "service.h"
#include "worker.h"
#include "state.h"
#include "status.h"
#include "store.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2
#define DEFAULT_ONCE_TIMEOUT 300


struct run_ctx {
	struct event_base *base;
	const char *path;
	struct config *cfg;
	struct challenge_http *http01;
	struct challenge *solvers[4];   /* http-01, dns-persist-01, dns-01, and tls-alpn-01 once a
					 * certificate needs it (NULL until then) */
	struct challenge *tlsalpn;      /* solvers' tls-alpn-01, when made */
	int *http_fds, *alpn_fds;       /* systemd's sockets, until a listener takes them */
	size_t nhttp_fds, nalpn_fds;
	struct dryrun_set *dry;         /* renew --dry-run */
	struct worker *io;              /* the store's writes, off the loop */
	struct db *db;                  /* accounts, job and CA state (db_file.c) */
	struct acme_ca **cas;
	struct sched *sched;
	struct control *control;
	struct deploy *deploy;
	int sched_idle;
	int listener_failed;
	int once;
	int timed_out;
	int stopping;
	struct pidfile pidfile;          /* runtime_dir/acmed.pid, held locked */
	struct event *status_ev;        /* STATUS= refreshed a second after events */
};

/* The scheduler sees each CA through its acme_client. */
static struct acme_client **clients_of(struct acme_ca **cas, size_t n)
{
	struct acme_client **c = calloc(n ? n : 1, sizeof(*c));

	for (size_t i = 0; c && i < n; i++)
		c[i] = acme_ca_client(cas[i]);
	return c;
}

static int sched_reconfigure_cas(struct sched *s, const struct config *cfg, struct acme_ca **cas,
				 struct sched_diff *diff)
{
	struct acme_client **clients = clients_of(cas, cfg->ncas);
	int rc = clients ? sched_reconfigure(s, cfg, clients, diff) : -ENOMEM;

	free(clients);
	return rc;
}




/* One line for systemctl status: "12 certificates, 1 failing (web), next
 * renewal api in 21d; 1 CA up". Failing: in backoff after a failed order, or
 * its last deploy failed. */
static void notify_status(struct run_ctx *ctx)
{
	const struct config_cert *next = NULL, *failing = NULL;
	int64_t next_at = 0, now = clock_now();
	unsigned down = 0, nfailing = 0;
	char rel[32] = "", fail[160] = "";

	for (size_t i = 0; i < sched_job_count(ctx->sched); i++) {
		struct sched_job_info ji;
		if (sched_job_info(ctx->sched, i, &ji) < 0)
			continue;
		if (ji.state && (ji.state->failures > 0 || ji.state->deploy_error)) {
			nfailing++;
			failing = failing ? failing : ji.cert;
		}
		if (ji.next_at && (!next || ji.next_at < next_at)) {
			next = ji.cert;
			next_at = ji.next_at;
		}
	}
	if (nfailing)
		snprintf(fail, sizeof(fail), ", %u failing (%.60s%s)", nfailing, failing->name,
			 nfailing > 1 ? " and more" : "");
	for (size_t i = 0; i < ctx->cfg->ncas; i++) {
		struct sched_ca_info ci;
		if (sched_ca_info(ctx->sched, i, &ci) == 0 && !ci.up)
			down++;
	}
	if (next) {
		int64_t d = next_at - now;
		if (d <= 0)
			snprintf(rel, sizeof(rel), "now");
		else if (d >= 86400)
			snprintf(rel, sizeof(rel), "in %lldd", (long long)(d / 86400));
		else if (d >= 3600)
			snprintf(rel, sizeof(rel), "in %lldh", (long long)(d / 3600));
		else
			snprintf(rel, sizeof(rel), "in %lldm", (long long)((d + 59) / 60));
	}
	service_notify_status("%zu certificate%s%s%s%s%s%s; %zu CA%s%s%s", ctx->cfg->ncerts,
			      ctx->cfg->ncerts == 1 ? "" : "s", fail, next ? ", next renewal " : "",
			      next ? next->name : "", next ? " " : "", rel, ctx->cfg->ncas,
			      ctx->cfg->ncas == 1 ? "" : "s", down ? ", unavailable: " : " up",
			      down ? "yes" : "");
}

/* ---------- reload ---------- */

/* The same CA object serves both: its account, nonces and connections stay;
 * timeout and contact are applied to it (acme_ca_reconfigure). */
static int ca_same(const struct config_ca *a, const struct config_ca *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->directory, b->directory) == 0 &&
	       !!a->ca_bundle == !!b->ca_bundle && (!a->ca_bundle || strcmp(a->ca_bundle, b->ca_bundle) == 0);
}

static int ensure_tlsalpn(struct run_ctx *ctx, const struct config *cfg);

static void do_reload(struct run_ctx *ctx)
{
	char err[1024] = "";
	struct config *cfg = NULL;
	struct acme_ca **cas = NULL, **old = ctx->cas;
	struct sched_diff diff;
	size_t i, k;
	int rc;

	service_notify_reloading();
	log_info(NULL, "reloading %s", ctx->cfg->path);
	rc = config_load(ctx->path, &cfg, err, sizeof(err));
	if (rc < 0) {
		log_error(NULL, "%s; keeping the running configuration", err);
		control_reload_done(ctx->control, 0, err, 0, 0, 0, 0);
		goto ready;
	}
	if (strcmp(cfg->state_dir, ctx->cfg->state_dir) || strcmp(cfg->runtime_dir, ctx->cfg->runtime_dir)) {
		snprintf(err, sizeof(err), "%s: state_dir and runtime_dir cannot change on reload; "
			 "restart acmed for that", cfg->path);
		log_error(NULL, "%s", err);
		control_reload_done(ctx->control, 0, err, 0, 0, 0, 0);
		config_free(cfg);
		goto ready;
	}
	cas = calloc(cfg->ncas ? cfg->ncas : 1, sizeof(*cas));
	if (!cas)
		goto nomem;
	for (i = 0; i < cfg->ncas; i++) {
		for (k = 0; k < ctx->cfg->ncas; k++)
			if (old[k] && ca_same(&ctx->cfg->cas[k], &cfg->cas[i]))
				break;
		if (k < ctx->cfg->ncas) {
			cas[i] = old[k];        /* keeps its account, nonces, connections */
			continue;
		}
		cas[i] = acme_ca_new(ctx->base, &cfg->cas[i], cfg->state_dir, ctx->db);
		if (!cas[i] || acme_ca_load_account(cas[i]) < 0)
			goto nomem;
	}
	if (ctx->tlsalpn && !config_strv_equal(&cfg->tls_alpn_listen, &ctx->cfg->tls_alpn_listen))
		log_warn(NULL, "tls_alpn_listen changed: the tls-alpn-01 responder keeps its sockets until "
			 "the next start");
	if (challenge_dns01_configure(ctx->solvers[2], cfg, "/etc/resolv.conf") < 0)
		log_error(NULL, "dns-01: cannot apply the new dns: settings or dns_providers (see above); the "
			  "unchanged providers go on");
	if (ensure_tlsalpn(ctx, cfg) < 0)
		log_error(NULL, "no tls-alpn-01 responder: the certificates that use tls-alpn-01 cannot be "
			  "validated");
	if (!config_strv_equal(&cfg->listen, &ctx->cfg->listen) && ctx->http01 &&
	    challenge_http_set_listen(ctx->http01, (const char *const *)cfg->listen.v,
				      cfg->listen.n) < 0)
		log_error(NULL, "keeping the old http-01 listeners");
	if (sched_reconfigure_cas(ctx->sched, cfg, cas, &diff) < 0)
		goto nomem;
	/* A CA kept: its new timeout and contact (an account update when it changed). */
	for (i = 0; i < cfg->ncas; i++)
		for (k = 0; k < ctx->cfg->ncas; k++)
			if (cas[i] == old[k] && acme_ca_reconfigure(cas[i], &cfg->cas[i]) < 0)
				log_error(NULL, "CA %s: cannot apply its new settings (out of memory)",
					  cfg->cas[i].name);
	/* CAs nobody uses any more go; so does the old configuration (orders in
	 * flight keep their own copy of what they need). */
	for (k = 0; k < ctx->cfg->ncas; k++) {
		for (i = 0; i < cfg->ncas && cas[i] != old[k]; i++)
			;
		if (i == cfg->ncas)
			acme_ca_free(old[k]);
	}
	free(old);
	ctx->cas = cas;
	config_free(ctx->cfg);
	ctx->cfg = cfg;
	log_info(NULL, "reloaded: %zu certificates (%u added, %u removed, %u changed)",
		 cfg->ncerts, diff.added, diff.removed, diff.changed);
	control_reload_done(ctx->control, 1, NULL, (unsigned)cfg->ncerts, diff.added,
			    diff.removed, diff.changed);
	goto ready;
nomem:
	for (i = 0; cas && i < cfg->ncas; i++) {
		for (k = 0; k < ctx->cfg->ncas && cas[i] != old[k]; k++)
			;
		if (k == ctx->cfg->ncas)
			acme_ca_free(cas[i]);
	}
	free(cas);
	config_free(cfg);
	log_error(NULL, "reload failed: out of memory or cannot set up a CA; keeping the running "
		  "configuration");
	control_reload_done(ctx->control, 0, "reload failed (see the daemon's log)", 0, 0, 0, 0);
ready:
	service_notify_ready(NULL);
	notify_status(ctx);
}

/* ---------- control socket and deploy glue ---------- */

static json_t *ctl_status(void *arg)
{
	struct run_ctx *ctx = arg;

	return status_from_sched(ctx->cfg, ctx->sched);
}

static int ctl_renew(void *arg, const char *const *names, size_t n, int all, int force,
		     json_t *renewing, json_t *not_due, char *err, size_t errlen)
{
	struct run_ctx *ctx = arg;

	return control_renew_sched(ctx->cfg, ctx->sched, names, n, all, force, renewing, not_due,
				   err, errlen);
}

static int ctl_dry_run(void *arg, const char *const *names, size_t n, int all, unsigned long id,
		       json_t *started, char *err, size_t errlen)
{
	struct run_ctx *ctx = arg;

	return dryrun_set_start(ctx->dry, ctx->cfg, names, n, all, id, started, err, errlen);
}

static void dry_answer(void *arg, unsigned long id, json_t *answer)
{
	struct run_ctx *ctx = arg;

	control_answer_later_done(ctx->control, id, answer);
}

struct answer_wait {
	struct run_ctx *ctx;
	unsigned long id;
};

static void answer_later(void *arg, int rc, const char *message)
{
	struct answer_wait *w = arg;

	control_answer_later_done(w->ctx->control, w->id, rc == 0 ?
				  json_pack("{s:b, s:s}", "ok", 1, "message", message) :
				  json_pack("{s:b, s:s}", "ok", 0, "error", message));
	free(w);
}

static int ctl_revoke(void *arg, const char *name, int reason, unsigned long id, char *err, size_t errlen)
{
	struct run_ctx *ctx = arg;
	struct answer_wait *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->ctx = ctx;
	w->id = id;
	rc = sched_revoke(ctx->sched, name, reason, answer_later, w, err, errlen);
	if (rc < 0)
		free(w);
	return rc;
}

static int ctl_account(void *arg, const char *action, const char *ca, unsigned long id, char *err,
		       size_t errlen)
{
	struct run_ctx *ctx = arg;
	struct answer_wait *w;
	size_t i;
	int rc;

	for (i = 0; i < ctx->cfg->ncas && strcmp(ctx->cfg->cas[i].name, ca) != 0; i++)
		;
	if (i == ctx->cfg->ncas) {
		snprintf(err, errlen, "no CA %s in the running configuration", ca);
		return -ENOENT;
	}
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->ctx = ctx;
	w->id = id;
	rc = account_change_start(ctx->cas[i], action, answer_later, w, err, errlen);
	if (rc < 0)
		free(w);
	return rc;
}

static const struct control_ops ctl_ops = { ctl_status, ctl_renew, ctl_dry_run, ctl_revoke, ctl_account };

/* The deployer subscribes to the scheduler: a new certificate is reloaded into its services. */
static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->sched)                 /* not while stopping (the DNS records' removal runs the loop) */
		notify_status(ctx);
}

static void on_sched_event(const struct sched_event *ev, void *arg)
{
	struct run_ctx *ctx = arg;

	/* Orders end, CAs go down and come back, deploys fail: systemctl status
	 * follows, a second later (once for a burst). */
	if (ctx->status_ev && !evtimer_pending(ctx->status_ev, NULL)) {
		struct timeval tv = { 1, 0 };
		evtimer_add(ctx->status_ev, &tv);
	}
	if (ev->kind != SCHED_EV_INSTALLED)
		return;
	if (deploy_certificate(ctx->deploy, ev->cert) < 0)
		sched_deploy_done(ctx->sched, ev->cert->name, 0, "out of memory");
}

static void on_deployed(const char *name, int ok, const char *error, void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->sched)
		sched_deploy_done(ctx->sched, name, ok, error);
}

static void maybe_exit_once(struct run_ctx *ctx)
{
	if (!ctx->once || !ctx->sched_idle || deploy_busy(ctx->deploy))
		return;
	for (size_t i = 0; i < ctx->cfg->ncas; i++)
		if (acme_ca_busy(ctx->cas[i]))
			return;         /* an account update: its end calls back */
	event_base_loopexit(ctx->base, NULL);
}

static void on_ca_idle(void *arg)
{
	maybe_exit_once(arg);
}

static void on_deploy_idle(void *arg)
{
	maybe_exit_once(arg);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->stopping++)
		return;
	log_info(NULL, "%s received; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	service_notify_stopping();
	event_base_loopexit(ctx->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->once) {
		log_warn(NULL, "SIGHUP ignored: run --once does not reload");
		return;
	}
	if (!ctx->sched) {
		log_warn(NULL, "SIGHUP ignored: stopping");
		return;
	}
	do_reload(ctx);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct run_ctx *ctx = arg;

	ctx->timed_out = 1;
	log_error(NULL, "--timeout reached before everything due was done");
	event_base_loopexit(ctx->base, NULL);
}

static void on_idle(struct sched *s, void *arg)
{
	struct run_ctx *ctx = arg;

	ctx->sched_idle = 1;
	maybe_exit_once(ctx);
}

static struct challenge_http *open_listener(struct run_ctx *ctx)
{
	if (challenge_http_new(ctx->base, (const char *const *)ctx->cfg->listen.v,
			       ctx->cfg->listen.n, ctx->http_fds, ctx->nhttp_fds, &ctx->http01) < 0)
		ctx->http01 = NULL;
	free(ctx->http_fds);            /* the listener has them now */
	ctx->http_fds = NULL;
	ctx->nhttp_fds = 0;
	return ctx->http01;
}

/* A certificate answers http-01 from acmed's own listener (not a webroot). */
static int config_uses_listener(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->ncerts; i++)
		if (!cfg->certs[i].webroot && strcmp(cfg->certs[i].challenge, "http-01") == 0)
			return 1;
	return 0;
}

/* The tls-alpn-01 responder, from the first certificate that uses it (or
 * systemd's tls-alpn socket) on: 0, or -errno when it cannot listen (logged). */
static int ensure_tlsalpn(struct run_ctx *ctx, const struct config *cfg)
{
	int used = ctx->nalpn_fds > 0;

	for (size_t i = 0; !used && i < cfg->ncerts; i++)
		used = strcmp(cfg->certs[i].challenge, "tls-alpn-01") == 0;
	if (!used || ctx->tlsalpn)
		return 0;
	ctx->tlsalpn = challenge_tlsalpn_new(ctx->base, (const char *const *)cfg->tls_alpn_listen.v,
					     cfg->tls_alpn_listen.n, ctx->alpn_fds, ctx->nalpn_fds);
	free(ctx->alpn_fds);
	ctx->alpn_fds = NULL;
	ctx->nalpn_fds = 0;
	if (!ctx->tlsalpn)
		return -EADDRNOTAVAIL;
	ctx->solvers[3] = ctx->tlsalpn;
	if (ctx->sched)
		sched_set_solvers(ctx->sched, ctx->solvers, 4);
	return 0;
}

static struct challenge_http *need_listener(void *arg)
{
	struct run_ctx *ctx = arg;

	if (ctx->http01)
		return ctx->http01;
	if (ctx->listener_failed)
		return NULL;            /* said once already */
	if (!open_listener(ctx))
		ctx->listener_failed = 1;
	return ctx->http01;
}

static int run_setup(struct run_ctx *ctx, int64_t deadline)
{
	struct acme_client **clients;
	int rc;

	rc = store_mkdir_p(ctx->cfg->state_dir, 0700);
	if (rc < 0) {
		log_error(NULL, "cannot create state_dir %s: %s", ctx->cfg->state_dir, strerror(-rc));
		return rc;
	}
	rc = store_mkdir_p(ctx->cfg->runtime_dir, 0755);
	if (rc < 0) {
		log_error(NULL, "cannot create runtime_dir %s: %s", ctx->cfg->runtime_dir,
			  strerror(-rc));
		return rc;
	}
	rc = pidfile_take(ctx->cfg->runtime_dir, (uid_t)-1, (gid_t)-1, &ctx->pidfile);
	if (rc < 0)
		return rc;
	/* The daemon listens from the start (socket activation, errors seen at
	 * once); run --once only when an order needs it, so a cron job does not
	 * fight a web server for port 80 on the days nothing is due. When every
	 * certificate goes through a webroot, the web server owns port 80: the
	 * listener waits for a certificate that needs it (added by a reload). */
	rc = service_listen_fds(&ctx->http_fds, &ctx->nhttp_fds, &ctx->alpn_fds, &ctx->nalpn_fds);
	if (rc < 0)
		return rc;
	if (!ctx->once && (config_uses_listener(ctx->cfg) || ctx->nhttp_fds) && !open_listener(ctx))
		return -EADDRNOTAVAIL;
	rc = ensure_tlsalpn(ctx, ctx->cfg);
	if (rc < 0)
		return rc;
	ctx->io = worker_new(ctx->base, "acmed-store");
	ctx->db = ctx->io ? db_file_new(ctx->cfg->state_dir, ctx->io) : NULL;
	ctx->cas = calloc(ctx->cfg->ncas ? ctx->cfg->ncas : 1, sizeof(*ctx->cas));
	if (!ctx->cas || !ctx->db)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->cfg->ncas; i++) {
		ctx->cas[i] = acme_ca_new(ctx->base, &ctx->cfg->cas[i], ctx->cfg->state_dir, ctx->db);
		if (!ctx->cas[i])
			return -ENOMEM;
		rc = acme_ca_load_account(ctx->cas[i]);
		if (rc < 0)
			return rc;
		if (ctx->once)
			acme_ca_on_idle(ctx->cas[i], on_ca_idle, ctx);
	}
	ctx->deploy = deploy_new(ctx->base, on_deployed, ctx);
	if (!ctx->deploy)
		return -ENOMEM;
	deploy_set_idle_cb(ctx->deploy, on_deploy_idle, ctx);
	clients = clients_of(ctx->cas, ctx->cfg->ncas);
	ctx->solvers[0] = challenge_http01_new(ctx->base, need_listener, ctx);
	ctx->solvers[1] = challenge_persist_new(ctx->base);
	ctx->solvers[2] = challenge_dns01_new(ctx->base, ctx->db);
	if (!ctx->solvers[1] || !ctx->solvers[2])
		return -ENOMEM;
	if (challenge_dns01_configure(ctx->solvers[2], ctx->cfg, "/etc/resolv.conf") < 0)
		return -EINVAL;
	ctx->sched = clients && ctx->solvers[0] ?
		sched_new(ctx->base, ctx->cfg, clients, ctx->db, ctx->once, deadline, on_idle, ctx) : NULL;
	free(clients);
	if (!ctx->sched)
		return -ENOMEM;
	sched_set_solvers(ctx->sched, ctx->solvers, ctx->tlsalpn ? 4 : 3);
	if (sched_subscribe(ctx->sched, on_sched_event, ctx) < 0)
		return -ENOMEM;
	if (!ctx->once && !(ctx->status_ev = evtimer_new(ctx->base, on_status_timer, ctx)))
		return -ENOMEM;
	if (!ctx->once) {
		struct dryrun_env env = { .base = ctx->base, .db = ctx->db, .io = ctx->io,
					  .solvers = ctx->solvers, .nsolvers = 4, .state_dir = ctx->cfg->state_dir,
					  .answer = dry_answer, .arg = ctx };

		if (!(ctx->dry = dryrun_set_new(&env)))
			return -ENOMEM;
		rc = control_new(ctx->base, ctx->cfg->runtime_dir, &ctl_ops, ctx, &ctx->control);
		if (rc < 0)
			return rc;
	}
	return sched_start(ctx->sched);
}

static void run_teardown(struct run_ctx *ctx)
{
	dryrun_set_free(ctx->dry);       /* tells its clients, while the socket is open */
	control_free(ctx->control);
	ctx->control = NULL;             /* a revocation given up below answers no one */
	sched_free(ctx->sched);          /* withdraws every answer presented */
	ctx->sched = NULL;               /* the loop may run again below: the callbacks look */
	if (ctx->solvers[2])             /* the DNS records too, before acmed goes */
		challenge_dns01_drain(ctx->solvers[2], ctx->base, DNS01_DRAIN_MS);
	challenge_free(ctx->solvers[0]);
	challenge_free(ctx->solvers[1]);
	challenge_free(ctx->solvers[2]);
	challenge_free(ctx->tlsalpn);
	for (size_t i = 0; i < ctx->nhttp_fds; i++)
		close(ctx->http_fds[i]);
	for (size_t i = 0; i < ctx->nalpn_fds; i++)
		close(ctx->alpn_fds[i]);
	free(ctx->http_fds);
	free(ctx->alpn_fds);
	deploy_free(ctx->deploy);
	for (size_t i = 0; ctx->cas && i < ctx->cfg->ncas; i++)
		acme_ca_free(ctx->cas[i]);
	free(ctx->cas);
	/* Every write asked for lands before acmed exits. */
	worker_flush(ctx->io);
	db_free(ctx->db);
	worker_free(ctx->io);
	challenge_http_free(ctx->http01);
	pidfile_release(&ctx->pidfile);
}

int run_main(const char *path, int once, long timeout)
{
	struct run_ctx ctx = { .pidfile = PIDFILE_INIT, .once = once, .path = path };
	struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL, *deadline_ev = NULL;
	struct looplag *lag;
	int64_t deadline = clock_now() + timeout;
	int rc, status = 0;

	rc = cli_load_config(path, &ctx.cfg);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	/* All the descriptors we may have; the http-01 listener keeps a reserve
	 * of them free for state, the CA, the control socket and children. */
	fdguard_raise_limit();
	ctx.base = event_base_new();
	if (!ctx.base) {
		log_error(NULL, "cannot create the event loop");
		config_free(ctx.cfg);
		return EXIT_OPERATIONAL;
	}
	sig_term = evsignal_new(ctx.base, SIGTERM, on_stop_signal, &ctx);
	sig_int = evsignal_new(ctx.base, SIGINT, on_stop_signal, &ctx);
	sig_hup = evsignal_new(ctx.base, SIGHUP, on_hup, &ctx);
	if (!sig_term || !sig_int || !sig_hup || evsignal_add(sig_term, NULL) < 0 ||
	    evsignal_add(sig_int, NULL) < 0 || evsignal_add(sig_hup, NULL) < 0) {
		log_error(NULL, "cannot install signal handlers");
		status = EXIT_OPERATIONAL;
		goto out;
	}
	log_info(NULL, "acmed %s starting: %s, %zu certificate%s", ACMED_VERSION, ctx.cfg->path,
		 ctx.cfg->ncerts, ctx.cfg->ncerts == 1 ? "" : "s");
	if (run_setup(&ctx, deadline) < 0) {
		status = EXIT_OPERATIONAL;
		goto out;
	}
	if (once) {
		struct timeval tv = { timeout, 0 };
		deadline_ev = evtimer_new(ctx.base, on_deadline, &ctx);
		if (!deadline_ev || evtimer_add(deadline_ev, &tv) < 0) {
			status = EXIT_OPERATIONAL;
			goto out;
		}
	}
	service_notify_ready(NULL);
	notify_status(&ctx);
	service_watchdog_start(ctx.base);
	lag = looplag_from_env(ctx.base);       /* ACMED_LOOP_LAG_REPORT: benchmarks only */
	event_base_dispatch(ctx.base);
	looplag_free(lag);
	service_watchdog_stop();
	if (once) {
		unsigned failed = sched_failed_count(ctx.sched) + sched_deploy_failed_count(ctx.sched);
		if (ctx.timed_out || failed > 0)
			status = EXIT_OPERATIONAL;
		if (!ctx.stopping)
			log_info(NULL, "done: %u issued, %u failed%s", sched_issued_count(ctx.sched),
				 failed, ctx.timed_out ? ", timed out" : "");
	}
out:
	if (!ctx.stopping)
		service_notify_stopping();
	run_teardown(&ctx);
	if (deadline_ev)
		event_free(deadline_ev);
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	if (sig_hup)
		event_free(sig_hup);
	if (ctx.status_ev)
		event_free(ctx.status_ev);
	event_base_free(ctx.base);
	config_free(ctx.cfg);
	return status;
}
