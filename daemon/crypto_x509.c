/* crypto_x509.c - OpenSSL X.509 side of crypto.h: CSRs, certificate inspection, PEM chain splitting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_internal.h"
#include "ident.h"

#define CRYPTO_CHAIN_MAX 32             /* certificates in one chain */
#define CRYPTO_NAMES_MAX 1000           /* dNSNames in a CSR or a certificate */
#define CRYPTO_DOMAIN_MAX 253
#define CRYPTO_CN_MAX 64                /* ub-common-name */
#define CRYPTO_X509_CACHE 16            /* decoded certificates kept, see crypto_x509_decode */

/* ASCII only, whatever the locale. */
static int crypto_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int crypto_domain_ok(const char *d)
{
	size_t n = d ? strlen(d) : 0;
	unsigned char ip[16];

	if (ident_ip_bytes(d, ip))
		return 1;

	if (n == 0 || n > CRYPTO_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!crypto_is_alnum(d[i]) && !strchr("-._*", d[i]))
			return 0;
	return 1;
}

/* The CSR's subjectPublicKeyInfo. X509_REQ_set_pubkey encodes the key with an
 * OpenSSL 3.0 encoder and decodes the result again, each lookup costing about
 * a million instructions; an EC key's SPKI is written here directly:
 * id-ecPublicKey, the named curve, the uncompressed point (RFC 5480). */
static int crypto_req_set_pubkey(X509_REQ *req, const struct crypto_key *key)
{
	unsigned char pt[1 + 2 * 48], *penc;
	size_t ptlen = 0;
	int curve;

	if (key->kt != KEY_ECDSA_P256 && key->kt != KEY_ECDSA_P384)
		return X509_REQ_set_pubkey(req, key->pkey) ? 0 : -EIO;
	curve = key->kt == KEY_ECDSA_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
	if (!EVP_PKEY_get_octet_string_param(key->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
					     sizeof(pt), &ptlen) ||
	    ptlen != (key->kt == KEY_ECDSA_P256 ? 65u : 97u) || pt[0] != 0x04)
		return -EIO;
	penc = OPENSSL_memdup(pt, ptlen);
	if (!penc)
		return -ENOMEM;
	if (!X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
				    V_ASN1_OBJECT, OBJ_nid2obj(curve), penc, (int)ptlen)) {
		OPENSSL_free(penc);
		return -EIO;
	}
	return 0;
}

int crypto_csr_der(const struct crypto_key *key, const char *const *domains, size_t n,
		   unsigned char **der, size_t *derlen)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	unsigned char *buf = NULL, *p;
	int rc = -EIO, l;

	if (!key || !domains || !der || !derlen || n == 0 || n > CRYPTO_NAMES_MAX)
		return -EINVAL;
	*der = NULL;
	*derlen = 0;
	for (size_t i = 0; i < n; i++) {
		if (!crypto_domain_ok(domains[i])) {
			log_error(NULL, "crypto: cannot put \"%s\" in a CSR", domains[i] ? domains[i] : "");
			return -EINVAL;
		}
	}
	req = X509_REQ_new();
	name = X509_NAME_new();
	gens = sk_GENERAL_NAME_new_null();
	if (!req || !name || !gens || !X509_REQ_set_version(req, 0))
		goto fail;
	/* The first name as CN, unless it is an IP address (RFC 8738: in the SAN only). */
	if (strlen(domains[0]) <= CRYPTO_CN_MAX && strcmp(ident_type(domains[0]), "ip") != 0 &&
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
					(const unsigned char *)domains[0], -1, -1, 0))
		goto fail;
	if (!X509_REQ_set_subject_name(req, name))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		unsigned char ip[16];
		int iplen = ident_ip_bytes(domains[i], ip);
		/* dNSName, or iPAddress: the address's 4 or 16 bytes (RFC 8738 3) */
		ASN1_STRING *v = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();

		if (!g || !v || !(iplen ? ASN1_OCTET_STRING_set(v, ip, iplen) :
				  ASN1_STRING_set(v, domains[i], (int)strlen(domains[i])))) {
			GENERAL_NAME_free(g);
			ASN1_STRING_free(v);
			goto fail;
		}
		GENERAL_NAME_set0_value(g, iplen ? GEN_IPADD : GEN_DNS, v);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			goto fail;
		}
	}
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) != 1 ||
	    !X509_REQ_add_extensions(req, exts) || crypto_req_set_pubkey(req, key) < 0 ||
	    X509_REQ_sign(req, key->pkey, EVP_sha256()) <= 0)
		goto fail;
	l = i2d_X509_REQ(req, NULL);
	if (l <= 0)
		goto fail;
	buf = malloc((size_t)l);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	p = buf;
	if (i2d_X509_REQ(req, &p) != l) {
		free(buf);
		goto fail;
	}
	*der = buf;
	*derlen = (size_t)l;
	rc = 0;
	goto out;
