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

#endif
