/* crypto.c - OpenSSL keys, JOSE signatures, SHA-256, base64url, randomness (PEM in crypto_pem.c, X.509 in crypto_x509.c). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"

#define CRYPTO_B64_MAX (16u << 20)      /* base64url text acmed ever decodes */
#define CRYPTO_BN_MAX 1024              /* bytes of an RSA modulus (8192 bits) */

/* Log an internal OpenSSL failure (never key material: only the library's reason). */
void crypto_log_ssl(enum log_level lvl, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_msg(lvl, NULL, "crypto: %s: %s", what, buf);
	} else {
		log_msg(lvl, NULL, "crypto: %s", what);
	}
	ERR_clear_error();
}

/* PEM password callback: acmed never decrypts anything, and must never prompt. */
int crypto_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

BIO *crypto_bio_ro(const char *data, size_t len)
{
	if (!data || len == 0 || len > CRYPTO_PEM_MAX)
		return NULL;
	return BIO_new_mem_buf(data, (int)len);
}

/* Copy a memory BIO's content into a malloc'd NUL-terminated string. */
int crypto_bio_string(BIO *bio, char **out, size_t *outlen)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *s;

	if (n < 0 || (n > 0 && !data))
		return -EIO;
	s = malloc((size_t)n + 1);
	if (!s)
		return -ENOMEM;
	if (n > 0)
		memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	if (outlen)
		*outlen = (size_t)n;
	return 0;
}

/* The acmed key type of a (public or private) key, or -ENOTSUP. */
int crypto_pkey_type(const EVP_PKEY *pkey, enum key_type *out)
{
	if (!pkey)
		return -ENOTSUP;
	if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[80] = "";
		size_t glen = 0;

		if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), &glen)) {
			ERR_clear_error();
			return -ENOTSUP;   /* explicit curve parameters */
		}
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
			*out = KEY_ECDSA_P256;
			return 0;
		}
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
			*out = KEY_ECDSA_P384;
			return 0;
		}
		return -ENOTSUP;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		switch (EVP_PKEY_get_bits(pkey)) {
		case 2048: *out = KEY_RSA_2048; return 0;
		case 3072: *out = KEY_RSA_3072; return 0;
		case 4096: *out = KEY_RSA_4096; return 0;
		default: return -ENOTSUP;
		}
	}
	return -ENOTSUP;
}

int crypto_key_wrap(EVP_PKEY *pkey, int has_private, struct crypto_key **out)
{
	struct crypto_key *k;
	enum key_type kt;
	int rc = crypto_pkey_type(pkey, &kt);

	if (rc < 0) {
		EVP_PKEY_free(pkey);
		return rc;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	k->pkey = pkey;
	k->kt = kt;
	k->has_private = has_private;
	*out = k;
	return 0;
}

int crypto_key_generate(enum key_type kt, struct crypto_key **out)
{
	EVP_PKEY *pkey = NULL;

	if (!out)
		return -EINVAL;
	*out = NULL;
	switch (kt) {
	case KEY_ECDSA_P256: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
	case KEY_ECDSA_P384: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
	/* OpenSSL's RSA key generation uses e = 65537. */
	case KEY_RSA_2048: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
	case KEY_RSA_3072: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
	case KEY_RSA_4096: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096); break;
	default:
		log_error(NULL, "crypto: unknown key type %d", (int)kt);
		return -EINVAL;
	}
	if (!pkey) {
		crypto_log_ssl(LOG_LVL_ERROR, "key generation failed");
		return -EIO;
	}
	return crypto_key_wrap(pkey, 1, out);
}


size_t crypto_field_size(enum key_type kt)
{
	return kt == KEY_ECDSA_P384 ? 48 : kt == KEY_ECDSA_P256 ? 32 : 0;
}

int crypto_key_type(const struct crypto_key *key, enum key_type *out)
{
	if (!key || !out)
		return -EINVAL;
	*out = key->kt;
	return 0;
}

