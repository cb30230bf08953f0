/* test_acme.c - problem documents (both namespaces, hostile bodies), error classes, learned poll delays, order/authorization objects. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "acme.h"
#include "acme_obj.h"

static void parse(const char *body, struct acme_problem *p, int expect_rc)
{
	assert_int_equal(acme_problem_parse(body, strlen(body), p), expect_rc);
}

static void test_problem_ietf(void **state)
{
	struct acme_problem p;

	parse("{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"JWS has an invalid anti-replay nonce\",\"status\":400}", &p, 0);
	assert_string_equal(p.type, "urn:ietf:params:acme:error:badNonce");
	assert_string_equal(p.name, "badNonce");
	assert_string_equal(p.detail, "JWS has an invalid anti-replay nonce");
	acme_problem_clear(&p);
}

static void test_problem_legacy_maintenance(void **state)
{
	struct acme_problem p;

	parse("{\"type\": \"urn:acme:error:serverInternal\", \"detail\": \"The service is down "
	      "for maintenance or had an internal error. Check https://letsencrypt.status.io/ "
	      "for more details.\"}", &p, 0);
	assert_string_equal(p.name, "serverInternal");
	assert_non_null(strstr(p.detail, "down for maintenance"));
	assert_int_equal(acme_classify(503, p.name), ACME_ERR_UNAVAILABLE);
	/* Even if a proxy answered 200 or 400 with it, serverInternal is an outage. */
	assert_int_equal(acme_classify(400, p.name), ACME_ERR_UNAVAILABLE);
	acme_problem_clear(&p);
}

static void test_problem_subproblems(void **state)
{
	struct acme_problem p;

	parse("{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"Some identifiers were rejected\","
	      "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"Invalid underscore in DNS name\",\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},"
	      "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"This CA will not issue for example.net\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}}]}",
	      &p, 0);
	assert_string_equal(p.name, "rejectedIdentifier");
	assert_non_null(strstr(p.detail, "_example.org: Invalid underscore"));
	assert_non_null(strstr(p.detail, "example.net: This CA will not issue"));
	acme_problem_clear(&p);
}

static void test_problem_hostile(void **state)
{
	static const char *const bad[] = {
		"", "null", "[]", "\"string\"", "42", "{", "{\"type\":", "<html>503</html>",
		"{\"type\":\"a\",\"type\":\"b\"}",  /* duplicate keys */
		"\xff\xfe\x00garbage",
	};
	struct acme_problem p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(acme_problem_parse(bad[i], strlen(bad[i]), &p), -22);
		assert_null(p.type);
		assert_null(p.detail);
		acme_problem_clear(&p);
	}
	/* NULL body */
	assert_int_equal(acme_problem_parse(NULL, 0, &p), -22);
	acme_problem_clear(&p);

	/* Wrong member types are ignored, not trusted. */
	parse("{\"type\":42,\"detail\":{\"x\":1},\"subproblems\":\"no\"}", &p, 0);
	assert_null(p.type);
	assert_null(p.name);
	assert_null(p.detail);
	acme_problem_clear(&p);

	/* A bare namespace has no short name; other URNs are kept but unnamed. */
	parse("{\"type\":\"urn:ietf:params:acme:error:\"}", &p, 0);
	assert_null(p.name);
	acme_problem_clear(&p);
	parse("{\"type\":\"about:blank\",\"detail\":\"x\"}", &p, 0);
	assert_string_equal(p.type, "about:blank");
	assert_null(p.name);
	acme_problem_clear(&p);
}

static void test_problem_huge_detail(void **state)
{
	static char body[200000];
	struct acme_problem p;
	size_t n;

	strcpy(body, "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":\"");
	n = strlen(body);
	memset(body + n, 'A', 150000);
	strcpy(body + n + 150000, "\",\"subproblems\":[");
	for (int i = 0; i < 100; i++)
		strcat(body, "{\"detail\":\"d\",\"identifier\":{\"value\":\"v\"}},");
	strcat(body, "{}]}");
	parse(body, &p, 0);
	assert_string_equal(p.name, "malformed");
	assert_true(strlen(p.detail) < 1024);   /* bounded for the log */
	acme_problem_clear(&p);
}

