/* test_dns_records.c - unit tests for dns_records.c: the TXT records dns-01 publishes through an in-test provider, shared, in state_dir/dns/records.json (the real file store on its I/O thread) before the provider is asked, withdrawn by the last release, an earlier run's left-overs removed at start; events and their order, never timing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "db.h"
#include "db_file.h"
#include "dns_provider.h"
#include "dns_records.h"
#include "fakeclock.h"
#include "log.h"
#include "testutil.h"
#include "worker.h"

#define SAFETY_S 60     /* real seconds before a wait that never ends fails the test */

#define ZONE   "example.test."
#define FQDN_A "_acme-challenge.a.example.test."
#define FQDN_B "_acme-challenge.b.example.test."
#define FQDN_C "_acme-challenge.c.example.test."
#define FQDN_D "_acme-challenge.d.example.test."

static struct event_base *base;
static struct worker *io;
static struct db *db;
static struct dns_records *rs;
static char dir[64];
static char records_json[128];          /* dir/dns/records.json */
static char log_path[128];
static int saved_stderr = -1;
static unsigned tick;                   /* orders the events a test saw */

/* ---- files ---- */

/* Entries of a records.json text matching (provider, fqdn, value) (NULL: any);
 * -1 when there is no text or it is not the expected JSON. */
static int in_json(const char *text, const char *provider, const char *fqdn, const char *value)
{
	json_t *root, *arr, *v;
	size_t i;
	int n = 0;

	if (!text || !(root = json_loads(text, 0, NULL)))
		return -1;
	arr = json_object_get(root, "records");
	if (!json_is_array(arr)) {
		json_decref(root);
		return -1;
	}
	json_array_foreach(arr, i, v) {
		const char *p = json_string_value(json_object_get(v, "provider"));
		const char *f = json_string_value(json_object_get(v, "fqdn"));
		const char *x = json_string_value(json_object_get(v, "value"));

		if ((!provider || (p && !strcmp(p, provider))) && (!fqdn || (f && !strcmp(f, fqdn))) &&
		    (!value || (x && !strcmp(x, value))))
			n++;
	}
	json_decref(root);
	return n;
}

