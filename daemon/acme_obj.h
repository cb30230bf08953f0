/* acme_obj.h - the ACME objects an order reads (order, authorization, challenge), parsed from the CA's JSON into small structs. */
#ifndef ACMED_ACME_OBJ_H
#define ACMED_ACME_OBJ_H

#include <stddef.h>

enum acme_status {
	ACME_STATUS_UNKNOWN = 0,        /* absent or not one of RFC 8555's */
	ACME_STATUS_PENDING,
	ACME_STATUS_READY,
	ACME_STATUS_PROCESSING,
	ACME_STATUS_VALID,
	ACME_STATUS_INVALID,
	ACME_STATUS_DEACTIVATED,
	ACME_STATUS_EXPIRED,
	ACME_STATUS_REVOKED,
};

/* A problem document inside an object ("error"); both NULL when absent. */
struct acme_obj_error {
	char *type;
	char *detail;
};

/* RFC 8555 7.1.3. Strings are NULL when absent or not strings. */
struct acme_order_obj {
	enum acme_status status;
	char *status_text;              /* as sent, for messages; NULL when absent */
	char **authorizations;          /* URLs; entries that are not strings are NULL */
	size_t nauthz;
	char *finalize;
	char *certificate;
	struct acme_obj_error error;
};

/* RFC 8555 7.1.5. */
struct acme_chal_obj {
	char *type;
	char *url;
	char *token;                    /* NULL unless base64url, 1..256 characters */
	enum acme_status status;
	struct acme_obj_error error;
	/* dns-persist-01: the account URI the record must name, and the CA's
	 * issuer domain names (only printable names of at most 253 characters,
	 * at most ACME_OBJ_MAX_ISSUERS; others dropped): NULL / 0 when absent. */
	char *accounturi;
	char **issuers;
	size_t nissuers;
};
#define ACME_OBJ_MAX_ISSUERS 8

/* RFC 8555 7.1.4. */
struct acme_authz_obj {
	enum acme_status status;
	char *status_text;
	char *id_type;                  /* "dns", "ip" */
	char *id_value;
	int wildcard;
	struct acme_chal_obj *challenges;
	size_t nchallenges;
};

/* RFC 8555 7.1.1: the directory. Every string member is a resource (its
 * name and URL); meta as far as acmed uses it. */
struct acme_dir_resource {
	char *name, *url;
};
struct acme_directory {
	struct acme_dir_resource *res;
	size_t nres;
	int external_account_required;  /* meta.externalAccountRequired */
	char **profiles;                /* meta.profiles' names (draft-ietf-acme-profiles) */
	size_t nprofiles;
	char *terms_of_service;         /* meta.termsOfService, or NULL */
};
#define ACME_DIR_MAX_RESOURCES 64
#define ACME_DIR_MAX_PROFILES 64

#define ACME_OBJ_MAX_AUTHZ 100
#define ACME_OBJ_MAX_CHALLENGES 16

/* 0, or -EINVAL when body is not a JSON object (or has too many entries);
 * -ENOMEM. The struct is always safe to clear. */
int acme_order_parse(const char *body, size_t len, struct acme_order_obj *out);
int acme_authz_parse(const char *body, size_t len, struct acme_authz_obj *out);
void acme_order_obj_clear(struct acme_order_obj *o);
void acme_authz_obj_clear(struct acme_authz_obj *a);
/* The first challenge of that type, or NULL. */
const struct acme_chal_obj *acme_authz_challenge(const struct acme_authz_obj *a, const char *type);
/* 0; -EINVAL when body is not a directory (not a JSON object, or without
 * newNonce, newAccount and newOrder: a maintenance page), -ENOMEM. */
int acme_directory_parse(const char *body, size_t len, struct acme_directory *out);
void acme_directory_clear(struct acme_directory *d);
/* The URL of the resource named name, or NULL. */
const char *acme_directory_url(const struct acme_directory *d, const char *name);

/* Payloads (malloc'd JSON; NULL on ENOMEM): newOrder for these DNS names,
 * with "replaces" (RFC 9773) when not NULL; finalize with a DER CSR. */
char *acme_new_order_payload(const char *const *names, size_t n, const char *replaces, const char *profile);
char *acme_finalize_payload(const unsigned char *csr_der, size_t len);
/* revokeCert (RFC 8555 7.6): {"certificate": base64url(DER), "reason": code}. */
char *acme_revoke_payload(const unsigned char *cert_der, size_t len, int reason);
/* The first challenge carrying an error (the reason an authorization failed), or NULL. */
const struct acme_chal_obj *acme_authz_failed_challenge(const struct acme_authz_obj *a);

#endif
