/* jws.c - JWS (flattened JSON), JWK and RFC 7638 thumbprint for ACME requests, on top of crypto.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jws.h"
#include "log.h"

#define JWS_TOKEN_MAX 1024

/* JWK members, exactly the required ones (RFC 7638 section 3.2). */
static json_t *jws_jwk_from_params(const struct crypto_jwk_params *p)
{
	if (strcmp(p->kty, "EC") == 0)
		return json_pack("{s:s, s:s, s:s, s:s}", "crv", p->crv, "kty", p->kty,
				 "x", p->x, "y", p->y);
	return json_pack("{s:s, s:s, s:s}", "e", p->e, "kty", p->kty, "n", p->n);
}

json_t *jws_jwk(const struct crypto_key *key)
{
	struct crypto_jwk_params p;
	json_t *jwk;

	if (!key || crypto_key_jwk_params(key, &p) < 0)
		return NULL;
	jwk = jws_jwk_from_params(&p);
	crypto_jwk_params_clear(&p);
	if (!jwk)
		log_error(NULL, "jws: cannot build the JWK");
	return jwk;
}

char *jws_thumbprint(const struct crypto_key *key)
{
	unsigned char digest[32];
	json_t *jwk = jws_jwk(key);
	char *canon;

	if (!jwk)
		return NULL;
	/* Members in lexicographic order, no whitespace: the RFC 7638 canonical form. */
	canon = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(jwk);
	if (!canon) {
		log_error(NULL, "jws: cannot serialise the JWK");
		return NULL;
	}
	crypto_sha256(canon, strlen(canon), digest);
	free(canon);
	return crypto_b64url_encode(digest, sizeof(digest));
}

