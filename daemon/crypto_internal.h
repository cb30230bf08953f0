/* crypto_internal.h - private to crypto.c, crypto_pem.c and crypto_x509.c: the key structure and shared OpenSSL helpers. */
#ifndef ACMED_CRYPTO_INTERNAL_H
#define ACMED_CRYPTO_INTERNAL_H

#include <stddef.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "log.h"

#define CRYPTO_PEM_MAX (4u << 20)       /* a key or a certificate chain */

struct crypto_key {
	EVP_PKEY *pkey;
	enum key_type kt;
	int has_private;        /* 0: made from a JWK, verification only */
	/* Worked out at the first call, then copied: OpenSSL 3.0 makes reading a
	 * key's parameters and encoding it costly, and acmed asks again and
	 * again (a JWK member for every signed request, the PEM for the order's
	 * state and for the installed files). */
	struct crypto_jwk_params jwk;   /* kty NULL: not yet */
	char *pem;                      /* PKCS#8 PEM (secret: cleansed on free), or NULL */
	size_t pem_len;
};

/* Log an internal OpenSSL failure (never key material: only the library's reason). */
void crypto_log_ssl(enum log_level lvl, const char *what);
/* PEM password callback: acmed never decrypts anything, and must never prompt. */
int crypto_no_password(char *buf, int size, int rwflag, void *u);
/* Read-only memory BIO over data; NULL when empty or larger than CRYPTO_PEM_MAX. */
BIO *crypto_bio_ro(const char *data, size_t len);
/* Copy a memory BIO's content into a malloc'd NUL-terminated string. */
int crypto_bio_string(BIO *bio, char **out, size_t *outlen);
/* The acmed key type of a (public or private) key, or -ENOTSUP. */
int crypto_pkey_type(const EVP_PKEY *pkey, enum key_type *out);
/* A struct crypto_key around pkey (taken over, freed on failure); -ENOTSUP for other kinds. */
int crypto_key_wrap(EVP_PKEY *pkey, int has_private, struct crypto_key **out);
/* A JWK's crv ("P-256", "P-384"): its field size and OpenSSL's group name; -ENOTSUP another. */
int crypto_jwk_curve(const char *crv, size_t *fs, const char **group);
/* Bytes of an EC key's field (32, 48); 0 for RSA. */
size_t crypto_field_size(enum key_type kt);
/* Drop the decoded certificates crypto_x509.c keeps (crypto_cleanup). */
void crypto_x509_cleanup(void);

#endif
