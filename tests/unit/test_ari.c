/* test_ari.c - unit tests for ARI (RFC 9773): CertID test vector, URL, hostile renewalInfo bodies, window choice, poll times. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ari.h"
#include "crypto.h"
#include "log.h"

#define T2025 1735689600LL /* 2025-01-01T00:00:00Z */
#define HOUR 3600
#define DAY 86400

/* ---- certificates made here with OpenSSL ---- */

static EVP_PKEY *test_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* A self-signed certificate with the serial given in hex (positive) and, when
 * aki is not NULL, an authorityKeyIdentifier whose keyIdentifier is aki. */
static char *make_cert(const char *serial_hex, const unsigned char *aki, size_t aki_len)
{
	EVP_PKEY *k = test_key();
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn;
	X509_NAME *name;
	BIO *bio;
	char *data, *pem;
	long n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_true(BN_hex2bn(&bn, serial_hex) > 0);
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	assert_non_null(sn);
	assert_int_equal(X509_set_serialNumber(x, sn), 1);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 90L * DAY));
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
			 (const unsigned char *)"ari.example", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, k), 1);
	if (aki) {
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

		assert_non_null(akid);
		akid->keyid = ASN1_OCTET_STRING_new();
		assert_non_null(akid->keyid);
		assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, aki, (int)aki_len), 1);
		assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
						   X509V3_ADD_DEFAULT), 1);
		AUTHORITY_KEYID_free(akid);
	}
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0);
	pem = strndup(data, (size_t)n);
	assert_non_null(pem);
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(k);
	return pem;
}

/* The DER content bytes of a certificate's serial, to check the test's own premise. */
static void assert_serial_der(const char *pem, const unsigned char *want, size_t wlen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int l;

	assert_non_null(x);
	l = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
	assert_int_equal(l, (int)wlen + 2);
	assert_int_equal(der[0], 0x02);
	assert_int_equal(der[1], wlen);
	assert_memory_equal(der + 2, want, wlen);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
}

static const unsigned char rfc_aki[20] = {
	0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
	0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
};

static void test_cert_id_rfc_vector(void **state)
{
	static const unsigned char serial_der[] = { 0x00, 0x87, 0x65, 0x43, 0x21 };
	char *pem = make_cert("87654321", rfc_aki, sizeof(rfc_aki));
	char *id = (char *)0x1;

	(void)state;
	assert_serial_der(pem, serial_der, sizeof(serial_der));
	assert_int_equal(ari_cert_id(pem, strlen(pem), &id), 0);
	assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	free(id);
	{       /* the same from an inspected certificate; nothing without an AKI */
		struct crypto_cert_info info;

		assert_int_equal(crypto_cert_info_pem(pem, strlen(pem), &info), 0);
		assert_int_equal(ari_cert_id_info(&info, &id), 0);
		assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
		free(id);
		free(info.aki);
		info.aki = NULL;
		assert_int_equal(ari_cert_id_info(&info, &id), -EINVAL);
		assert_null(id);
		assert_int_equal(ari_cert_id_info(NULL, &id), -EINVAL);
		crypto_cert_info_clear(&info);
	}
	free(pem);
}

static void test_cert_id_first_of_chain(void **state)
{
	char *leaf = make_cert("87654321", rfc_aki, sizeof(rfc_aki));
	char *other = make_cert("12", (const unsigned char *)"\x01\x02\x03", 3);
	size_t ll = strlen(leaf), ol = strlen(other);
	char *chain = malloc(ll + ol + 1), *id = NULL;

	(void)state;
	assert_non_null(chain);
	memcpy(chain, leaf, ll);
	memcpy(chain + ll, other, ol + 1);
	assert_int_equal(ari_cert_id(chain, ll + ol, &id), 0);
	assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	free(id);
	free(chain);
	free(leaf);
	free(other);
}