/* The same, of records.json as it is on disk now. */
static int on_disk(const char *provider, const char *fqdn, const char *value)
{
	char *s = slurp(records_json);
	int n = in_json(s, provider, fqdn, value);

	free(s);
	return n;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* ---- the log (log.c writes to stderr) ---- */

static int logged(const char *needle)
{
	int found;

	fflush(stderr);
	found = file_has(log_path, needle);
	assert_true(found >= 0);
	return found;
}

/* ---- the in-test provider ---- */

struct tprov;

struct dns_prov_op {
	struct dns_prov_op *next;
	struct tprov *tp;
	size_t call;                    /* its entry in calls[] */
	int add;
	dns_prov_done_fn done;
	void *arg;
};

struct tprov {
	struct dns_prov p;
	struct event *ev;               /* completes the first change waiting: a zero timer */
	struct dns_prov_op *head, **tail;
	int hold;                       /* changes wait for resume() */
	int refuse;                     /* change() cannot start (returns NULL) */
	int findable;                   /* the find function knows it */
	enum acme_err_class add_err, del_err;   /* what the next adds / withdrawals end with */
	size_t idle, cancels;
};

/* Every change asked of a provider, in order. */
#define MAXCALLS 64
struct call {
	struct tprov *tp;
	int add;
	char zone[128], fqdn[256], value[128], identifier[128];
	char *file;                     /* records.json when change() was called */
	int refused;                    /* change() returned NULL */
	int done;                       /* completed: with result */
	enum acme_err_class result;
	unsigned asked_at, done_at;
};
static struct call calls[MAXCALLS];
static size_t ncalls;

static void arm(struct tprov *tp)
{
	struct timeval zero = { 0, 0 };

	if (!tp->hold && tp->head && !evtimer_pending(tp->ev, NULL))
		evtimer_add(tp->ev, &zero);
}

static void complete_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tprov *tp = arg;
	struct dns_prov_op *op = tp->head;
	struct call *c;
	enum acme_err_class err;
	char msg[300];

	if (!op || tp->hold)
		return;
	if (!(tp->head = op->next))
		tp->tail = &tp->head;
	arm(tp);                        /* the next one from the loop, whatever done does */
	c = &calls[op->call];
	err = op->add ? tp->add_err : tp->del_err;
	c->done = 1;
	c->result = err;
	c->done_at = ++tick;
	snprintf(msg, sizeof(msg), "test provider %s: %s of %s refused", tp->p.name, op->add ? "add" : "withdrawal",
		 c->value);
	op->done(op->arg, err, err == ACME_ERR_NONE ? NULL : msg);
	free(op);
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static struct dns_prov_op *tp_change(struct dns_prov *p, const struct dns_change_req *rq, dns_prov_done_fn done,
				     void *arg)
{
	struct tprov *tp = (struct tprov *)p;
	struct dns_prov_op *op;
	struct call *c;

	assert_true(ncalls < MAXCALLS);
	c = &calls[ncalls];
	memset(c, 0, sizeof(*c));
	c->tp = tp;
	c->add = rq->add;
	copy(c->zone, sizeof(c->zone), rq->zone);
	copy(c->fqdn, sizeof(c->fqdn), rq->fqdn);
	copy(c->value, sizeof(c->value), rq->value);
	copy(c->identifier, sizeof(c->identifier), rq->identifier);
	c->file = slurp(records_json);
	c->asked_at = ++tick;
	if (tp->refuse) {
		c->refused = 1;
		ncalls++;
		return NULL;
	}
	op = calloc(1, sizeof(*op));
	assert_non_null(op);
	op->tp = tp;
	op->call = ncalls++;
	op->add = rq->add;
	op->done = done;
	op->arg = arg;
	*tp->tail = op;
	tp->tail = &op->next;
	arm(tp);
	return op;
}

static void tp_cancel(struct dns_prov *p, struct dns_prov_op *op)
{
	struct tprov *tp = (struct tprov *)p;

	tp->cancels++;
	for (struct dns_prov_op **pp = &tp->head; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			if (!(*pp = op->next))
				tp->tail = pp;
			free(op);
			return;
		}
	fail_msg("cancel of a change that is not pending");
}

static void tp_free(struct dns_prov *p)
{
	struct tprov *tp = (struct tprov *)p;

	while (tp->head) {
		struct dns_prov_op *op = tp->head;

		tp->head = op->next;
		free(op);
	}
	event_free(tp->ev);
	free(tp->p.name);
	free(tp->p.cfg.server);
	free(tp);
}

static const struct dns_prov_ops ops_rfc = { .type = "rfc2136", .withdraws = 1, .change = tp_change,
					     .cancel = tp_cancel, .free = tp_free };
static const struct dns_prov_ops ops_exec = { .type = "exec", .withdraws = 1, .change = tp_change,
					      .cancel = tp_cancel, .free = tp_free };
static const struct dns_prov_ops ops_adns = { .type = "acme-dns", .withdraws = 0, .change = tp_change,
					      .cancel = tp_cancel, .free = tp_free };

static struct tprov *P, *X, *A, *G;     /* "p" (rfc2136), "x" (exec), "a" (acme-dns), "gone" (not findable) */
static struct tprov *P2;                /* NULL, or what a reload made of "p" (found instead of P) */

/* server: where it makes its changes (config_dns_provider_same_place); the
 * name by default. */
static struct tprov *tp_new_at(const struct dns_prov_ops *ops, const char *name, int findable, const char *server)
{
	struct tprov *tp = calloc(1, sizeof(*tp));

	assert_non_null(tp);
	tp->p.ops = ops;
	tp->p.name = strdup(name);
	tp->p.cfg.type = ops->type[0] == 'r' ? CONFIG_DNS_RFC2136 : ops->type[0] == 'e' ? CONFIG_DNS_EXEC :
			 CONFIG_DNS_ACMEDNS;
	tp->p.cfg.server = strdup(server);
	tp->ev = evtimer_new(base, complete_cb, tp);
	assert_non_null(tp->ev);
	tp->tail = &tp->head;
	tp->findable = findable;
	return tp;
}

static struct tprov *tp_new(const struct dns_prov_ops *ops, const char *name, int findable)
{
	return tp_new_at(ops, name, findable, name);
}

static void resume(struct tprov *tp)
{
	tp->hold = 0;
	arm(tp);
}

static size_t pending_ops(const struct tprov *tp)
{
	size_t n = 0;

	for (const struct dns_prov_op *op = tp->head; op; op = op->next)
		n++;
	return n;
}

static struct dns_prov *find(void *arg, const char *name)
{
	struct tprov *all[] = { P2 ? P2 : P, X, A, G };

	(void)arg;
	for (size_t i = 0; i < 4; i++)
		if (all[i]->findable && !strcmp(all[i]->p.name, name))
			return &all[i]->p;
	return NULL;
}

static void idle(void *arg, struct dns_prov *p)
{
	(void)arg;
	((struct tprov *)p)->idle++;
}

/* ---- the loop ---- */

/* Run until nothing is left to happen (the store's thread finished, no
 * change completing, nothing kicked): a held provider's changes wait. */
static void settle(void)
{
	time_t end = time(NULL) + SAFETY_S;

	/* what is due now (the fake clock moved); a retry a minute away is not waited for */
	event_base_loop(base, EVLOOP_NONBLOCK);
	while (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) >
	       (rs && dns_records_retry_pending(rs) ? 1 : 0)) {
		if (time(NULL) > end)
			fail_msg("waited %d s for the loop to settle", SAFETY_S);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/* ---- an answer holding a reference ---- */

static int in_publish;

struct ans {
	struct dns_record_ref *ref;
	struct tprov *tp;
	const char *fqdn, *value;
	int calls, inside_publish;
	enum acme_err_class err;
	char msg[300];
	unsigned at;
	/* what its callback does */
	struct ans *release_other;
	int release_self;
	struct ans *publish;            /* publishes this one, sharing the record */
};

static void publish_ref(struct ans *a, struct tprov *tp, const char *fqdn, const char *value);

static void on_record(void *arg, enum acme_err_class err, const char *msg)
{
	struct ans *a = arg;

	a->calls++;
	a->inside_publish |= in_publish;
	a->err = err;
	a->at = ++tick;
	copy(a->msg, sizeof(a->msg), msg);
	if (a->publish)
		publish_ref(a->publish, a->tp, a->fqdn, a->value);
	if (a->release_other) {
		dns_records_release(a->release_other->ref);
		a->release_other->ref = NULL;
	}
	if (a->release_self) {
		dns_records_release(a->ref);
		a->ref = NULL;
	}
}

static void publish_ref(struct ans *a, struct tprov *tp, const char *fqdn, const char *value)
{
	struct dns_publish pub = { .prov = &tp->p, .zone = ZONE, .fqdn = fqdn, .value = value,
				   .identifier = "a.example.test", .cert_name = "web" };

	a->tp = tp;
	a->fqdn = fqdn;
	a->value = value;
	in_publish++;
	a->ref = dns_records_publish(rs, &pub, on_record, a);
	in_publish--;
	assert_non_null(a->ref);
}

/* From the test (not a callback): never answered inside publish. */
static void publish(struct ans *a, struct tprov *tp, const char *fqdn, const char *value)
{
	publish_ref(a, tp, fqdn, value);
	assert_int_equal(a->calls, 0);
}

static void release(struct ans *a)
{
	dns_records_release(a->ref);
	a->ref = NULL;
}

/* dns_records_load() started (publishing waits for it). */
static void start_records(void)
{
	rs = dns_records_new(base, db, find, idle, NULL);
	assert_non_null(rs);
	dns_records_load(rs);
}

/* ... and done, as when a daemon has been up a while. */
static void start_records_loaded(void)
{
	start_records();
	settle();
	assert_int_equal(ncalls, 0);
}

static void assert_call(size_t i, struct tprov *tp, int add, const char *fqdn, const char *value)
{
	assert_true(i < ncalls);
	assert_ptr_equal(calls[i].tp, tp);
	assert_int_equal(calls[i].add, add);
	assert_string_equal(calls[i].fqdn, fqdn);
	assert_string_equal(calls[i].value, value);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	int fd;

	(void)state;
	fakeclock_freeze();             /* timers move only when a test moves the clock */
	snprintf(dir, sizeof(dir), "/tmp/acmed-test-dnsrec-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(records_json, sizeof(records_json), "%s/dns/records.json", dir);
	snprintf(log_path, sizeof(log_path), "%s/stderr.log", dir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
	base = event_base_new();
	assert_non_null(base);
	io = worker_new(base, "test-io");
	assert_non_null(io);
	db = db_file_new(dir, io);
	assert_non_null(db);
	P = tp_new(&ops_rfc, "p", 1);
	X = tp_new(&ops_exec, "x", 1);
	A = tp_new(&ops_adns, "a", 1);
	G = tp_new(&ops_rfc, "gone", 0);
	P2 = NULL;
	rs = NULL;
	ncalls = 0;
	tick = 0;
	in_publish = 0;
	return 0;
}

static int teardown(void **state)
{
	char *log;

	(void)state;
	dns_records_free(rs);
	rs = NULL;
	worker_free(io);
	db_free(db);
	tp_free(&P->p);
	tp_free(&X->p);
	tp_free(&A->p);
	tp_free(&G->p);
	if (P2)
		tp_free(&P2->p);
	event_base_free(base);
	for (size_t i = 0; i < ncalls; i++)
		free(calls[i].file);
	ncalls = 0;
	fflush(stderr);
	log = slurp(log_path);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	if (log)
		fputs(log, stderr);
	free(log);
	rm_rf(dir);
	return 0;
}

/* ---- 1. published after it is on disk, withdrawn by the release ---- */

static void test_publish_then_withdraw(void **state)
{
	struct ans a = { 0 };

	(void)state;
	start_records_loaded();
	P->hold = 1;
	publish(&a, P, FQDN_A, "v1");
	assert_true(dns_records_busy(rs) >= 1);
	settle();
	/* asked once records.json listed it, not before */
	assert_int_equal(ncalls, 1);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_string_equal(calls[0].zone, ZONE);
	assert_string_equal(calls[0].identifier, "a.example.test");
	assert_int_equal(in_json(calls[0].file, "p", FQDN_A, "v1"), 1);
	assert_int_equal(in_json(calls[0].file, NULL, NULL, NULL), 1);
	assert_int_equal(a.calls, 0);           /* not before the provider is done */
	resume(P);
	settle();
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, ACME_ERR_NONE);
	assert_int_equal(a.inside_publish, 0);
	assert_true(calls[0].done_at < a.at);
	assert_int_equal(dns_records_busy(rs), 1);
	assert_int_equal(dns_records_count(rs), 1);
	assert_int_equal(dns_records_using(rs, &P->p), 1);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	assert_int_equal(P->idle, 0);

	release(&a);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_string_equal(calls[1].zone, ZONE);
	assert_int_equal(in_json(calls[1].file, "p", FQDN_A, "v1"), 1);  /* still remembered while it goes */
	assert_int_equal(calls[1].done, 1);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(dns_records_using(rs, &P->p), 0);
	assert_int_equal(P->idle, 1);
	assert_int_equal(a.calls, 1);
}

/* ---- 2. two answers, one record ---- */

static void test_shared(void **state)
{
	struct ans a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	start_records_loaded();
	/* both before the add completed */
	P->hold = 1;
	publish(&a, P, FQDN_A, "v1");
	publish(&b, P, FQDN_A, "v1");
	assert_int_equal(dns_records_count(rs), 1);
	settle();
	assert_int_equal(ncalls, 1);
	assert_int_equal(a.calls + b.calls, 0);
	resume(P);
	settle();
	assert_int_equal(ncalls, 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.err, ACME_ERR_NONE);
	assert_int_equal(b.err, ACME_ERR_NONE);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);         /* one entry */

	/* a third once it is published: answered from the loop */
	publish(&c, P, FQDN_A, "v1");
	assert_int_equal(dns_records_count(rs), 1);
	settle();
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.err, ACME_ERR_NONE);
	assert_int_equal(c.inside_publish, 0);
	assert_int_equal(ncalls, 1);
	assert_int_equal(a.calls, 1);           /* the others are not told twice */
	assert_int_equal(b.calls, 1);

	release(&a);
	settle();
	release(&b);
	settle();
	assert_int_equal(ncalls, 1);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	assert_int_equal(dns_records_busy(rs), 1);
	release(&c);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* ---- 3. a wildcard and its base name: one name, two values ---- */

static void test_wildcard_and_base(void **state)
{
	struct ans base_ = { 0 }, wild = { 0 };

	(void)state;
	start_records_loaded();
	publish(&base_, P, FQDN_A, "vbase");
	publish(&wild, P, FQDN_A, "vwild");
	assert_int_equal(dns_records_count(rs), 2);
	settle();
	assert_int_equal(ncalls, 2);
	assert_true(calls[0].add && calls[1].add);
	assert_string_equal(calls[0].fqdn, FQDN_A);
	assert_string_equal(calls[1].fqdn, FQDN_A);
	assert_true((!strcmp(calls[0].value, "vbase") && !strcmp(calls[1].value, "vwild")) ||
		    (!strcmp(calls[0].value, "vwild") && !strcmp(calls[1].value, "vbase")));
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(in_json(calls[i].file, "p", FQDN_A, calls[i].value), 1);
	assert_int_equal(base_.calls, 1);
	assert_int_equal(wild.calls, 1);
	assert_int_equal(on_disk("p", FQDN_A, NULL), 2);

	release(&wild);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P, 0, FQDN_A, "vwild");
	assert_int_equal(on_disk("p", FQDN_A, "vwild"), 0);
	assert_int_equal(on_disk("p", FQDN_A, "vbase"), 1);
	assert_int_equal(dns_records_busy(rs), 1);

	release(&base_);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P, 0, FQDN_A, "vbase");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* ---- 4. released early ---- */

static void test_release_early(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	/* while the add is under way: the withdrawal follows its completion */
	P->hold = 1;
	publish(&a, P, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 1);
	release(&a);
	settle();
	assert_int_equal(ncalls, 1);            /* nothing before the add is done */
	assert_int_equal(dns_records_busy(rs), 1);
	resume(P);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_true(calls[0].done_at < calls[1].asked_at);
	assert_int_equal(a.calls, 0);           /* released: never told */
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);

	/* while it is being written, before the provider was asked: nothing asked at all */
	publish(&b, P, FQDN_B, "v2");
	assert_true(dns_records_busy(rs) >= 1);
	release(&b);
	settle();
	assert_int_equal(ncalls, 2);
	assert_int_equal(b.calls, 0);
	assert_int_equal(on_disk(NULL, FQDN_B, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(P->idle, 2);
}

/* ---- 5. the add fails ---- */

static void test_add_fails(void **state)
{
	struct ans a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	start_records_loaded();
	/* a refused UPDATE did nothing: nothing to withdraw (the answer lets go
	 * in its callback, as the order does) */
	P->add_err = ACME_ERR_CERT;
	a.release_self = 1;
	publish(&a, P, FQDN_A, "v1");
	settle();
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, ACME_ERR_CERT);
	assert_string_equal(a.msg, "test provider p: add of v1 refused");
	assert_int_equal(ncalls, 1);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(P->idle, 1);

	/* an exec hook may have done half of it: withdrawn after the failed add */
	X->add_err = ACME_ERR_UNAVAILABLE;
	b.release_self = 1;
	publish(&b, X, FQDN_B, "v2");
	settle();
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_UNAVAILABLE);
	assert_string_equal(b.msg, "test provider x: add of v2 refused");
	assert_int_equal(ncalls, 3);
	assert_call(1, X, 1, FQDN_B, "v2");
	assert_call(2, X, 0, FQDN_B, "v2");
	assert_true(calls[1].done_at < calls[2].asked_at);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);

	/* an UPDATE whose answer was lost (or could not be read) may have been made:
	 * withdrawn too, not forgotten */
	P->add_err = ACME_ERR_UNAVAILABLE;
	b.calls = 0;
	b.release_self = 1;
	publish(&b, P, FQDN_B, "v4");
	settle();
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(ncalls, 5);
	assert_call(3, P, 1, FQDN_B, "v4");
	assert_call(4, P, 0, FQDN_B, "v4");
	assert_true(calls[3].done_at < calls[4].asked_at);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	P->add_err = ACME_ERR_CERT;

	/* a provider that cannot even start the change */
	P->refuse = 1;
	c.release_self = 1;
	publish(&c, P, FQDN_C, "v3");
	settle();
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.err, ACME_ERR_CERT);
	assert_string_equal(c.msg, "the DNS provider cannot publish it (see the log)");
	assert_int_equal(ncalls, 6);
	assert_true(calls[5].refused);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
}

