/* test_keygen.c - unit tests for keygen.c: real keys made on the worker thread and delivered on a real event loop. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "crypto.h"
#include "keygen.h"
#include "log.h"

#define MAXREC 16

/* What the callbacks saw, in order. */
struct rec {
	int n;
	int ids[MAXREC];
	int ticks_at[MAXREC];   /* timer ticks when each callback ran */
	int ticks;              /* the 10 ms timer's count */
	struct event *timer;    /* deleted by the last expected callback */
	int expect;             /* callbacks until the timer stops */
	pthread_t loop_thread;
};

/* One request's expectations and, optionally, work its callback does. */
struct slot {
	struct rec *rec;
	int id;
	int has_kt;                 /* check the key's type */
	enum key_type kt;
	int expect_fail;
	int called;
	struct keygen_req *req;
	/* Done inside the callback: */
	struct keygen *kg;
	struct keygen_req *cancel;  /* another request to cancel */
	int cancel_self;
	struct slot *chain;         /* a request to queue */
};

static void on_key(struct crypto_key *key, void *arg)
{
	struct slot *s = arg;
	struct rec *r = s->rec;
	enum key_type kt;

	/* On the loop thread, once, and the request counts as finished. */
	assert_true(pthread_equal(pthread_self(), r->loop_thread));
	assert_int_equal(s->called, 0);
	assert_int_equal(keygen_req_state(s->req), KEYGEN_FINISHED);
	s->called++;
	assert_true(r->n < MAXREC);
	r->ticks_at[r->n] = r->ticks;
	r->ids[r->n++] = s->id;
	if (s->expect_fail) {
		assert_null(key);
	} else {
		assert_non_null(key);
		if (s->has_kt) {
			assert_int_equal(crypto_key_type(key, &kt), 0);
			assert_int_equal(kt, s->kt);
		}
	}
	crypto_key_free(key);
	if (s->cancel)
		keygen_cancel(s->cancel);
	if (s->cancel_self)
		keygen_cancel(s->req);  /* its callback runs: a no-op */
	if (s->chain) {
		s->chain->req = keygen_request(s->kg, s->chain->kt, on_key, s->chain);
		assert_non_null(s->chain->req);
		/* Not delivered from inside keygen_request. */
		assert_int_equal(s->chain->called, 0);
	}
	if (r->timer && r->n == r->expect)
		event_del(r->timer);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rec *r = arg;

	r->ticks++;
}

static struct event_base *base;
static struct keygen *kg;
static struct rec rec;

static int setup(void **state)
{
	memset(&rec, 0, sizeof(rec));
	rec.loop_thread = pthread_self();
	base = event_base_new();
	assert_non_null(base);
	kg = keygen_new(base);
	assert_non_null(kg);
	return 0;
}

static int teardown(void **state)
{
	keygen_free(kg);
	kg = NULL;
	if (rec.timer)
		event_free(rec.timer);
	event_base_free(base);
	return 0;
}

static void slot_init(struct slot *s, int id, enum key_type kt)
{
	memset(s, 0, sizeof(*s));
	s->rec = &rec;
	s->id = id;
	s->kt = kt;
	s->has_kt = 1;
	s->kg = kg;
}

static void request(struct slot *s)
{
	s->req = keygen_request(kg, s->kt, on_key, s);
	assert_non_null(s->req);
}

/* Poll (from the test, never the daemon) until the worker moved req to st. */
static void wait_state(struct keygen_req *req, enum keygen_state st)
{
	struct timespec ms = { 0, 1000000 };
	int i;

	for (i = 0; i < 600000; i++) {   /* 10 minutes: valgrind makes RSA slow */
		if (keygen_req_state(req) >= st)
			break;
		nanosleep(&ms, NULL);
	}
	assert_int_equal(keygen_req_state(req), st);
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- tests ---- */

/* Every key type, in order, while a 10 ms timer keeps firing on the loop. */
static void test_all_types_in_order_loop_responsive(void **state)
{
	static const enum key_type kts[] = { KEY_ECDSA_P256, KEY_ECDSA_P384, KEY_RSA_2048,
					      KEY_RSA_3072, KEY_RSA_4096, KEY_ECDSA_P256 };
	struct slot s[6];
	struct timeval tv = { 0, 10000 };
	int i;

	rec.timer = event_new(base, -1, EV_PERSIST, on_tick, &rec);
	assert_non_null(rec.timer);
	assert_int_equal(event_add(rec.timer, &tv), 0);
	rec.expect = 6;
	for (i = 0; i < 6; i++) {
		slot_init(&s[i], i, kts[i]);
		request(&s[i]);
	}
	assert_int_equal(keygen_outstanding(kg), 6);
	assert_int_equal(rec.n, 0);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(rec.n, 6);
	for (i = 0; i < 6; i++) {
		assert_int_equal(rec.ids[i], i);
		assert_int_equal(s[i].called, 1);
	}
	/* The loop kept running while the rsa-4096 key was made: had generation
	 * blocked it, the timer could have fired at most once in between. */
	assert_true(rec.ticks_at[4] - rec.ticks_at[3] >= 5);
	assert_int_equal(keygen_outstanding(kg), 0);
}

/* The callback runs on the loop, from event_base_dispatch: not inside
 * keygen_request, nor on the worker when the key is ready. */
static void test_delivered_from_dispatch_only(void **state)
{
	struct slot a;

	slot_init(&a, 1, KEY_ECDSA_P384);
	request(&a);
	assert_int_equal(a.called, 0);
	wait_state(a.req, KEYGEN_FINISHED);
	assert_int_equal(a.called, 0);
	assert_int_equal(keygen_outstanding(kg), 1);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(a.called, 1);
	/* Nothing outstanding: the loop has nothing of keygen's left to wait for. */
	assert_int_equal(keygen_outstanding(kg), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
}

static void test_failure_delivers_null(void **state)
{
	struct slot a, b;

	slot_init(&a, 1, (enum key_type)99);
	a.has_kt = 0;
	a.expect_fail = 1;
	slot_init(&b, 2, KEY_ECDSA_P256);
	request(&a);
	request(&b);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.ids[0], 1);
	assert_int_equal(rec.ids[1], 2);
}

/* One RSA key keeps the worker busy: cancel a request still queued behind it,
 * then the RSA one while it is being made (the worker frees its key). */
static void test_cancel_queued_and_running(void **state)
{
	struct slot a, b, c, d;

	slot_init(&a, 1, KEY_RSA_2048);
	slot_init(&b, 2, KEY_ECDSA_P256);
	slot_init(&c, 3, KEY_ECDSA_P384);
	slot_init(&d, 4, KEY_ECDSA_P256);
	request(&a);
	request(&b);
	request(&c);
	/* The RSA key takes far longer than these few calls. */
	assert_int_equal(keygen_req_state(b.req), KEYGEN_QUEUED);
	keygen_cancel(b.req);
	assert_int_equal(keygen_outstanding(kg), 2);
	wait_state(a.req, KEYGEN_RUNNING);
	assert_int_equal(keygen_req_state(c.req), KEYGEN_QUEUED);
	keygen_cancel(a.req);
	assert_int_equal(keygen_outstanding(kg), 1);
	request(&d);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.ids[0], 3);
	assert_int_equal(rec.ids[1], 4);
	assert_int_equal(a.called + b.called, 0);
	assert_int_equal(keygen_outstanding(kg), 0);
}

