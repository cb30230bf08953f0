/* test_order.c - order.c's state machine against an in-memory CA (fakeca.c), a scripted solver and the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "crypto.h"
#include "fakeca.h"
#include "fakeclock.h"
#include "fakesolver.h"
#include "order.h"

/* ---------- fixture ---------- */

struct fx {
	struct event_base *base;
	struct fakeca *ca;
	struct fake_solver solver;
	struct config_cert cert;
	struct order *o;
	int done;
	struct order_result res;
	char msg[1024];
	char *leaf, *key_pem;
	char *created_url;
};

static struct challenge *pick(void *arg, const char *id_type, const char *identifier, int wildcard,
			      const char **why)
{
	struct fx *x = arg;

	if (challenge_supports(&x->solver.c, id_type, identifier, wildcard))
		return &x->solver.c;
	*why = "a wildcard needs dns-01";
	return NULL;
}

static void on_done(struct order *o, const struct order_result *res, void *arg)
{
	struct fx *x = arg;

	x->done = 1;
	x->res = *res;
	snprintf(x->msg, sizeof(x->msg), "%s", res->message ? res->message : "");
	x->res.message = x->msg;
	x->res.problem = NULL;
	if (res->ok) {
		x->leaf = strdup(res->leaf_pem);
		x->key_pem = strndup(res->key_pem, res->key_len);
	}
	x->res.leaf_pem = x->res.chain_pem = x->res.key_pem = NULL;
	order_free(o);
	x->o = NULL;
}

static void on_created(struct order *o, const char *url, void *arg)
{
	struct fx *x = arg;

	(void)o;
	free(x->created_url);
	x->created_url = strdup(url);
}

static void set_domains(struct fx *x, size_t n, ...)
{
	va_list ap;

	for (size_t i = 0; i < x->cert.domains.n; i++)
		free(x->cert.domains.v[i]);
	free(x->cert.domains.v);
	x->cert.domains.v = calloc(n + 1, sizeof(char *));
	x->cert.domains.n = n;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		x->cert.domains.v[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	fakeclock_freeze();
	x->base = event_base_new();
	x->ca = fakeca_new(x->base, "fake");
	fake_solver_init(&x->solver, x->base);
	fakeca_set_validation(x->ca, 1, -1, fake_solver_check, &x->solver);
	x->cert.name = strdup("web");
	x->cert.challenge = strdup("http-01");
	x->cert.output_dir = strdup("/nonexistent");
	x->cert.key_type = KEY_ECDSA_P256;
	set_domains(x, 2, "example.org", "www.example.org");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	order_free(x->o);
	fakeca_free(x->ca);
	event_base_free(x->base);
	config_cert_clear(&x->cert);
	free(x->leaf);
	free(x->key_pem);
	free(x->created_url);
	free(x);
	return 0;
}

/* Run the loop, moving the fake clock 10 ms at a time, until the order
 * reports or max_ms of fake time went by. */
static void drive(struct fx *x, int64_t max_ms)
{
	for (int64_t t = 0; !x->done && t <= max_ms; t += 10) {
		for (int i = 0; i < 4; i++)
			event_base_loop(x->base, EVLOOP_NONBLOCK);
		if (!x->done)
			fakeclock_advance_ms(10);
	}
}

static void start(struct fx *x, const char *resume_url, const char *replaces)
{
	struct order_params p = {0};
	struct crypto_key *key = NULL;

	assert_int_equal(crypto_key_generate(KEY_ECDSA_P256, &key), 0);
	p.cert = &x->cert;
	p.key = key;
	p.resume_url = resume_url;
	p.replaces = replaces;
	p.created = on_created;
	p.pick = pick;
	p.pick_arg = x;
	x->done = 0;
	x->o = order_start(x->base, fakeca_client(x->ca), &p, on_done, x);
	assert_non_null(x->o);
}

static size_t index_of(struct fx *x, const char *prefix, int last)
{
	size_t found = (size_t)-1;

	for (size_t i = 0; i < fakeca_nrequests(x->ca); i++)
		if (strncmp(fakeca_request(x->ca, i), prefix, strlen(prefix)) == 0) {
			found = i;
			if (!last)
				break;
		}
	return found;
}

/* ---------- tests ---------- */

static void test_issues_with_one_request_per_step(void **state)
{
	struct fx *x = *state;
	struct crypto_cert_info info = {0};
	struct crypto_key *k = NULL;

	/* A validator that is done by the first poll. */
	fakeca_set_validation(x->ca, 0, -1, fake_solver_check, &x->solver);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_true(x->res.ok);
	assert_string_equal(x->msg, "issued");
	/* newOrder, 2 authorizations, 2 challenges, 2 polls, finalize, certificate. */
	assert_string_equal(fakeca_request(x->ca, 0), "newOrder");
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	assert_int_equal(fakeca_count(x->ca, "challenge"), 2);
	assert_int_equal(fakeca_count(x->ca, "authz"), 4);
	assert_int_equal(fakeca_count(x->ca, "finalize"), 1);
	assert_int_equal(fakeca_count(x->ca, "cert"), 1);
	assert_int_equal(fakeca_nrequests(x->ca), 9);
	assert_true(index_of(x, "challenge", 1) < index_of(x, "finalize", 0));
	assert_int_equal(index_of(x, "cert", 0), fakeca_nrequests(x->ca) - 1);
	assert_non_null(x->created_url);
	/* The key handed over is the certificate's, the names are ours. */
	assert_int_equal(crypto_cert_info_pem(x->leaf, strlen(x->leaf), &info), 0);
	assert_int_equal(info.nnames, 2);
	assert_int_equal(crypto_key_from_pem(x->key_pem, strlen(x->key_pem), &k), 0);
	assert_int_equal(crypto_cert_matches_key(x->leaf, strlen(x->leaf), k), 1);
	assert_int_equal(x->res.not_after, info.not_after);
	crypto_cert_info_clear(&info);
	crypto_key_free(k);
	/* Every answer presented was withdrawn. */
	assert_int_equal(x->solver.presented, 2);
	assert_int_equal(x->solver.cleaned, 2);
	assert_int_equal(fake_solver_live(&x->solver), 0);
	assert_int_equal(fakeca_in_flight(x->ca), 0);
}

static void test_authz_retry_after_is_honoured(void **state)
{
	struct fx *x = *state;
	int64_t prev = -1;

	set_domains(x, 1, "slow.example.org");
	/* Pending for 3 polls after the answer, each with Retry-After: 30. */
	fakeca_set_validation(x->ca, 3, 30, fake_solver_check, &x->solver);
	start(x, NULL, NULL);
	drive(x, 5 * 60 * 1000);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "authz"), 5);
	/* After the challenge, polls are at least 30 s (fake) apart, never sooner. */
	for (size_t i = index_of(x, "challenge", 0); i < fakeca_nrequests(x->ca); i++) {
		if (strncmp(fakeca_request(x->ca, i), "authz", 5) != 0)
			continue;
		if (prev >= 0 && prev != fakeca_request_ms(x->ca, i))
			assert_true(fakeca_request_ms(x->ca, i) - prev >= 30000);
		prev = fakeca_request_ms(x->ca, i);
	}
}

