/* account_cmd.c - `acmed account show [CA]`: each CA's account as kept in state_dir (URL, contact, key and its thumbprint, EAB), without the network. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_account.h"
#include "account_cmd.h"
#include "crypto.h"
#include "db_file.h"
#include "jws.h"
#include "store.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2

static void show_one(const struct config *cfg, const struct config_ca *ca)
{
	char *kp = db_file_path(cfg->state_dir, DB_ACCOUNT_KEY, ca->name);
	char *rp = db_file_path(cfg->state_dir, DB_ACCOUNT, ca->name);
	char *pem = NULL, *rec = NULL, *kid = NULL, *thumb = NULL;
	size_t plen = 0, rlen = 0;
	struct config_strv contact = { 0 };
	struct crypto_key *key = NULL;
	enum key_type kt;
	int known = 0, krc;

	printf("CA %s\n  directory:   %s\n", ca->name, ca->directory);
	krc = kp ? store_read_file(kp, &pem, &plen, 1u << 20) : -ENOMEM;
	if (krc == 0 && crypto_key_from_pem(pem, plen, &key) == 0 && crypto_key_type(key, &kt) == 0) {
		thumb = jws_thumbprint(key);
		printf("  key:         %s, %s (thumbprint %s)\n", kp, config_key_type_name(kt), thumb ? thumb : "?");
	} else if (krc == -ENOENT) {
		printf("  key:         none yet (made at the first order)\n");
	} else {
		printf("  key:         %s: %s\n", kp ? kp : "?", krc < 0 ? strerror(-krc) : "not a usable key");
	}
	if (rp && store_read_file(rp, &rec, &rlen, 1u << 20) == 0 &&
	    acme_account_decode(rec, rlen, ca->directory, &kid, &contact, &known) == 0 && kid) {
		printf("  account:     %s\n", kid);
		printf("  contact:     ");
		if (!known)
			printf("(not known yet)");
		for (size_t i = 0; known && i < contact.n; i++)
			printf("%s%s", i ? ", " : "", contact.v[i]);
		printf("%s\n", known && !contact.n ? "(none)" : "");
	} else {
		printf("  account:     none yet at this directory (registered at the first order)\n");
	}
	if (ca->eab_kid)
		printf("  eab:         key ID %s, %s, key in %s\n", ca->eab_kid, ca->eab_alg, ca->eab_key_file);
	crypto_key_free(key);
	crypto_free_secret(pem, plen);
	config_strv_clear(&contact);
	free(thumb);
	free(rec);
	free(kid);
	free(kp);
	free(rp);
}

int account_cmd_show(const struct config *cfg, const char *ca_name)
{
	int shown = 0;

	for (size_t i = 0; i < cfg->ncas; i++) {
		if (ca_name && strcmp(cfg->cas[i].name, ca_name) != 0)
			continue;
		if (shown++)
			putchar('\n');
		show_one(cfg, &cfg->cas[i]);
	}
	if (!shown) {
		fprintf(stderr, "acmed: account show: no CA %s in %s\n", ca_name ? ca_name : "", cfg->path);
		return EXIT_USAGE;
	}
	return ferror(stdout) ? EXIT_OPERATIONAL : 0;
}