static void test_cancel_after_finish(void **state)
{
	struct slot a, b, c;

	slot_init(&a, 1, KEY_ECDSA_P256);
	slot_init(&b, 2, KEY_ECDSA_P256);
	slot_init(&c, 3, KEY_ECDSA_P384);
	request(&a);
	request(&b);
	request(&c);
	wait_state(c.req, KEYGEN_FINISHED);  /* served in order: all three made */
	keygen_cancel(b.req);
	keygen_cancel(NULL);
	assert_int_equal(keygen_outstanding(kg), 2);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.ids[0], 1);
	assert_int_equal(rec.ids[1], 3);
	assert_int_equal(b.called, 0);
}

/* All finished before the loop runs, so one drain holds them all: the first
 * callback cancels the second, cancels itself (a no-op) and queues a new one. */
static void test_callback_cancels_and_requests(void **state)
{
	struct slot a, b, c, d;

	slot_init(&a, 1, KEY_ECDSA_P256);
	slot_init(&b, 2, KEY_ECDSA_P256);
	slot_init(&c, 3, KEY_ECDSA_P256);
	slot_init(&d, 4, KEY_ECDSA_P384);
	request(&a);
	request(&b);
	request(&c);
	a.cancel = b.req;
	a.cancel_self = 1;
	a.chain = &d;
	c.cancel_self = 1;
	wait_state(c.req, KEYGEN_FINISHED);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.ids[0], 1);
	assert_int_equal(rec.ids[1], 3);
	assert_int_equal(rec.ids[2], 4);
	assert_int_equal(b.called, 0);
	assert_int_equal(d.called, 1);
	assert_int_equal(keygen_outstanding(kg), 0);
}

/* keygen_free with one finished-not-delivered, one being made, two queued. */
static void test_free_with_pending_work(void **state)
{
	struct slot a, b, c, d;

	slot_init(&a, 1, KEY_ECDSA_P256);
	slot_init(&b, 2, KEY_RSA_2048);
	slot_init(&c, 3, KEY_ECDSA_P256);
	slot_init(&d, 4, KEY_RSA_4096);   /* queued: never made */
	request(&a);
	request(&b);
	request(&c);
	request(&d);
	wait_state(a.req, KEYGEN_FINISHED);
	wait_state(b.req, KEYGEN_RUNNING);
	assert_int_equal(keygen_req_state(c.req), KEYGEN_QUEUED);
	keygen_free(kg);
	kg = NULL;
	/* Nothing is delivered, and nothing of keygen's is left on the loop. */
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(rec.n, 0);
	assert_int_equal(a.called + b.called + c.called + d.called, 0);
}

/* No thread until the first request; none after keygen_free. */
static void test_worker_started_lazily(void **state)
{
	int n0 = count_threads();
	struct keygen *k2 = keygen_new(base);
	struct slot a;

	assert_non_null(k2);
	assert_int_equal(count_threads(), n0);
	keygen_free(k2);
	keygen_free(NULL);
	assert_int_equal(count_threads(), n0);

	slot_init(&a, 1, KEY_ECDSA_P256);
	request(&a);
	assert_int_equal(count_threads(), n0 + 1);
	assert_int_equal(event_base_dispatch(base), 1);  /* ran out of events */
	assert_int_equal(a.called, 1);
	keygen_free(kg);
	kg = NULL;
	assert_int_equal(count_threads(), n0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_types_in_order_loop_responsive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivered_from_dispatch_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_delivers_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued_and_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_after_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_cancels_and_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_started_lazily, setup, teardown),
	};

	log_init(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