/* The answer told of the failure lets go later (from the loop, not in its
 * callback): the record must still go, without a withdrawal (not exec). */
static void test_add_fails_released_later(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	P->add_err = ACME_ERR_CERT;
	publish(&a, P, FQDN_A, "v1");
	settle();
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, ACME_ERR_CERT);
	assert_int_equal(ncalls, 1);

	/* the same record asked again meanwhile is not given the failed one */
	P->add_err = ACME_ERR_NONE;
	publish(&b, P, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 1, FQDN_A, "v1");
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_NONE);

	release(&a);
	settle();
	assert_int_equal(ncalls, 2);            /* a refused add: nothing to withdraw */
	/* a record whose add failed, released after its callback, goes (not R_ADDING for ever) */
	assert_int_equal(dns_records_count(rs), 1);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);      /* b's */
	assert_int_equal(dns_records_busy(rs), 1);

	release(&b);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(dns_records_using(rs, &P->p), 0);
}

/* ---- 6. the withdrawal fails ---- */

static void test_withdraw_fails(void **state)
{
	struct ans a = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	assert_int_equal(a.calls, 1);
	P->del_err = ACME_ERR_UNAVAILABLE;
	release(&a);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_int_equal(calls[1].result, ACME_ERR_UNAVAILABLE);
	/* kept for later, not waited for */
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 1);
	assert_int_equal(dns_records_using(rs, &P->p), 0);
	assert_int_equal(P->idle, 1);
	assert_true(logged("could not remove TXT v1 at " FQDN_A ": test provider p: withdrawal of v1 refused; "
			   "trying again in 60 s"));
	/* tried again a minute later, and again two minutes after that */
	assert_int_equal(dns_records_retry_pending(rs), 1);
	fakeclock_advance_ms(59000);
	settle();
	assert_int_equal(ncalls, 2);
	fakeclock_advance_ms(1000);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P, 0, FQDN_A, "v1");
	assert_true(logged("trying again in 120 s"));
	assert_int_equal(dns_records_retry_pending(rs), 1);

	/* a reload without the provider: nothing asked, said in the log */
	P->findable = 0;
	dns_records_retry(rs);
	settle();
	assert_int_equal(ncalls, 3);
	assert_true(logged("through dns provider p, which is not configured now; remove it by hand"));
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);

	/* with it: withdrawn again */
	P->findable = 1;
	P->del_err = ACME_ERR_NONE;
	dns_records_retry(rs);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P, 0, FQDN_A, "v1");
	assert_string_equal(calls[3].zone, ZONE);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* A value whose withdrawal failed, published again (the order kept the CA's
 * authorization: the same token, the same value), then a reload: the
 * left-over must not take away the value the new answer is waiting on. */
