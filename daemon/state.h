/* state.h - what acmed remembers per certificate across restarts (state_dir/certs/<name>.json). */
#ifndef ACMED_STATE_H
#define ACMED_STATE_H

#include <stdint.h>
#include "config.h"
#include "policy.h"

/* Everything a restart must not forget. Times are unix seconds, 0 = unset. */
struct state_job {
	int failures;                   /* consecutive failed attempts */
	int64_t next_attempt;           /* backoff: do not try before this */
	char *last_error;               /* one line, or NULL */
	char *last_error_class;         /* acme_err_class_name(), or NULL */
	int64_t last_error_at;
	int64_t last_success;           /* when the current certificate was installed */
	int deploy_pending;             /* installed, but reload/exec not done yet */
	char *deploy_error;             /* why the last deploy failed; NULL once one succeeds */
	int issued_kept;                /* issued, kept in the store (DB_ISSUED), not installed yet */
	/* The order in flight, resumed after a restart while pending/ready/processing. */
	char *order_url;                /* NULL when none */
	struct config_strv order_domains;
	enum key_type order_key_type;
	int64_t order_created;
	/* Which CA (its directory URL) the order in flight, or the certificate
	 * issued and kept, belongs to; NULL in records made before it was kept. */
	char *order_directory;
	char *order_ca;                 /* the name of that CA (its account), or NULL */
	/* The directory URL of the CA that issued the installed certificate, or
	 * NULL (not issued by acmed, or recorded before acmed kept it). */
	char *issued_by;
	/* ARI (RFC 9773) for the certificate in use. */
	char *ari_cert_id;              /* the CertID the window belongs to */
	int64_t ari_start, ari_end;     /* suggestedWindow */
	int64_t ari_chosen;             /* our instant inside it, kept while the window is unchanged */
	int64_t ari_next_check;         /* when to fetch renewalInfo again */
	char *ari_explanation;          /* explanationURL, or NULL */
	int64_t ari_early_at;           /* when ARI last had a certificate replaced
					 * younger than the re-issue floor */
	char *ari_early_cert;           /* the CertID of that certificate */
	/* `acmed revoke`: the certificate in use the CA revoked (its ARI CertID,
	 * "AKI.serial"), until its replacement is installed; the reason code. */
	char *revoked_cert;
	int revoked_reason;
	int key_compromised;            /* revoked for keyCompromise: the next key is new (key_reuse too) */
};

/* The record's text (JSON), malloc'd, *len set; NULL on ENOMEM. */
char *state_job_encode(const char *name, const struct state_job *st, size_t *len);
/* -EINVAL for damaged data (logged as "<what> is damaged"; st zeroed, so
 * acmed starts afresh rather than not at all). */
int state_job_decode(const char *data, size_t len, const char *what, struct state_job *st);
/* The same from the files in state_dir, for tools without a daemon (the
 * daemon goes through db.h). -ENOENT when there is no state yet (st zeroed);
 * -EINVAL for a damaged file. */
int state_job_load(const char *state_dir, const char *name, struct state_job *st);
/* Atomic write, 0600. */
int state_job_save(const char *state_dir, const char *name, const struct state_job *st);
void state_job_clear(struct state_job *st);
int state_job_remove(const char *state_dir, const char *name);

/* What the last inspection of a certificate's live files found, cached for
 * all certificates in one file, state_dir/live.json, so a restart need not
 * parse thousands of keys and certificates again. An entry holds only what
 * the files say, for files whose key matched the certificate, and is trusted
 * only while the files' store_live_stamp() is unchanged. Written without
 * fsync: a lost or damaged cache is ignored and costs one parse. */
struct state_live {
	char *stamp;                    /* store_live_stamp() of the inspected files */
	int64_t not_before, not_after;
	int key_type_known;
	enum key_type key_type;
	struct config_strv names;       /* SAN dNSNames, lower-case */
	char *cert_id;                  /* ARI CertID, or NULL (no AKI) */
	char *issuer;                   /* the issuer's CN (crypto_cert_info), or NULL */
};
void state_live_clear(struct state_live *l);
struct state_live_set;                  /* the loaded file: name -> entry */
/* Never NULL but on ENOMEM; empty when the file is missing or damaged (not
 * logged: it is only a cache). */
struct state_live_set *state_live_set_load(const char *state_dir);
/* -ENOENT no entry; -EINVAL an unusable entry (l cleared either way). */
int state_live_set_get(const struct state_live_set *set, const char *name, struct state_live *l);
void state_live_set_free(struct state_live_set *set);
/* Replace state_dir/live.json with the entries of n certificates (names[i],
 * lives[i]; those without a stamp are left out). 0600. */
int state_live_save_all(const char *state_dir, const char *const *names,
			const struct state_live *const *lives, size_t n);


/* Per CA (state_dir/cas/<name>.json): an outage, so the probe backoff
 * survives restarts (down_since == 0: the CA is up), and the new orders of
 * the last hour, so a restart does not reset the ceiling on them. */
struct state_ca {
	int64_t down_since;
	int probe_failures;
	int64_t next_probe;
	char *last_error;
	struct policy_orders orders;
};
char *state_ca_encode(const char *name, const struct state_ca *st, size_t *len);
int state_ca_decode(const char *data, size_t len, const char *what, struct state_ca *st);
int state_ca_load(const char *state_dir, const char *name, struct state_ca *st);
/* durable: fsync'ed (an outage); else only replaced atomically (the order
 * times, written at every new order: a power cut may lose the last ones). */
int state_ca_save(const char *state_dir, const char *name, const struct state_ca *st, int durable);
/* The CA answers again: forget the outage, keep the order times. */
void state_ca_up(struct state_ca *st);
void state_ca_clear(struct state_ca *st);

#endif