static void test_classify(void **state)
{
	assert_int_equal(acme_classify(200, NULL), ACME_ERR_NONE);
	assert_int_equal(acme_classify(0, NULL), ACME_ERR_UNAVAILABLE);
	assert_int_equal(acme_classify(500, NULL), ACME_ERR_UNAVAILABLE);
	assert_int_equal(acme_classify(502, NULL), ACME_ERR_UNAVAILABLE);
	assert_int_equal(acme_classify(503, "malformed"), ACME_ERR_UNAVAILABLE);
	assert_int_equal(acme_classify(429, "rateLimited"), ACME_ERR_RATELIMIT);
	assert_int_equal(acme_classify(429, NULL), ACME_ERR_RATELIMIT);
	assert_int_equal(acme_classify(403, "caa"), ACME_ERR_CERT);
	assert_int_equal(acme_classify(400, "dns"), ACME_ERR_CERT);
	assert_int_equal(acme_classify(403, "unauthorized"), ACME_ERR_CERT);
	assert_int_equal(acme_classify(400, "rejectedIdentifier"), ACME_ERR_CERT);
	assert_int_equal(acme_classify(400, "badCSR"), ACME_ERR_INPUT);
	assert_int_equal(acme_classify(400, "malformed"), ACME_ERR_INPUT);
	assert_int_equal(acme_classify(400, "unsupportedIdentifier"), ACME_ERR_INPUT);
	assert_int_equal(acme_classify(403, "userActionRequired"), ACME_ERR_INPUT);
	assert_int_equal(acme_classify(404, NULL), ACME_ERR_CERT);
	assert_int_equal(acme_classify(404, "somethingNew"), ACME_ERR_CERT);
}

/* The learned delay before the first poll shrinks when the result was there at
 * the first look (else it could only ever grow: the observed time includes the
 * wait), grows when it was not, and stays within 20 ms .. 10 s. */
static void test_poll_learn(void **state)
{
	struct config_ca cfg = { .name = (char *)"t", .directory = (char *)"https://127.0.0.1:1/dir",
				 .max_parallel = 4, .timeout = 60 };
	struct event_base *base = event_base_new();
	char dir[] = "/tmp/acmed-test-acme-XXXXXX";
	struct acme_ca *ca;
	long h0, h;

	(void)state;
	assert_non_null(mkdtemp(dir));
	ca = acme_ca_new(base, &cfg, NULL, NULL);
	assert_non_null(ca);
	h0 = acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER);
	/* ready at every first look, each observation being the wait itself (+ 5 ms) */
	for (int i = 0; i < 50; i++) {
		h = acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER);
		acme_ca_poll_learn(ca, ACME_POLL_ORDER, h + 5, 1);
		assert_true(acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER) <= h);
	}
	assert_true(acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER) < h0);
	assert_int_equal(acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER), 20);
	/* a slow CA: not there at the first look, 800 ms each time -> converges to ~800 */
	for (int i = 0; i < 20; i++)
		acme_ca_poll_learn(ca, ACME_POLL_ORDER, 800, 0);
	h = acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER);
	assert_true(h >= 780 && h <= 800);
	/* absurd observations are clamped */
	for (int i = 0; i < 40; i++)
		acme_ca_poll_learn(ca, ACME_POLL_AUTHZ, 1000000000L, 0);
	h = acme_ca_poll_hint_ms(ca, ACME_POLL_AUTHZ);
	assert_true(h >= 9990 && h <= 10000);
	h = acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER);
	acme_ca_poll_learn(ca, ACME_POLL_AUTHZ, -5, 0);
	assert_true(acme_ca_poll_hint_ms(ca, ACME_POLL_AUTHZ) >= 20);
	/* the two kinds are learned apart */
	assert_true(h == acme_ca_poll_hint_ms(ca, ACME_POLL_ORDER));
	acme_ca_free(ca);
	event_base_free(base);
	rmdir(dir);
}