static void test_withdraw_fails_then_same_value_again(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P->del_err = ACME_ERR_UNAVAILABLE;
	release(&a);
	settle();
	assert_int_equal(ncalls, 2);
	P->del_err = ACME_ERR_NONE;
	publish(&b, P, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P, 1, FQDN_A, "v1");
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_NONE);

	dns_records_retry(rs);  /* a reload */
	settle();
	/* the left-over of the failed withdrawal is not withdrawn while a live record of the
	 * same provider, name and value needs it */
	assert_int_equal(ncalls, 3);
	assert_int_equal(b.ref != NULL, 1);
	release(&b);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* ---- 6b. the same TXT through two providers (a reload replaced "p") ---- */

/* The record the old provider published is wanted again through its
 * successor (same server, say a new TSIG key): the old one's release does not
 * withdraw it from under the new one, which withdraws it in its time. */
static void test_reload_hands_over_the_same_txt(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P2 = tp_new(&ops_rfc, "p", 1);
	publish(&b, P2, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P2, 1, FQDN_A, "v1");
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_NONE);

	release(&a);
	settle();
	assert_int_equal(ncalls, 2);            /* no withdrawal through P */
	assert_true(logged("dns-01: TXT v1 at " FQDN_A " stays, published again through dns provider p"));
	assert_int_equal(dns_records_using(rs, &P->p), 0);
	assert_int_equal(P->idle, 1);           /* the old provider can go */
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);

	release(&b);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P2, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* The old provider's withdrawal is under way when the successor is asked for
 * the same TXT: the add waits for it, or it could land first and be undone. */
