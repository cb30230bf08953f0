/* fuzz_jws.c - libFuzzer target for crypto.c's parsers of untrusted bytes: base64url, PEM certificates, chains, keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "crypto.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(-1);
	return 0;
}

static void check(int cond)
{
	if (!cond)
		abort();
}

static void fuzz_b64(const char *s, size_t size)
{
	unsigned char *d = NULL;
	size_t dl = 0;
	char *e;

	/* Strict decoding is canonical: what decodes re-encodes to the same text. */
	if (crypto_b64url_decode(s, size, &d, &dl) == 0) {
		check(d != NULL);
		e = crypto_b64url_encode(d, dl);
		check(e && strlen(e) == size && memcmp(e, s, size) == 0);
		free(e);
		free(d);
	} else {
		check(d == NULL && dl == 0);
	}
	/* Any bytes survive an encode/decode round trip. */
	e = crypto_b64url_encode(s, size);
	check(e != NULL);
	check(crypto_b64url_decode(e, strlen(e), &d, &dl) == 0);
	check(dl == size && (size == 0 || memcmp(d, s, size) == 0));
	free(d);
	free(e);
}

static int same_info(const struct crypto_cert_info *a, const struct crypto_cert_info *b)
{
	if (a->not_before != b->not_before || a->not_after != b->not_after ||
	    a->nnames != b->nnames || a->serial_len != b->serial_len || a->aki_len != b->aki_len ||
	    a->key_type_known != b->key_type_known ||
	    (a->key_type_known && a->key_type != b->key_type) ||
	    memcmp(a->serial, b->serial, a->serial_len) != 0 ||
	    (a->aki_len && memcmp(a->aki, b->aki, a->aki_len) != 0))
		return 0;
	for (size_t i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

static void check_info(const struct crypto_cert_info *in)
{
	check(in->names != NULL && in->names[in->nnames] == NULL);
	check(in->serial != NULL && in->serial_len > 0);
	check((in->aki == NULL) == (in->aki_len == 0));
	for (size_t i = 0; i < in->nnames; i++)
		for (const char *p = in->names[i]; *p; p++)
			check(*p > 0x20 && *p < 0x7f && !(*p >= 'A' && *p <= 'Z'));
}

static void fuzz_pem(const char *s, size_t size)
{
	struct crypto_cert_info info, li;
	char *leaf = NULL, *chain = NULL, *l2 = NULL, *c2 = NULL;
	struct crypto_key *key = NULL;
	int rc = crypto_cert_info_pem(s, size, &info);

	if (rc == 0)
		check_info(&info);
	else
		check(info.names == NULL && info.serial == NULL && info.aki == NULL);

	if (crypto_chain_split(s, size, &leaf, &chain) == 0) {
		check(leaf && chain && leaf[0]);
		/* The re-encoded leaf says exactly what the first certificate said. */
		check((crypto_cert_info_pem(leaf, strlen(leaf), &li) == 0) == (rc == 0));
		if (rc == 0)
			check(same_info(&info, &li));
		crypto_cert_info_clear(&li);
		/* Re-encoded output splits again into the same parts. */
		if (chain[0]) {
			size_t ll = strlen(leaf), cl = strlen(chain);
			char *all = malloc(ll + cl + 1);

			check(all != NULL);
			memcpy(all, leaf, ll);
			memcpy(all + ll, chain, cl + 1);
			check(crypto_chain_split(all, ll + cl, &l2, &c2) == 0);
			check(strcmp(l2, leaf) == 0 && strcmp(c2, chain) == 0);
			free(all);
			free(l2);
			free(c2);
		}
		free(leaf);
		free(chain);
	} else {
		check(leaf == NULL && chain == NULL);
	}
	crypto_cert_info_clear(&info);

	/* Keys are local files, not network input: only when the input looks like one. */
	if (memmem(s, size, "PRIVATE KEY", 11) && crypto_key_from_pem(s, size, &key) == 0) {
		enum key_type kt;

		check(crypto_key_type(key, &kt) == 0);
		crypto_cert_matches_key(s, size, key);
		crypto_key_free(key);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_b64((const char *)data, size);
	fuzz_pem((const char *)data, size);
	return 0;
}
