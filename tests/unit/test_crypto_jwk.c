/* test_crypto_jwk.c - private keys from JWKs (certbot's account key files), with mismatched and hostile members. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "crypto.h"
#include "jws.h"

static json_t *fixture(const char *name)
{
	const char *dir = getenv("ACMED_TEST_DATA");
	char path[1024];
	json_t *j;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	j = json_load_file(path, 0, NULL);
	if (!j)
		fail_msg("cannot read %s", path);
	return j;
}

static const char *m(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static struct crypto_jwk_private members(json_t *j)
{
	struct crypto_jwk_private p = {
		.kty = m(j, "kty"), .crv = m(j, "crv"), .x = m(j, "x"), .y = m(j, "y"), .d = m(j, "d"),
		.n = m(j, "n"), .e = m(j, "e"), .p = m(j, "p"), .q = m(j, "q"), .dp = m(j, "dp"),
		.dq = m(j, "dq"), .qi = m(j, "qi"),
	};
	return p;
}

/* The key signs, and its public half is the JWK's (same RFC 7638 thumbprint). */
static void expect_usable(const struct crypto_jwk_private *p, enum key_type want)
{
	struct crypto_jwk_params pub = { .kty = p->kty, .crv = p->crv, .x = (char *)p->x,
					 .y = (char *)p->y, .n = (char *)p->n, .e = (char *)p->e };
	struct crypto_key *key = NULL, *pk = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	enum key_type kt;
	char *t1, *t2, *pem = NULL;
	size_t pemlen = 0;

	assert_int_equal(crypto_key_from_jwk_private(p, &key), 0);
	assert_int_equal(crypto_key_type(key, &kt), 0);
	assert_int_equal(kt, want);
	assert_int_equal(crypto_sign(key, "abc", 3, &sig, &siglen), 0);
	assert_true(siglen > 0);
	assert_int_equal(crypto_pubkey_from_jwk_params(&pub, &pk), 0);
	t1 = jws_thumbprint(key);
	t2 = jws_thumbprint(pk);
	assert_non_null(t1);
	assert_string_equal(t1, t2);
	/* written as acmed keeps account keys, and read back */
	assert_int_equal(crypto_key_to_pem(key, &pem, &pemlen), 0);
	crypto_key_free(pk);
	pk = NULL;
	assert_int_equal(crypto_key_from_pem(pem, pemlen, &pk), 0);
	free(t2);
	t2 = jws_thumbprint(pk);
	assert_string_equal(t1, t2);
	crypto_free_secret(pem, pemlen);
	free(t1);
	free(t2);
	free(sig);
	crypto_key_free(key);
	crypto_key_free(pk);
}

static void expect_rejected(const struct crypto_jwk_private *p, int want, const char *what)
{
	struct crypto_key *key = (struct crypto_key *)1;
	int rc = crypto_key_from_jwk_private(p, &key);

	if (rc != want || key != NULL)
		fail_msg("%s: rc %d (want %d), key %p", what, rc, want, (void *)key);
}

static void test_certbot_rsa_account_key(void **state)
{
	json_t *j = fixture("certbot_account_rsa.json"), *o = fixture("certbot_account_rsa_other.json");
	struct crypto_jwk_private p = members(j), q;

	(void)state;
	expect_usable(&p, KEY_RSA_2048);
	/* without the CRT members, or some of them: the pair cannot be checked */
	q = p;
	q.p = q.q = q.dp = q.dq = q.qi = NULL;
	expect_rejected(&q, -EINVAL, "RSA without CRT members");
	q = p;
	q.dq = NULL;
	expect_rejected(&q, -EINVAL, "RSA without dq");
	/* another key's private exponent, or primes: the halves do not belong together */
	q = p;
	q.d = m(o, "d");
	expect_rejected(&q, -EINVAL, "RSA with another key's d");
	q = p;
	q.p = m(o, "p");
	q.q = m(o, "q");
	expect_rejected(&q, -EINVAL, "RSA with another key's primes");
	q = p;
	q.n = m(o, "n");
	expect_rejected(&q, -EINVAL, "RSA with another key's modulus");
	/* hostile members */
	q = p;
	q.n = "not base64!";
	expect_rejected(&q, -EINVAL, "RSA n not base64url");
	q = p;
	q.e = "";
	expect_rejected(&q, -EINVAL, "RSA empty e");
	q = p;
	q.d = NULL;
	expect_rejected(&q, -EINVAL, "RSA without d");
	q = p;
	q.kty = "oct";
	expect_rejected(&q, -ENOTSUP, "kty oct");
	q = p;
	q.kty = NULL;
	expect_rejected(&q, -EINVAL, "no kty");
	expect_rejected(NULL, -EINVAL, "NULL");
	json_decref(j);
	json_decref(o);
}

static void test_ec_key(void **state)
{
	json_t *j = fixture("jwk_ec_p256.json"), *o = fixture("jwk_ec_p256_other.json");
	struct crypto_jwk_private p = members(j), q;

	(void)state;
	expect_usable(&p, KEY_ECDSA_P256);
	q = p;
	q.d = m(o, "d");
	expect_rejected(&q, -EINVAL, "EC with another key's d");
	q = p;
	q.x = m(o, "x");
	expect_rejected(&q, -EINVAL, "EC point off the curve (x of another key)");
	q = p;
	q.crv = "P-521";
	expect_rejected(&q, -ENOTSUP, "EC P-521");
	q = p;
	q.crv = NULL;
	expect_rejected(&q, -EINVAL, "EC without crv");
	q = p;
	q.y = "AAAA";
	expect_rejected(&q, -EINVAL, "EC y too short");
	q = p;
	q.d = "AA";
	expect_rejected(&q, -EINVAL, "EC d = 0");
	json_decref(j);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certbot_rsa_account_key),
		cmocka_unit_test(test_ec_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
