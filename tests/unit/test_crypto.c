/* test_crypto.c - unit tests of crypto.c, checked independently with OpenSSL itself. */
#include <errno.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"

#define NKT 5
static const enum key_type all_kt[NKT] = { KEY_ECDSA_P256, KEY_ECDSA_P384, KEY_RSA_2048,
					   KEY_RSA_3072, KEY_RSA_4096 };
static struct crypto_key *keys[NKT];

static int setup_keys(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++)
		if (crypto_key_generate(all_kt[i], &keys[i]) != 0)
			return -1;
	return 0;
}

static int teardown_keys(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++) {
		crypto_key_free(keys[i]);
		keys[i] = NULL;
	}
	return 0;
}

/* ---- helpers (plain OpenSSL, independent of crypto.c) ---- */

static char *bio_str(BIO *b)
{
	char *d = NULL;
	long n = BIO_get_mem_data(b, &d);
	char *s = malloc((size_t)n + 1);

	assert_non_null(s);
	memcpy(s, d, (size_t)n);
	s[n] = '\0';
	return s;
}

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

static char *evp_pem(EVP_PKEY *pk, int traditional)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	if (traditional)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	s = bio_str(b);
	BIO_free(b);
	return s;
}

static size_t field_size(enum key_type kt)
{
	return kt == KEY_ECDSA_P256 ? 32 : kt == KEY_ECDSA_P384 ? 48 : 0;
}

/* Verify a JOSE signature: r||s goes back to DER for ECDSA. */
static int verify_jose(EVP_PKEY *pk, enum key_type kt, const void *data, size_t len,
		       const unsigned char *sig, size_t siglen)
{
	size_t fs = field_size(kt);
	unsigned char *der = NULL;
	int derlen = 0, ok;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (fs) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r, *s;

		assert_int_equal(siglen, 2 * fs);
		r = BN_bin2bn(sig, (int)fs, NULL);
		s = BN_bin2bn(sig + fs, (int)fs, NULL);
		assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
		derlen = i2d_ECDSA_SIG(es, &der);
		assert_true(derlen > 0);
		ECDSA_SIG_free(es);
	}
	assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, kt == KEY_ECDSA_P384 ? "SHA384" : "SHA256",
						 NULL, NULL, pk, NULL), 1);
	ok = EVP_DigestVerify(md, fs ? der : sig, fs ? (size_t)derlen : siglen, data, len);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok == 1;
}

/* ---- keys ---- */

static void test_keygen_and_pem(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++) {
		enum key_type kt;
		char *pem = NULL;
		size_t len = 0;
		struct crypto_key *back = NULL;
		struct crypto_jwk_params a, b;
		EVP_PKEY *pk;
		const char *hdr = "-----BEGIN PRIVATE KEY-----\n";
		const char *ftr = "-----END PRIVATE KEY-----\n";

		assert_int_equal(crypto_key_type(keys[i], &kt), 0);
		assert_int_equal(kt, all_kt[i]);
		assert_int_equal(crypto_key_to_pem(keys[i], &pem, &len), 0);
		assert_int_equal(strlen(pem), len);
		assert_memory_equal(pem, hdr, strlen(hdr));   /* PKCS#8, unencrypted */
		assert_string_equal(pem + len - strlen(ftr), ftr);

		assert_int_equal(crypto_key_from_pem(pem, len, &back), 0);
		assert_int_equal(crypto_key_type(back, &kt), 0);
		assert_int_equal(kt, all_kt[i]);
		assert_int_equal(crypto_key_jwk_params(keys[i], &a), 0);
		assert_int_equal(crypto_key_jwk_params(back, &b), 0);
		if (field_size(kt)) {
			assert_string_equal(a.x, b.x);
			assert_string_equal(a.y, b.y);
		} else {
			assert_string_equal(a.n, b.n);
			assert_string_equal(a.e, b.e);
		}
		crypto_jwk_params_clear(&a);
		crypto_jwk_params_clear(&b);
		crypto_key_free(back);
		crypto_free_secret(pem, len);

		pk = to_evp(keys[i]);
		if (field_size(kt)) {
			char grp[64], enc[64];

			assert_int_equal(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
									grp, sizeof(grp), NULL), 1);
			assert_string_equal(grp, kt == KEY_ECDSA_P256 ? "prime256v1" : "secp384r1");
			assert_int_equal(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING,
									enc, sizeof(enc), NULL), 1);
			assert_string_equal(enc, "named_curve");
		} else {
			BIGNUM *e = NULL;

			assert_true(EVP_PKEY_is_a(pk, "RSA"));
			assert_int_equal(EVP_PKEY_get_bits(pk),
					 kt == KEY_RSA_2048 ? 2048 : kt == KEY_RSA_3072 ? 3072 : 4096);
			assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
			assert_true(BN_is_word(e, 65537));
			BN_free(e);
		}
		EVP_PKEY_free(pk);
	}
}

static void test_key_from_traditional_pem(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {   /* P-256, P-384, RSA-2048 */
		EVP_PKEY *pk = to_evp(keys[i]);
		char *pem = evp_pem(pk, 1);
		struct crypto_key *k = NULL;
		enum key_type kt;

		assert_non_null(strstr(pem, i < 2 ? "BEGIN EC PRIVATE KEY" : "BEGIN RSA PRIVATE KEY"));
		assert_int_equal(crypto_key_from_pem(pem, strlen(pem), &k), 0);
		assert_int_equal(crypto_key_type(k, &kt), 0);
		assert_int_equal(kt, all_kt[i]);
		crypto_key_free(k);
		free(pem);
		EVP_PKEY_free(pk);
	}
}

/* The decoder contexts are kept between calls: keys of every format, read in
 * turn and again after failures, must each come back as themselves. */