static void test_reload_add_waits_for_the_removal(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P->hold = 1;
	release(&a);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 0, FQDN_A, "v1");
	P2 = tp_new(&ops_rfc, "p", 1);
	publish(&b, P2, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 2);            /* waiting */
	assert_int_equal(b.calls, 0);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 2);

	resume(P);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P2, 1, FQDN_A, "v1");
	assert_true(calls[1].done_at < calls[2].asked_at);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_NONE);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	release(&b);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P2, 0, FQDN_A, "v1");
	assert_int_equal(dns_records_busy(rs), 0);
}

/* A provider of that name that now changes another server: not the same TXT,
 * each withdrawn where it was added, neither waiting for the other. */
static void test_other_server_is_another_txt(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P->hold = 1;
	release(&a);
	settle();
	P2 = tp_new_at(&ops_rfc, "p", 1, "elsewhere");
	publish(&b, P2, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_call(2, P2, 1, FQDN_A, "v1");
	assert_int_equal(b.calls, 1);
	resume(P);
	release(&b);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P2, 0, FQDN_A, "v1");
	assert_int_equal(dns_records_busy(rs), 0);
}

/* The successor's add fails after it took the TXT over: the TXT the old one
 * added is there all the same, so it is withdrawn. */
static void test_successor_failing_withdraws_what_it_took_over(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P2 = tp_new(&ops_rfc, "p", 1);
	P2->hold = 1;
	P2->add_err = ACME_ERR_CERT;
	publish(&b, P2, FQDN_A, "v1");
	settle();
	release(&a);
	settle();
	assert_int_equal(ncalls, 2);            /* handed over, not withdrawn */
	resume(P2);
	settle();
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_CERT);
	release(&b);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P2, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* Two entries with different names for one server (another key each): the
 * same TXT all the same. */