/* ---- order, authorization and challenge objects (acme_obj.c) ---- */

static void test_order_obj(void **state)
{
	static const char body[] =
		"{\"status\":\"pending\",\"expires\":\"2030-01-01T00:00:00Z\","
		"\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}],"
		"\"authorizations\":[\"https://ca/authz/1\",\"https://ca/authz/2\"],"
		"\"finalize\":\"https://ca/fin/1\"}";
	struct acme_order_obj o;

	(void)state;
	assert_int_equal(acme_order_parse(body, strlen(body), &o), 0);
	assert_int_equal(o.status, ACME_STATUS_PENDING);
	assert_string_equal(o.status_text, "pending");
	assert_int_equal(o.nauthz, 2);
	assert_string_equal(o.authorizations[1], "https://ca/authz/2");
	assert_string_equal(o.finalize, "https://ca/fin/1");
	assert_null(o.certificate);
	assert_null(o.error.type);
	acme_order_obj_clear(&o);

	static const char invalid[] = "{\"status\":\"invalid\",\"error\":{\"type\":"
		"\"urn:ietf:params:acme:error:caa\",\"detail\":\"CAA forbids\"}}";
	assert_int_equal(acme_order_parse(invalid, strlen(invalid), &o), 0);
	assert_int_equal(o.status, ACME_STATUS_INVALID);
	assert_string_equal(o.error.type, "urn:ietf:params:acme:error:caa");
	assert_string_equal(o.error.detail, "CAA forbids");
	assert_int_equal(o.nauthz, 0);
	acme_order_obj_clear(&o);
}

static void test_authz_obj(void **state)
{
	static const char body[] =
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.org\"},"
		"\"wildcard\":true,\"challenges\":["
		"{\"type\":\"dns-01\",\"url\":\"https://ca/c/1\",\"token\":\"AbC-_9\",\"status\":\"pending\"},"
		"{\"type\":\"http-01\",\"url\":\"https://ca/c/2\",\"token\":\"../../etc/passwd\"},"
		"{\"type\":\"tls-alpn-01\",\"url\":\"https://ca/c/3\",\"token\":\"x\",\"status\":\"invalid\","
		"\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"nope\"}}]}";
	struct acme_authz_obj a;
	const struct acme_chal_obj *c;

	(void)state;
	assert_int_equal(acme_authz_parse(body, strlen(body), &a), 0);
	assert_int_equal(a.status, ACME_STATUS_PENDING);
	assert_string_equal(a.id_type, "dns");
	assert_string_equal(a.id_value, "example.org");
	assert_true(a.wildcard);
	assert_int_equal(a.nchallenges, 3);
	c = acme_authz_challenge(&a, "dns-01");
	assert_non_null(c);
	assert_string_equal(c->token, "AbC-_9");
	assert_int_equal(c->status, ACME_STATUS_PENDING);
	/* A token that is not base64url is dropped, never served or written anywhere. */
	c = acme_authz_challenge(&a, "http-01");
	assert_non_null(c);
	assert_null(c->token);
	assert_int_equal(c->status, ACME_STATUS_UNKNOWN);
	c = acme_authz_failed_challenge(&a);
	assert_non_null(c);
	assert_string_equal(c->type, "tls-alpn-01");
	assert_string_equal(c->error.detail, "nope");
	assert_null(acme_authz_challenge(&a, "dns-persist-01"));
	acme_authz_obj_clear(&a);
}

/* dns-persist-01's members go into a record an admin publishes: only clean
 * names and URIs are kept (no quote, ';', backslash, space or control). */