static void test_key_decoders_reused(void **state)
{
	char *pems[2 * NKT];
	struct crypto_key *got[2 * NKT];
	const char *bad = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
			  "-----END PRIVATE KEY-----\n";

	(void)state;
	for (int i = 0; i < NKT; i++) {
		EVP_PKEY *pk = to_evp(keys[i]);

		pems[2 * i] = evp_pem(pk, 0);
		pems[2 * i + 1] = evp_pem(pk, 1);
		EVP_PKEY_free(pk);
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2 * NKT; i++) {
			struct crypto_key *k = NULL;

			/* a truncated key of the same kind first: it must not poison the next */
			assert_int_equal(crypto_key_from_pem(bad, strlen(bad), &k), -EINVAL);
			assert_int_equal(crypto_key_from_pem(pems[i], strlen(pems[i]), &got[i]), 0);
		}
		for (int i = 0; i < 2 * NKT; i++) {
			struct crypto_jwk_params a, b;

			assert_int_equal(crypto_key_jwk_params(keys[i / 2], &a), 0);
			assert_int_equal(crypto_key_jwk_params(got[i], &b), 0);
			assert_string_equal(a.kty, b.kty);
			if (a.x) {
				assert_string_equal(a.x, b.x);
				assert_string_equal(a.y, b.y);
			} else {
				assert_string_equal(a.n, b.n);
			}
			crypto_jwk_params_clear(&a);
			crypto_jwk_params_clear(&b);
			crypto_key_free(got[i]);
		}
	}
	for (int i = 0; i < 2 * NKT; i++)
		free(pems[i]);
	crypto_cleanup();
}

/* A private key after other PEM blocks (a certificate, a parameters block) is found. */
static void test_key_after_other_blocks(void **state)
{
	EVP_PKEY *pk = to_evp(keys[0]);
	char *key = evp_pem(pk, 0), *both;
	const char *params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
	struct crypto_key *k = NULL;
	enum key_type kt;

	(void)state;
	assert_true(asprintf(&both, "%s%s", params, key) > 0);
	assert_int_equal(crypto_key_from_pem(both, strlen(both), &k), 0);
	assert_int_equal(crypto_key_type(k, &kt), 0);
	assert_int_equal(kt, KEY_ECDSA_P256);
	crypto_key_free(k);
	free(both);
	free(key);
	EVP_PKEY_free(pk);
}

static void expect_key_rejected(const char *pem, size_t len, int err)
{
	struct crypto_key *k = (struct crypto_key *)&k;   /* must be reset to NULL */

	assert_int_equal(crypto_key_from_pem(pem, len, &k), err);
	assert_null(k);
}

static void test_key_from_pem_hostile(void **state)
{
	EVP_PKEY *pk = to_evp(keys[0]);
	char *good = evp_pem(pk, 0);
	size_t glen = strlen(good);
	char *big;
	BIO *b;
	char *enc;

	(void)state;
	expect_key_rejected(NULL, 0, -EINVAL);
	expect_key_rejected("", 0, -EINVAL);
	expect_key_rejected("garbage", 7, -EINVAL);
	expect_key_rejected(good, glen / 2, -EINVAL);          /* truncated */
	expect_key_rejected(good, glen - 10, -EINVAL);         /* END line cut */
	good[40] = '!';                                        /* corrupted base64 */
	expect_key_rejected(good, glen, -EINVAL);
	free(good);

	/* An encrypted key is refused, without ever prompting for a password. */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL,
						       (void *)"secret"), 1);
	enc = bio_str(b);
	BIO_free(b);
	assert_non_null(strstr(enc, "ENCRYPTED PRIVATE KEY"));
	expect_key_rejected(enc, strlen(enc), -EINVAL);
	free(enc);
	/* ... and so is an encrypted traditional one (Proc-Type header). */
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pk, EVP_aes_256_cbc(),
							      (unsigned char *)"secret", 6, NULL, NULL), 1);
	enc = bio_str(b);
	BIO_free(b);
	assert_non_null(strstr(enc, "Proc-Type: 4,ENCRYPTED"));
	expect_key_rejected(enc, strlen(enc), -EINVAL);
	free(enc);
	EVP_PKEY_free(pk);

	/* Keys of kinds acmed does not make. */
	{
		EVP_PKEY *others[3];
		others[0] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		others[1] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
		others[2] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
		for (int i = 0; i < 3; i++) {
			char *p;

			assert_non_null(others[i]);
			p = evp_pem(others[i], 0);
			expect_key_rejected(p, strlen(p), -ENOTSUP);
			free(p);
			EVP_PKEY_free(others[i]);
		}
	}

	/* Oversized input is refused before parsing. */
	big = malloc((5u << 20) + 1);
	assert_non_null(big);
	memset(big, 'A', 5u << 20);
	big[5u << 20] = '\0';
	expect_key_rejected(big, 5u << 20, -EINVAL);
	free(big);
}

static void test_sign_verify(void **state)
{
	static const size_t siglens[NKT] = { 64, 96, 256, 384, 512 };
	unsigned char blob[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 7 + 3);
	for (int i = 0; i < NKT; i++) {
		EVP_PKEY *pk = to_evp(keys[i]);
		size_t fs = field_size(all_kt[i]);
		/* ECDSA: sign until some r or s is short (1 in ~128 signatures) and had to be
		 * left-padded; 2000 rounds without one would be a 1e-7 event. */
		int padded = !fs;

		for (int r = 0; r < 3 || (!padded && r < 2000); r++) {
			const void *data = r % 3 == 0 ? (const void *)"" :
					   r % 3 == 1 ? (const void *)"hello" : (const void *)blob;
			size_t len = r % 3 == 0 ? 0 : r % 3 == 1 ? 5 : sizeof(blob);
			unsigned char *sig = NULL;
			size_t siglen = 0;

			assert_int_equal(crypto_sign(keys[i], data, len, &sig, &siglen), 0);
			assert_int_equal(siglen, siglens[i]);
			assert_true(verify_jose(pk, all_kt[i], data, len, sig, siglen));
			if (fs && (sig[0] == 0 || sig[fs] == 0))
				padded = 1;
			if (r < 3) {
				sig[siglen / 2] ^= 0x01;
				assert_false(verify_jose(pk, all_kt[i], data, len, sig, siglen));
				sig[siglen / 2] ^= 0x01;
				assert_false(verify_jose(pk, all_kt[i], "hellO", 5, sig, siglen));
			}
			free(sig);
		}
		assert_true(padded);
		EVP_PKEY_free(pk);
	}
}

static void test_sign_bad_args(void **state)
{
	unsigned char *sig = (unsigned char *)"x";
	size_t siglen = 9;

	(void)state;
	assert_int_equal(crypto_sign(NULL, "a", 1, &sig, &siglen), -EINVAL);
	assert_int_equal(crypto_sign(keys[0], NULL, 1, &sig, &siglen), -EINVAL);
	assert_int_equal(crypto_sign(keys[0], "a", 1, NULL, &siglen), -EINVAL);
}