static void test_two_names_one_server(void **state)
{
	struct ans a = { 0 }, b = { 0 };
	struct tprov *Q = tp_new_at(&ops_rfc, "q", 1, "p");

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	publish(&b, Q, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, Q, 1, FQDN_A, "v1");
	release(&a);
	settle();
	assert_int_equal(ncalls, 2);
	assert_true(logged("dns-01: TXT v1 at " FQDN_A " stays, published again through dns provider q"));
	release(&b);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, Q, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	dns_records_free(rs);   /* before Q */
	rs = NULL;
	tp_free(&Q->p);
}

/* The successor cannot even start its add (its provider refuses at once)
 * after it took the TXT over: the TXT is withdrawn all the same, later if
 * the provider refuses that too. Without a store, so that the release and
 * the publication are taken in one go (releases first). */
static void test_successor_refusing_at_once_withdraws_what_it_took_over(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	rs = dns_records_new(base, NULL, find, idle, NULL);
	assert_non_null(rs);
	dns_records_load(rs);
	publish(&a, P, FQDN_A, "v1");
	settle();
	P2 = tp_new(&ops_rfc, "p", 1);
	P2->refuse = 1;
	publish(&b, P2, FQDN_A, "v1");
	release(&a);            /* a hands over to b before b's add is tried */
	settle();
	assert_true(logged("stays, published again through dns provider p"));
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_CERT);
	assert_int_equal(ncalls, 2);
	assert_call(1, P2, 1, FQDN_A, "v1");
	assert_int_equal(calls[1].refused, 1);
	release(&b);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P2, 0, FQDN_A, "v1");
	assert_int_equal(calls[2].refused, 1);
	assert_int_equal(dns_records_count(rs), 1);             /* not forgotten */
	P2->refuse = 0;
	fakeclock_advance_ms(60000);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P2, 0, FQDN_A, "v1");
	assert_int_equal(calls[3].done, 1);
	assert_int_equal(dns_records_count(rs), 0);
}

/* The old provider's withdrawal fails while the successor's add waits for
 * it: the add goes, and the left-over is not withdrawn from under it later. */
static void test_waiting_add_goes_when_the_removal_fails(void **state)
{
	struct ans a = { 0 }, b = { 0 };

	(void)state;
	start_records_loaded();
	publish(&a, P, FQDN_A, "v1");
	settle();
	P->hold = 1;
	P->del_err = ACME_ERR_UNAVAILABLE;
	release(&a);
	settle();
	P2 = tp_new(&ops_rfc, "p", 1);
	publish(&b, P2, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 2);            /* waiting */
	resume(P);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P2, 1, FQDN_A, "v1");
	assert_true(calls[1].done_at < calls[2].asked_at);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, ACME_ERR_NONE);
	/* the failed withdrawal's retry: the live record stands for it */
	fakeclock_advance_ms(60000);
	settle();
	assert_int_equal(ncalls, 3);
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	assert_int_equal(dns_records_count(rs), 1);
	release(&b);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P2, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
}

/* ---- 7. what an earlier run left ---- */

