/* scheduler_revoke.c - `acmed revoke NAME`: the certificate in use revoked at the CA that issued it, then replaced at once (a new key after keyCompromise). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ari.h"
#include "log.h"
#include "revoke.h"
#include "scheduler_internal.h"
#include "store.h"

#define REVOKE_CERT_MAX (1u << 20)

static struct job *job_named(struct sched *s, const char *name)
{
	for (size_t i = 0; i < s->njobs; i++)
		if (strcmp(s->jobs[i]->cert->name, name) == 0)
			return s->jobs[i];
	return NULL;
}

static void revoke_answer(struct job *j, int rc, const char *message)
{
	sched_revoke_fn cb = j->revoke_cb;
	void *arg = j->revoke_arg;

	j->revoke_cb = NULL;
	j->revoke_arg = NULL;
	free(j->revoke_cert);
	j->revoke_cert = NULL;
	if (cb)
		cb(arg, rc, message);
}

static void revoked(void *arg, int rc, int already, const char *message)
{
	struct job *j = arg;
	const char *ca = acme_client_name(sched_job_issuer_slot(j)->ca);
	char msg[600];

	j->revoke = NULL;
	if (rc < 0) {
		log_error(j->cert->name, "revoking the certificate in %s at CA %s: %s", j->cert->output_dir, ca,
			  message);
		revoke_answer(j, rc, message);
		return;
	}
	/* Kept until the replacement is installed: a restart before then still
	 * replaces it, with a new key after keyCompromise. */
	free(j->st.revoked_cert);
	j->st.revoked_cert = j->revoke_cert;
	j->revoke_cert = NULL;
	j->st.revoked_reason = j->revoke_reason;
	if (j->revoke_reason == REVOKE_KEY_COMPROMISE)
		j->st.key_compromised = 1;
	j->revoked_in_flight = j->state == JOB_RUNNING || j->state == JOB_INSTALLING;
	sched_job_save(j);
	snprintf(msg, sizeof(msg), "%s at CA %s (%s); ordering its replacement now%s",
		 already ? "the CA says it was revoked already" : "revoked", ca,
		 revoke_reason_name(j->revoke_reason),
		 j->revoke_reason == REVOKE_KEY_COMPROMISE ? ", with a new key" : "");
	log_warn(j->cert->name, "certificate %s %s", j->st.revoked_cert, msg);
	sched_renew_now(j->s, j->cert->name, 1);
	revoke_answer(j, 0, msg);
}

int sched_revoke(struct sched *s, const char *name, int reason, sched_revoke_fn cb, void *arg, char *err,
		 size_t errlen)
{
	struct job *j = job_named(s, name);
	char *path = NULL, *pem = NULL, *cid = NULL;
	size_t len = 0;
	int rc;

	if (!j) {
		snprintf(err, errlen, "unknown certificate: %s", name);
		return -ENOENT;
	}
	if (j->revoke) {
		snprintf(err, errlen, "%s: a revocation is already waiting for the CA", name);
		return -EBUSY;
	}
	if (j->state == JOB_LOADING) {  /* which CA issued it is not known yet */
		snprintf(err, errlen, "%s: acmed is still looking at the certificate (just started or "
			 "reloaded); try again in a moment", name);
		return -EAGAIN;
	}
	/* The file a user would revoke: what is in output_dir now (small, local). */
	path = store_path(j->cert->output_dir, "cert.pem");
	rc = path ? store_read_file(path, &pem, &len, REVOKE_CERT_MAX) : -ENOMEM;
	if (rc == 0 && ari_cert_id(pem, len, &cid) < 0)
		rc = -EINVAL;
	if (rc < 0) {
		snprintf(err, errlen, "%s: no certificate to revoke in %s (%s)", name, path ? path : "",
			 rc == -EINVAL ? "not a certificate with an authority key identifier" : strerror(-rc));
		goto out;
	}
	j->revoke = revoke_start(sched_job_issuer_slot(j)->ca, pem, len, reason, revoked, j);
	if (!j->revoke) {
		snprintf(err, errlen, "%s: cannot send the revocation", name);
		rc = -ENOMEM;
		goto out;
	}
	log_info(name, "revoking certificate %s (%s) at CA %s", cid, revoke_reason_name(reason),
		 acme_client_name(sched_job_issuer_slot(j)->ca));
	j->revoke_cb = cb;
	j->revoke_arg = arg;
	j->revoke_reason = reason;
	j->revoke_cert = cid;
	cid = NULL;
out:
	free(cid);
	free(pem);
	free(path);
	return rc;
}

void sched_revoke_cancel(struct job *j)
{
	if (!j->revoke)
		return;
	revoke_cancel(j->revoke);
	j->revoke = NULL;
	revoke_answer(j, -ECANCELED, "acmed stopped, or the certificate left the configuration, before the "
		      "CA answered");
}

const char *sched_revoked_why(const struct job *j, char *buf, size_t len)
{
	if (!j->st.revoked_cert || !j->cert_id || strcmp(j->st.revoked_cert, j->cert_id) != 0)
		return NULL;
	snprintf(buf, len, "the certificate in use was revoked (%s)", revoke_reason_name(j->st.revoked_reason));
	return buf;
}

int sched_revoked_replaced(struct job *j)
{
	/* An order already running when the key was revoked as compromised may
	 * carry that key (key_reuse): its certificate is replaced once more. */
	if (j->revoked_in_flight) {
		j->revoked_in_flight = 0;
		if (j->st.key_compromised)
			return 0;
	}
	free(j->st.revoked_cert);
	j->st.revoked_cert = NULL;
	j->st.revoked_reason = 0;
	j->st.key_compromised = 0;
	return 1;
}