static int say_no(void *arg, const char *identifier, const char *token)
{
	(void)arg;
	(void)identifier;
	(void)token;
	return 0;
}

static void test_long_retry_after_ends_the_order_as_rate_limited(void **state)
{
	struct fx *x = *state;

	set_domains(x, 1, "later.example.org");
	fakeca_set_validation(x->ca, 5, 86400, fake_solver_check, &x->solver);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	/* Not waited for inside the order: the scheduler keeps the order and says until when. */
	assert_int_equal(x->res.err, ACME_ERR_RATELIMIT);
	assert_int_equal(x->res.retry_after, 86400);
	assert_non_null(strstr(x->msg, "the CA asks to wait 86400 s before looking at https://ca.test/authz/0/0"));
	assert_int_equal(fake_solver_live(&x->solver), 0);
}

static void test_authorization_invalid(void **state)
{
	struct fx *x = *state;

	set_domains(x, 1, "bad.example.org");
	fakeca_set_validation(x->ca, 0, -1, say_no, NULL);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_CERT);
	assert_non_null(strstr(x->msg, "authorization for bad.example.org is invalid"));
	assert_non_null(strstr(x->msg, "unauthorized"));
	assert_int_equal(fakeca_count(x->ca, "finalize"), 0);
	assert_int_equal(fake_solver_live(&x->solver), 0);
}

static void test_solver_failure_is_reported_with_its_class(void **state)
{
	struct fx *x = *state;

	x->solver.fail = ACME_ERR_CERT;
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_CERT);
	assert_non_null(strstr(x->msg, "REFUSED"));
	/* The CA was never told to validate an answer that is not in place. */
	assert_int_equal(fakeca_count(x->ca, "challenge"), 0);
	assert_int_equal(fake_solver_live(&x->solver), 0);
}