static void test_cert_id_no_padding(void **state)
{
	static const unsigned char serial_der[] = { 0x12 };
	static const unsigned char serial7f[] = { 0x7f, 0xff };
	char *pem = make_cert("12", (const unsigned char *)"\x01\x02\x03", 3);
	char *id = NULL;

	(void)state;
	assert_serial_der(pem, serial_der, 1);
	assert_int_equal(ari_cert_id(pem, strlen(pem), &id), 0);
	assert_string_equal(id, "AQID.Eg");
	free(id);
	free(pem);

	/* High bit clear on a two-byte serial: still no 0x00 added. */
	pem = make_cert("7fff", rfc_aki, sizeof(rfc_aki));
	assert_serial_der(pem, serial7f, 2);
	assert_int_equal(ari_cert_id(pem, strlen(pem), &id), 0);
	assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.f_8");
	free(id);
	free(pem);

	/* High bit set: the DER zero byte comes through ("AP__" = 00 ff ff). */
	pem = make_cert("ffff", rfc_aki, sizeof(rfc_aki));
	assert_int_equal(ari_cert_id(pem, strlen(pem), &id), 0);
	assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AP__");
	free(id);
	free(pem);
}

static void test_cert_id_no_aki(void **state)
{
	char *pem = make_cert("87654321", NULL, 0);
	char *id = (char *)0x1;

	(void)state;
	assert_int_equal(ari_cert_id(pem, strlen(pem), &id), -EINVAL);
	assert_null(id);
	free(pem);
}

static void test_cert_id_garbage(void **state)
{
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	char *id = (char *)0x1;

	(void)state;
	assert_true(ari_cert_id("", 0, &id) < 0);
	assert_null(id);
	assert_true(ari_cert_id("not a pem", 9, &id) < 0);
	assert_true(ari_cert_id(junk, sizeof(junk) - 1, &id) < 0);
	assert_null(id);
	assert_int_equal(ari_cert_id(NULL, 0, &id), -EINVAL);
	assert_int_equal(ari_cert_id(junk, sizeof(junk) - 1, NULL), -EINVAL);
}

/* ---- URL ---- */

static void test_url(void **state)
{
	static const char *bases[] = {
		"https://ca.example/acme/renewal-info",
		"https://ca.example/acme/renewal-info/",
		"https://ca.example/acme/renewal-info//",
	};
	char *u;

	(void)state;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		u = ari_url(bases[i], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
		assert_non_null(u);
		assert_string_equal(u, "https://ca.example/acme/renewal-info/"
				    "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
		free(u);
	}
	assert_null(ari_url(NULL, "x.y"));
	assert_null(ari_url("https://ca.example/ri", NULL));
	assert_null(ari_url("https://ca.example/ri", ""));
	assert_null(ari_url("", "x.y"));
	assert_null(ari_url("/", "x.y"));
}

/* ---- renewalInfo bodies ---- */

static void expect_parse(const char *body, int64_t start, int64_t end, const char *expl)
{
	struct ari_window w;
	int r = ari_parse(body, strlen(body), &w);

	if (r != 0)
		fail_msg("ari_parse(%s) = %d, want 0", body, r);
	if (w.start != start || w.end != end)
		fail_msg("ari_parse(%s) = [%lld, %lld), want [%lld, %lld)", body,
			 (long long)w.start, (long long)w.end, (long long)start, (long long)end);
	if (expl)
		assert_string_equal(w.explanation_url, expl);
	else
		assert_null(w.explanation_url);
	ari_window_clear(&w);
	assert_null(w.explanation_url);
	assert_int_equal(w.start, 0);
}

static void expect_parse_bad_len(const char *body, size_t len)
{
	struct ari_window w = { 111, 222, NULL };
	int r = ari_parse(body, len, &w);

	if (r != -EINVAL)
		fail_msg("ari_parse(%.*s) = %d, want -EINVAL", (int)(len > 200 ? 200 : len),
			 body ? body : "(null)", r);
	assert_int_equal(w.start, 0);
	assert_int_equal(w.end, 0);
	assert_null(w.explanation_url);
}

static void expect_parse_bad(const char *body)
{
	expect_parse_bad_len(body, strlen(body));
}

static void test_parse_valid(void **state)
{
	(void)state;
	expect_parse("{\"suggestedWindow\": {\"start\": \"2025-01-02T04:00:00Z\", "
		     "\"end\": \"2025-01-03T04:00:00Z\"}, "
		     "\"explanationURL\": \"https://acme.example.com/docs/ari\"}",
		     T2025 + DAY + 4 * HOUR, T2025 + 2 * DAY + 4 * HOUR,
		     "https://acme.example.com/docs/ari");
	/* No explanationURL; unknown members ignored. */
	expect_parse("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
		     "\"end\":\"2025-01-01T00:00:01Z\",\"x\":1},\"other\":[1,2]}",
		     T2025, T2025 + 1, NULL);
	/* Fractional seconds are dropped, lower-case t and z. */
	expect_parse("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00.999999999Z\","
		     "\"end\":\"2025-01-01t01:00:00.5z\"}}", T2025, T2025 + HOUR, NULL);
	/* Offsets: both the same instant shifted differently. */
	expect_parse("{\"suggestedWindow\":{\"start\":\"2025-01-01T02:00:00+02:00\","
		     "\"end\":\"2024-12-31T20:00:00-05:00\"}}", T2025, T2025 + HOUR, NULL);
	/* Extreme but sane years. */
	expect_parse("{\"suggestedWindow\":{\"start\":\"2000-01-01T00:00:00Z\","
		     "\"end\":\"9999-12-31T23:59:59Z\"}}", 946684800LL, 253402300799LL, NULL);
}

static void test_parse_explanation_ignored(void **state)
{
	static const char *bad_expl[] = {
		"1", "null", "true", "{}", "[\"https://x\"]", "\"\"",
		"\"https://x/\\nFAKE LOG LINE\"", "\"https://x/ y\"", "\"https://x/\\u00e9\"",
	};
	char body[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_expl) / sizeof(bad_expl[0]); i++) {
		snprintf(body, sizeof(body), "{\"suggestedWindow\":{\"start\":"
			 "\"2025-01-01T00:00:00Z\",\"end\":\"2025-01-02T00:00:00Z\"},"
			 "\"explanationURL\":%s}", bad_expl[i]);
		expect_parse(body, T2025, T2025 + DAY, NULL);
	}
}