char *jws_key_authorization(const char *token, const struct crypto_key *key)
{
	size_t tl = token ? strlen(token) : 0;
	char *tp, *ka;
	size_t pl;

	/* RFC 8555 8.1: the token is base64url; anything else is not put in a response. */
	if (tl == 0 || tl > JWS_TOKEN_MAX || strspn(token,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != tl) {
		log_error(NULL, "jws: challenge token is not base64url");
		return NULL;
	}
	tp = jws_thumbprint(key);
	if (!tp)
		return NULL;
	pl = strlen(tp);
	ka = malloc(tl + 1 + pl + 1);
	if (ka) {
		memcpy(ka, token, tl);
		ka[tl] = '.';
		memcpy(ka + tl + 1, tp, pl + 1);
	}
	free(tp);
	return ka;
}

/* The protected header: alg, nonce, url, then kid or jwk. */
static char *jws_protected(const struct crypto_key *key, const char *kid, const char *nonce,
			   const char *url)
{
	struct crypto_jwk_params p;
	json_t *hdr = NULL, *jwk = NULL;
	char *s = NULL;

	if (crypto_key_jwk_params(key, &p) < 0)
		return NULL;
	hdr = json_pack("{s:s, s:s}", "alg", p.alg, "url", url);
	if (!hdr || (nonce && json_object_set_new(hdr, "nonce", json_string(nonce)) < 0))
		goto out;
	if (kid) {
		if (json_object_set_new(hdr, "kid", json_string(kid)) < 0)
			goto out;
	} else {
		jwk = jws_jwk_from_params(&p);
		if (!jwk || json_object_set_new(hdr, "jwk", jwk) < 0)
			goto out;
	}
	s = json_dumps(hdr, JSON_COMPACT);
out:
	json_decref(hdr);
	crypto_jwk_params_clear(&p);
	return s;
}

/* jws_sign, the nonce optional (NULL: none, as in keyChange's inner JWS). */
static char *jws_sign_any(const struct crypto_key *key, const char *kid, const char *nonce,
			  const char *url, const char *payload)
{
	char *hdr = NULL, *prot64 = NULL, *pay64 = NULL, *sig64 = NULL, *input = NULL, *res = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0, pl, yl;
	json_t *jws = NULL;

	hdr = jws_protected(key, kid, nonce, url);
	if (!hdr) {
		log_error(NULL, "jws: cannot build the protected header for %s "
			  "(nonce, url and kid must be UTF-8)", url);
		goto out;
	}
	prot64 = crypto_b64url_encode(hdr, strlen(hdr));
	pay64 = payload ? crypto_b64url_encode(payload, strlen(payload)) : strdup("");
	if (!prot64 || !pay64)
		goto oom;
	pl = strlen(prot64);
	yl = strlen(pay64);
	input = malloc(pl + 1 + yl + 1);
	if (!input)
		goto oom;
	memcpy(input, prot64, pl);
	input[pl] = '.';
	memcpy(input + pl + 1, pay64, yl + 1);
	if (crypto_sign(key, input, pl + 1 + yl, &sig, &siglen) < 0)
		goto out;   /* crypto logged it */
	sig64 = crypto_b64url_encode(sig, siglen);
	if (!sig64)
		goto oom;
	jws = json_pack("{s:s, s:s, s:s}", "protected", prot64, "payload", pay64,
			"signature", sig64);
	res = jws ? json_dumps(jws, JSON_COMPACT) : NULL;
	if (!res)
		goto oom;
	goto out;
oom:
	log_error(NULL, "jws: out of memory signing the request to %s", url);
out:
	json_decref(jws);
	free(hdr);
	free(prot64);
	free(pay64);
	free(input);
	free(sig);
	free(sig64);
	return res;
}

json_t *jws_eab(const struct crypto_key *account_key, const char *eab_kid, const char *alg,
		const unsigned char *mac_key, size_t mac_len, const char *url)
{
	json_t *jwk = jws_jwk(account_key), *hdr = NULL, *res = NULL;
	char *prot = NULL, *pay = NULL, *prot64 = NULL, *pay64 = NULL, *input = NULL, *sig64 = NULL;
	unsigned char mac[CRYPTO_HMAC_MAX];
	size_t maclen = 0;

	/* RFC 8555 7.3.4: the account's JWK, MACed with the CA's key; no nonce. */
	hdr = json_pack("{s:s, s:s, s:s}", "alg", alg, "kid", eab_kid, "url", url);
	prot = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	pay = jwk ? json_dumps(jwk, JSON_COMPACT) : NULL;
	prot64 = prot ? crypto_b64url_encode(prot, strlen(prot)) : NULL;
	pay64 = pay ? crypto_b64url_encode(pay, strlen(pay)) : NULL;
	if (prot64 && pay64 && asprintf(&input, "%s.%s", prot64, pay64) < 0)
		input = NULL;
	if (input && crypto_hmac(alg, mac_key, mac_len, input, strlen(input), mac, &maclen) == 0)
		sig64 = crypto_b64url_encode(mac, maclen);
	if (sig64)
		res = json_pack("{s:s, s:s, s:s}", "protected", prot64, "payload", pay64, "signature", sig64);
	if (!res)
		log_error(NULL, "jws: cannot make the external account binding for %s", url);
	crypto_wipe(mac, sizeof(mac));
	json_decref(hdr);
	json_decref(jwk);
	free(prot);
	free(pay);
	free(prot64);
	free(pay64);
	free(input);
	free(sig64);
	return res;
}

char *jws_sign(const struct crypto_key *key, const char *kid, const char *nonce,
	       const char *url, const char *payload)
{
	if (!key || !nonce || !url) {
		log_error(NULL, "jws: signing a request without %s", !key ? "key" : !nonce ? "nonce" : "url");
		return NULL;
	}
	return jws_sign_any(key, kid, nonce, url, payload);
}

char *jws_key_change(const struct crypto_key *new_key, const struct crypto_key *old_key, const char *kid,
		     const char *url)
{
	json_t *old = old_key ? jws_jwk(old_key) : NULL, *p;
	char *payload = NULL, *res = NULL;

	if (!new_key || !old || !kid || !url) {
		json_decref(old);
		return NULL;
	}
	p = json_pack("{s:s, s:o}", "account", kid, "oldKey", old);
	payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
	if (payload)
		res = jws_sign_any(new_key, NULL, NULL, url, payload);
	json_decref(p);
	free(payload);
	return res;
}