static void test_jwk_params(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++) {
		struct crypto_jwk_params p;
		unsigned char *d = NULL;
		size_t dl = 0, fs = field_size(all_kt[i]);

		assert_int_equal(crypto_key_jwk_params(keys[i], &p), 0);
		if (fs) {
			assert_string_equal(p.kty, "EC");
			assert_string_equal(p.crv, fs == 32 ? "P-256" : "P-384");
			assert_string_equal(p.alg, fs == 32 ? "ES256" : "ES384");
			assert_null(p.n);
			assert_null(p.e);
			assert_int_equal(strlen(p.x), fs == 32 ? 43 : 64);
			assert_int_equal(crypto_b64url_decode(p.x, strlen(p.x), &d, &dl), 0);
			assert_int_equal(dl, fs);
			free(d);
			assert_int_equal(crypto_b64url_decode(p.y, strlen(p.y), &d, &dl), 0);
			assert_int_equal(dl, fs);
			free(d);
		} else {
			assert_string_equal(p.kty, "RSA");
			assert_string_equal(p.alg, "RS256");
			assert_null(p.crv);
			assert_null(p.x);
			assert_string_equal(p.e, "AQAB");
			assert_int_equal(crypto_b64url_decode(p.n, strlen(p.n), &d, &dl), 0);
			assert_int_equal(dl * 8, all_kt[i] == KEY_RSA_2048 ? 2048u :
					 all_kt[i] == KEY_RSA_3072 ? 3072u : 4096u);
			assert_true(d[0] & 0x80);
			free(d);
		}
		crypto_jwk_params_clear(&p);
		assert_null(p.x);
		assert_null(p.n);
	}
}

/* The JWK members and the PEM are worked out once per key, then handed out as
 * copies the caller owns: equal every time, never the same buffer. */
static void test_key_caches(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++) {
		struct crypto_jwk_params a, b;
		char *p1 = NULL, *p2 = NULL;
		size_t l1 = 0, l2 = 0;
		const char *ma, *mb;

		assert_int_equal(crypto_key_jwk_params(keys[i], &a), 0);
		assert_int_equal(crypto_key_jwk_params(keys[i], &b), 0);
		ma = a.x ? a.x : a.n;
		mb = b.x ? b.x : b.n;
		assert_ptr_not_equal(ma, mb);
		assert_string_equal(ma, mb);
		assert_string_equal(a.kty, b.kty);
		assert_string_equal(a.alg, b.alg);
		if (a.y)
			assert_string_equal(a.y, b.y);
		else
			assert_string_equal(a.e, b.e);
		((char *)ma)[0] ^= 1;           /* a caller's copy is its own */
		crypto_jwk_params_clear(&a);
		assert_int_equal(crypto_key_jwk_params(keys[i], &a), 0);
		assert_string_equal(a.x ? a.x : a.n, mb);
		crypto_jwk_params_clear(&a);
		crypto_jwk_params_clear(&b);

		assert_int_equal(crypto_key_to_pem(keys[i], &p1, &l1), 0);
		assert_int_equal(crypto_key_to_pem(keys[i], &p2, &l2), 0);
		assert_ptr_not_equal(p1, p2);
		assert_int_equal(l1, l2);
		assert_string_equal(p1, p2);
		memset(p1, 'x', l1);
		crypto_free_secret(p1, l1);
		assert_int_equal(crypto_key_to_pem(keys[i], &p1, &l1), 0);
		assert_string_equal(p1, p2);
		crypto_free_secret(p1, l1);
		crypto_free_secret(p2, l2);
	}
}

/* EC keys are written without OpenSSL's encoder: byte for byte what it writes,
 * for the same key (its private scalar and public point), a short scalar too. */
static void check_ec_pem_is_openssl(const struct crypto_key *k, enum key_type kt)
{
	char *pem = NULL, *ref;
	size_t len = 0;
	EVP_PKEY *pk = to_evp(k);
	struct crypto_key *back = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;

	assert_int_equal(crypto_key_to_pem(k, &pem, &len), 0);
	ref = evp_pem(pk, 0);
	assert_string_equal(pem, ref);
	/* and it is this key: what it signs verifies with the key read back */
	assert_int_equal(crypto_key_from_pem(pem, len, &back), 0);
	assert_int_equal(crypto_sign(back, "x", 1, &sig, &siglen), 0);
	assert_true(verify_jose(pk, kt, "x", 1, sig, siglen));
	free(sig);
	assert_int_equal(crypto_sign(k, "y", 1, &sig, &siglen), 0);
	{
		EVP_PKEY *pb = to_evp(back);

		assert_true(verify_jose(pb, kt, "y", 1, sig, siglen));
		EVP_PKEY_free(pb);
	}
	free(sig);
	crypto_key_free(back);
	crypto_free_secret(pem, len);
	free(ref);
	EVP_PKEY_free(pk);
}

static void test_ec_pem_encoding(void **state)
{
	(void)state;
	for (int t = 0; t < 2; t++) {
		enum key_type kt = all_kt[t];
		int short_seen = 0;

		check_ec_pem_is_openssl(keys[t], kt);
		/* A private scalar with a leading zero byte (1 key in 256) is padded.
		 * Candidates are picked by the PKCS#8 byte where the scalar starts,
		 * then confirmed with OpenSSL. */
		for (int i = 0; i < 8000 && !short_seen; i++) {
			struct crypto_key *k = NULL;
			char *pem = NULL;
			size_t len = 0;
			unsigned char der[256];
			int dl;

			assert_int_equal(crypto_key_generate(kt, &k), 0);
			assert_int_equal(crypto_key_to_pem(k, &pem, &len), 0);
			{
				/* the base64 body: between the two header lines, newlines dropped */
				char b64[512], *p = strchr(pem, '\n') + 1, *q = b64;

				for (; *p && *p != '-'; p++)
					if (*p != '\n')
						*q++ = *p;
				*q = '\0';
				dl = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
			}
			assert_true(dl > 40);
			if (der[kt == KEY_ECDSA_P256 ? 36 : 35] == 0) {
				EVP_PKEY *pk = to_evp(k);
				BIGNUM *priv = NULL;

				assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
				if ((size_t)BN_num_bytes(priv) < field_size(kt)) {
					short_seen = 1;
					check_ec_pem_is_openssl(k, kt);
				}
				BN_clear_free(priv);
				EVP_PKEY_free(pk);
			}
			crypto_free_secret(pem, len);
			crypto_key_free(k);
		}
		assert_true(short_seen);
	}
}

