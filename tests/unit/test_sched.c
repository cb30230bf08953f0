/* test_sched.c - the scheduler's event logic against an in-memory CA (fakeca.c) and the fake clock: backoff, outages, the order ceiling, renewal time, observers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "fakeca.h"
#include "fakeclock.h"
#include "fakesolver.h"
#include "scheduler.h"
#include "crypto.h"
#include "db.h"
#include "db_file.h"
#include "state.h"
#include "status.h"
#include "store.h"
#include "testutil.h"
#include "timeparse.h"

#define DAY 86400

struct ev_rec {
	enum sched_event_kind kind;
	char cert[32];
	char ca[32];
	int ok;
	enum acme_err_class err;
	int failures;
	int64_t at;             /* clock_now() when it happened */
};

struct fx {
	char dir[64];
	struct event_base *base;
	struct fakeca *ca;
	struct fakeca *ca2;             /* "second": the next CA of `ca: [fake, second]` when two */
	int two;
	struct fake_solver solver;
	struct challenge *solvers[1];
	struct config *cfg;
	struct sched *s;
	struct ev_rec ev[512];
	size_t nev;
	int deploy_ok;          /* answer to SCHED_EV_INSTALLED */
};

static void on_event(const struct sched_event *e, void *arg)
{
	struct fx *x = arg;
	struct ev_rec *r = &x->ev[x->nev < 511 ? x->nev++ : 511];

	r->kind = e->kind;
	snprintf(r->cert, sizeof(r->cert), "%s", e->cert ? e->cert->name : "");
	snprintf(r->ca, sizeof(r->ca), "%s", e->ca ? e->ca : "");
	r->ok = e->ok;
	r->err = e->err;
	r->failures = e->failures;
	r->at = clock_now();
	if (e->kind == SCHED_EV_INSTALLED)
		sched_deploy_done(x->s, e->cert->name, x->deploy_ok, x->deploy_ok ? NULL : "hook failed");
}

static size_t count(struct fx *x, enum sched_event_kind kind, const char *cert, int ok)
{
	size_t n = 0;

	for (size_t i = 0; i < x->nev; i++)
		n += x->ev[i].kind == kind && (!cert || strcmp(x->ev[i].cert, cert) == 0) &&
		     (ok < 0 || x->ev[i].ok == ok);
	return n;
}

static const struct ev_rec *last(struct fx *x, enum sched_event_kind kind, const char *cert)
{
	for (size_t i = x->nev; i-- > 0;)
		if (x->ev[i].kind == kind && (!cert || strcmp(x->ev[i].cert, cert) == 0))
			return &x->ev[i];
	return NULL;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	fakeclock_freeze();
	snprintf(x->dir, sizeof(x->dir), "/tmp/acmed-test-sched-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	x->base = event_base_new();
	x->ca = fakeca_new(x->base, "fake");
	fake_solver_init(&x->solver, x->base);
	x->solvers[0] = &x->solver.c;
	fakeca_set_validation(x->ca, 0, -1, fake_solver_check, &x->solver);
	fakeca_set_ari(x->ca, 0);
	x->ca2 = fakeca_new(x->base, "second");
	fakeca_set_validation(x->ca2, 0, -1, fake_solver_check, &x->solver);
	fakeca_set_ari(x->ca2, 0);
	x->deploy_ok = 1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	sched_free(x->s);
	fakeca_free(x->ca);
	fakeca_free(x->ca2);
	config_free(x->cfg);
	event_base_free(x->base);
	rm_rf(x->dir);
	free(x);
	return 0;
}

/* A config with n certificates c0..c(n-1) at the fake CA (x->two: `ca:
 * [fake, second]`); extra: more keys of CA fake, of each certificate. */
static void start(struct fx *x, int n, const char *ca_extra, const char *cert_extra)
{
	char yaml[8192], err[512];
	size_t len;
	struct acme_client *clients[2] = { fakeca_client(x->ca), fakeca_client(x->ca2) };

	len = (size_t)snprintf(yaml, sizeof(yaml), "state_dir: %s/state\ncas:\n  - name: fake\n"
			       "    directory: https://ca.test/dir\n%s\n%scertificates:\n", x->dir,
			       ca_extra ? ca_extra : "",
			       x->two ? "  - name: second\n    directory: https://ca2.test/dir\n" : "");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
					"  - name: c%d\n    domains: [c%d.example.org]\n    exec: [/bin/true]\n%s%s\n",
					i, i, x->two ? "    ca: [fake, second]\n" : "", cert_extra ? cert_extra : "");
	assert_int_equal(config_load_buffer("/etc/acmed/acmed.yaml", yaml, len, &x->cfg, err, sizeof(err)), 0);
	x->s = sched_new(x->base, x->cfg, clients, NULL, 0, 0, NULL, NULL);
	assert_non_null(x->s);
	sched_set_solvers(x->s, x->solvers, 1);
	assert_int_equal(sched_subscribe(x->s, on_event, x), 0);
	assert_int_equal(sched_start(x->s), 0);
}

