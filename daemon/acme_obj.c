/* acme_obj.c - the ACME objects an order reads (order, authorization, challenge) parsed from the CA's JSON into small structs, and the ones it sends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "acme_obj.h"
#include "ident.h"
#include "crypto.h"

#define TOKEN_MAX 256

static const char *const status_names[] = {
	[ACME_STATUS_PENDING] = "pending", [ACME_STATUS_READY] = "ready",
	[ACME_STATUS_PROCESSING] = "processing", [ACME_STATUS_VALID] = "valid",
	[ACME_STATUS_INVALID] = "invalid", [ACME_STATUS_DEACTIVATED] = "deactivated",
	[ACME_STATUS_EXPIRED] = "expired", [ACME_STATUS_REVOKED] = "revoked",
};

static enum acme_status status_of(const char *s)
{
	for (size_t i = 1; s && i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(s, status_names[i]) == 0)
			return (enum acme_status)i;
	return ACME_STATUS_UNKNOWN;
}

/* A copy of o[key] when it is a string; *ok = 0 on allocation failure. */
static char *dup_member(json_t *o, const char *key, int *ok)
{
	const char *s = json_string_value(json_object_get(o, key));
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = 0;
	return d;
}

/* A string that goes into a DNS record an admin publishes: printable ASCII
 * without quotes, backslash or ';' (the record's separator), 1..max long. */
static int record_safe(const char *t, size_t max)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (t[i] <= 0x20 || t[i] >= 0x7f || t[i] == '"' || t[i] == '\\' || t[i] == ';')
			return 0;
	return 1;
}

/* dns-persist-01's members (draft-ietf-acme-dns-persist): accounturi, issuer-domain-names. */
static void persist_parse(json_t *ch, struct acme_chal_obj *c, int *ok)
{
	json_t *names = json_object_get(ch, "issuer-domain-names"), *v;
	size_t i;

	if (record_safe(json_string_value(json_object_get(ch, "accounturi")), 1024))
		c->accounturi = dup_member(ch, "accounturi", ok);
	if (!json_is_array(names) || json_array_size(names) == 0)
		return;
	c->issuers = calloc(ACME_OBJ_MAX_ISSUERS, sizeof(*c->issuers));
	if (!c->issuers) {
		*ok = 0;
		return;
	}
	json_array_foreach(names, i, v) {
		const char *s = json_string_value(v);

		if (c->nissuers == ACME_OBJ_MAX_ISSUERS)
			break;
		if (!record_safe(s, 253))
			continue;
		if (!(c->issuers[c->nissuers] = strdup(s))) {
			*ok = 0;
			return;
		}
		c->nissuers++;
	}
}

static int token_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	return n > 0 && n <= TOKEN_MAX &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static void error_parse(json_t *e, struct acme_obj_error *out, int *ok)
{
	if (!json_is_object(e))
		return;
	out->type = dup_member(e, "type", ok);
	out->detail = dup_member(e, "detail", ok);
}

static void error_clear(struct acme_obj_error *e)
{
	free(e->type);
	free(e->detail);
	e->type = e->detail = NULL;
}

static json_t *load_object(const char *body, size_t len)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;

	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int acme_order_parse(const char *body, size_t len, struct acme_order_obj *out)
{
	json_t *j = load_object(body, len), *list, *u;
	int ok = 1;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -EINVAL;
	out->status_text = dup_member(j, "status", &ok);
	out->status = status_of(out->status_text);
	out->finalize = dup_member(j, "finalize", &ok);
	out->certificate = dup_member(j, "certificate", &ok);
	error_parse(json_object_get(j, "error"), &out->error, &ok);
	list = json_object_get(j, "authorizations");
	if (json_is_array(list) && json_array_size(list) > ACME_OBJ_MAX_AUTHZ) {
		json_decref(j);
		acme_order_obj_clear(out);
		return -EINVAL;
	}
	if (json_is_array(list) && json_array_size(list) > 0) {
		out->authorizations = calloc(json_array_size(list), sizeof(char *));
		if (!out->authorizations)
			ok = 0;
		json_array_foreach(list, i, u) {
			if (!out->authorizations)
				break;
			if (json_is_string(u) && !(out->authorizations[i] = strdup(json_string_value(u))))
				ok = 0;
			out->nauthz++;
		}
	}
	json_decref(j);
	if (!ok) {
		acme_order_obj_clear(out);
		return -ENOMEM;
	}
	return 0;
}

