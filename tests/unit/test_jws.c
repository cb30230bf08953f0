/* test_jws.c - unit tests of jws.c: JWK members, RFC 7638 thumbprints, flattened JWS verified with OpenSSL. */
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
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto.h"
#include "jws.h"

#define NK 3
static const enum key_type kts[NK] = { KEY_ECDSA_P256, KEY_ECDSA_P384, KEY_RSA_2048 };
static struct crypto_key *keys[NK];

/* RFC 7638 section 3.1. */
static const char rfc7638_n[] =
	"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
	"JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
	"DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
	"vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static int setup_keys(void **state)
{
	(void)state;
	for (int i = 0; i < NK; i++)
		if (crypto_key_generate(kts[i], &keys[i]) != 0)
			return -1;
	return 0;
}

static int teardown_keys(void **state)
{
	(void)state;
	for (int i = 0; i < NK; i++)
		crypto_key_free(keys[i]);
	return 0;
}

static struct crypto_key *rfc7638_key(void)
{
	struct crypto_jwk_params p = { .kty = "RSA", .n = (char *)rfc7638_n, .e = (char *)"AQAB" };
	struct crypto_key *k = NULL;

	assert_int_equal(crypto_pubkey_from_jwk_params(&p, &k), 0);
	return k;
}

static void test_jwk_members(void **state)
{
	(void)state;
	for (int i = 0; i < NK; i++) {
		json_t *jwk = jws_jwk(keys[i]);
		struct crypto_jwk_params p;

		assert_non_null(jwk);
		assert_int_equal(crypto_key_jwk_params(keys[i], &p), 0);
		assert_string_equal(json_string_value(json_object_get(jwk, "kty")), p.kty);
		if (i < 2) {
			assert_int_equal(json_object_size(jwk), 4);
			assert_string_equal(json_string_value(json_object_get(jwk, "crv")),
					    i == 0 ? "P-256" : "P-384");
			assert_string_equal(json_string_value(json_object_get(jwk, "x")), p.x);
			assert_string_equal(json_string_value(json_object_get(jwk, "y")), p.y);
		} else {
			assert_int_equal(json_object_size(jwk), 3);
			assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
			assert_string_equal(json_string_value(json_object_get(jwk, "n")), p.n);
		}
		assert_null(json_object_get(jwk, "alg"));   /* not part of the thumbprint input */
		crypto_jwk_params_clear(&p);
		json_decref(jwk);
	}
	assert_null(jws_jwk(NULL));
}

static void test_thumbprint_rfc7638(void **state)
{
	struct crypto_key *k = rfc7638_key();
	json_t *jwk = jws_jwk(k);
	char *canon = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	char *expect = malloc(strlen(rfc7638_n) + 64);
	char *tp = jws_thumbprint(k);

	(void)state;
	sprintf(expect, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", rfc7638_n);
	assert_string_equal(canon, expect);
	assert_string_equal(tp, rfc7638_thumbprint);
	free(tp);
	tp = jws_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", k);
	assert_string_equal(tp, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
			    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	free(tp);
	free(expect);
	free(canon);
	json_decref(jwk);
	crypto_key_free(k);
}

/* EC thumbprints against a canonical form built by hand. */
static void test_thumbprint_ec(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		struct crypto_jwk_params p;
		char canon[512];
		unsigned char d[32];
		char *expect, *tp;

		assert_int_equal(crypto_key_jwk_params(keys[i], &p), 0);
		snprintf(canon, sizeof(canon), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
			 p.crv, p.x, p.y);
		crypto_sha256(canon, strlen(canon), d);
		expect = crypto_b64url_encode(d, 32);
		tp = jws_thumbprint(keys[i]);
		assert_int_equal(strlen(tp), 43);
		assert_string_equal(tp, expect);
		free(tp);
		free(expect);
		crypto_jwk_params_clear(&p);
	}
	assert_null(jws_thumbprint(NULL));
}

static void test_key_authorization_tokens(void **state)
{
	static const char *bad[] = { "", "a.b", "a/b", "a+b", "a=", "a b", "a\nb", "../x", NULL };
	char *ka, *tp = jws_thumbprint(keys[0]);
	char big[1100];

	(void)state;
	ka = jws_key_authorization("tok-_EN9", keys[0]);
	assert_non_null(ka);
	assert_memory_equal(ka, "tok-_EN9.", 9);
	assert_string_equal(ka + 9, tp);
	free(ka);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(jws_key_authorization(bad[i], keys[0]));
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(jws_key_authorization(big, keys[0]));
	assert_null(jws_key_authorization("tok", NULL));
	free(tp);
}

/* ---- flattened JWS ---- */

static EVP_PKEY *to_evp(const struct crypto_key *k)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *b;
	EVP_PKEY *pk;

	assert_int_equal(crypto_key_to_pem(k, &pem, &len), 0);
	b = BIO_new_mem_buf(pem, (int)len);
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	crypto_free_secret(pem, len);
	assert_non_null(pk);
	return pk;
}