/* Let the loop run until nothing is left to do now: the threads (installs,
 * the store) have delivered and no event is active. Real time passes here,
 * fake time does not. */
static void settle(struct fx *x)
{
	for (int spins = 0;; spins++) {
		for (int i = 0; i < 4; i++)
			event_base_loop(x->base, EVLOOP_NONBLOCK);
		if (sched_pending_work(x->s) == 0)
			break;
		assert_true(spins < 100000);        /* 10 s of real time: a thread is stuck */
		usleep(100);
	}
	for (int i = 0; i < 4; i++)
		event_base_loop(x->base, EVLOOP_NONBLOCK);
}

/* The fake clock moves step_ms at a time for total_ms (or until until(x)
 * holds), the scheduler settled at every step. */
static void run_for(struct fx *x, int64_t total_ms, int64_t step_ms, int (*until)(struct fx *))
{
	for (int64_t t = 0;;) {
		int64_t d = total_ms - t < step_ms ? total_ms - t : step_ms;

		settle(x);
		if ((until && until(x)) || d <= 0)
			return;
		fakeclock_advance_ms(d);
		t += d;
	}
}

static struct sched_job_info info(struct fx *x, size_t i)
{
	struct sched_job_info ji;

	assert_int_equal(sched_job_info(x->s, i, &ji), 0);
	return ji;
}

static int all_valid(struct fx *x)
{
	for (size_t i = 0; i < sched_job_count(x->s); i++)
		if (info(x, i).phase != SCHED_VALID || !info(x, i).not_after)
			return 0;
	return 1;
}

static void wait_valid(struct fx *x)
{
	run_for(x, 60 * 1000, 10, all_valid);
	assert_true(all_valid(x));
}

/* ---------- tests ---------- */

/* Stopped (SIGTERM) before start-up looked at every certificate: what start-up
 * had loaded is freed too (LeakSanitizer in the asan suite saw it leak). */