static void test_crash_recovery(void **state)
{
	struct ans a = { 0 };
	char dns_dir[128];

	(void)state;
	snprintf(dns_dir, sizeof(dns_dir), "%s/dns", dir);
	assert_int_equal(mkdir(dns_dir, 0700), 0);
	write_file(records_json,
		   "{\"records\":[{\"provider\":\"p\",\"zone\":\"example.test.\",\"fqdn\":\"" FQDN_A "\","
		   "\"value\":\"v1\",\"identifier\":\"a.example.test\"},"
		   "{\"provider\":\"gone\",\"zone\":\"example.test.\",\"fqdn\":\"" FQDN_B "\","
		   "\"value\":\"v9\",\"identifier\":\"b.example.test\"}]}");
	start_records();
	/* right after load() started: waits for the file to be read */
	publish(&a, P, FQDN_C, "v2");
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(0, P, 0, FQDN_A, "v1");
	assert_string_equal(calls[0].zone, "example.test.");
	assert_string_equal(calls[0].identifier, "a.example.test");
	assert_call(1, P, 1, FQDN_C, "v2");
	assert_int_equal(in_json(calls[1].file, "p", FQDN_C, "v2"), 1);
	assert_int_equal(in_json(calls[1].file, "gone", FQDN_B, "v9"), 1);       /* not forgotten */
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, ACME_ERR_NONE);
	assert_true(logged("removing TXT v1 at " FQDN_A ", left by an earlier run"));
	assert_true(logged("TXT v9 at " FQDN_B " was published by an earlier run through dns provider gone, "
			   "which is not configured now; remove it by hand"));
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 0);
	assert_int_equal(on_disk("gone", FQDN_B, "v9"), 1);
	assert_int_equal(on_disk("p", FQDN_C, "v2"), 1);
	assert_int_equal(dns_records_busy(rs), 1);             /* v2; not the one left for later */
	assert_int_equal(dns_records_count(rs), 2);

	release(&a);
	settle();
	assert_int_equal(ncalls, 3);
	assert_call(2, P, 0, FQDN_C, "v2");
	assert_int_equal(on_disk(NULL, NULL, NULL), 1);
	assert_int_equal(on_disk("gone", FQDN_B, "v9"), 1);
	assert_int_equal(dns_records_busy(rs), 0);

	/* a reload brings its provider back */
	G->findable = 1;
	dns_records_retry(rs);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, G, 0, FQDN_B, "v9");
	assert_string_equal(calls[3].identifier, "b.example.test");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(G->idle, 1);
}

/* A damaged records.json is said and ignored; publishing goes on. */
static void test_damaged_file(void **state)
{
	struct ans a = { 0 };
	char dns_dir[128];

	(void)state;
	snprintf(dns_dir, sizeof(dns_dir), "%s/dns", dir);
	assert_int_equal(mkdir(dns_dir, 0700), 0);
	write_file(records_json, "{\"records\":[{\"provider\":");
	start_records();
	publish(&a, P, FQDN_A, "v1");
	settle();
	assert_true(logged("damaged; ignored"));
	assert_int_equal(ncalls, 1);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_int_equal(a.calls, 1);
	assert_int_equal(on_disk(NULL, NULL, NULL), 1);
	release(&a);
	settle();
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
}

/* ---- 8. callbacks letting go ---- */

static void test_callbacks_release(void **state)
{
	struct ans a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 }, f = { 0 }, g = { 0 }, h = { 0 };

	(void)state;
	start_records_loaded();
	/* two answers; whichever is told first lets go of both */
	a.release_other = &b;
	a.release_self = 1;
	b.release_other = &a;
	b.release_self = 1;
	publish(&a, P, FQDN_A, "v1");
	publish(&b, P, FQDN_A, "v1");
	settle();
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(ncalls, 2);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);

	/* one lets go of itself only: the other is still told, and holds it */
	c.release_self = 1;
	d.release_self = 1;
	publish(&c, P, FQDN_B, "v2");
	publish(&e, P, FQDN_B, "v2");
	publish(&d, P, FQDN_B, "v2");
	settle();
	assert_int_equal(c.calls, 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(e.calls, 1);
	assert_int_equal(ncalls, 3);
	assert_int_equal(on_disk("p", FQDN_B, "v2"), 1);
	release(&e);
	settle();
	assert_int_equal(ncalls, 4);
	assert_call(3, P, 0, FQDN_B, "v2");

	/* shared once published (told from the loop): the newcomer lets go of both */
	publish(&f, P, FQDN_C, "v3");
	settle();
	assert_int_equal(f.calls, 1);
	g.release_other = &f;
	g.release_self = 1;
	publish(&g, P, FQDN_C, "v3");
	settle();
	assert_int_equal(g.calls, 1);
	assert_int_equal(f.calls, 1);
	assert_int_equal(ncalls, 6);
	assert_call(4, P, 1, FQDN_C, "v3");
	assert_call(5, P, 0, FQDN_C, "v3");

	/* a callback sharing the record anew, then letting go of its own: the
	 * newcomer is told from the loop, and holds it */
	memset(&a, 0, sizeof(a));
	a.publish = &h;
	a.release_self = 1;
	publish(&a, P, FQDN_D, "v4");
	settle();
	assert_int_equal(a.calls, 1);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.inside_publish, 0);
	assert_int_equal(h.err, ACME_ERR_NONE);
	assert_true(a.at < h.at);
	assert_int_equal(ncalls, 7);
	assert_call(6, P, 1, FQDN_D, "v4");
	release(&h);
	settle();
	assert_int_equal(ncalls, 8);
	assert_call(7, P, 0, FQDN_D, "v4");

	/* a failed add: the first told lets go of both: no second callback, nothing withdrawn */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.release_other = &b;
	a.release_self = 1;
	b.release_other = &a;
	b.release_self = 1;
	P->add_err = ACME_ERR_CERT;
	publish(&a, P, FQDN_A, "v5");
	publish(&b, P, FQDN_A, "v5");
	settle();
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(ncalls, 9);
	assert_call(8, P, 1, FQDN_A, "v5");
	/* the same through an exec hook: withdrawn once */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.release_other = &b;
	a.release_self = 1;
	b.release_other = &a;
	b.release_self = 1;
	X->add_err = ACME_ERR_CERT;
	publish(&a, X, FQDN_A, "v6");
	publish(&b, X, FQDN_A, "v6");
	settle();
	assert_int_equal(a.calls + b.calls, 1);
	assert_int_equal(ncalls, 11);
	assert_call(9, X, 1, FQDN_A, "v6");
	assert_call(10, X, 0, FQDN_A, "v6");

	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
}