static int verify(EVP_PKEY *pk, int idx, const char *input, const unsigned char *sig,
		  size_t siglen)
{
	size_t fs = idx == 0 ? 32 : idx == 1 ? 48 : 0;
	unsigned char *der = NULL;
	int derlen = 0, ok;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (fs) {
		ECDSA_SIG *es = ECDSA_SIG_new();

		assert_int_equal(siglen, 2 * fs);
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)fs, NULL),
						BN_bin2bn(sig + fs, (int)fs, NULL)), 1);
		derlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
	}
	assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, idx == 1 ? "SHA384" : "SHA256", NULL,
						 NULL, pk, NULL), 1);
	ok = EVP_DigestVerify(md, fs ? der : sig, fs ? (size_t)derlen : siglen,
			      (const unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok == 1;
}

static char *b64dec_str(const char *s)
{
	unsigned char *d = NULL;
	size_t dl = 0;
	char *r;

	assert_int_equal(crypto_b64url_decode(s, strlen(s), &d, &dl), 0);
	r = malloc(dl + 1);
	memcpy(r, d, dl);
	r[dl] = '\0';
	free(d);
	return r;
}

/* Check one JWS and return its protected header (decoded). */
static json_t *check_jws(int idx, const char *out, const char *payload)
{
	json_t *j = json_loads(out, JSON_REJECT_DUPLICATES, NULL), *hdr;
	const char *prot, *pay, *sig;
	char *input, *hs, *ps;
	unsigned char *sigb = NULL;
	size_t siglen = 0;
	EVP_PKEY *pk = to_evp(keys[idx]);

	assert_non_null(j);
	assert_null(strpbrk(out, " \n"));   /* compact */
	assert_int_equal(json_object_size(j), 3);
	prot = json_string_value(json_object_get(j, "protected"));
	pay = json_string_value(json_object_get(j, "payload"));
	sig = json_string_value(json_object_get(j, "signature"));
	assert_non_null(prot);
	assert_non_null(pay);
	assert_non_null(sig);
	if (payload) {
		ps = b64dec_str(pay);
		assert_string_equal(ps, payload);
		free(ps);
	} else {
		assert_string_equal(pay, "");
	}
	hs = b64dec_str(prot);
	hdr = json_loads(hs, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(hdr);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")),
			    idx == 0 ? "ES256" : idx == 1 ? "ES384" : "RS256");
	free(hs);

	input = malloc(strlen(prot) + strlen(pay) + 2);
	sprintf(input, "%s.%s", prot, pay);
	assert_int_equal(crypto_b64url_decode(sig, strlen(sig), &sigb, &siglen), 0);
	assert_true(verify(pk, idx, input, sigb, siglen));
	input[0] ^= 0x01;
	assert_false(verify(pk, idx, input, sigb, siglen));
	free(input);
	free(sigb);
	EVP_PKEY_free(pk);
	json_decref(j);
	return hdr;
}

static void test_sign_kid(void **state)
{
	const char *payload = "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"example.org\"}]}";

	(void)state;
	for (int i = 0; i < NK; i++) {
		char *out = jws_sign(keys[i], "https://ca.example/acct/1", "nonce-1",
				     "https://ca.example/new-order", payload);
		json_t *hdr;

		assert_non_null(out);
		hdr = check_jws(i, out, payload);
		assert_int_equal(json_object_size(hdr), 4);
		assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
				    "https://ca.example/acct/1");
		assert_string_equal(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
		assert_string_equal(json_string_value(json_object_get(hdr, "url")),
				    "https://ca.example/new-order");
		assert_null(json_object_get(hdr, "jwk"));
		json_decref(hdr);
		free(out);
	}
}

static void test_sign_jwk(void **state)
{
	const char *payload = "{\"termsOfServiceAgreed\":true}";

	(void)state;
	for (int i = 0; i < NK; i++) {
		char *out = jws_sign(keys[i], NULL, "n2", "https://ca.example/new-acct", payload);
		json_t *hdr, *jwk = jws_jwk(keys[i]);

		assert_non_null(out);
		hdr = check_jws(i, out, payload);
		assert_int_equal(json_object_size(hdr), 4);
		assert_null(json_object_get(hdr, "kid"));
		assert_true(json_equal(json_object_get(hdr, "jwk"), jwk));
		json_decref(jwk);
		json_decref(hdr);
		free(out);
	}
}

static void test_sign_post_as_get(void **state)
{
	(void)state;
	for (int i = 0; i < NK; i++) {
		char *out = jws_sign(keys[i], "kid-1", "n3", "https://ca.example/order/7", NULL);
		json_t *hdr;

		assert_non_null(out);
		hdr = check_jws(i, out, NULL);
		json_decref(hdr);
		free(out);
		/* An empty object is not an empty payload. */
		out = jws_sign(keys[i], "kid-1", "n3", "https://ca.example/chall/7", "{}");
		hdr = check_jws(i, out, "{}");
		json_decref(hdr);
		free(out);
	}
}

static void test_sign_bad_args(void **state)
{
	struct crypto_key *pub = rfc7638_key();

	(void)state;
	assert_null(jws_sign(NULL, "k", "n", "u", NULL));
	assert_null(jws_sign(keys[0], "k", NULL, "u", NULL));
	assert_null(jws_sign(keys[0], "k", "n", NULL, NULL));
	assert_null(jws_sign(keys[0], "k", "n\xff", "u", NULL));     /* not UTF-8 */
	assert_null(jws_sign(keys[0], "k\xc3", "n", "u", NULL));
	assert_null(jws_sign(pub, "k", "n", "u", NULL));             /* cannot sign */
	crypto_key_free(pub);
}

/* RFC 4231 test case 2 (HMAC-SHA-256) and the SHA-384/512 answers for the same input. */
static void test_hmac_rfc4231(void **state)
{
	static const unsigned char want256[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
		0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43 };
	const char *data = "what do ya want for nothing?";
	unsigned char out[CRYPTO_HMAC_MAX];
	size_t n = 0;

	(void)state;
	assert_int_equal(crypto_hmac("HS256", "Jefe", 4, data, strlen(data), out, &n), 0);
	assert_int_equal(n, 32);
	assert_memory_equal(out, want256, 32);
	assert_int_equal(crypto_hmac("HS384", "Jefe", 4, data, strlen(data), out, &n), 0);
	assert_int_equal(n, 48);
	assert_int_equal(out[0], 0xaf);         /* af45d2e3... */
	assert_int_equal(crypto_hmac("HS512", "Jefe", 4, data, strlen(data), out, &n), 0);
	assert_int_equal(n, 64);
	assert_int_equal(out[0], 0x16);         /* 164b7a7b... */
	assert_int_equal(crypto_hmac("RS256", "Jefe", 4, data, strlen(data), out, &n), -EINVAL);
	assert_int_equal(crypto_hmac("HS256", "", 0, data, strlen(data), out, &n), -EINVAL);
}

/* The externalAccountBinding: protected {alg, kid, url} (no nonce), the account's JWK as payload,
 * the HMAC of "protected.payload" with the CA's key. */
static void test_eab(void **state)
{
	static const unsigned char mac_key[] = "0123456789abcdef0123456789abcdef";
	json_t *eab = jws_eab(keys[0], "kid-1", "HS256", mac_key, 32, "https://ca.example/new-account");
	const char *p64, *y64, *s64;
	unsigned char *prot, *pay, *sig, want[CRYPTO_HMAC_MAX];
	size_t plen, ylen, slen, wlen;
	json_t *hdr, *jwk, *mine = jws_jwk(keys[0]);
	char *input;

	(void)state;
	assert_non_null(eab);
	p64 = json_string_value(json_object_get(eab, "protected"));
	y64 = json_string_value(json_object_get(eab, "payload"));
	s64 = json_string_value(json_object_get(eab, "signature"));
	assert_non_null(p64);
	assert_non_null(y64);
	assert_non_null(s64);
	assert_int_equal(crypto_b64url_decode(p64, strlen(p64), &prot, &plen), 0);
	assert_int_equal(crypto_b64url_decode(y64, strlen(y64), &pay, &ylen), 0);
	assert_int_equal(crypto_b64url_decode(s64, strlen(s64), &sig, &slen), 0);
	hdr = json_loadb((const char *)prot, plen, 0, NULL);
	jwk = json_loadb((const char *)pay, ylen, 0, NULL);
	assert_int_equal(json_object_size(hdr), 3);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
	assert_string_equal(json_string_value(json_object_get(hdr, "url")), "https://ca.example/new-account");
	assert_true(json_equal(jwk, mine));
	assert_true(asprintf(&input, "%s.%s", p64, y64) > 0);
	assert_int_equal(crypto_hmac("HS256", mac_key, 32, input, strlen(input), want, &wlen), 0);
	assert_int_equal(slen, wlen);
	assert_memory_equal(sig, want, wlen);
	free(input);
	free(prot);
	free(pay);
	free(sig);
	json_decref(hdr);
	json_decref(jwk);
	json_decref(mine);
	json_decref(eab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwk_members),
		cmocka_unit_test(test_thumbprint_rfc7638),
		cmocka_unit_test(test_thumbprint_ec),
		cmocka_unit_test(test_key_authorization_tokens),
		cmocka_unit_test(test_sign_kid),
		cmocka_unit_test(test_sign_jwk),
		cmocka_unit_test(test_sign_post_as_get),
		cmocka_unit_test(test_sign_bad_args),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_eab),
	};

	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