static void test_stop_during_startup(void **state)
{
	struct fx *x = *state;

	start(x, 3, NULL, NULL);
	assert_int_equal(info(x, 0).phase, SCHED_STARTING);
	event_base_loop(x->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	/* teardown: sched_free() with the start-up's live.json set still loaded */
}

static void test_issue_then_renew_at_a_third(void **state)
{
	struct fx *x = *state;
	struct sched_job_info ji;
	int64_t issued_at;

	start(x, 1, NULL, NULL);
	assert_int_equal(info(x, 0).phase, SCHED_STARTING);
	/* Looked at, its order not started yet: queued (status once said "valid",
	 * without a certificate). */
	for (int i = 0; i < 100000 && info(x, 0).phase == SCHED_STARTING; i++) {
		event_base_loop(x->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(10);
	}
	ji = info(x, 0);
	assert_int_equal(ji.not_after, 0);
	assert_true(ji.phase == SCHED_QUEUED || ji.phase == SCHED_ORDERING);
	wait_valid(x);
	/* Events in order: the order ended well, then the certificate was installed and deployed. */
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, "c0", 1), 1);
	assert_int_equal(count(x, SCHED_EV_INSTALLED, "c0", -1), 1);
	assert_int_equal(count(x, SCHED_EV_DEPLOY_DONE, "c0", 1), 1);
	assert_true(last(x, SCHED_EV_ORDER_DONE, "c0") < last(x, SCHED_EV_INSTALLED, "c0"));
	assert_true(last(x, SCHED_EV_INSTALLED, "c0") < last(x, SCHED_EV_DEPLOY_DONE, "c0"));
	ji = info(x, 0);
	issued_at = ji.not_before;
	/* 90 days: renewal when 30 are left, minus at most an hour of spread. */
	assert_true(ji.next_at <= ji.not_after - 30 * DAY);
	assert_true(ji.next_at >= ji.not_after - 30 * DAY - 3600);
	/* `acmed status` without the daemon says the same time. */
	{
		json_t *st = status_from_disk_at(x->cfg, clock_now());
		json_t *c = json_array_get(json_object_get(st, "certificates"), 0);
		int64_t t = 0;

		assert_int_equal(timeparse_rfc3339(json_string_value(json_object_get(c, "next_at")), &t), 0);
		assert_int_equal(t, ji.next_at);
		json_decref(st);
	}
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	/* Nothing more until then (a day at a time): */
	run_for(x, (int64_t)(ji.next_at - clock_now() - 60) * 1000, DAY * 1000 / 4, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	/* ...and the renewal once it is due. */
	run_for(x, 2 * 3600 * 1000, 60 * 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_true(info(x, 0).not_before > issued_at);
}

/* An order in flight made by another CA's account (the CA was renamed while
 * acmed was stopped: same directory, another account) is not resumed with
 * this account: a new order, no failure. */
static void test_order_of_another_account_not_resumed(void **state)
{
	struct fx *x = *state;
	struct state_job sj = { 0 };
	char dir[128];
	static char *doms[] = { "c0.example.org", NULL };

	snprintf(dir, sizeof(dir), "%s/state", x->dir);
	sj.order_url = strdup("https://ca.test/order/by-the-old-account");
	sj.order_directory = strdup("https://ca.test/dir");
	sj.order_ca = strdup("old-name");
	sj.order_domains.v = doms;
	sj.order_domains.n = 1;
	sj.order_key_type = KEY_ECDSA_P256;
	sj.order_created = clock_now();
	assert_int_equal(state_job_save(dir, "c0", &sj), 0);
	sj.order_domains.v = NULL;
	sj.order_domains.n = 0;
	state_job_clear(&sj);
	{
		/* and its key, as acmed keeps it: otherwise the order could not be resumed anyway */
		struct crypto_key *k = NULL;
		char *pem = NULL, *path = db_file_path(dir, DB_ORDER_KEY, "c0");
		size_t len = 0;

		assert_int_equal(crypto_key_generate(KEY_ECDSA_P256, &k), 0);
		assert_int_equal(crypto_key_to_pem(k, &pem, &len), 0);
		assert_int_equal(store_write_atomic(path, pem, len, 0600), 0);
		crypto_free_secret(pem, len);
		crypto_key_free(k);
		free(path);
	}
	start(x, 1, NULL, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, "c0", 0), 0);        /* no failed attempt */
	for (size_t i = 0; i < fakeca_nrequests(x->ca); i++)
		assert_null(strstr(fakeca_request(x->ca, i), "by-the-old-account"));
}

static void test_certificate_failures_back_off(void **state)
{
	struct fx *x = *state;
	static const int64_t waits[] = { 60, 600, 6000, DAY, DAY };
	int64_t prev;

	fakeca_fail(x->ca, "newOrder", 5, 400, "rejectedIdentifier", -1);
	start(x, 1, NULL, NULL);
	run_for(x, 1000, 10, NULL);
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, "c0", 0), 1);
	prev = last(x, SCHED_EV_ORDER_DONE, "c0")->at;
	for (int f = 1; f <= 5; f++) {
		const struct ev_rec *e = last(x, SCHED_EV_ORDER_DONE, "c0");
		struct sched_job_info ji = info(x, 0);

		assert_int_equal(e->err, ACME_ERR_CERT);
		assert_int_equal(e->failures, f);
		assert_int_equal(ji.phase, SCHED_BACKOFF);
		assert_int_equal(ji.next_at - e->at, waits[f - 1]);
		/* Not one request to the CA before the backoff ends... */
		run_for(x, (e->at + waits[f - 1] - 1 - clock_now()) * 1000, 1000, NULL);
		assert_int_equal(fakeca_count(x->ca, "newOrder"), (size_t)f);
		/* ...and the next attempt when it does. */
		run_for(x, 2000, 100, NULL);
		if (f < 5) {
			assert_int_equal(fakeca_count(x->ca, "newOrder"), (size_t)f + 1);
			assert_true(last(x, SCHED_EV_ORDER_DONE, "c0")->at - prev >= waits[f - 1]);
			prev = last(x, SCHED_EV_ORDER_DONE, "c0")->at;
		}
	}
	/* The sixth attempt succeeds: failures reset. */
	wait_valid(x);
	assert_int_equal(last(x, SCHED_EV_ORDER_DONE, "c0")->ok, 1);
	assert_int_equal(info(x, 0).state->failures, 0);
}