/* ---- 9. freed with work under way ---- */

static void test_free_with_pending(void **state)
{
	struct ans live = { 0 }, rem = { 0 }, adding = { 0 }, saving = { 0 }, shared = { 0 };
	size_t n;

	(void)state;
	start_records_loaded();
	publish(&live, P, FQDN_A, "v1");
	publish(&rem, P, FQDN_B, "v2");
	settle();
	assert_int_equal(live.calls, 1);
	assert_int_equal(rem.calls, 1);
	P->hold = 1;
	release(&rem);
	settle();                               /* its withdrawal waits */
	publish(&adding, P, FQDN_C, "v3");
	settle();                               /* its add waits */
	assert_int_equal(ncalls, 4);
	assert_int_equal(pending_ops(P), 2);
	publish(&saving, P, FQDN_D, "v4");      /* being written */
	publish(&shared, P, FQDN_A, "v1");      /* to be told from the loop */

	dns_records_free(rs);
	rs = NULL;
	assert_int_equal(P->cancels, 2);
	assert_int_equal(pending_ops(P), 0);
	resume(P);
	settle();
	worker_flush(io);
	assert_int_equal(ncalls, 4);
	assert_int_equal(live.calls, 1);
	assert_int_equal(rem.calls, 1);
	assert_int_equal(adding.calls, 0);
	assert_int_equal(saving.calls, 0);
	assert_int_equal(shared.calls, 0);
	/* remembered for the next start */
	assert_int_equal(on_disk("p", FQDN_A, "v1"), 1);
	assert_int_equal(on_disk("p", FQDN_B, "v2"), 1);
	assert_int_equal(on_disk("p", FQDN_C, "v3"), 1);

	/* which removes them */
	n = (size_t)on_disk(NULL, NULL, NULL);
	start_records();
	settle();
	assert_int_equal(ncalls, 4 + n);
	for (size_t i = 4; i < ncalls; i++)
		assert_int_equal(calls[i].add, 0);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
}

/* ---- providers that do not withdraw; no store ---- */

static void test_no_withdrawals(void **state)
{
	struct ans a = { 0 };
	char dns_dir[128];

	(void)state;
	snprintf(dns_dir, sizeof(dns_dir), "%s/dns", dir);
	assert_int_equal(mkdir(dns_dir, 0700), 0);
	write_file(records_json, "{\"records\":[{\"provider\":\"a\",\"fqdn\":\"" FQDN_B "\",\"value\":\"v0\"}]}");
	start_records();
	publish(&a, A, FQDN_A, "v1");
	settle();
	/* acme-dns rotates its values: the left-over is forgotten, not withdrawn */
	assert_int_equal(ncalls, 1);
	assert_call(0, A, 1, FQDN_A, "v1");
	assert_int_equal(in_json(calls[0].file, "a", FQDN_A, "v1"), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(on_disk("a", FQDN_B, "v0"), 0);
	release(&a);
	settle();
	assert_int_equal(ncalls, 1);
	assert_int_equal(on_disk(NULL, NULL, NULL), 0);
	assert_int_equal(dns_records_busy(rs), 0);
	assert_int_equal(dns_records_count(rs), 0);
	assert_int_equal(A->idle, 1);
}

static void test_no_store(void **state)
{
	struct ans a = { 0 }, b = { 0 };
	char dns_dir[128];
	struct stat st;

	(void)state;
	rs = dns_records_new(base, NULL, find, idle, NULL);
	assert_non_null(rs);
	dns_records_load(rs);
	publish(&a, P, FQDN_A, "v1");
	publish(&b, P, FQDN_A, "v1");
	settle();
	assert_int_equal(ncalls, 1);
	assert_call(0, P, 1, FQDN_A, "v1");
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	release(&a);
	release(&b);
	settle();
	assert_int_equal(ncalls, 2);
	assert_call(1, P, 0, FQDN_A, "v1");
	assert_int_equal(dns_records_busy(rs), 0);
	snprintf(dns_dir, sizeof(dns_dir), "%s/dns", dir);
	assert_int_equal(stat(dns_dir, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_publish_then_withdraw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wildcard_and_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_fails_released_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_withdraw_fails_then_same_value_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_hands_over_the_same_txt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_add_waits_for_the_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_server_is_another_txt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_successor_failing_withdraws_what_it_took_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_names_one_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_successor_refusing_at_once_withdraws_what_it_took_over, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_waiting_add_goes_when_the_removal_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callbacks_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_withdrawals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
	};

	unsetenv("JOURNAL_STREAM");
	log_init(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