static void test_pubkey_from_jwk(void **state)
{
	(void)state;
	for (int i = 0; i < NKT; i++) {
		struct crypto_jwk_params p, q;
		struct crypto_key *pub = NULL;
		enum key_type kt;
		unsigned char *sig = NULL;
		size_t siglen = 0;
		char *pem = NULL;
		size_t len = 0;

		assert_int_equal(crypto_key_jwk_params(keys[i], &p), 0);
		assert_int_equal(crypto_pubkey_from_jwk_params(&p, &pub), 0);
		assert_int_equal(crypto_key_type(pub, &kt), 0);
		assert_int_equal(kt, all_kt[i]);
		assert_int_equal(crypto_key_jwk_params(pub, &q), 0);
		if (field_size(kt)) {
			assert_string_equal(p.x, q.x);
			assert_string_equal(p.y, q.y);
		} else {
			assert_string_equal(p.n, q.n);
			assert_string_equal(p.e, q.e);
		}
		/* A public key can neither sign nor be saved as a private key. */
		assert_int_equal(crypto_sign(pub, "a", 1, &sig, &siglen), -EINVAL);
		assert_null(sig);
		assert_int_equal(crypto_key_to_pem(pub, &pem, &len), -EINVAL);
		assert_null(pem);
		crypto_jwk_params_clear(&q);
		crypto_key_free(pub);
		crypto_jwk_params_clear(&p);
	}
}

static void expect_jwk_rejected(const struct crypto_jwk_params *p)
{
	struct crypto_key *k = (struct crypto_key *)&k;

	assert_true(crypto_pubkey_from_jwk_params(p, &k) < 0);
	assert_null(k);
}

static void test_pubkey_from_jwk_hostile(void **state)
{
	struct crypto_jwk_params ec, rsa, t;
	char *s;

	(void)state;
	assert_int_equal(crypto_key_jwk_params(keys[0], &ec), 0);
	assert_int_equal(crypto_key_jwk_params(keys[2], &rsa), 0);
	expect_jwk_rejected(NULL);
	t = ec; t.kty = "OKP"; expect_jwk_rejected(&t);
	t = ec; t.kty = NULL; expect_jwk_rejected(&t);
	t = ec; t.crv = "P-521"; expect_jwk_rejected(&t);
	t = ec; t.crv = "P-384"; expect_jwk_rejected(&t);      /* 32-byte coordinates */
	t = ec; t.y = NULL; expect_jwk_rejected(&t);
	t = ec; t.x = "AAAA"; expect_jwk_rejected(&t);
	/* A point that is not on the curve. */
	s = strdup(ec.y);
	s[10] = s[10] == 'A' ? 'B' : 'A';
	t = ec; t.y = s; expect_jwk_rejected(&t);
	/* Padding and the standard alphabet are not base64url. */
	s = realloc(s, strlen(ec.x) + 2);
	strcpy(s, ec.x);
	strcat(s, "=");
	t = ec; t.x = s; expect_jwk_rejected(&t);
	free(s);
	t = rsa; t.e = "AA"; expect_jwk_rejected(&t);           /* zero */
	t = rsa; t.e = "AAEAAQ"; expect_jwk_rejected(&t);       /* leading zero */
	t = rsa; t.e = "AQA"; expect_jwk_rejected(&t);          /* even */
	t = rsa; t.n = "AQAB"; expect_jwk_rejected(&t);         /* 17 bits */
	t = rsa; t.n = ""; expect_jwk_rejected(&t);
	s = malloc(strlen(rsa.n) + 3);
	strcpy(s, "AA");                                        /* leading zero octets */
	strcat(s, rsa.n);
	t = rsa; t.n = s; expect_jwk_rejected(&t);
	free(s);
	crypto_jwk_params_clear(&ec);
	crypto_jwk_params_clear(&rsa);
}

/* ---- hashing, base64url, randomness ---- */

static void test_sha256(void **state)
{
	static const unsigned char abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
		0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
		0xf2, 0x00, 0x15, 0xad };
	static const unsigned char empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
		0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
		0x78, 0x52, 0xb8, 0x55 };
	unsigned char out[32];

	(void)state;
	crypto_sha256("abc", 3, out);
	assert_memory_equal(out, abc, 32);
	crypto_sha256("", 0, out);
	assert_memory_equal(out, empty, 32);
}