static void test_authz_persist_members(void **state)
{
	static const char body[] =
		"{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.org\"},"
		"\"challenges\":[{\"type\":\"dns-persist-01\",\"url\":\"https://ca/c/1\",\"status\":\"pending\","
		"\"accounturi\":\"https://ca/acct/1\",\"issuer-domain-names\":[\"ca.example\",\"bad\\\"q\","
		"\"semi;colon\",\"sp ace\",\"\",7,\"b.example\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\"]},"
		"{\"type\":\"dns-persist-01\",\"url\":\"https://ca/c/2\",\"accounturi\":\"https://ca/a;b\"}]}";
	struct acme_authz_obj a;
	const struct acme_chal_obj *c;

	(void)state;
	assert_int_equal(acme_authz_parse(body, strlen(body), &a), 0);
	c = &a.challenges[0];
	assert_string_equal(c->accounturi, "https://ca/acct/1");
	assert_int_equal(c->nissuers, ACME_OBJ_MAX_ISSUERS);
	assert_string_equal(c->issuers[0], "ca.example");
	assert_string_equal(c->issuers[1], "b.example");
	assert_null(c->token);
	c = &a.challenges[1];
	assert_null(c->accounturi);                     /* a ';' would end the record's field */
	assert_int_equal(c->nissuers, 0);
	acme_authz_obj_clear(&a);
}

static void test_obj_hostile(void **state)
{
	static const char *const bad[] = {
		"", "null", "[]", "\"pending\"", "{", "{\"status\":", "\x00\x01", "42",
		"{\"status\":\"pend\\u0000ing\"}",                /* a NUL inside: jansson refuses */
	};
	static const char *const odd[] = {
		"{}",                                                   /* no status */
		"{\"status\":7}",                                      /* not a string */
		"{\"status\":\"VALID\"}",                            /* not RFC 8555's */
		"{\"status\":\"valid\",\"certificate\":[1]}",
		"{\"authorizations\":\"https://ca/a\"}",
		"{\"authorizations\":[1,null,{}]}",
		"{\"identifier\":\"x\",\"challenges\":{}}",
		"{\"challenges\":[1,\"x\",null,{\"type\":5,\"token\":[]}]}",
		"{\"error\":\"boom\"}",
	};
	struct acme_order_obj o;
	struct acme_authz_obj a;
	char big[16384];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(acme_order_parse(bad[i], strlen(bad[i]), &o), -EINVAL);
		acme_order_obj_clear(&o);
		assert_int_equal(acme_authz_parse(bad[i], strlen(bad[i]), &a), -EINVAL);
		acme_authz_obj_clear(&a);
	}
	assert_int_equal(acme_order_parse(NULL, 0, &o), -EINVAL);
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		assert_int_equal(acme_order_parse(odd[i], strlen(odd[i]), &o), 0);
		assert_true(o.status == ACME_STATUS_UNKNOWN || o.status == ACME_STATUS_VALID);
		for (size_t k = 0; k < o.nauthz; k++)
			assert_null(o.authorizations[k]);         /* non-strings are NULL */
		acme_order_obj_clear(&o);
		assert_int_equal(acme_authz_parse(odd[i], strlen(odd[i]), &a), 0);
		for (size_t k = 0; k < a.nchallenges; k++)
			assert_null(a.challenges[k].token);
		assert_null(acme_authz_challenge(&a, "http-01"));
		acme_authz_obj_clear(&a);
	}
	/* Too many authorizations or challenges: refused, not allocated without bound. */
	n = (size_t)snprintf(big, sizeof(big), "{\"authorizations\":[");
	for (int i = 0; i <= ACME_OBJ_MAX_AUTHZ; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"https://ca/a/%d\"", i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	assert_int_equal(acme_order_parse(big, strlen(big), &o), -EINVAL);
	acme_order_obj_clear(&o);
	n = (size_t)snprintf(big, sizeof(big), "{\"challenges\":[");
	for (int i = 0; i <= ACME_OBJ_MAX_CHALLENGES; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"type\":\"http-01\"}", i ? "," : "");
	snprintf(big + n, sizeof(big) - n, "]}");
	assert_int_equal(acme_authz_parse(big, strlen(big), &a), -EINVAL);
	acme_authz_obj_clear(&a);
	/* A 257-character token is not a token. */
	memset(big, 'A', 257);
	big[257] = '\0';
	{
		char body[512];
		snprintf(body, sizeof(body), "{\"challenges\":[{\"type\":\"http-01\",\"token\":\"%.257s\"}]}", big);
		assert_int_equal(acme_authz_parse(body, strlen(body), &a), 0);
		assert_null(a.challenges[0].token);
		acme_authz_obj_clear(&a);
	}
}