static void test_parse_explanation_too_long(void **state)
{
	size_t n = 3000;
	char *body = malloc(n + 200), *p;

	(void)state;
	assert_non_null(body);
	p = body + sprintf(body, "{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			   "\"end\":\"2025-01-02T00:00:00Z\"},\"explanationURL\":\"https://x/");
	memset(p, 'a', n);
	strcpy(p + n, "\"}");
	expect_parse(body, T2025, T2025 + DAY, NULL);
	free(body);
}

static void test_parse_missing_and_order(void **state)
{
	(void)state;
	expect_parse_bad("{}");
	expect_parse_bad("{\"suggestedWindow\":{}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\"}}");
	expect_parse_bad("{\"suggestedWindow\":{\"end\":\"2025-01-01T00:00:00Z\"}}");
	expect_parse_bad("{\"start\":\"2025-01-01T00:00:00Z\",\"end\":\"2025-01-02T00:00:00Z\"}");
	/* end == start and end < start are invalid (RFC 9773 4.2). */
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-01T00:00:00Z\"}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-02T00:00:00Z\","
			 "\"end\":\"2025-01-01T00:00:00Z\"}}");
	/* Same instant written with different offsets is still end == start. */
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T02:00:00+02:00\","
			 "\"end\":\"2025-01-01T00:00:00Z\"}}");
	/* Fractions do not make end > start. */
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00.1Z\","
			 "\"end\":\"2025-01-01T00:00:00.9Z\"}}");
}

static void test_parse_wrong_types(void **state)
{
	(void)state;
	expect_parse_bad("[]");
	expect_parse_bad("\"suggestedWindow\"");
	expect_parse_bad("null");
	expect_parse_bad("42");
	expect_parse_bad("{\"suggestedWindow\":null}");
	expect_parse_bad("{\"suggestedWindow\":\"2025-01-01T00:00:00Z\"}");
	expect_parse_bad("{\"suggestedWindow\":[\"2025-01-01T00:00:00Z\",\"2025-01-02T00:00:00Z\"]}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":1735689600,\"end\":1735776000}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":null,\"end\":\"2025-01-02T00:00:00Z\"}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\",\"end\":true}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":[\"2025-01-01T00:00:00Z\"],"
			 "\"end\":\"2025-01-02T00:00:00Z\"}}");
}

static void test_parse_bad_times(void **state)
{
	static const char *bad[] = {
		"2025-01-01", "2025-01-01T00:00:00", "2025-01-01 00:00:00Z",
		"2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-01-01T24:00:01Z",
		"1999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
		"+2025-01-01T00:00:00Z", "2025-01-01T00:00:00+2400", "2025-01-01T00:00:00Z ",
		" 2025-01-01T00:00:00Z", "", "Wed, 01 Jan 2025 00:00:00 GMT", "now",
		"2025-01-01T00:00:00.Z", "2025-01-01T00:00:00.1234567890Z",
	};
	char body[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"suggestedWindow\":{\"start\":\"%s\","
			 "\"end\":\"9999-01-01T00:00:00Z\"}}", bad[i]);
		expect_parse_bad(body);
		snprintf(body, sizeof(body), "{\"suggestedWindow\":{\"start\":"
			 "\"2000-01-01T00:00:00Z\",\"end\":\"%s\"}}", bad[i]);
		expect_parse_bad(body);
	}
}