static void test_outage_probes_one_order_at_a_time(void **state)
{
	struct fx *x = *state;
	size_t before;

	/* The CA answers 503 to the first 6 newOrders. */
	fakeca_fail(x->ca, "newOrder", 6, 503, "serverInternal", -1);
	start(x, 4, NULL, NULL);
	run_for(x, 2000, 10, NULL);
	/* One CA_DOWN, every certificate parked, no backoff charged to them. */
	assert_int_equal(count(x, SCHED_EV_CA_DOWN, NULL, -1), 1);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(info(x, i).phase, SCHED_CA_DOWN);
		assert_int_equal(info(x, i).state->failures, 0);
	}
	before = fakeca_count(x->ca, "newOrder");
	assert_true(before <= 4);
	/* Probes: one order at a time, 40 s..10 min apart, until the CA answers. */
	for (int i = 0; i < 30 && count(x, SCHED_EV_CA_UP, NULL, -1) == 0; i++) {
		size_t n = fakeca_count(x->ca, "newOrder");
		run_for(x, 30 * 1000, 1000, NULL);          /* under the shortest probe interval */
		if (count(x, SCHED_EV_CA_UP, NULL, -1) == 0)    /* still down: one probe at most */
			assert_true(fakeca_count(x->ca, "newOrder") <= n + 1);
		run_for(x, 30 * 1000, 1000, NULL);
	}
	assert_int_equal(count(x, SCHED_EV_CA_UP, NULL, -1), 1);
	/* The probes were 6 - before failures plus the good one; all four then issued. */
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 6 + 4);
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, NULL, 1), 4);
}

/* The probe timer fires while the wall clock reads a second less than the
 * probe's time: it probes all the same (it returned without probing, and
 * without arming again: the CA was not probed until something else woke it). */