static void test_b64url_vectors(void **state)
{
	/* RFC 4648 section 10, plus bytes that differ between the two alphabets. */
	static const struct { const char *in; size_t len; const char *out; } v[] = {
		{ "", 0, "" }, { "f", 1, "Zg" }, { "fo", 2, "Zm8" }, { "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg" }, { "fooba", 5, "Zm9vYmE" }, { "foobar", 6, "Zm9vYmFy" },
		{ "\xfb\xff", 2, "-_8" }, { "\xff\xff\xff", 3, "____" }, { "\0\0", 2, "AAA" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = crypto_b64url_encode(v[i].in, v[i].len);
		unsigned char *d = NULL;
		size_t dl = 99;

		assert_string_equal(e, v[i].out);
		free(e);
		assert_int_equal(crypto_b64url_decode(v[i].out, strlen(v[i].out), &d, &dl), 0);
		assert_non_null(d);
		assert_int_equal(dl, v[i].len);
		assert_memory_equal(d, v[i].in, v[i].len);
		free(d);
	}
	assert_null(crypto_b64url_encode(NULL, 1));
}

static void test_b64url_roundtrip(void **state)
{
	unsigned char buf[300];

	(void)state;
	for (size_t len = 0; len <= sizeof(buf); len++) {
		char *e;
		unsigned char *d = NULL;
		size_t dl = 0;

		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(crypto_random_u64() & 0xff);
		e = crypto_b64url_encode(buf, len);
		assert_non_null(e);
		assert_int_equal(strlen(e), (len * 4 + 2) / 3);
		assert_null(strpbrk(e, "+/="));
		assert_int_equal(crypto_b64url_decode(e, strlen(e), &d, &dl), 0);
		assert_int_equal(dl, len);
		assert_memory_equal(d, buf, len);
		free(d);
		free(e);
	}
}

static void expect_b64_rejected(const char *s, size_t len, int err)
{
	unsigned char *d = (unsigned char *)"x";
	size_t dl = 7;

	assert_int_equal(crypto_b64url_decode(s, len, &d, &dl), err);
	assert_null(d);
	assert_int_equal(dl, 0);
}

static void test_b64url_hostile(void **state)
{
	static const char *bad[] = {
		"Zg==", "Zg=", "Zm8=", "Zm9v+A", "Zm9v/A", "+/+/", " Zg", "Zg ", "Z g", "Zg\n",
		"Zm9vY",          /* one leftover character cannot encode a byte */
		"Zh", "Zm9", "AB",  /* non-zero unused bits: not the canonical encoding */
		"Zm9v!", "Zm9v.", "\xc3\xa9", "=",
	};
	size_t big = (16u << 20) + 4;
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_b64_rejected(bad[i], strlen(bad[i]), -EINVAL);
	expect_b64_rejected("Zm\0v", 4, -EINVAL);
	expect_b64_rejected(NULL, 4, -EINVAL);
	assert_int_equal(crypto_b64url_decode("Zg", 2, NULL, NULL), -EINVAL);

	/* Long garbage: one bad character at the very end; then beyond the limit. */
	s = malloc(big);
	assert_non_null(s);
	memset(s, 'A', big);
	s[(1u << 20) - 1] = '*';
	expect_b64_rejected(s, 1u << 20, -EINVAL);
	s[(1u << 20) - 1] = 'A';
	{
		unsigned char *d = NULL;
		size_t dl = 0;

		assert_int_equal(crypto_b64url_decode(s, 1u << 20, &d, &dl), 0);
		assert_int_equal(dl, 3u << 18);
		free(d);
	}
	expect_b64_rejected(s, big, -E2BIG);
	free(s);
}

static void test_random(void **state)
{
	uint64_t all = 0, prev = crypto_random_u64();
	int same = 0;

	(void)state;
	for (int i = 0; i < 128; i++) {
		uint64_t v = crypto_random_u64();

		same += v == prev;
		all |= v;
		prev = v;
	}
	assert_int_equal(same, 0);
	assert_true(all == UINT64_MAX);   /* every bit was set at least once */
	crypto_free_secret(NULL, 0);
	crypto_free_secret(strdup("secret"), 7);
}

/* ---- CSR ---- */

static void check_csr(const struct crypto_key *key, enum key_type kt, const char *const *doms,
		      size_t n, int expect_cn)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	X509_REQ *req;
	EVP_PKEY *pub, *pk = to_evp(key);
	X509_NAME *subj;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens;
	int crit = 0;

	assert_int_equal(crypto_csr_der(key, doms, n, &der, &derlen), 0);
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)derlen);
	assert_non_null(req);
	assert_ptr_equal(p, der + derlen);
	assert_int_equal(X509_REQ_get_version(req), 0);
	pub = X509_REQ_get0_pubkey(req);
	assert_non_null(pub);
	assert_int_equal(EVP_PKEY_eq(pub, pk), 1);
	{
		/* The subjectPublicKeyInfo is exactly OpenSSL's encoding of the key. */
		unsigned char *a = NULL, *b = NULL;
		int al = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &a), bl = i2d_PUBKEY(pk, &b);

		assert_true(al > 0);
		assert_int_equal(al, bl);
		assert_memory_equal(a, b, (size_t)al);
		OPENSSL_free(a);
		OPENSSL_free(b);
	}
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	assert_int_equal(X509_REQ_get_signature_nid(req),
			 field_size(kt) ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption);

	subj = X509_REQ_get_subject_name(req);
	if (expect_cn) {
		X509_NAME_ENTRY *e;
		const ASN1_STRING *cn;

		assert_int_equal(X509_NAME_entry_count(subj), 1);
		e = X509_NAME_get_entry(subj, 0);
		assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), NID_commonName);
		cn = X509_NAME_ENTRY_get_data(e);
		assert_int_equal(ASN1_STRING_length(cn), strlen(doms[0]));
		assert_memory_equal(ASN1_STRING_get0_data(cn), doms[0], strlen(doms[0]));
	} else {
		assert_int_equal(X509_NAME_entry_count(subj), 0);
	}

	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(gens), (int)n);
	for (size_t i = 0; i < n; i++) {
		int type;
		const ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, (int)i), &type);

		unsigned char ip[16];
		int iplen = inet_pton(strchr(doms[i], ':') ? AF_INET6 : AF_INET, doms[i], ip) == 1 ?
			    (strchr(doms[i], ':') ? 16 : 4) : 0;

		if (iplen) {            /* RFC 8738: an iPAddress with the address's bytes */
			assert_int_equal(type, GEN_IPADD);
			assert_int_equal(ASN1_STRING_length(s), iplen);
			assert_memory_equal(ASN1_STRING_get0_data(s), ip, (size_t)iplen);
			continue;
		}
		assert_int_equal(type, GEN_DNS);
		assert_int_equal(ASN1_STRING_length(s), strlen(doms[i]));
		assert_memory_equal(ASN1_STRING_get0_data(s), doms[i], strlen(doms[i]));
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	free(der);
}

static void test_csr(void **state)
{
	static const char *const doms[] = { "example.org", "www.example.org", "*.example.net" };
	char d64[65], d65[66];
	const char *longfirst[2] = { d65, "example.org" };
	const char *first64[1] = { d64 };

	(void)state;
	for (int i = 0; i < NKT; i++)
		check_csr(keys[i], all_kt[i], doms, 3, 1);
	check_csr(keys[0], all_kt[0], doms + 1, 1, 1);
	memset(d64, 'a', 64);
	memcpy(d64 + 60, ".org", 5);
	memset(d65, 'b', 65);
	memcpy(d65 + 61, ".org", 5);
	check_csr(keys[0], all_kt[0], first64, 1, 1);        /* 64 bytes: still a CN */
	check_csr(keys[1], all_kt[1], longfirst, 2, 0);      /* 65 bytes: SAN only */
	{
		/* IP addresses (RFC 8738): iPAddress SANs; one first is no CN */
		static const char *const ips[] = { "192.0.2.10", "2001:db8::10", "www.example.org" };
		static const char *const named[] = { "www.example.org", "192.0.2.10" };

		check_csr(keys[0], all_kt[0], ips, 3, 0);
		check_csr(keys[0], all_kt[0], named, 2, 1);
	}
}

