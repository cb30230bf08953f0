/* import.h - `acmed import certbot`: a certbot setup read and turned into acmed's configuration, its account and certificates adopted as they are. */
#ifndef ACMED_IMPORT_H
#define ACMED_IMPORT_H

#include <stdint.h>
#include <stdio.h>
#include "config.h"

struct import_account {
	char *server;           /* the ACME directory URL certbot used */
	char *id;               /* certbot's account id (hex) */
	char *ca_name;          /* the CA's name in the YAML */
	char *kid;              /* the account URL (regr.json "uri") */
	char *key_pem;          /* the account key, PKCS#8 PEM (a secret) */
	size_t key_len;
	struct config_strv contact;
	int contact_known;      /* regr.json's body had "contact" */
	char *error;            /* why it cannot be imported, or NULL */
	/* The CA of the configuration in place with the same directory, whose
	 * name and settings are kept (plan.cfg's), or NULL. */
	const struct config_ca *from;
};

struct import_lineage {
	char *name;             /* certbot's lineage name, the certificate's name */
	char *error;            /* why it is not imported (written commented out), or NULL */
	size_t account;         /* index into plan.accounts */
	struct config_strv domains;
	enum key_type key_type;
	int64_t not_after;
	char *renew_before;     /* "30d", or NULL */
	char *webroot;          /* or NULL: acmed's listener answers */
	struct config_strv reload;
	struct config_strv hooks;       /* shell commands (certbot runs them with sh -c) */
	struct config_strv notes;       /* what did not carry over, as YAML comments */
	char *live_dir;         /* DIR/live/<name> */
	char *key_pem, *cert_pem, *chain_pem, *fullchain_pem;
	size_t key_len, cert_len, chain_len, fullchain_len;
};

struct import_plan {
	const struct config *cfg;       /* the configuration in place, or NULL */
	char *certbot_dir;
	char *state_dir;
	char *runtime_dir;      /* carried over from the configuration in place, or NULL */
	struct config_strv listen;      /* the same (n == 0: not set) */
	struct import_account *accounts;
	size_t naccounts;
	struct import_lineage *lineages;
	size_t nlineages;
	unsigned errors;        /* lineages not imported */
};

/* The command: exit status 0, 1 (a lineage or account could not be imported,
 * or writing failed) or 2 (usage, unreadable config). */
int import_certbot(const char *config_path, const char *certbot_dir, const char *write_path);

/* Read certbot_dir into plan (every lineage, with what is wrong with each);
 * -errno when the directory itself cannot be read (said on stderr). */
int import_plan_read(const char *certbot_dir, const char *state_dir, const struct config *cfg,
		     struct import_plan *plan);
void import_plan_clear(struct import_plan *plan);
/* The YAML configuration for plan. */
int import_plan_yaml(const struct import_plan *plan, FILE *out);
/* The shell command of a hook that only reloads services ("systemctl reload
 * nginx", "service nginx reload"): the units (".service" added when no type is
 * given) appended to units, 1 returned. 0 for any other command. */
int import_hook_units(const char *cmd, struct config_strv *units);

/* import_apply.c: account keys and records into state_dir, the live files
 * into state_dir/live/<name>, certbot's live/<name>/X.pem linked to them. */
int import_plan_apply(const struct import_plan *plan);
/* 0 when state_dir has no account key for ca_name, or this one; 1 when it
 * holds another; <0 when it cannot be read. */
int import_account_conflict(const char *state_dir, const char *ca_name, const char *key_pem, size_t key_len);
/* <state_dir>/live/<name>, malloc'd: where acmed keeps an adopted certificate. */
char *import_output_dir(const struct import_plan *plan, const struct import_lineage *l);

#endif
