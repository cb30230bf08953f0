/* crypto_pem.c - private keys to and from PEM: kept OpenSSL 3.0 decoders, EC keys written as PKCS#8 directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto_internal.h"

/* The DER inside the first private-key PEM block, and how to decode it. Going
 * straight to one decoder (input DER, known structure and key type) instead of
 * PEM_read_bio_PrivateKey's search over every decoder OpenSSL 3.0 has makes
 * start-up with thousands of certificates several times faster. */
struct crypto_pem_key {
	unsigned char *der;
	long derlen;
	const char *structure, *keytype;
};

static int crypto_pem_key_der(BIO *bio, struct crypto_pem_key *out)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;

	while (PEM_read_bio(bio, &name, &header, &der, &len) == 1) {
		const char *structure = NULL, *keytype = NULL;

		if (strcmp(name, PEM_STRING_PKCS8INF) == 0) {
			structure = "PrivateKeyInfo";
		} else if (strcmp(name, PEM_STRING_ECPRIVATEKEY) == 0) {
			structure = "type-specific";
			keytype = "EC";
		} else if (strcmp(name, PEM_STRING_RSA) == 0) {
			structure = "type-specific";
			keytype = "RSA";
		}
		/* An encrypted traditional key (Proc-Type header) cannot be used. */
		if (structure && header[0] == '\0') {
			OPENSSL_free(name);
			OPENSSL_free(header);
			out->der = der;
			out->derlen = len;
			out->structure = structure;
			out->keytype = keytype;
			return 0;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(der, len > 0 ? (size_t)len : 0);
		name = header = NULL;
		der = NULL;
	}
	ERR_clear_error();
	return -EINVAL;
}

/* One decoder context per kind of PEM block, made once: OpenSSL 3.0 spends
 * most of a key's decoding time building it. The context writes the key it
 * decodes to *the pointer given at creation*, so each has a home slot that
 * the caller empties at once (acmed is single-threaded). */
static struct {
	const char *structure, *keytype;
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY *slot;
} crypto_decoders[] = {
	{ "PrivateKeyInfo", NULL, NULL, NULL },
	{ "type-specific", "EC", NULL, NULL },
	{ "type-specific", "RSA", NULL, NULL },
};

