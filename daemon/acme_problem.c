/* acme_problem.c - ACME problem documents (RFC 8555 6.7, both namespaces) and the error class of a reply. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme.h"

#define PROBLEM_DETAIL_MAX 1024

static const char *const ns_ietf = "urn:ietf:params:acme:error:";
static const char *const ns_legacy = "urn:acme:error:";

const char *acme_err_class_name(enum acme_err_class c)
{
	switch (c) {
	case ACME_ERR_NONE: return "none";
	case ACME_ERR_UNAVAILABLE: return "CA unavailable";
	case ACME_ERR_RATELIMIT: return "rate limited";
	case ACME_ERR_CERT: return "certificate error";
	case ACME_ERR_INPUT: return "request rejected";
	case ACME_ERR_LOCAL: return "local error";
	}
	return "unknown";
}

static const char *problem_short_name(const char *type)
{
	size_t li = strlen(ns_ietf), ll = strlen(ns_legacy);

	if (!type)
		return NULL;
	if (strncmp(type, ns_ietf, li) == 0 && type[li])
		return type + li;
	if (strncmp(type, ns_legacy, ll) == 0 && type[ll])
		return type + ll;
	return NULL;
}

/* Append "; <id>: <detail>" for each subproblem, bounded. */
static void problem_append_sub(char *buf, size_t cap, json_t *subs)
{
	size_t i;
	json_t *sp;

	if (!json_is_array(subs))
		return;
	json_array_foreach(subs, i, sp) {
		const char *d = json_string_value(json_object_get(sp, "detail"));
		const char *v = json_string_value(json_object_get(
			json_object_get(sp, "identifier"), "value"));
		size_t used = strlen(buf);

		if (used + 4 >= cap || i >= 16)
			break;
		snprintf(buf + used, cap - used, "; %s: %s", v ? v : "?", d ? d : "?");
	}
}

int acme_problem_parse(const char *body, size_t len, struct acme_problem *p)
{
	json_t *root, *jt, *jd;
	json_error_t jerr;
	char detail[PROBLEM_DETAIL_MAX];

	memset(p, 0, sizeof(*p));
	if (!body || len == 0)
		return -EINVAL;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return -EINVAL;
	if (!json_is_object(root)) {
		json_decref(root);
		return -EINVAL;
	}
	jt = json_object_get(root, "type");
	jd = json_object_get(root, "detail");
	if (json_is_string(jt) && json_string_length(jt) < 512) {
		p->type = strdup(json_string_value(jt));
		p->name = problem_short_name(p->type);
	}
	detail[0] = '\0';
	if (json_is_string(jd))
		snprintf(detail, sizeof(detail), "%s", json_string_value(jd));
	problem_append_sub(detail, sizeof(detail), json_object_get(root, "subproblems"));
	if (detail[0])
		p->detail = strdup(detail);
	json_decref(root);
	return 0;
}

void acme_problem_clear(struct acme_problem *p)
{
	free(p->type);
	free(p->detail);
	memset(p, 0, sizeof(*p));
}

static int name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return 1;
	return 0;
}

enum acme_err_class acme_classify(long http_status, const char *name)
{
	static const char *const cert_errors[] = {
		"caa", "dns", "connection", "incorrectResponse", "tls", "unauthorized",
		"rejectedIdentifier", "compound", NULL,
	};
	static const char *const input_errors[] = {
		"malformed", "badCSR", "unsupportedIdentifier", "userActionRequired",
		"badPublicKey", "badSignatureAlgorithm", "invalidContact",
		"unsupportedContact", "externalAccountRequired", "badRevocationReason",
		"alreadyRevoked", "accountDoesNotExist", "orderNotReady", "alreadyReplaced",
		NULL,
	};

	if (http_status >= 200 && http_status < 300 && !name)
		return ACME_ERR_NONE;
	if (http_status == 0 || http_status >= 500)
		return ACME_ERR_UNAVAILABLE;
	if (name) {
		if (strcmp(name, "serverInternal") == 0 || strcmp(name, "badNonce") == 0)
			return ACME_ERR_UNAVAILABLE;
		if (strcmp(name, "rateLimited") == 0)
			return ACME_ERR_RATELIMIT;
		if (name_in(name, cert_errors))
			return ACME_ERR_CERT;
		if (name_in(name, input_errors))
			return ACME_ERR_INPUT;
	}
	if (http_status == 429)
		return ACME_ERR_RATELIMIT;
	if (http_status == 408)
		return ACME_ERR_UNAVAILABLE;
	/* An unknown 4xx: treat as specific to this certificate, the cautious schedule. */
	return ACME_ERR_CERT;
}