void crypto_key_free(struct crypto_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	crypto_jwk_params_clear(&key->jwk);
	crypto_free_secret(key->pem, key->pem_len);
	free(key);
}

/* base64url of a BIGNUM parameter: padded to pad bytes, or minimal when pad is 0. */
static char *crypto_bn_param_b64(const EVP_PKEY *pkey, const char *name, size_t pad)
{
	unsigned char buf[CRYPTO_BN_MAX];
	BIGNUM *bn = NULL;
	char *s = NULL;
	int n;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn)) {
		crypto_log_ssl(LOG_LVL_ERROR, "cannot read a public key parameter");
		return NULL;
	}
	n = BN_num_bytes(bn);
	if (pad) {
		if (n >= 0 && (size_t)n <= pad && BN_bn2binpad(bn, buf, (int)pad) == (int)pad)
			s = crypto_b64url_encode(buf, pad);
	} else if (n > 0 && (size_t)n <= sizeof(buf) && BN_bn2bin(bn, buf) == n) {
		s = crypto_b64url_encode(buf, (size_t)n);
	}
	BN_free(bn);
	if (!s)
		log_error(NULL, "crypto: public key parameter %s out of range", name);
	return s;
}

static int crypto_key_jwk_compute(const struct crypto_key *key, struct crypto_jwk_params *out)
{
	size_t fs = crypto_field_size(key->kt);

	memset(out, 0, sizeof(*out));
	if (fs) {
		out->kty = "EC";
		out->crv = fs == 32 ? "P-256" : "P-384";
		out->alg = fs == 32 ? "ES256" : "ES384";
		out->x = crypto_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, fs);
		out->y = crypto_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, fs);
		if (out->x && out->y)
			return 0;
	} else {
		out->kty = "RSA";
		out->alg = "RS256";
		out->n = crypto_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		out->e = crypto_bn_param_b64(key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		if (out->n && out->e)
			return 0;
	}
	crypto_jwk_params_clear(out);
	return -EIO;
}