static void test_probe_with_the_wall_clock_behind(void **state)
{
	struct fx *x = *state;
	size_t before;

	fakeca_fail(x->ca, "newOrder", 1, 503, "serverInternal", -1);
	start(x, 1, NULL, NULL);
	run_for(x, 2000, 10, NULL);
	assert_int_equal(count(x, SCHED_EV_CA_DOWN, NULL, -1), 1);
	before = fakeca_count(x->ca, "newOrder");
	fakeclock_set_wall(fakeclock_wall() - 2);       /* the wall clock 2 s behind the timers */
	run_for(x, 15 * 60 * 1000, 1000, NULL);         /* well past the first probe */
	assert_true(fakeca_count(x->ca, "newOrder") > before);
	assert_int_equal(count(x, SCHED_EV_CA_UP, NULL, -1), 1);
	wait_valid(x);
}

static void test_order_ceiling_waits_for_the_hour(void **state)
{
	struct fx *x = *state;
	int64_t first;

	start(x, 3, "    orders_per_hour: 2\n    max_parallel: 1", NULL);
	run_for(x, 5000, 10, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, NULL, 1), 2);
	first = x->ev[0].at;
	/* The third waits, and says until when. */
	for (size_t i = 0; i < 3; i++) {
		struct sched_job_info ji = info(x, i);
		if (ji.phase != SCHED_QUEUED)
			continue;
		assert_true(ji.next_at >= first + 3600 - 5 && ji.next_at <= first + 3600 + 5);
	}
	run_for(x, 3500 * 1000, 10000, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	run_for(x, 200 * 1000, 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 3);
}

