/* import_apply.c - carries out an import plan: certbot's accounts into state_dir, its live files adopted and linked, all owned by acmed's user. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme_account.h"
#include "crypto.h"
#include "db_file.h"
#include "import.h"
#include "jws.h"
#include "state.h"
#include "store.h"
#include "store_owner.h"

#define SERVICE_USER "acmed"    /* the unit's User= */

static const char *const live_names[] = { "privkey.pem", "cert.pem", "chain.pem", "fullchain.pem" };

char *import_output_dir(const struct import_plan *plan, const struct import_lineage *l)
{
	char *p = NULL;

	return asprintf(&p, "%s/live/%s", plan->state_dir, l->name) < 0 ? NULL : p;
}

static int used(const struct import_plan *plan, size_t a)
{
	for (size_t i = 0; i < plan->nlineages; i++)
		if (!plan->lineages[i].error && plan->lineages[i].account == a)
			return 1;
	return 0;
}

/* 1 when the PEM keys are the same key, 0 when not, <0 when one cannot be read. */
static int same_key(const char *a, size_t alen, const char *b, size_t blen)
{
	struct crypto_key *ka = NULL, *kb = NULL;
	char *ta = NULL, *tb = NULL;
	int rc = -EINVAL;

	if (crypto_key_from_pem(a, alen, &ka) == 0 && crypto_key_from_pem(b, blen, &kb) == 0 &&
	    (ta = jws_thumbprint(ka)) && (tb = jws_thumbprint(kb)))
		rc = strcmp(ta, tb) == 0;
	free(ta);
	free(tb);
	crypto_key_free(ka);
	crypto_key_free(kb);
	return rc;
}

int import_account_conflict(const char *state_dir, const char *ca_name, const char *key_pem, size_t key_len)
{
	char *path = db_file_path(state_dir, DB_ACCOUNT_KEY, ca_name), *old = NULL;
	size_t oldlen = 0;
	int r;

	if (!path)
		return -ENOMEM;
	r = store_read_file(path, &old, &oldlen, 1u << 20);
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = same_key(old, oldlen, key_pem, key_len) == 1 ? 0 : 1;
	crypto_free_secret(old, oldlen);
	return r;
}

/* Before anything is written: an account of that name in state_dir must be this one. */
static int accounts_check(const struct import_plan *plan)
{
	int rc = 0;

	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct import_account *a = &plan->accounts[i];
		char *path, *old = NULL;
		size_t oldlen = 0;
		int r;

		if (a->error || !used(plan, i))
			continue;
		path = db_file_path(plan->state_dir, DB_ACCOUNT_KEY, a->ca_name);
		if (!path)
			return -ENOMEM;
		r = store_read_file(path, &old, &oldlen, 1u << 20);
		if (r == 0 && same_key(old, oldlen, a->key_pem, a->key_len) != 1) {
			fprintf(stderr, "acmed: %s holds another account key for CA %s: not replaced "
				"(move it away to import certbot's account %s)\n", path, a->ca_name, a->kid);
			rc = -EEXIST;
		} else if (r < 0 && r != -ENOENT) {
			rc = r;
		}
		crypto_free_secret(old, oldlen);
		free(path);
	}
	return rc;
}

static int account_write(const struct import_plan *plan, const struct import_account *a)
{
	char *key = db_file_path(plan->state_dir, DB_ACCOUNT_KEY, a->ca_name);
	char *rec = db_file_path(plan->state_dir, DB_ACCOUNT, a->ca_name);
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	int rc = -ENOMEM;

	if (!key || !rec || !(dir = strdup(key)))
		goto out;
	*strrchr(dir, '/') = '\0';
	text = acme_account_encode(a->server, a->kid, a->contact_known ? &a->contact : NULL, &len);
	if (!text)
		goto out;
	rc = store_mkdir_p(dir, 0700);
	if (rc == 0)
		rc = store_write_atomic(key, a->key_pem, a->key_len, 0600);
	if (rc == 0)
		rc = store_write_atomic(rec, text, len, 0600);
	if (rc < 0)
		fprintf(stderr, "acmed: cannot write the account of CA %s into %s: %s\n", a->ca_name, dir,
			strerror(-rc));
	else
		fprintf(stderr, "acmed: CA %s: certbot's account %s imported into %s\n", a->ca_name,
			a->kid, dir);
out:
	free(key);
	free(rec);
	free(dir);
	free(text);
	return rc;
}