static void test_csr_bad_input(void **state)
{
	char d254[255];
	const char *bad[] = { "", "exa mple.org", "a\nb", "a/b", "\xc3\xa9.org", d254, NULL };
	unsigned char *der = (unsigned char *)"x";
	size_t derlen = 5;
	const char *one[1] = { "example.org" };

	(void)state;
	memset(d254, 'a', 254);
	d254[254] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *doms[2] = { "ok.example.org", bad[i] };

		assert_int_equal(crypto_csr_der(keys[0], doms, 2, &der, &derlen), -EINVAL);
		assert_null(der);
		assert_int_equal(derlen, 0);
	}
	assert_int_equal(crypto_csr_der(keys[0], one, 0, &der, &derlen), -EINVAL);
	assert_int_equal(crypto_csr_der(keys[0], NULL, 1, &der, &derlen), -EINVAL);
	assert_int_equal(crypto_csr_der(NULL, one, 1, &der, &derlen), -EINVAL);
}

/* ---- certificates ---- */

struct certspec {
	const unsigned char *serial;
	size_t serial_len;
	const char *const *names;
	size_t nnames;
	const unsigned char *aki;
	size_t aki_len;
	time_t nb, na;
	int dup_san;
};

static const unsigned char high_serial[] = { 0x87, 0x65, 0x43, 0x21, 0x0f, 0xed, 0xcb, 0xa9,
					     0x87, 0x65, 0x43, 0x21, 0x0f, 0xed, 0xcb, 0xa9 };
static const unsigned char low_serial[] = { 0x01, 0x02, 0x03 };
static const unsigned char aki_bytes[20] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8,
					     9, 10, 11, 12, 13, 14, 15, 16 };

static void add_san(X509 *x, const struct certspec *s)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	static const unsigned char ip[4] = { 192, 0, 2, 1 };

	for (size_t i = 0; i < s->nnames; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

		assert_int_equal(ASN1_STRING_set(ia5, s->names[i], -1), 1);
		GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
		sk_GENERAL_NAME_push(gens, g);
		if (i == 0) {   /* an iPAddress, and an rfc822Name that is no name of the certificate */
			GENERAL_NAME *g2 = GENERAL_NAME_new();
			ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
			GENERAL_NAME *g3 = GENERAL_NAME_new();
			ASN1_IA5STRING *m = ASN1_IA5STRING_new();

			ASN1_OCTET_STRING_set(o, ip, 4);
			GENERAL_NAME_set0_value(g2, GEN_IPADD, o);
			sk_GENERAL_NAME_push(gens, g2);
			ASN1_STRING_set(m, "Ops@Example.org", -1);
			GENERAL_NAME_set0_value(g3, GEN_EMAIL, m);
			sk_GENERAL_NAME_push(gens, g3);
		}
	}
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND), 1);
	if (s->dup_san)
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
						   X509V3_ADD_APPEND), 1);
	GENERAL_NAMES_free(gens);
}