static void test_renew_before_longer_than_life_is_ignored(void **state)
{
	struct fx *x = *state;

	fakeca_set_lifetime(x->ca, 6 * DAY);
	start(x, 1, NULL, "    renew_before: 30d");
	wait_valid(x);
	/* 6 days: the default rule (half the life), not at once. */
	assert_true(info(x, 0).next_at >= info(x, 0).not_after - 3 * DAY - 6 * DAY / 100);
	assert_true(info(x, 0).next_at <= info(x, 0).not_after - 3 * DAY);
	run_for(x, 2 * DAY * 1000, 60 * 1000, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

static void test_ari_window_decides_and_replaces(void **state)
{
	struct fx *x = *state;
	int64_t now = clock_now();

	fakeca_set_ari_window(x->ca, now + 10 * DAY, now + 11 * DAY, 6 * 3600);
	start(x, 1, NULL, NULL);
	wait_valid(x);
	run_for(x, 1000, 10, NULL);
	assert_int_equal(fakeca_count(x->ca, "renewalInfo"), 1);
	/* Inside the window, not at a third of the life. */
	assert_true(info(x, 0).next_at >= now + 10 * DAY);
	assert_true(info(x, 0).next_at <= now + 11 * DAY);
	/* The CA moves the window to the past: renewed at the next check, with replaces. */
	fakeca_set_ari_window(x->ca, now - 2 * DAY, now - DAY, 6 * 3600);
	run_for(x, 7 * 3600 * 1000, 60 * 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_non_null(strstr(fakeca_last_new_order(x->ca), "\"replaces\""));
	/* It says "now" of the new certificate too: not obeyed twice in a row. */
	run_for(x, 2 * DAY * 1000, 60 * 1000, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_true(info(x, 0).next_at >= info(x, 0).not_before + 9 * DAY - 60);
}

/* A job's timer is armed for its ARI check; when it fires the wall clock may
 * read a second less (libevent's cached time, a slewed clock): still the ARI
 * check, never an order. (The loaded CI caught acmed renewing two certificates
 * of 35 that way.) */
static void test_ari_timer_early_by_the_wall_clock_checks_not_orders(void **state)
{
	struct fx *x = *state;
	int64_t now = clock_now();

	fakeca_set_ari_window(x->ca, now + 10 * DAY, now + 11 * DAY, 6 * 3600);
	start(x, 1, NULL, NULL);
	wait_valid(x);
	run_for(x, 1000, 10, NULL);
	assert_int_equal(fakeca_count(x->ca, "renewalInfo"), 1);
	fakeclock_set_wall(fakeclock_wall() - 2);       /* the wall clock 2 s behind the timers */
	run_for(x, 6 * 3600 * 1000 + 1000, 1000, NULL);
	assert_int_equal(fakeca_count(x->ca, "renewalInfo"), 2);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

static void test_deploy_failures_retry_without_ordering(void **state)
{
	struct fx *x = *state;

	x->deploy_ok = 0;
	start(x, 1, NULL, NULL);
	wait_valid(x);
	assert_int_equal(count(x, SCHED_EV_DEPLOY_DONE, "c0", 0), 1);
	/* 1 min later the deploy is tried again, the order is not. */
	run_for(x, 61 * 1000, 1000, NULL);
	assert_int_equal(count(x, SCHED_EV_DEPLOY_DONE, "c0", 0), 2);
	x->deploy_ok = 1;
	run_for(x, 601 * 1000, 1000, NULL);
	assert_int_equal(count(x, SCHED_EV_DEPLOY_DONE, "c0", 1), 1);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

/* ---------- `ca: [fake, second]` ---------- */

/* Which CA of the list issued the certificate in use, as `acmed status` says. */
static const char *issued_by_ca(struct fx *x, size_t i, char *buf, size_t len)
{
	json_t *st = status_from_disk_at(x->cfg, clock_now());
	const char *by = json_string_value(json_object_get(
		json_array_get(json_object_get(st, "certificates"), i), "issued_by_ca"));

	snprintf(buf, len, "%s", by ? by : "(null)");
	json_decref(st);
	return buf;
}

/* The first CA down: each order goes to the second at once, without a
 * backoff; the next renewal starts again from the first (its probe due by
 * then), which is back and issues it. */
static void test_fallback_when_the_first_ca_is_down(void **state)
{
	struct fx *x = *state;
	char by[32];

	x->two = 1;
	fakeca_fail(x->ca, "newOrder", 2, 503, "serverInternal", -1);
	start(x, 2, NULL, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 2);
	assert_int_equal(count(x, SCHED_EV_CA_DOWN, NULL, -1), 1);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(info(x, i).state->failures, 0);
		assert_string_equal(issued_by_ca(x, i, by, sizeof(by)), "second");
	}
	assert_string_equal(last(x, SCHED_EV_ORDER_DONE, "c0")->ca, "second");
	/* Both renewals fall due in the same hour: each starts from the first
	 * CA, still marked down: one order probes it (and it is back), the other
	 * does not wait for that probe and goes to the second. */
	run_for(x, (int64_t)(info(x, 0).next_at - clock_now() + 3600) * 1000, 3600 * 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2 + 1);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 2 + 1);
	assert_int_equal(count(x, SCHED_EV_CA_UP, NULL, -1), 1);
	assert_int_equal(strcmp(issued_by_ca(x, 0, by, sizeof(by)), "fake") == 0 ? 0 : 1,
			 strcmp(issued_by_ca(x, 1, by, sizeof(by)), "fake") == 0 ? 1 : 0);
	/* The CA is up: the next renewals are both its own. */
	int64_t both = info(x, 0).next_at > info(x, 1).next_at ? info(x, 0).next_at : info(x, 1).next_at;
	run_for(x, (both - clock_now() + 3600) * 1000, 3600 * 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 3 + 2);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 3);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(issued_by_ca(x, i, by, sizeof(by)), "fake");
}

/* A failure of this certificate at the first CA (rejectedIdentifier, a long
 * rate limit): at once at the second, no failure counted; a short rate limit
 * is waited out at the same CA. */
static void test_fallback_on_a_certificate_failure(void **state)
{
	struct fx *x = *state;
	char by[32];

	x->two = 1;
	fakeca_fail(x->ca, "newOrder", 1, 400, "rejectedIdentifier", -1);
	start(x, 1, NULL, NULL);
	run_for(x, 2000, 10, all_valid);
	assert_true(all_valid(x));
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 1);
	assert_string_equal(issued_by_ca(x, 0, by, sizeof(by)), "second");
	assert_int_equal(info(x, 0).state->failures, 0);
	assert_int_equal(count(x, SCHED_EV_ORDER_DONE, "c0", 0), 1);

	/* The renewal: the first CA rate-limits for 2 days, then for 60 s. */
	fakeca_fail(x->ca, "newOrder", 1, 429, "rateLimited", 2 * DAY);
	assert_int_equal(sched_renew_now(x->s, "c0", 1), 0);
	run_for(x, 2000, 10, NULL);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 2);
	assert_string_equal(issued_by_ca(x, 0, by, sizeof(by)), "second");
	fakeca_fail(x->ca, "newOrder", 1, 429, "rateLimited", 60);
	assert_int_equal(sched_renew_now(x->s, "c0", 1), 0);
	run_for(x, 2000, 10, NULL);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 3);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 2);
	assert_int_equal(info(x, 0).phase, SCHED_BACKOFF);
	run_for(x, 61 * 1000, 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 4);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 2);
	assert_string_equal(issued_by_ca(x, 0, by, sizeof(by)), "fake");
}