fail:
	crypto_log_ssl(LOG_LVL_ERROR, "cannot build the CSR");
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/* Decoding a certificate costs OpenSSL 3.0 about 1.5 M instructions (most of
 * it building a decoder for its public key), and acmed reads the same ones
 * again and again: the leaf when the chain is split, inspected, checked
 * against the key, then read back from disk; the issuer with every chain. The
 * last few decoded certificates are kept, keyed by their exact DER, and handed
 * out with one more reference (nothing changes an X509 acmed has read). */
static struct {
	unsigned char *der;
	long len;
	X509 *x;
	unsigned long used;
} crypto_x509_cache[CRYPTO_X509_CACHE];
static unsigned long crypto_x509_clock;

static X509 *crypto_x509_decode(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	size_t victim = 0;
	X509 *x;

	for (size_t i = 0; i < CRYPTO_X509_CACHE; i++) {
		if (crypto_x509_cache[i].x && crypto_x509_cache[i].len == len &&
		    memcmp(crypto_x509_cache[i].der, der, (size_t)len) == 0 &&
		    X509_up_ref(crypto_x509_cache[i].x)) {
			crypto_x509_cache[i].used = ++crypto_x509_clock;
			return crypto_x509_cache[i].x;
		}
		if (crypto_x509_cache[i].used < crypto_x509_cache[victim].used)
			victim = i;
	}
	x = d2i_X509(NULL, &p, len);
	if (x && X509_up_ref(x)) {
		unsigned char *copy = malloc((size_t)len);

		if (copy) {
			X509_free(crypto_x509_cache[victim].x);
			free(crypto_x509_cache[victim].der);
			memcpy(copy, der, (size_t)len);
			crypto_x509_cache[victim].der = copy;
			crypto_x509_cache[victim].len = len;
			crypto_x509_cache[victim].x = x;
			crypto_x509_cache[victim].used = ++crypto_x509_clock;
		} else {
			X509_free(x);   /* the extra reference */
		}
	}
	return x;
}

void crypto_x509_cleanup(void)
{
	for (size_t i = 0; i < CRYPTO_X509_CACHE; i++) {
		X509_free(crypto_x509_cache[i].x);
		free(crypto_x509_cache[i].der);
	}
	memset(crypto_x509_cache, 0, sizeof(crypto_x509_cache));
}

/* Read the next CERTIFICATE block. 1: got one, 0: no more blocks, <0: malformed.
 * The same blocks as PEM_read_bio_X509, the same DER decoded, through the cache. */
static int crypto_next_cert(BIO *bio, X509 **x)
{
	unsigned char *der = NULL;
	long len = 0;
	unsigned long e;

	ERR_clear_error();
	*x = NULL;
	if (PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_X509, bio, crypto_no_password, NULL)) {
		*x = len > 0 ? crypto_x509_decode(der, len) : NULL;
		OPENSSL_free(der);
		if (*x)
			return 1;
	} else {
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
			ERR_clear_error();
			return 0;
		}
	}
	crypto_log_ssl(LOG_LVL_DEBUG, "malformed certificate in PEM");
	return -EINVAL;
}

static int crypto_first_cert(const char *pem, size_t len, X509 **x)
{
	BIO *bio = crypto_bio_ro(pem, len);
	int rc;

	*x = NULL;
	if (!bio)
		return -EINVAL;
	rc = crypto_next_cert(bio, x);
	BIO_free(bio);
	if (rc == 0)
		log_debug(NULL, "crypto: no certificate in PEM");
	return rc == 1 ? 0 : -EINVAL;
}

static int crypto_asn1_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	time_t v;

	memset(&tm, 0, sizeof(tm));
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -EINVAL;
	v = timegm(&tm);
	if (v == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_yday == 364 && tm.tm_hour == 23 &&
				 tm.tm_min == 59 && tm.tm_sec == 59))
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