static void test_directory(void **state)
{
	static const char le[] =
		"{\"keyChange\":\"https://ca/key-change\",\"meta\":{\"caaIdentities\":[\"letsencrypt.org\"],"
		"\"profiles\":{\"classic\":\"90 days\",\"shortlived\":\"6 days\",\"tlsserver\":\"45 days\"},"
		"\"termsOfService\":\"https://ca/tos.pdf\",\"website\":\"https://ca\"},"
		"\"newAccount\":\"https://ca/new-acct\",\"newNonce\":\"https://ca/new-nonce\","
		"\"newOrder\":\"https://ca/new-order\",\"renewalInfo\":\"https://ca/renewal-info\","
		"\"revokeCert\":\"https://ca/revoke-cert\",\"aB3-random\":\"https://community/t/adding-random-entries\"}";
	struct acme_directory d;

	(void)state;
	assert_int_equal(acme_directory_parse(le, strlen(le), &d), 0);
	assert_string_equal(acme_directory_url(&d, "newOrder"), "https://ca/new-order");
	assert_string_equal(acme_directory_url(&d, "renewalInfo"), "https://ca/renewal-info");
	assert_null(acme_directory_url(&d, "meta"));            /* an object, not a resource */
	assert_null(acme_directory_url(&d, "newAuthz"));
	assert_int_equal(d.nprofiles, 3);
	assert_false(d.external_account_required);
	assert_string_equal(d.terms_of_service, "https://ca/tos.pdf");
	acme_directory_clear(&d);

	static const char eab[] = "{\"newNonce\":\"a\",\"newAccount\":\"b\",\"newOrder\":\"c\","
		"\"meta\":{\"externalAccountRequired\":true,\"profiles\":[\"x\"]}}";
	assert_int_equal(acme_directory_parse(eab, strlen(eab), &d), 0);
	assert_true(d.external_account_required);
	assert_int_equal(d.nprofiles, 0);                       /* profiles must be an object */
	acme_directory_clear(&d);
}

static void test_directory_hostile(void **state)
{
	static const char *const bad[] = {
		"", "<html><body>Down for maintenance</body></html>", "[]", "null", "{}",
		"{\"newNonce\":\"a\",\"newAccount\":\"b\"}",           /* no newOrder */
		"{\"newNonce\":1,\"newAccount\":\"b\",\"newOrder\":\"c\"}",
		"{\"type\":\"urn:acme:error:serverInternal\",\"detail\":\"down\"}",
	};
	struct acme_directory d;
	char big[8192];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(acme_directory_parse(bad[i], strlen(bad[i]), &d), -EINVAL);
		acme_directory_clear(&d);
	}
	/* Hundreds of members: refused, not allocated without bound. */
	n = (size_t)snprintf(big, sizeof(big), "{\"newNonce\":\"a\",\"newAccount\":\"b\",\"newOrder\":\"c\"");
	for (int i = 0; i < 200 && n < sizeof(big) - 32; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"r%d\":\"u\"", i);
	snprintf(big + n, sizeof(big) - n, "}");
	assert_int_equal(acme_directory_parse(big, strlen(big), &d), -EINVAL);
	acme_directory_clear(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_problem_ietf),
		cmocka_unit_test(test_problem_legacy_maintenance),
		cmocka_unit_test(test_problem_subproblems),
		cmocka_unit_test(test_problem_hostile),
		cmocka_unit_test(test_problem_huge_detail),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_poll_learn),
		cmocka_unit_test(test_order_obj),
		cmocka_unit_test(test_authz_obj),
		cmocka_unit_test(test_authz_persist_members),
		cmocka_unit_test(test_obj_hostile),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_directory_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