static void test_wildcard_without_a_solver_for_it(void **state)
{
	struct fx *x = *state;

	set_domains(x, 1, "*.example.org");
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_INPUT);
	assert_string_equal(x->msg, "no way to validate *.example.org: a wildcard needs dns-01");
	assert_int_equal(x->solver.presented, 0);
	assert_int_equal(fakeca_count(x->ca, "challenge"), 0);
}

static void test_authorization_pending_forever_times_out(void **state)
{
	struct fx *x = *state;

	set_domains(x, 1, "never.example.org");
	fakeca_set_validation(x->ca, 1000000, 60, fake_solver_check, &x->solver);
	start(x, NULL, NULL);
	drive(x, 20 * 60 * 1000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_CERT);
	assert_non_null(strstr(x->msg, "authorization for never.example.org still pending after 15 minutes"));
	/* Polled at the CA's pace (Retry-After: 60): about 15, not hundreds. */
	assert_true(fakeca_count(x->ca, "authz") <= 18);
	assert_int_equal(fake_solver_live(&x->solver), 0);
}

static void resume(struct fx *x, const char *url, struct crypto_key *key)
{
	struct order_params p = {0};

	p.cert = &x->cert;
	p.pick = pick;
	p.pick_arg = x;
	p.key = key;
	p.resume_url = url;
	x->done = 0;
	free(x->leaf);
	free(x->key_pem);
	x->leaf = x->key_pem = NULL;
	x->o = order_start(x->base, fakeca_client(x->ca), &p, on_done, x);
	assert_non_null(x->o);
	drive(x, 60000);
	assert_true(x->done);
}

static void test_resume_a_valid_order_downloads_only(void **state)
{
	struct fx *x = *state;
	struct crypto_key *key = NULL, *other = NULL;
	char *url;
	size_t before;

	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->res.ok);
	url = strdup(fakeca_order_url(x->ca, 0));
	/* A restart after the CA issued but before the install: the same order, with its key. */
	assert_int_equal(crypto_key_from_pem(x->key_pem, strlen(x->key_pem), &key), 0);
	before = fakeca_nrequests(x->ca);
	resume(x, url, key);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	assert_int_equal(fakeca_nrequests(x->ca), before + 2);
	assert_string_equal(fakeca_request(x->ca, before), "order 0");
	assert_string_equal(fakeca_request(x->ca, before + 1), "cert 0");
	/* With another key the certificate is refused, never handed over. */
	assert_int_equal(crypto_key_generate(KEY_ECDSA_P256, &other), 0);
	resume(x, url, other);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_CERT);
	assert_non_null(strstr(x->msg, "does not match the key acmed sent"));
	assert_null(x->leaf);
	free(url);
}

static void test_already_replaced_orders_again_without_replaces(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 409, "alreadyReplaced", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_null(strstr(fakeca_last_new_order(x->ca), "replaces"));
}

/* The CA refuses "replaces" itself (another account ordered that certificate,
 * e.g. after `account deactivate`): ordered again without it, once. */
static void test_replaces_refused_orders_again_without_it(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 403, "unauthorized:requester account did not request the certificate "
		    "being replaced by this order", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_null(strstr(fakeca_last_new_order(x->ca), "replaces"));
}

/* A CA failing to look up the replaced certificate answers a plain 500
 * serverInternal (Pebble 2.10, for a serial whose DER starts with a zero
 * byte): "replaces" must not keep the certificate from renewing. */
static void test_server_internal_on_replaces_orders_again_without_it(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 500, "serverInternal:could not find an order for the given "
		    "certificate", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
	assert_null(strstr(fakeca_last_new_order(x->ca), "replaces"));
}

/* A CA really down fails the order sent without "replaces" too: that is its
 * outage, after two requests, not more. */
static void test_server_internal_twice_is_the_ca_outage(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 2, 500, "serverInternal:database unavailable", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 2);
}

/* A 500 that says when to come back (Retry-After) is the CA's outage too. */
static void test_server_internal_with_retry_after_is_not_retried(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 500, "serverInternal:could not find an order", 60);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

/* A gateway's 502 or a 503 without Retry-After: not the CA's answer to the
 * order, its outage. */