void acme_order_obj_clear(struct acme_order_obj *o)
{
	for (size_t i = 0; o->authorizations && i < o->nauthz; i++)
		free(o->authorizations[i]);
	free(o->authorizations);
	free(o->status_text);
	free(o->finalize);
	free(o->certificate);
	error_clear(&o->error);
	memset(o, 0, sizeof(*o));
}

int acme_authz_parse(const char *body, size_t len, struct acme_authz_obj *out)
{
	json_t *j = load_object(body, len), *id, *chs, *ch;
	int ok = 1;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -EINVAL;
	out->status_text = dup_member(j, "status", &ok);
	out->status = status_of(out->status_text);
	id = json_object_get(j, "identifier");
	if (json_is_object(id)) {
		out->id_type = dup_member(id, "type", &ok);
		out->id_value = dup_member(id, "value", &ok);
	}
	out->wildcard = json_is_true(json_object_get(j, "wildcard"));
	chs = json_object_get(j, "challenges");
	if (json_is_array(chs) && json_array_size(chs) > ACME_OBJ_MAX_CHALLENGES) {
		json_decref(j);
		acme_authz_obj_clear(out);
		return -EINVAL;
	}
	if (json_is_array(chs) && json_array_size(chs) > 0) {
		out->challenges = calloc(json_array_size(chs), sizeof(*out->challenges));
		if (!out->challenges)
			ok = 0;
		json_array_foreach(chs, i, ch) {
			struct acme_chal_obj *c;

			if (!out->challenges)
				break;
			c = &out->challenges[out->nchallenges++];
			if (!json_is_object(ch))
				continue;
			c->type = dup_member(ch, "type", &ok);
			c->url = dup_member(ch, "url", &ok);
			c->status = status_of(json_string_value(json_object_get(ch, "status")));
			if (token_ok(json_string_value(json_object_get(ch, "token"))))
				c->token = dup_member(ch, "token", &ok);
			error_parse(json_object_get(ch, "error"), &c->error, &ok);
			persist_parse(ch, c, &ok);
		}
	}
	json_decref(j);
	if (!ok) {
		acme_authz_obj_clear(out);
		return -ENOMEM;
	}
	return 0;
}

void acme_authz_obj_clear(struct acme_authz_obj *a)
{
	for (size_t i = 0; a->challenges && i < a->nchallenges; i++) {
		for (size_t k = 0; k < a->challenges[i].nissuers; k++)
			free(a->challenges[i].issuers[k]);
		free(a->challenges[i].issuers);
		free(a->challenges[i].accounturi);
		free(a->challenges[i].type);
		free(a->challenges[i].url);
		free(a->challenges[i].token);
		error_clear(&a->challenges[i].error);
	}
	free(a->challenges);
	free(a->status_text);
	free(a->id_type);
	free(a->id_value);
	memset(a, 0, sizeof(*a));
}

const struct acme_chal_obj *acme_authz_challenge(const struct acme_authz_obj *a, const char *type)
{
	for (size_t i = 0; i < a->nchallenges; i++)
		if (a->challenges[i].type && strcmp(a->challenges[i].type, type) == 0)
			return &a->challenges[i];
	return NULL;
}

const struct acme_chal_obj *acme_authz_failed_challenge(const struct acme_authz_obj *a)
{
	for (size_t i = 0; i < a->nchallenges; i++)
		if (a->challenges[i].error.type || a->challenges[i].error.detail)
			return &a->challenges[i];
	return NULL;
}