static int crypto_cert_names(X509 *x, struct crypto_cert_info *out)
{
	int crit = -1, rc = -EINVAL, count;
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	size_t k = 0;

	if (!gens && crit != -1)
		return -EINVAL;   /* duplicated or undecodable extension */
	count = gens ? sk_GENERAL_NAME_num(gens) : 0;
	if (count < 0 || count > CRYPTO_NAMES_MAX)
		goto out;
	out->names = calloc((size_t)count + 1, sizeof(char *));
	if (!out->names) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < count; i++) {
		int type;
		const ASN1_IA5STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
		const unsigned char *d;
		int l;
		char *name;

		if (type == GEN_IPADD) {
			char ip[64];
			/* an address the way the configuration writes it (ident.c) */
			if (ident_ip_format(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), ip,
					    sizeof(ip)) < 0 || !(out->names[k] = strdup(ip)))
				goto out;
			k++;
			continue;
		}
		if (type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(s);
		l = ASN1_STRING_length(s);
		if (!d || l <= 0 || l > CRYPTO_DOMAIN_MAX)
			goto out;
		name = malloc((size_t)l + 1);
		if (!name) {
			rc = -ENOMEM;
			goto out;
		}
		for (int j = 0; j < l; j++) {
			if (d[j] <= 0x20 || d[j] >= 0x7f) {
				free(name);
				goto out;
			}
			name[j] = (char)(d[j] >= 'A' && d[j] <= 'Z' ? d[j] + ('a' - 'A') : d[j]);
		}
		name[l] = '\0';
		out->names[k++] = name;
	}
	out->nnames = k;
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Content octets of the serial's DER INTEGER (a leading 0x00 stays). */
static int crypto_cert_serial(X509 *x, struct crypto_cert_info *out)
{
	unsigned char *der = NULL;
	int l = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
	size_t hl, cl = 0;
	int rc = -EINVAL;

	if (l < 3 || !der || der[0] != 0x02)
		goto out;
	if (der[1] < 0x80) {
		hl = 2;
		cl = der[1];
	} else {
		size_t nb = der[1] & 0x7f;

		if (nb == 0 || nb > 2 || (size_t)l < 2 + nb)
			goto out;
		for (size_t i = 0; i < nb; i++)
			cl = cl << 8 | der[2 + i];
		hl = 2 + nb;
	}
	if (cl == 0 || hl + cl != (size_t)l)
		goto out;
	out->serial = malloc(cl);
	if (!out->serial) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(out->serial, der + hl, cl);
	out->serial_len = cl;
	rc = 0;
out:
	OPENSSL_free(der);
	return rc;
}

static int crypto_cert_aki(X509 *x, struct crypto_cert_info *out)
{
	int crit = -1, l;
	AUTHORITY_KEYID *akid = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
	const unsigned char *d;

	if (!akid)
		return crit == -1 ? 0 : -EINVAL;
	if (akid->keyid) {
		d = ASN1_STRING_get0_data(akid->keyid);
		l = ASN1_STRING_length(akid->keyid);
		if (d && l > 0 && l <= 256) {
			out->aki = malloc((size_t)l);
			if (!out->aki) {
				AUTHORITY_KEYID_free(akid);
				return -ENOMEM;
			}
			memcpy(out->aki, d, (size_t)l);
			out->aki_len = (size_t)l;
		} else if (l != 0) {
			AUTHORITY_KEYID_free(akid);
			return -EINVAL;
		}
	}
	AUTHORITY_KEYID_free(akid);
	return 0;
}

/* The issuer's CN (else O) as printable ASCII: it is the CA's text, shown in
 * status and logs, so anything else becomes '?'. */