static void test_parse_garbage(void **state)
{
	static const char nul_inside[] = "{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
					 "\"end\":\"2025-01-02T00:00:00Z\"}}\0garbage";
	static const char nul_string[] = "{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z"
					 "\\u0000\",\"end\":\"2025-01-02T00:00:00Z\"}}";
	static const char valid[] = "{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
				    "\"end\":\"2025-01-02T00:00:00Z\"}}";
	size_t n;
	char *big, *deep;
	struct ari_window w;

	(void)state;
	expect_parse_bad("");
	expect_parse_bad("{");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-02T00:00:00Z\"}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-02T00:00:00Z\"}} trailing");
	expect_parse_bad("\xef\xbb\xbf{}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-02T00:00:00Z\"},\"suggestedWindow\":{\"start\":"
			 "\"2030-01-01T00:00:00Z\",\"end\":\"2030-01-02T00:00:00Z\"}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"start\":\"2025-01-01T12:00:00Z\",\"end\":\"2025-01-02T00:00:00Z\"}}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-02T00:00:00Z\",}}");
	expect_parse_bad("<html><body>503 Service Unavailable</body></html>");
	expect_parse_bad("{\"type\":\"urn:ietf:params:acme:error:serverInternal\","
			 "\"detail\":\"down\"}");
	expect_parse_bad("{\"suggestedWindow\":{\"start\":\"2025-01-01T00:00:00Z\","
			 "\"end\":\"2025-01-02T00:00:00Z\xff\"}}");
	expect_parse_bad_len(nul_inside, sizeof(nul_inside) - 1);
	expect_parse_bad(nul_string);
	expect_parse_bad_len(NULL, 10);
	expect_parse_bad_len("{}", 0);
	assert_int_equal(ari_parse("{}", 2, NULL), -EINVAL);

	/* A valid body padded past the size limit with whitespace. */
	n = ARI_BODY_MAX + 1;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	memcpy(big, valid, sizeof(valid) - 1);
	assert_int_equal(ari_parse(big, sizeof(valid) - 1, &w), 0);   /* short: fine */
	assert_int_equal(w.end - w.start, DAY);
	ari_window_clear(&w);
	expect_parse_bad_len(big, n);
	free(big);

	/* Deep nesting, inside the size limit. */
	n = 30000;
	deep = malloc(2 * n + 1);
	assert_non_null(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	expect_parse_bad(deep);
	for (size_t i = 0; i < n; i++)
		deep[i] = '{';
	expect_parse_bad(deep);
	free(deep);
}

/* ---- choosing the instant ---- */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void test_choose_uniform(void **state)
{
	enum { BUCKETS = 20, N = 200000 };
	struct ari_window w = { T2025 + 10 * DAY, T2025 + 12 * DAY, NULL };
	unsigned counts[BUCKETS] = { 0 };
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	int64_t span = w.end - w.start, lo = INT64_MAX, hi = INT64_MIN;

	(void)state;
	for (int i = 0; i < N; i++) {
		int64_t t = ari_choose(&w, T2025, xorshift(&s));

		if (t < w.start || t >= w.end)
			fail_msg("ari_choose gave %lld outside [%lld, %lld)", (long long)t,
				 (long long)w.start, (long long)w.end);
		counts[(t - w.start) * BUCKETS / span]++;
		if (t < lo)
			lo = t;
		if (t > hi)
			hi = t;
	}
	/* Expect N / BUCKETS = 10000 each; +-10% is far outside chance. */
	for (int b = 0; b < BUCKETS; b++)
		if (counts[b] < 9000 || counts[b] > 11000)
			fail_msg("bucket %d holds %u of %d", b, counts[b], N);
	/* Both ends of the window are reached. */
	assert_true(lo - w.start < 60);
	assert_true(w.end - hi < 60);

	/* Edge values of rnd stay inside. */
	assert_int_equal(ari_choose(&w, T2025, 0), w.start);
	assert_true(ari_choose(&w, T2025, UINT64_MAX) < w.end);
	assert_true(ari_choose(&w, T2025, UINT64_MAX) >= w.start);
	assert_int_equal(ari_choose(&w, T2025, (uint64_t)span - 1), w.end - 1);
	assert_int_equal(ari_choose(&w, T2025, (uint64_t)span), w.start);
}