char *acme_new_order_payload(const char *const *names, size_t n, const char *replaces, const char *profile)
{
	json_t *ids = json_array(), *p = json_object();
	char *payload = NULL;

	for (size_t i = 0; ids && i < n; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", ident_type(names[i]), "value", names[i]));
	if (ids && p && json_object_set(p, "identifiers", ids) == 0 &&
	    (!replaces || json_object_set_new(p, "replaces", json_string(replaces)) == 0) &&
	    (!profile || json_object_set_new(p, "profile", json_string(profile)) == 0))
		payload = json_dumps(p, JSON_COMPACT);
	json_decref(ids);
	json_decref(p);
	return payload;
}

char *acme_finalize_payload(const unsigned char *csr_der, size_t len)
{
	char *csr = crypto_b64url_encode(csr_der, len), *payload = NULL;
	json_t *p = csr ? json_pack("{s:s}", "csr", csr) : NULL;

	if (p)
		payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	free(csr);
	return payload;
}

char *acme_revoke_payload(const unsigned char *cert_der, size_t len, int reason)
{
	char *cert = crypto_b64url_encode(cert_der, len), *payload = NULL;
	json_t *p = cert ? json_pack("{s:s, s:i}", "certificate", cert, "reason", reason) : NULL;

	if (p)
		payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	free(cert);
	return payload;
}

/* ---------- the directory ---------- */

int acme_directory_parse(const char *body, size_t len, struct acme_directory *out)
{
	json_t *j = load_object(body, len), *v, *meta, *profiles;
	const char *key;
	int ok = 1;

	memset(out, 0, sizeof(*out));
	if (!j)
		return -EINVAL;
	if (json_object_size(j) > ACME_DIR_MAX_RESOURCES + 8) {
		json_decref(j);
		return -EINVAL;
	}
	out->res = calloc(json_object_size(j) + 1, sizeof(*out->res));
	if (!out->res)
		ok = 0;
	json_object_foreach(j, key, v) {
		struct acme_dir_resource *r;

		if (!ok || !json_is_string(v) || out->nres == ACME_DIR_MAX_RESOURCES)
			continue;
		r = &out->res[out->nres];
		if (!(r->name = strdup(key)) || !(r->url = strdup(json_string_value(v)))) {
			free(r->name);
			ok = 0;
			continue;
		}
		out->nres++;
	}
	meta = json_object_get(j, "meta");
	out->external_account_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
	out->terms_of_service = dup_member(meta, "termsOfService", &ok);
	profiles = json_object_get(meta, "profiles");
	if (ok && json_is_object(profiles) && json_object_size(profiles) > 0) {
		out->profiles = calloc(json_object_size(profiles), sizeof(char *));
		if (!out->profiles)
			ok = 0;
		json_object_foreach(profiles, key, v) {
			if (!ok || out->nprofiles == ACME_DIR_MAX_PROFILES)
				break;
			if (!(out->profiles[out->nprofiles] = strdup(key)))
				ok = 0;
			else
				out->nprofiles++;
		}
	}
	json_decref(j);
	if (!ok) {
		acme_directory_clear(out);
		return -ENOMEM;
	}
	if (!acme_directory_url(out, "newNonce") || !acme_directory_url(out, "newAccount") ||
	    !acme_directory_url(out, "newOrder")) {
		acme_directory_clear(out);
		return -EINVAL;
	}
	return 0;
}

void acme_directory_clear(struct acme_directory *d)
{
	for (size_t i = 0; d->res && i < d->nres; i++) {
		free(d->res[i].name);
		free(d->res[i].url);
	}
	free(d->res);
	for (size_t i = 0; d->profiles && i < d->nprofiles; i++)
		free(d->profiles[i]);
	free(d->profiles);
	free(d->terms_of_service);
	memset(d, 0, sizeof(*d));
}

const char *acme_directory_url(const struct acme_directory *d, const char *name)
{
	for (size_t i = 0; i < d->nres; i++)
		if (strcmp(d->res[i].name, name) == 0)
			return d->res[i].url;
	return NULL;
}