static int crypto_cert_issuer(X509 *x, struct crypto_cert_info *out)
{
	const X509_NAME *n = X509_get_issuer_name(x);
	int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	int l;

	if (n && i < 0)
		i = X509_NAME_get_index_by_NID(n, NID_organizationName, -1);
	if (i < 0)
		return 0;
	l = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (l < 0)
		return 0;
	if (l > 128)
		l = 128;
	out->issuer = malloc((size_t)l + 1);
	if (!out->issuer) {
		OPENSSL_free(utf8);
		return -ENOMEM;
	}
	for (int k = 0; k < l; k++)
		out->issuer[k] = utf8[k] >= 0x20 && utf8[k] < 0x7f ? (char)utf8[k] : '?';
	out->issuer[l] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

int crypto_cert_inspect(const char *pem, size_t len, const struct crypto_key *key,
			struct crypto_cert_info *out)
{
	const EVP_PKEY *pub;
	X509 *x = NULL;
	int rc;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = crypto_first_cert(pem, len, &x);
	if (rc < 0)
		return rc;
	if (crypto_asn1_time(X509_get0_notBefore(x), &out->not_before) < 0 ||
	    crypto_asn1_time(X509_get0_notAfter(x), &out->not_after) < 0) {
		log_debug(NULL, "crypto: certificate with an invalid validity period");
		rc = -EINVAL;
		goto out;
	}
	rc = crypto_cert_names(x, out);
	if (rc == 0)
		rc = crypto_cert_serial(x, out);
	if (rc == 0)
		rc = crypto_cert_aki(x, out);
	if (rc == 0)
		rc = crypto_cert_issuer(x, out);
	if (rc < 0) {
		log_debug(NULL, "crypto: certificate with a malformed SAN, serial or AKI");
		goto out;
	}
	pub = X509_get0_pubkey(x);
	out->key_type_known = pub && crypto_pkey_type(pub, &out->key_type) == 0;
	out->key_matches = key ? pub && EVP_PKEY_eq(pub, key->pkey) == 1 : -1;
	ERR_clear_error();
out:
	X509_free(x);
	if (rc < 0)
		crypto_cert_info_clear(out);
	return rc;
}

int crypto_cert_der(const char *pem, size_t len, unsigned char **der, size_t *derlen)
{
	X509 *x = NULL;
	unsigned char *buf = NULL;
	int n, rc = crypto_first_cert(pem, len, &x);

	*der = NULL;
	*derlen = 0;
	if (rc < 0)
		return rc;
	n = i2d_X509(x, &buf);
	X509_free(x);
	if (n <= 0) {
		ERR_clear_error();
		return -EINVAL;
	}
	*der = malloc((size_t)n);
	if (*der) {
		memcpy(*der, buf, (size_t)n);
		*derlen = (size_t)n;
	}
	OPENSSL_free(buf);
	return *der ? 0 : -ENOMEM;
}

int crypto_cert_info_pem(const char *pem, size_t len, struct crypto_cert_info *out)
{
	return crypto_cert_inspect(pem, len, NULL, out);
}

void crypto_cert_info_clear(struct crypto_cert_info *info)
{
	if (!info)
		return;
	if (info->names)
		for (size_t i = 0; info->names[i]; i++)
			free(info->names[i]);
	free(info->names);
	free(info->serial);
	free(info->aki);
	free(info->issuer);
	memset(info, 0, sizeof(*info));
}

int crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *key)
{
	struct crypto_cert_info info;
	int rc;

	if (!key)
		return -EINVAL;
	rc = crypto_cert_inspect(pem, len, key, &info);
	if (rc < 0)
		return rc;
	rc = info.key_matches;
	crypto_cert_info_clear(&info);
	return rc;
}

int crypto_chain_split(const char *pem, size_t len, char **leaf, char **chain)
{
	BIO *in = NULL, *lb = NULL, *cb = NULL;
	X509 *x = NULL;
	int rc = -EINVAL, count = 0, r;

	if (!leaf || !chain)
		return -EINVAL;
	*leaf = *chain = NULL;
	in = crypto_bio_ro(pem, len);
	lb = BIO_new(BIO_s_mem());
	cb = BIO_new(BIO_s_mem());
	if (!in || !lb || !cb)
		goto out;
	while ((r = crypto_next_cert(in, &x)) == 1) {
		if (count >= CRYPTO_CHAIN_MAX) {
			log_debug(NULL, "crypto: more than %d certificates in a chain", CRYPTO_CHAIN_MAX);
			goto out;
		}
		if (!PEM_write_bio_X509(count == 0 ? lb : cb, x)) {
			crypto_log_ssl(LOG_LVL_ERROR, "cannot re-encode a certificate");
			rc = -EIO;
			goto out;
		}
		X509_free(x);
		x = NULL;
		count++;
	}
	if (r < 0 || count == 0) {
		if (count == 0 && r == 0)
			log_debug(NULL, "crypto: no certificate in PEM");
		goto out;
	}
	rc = crypto_bio_string(lb, leaf, NULL);
	if (rc == 0)
		rc = crypto_bio_string(cb, chain, NULL);
	if (rc < 0) {
		free(*leaf);
		*leaf = NULL;
	}
out:
	X509_free(x);
	BIO_free(in);
	BIO_free(lb);
	BIO_free(cb);
	return rc;
}

int crypto_chain_top_issuer(const char *pem, size_t len, char **issuer)
{
	struct crypto_cert_info info = {0};
	BIO *in;
	X509 *x = NULL, *last = NULL;
	int r, count = 0, rc = -EINVAL;

	*issuer = NULL;
	in = crypto_bio_ro(pem, len);
	if (!in)
		return -EINVAL;
	while (count < CRYPTO_CHAIN_MAX && (r = crypto_next_cert(in, &x)) == 1) {
		X509_free(last);
		last = x;
		x = NULL;
		count++;
	}
	if (last) {
		rc = crypto_cert_issuer(last, &info);
		if (rc == 0 && !info.issuer)
			rc = -ENOENT;
		*issuer = info.issuer;
	}
	X509_free(last);
	BIO_free(in);
	return rc;
}