static char *make_cert(EVP_PKEY *subject, EVP_PKEY *signer, const struct certspec *s)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_bin2bn(s->serial, (int)s->serial_len, NULL);
	ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
	ASN1_TIME *nb = ASN1_TIME_set(NULL, s->nb), *na = ASN1_TIME_set(NULL, s->na);
	X509_NAME *name = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;

	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(X509_set_serialNumber(x, ai), 1);
	assert_int_equal(X509_set1_notBefore(x, nb), 1);
	assert_int_equal(X509_set1_notAfter(x, na), 1);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	assert_int_equal(X509_set_pubkey(x, subject), 1);
	if (s->nnames)
		add_san(x, s);
	if (s->aki) {
		AUTHORITY_KEYID *ak = AUTHORITY_KEYID_new();

		ak->keyid = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING_set(ak->keyid, s->aki, (int)s->aki_len);
		assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, ak, 0, 0), 1);
		AUTHORITY_KEYID_free(ak);
	}
	assert_true(X509_sign(x, signer, EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	pem = bio_str(b);
	BIO_free(b);
	X509_NAME_free(name);
	ASN1_TIME_free(nb);
	ASN1_TIME_free(na);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_free(x);
	return pem;
}

static const char *const mixed_names[] = { "WWW.Example.ORG", "example.org", "*.Sub.Example.Org" };

static void test_cert_info(void **state)
{
	EVP_PKEY *pk = to_evp(keys[0]), *ca = to_evp(keys[2]);
	struct certspec s = { high_serial, sizeof(high_serial), mixed_names, 3, aki_bytes,
			      sizeof(aki_bytes), 1700000000, 2600000000LL, 0 };
	char *pem = make_cert(pk, ca, &s);
	struct crypto_cert_info info;

	(void)state;
	assert_int_equal(crypto_cert_info_pem(pem, strlen(pem), &info), 0);
	assert_int_equal(info.not_before, 1700000000);
	assert_int_equal(info.not_after, 2600000000LL);   /* GeneralizedTime (after 2049) */
	assert_int_equal(info.nnames, 4);
	assert_string_equal(info.names[0], "www.example.org");
	assert_string_equal(info.names[1], "192.0.2.1");          /* an iPAddress (RFC 8738) */
	assert_string_equal(info.names[2], "example.org");
	assert_string_equal(info.names[3], "*.sub.example.org");
	assert_null(info.names[4]);
	assert_int_equal(info.serial_len, sizeof(high_serial) + 1);
	assert_int_equal(info.serial[0], 0x00);            /* the DER sign octet stays */
	assert_memory_equal(info.serial + 1, high_serial, sizeof(high_serial));
	assert_int_equal(info.aki_len, sizeof(aki_bytes));
	assert_memory_equal(info.aki, aki_bytes, sizeof(aki_bytes));
	assert_true(info.key_type_known);
	assert_int_equal(info.key_type, KEY_ECDSA_P256);
	crypto_cert_info_clear(&info);
	assert_null(info.names);
	assert_null(info.serial);
	free(pem);

	/* No SAN, no AKI, short serial; an RSA-3072 key. */
	{
		EVP_PKEY *rk = to_evp(keys[3]);
		struct certspec t = { low_serial, sizeof(low_serial), NULL, 0, NULL, 0,
				      0, 86400, 0 };

		pem = make_cert(rk, rk, &t);
		assert_int_equal(crypto_cert_info_pem(pem, strlen(pem), &info), 0);
		assert_int_equal(info.not_before, 0);
		assert_int_equal(info.not_after, 86400);
		assert_int_equal(info.nnames, 0);
		assert_non_null(info.names);
		assert_null(info.names[0]);
		assert_int_equal(info.serial_len, 3);
		assert_memory_equal(info.serial, low_serial, 3);
		assert_null(info.aki);
		assert_int_equal(info.aki_len, 0);
		assert_true(info.key_type_known);
		assert_int_equal(info.key_type, KEY_RSA_3072);
		crypto_cert_info_clear(&info);
		free(pem);
		EVP_PKEY_free(rk);
	}

	/* A key type acmed does not make. */
	{
		EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		struct certspec t = { low_serial, 1, mixed_names, 1, NULL, 0, 1000, 2000, 0 };

		pem = make_cert(ed, ed, &t);
		assert_int_equal(crypto_cert_info_pem(pem, strlen(pem), &info), 0);
		assert_false(info.key_type_known);
		assert_int_equal(info.nnames, 2);     /* its name and the iPAddress */
		crypto_cert_info_clear(&info);
		assert_int_equal(crypto_cert_matches_key(pem, strlen(pem), keys[0]), 0);
		free(pem);
		EVP_PKEY_free(ed);
	}

	/* Duplicated SAN extensions are refused. */
	s.dup_san = 1;
	pem = make_cert(pk, ca, &s);
	assert_true(crypto_cert_info_pem(pem, strlen(pem), &info) < 0);
	assert_null(info.names);
	assert_null(info.serial);
	crypto_cert_info_clear(&info);
	free(pem);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(ca);
}

static void test_cert_matches_key(void **state)
{
	EVP_PKEY *pk = to_evp(keys[1]), *ca = to_evp(keys[0]);
	struct certspec s = { low_serial, 3, mixed_names, 2, NULL, 0, 1000, 2000, 0 };
	char *pem = make_cert(pk, ca, &s);

	(void)state;
	assert_int_equal(crypto_cert_matches_key(pem, strlen(pem), keys[1]), 1);
	{
		struct crypto_cert_info info;

		assert_int_equal(crypto_cert_inspect(pem, strlen(pem), keys[1], &info), 0);
		assert_int_equal(info.key_matches, 1);
		assert_int_equal(info.not_after, 2000);
		crypto_cert_info_clear(&info);
		assert_int_equal(crypto_cert_inspect(pem, strlen(pem), keys[0], &info), 0);
		assert_int_equal(info.key_matches, 0);
		crypto_cert_info_clear(&info);
		assert_int_equal(crypto_cert_info_pem(pem, strlen(pem), &info), 0);
		assert_int_equal(info.key_matches, -1);
		crypto_cert_info_clear(&info);
	}
	assert_int_equal(crypto_cert_matches_key(pem, strlen(pem), keys[0]), 0);  /* its signer */
	assert_int_equal(crypto_cert_matches_key(pem, strlen(pem), keys[2]), 0);  /* other type */
	assert_true(crypto_cert_matches_key("junk", 4, keys[1]) < 0);
	assert_true(crypto_cert_matches_key(pem, strlen(pem), NULL) < 0);
	free(pem);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(ca);
}

/* Decoded certificates are kept and reused by their DER: more certificates than
 * are kept, read in turn, through every entry point, must each come back as
 * themselves (and as their own key's). */
static void test_cert_cache(void **state)
{
	enum { N = 20 };      /* more than crypto_x509.c keeps (16) */
	EVP_PKEY *pk[2] = { to_evp(keys[0]), to_evp(keys[1]) };
	unsigned char serial[N][2];
	char *pem[N];
	struct crypto_cert_info info;

	(void)state;
	for (int i = 0; i < N; i++) {
		struct certspec s = { serial[i], 2, mixed_names, 1, NULL, 0, 1000 + i, 2000 + i, 0 };

		serial[i][0] = 0x10;
		serial[i][1] = (unsigned char)i;
		pem[i] = make_cert(pk[i % 2], pk[0], &s);
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			int j = (i * 3 + round) % N;    /* an order that changes every round */
			char *leaf = NULL, *chain = NULL, *both;

			assert_int_equal(crypto_cert_inspect(pem[j], strlen(pem[j]), keys[j % 2], &info), 0);
			assert_int_equal(info.serial_len, 2);
			assert_memory_equal(info.serial, serial[j], 2);
			assert_int_equal(info.not_after, 2000 + j);
			assert_int_equal(info.key_matches, 1);
			crypto_cert_info_clear(&info);
			assert_int_equal(crypto_cert_matches_key(pem[j], strlen(pem[j]), keys[(j + 1) % 2]), 0);

			both = malloc(strlen(pem[j]) + strlen(pem[(j + 1) % N]) + 1);
			assert_non_null(both);
			strcpy(both, pem[j]);
			strcat(both, pem[(j + 1) % N]);
			assert_int_equal(crypto_chain_split(both, strlen(both), &leaf, &chain), 0);
			assert_string_equal(leaf, pem[j]);
			assert_string_equal(chain, pem[(j + 1) % N]);
			free(both);
			free(leaf);
			free(chain);
		}
		if (round == 1)
			crypto_cleanup();       /* and again from nothing */
	}
	for (int i = 0; i < N; i++)
		free(pem[i]);
	EVP_PKEY_free(pk[0]);
	EVP_PKEY_free(pk[1]);
}