static int crypto_dup_member(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int crypto_key_jwk_params(const struct crypto_key *key, struct crypto_jwk_params *out)
{
	struct crypto_key *k = (struct crypto_key *)key;   /* the parameters are kept in it */
	int rc;

	if (!key || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!k->jwk.kty && (rc = crypto_key_jwk_compute(key, &k->jwk)) < 0)
		return rc;
	out->kty = k->jwk.kty;
	out->crv = k->jwk.crv;
	out->alg = k->jwk.alg;
	if (crypto_dup_member(&out->x, k->jwk.x) < 0 || crypto_dup_member(&out->y, k->jwk.y) < 0 ||
	    crypto_dup_member(&out->n, k->jwk.n) < 0 || crypto_dup_member(&out->e, k->jwk.e) < 0) {
		crypto_jwk_params_clear(out);
		return -ENOMEM;
	}
	return 0;
}

void crypto_jwk_params_clear(struct crypto_jwk_params *p)
{
	if (!p)
		return;
	free(p->x);
	free(p->y);
	free(p->n);
	free(p->e);
	memset(p, 0, sizeof(*p));
}

/* Decode a JWK member that must be exactly want bytes (want 0: 1..CRYPTO_BN_MAX, no leading 0). */
static int crypto_jwk_member(const char *s, size_t want, unsigned char **out, size_t *outlen)
{
	int rc;

	if (!s)
		return -EINVAL;
	rc = crypto_b64url_decode(s, strlen(s), out, outlen);
	if (rc < 0)
		return rc;
	if (want ? *outlen != want
		 : (*outlen == 0 || *outlen > CRYPTO_BN_MAX || (*out)[0] == 0)) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

int crypto_jwk_curve(const char *crv, size_t *fs, const char **group)
{
	if (!crv)
		return -EINVAL;
	if (strcmp(crv, "P-256") == 0) {
		*fs = 32;
		*group = "prime256v1";
	} else if (strcmp(crv, "P-384") == 0) {
		*fs = 48;
		*group = "secp384r1";
	} else {
		return -ENOTSUP;
	}
	return 0;
}

static int crypto_pubkey_ec(const struct crypto_jwk_params *p, EVP_PKEY **pkey)
{
	unsigned char pt[1 + 2 * 48];
	unsigned char *x = NULL, *y = NULL;
	size_t fs, xl = 0, yl = 0;
	const char *group;
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[3];
	int rc = -EINVAL;

	if ((rc = crypto_jwk_curve(p->crv, &fs, &group)) < 0)
		return rc;
	rc = -EINVAL;
	if (crypto_jwk_member(p->x, fs, &x, &xl) < 0 || crypto_jwk_member(p->y, fs, &y, &yl) < 0)
		goto out;
	pt[0] = 0x04;   /* uncompressed point */
	memcpy(pt + 1, x, fs);
	memcpy(pt + 1 + fs, y, fs);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fs);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	/* The import rejects a point that is not on the curve. */
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		crypto_log_ssl(LOG_LVL_DEBUG, "EC JWK is not a valid public key");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	free(x);
	free(y);
	return rc;
}

static int crypto_pubkey_rsa(const struct crypto_jwk_params *p, EVP_PKEY **pkey)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nl = 0, el = 0;
	BIGNUM *bn = NULL, *be = NULL;
	unsigned char nle[CRYPTO_BN_MAX], ele[CRYPTO_BN_MAX];
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[3];
	int rc = -EINVAL;

	if (crypto_jwk_member(p->n, 0, &n, &nl) < 0 || crypto_jwk_member(p->e, 0, &e, &el) < 0 ||
	    el > 8 || !(e[el - 1] & 1))
		goto out;
	bn = BN_bin2bn(n, (int)nl, NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	/* OSSL_PARAM integers are native-endian: let OpenSSL lay them out. */
	if (!bn || !be || BN_bn2nativepad(bn, nle, (int)nl) != (int)nl ||
	    BN_bn2nativepad(be, ele, (int)el) != (int)el) {
		rc = -ENOMEM;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nle, nl);
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ele, el);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		crypto_log_ssl(LOG_LVL_DEBUG, "RSA JWK is not a valid public key");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return rc;
}

int crypto_pubkey_from_jwk_params(const struct crypto_jwk_params *p, struct crypto_key **out)
{
	EVP_PKEY *pkey = NULL;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!p || !p->kty)
		return -EINVAL;
	if (strcmp(p->kty, "EC") == 0)
		rc = crypto_pubkey_ec(p, &pkey);
	else if (strcmp(p->kty, "RSA") == 0)
		rc = crypto_pubkey_rsa(p, &pkey);
	else
		rc = -ENOTSUP;
	if (rc < 0)
		return rc;
	return crypto_key_wrap(pkey, 0, out);
}

/* DER ECDSA-Sig-Value -> JOSE r||s, each left-padded to the field size. */
static int crypto_ecdsa_der_to_jose(const unsigned char *der, size_t derlen, size_t fs,
				    unsigned char **sig, size_t *siglen)
{
	const unsigned char *p = der;
	ECDSA_SIG *es;
	const BIGNUM *r = NULL, *s = NULL;
	unsigned char *buf = NULL;
	int rc = -EIO;

	if (derlen > LONG_MAX)
		return -EIO;
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!es)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (!r || !s || (size_t)BN_num_bytes(r) > fs || (size_t)BN_num_bytes(s) > fs)
		goto out;
	buf = malloc(2 * fs);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	if (BN_bn2binpad(r, buf, (int)fs) != (int)fs ||
	    BN_bn2binpad(s, buf + fs, (int)fs) != (int)fs) {
		free(buf);
		goto out;
	}
	*sig = buf;
	*siglen = 2 * fs;
	rc = 0;
out:
	if (rc == -EIO)
		crypto_log_ssl(LOG_LVL_ERROR, "malformed ECDSA signature from the signer");
	ECDSA_SIG_free(es);
	return rc;
}