static void test_choose_tiny_and_huge(void **state)
{
	struct ari_window one = { T2025, T2025 + 1, NULL };
	struct ari_window huge = { INT64_MIN, INT64_MAX, NULL };
	uint64_t s = 12345;

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ari_choose(&one, 0, xorshift(&s)), T2025);
	for (int i = 0; i < 1000; i++) {
		int64_t t = ari_choose(&huge, INT64_MIN, xorshift(&s));

		assert_true(t < INT64_MAX);
	}
	assert_int_equal(ari_choose(&huge, INT64_MIN, 0), INT64_MIN);
}

static void test_choose_past(void **state)
{
	struct ari_window w = { T2025, T2025 + DAY, NULL };
	struct ari_window bad = { T2025 + DAY, T2025, NULL };
	uint64_t s = 777;
	int64_t now = T2025 + 12 * HOUR;
	int at_now = 0;

	(void)state;
	/* Whole window past: always now. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ari_choose(&w, T2025 + 30 * DAY, xorshift(&s)), T2025 + 30 * DAY);
	assert_int_equal(ari_choose(&w, w.end, 0), w.end);
	/* Half past: about half the draws are now, the rest in [now, end). */
	for (int i = 0; i < 10000; i++) {
		int64_t t = ari_choose(&w, now, xorshift(&s));

		assert_true(t >= now && t < w.end);
		at_now += t == now;
	}
	assert_in_range(at_now, 4500, 5500);
	/* Invalid windows: now. */
	assert_int_equal(ari_choose(&bad, 42, 99), 42);
	assert_int_equal(ari_choose(NULL, 42, 99), 42);
}

/* ---- next poll ---- */

static void test_next_check(void **state)
{
	int64_t now = T2025;

	(void)state;
	assert_int_equal(ari_next_check(now, -1, 0), now + 6 * HOUR);
	assert_int_equal(ari_next_check(now, INT64_MIN, 0), now + 6 * HOUR);
	assert_int_equal(ari_next_check(now, 0, 0), now + 60);
	assert_int_equal(ari_next_check(now, 1, 0), now + 60);
	assert_int_equal(ari_next_check(now, 59, 0), now + 60);
	assert_int_equal(ari_next_check(now, 60, 0), now + 60);
	assert_int_equal(ari_next_check(now, 61, 0), now + 61);
	assert_int_equal(ari_next_check(now, 21600, 0), now + 21600);
	assert_int_equal(ari_next_check(now, DAY, 0), now + DAY);
	assert_int_equal(ari_next_check(now, DAY + 1, 0), now + DAY);
	assert_int_equal(ari_next_check(now, INT64_MAX, 0), now + DAY);
	/* Errors: 6 h whatever Retry-After said. */
	assert_int_equal(ari_next_check(now, -1, 1), now + 6 * HOUR);
	assert_int_equal(ari_next_check(now, 30, 1), now + 6 * HOUR);
	assert_int_equal(ari_next_check(now, 7 * DAY, -EIO), now + 6 * HOUR);
	/* No overflow near the end of time. */
	assert_int_equal(ari_next_check(INT64_MAX - 10, 3600, 0), INT64_MAX);
	assert_int_equal(ari_next_check(INT64_MAX, -1, 1), INT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_id_rfc_vector),
		cmocka_unit_test(test_cert_id_first_of_chain),
		cmocka_unit_test(test_cert_id_no_padding),
		cmocka_unit_test(test_cert_id_no_aki),
		cmocka_unit_test(test_cert_id_garbage),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_explanation_ignored),
		cmocka_unit_test(test_parse_explanation_too_long),
		cmocka_unit_test(test_parse_missing_and_order),
		cmocka_unit_test(test_parse_wrong_types),
		cmocka_unit_test(test_parse_bad_times),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_choose_uniform),
		cmocka_unit_test(test_choose_tiny_and_huge),
		cmocka_unit_test(test_choose_past),
		cmocka_unit_test(test_next_check),
	};

	log_init(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