static void test_gateway_error_on_replaces_is_not_retried(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 502, "serverInternal:upstream error", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

/* A 500 from the nonce or the account the newOrder waited on says nothing
 * about "replaces": the CA's outage, no second newOrder. */
static void test_relayed_server_internal_is_not_about_replaces(void **state)
{
	struct fx *x = *state;

	fakeca_fail_relayed(x->ca, "newOrder", 1, 500, "serverInternal:account lookup failed");
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

/* Maintenance (503, Retry-After) is the CA's outage at once: the order is
 * not sent a second time without "replaces". */
static void test_maintenance_on_replaces_is_not_retried(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 503, "serverInternal:down for maintenance", 120);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
	assert_non_null(strstr(fakeca_last_new_order(x->ca), "\"replaces\":\"AAAA.BBBB\""));
}

/* A refusal of the certificate itself (not of "replaces"), or any refusal
 * without "replaces": the order's end, no second request. */
static void test_refusal_without_replaces_is_final(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 400, "rejectedIdentifier:policy forbids issuing for this name", -1);
	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_false(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "newOrder"), 1);
}

static void test_replaces_is_sent(void **state)
{
	struct fx *x = *state;

	start(x, NULL, "AAAA.BBBB");
	drive(x, 60000);
	assert_true(x->res.ok);
	assert_non_null(strstr(fakeca_last_new_order(x->ca), "\"replaces\":\"AAAA.BBBB\""));
}

static void test_certificate_with_other_names_is_refused(void **state)
{
	struct fx *x = *state;

	fakeca_set_wrong_name(x->ca, "evil.example.net");
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_CERT);
	assert_non_null(strstr(x->msg, "does not name exactly the configured domains"));
	assert_null(x->leaf);
}

/* A CA's authorization for a name the certificate does not have: nothing is
 * presented for it (no token served, no DNS record written there). */
static void test_authorization_for_another_name_is_refused(void **state)
{
	struct fx *x = *state;

	fakeca_set_foreign_authz(x->ca, "victim.example.net");
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->done);
	assert_false(x->res.ok);
	assert_int_equal(x->res.err, ACME_ERR_INPUT);
	assert_non_null(strstr(x->msg, "the CA asks to validate victim.example.net, which certificate"));
	assert_int_equal(fakeca_count(x->ca, "challenge"), 0);
}

static void test_errors_keep_their_class(void **state)
{
	struct fx *x = *state;

	fakeca_fail(x->ca, "newOrder", 1, 429, "rateLimited", 7);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_int_equal(x->res.err, ACME_ERR_RATELIMIT);
	assert_int_equal(x->res.retry_after, 7);
	assert_non_null(strstr(x->msg, "creating the order"));

	fakeca_fail(x->ca, "finalize", 1, 0, NULL, -1);           /* the connection dropped */
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_non_null(strstr(x->msg, "finalizing the order"));

	fakeca_fail(x->ca, "authz", 1, 503, "serverInternal", -1);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_int_equal(x->res.err, ACME_ERR_UNAVAILABLE);
	assert_int_equal(fake_solver_live(&x->solver), 0);
}

static void test_processing_is_polled_until_valid(void **state)
{
	struct fx *x = *state;

	fakeca_set_processing(x->ca, 3);
	start(x, NULL, NULL);
	drive(x, 60000);
	assert_true(x->res.ok);
	assert_int_equal(fakeca_count(x->ca, "order"), 3);
	assert_int_equal(fakeca_count(x->ca, "cert"), 1);
}

static void test_free_midway_cancels_everything(void **state)
{
	struct fx *x = *state;

	fakeca_set_validation(x->ca, 100, 5, fake_solver_check, &x->solver);
	start(x, NULL, NULL);
	for (int i = 0; i < 200 && fakeca_count(x->ca, "challenge") < 2; i++) {
		event_base_loop(x->base, EVLOOP_NONBLOCK);
		fakeclock_advance_ms(10);
	}
	assert_int_equal(fake_solver_live(&x->solver), 2);
	order_free(x->o);
	x->o = NULL;
	assert_int_equal(fake_solver_live(&x->solver), 0);
	assert_int_equal(fakeca_in_flight(x->ca), 0);
	/* Nothing fires afterwards. */
	fakeclock_advance_ms(60000);
	event_base_loop(x->base, EVLOOP_NONBLOCK);
	assert_false(x->done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_issues_with_one_request_per_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authz_retry_after_is_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authorization_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_retry_after_ends_the_order_as_rate_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_solver_failure_is_reported_with_its_class, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wildcard_without_a_solver_for_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authorization_pending_forever_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_a_valid_order_downloads_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_already_replaced_orders_again_without_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaces_refused_orders_again_without_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_without_replaces_is_final, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_internal_on_replaces_orders_again_without_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_internal_twice_is_the_ca_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maintenance_on_replaces_is_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_internal_with_retry_after_is_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relayed_server_internal_is_not_about_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_error_on_replaces_is_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaces_is_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authorization_for_another_name_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certificate_with_other_names_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_keep_their_class, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processing_is_polled_until_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_midway_cancels_everything, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
