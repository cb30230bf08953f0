/* revoke.c - RFC 8555 7.6 revocation of one certificate, signed with the account key: the request, the reason codes, the CA's answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme_obj.h"
#include "crypto.h"
#include "revoke.h"

struct revoke_req {
	struct acme_client *ca;
	struct acme_call *call;
	revoke_done_fn cb;
	void *arg;
};

static const struct {
	const char *name;
	int code;
} reasons[] = {
	{ "unspecified", REVOKE_UNSPECIFIED },
	{ "keyCompromise", REVOKE_KEY_COMPROMISE },
	{ "affiliationChanged", REVOKE_AFFILIATION_CHANGED },
	{ "superseded", REVOKE_SUPERSEDED },
	{ "cessationOfOperation", REVOKE_CESSATION },
};

const char revoke_reason_list[] = "unspecified, keyCompromise, affiliationChanged, superseded, "
				  "cessationOfOperation";

int revoke_reason_parse(const char *name, int *code)
{
	for (size_t i = 0; name && i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcasecmp(name, reasons[i].name) == 0) {
			*code = reasons[i].code;
			return 0;
		}
	}
	return -EINVAL;
}

const char *revoke_reason_name(int code)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].name;
	return "unspecified";
}

static void revoke_done(const struct acme_reply *r, void *arg)
{
	struct revoke_req *q = arg;
	const char *name = r->problem ? r->problem->name : NULL;
	char msg[512];

	q->call = NULL;
	if (r->err == ACME_ERR_NONE) {
		q->cb(q->arg, 0, 0, "revoked");
	} else if (name && strcmp(name, "alreadyRevoked") == 0) {
		q->cb(q->arg, 0, 1, "the CA says it was revoked already");
	} else {
		snprintf(msg, sizeof(msg), "the CA did not revoke it: %s%s", r->err_text ? r->err_text : "error",
			 name && strcmp(name, "unauthorized") == 0 ?
			 " (this CA account did not order it: revoke it with the account that did)" : "");
		q->cb(q->arg, r->err == ACME_ERR_UNAVAILABLE ? -EAGAIN : -EPERM, 0, msg);
	}
	free(q);
}

struct revoke_req *revoke_start(struct acme_client *ca, const char *cert_pem, size_t len, int reason,
				revoke_done_fn cb, void *arg)
{
	struct revoke_req *q;
	unsigned char *der = NULL;
	size_t derlen = 0;
	char *payload;

	if (crypto_cert_der(cert_pem, len, &der, &derlen) < 0)
		return NULL;
	payload = acme_revoke_payload(der, derlen, reason);
	free(der);
	q = payload ? calloc(1, sizeof(*q)) : NULL;
	if (q) {
		q->ca = ca;
		q->cb = cb;
		q->arg = arg;
		q->call = acme_client_post(ca, "revokeCert", NULL, payload, revoke_done, q);
		if (!q->call) {
			free(q);
			q = NULL;
		}
	}
	free(payload);
	return q;
}

void revoke_cancel(struct revoke_req *r)
{
	if (!r)
		return;
	acme_client_cancel(r->ca, r->call);
	free(r);
}