/* Every CA of the list refuses: one failure, its backoff, then the first CA again. */
static void test_fallback_all_refuse_backs_off_from_the_first(void **state)
{
	struct fx *x = *state;
	char by[32];

	x->two = 1;
	fakeca_fail(x->ca, "newOrder", 1, 400, "caa", -1);
	fakeca_fail(x->ca2, "newOrder", 1, 400, "caa", -1);
	start(x, 1, NULL, NULL);
	run_for(x, 2000, 10, NULL);
	assert_int_equal(info(x, 0).phase, SCHED_BACKOFF);
	assert_int_equal(info(x, 0).state->failures, 1);
	assert_int_equal(info(x, 0).next_at - last(x, SCHED_EV_ORDER_DONE, "c0")->at, 60);
	assert_int_equal(fakeca_count(x->ca, "newOrder") + fakeca_count(x->ca2, "newOrder"), 2);
	run_for(x, 61 * 1000, 1000, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 1);
	assert_string_equal(issued_by_ca(x, 0, by, sizeof(by)), "fake");
}

/* "replaces" names a certificate to the CA that issued it, never to another
 * CA of the list (Pebble refuses it: "requester account did not request the
 * certificate being replaced"). */
static void test_fallback_replaces_only_at_the_issuer(void **state)
{
	struct fx *x = *state;

	x->two = 1;
	fakeca_set_ari(x->ca, 1);
	fakeca_set_ari(x->ca2, 1);
	fakeca_fail(x->ca, "newOrder", 1, 400, "rejectedIdentifier", -1);
	start(x, 1, NULL, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca2, "newOrder"), 1);
	/* renewed: by the first CA, which did not issue the certificate in use */
	assert_int_equal(sched_renew_now(x->s, "c0", 1), 0);
	run_for(x, 2000, 10, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_null(strstr(fakeca_last_new_order(x->ca), "\"replaces\""));
	/* and again: now it did */
	assert_int_equal(sched_renew_now(x->s, "c0", 1), 0);
	run_for(x, 2000, 10, NULL);
	wait_valid(x);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 3);
	assert_non_null(strstr(fakeca_last_new_order(x->ca), "\"replaces\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stop_during_startup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_of_another_account_not_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_then_renew_at_a_third, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certificate_failures_back_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_probes_one_order_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_with_the_wall_clock_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_ceiling_waits_for_the_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renew_before_longer_than_life_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ari_window_decides_and_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ari_timer_early_by_the_wall_clock_checks_not_orders, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deploy_failures_retry_without_ordering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_when_the_first_ca_is_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_on_a_certificate_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_all_refuse_backs_off_from_the_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fallback_replaces_only_at_the_issuer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
