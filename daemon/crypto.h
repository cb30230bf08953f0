/* crypto.h - the only door to OpenSSL: keys, signatures, CSRs, certificate inspection, base64url, SHA-256. */
#ifndef ACMED_CRYPTO_H
#define ACMED_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"

struct crypto_key;              /* opaque (EVP_PKEY) */

int crypto_key_generate(enum key_type kt, struct crypto_key **out);
/* PEM private key (PKCS#8, or traditional EC/RSA). */
int crypto_key_from_pem(const char *pem, size_t len, struct crypto_key **out);
/* Unencrypted PKCS#8 PEM; free with crypto_free_secret(). */
int crypto_key_to_pem(const struct crypto_key *key, char **pem, size_t *len);
int crypto_key_type(const struct crypto_key *key, enum key_type *out);
void crypto_key_free(struct crypto_key *key);

/* Public parameters for a JWK, each base64url without padding (malloc'd).
 * EC: kty "EC", crv "P-256"/"P-384", x, y (padded to the field size).
 * RSA: kty "RSA", n, e. alg: "ES256", "ES384" or "RS256". */
struct crypto_jwk_params {
	const char *kty, *crv, *alg;
	char *x, *y, *n, *e;
};
int crypto_key_jwk_params(const struct crypto_key *key, struct crypto_jwk_params *out);
void crypto_jwk_params_clear(struct crypto_jwk_params *p);
/* Public-only key from JWK parameters (kty, crv, x, y or n, e; alg ignored), e.g. to
 * check a JWK or compute its thumbprint. Strict: canonical base64url, EC x/y of the
 * field size and on the curve, RSA n/e without leading zeros, 2048/3072/4096 bits.
 * The key cannot sign nor be written as PEM. -EINVAL malformed, -ENOTSUP other kinds. */
int crypto_pubkey_from_jwk_params(const struct crypto_jwk_params *p, struct crypto_key **out);
/* A private key from a JWK's members (base64url; NULL when absent), as certbot keeps its
 * account key. RSA: n, e, d, p, q, dp, dq, qi; EC: crv, x, y, d. The two
 * halves are checked to belong together. -EINVAL malformed or mismatched, -ENOTSUP another
 * kind, curve or size (acmed's: P-256, P-384, RSA 2048/3072/4096). */
struct crypto_jwk_private {
	const char *kty, *crv, *x, *y, *d, *n, *e, *p, *q, *dp, *dq, *qi;
};
int crypto_key_from_jwk_private(const struct crypto_jwk_private *j, struct crypto_key **out);

/* JOSE signature of data: ES256/ES384 as fixed-size r||s, RS256 PKCS#1 v1.5. */
int crypto_sign(const struct crypto_key *key, const void *data, size_t len,
		unsigned char **sig, size_t *siglen);

void crypto_sha256(const void *data, size_t len, unsigned char out[32]);
/* HMAC for the JWS algorithms HS256, HS384, HS512 (EAB); out holds CRYPTO_HMAC_MAX bytes. */
#define CRYPTO_HMAC_MAX 64
int crypto_hmac(const char *alg, const void *key, size_t keylen, const void *data, size_t len,
		unsigned char *out, size_t *outlen);
/* HMAC over several pieces (DNS TSIG); digest "SHA1", "SHA256", "SHA384", "SHA512". */
struct crypto_part {
	const void *p;
	size_t n;
};
int crypto_hmac_parts(const char *digest, const void *key, size_t keylen, const struct crypto_part *parts,
		      size_t nparts, unsigned char *out, size_t *outlen);
/* 1 when equal, in constant time (MACs). */
int crypto_memeq(const void *a, const void *b, size_t n);
/* Standard base64 (padded, white space allowed) into out (size bytes at most). 0, -EINVAL, -ENOMEM. */
int crypto_b64_decode(const char *s, size_t slen, unsigned char *out, size_t size, size_t *outlen);
char *crypto_b64url_encode(const void *data, size_t len);     /* malloc'd, no padding */
int crypto_b64url_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

/* DER CSR for domains (SAN dNSName each; CN = domains[0] when <= 64 bytes). */
int crypto_csr_der(const struct crypto_key *key, const char *const *domains, size_t n,
		   unsigned char **der, size_t *derlen);

/* What acmed needs to know of a certificate (the first one of a PEM chain). */
struct crypto_cert_info {
	int64_t not_before, not_after;  /* unix seconds */
	char **names;                   /* SAN dNSNames, lower-cased, NULL-terminated */
	size_t nnames;
	unsigned char *serial;          /* DER INTEGER content bytes (leading 0x00 kept) */
	size_t serial_len;
	unsigned char *aki;             /* authority key identifier keyIdentifier, or NULL */
	size_t aki_len;
	enum key_type key_type;
	int key_type_known;             /* 0 when the key is of a type acmed does not make */
	int key_matches;                /* crypto_cert_inspect: 1/0 key is/is not the certificate's; -1 no key given */
	char *issuer;                   /* the issuer's commonName (else organizationName), printable
					 * ASCII, at most 128 bytes; NULL when it has neither */
};
int crypto_cert_info_pem(const char *pem, size_t len, struct crypto_cert_info *out);
/* The first certificate of pem, DER-encoded (malloc'd): what revokeCert sends. */
int crypto_cert_der(const char *pem, size_t len, unsigned char **der, size_t *derlen);
/* crypto_cert_info_pem and, when key is not NULL, whether key belongs to the certificate, in one parse. */
int crypto_cert_inspect(const char *pem, size_t len, const struct crypto_key *key,
			struct crypto_cert_info *out);
void crypto_cert_info_clear(struct crypto_cert_info *info);
/* 1 when the first certificate of pem holds key's public key, 0 when not, <0 on error. */
int crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *key);
/* Split a PEM chain into the leaf and the rest (issuers), each re-encoded PEM.
 * Fails with -EINVAL when there is no certificate. chain may be empty (""). */
int crypto_chain_split(const char *pem, size_t len, char **leaf, char **chain);
/* The issuer CN (else O) of the last certificate of a PEM chain, as crypto_cert_info's
 * issuer (malloc'd): who the top of the chain is issued by. -EINVAL no certificate,
 * -ENOENT no such name. */
int crypto_chain_top_issuer(const char *pem, size_t len, char **issuer);

uint64_t crypto_random_u64(void);
/* Overwrite then free a secret buffer (key PEM). NULL is fine. */
void crypto_free_secret(void *p, size_t len);
/* Overwrite a secret kept on the stack. */
void crypto_wipe(void *p, size_t len);
/* Free the decoder contexts and decoded certificates kept between calls (at exit; harmless to skip). */
void crypto_cleanup(void);

#endif
