/* crypto_jwk.c - a private key from a JWK (certbot keeps its account key as one), checked before use; the HMAC of EAB. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "crypto_internal.h"

#define JWK_BN_MAX 1024         /* bytes of a member (an 8192-bit modulus) */

/* A big-endian unsigned member; leading zero bytes are tolerated (some writers pad). */
static int jwk_bn(const char *s, BIGNUM **out)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (!s)
		return -EINVAL;
	rc = crypto_b64url_decode(s, strlen(s), &raw, &len);
	if (rc < 0)
		return -EINVAL;
	if (len == 0 || len > JWK_BN_MAX) {
		crypto_free_secret(raw, len);
		return -EINVAL;
	}
	*out = BN_bin2bn(raw, (int)len, NULL);
	crypto_free_secret(raw, len);
	return *out ? 0 : -ENOMEM;
}

static int jwk_push(OSSL_PARAM_BLD *bld, const char *name, const char *member, BIGNUM **keep)
{
	int rc = jwk_bn(member, keep);

	if (rc < 0)
		return rc;
	return OSSL_PARAM_BLD_push_BN(bld, name, *keep) == 1 ? 0 : -ENOMEM;
}

static int jwk_rsa(const struct crypto_jwk_private *j, OSSL_PARAM_BLD *bld, BIGNUM **bn)
{
	static const char *const names[] = {
		OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
		OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
		OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
		OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	};
	const char *members[] = { j->n, j->e, j->d, j->p, j->q, j->dp, j->dq, j->qi };
	int rc = 0;

	/* The CRT members too (certbot writes them): OpenSSL checks a pair only with them. */
	for (size_t i = 0; i < 8 && rc == 0; i++)
		rc = jwk_push(bld, names[i], members[i], &bn[i]);
	return rc;
}

/* pt: the public point's buffer, the caller's: the builder keeps a pointer to
 * it (no copy) until OSSL_PARAM_BLD_to_param. */
static int jwk_ec(const struct crypto_jwk_private *j, OSSL_PARAM_BLD *bld, BIGNUM **bn,
		  unsigned char pt[1 + 2 * 48])
{
	unsigned char *x = NULL, *y = NULL;
	size_t fs, xl = 0, yl = 0;
	const char *group;
	int rc = -EINVAL;

	if (!j->x || !j->y)
		return -EINVAL;
	if ((rc = crypto_jwk_curve(j->crv, &fs, &group)) < 0)
		return rc;
	rc = -EINVAL;
	if (crypto_b64url_decode(j->x, strlen(j->x), &x, &xl) < 0 ||
	    crypto_b64url_decode(j->y, strlen(j->y), &y, &yl) < 0 || xl != fs || yl != fs)
		goto out;
	pt[0] = 0x04;   /* uncompressed point */
	memcpy(pt + 1, x, fs);
	memcpy(pt + 1 + fs, y, fs);
	rc = jwk_push(bld, OSSL_PKEY_PARAM_PRIV_KEY, j->d, &bn[0]);
	if (rc == 0 && (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
			OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fs) != 1))
		rc = -ENOMEM;
out:
	free(x);
	free(y);
	return rc;
}

int crypto_key_from_jwk_private(const struct crypto_jwk_private *j, struct crypto_key **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn[8] = { NULL };
	unsigned char pt[1 + 2 * 48];
	const char *alg;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!j || !j->kty || !j->d)
		return -EINVAL;
	if (strcmp(j->kty, "RSA") == 0)
		alg = "RSA";
	else if (strcmp(j->kty, "EC") == 0)
		alg = "EC";
	else
		return -ENOTSUP;
	bld = OSSL_PARAM_BLD_new();
	if (!bld)
		return -ENOMEM;
	rc = strcmp(alg, "RSA") == 0 ? jwk_rsa(j, bld, bn) : jwk_ec(j, bld, bn, pt);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
		crypto_log_ssl(LOG_LVL_DEBUG, "JWK is not a valid private key");
		goto out;
	}
	/* The private half must be the public half's: a key that signs what the
	 * CA cannot verify would only be found out at the CA. */
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!check || EVP_PKEY_pairwise_check(check) != 1) {
		crypto_log_ssl(LOG_LVL_DEBUG, "JWK private and public parts do not match");
		goto out;
	}
	rc = crypto_key_wrap(pkey, 1, out);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	for (size_t i = 0; i < 8; i++)
		BN_clear_free(bn[i]);
	ERR_clear_error();
	return rc;
}

int crypto_hmac(const char *alg, const void *key, size_t keylen, const void *data, size_t len,
		unsigned char *out, size_t *outlen)
{
	const char *digest = strcmp(alg, "HS256") == 0 ? "SHA256" : strcmp(alg, "HS384") == 0 ? "SHA384" :
			     strcmp(alg, "HS512") == 0 ? "SHA512" : NULL;

	if (!digest || !key || !keylen || !out || !outlen)
		return -EINVAL;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, keylen, data ? data : "", len, out,
		       CRYPTO_HMAC_MAX, outlen)) {
		crypto_log_ssl(LOG_LVL_ERROR, "HMAC failed");
		return -EIO;
	}
	return 0;
}

void crypto_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

int crypto_hmac_parts(const char *digest, const void *key, size_t keylen, const struct crypto_part *parts,
		      size_t nparts, unsigned char *out, size_t *outlen)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)digest, 0),
		OSSL_PARAM_construct_end(),
	};
	int ok = ctx && EVP_MAC_init(ctx, key, keylen, params);

	for (size_t i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n);
	ok = ok && EVP_MAC_final(ctx, out, outlen, CRYPTO_HMAC_MAX);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : -EIO;
}

int crypto_memeq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int crypto_b64_decode(const char *s, size_t slen, unsigned char *out, size_t size, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx;
	unsigned char *tmp;
	int outl = 0, fin = 0, bad;

	/* the decoder may write up to 3/4 of the input before it knows the length */
	if (slen == 0 || slen > 65536 || !(tmp = malloc(slen)))
		return slen ? -ENOMEM : -EINVAL;
	if (!(ctx = EVP_ENCODE_CTX_new())) {
		free(tmp);
		return -ENOMEM;
	}
	EVP_DecodeInit(ctx);
	bad = EVP_DecodeUpdate(ctx, tmp, &outl, (const unsigned char *)s, (int)slen) < 0 ||
	      EVP_DecodeFinal(ctx, tmp + outl, &fin) < 0;
	EVP_ENCODE_CTX_free(ctx);
	bad = bad || outl + fin <= 0 || (size_t)(outl + fin) > size;
	if (!bad) {
		memcpy(out, tmp, (size_t)(outl + fin));
		*outlen = (size_t)(outl + fin);
	}
	OPENSSL_cleanse(tmp, slen);
	free(tmp);
	return bad ? -EINVAL : 0;
}