/* The live files into output_dir (unless they are there already), as acmed installs them. */
static int lineage_install(const struct import_lineage *l, const char *out)
{
	struct store_bundle b = {
		.key_pem = l->key_pem, .key_len = l->key_len,
		.cert_pem = l->cert_pem, .cert_len = l->cert_len,
		.chain_pem = l->chain_pem, .chain_len = l->chain_len,
		.fullchain_pem = l->fullchain_pem, .fullchain_len = l->fullchain_len,
	};
	char *key = NULL, *full = NULL;
	size_t klen = 0, flen = 0;
	int rc = store_read_live(out, &key, &klen, &full, &flen);

	if (rc == 0 && flen == l->fullchain_len && memcmp(full, l->fullchain_pem, flen) == 0 &&
	    klen == l->key_len && memcmp(key, l->key_pem, klen) == 0)
		rc = 1;                 /* imported before */
	else
		rc = store_install_bundle(out, &b);
	crypto_free_secret(key, klen);
	free(full);
	return rc;
}

/* Which CA issued the certificate in use, so a later change of directory re-issues it. */
static int lineage_state(const struct import_plan *plan, const struct import_lineage *l)
{
	struct state_job st;
	int rc = state_job_load(plan->state_dir, l->name, &st);

	if (rc < 0 && rc != -ENOENT) {
		state_job_clear(&st);
		return rc;
	}
	if (!st.issued_by && !(st.issued_by = strdup(plan->accounts[l->account].server))) {
		state_job_clear(&st);
		return -ENOMEM;
	}
	rc = state_job_save(plan->state_dir, l->name, &st);
	state_job_clear(&st);
	return rc;
}

/* certbot's live/<name>/X.pem become links to output_dir/X.pem: the paths the
 * services were given keep working, and certbot itself stops renewing them
 * (it refuses a lineage whose links leave its archive). */
static int lineage_link(const struct import_lineage *l, const char *out)
{
	for (size_t i = 0; i < 4; i++) {
		char *target = NULL, *link = NULL, *tmp = NULL, cur[4096];
		ssize_t n;
		int rc = 0;

		if (asprintf(&target, "%s/%s", out, live_names[i]) < 0 ||
		    asprintf(&link, "%s/%s", l->live_dir, live_names[i]) < 0 ||
		    asprintf(&tmp, "%s/.%s.acmed-import", l->live_dir, live_names[i]) < 0)
			rc = -ENOMEM;
		n = rc == 0 ? readlink(link, cur, sizeof(cur) - 1) : -1;
		if (rc == 0 && !(n > 0 && (size_t)n == strlen(target) && memcmp(cur, target, (size_t)n) == 0)) {
			unlink(tmp);
			if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
				rc = -errno;
				fprintf(stderr, "acmed: %s: cannot make it a link to %s: %s\n", link, target,
					strerror(errno));
				unlink(tmp);
			}
		}
		free(target);
		free(link);
		free(tmp);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---------- ownership: what the import made belongs to the service's user ---------- */

/* webroot/.well-known/acme-challenge, where the daemon writes tokens: made, and given to it. */
static void webroot_ready(const struct import_lineage *l, int give, uid_t uid, gid_t gid)
{
	char *dir = NULL;
	struct stat st;

	if (!l->webroot || asprintf(&dir, "%s/.well-known/acme-challenge", l->webroot) < 0)
		return;
	if (stat(l->webroot, &st) == 0 && store_mkdir_p(dir, 0755) == 0 && give &&
	    stat(dir, &st) == 0 && st.st_uid == 0) {
		if (lchown(dir, uid, gid) == 0)
			fprintf(stderr, "acmed: %s now belongs to %s (acmed writes the http-01 tokens there)\n",
				dir, SERVICE_USER);
	}
	free(dir);
}

int import_plan_apply(const struct import_plan *plan)
{
	uid_t uid = 0;
	gid_t gid = 0;
	int give = store_owner_wanted(plan->state_dir, &uid, &gid), rc;

	rc = accounts_check(plan);
	if (rc < 0)
		return rc;
	rc = store_mkdir_p(plan->state_dir, 0700);
	for (size_t i = 0; rc == 0 && i < plan->naccounts; i++)
		if (!plan->accounts[i].error && used(plan, i))
			rc = account_write(plan, &plan->accounts[i]);
	for (size_t i = 0; rc == 0 && i < plan->nlineages; i++) {
		const struct import_lineage *l = &plan->lineages[i];
		char *out;

		if (l->error)
			continue;
		out = import_output_dir(plan, l);
		if (!out)
			return -ENOMEM;
		rc = lineage_install(l, out);
		if (rc >= 0)
			rc = lineage_state(plan, l);
		if (rc == 0)
			rc = lineage_link(l, out);
		if (rc == 0)
			fprintf(stderr, "acmed: %s: adopted into %s; %s/*.pem link there\n", l->name, out,
				l->live_dir);
		else
			fprintf(stderr, "acmed: %s: cannot adopt into %s: %s\n", l->name, out, strerror(-rc));
		free(out);
		if (rc == 0)
			webroot_ready(l, give, uid, gid);
	}
	if (give)
		store_owner_give_tree(plan->state_dir, uid, gid);
	return rc;
}