static OSSL_DECODER_CTX *crypto_key_decoder(const struct crypto_pem_key *pk, EVP_PKEY ***slot)
{
	for (size_t i = 0; i < sizeof(crypto_decoders) / sizeof(crypto_decoders[0]); i++) {
		if (strcmp(crypto_decoders[i].structure, pk->structure) != 0 ||
		    (crypto_decoders[i].keytype == NULL) != (pk->keytype == NULL) ||
		    (pk->keytype && strcmp(crypto_decoders[i].keytype, pk->keytype) != 0))
			continue;
		if (!crypto_decoders[i].dctx)
			crypto_decoders[i].dctx = OSSL_DECODER_CTX_new_for_pkey(
				&crypto_decoders[i].slot, "DER", pk->structure, pk->keytype,
				OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
		*slot = &crypto_decoders[i].slot;
		return crypto_decoders[i].dctx;
	}
	return NULL;
}

void crypto_cleanup(void)
{
	for (size_t i = 0; i < sizeof(crypto_decoders) / sizeof(crypto_decoders[0]); i++) {
		OSSL_DECODER_CTX_free(crypto_decoders[i].dctx);
		crypto_decoders[i].dctx = NULL;
		EVP_PKEY_free(crypto_decoders[i].slot);
		crypto_decoders[i].slot = NULL;
	}
	crypto_x509_cleanup();
}

int crypto_key_from_pem(const char *pem, size_t len, struct crypto_key **out)
{
	struct crypto_pem_key pk = {0};
	OSSL_DECODER_CTX *dctx;
	const unsigned char *p;
	size_t plen;
	EVP_PKEY **slot = NULL, *pkey;
	BIO *bio;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	bio = crypto_bio_ro(pem, len);
	if (!bio)
		return -EINVAL;
	rc = crypto_pem_key_der(bio, &pk);
	BIO_free(bio);
	if (rc < 0) {
		log_debug(NULL, "crypto: no unencrypted private key in PEM");
		return rc;
	}
	dctx = crypto_key_decoder(&pk, &slot);
	p = pk.der;
	plen = (size_t)pk.derlen;
	pkey = NULL;
	if (dctx) {
		EVP_PKEY_free(*slot);
		*slot = NULL;
		if (OSSL_DECODER_from_data(dctx, &p, &plen))
			pkey = *slot;
		*slot = NULL;
	}
	if (!pkey) {
		crypto_log_ssl(LOG_LVL_DEBUG, "no usable private key in PEM");
		OPENSSL_clear_free(pk.der, (size_t)pk.derlen);
		EVP_PKEY_free(pkey);
		return -EINVAL;
	}
	OPENSSL_clear_free(pk.der, (size_t)pk.derlen);
	rc = crypto_key_wrap(pkey, 1, out);
	if (rc < 0)
		log_debug(NULL, "crypto: private key of a type acmed does not use");
	return rc;
}

/* A DER element (tag, short or one-byte long length, content) appended to buf. */
struct crypto_der {
	unsigned char buf[256];
	size_t n;
	int bad;
};

static void crypto_der_put(struct crypto_der *d, unsigned char tag, const void *content, size_t len)
{
	size_t hl = len < 0x80 ? 2 : 3;

	if (d->bad || len > 0xff || d->n + hl + len > sizeof(d->buf)) {
		d->bad = 1;
		return;
	}
	d->buf[d->n++] = tag;
	if (len >= 0x80)
		d->buf[d->n++] = 0x81;
	d->buf[d->n++] = (unsigned char)len;
	memcpy(d->buf + d->n, content, len);
	d->n += len;
}

/* An EC key as unencrypted PKCS#8 DER (RFC 5208, RFC 5915), byte for byte what
 * OpenSSL's PrivateKeyInfo encoder writes: the curve in the AlgorithmIdentifier
 * only, the public key included. Building that encoder (OSSL_ENCODER_CTX_new_for_pkey)
 * costs OpenSSL 3.0 about 0.7 M instructions per key; this costs a few thousand. */
static int crypto_ec_pkcs8_der(const struct crypto_key *key, struct crypto_der *out)
{
	static const unsigned char ec_oid[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
	static const unsigned char p256_oid[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static const unsigned char p384_oid[] = { 0x2b, 0x81, 0x04, 0x00, 0x22 };
	static const unsigned char v1[] = { 0x01 }, v0[] = { 0x00 };
	size_t fs = crypto_field_size(key->kt), ptlen = 0;
	unsigned char priv[48], pt[2 + 2 * 48];
	struct crypto_der ec = { .n = 0 }, bits = { .n = 0 }, alg = { .n = 0 };
	BIGNUM *bn = NULL;
	int rc = -EIO;

	memset(out, 0, sizeof(*out));
	if (!EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) ||
	    BN_bn2binpad(bn, priv, (int)fs) != (int)fs ||
	    !EVP_PKEY_get_octet_string_param(key->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
					     pt + 1, sizeof(pt) - 1, &ptlen) ||
	    ptlen != 1 + 2 * fs || pt[1] != 0x04)
		goto out;
	pt[0] = 0x00;                   /* BIT STRING: no unused bits */
	crypto_der_put(&bits, 0x03, pt, ptlen + 1);
	/* ECPrivateKey ::= SEQUENCE { version 1, privateKey, [1] publicKey } */
	crypto_der_put(&ec, 0x02, v1, 1);
	crypto_der_put(&ec, 0x04, priv, fs);
	crypto_der_put(&ec, 0xa1, bits.buf, bits.n);
	/* AlgorithmIdentifier { id-ecPublicKey, namedCurve } */
	crypto_der_put(&alg, 0x06, ec_oid, sizeof(ec_oid));
	if (fs == 32)
		crypto_der_put(&alg, 0x06, p256_oid, sizeof(p256_oid));
	else
		crypto_der_put(&alg, 0x06, p384_oid, sizeof(p384_oid));
	{
		struct crypto_der seq = { .n = 0 }, body = { .n = 0 };

		crypto_der_put(&seq, 0x30, ec.buf, ec.n);
		crypto_der_put(&body, 0x02, v0, 1);
		crypto_der_put(&body, 0x30, alg.buf, alg.n);
		crypto_der_put(&body, 0x04, seq.buf, seq.n);
		crypto_der_put(out, 0x30, body.buf, body.n);
		rc = seq.bad || body.bad || ec.bad || alg.bad || bits.bad || out->bad ? -EIO : 0;
		OPENSSL_cleanse(&seq, sizeof(seq));
		OPENSSL_cleanse(&body, sizeof(body));
	}
out:
	if (rc < 0)
		crypto_log_ssl(LOG_LVL_ERROR, "cannot read the EC private key");
	OPENSSL_cleanse(priv, sizeof(priv));
	OPENSSL_cleanse(&ec, sizeof(ec));
	BN_clear_free(bn);
	return rc;
}

static int crypto_key_encode_pem(const struct crypto_key *key, char **pem, size_t *len)
{
	OSSL_ENCODER_CTX *ectx = NULL;
	BIO *bio = NULL;
	int rc = -EIO;

	if (crypto_field_size(key->kt)) {
		struct crypto_der der;

		rc = crypto_ec_pkcs8_der(key, &der);
		bio = rc == 0 ? BIO_new(BIO_s_mem()) : NULL;   /* cleansed when freed */
		if (rc == 0 && (!bio || PEM_write_bio(bio, PEM_STRING_PKCS8INF, "", der.buf,
						      (long)der.n) <= 0)) {
			crypto_log_ssl(LOG_LVL_ERROR, "cannot encode the private key");
			rc = -EIO;
		}
		OPENSSL_cleanse(&der, sizeof(der));
		if (rc == 0)
			rc = crypto_bio_string(bio, pem, len);
		BIO_free(bio);
		return rc;
	}

	ectx = OSSL_ENCODER_CTX_new_for_pkey(key->pkey, EVP_PKEY_KEYPAIR, "PEM",
					     "PrivateKeyInfo", NULL);
	if (!ectx || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
		crypto_log_ssl(LOG_LVL_ERROR, "no PKCS#8 encoder for this key");
		rc = -EINVAL;
		goto out;
	}
	bio = BIO_new(BIO_s_mem());   /* its buffer is cleansed when freed */
	if (!bio || !OSSL_ENCODER_to_bio(ectx, bio)) {
		crypto_log_ssl(LOG_LVL_ERROR, "cannot encode the private key");
		goto out;
	}
	rc = crypto_bio_string(bio, pem, len);
out:
	BIO_free(bio);
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

int crypto_key_to_pem(const struct crypto_key *key, char **pem, size_t *len)
{
	struct crypto_key *k = (struct crypto_key *)key;   /* its PEM is kept in it */
	char *copy;

	if (!key || !pem || !len)
		return -EINVAL;
	*pem = NULL;
	*len = 0;
	if (!key->has_private) {
		log_error(NULL, "crypto: cannot write a public key as a private key");
		return -EINVAL;
	}
	if (!k->pem) {
		int rc = crypto_key_encode_pem(key, &k->pem, &k->pem_len);

		if (rc < 0)
			return rc;
	}
	copy = malloc(k->pem_len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, k->pem, k->pem_len + 1);
	*pem = copy;
	*len = k->pem_len;
	return 0;
}