static void test_chain_split(void **state)
{
	EVP_PKEY *k0 = to_evp(keys[0]), *k1 = to_evp(keys[1]), *k2 = to_evp(keys[2]);
	struct certspec s = { low_serial, 3, mixed_names, 1, aki_bytes, 20, 1000, 2000, 0 };
	char *leafp = make_cert(k0, k1, &s), *i1 = make_cert(k1, k2, &s), *i2 = make_cert(k2, k2, &s);
	char *keypem = evp_pem(k0, 0);
	char *in = malloc(strlen(leafp) + strlen(i1) + strlen(i2) + strlen(keypem) + 200);
	char *leaf = NULL, *chain = NULL, *exp;
	struct crypto_cert_info info;

	(void)state;
	if (!in)
		abort();       /* noreturn: the sprintf below never sees NULL */
	/* Text and a non-certificate block between the certificates are ignored. */
	sprintf(in, "Subject: test\nissuer: x\n%s\nsome text\n%s%s trailer\r\n%s\n-- end\n",
		leafp, keypem, i1, i2);
	assert_int_equal(crypto_chain_split(in, strlen(in), &leaf, &chain), 0);
	assert_string_equal(leaf, leafp);
	exp = malloc(strlen(i1) + strlen(i2) + 1);
	strcpy(exp, i1);
	strcat(exp, i2);
	assert_string_equal(chain, exp);
	free(exp);
	assert_int_equal(crypto_cert_info_pem(in, strlen(in), &info), 0);   /* the leaf */
	assert_int_equal(crypto_cert_matches_key(in, strlen(in), keys[0]), 1);
	crypto_cert_info_clear(&info);
	free(leaf);
	free(chain);

	/* A lone certificate: empty chain. */
	assert_int_equal(crypto_chain_split(leafp, strlen(leafp), &leaf, &chain), 0);
	assert_string_equal(leaf, leafp);
	assert_string_equal(chain, "");
	free(leaf);
	free(chain);

	/* A broken certificate after a good one spoils the whole chain. */
	sprintf(in, "%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", leafp);
	leaf = chain = (char *)"x";
	assert_int_equal(crypto_chain_split(in, strlen(in), &leaf, &chain), -EINVAL);
	assert_null(leaf);
	assert_null(chain);
	sprintf(in, "%s%s", leafp, i1);
	in[strlen(leafp) + strlen(i1) / 2] = '\0';   /* second one truncated */
	assert_int_equal(crypto_chain_split(in, strlen(in), &leaf, &chain), -EINVAL);

	/* Only a key: no certificate at all. */
	assert_int_equal(crypto_chain_split(keypem, strlen(keypem), &leaf, &chain), -EINVAL);
	assert_null(leaf);
	assert_true(crypto_cert_info_pem(keypem, strlen(keypem), &info) < 0);

	/* More than 32 certificates. */
	{
		size_t l = strlen(leafp);
		char *many = malloc(33 * l + 1);

		for (int i = 0; i < 33; i++)
			memcpy(many + (size_t)i * l, leafp, l);
		many[33 * l] = '\0';
		assert_int_equal(crypto_chain_split(many, 32 * l, &leaf, &chain), 0);
		free(leaf);
		free(chain);
		assert_int_equal(crypto_chain_split(many, 33 * l, &leaf, &chain), -EINVAL);
		free(many);
	}
	free(in);
	free(keypem);
	free(leafp);
	free(i1);
	free(i2);
	EVP_PKEY_free(k0);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void expect_cert_rejected(const char *pem, size_t len)
{
	struct crypto_cert_info info;
	char *leaf = (char *)"x", *chain = (char *)"y";

	assert_true(crypto_cert_info_pem(pem, len, &info) < 0);
	assert_null(info.names);
	assert_null(info.serial);
	assert_null(info.aki);
	assert_true(crypto_chain_split(pem, len, &leaf, &chain) < 0);
	assert_null(leaf);
	assert_null(chain);
	assert_true(crypto_cert_matches_key(pem, len, keys[0]) < 0);
}

static void test_cert_hostile(void **state)
{
	EVP_PKEY *pk = to_evp(keys[0]);
	struct certspec s = { high_serial, sizeof(high_serial), mixed_names, 3, aki_bytes,
			      sizeof(aki_bytes), 1700000000, 2600000000LL, 0 };
	char *pem = make_cert(pk, pk, &s);
	size_t len = strlen(pem);
	const char *notcert = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n"
			      "-----END CERTIFICATE-----\n";
	const char *badb64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
	const char *other = "-----BEGIN FOO-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END FOO-----\n";
	const char *noend = "-----BEGIN CERTIFICATE-----\nMIIB\n";
	char *big;

	(void)state;
	expect_cert_rejected(NULL, 0);
	expect_cert_rejected("", 0);
	expect_cert_rejected("garbage\n", 8);
	expect_cert_rejected(notcert, strlen(notcert));
	expect_cert_rejected(badb64, strlen(badb64));
	expect_cert_rejected(other, strlen(other));
	expect_cert_rejected(noend, strlen(noend));
	expect_cert_rejected(pem, len / 2);                     /* truncated body */
	expect_cert_rejected(pem, len - 10);                    /* END line cut */
	{
		char *c = strdup(pem);

		c[100] = '!';     /* a character outside base64 */
		expect_cert_rejected(c, len);
		strcpy(c, pem);
		assert_int_equal(c[28], 'M');
		c[28] = 'N';      /* DER tag 0x30 (SEQUENCE) becomes 0x34 */
		expect_cert_rejected(c, len);
		free(c);
	}
	/* Huge garbage: inside the limit (no certificate), beyond it (refused unread). */
	big = malloc((5u << 20) + 1);
	memset(big, 'A', 5u << 20);
	big[5u << 20] = '\0';
	expect_cert_rejected(big, 2u << 20);
	memcpy(big, "-----BEGIN CERTIFICATE-----\n", 28);
	expect_cert_rejected(big, 2u << 20);
	memcpy(big + (5u << 20) - len, pem, len);               /* a real cert past 4 MiB */
	expect_cert_rejected(big, 5u << 20);
	free(big);
	free(pem);
	EVP_PKEY_free(pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_and_pem),
		cmocka_unit_test(test_key_from_traditional_pem),
		cmocka_unit_test(test_key_from_pem_hostile),
		cmocka_unit_test(test_key_decoders_reused),
		cmocka_unit_test(test_key_after_other_blocks),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_sign_bad_args),
		cmocka_unit_test(test_jwk_params),
		cmocka_unit_test(test_key_caches),
		cmocka_unit_test(test_ec_pem_encoding),
		cmocka_unit_test(test_pubkey_from_jwk),
		cmocka_unit_test(test_pubkey_from_jwk_hostile),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_roundtrip),
		cmocka_unit_test(test_b64url_hostile),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_csr),
		cmocka_unit_test(test_csr_bad_input),
		cmocka_unit_test(test_cert_info),
		cmocka_unit_test(test_cert_matches_key),
		cmocka_unit_test(test_cert_cache),
		cmocka_unit_test(test_chain_split),
		cmocka_unit_test(test_cert_hostile),
	};

	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
