/* jws.h - JWS (RFC 7515 flattened JSON), JWK and thumbprint for ACME, built on crypto.h. */
#ifndef ACMED_JWS_H
#define ACMED_JWS_H

#include <jansson.h>
#include "crypto.h"

/* Public JWK of key (new reference). */
json_t *jws_jwk(const struct crypto_key *key);
/* RFC 7638 thumbprint, base64url (malloc'd). */
char *jws_thumbprint(const struct crypto_key *key);
/* token "." thumbprint (malloc'd). */
char *jws_key_authorization(const char *token, const struct crypto_key *key);
/* Flattened JWS as a JSON string (malloc'd). kid NULL: embed the jwk
 * (newAccount). payload NULL: empty payload (POST-as-GET). */
char *jws_sign(const struct crypto_key *key, const char *kid, const char *nonce,
	       const char *url, const char *payload);

/* keyChange's payload (RFC 8555 7.3.5): a JWS signed by new_key, its JWK in
 * the header, url and no nonce, over {"account": kid, "oldKey": JWK of
 * old_key}; a JSON string (malloc'd), NULL on failure. */
char *jws_key_change(const struct crypto_key *new_key, const struct crypto_key *old_key, const char *kid,
		     const char *url);

/* The externalAccountBinding member of a newAccount payload (RFC 8555 7.3.4):
 * a JWS over the account key's JWK, MACed (alg HS256/HS384/HS512) with the
 * CA's key mac_key under eab_kid, for the newAccount url. NULL on failure (logged). */
json_t *jws_eab(const struct crypto_key *account_key, const char *eab_kid, const char *alg,
		const unsigned char *mac_key, size_t mac_len, const char *url);

#endif