int crypto_sign(const struct crypto_key *key, const void *data, size_t len,
		unsigned char **sig, size_t *siglen)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	size_t derlen = 0, fs;
	int rc = -EIO;

	if (!key || !sig || !siglen || (!data && len))
		return -EINVAL;
	*sig = NULL;
	*siglen = 0;
	if (!key->has_private) {
		log_error(NULL, "crypto: cannot sign with a public key");
		return -EINVAL;
	}
	fs = crypto_field_size(key->kt);
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit_ex(md, &pctx, key->kt == KEY_ECDSA_P384 ? "SHA384" : "SHA256",
					 NULL, NULL, key->pkey, NULL) != 1 ||
	    (!fs && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) ||
	    EVP_DigestSign(md, NULL, &derlen, data ? data : "", len) != 1 || derlen == 0) {
		crypto_log_ssl(LOG_LVL_ERROR, "cannot set up signing");
		goto out;
	}
	der = malloc(derlen);
	if (!der) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(md, der, &derlen, data ? data : "", len) != 1) {
		crypto_log_ssl(LOG_LVL_ERROR, "signing failed");
		goto out;
	}
	if (fs) {
		rc = crypto_ecdsa_der_to_jose(der, derlen, fs, sig, siglen);
	} else {
		*sig = der;
		*siglen = derlen;
		der = NULL;
		rc = 0;
	}
out:
	free(der);
	EVP_MD_CTX_free(md);
	return rc;
}

void crypto_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
		/* Only an allocation failure gets here; a wrong digest must never be used. */
		crypto_log_ssl(LOG_LVL_ERROR, "SHA-256 failed");
		abort();
	}
}

static const char crypto_b64u[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *crypto_b64url_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	size_t olen, i, o = 0;
	char *s;

	if ((!data && len) || len > (SIZE_MAX / 4 - 1) * 3)
		return NULL;
	olen = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	s = malloc(olen + 1);
	if (!s)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		s[o++] = crypto_b64u[v >> 18 & 63];
		s[o++] = crypto_b64u[v >> 12 & 63];
		s[o++] = crypto_b64u[v >> 6 & 63];
		s[o++] = crypto_b64u[v & 63];
	}
	if (len - i == 1) {
		s[o++] = crypto_b64u[in[i] >> 2];
		s[o++] = crypto_b64u[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		unsigned long v = (unsigned long)in[i] << 8 | in[i + 1];
		s[o++] = crypto_b64u[v >> 10 & 63];
		s[o++] = crypto_b64u[v >> 4 & 63];
		s[o++] = crypto_b64u[(v & 15) << 2];
	}
	s[o] = '\0';
	return s;
}

static int crypto_b64u_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Strict: URL alphabet only, no padding, no whitespace, zero unused trailing bits. */
int crypto_b64url_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	unsigned long acc = 0;
	size_t i, o = 0, olen;
	int bits = 0;

	if (!out || !outlen)
		return -EINVAL;
	*out = NULL;
	*outlen = 0;
	if (!s && slen)
		return -EINVAL;
	if (slen > CRYPTO_B64_MAX)
		return -E2BIG;
	if (slen % 4 == 1)
		return -EINVAL;
	olen = slen / 4 * 3 + (slen % 4 ? slen % 4 - 1 : 0);
	buf = malloc(olen ? olen : 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < slen; i++) {
		int v = crypto_b64u_val((unsigned char)s[i]);

		if (v < 0)
			goto bad;
		acc = (acc << 6 | (unsigned long)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (o != olen || (acc & ((1ul << bits) - 1)) != 0)
		goto bad;
	*out = buf;
	*outlen = olen;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

uint64_t crypto_random_u64(void)
{
	uint64_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1) {
		/* No randomness: nothing acmed does (keys, nonces, jitter) is safe any more. */
		crypto_log_ssl(LOG_LVL_ERROR, "the random generator failed");
		abort();
	}
	return v;
}

void crypto_free_secret(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}
