/* config.h - the immutable configuration parsed from acmed.yaml. */
#ifndef ACMED_CONFIG_H
#define ACMED_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PATH "/etc/acmed/acmed.yaml"

enum key_type {
	KEY_ECDSA_P256,
	KEY_ECDSA_P384,
	KEY_RSA_2048,
	KEY_RSA_3072,
	KEY_RSA_4096,
};

struct config_strv {
	char **v;               /* NULL-terminated; v[n] == NULL */
	size_t n;
};

struct config_ca {
	char *name;
	char *directory;        /* https URL of the ACME directory */
	char *staging;          /* the CA's staging directory (renew --dry-run), or NULL */
	/* External Account Binding (RFC 8555 7.3.4), or eab_kid NULL. */
	char *eab_kid;
	unsigned char *eab_key;         /* the MAC key, decoded (a secret) */
	size_t eab_key_len;
	char *eab_key_file;             /* where it is kept (check-config looks at its mode) */
	int eab_line, eab_col;
	const char *eab_alg;            /* "HS256" (default), "HS384", "HS512" */
	struct config_strv contact;
	char *ca_bundle;        /* absolute path or NULL */
	int ca_bundle_line, ca_bundle_col;
	int max_parallel;       /* default 4 */
	int64_t timeout;        /* seconds, per HTTP request to the CA; default 60 */
	int orders_per_hour;    /* ceiling on new orders; default POLICY_ORDERS_DEFAULT */
	int line;               /* where it was defined in the file */
	char *file;             /* that file when it is an included one, else NULL */
};

/* dns: how dns-01 looks names up and checks that a record is served. */
enum config_dns_propagation {
	CONFIG_DNS_AUTHORITATIVE,       /* every name server of the zone, by its own address (default) */
	CONFIG_DNS_RESOLVERS,           /* the resolvers */
	CONFIG_DNS_NONE,                /* not checked */
};

struct config_dns {
	struct config_strv resolvers;   /* "ip:port"; n == 0: /etc/resolv.conf's, read when used */
	enum config_dns_propagation propagation;
	int64_t propagation_timeout;    /* seconds; default 120 */
};

enum config_dns_type {
	CONFIG_DNS_RFC2136,             /* DNS UPDATE signed with TSIG */
	CONFIG_DNS_EXEC,                /* COMMAND present|cleanup FQDN VALUE */
	CONFIG_DNS_ACMEDNS,             /* joohoi/acme-dns's HTTP API */
};

/* One of dns_providers: (the secret stays in memory, never in a log). */
struct config_dns_provider {
	char *name;
	enum config_dns_type type;
	/* rfc2136 */
	char *server;                   /* "ip:port" (port 53 by default) */
	char *tsig_key;                 /* the key's name, or NULL: unsigned updates */
	char *tsig_algorithm;           /* "hmac-sha256" (default) ... */
	char *tsig_secret;              /* base64, as in the key file (a secret) */
	char *tsig_secret_file;
	char *zone;                     /* lower case, no final dot; NULL: found by SOA queries */
	int64_t ttl;                    /* of the TXT records it adds; default 60 s */
	/* exec */
	struct config_strv command;     /* argv; n == 0 for the other types */
	int64_t timeout;                /* seconds per run; default 120 */
	/* acme-dns */
	char *url;                      /* https://auth.example.org (http:// only to a loopback address) */
	char *credentials_file;         /* lego/certbot format: {"example.org": {"username", ...}} */
	unsigned char credentials_digest[32];   /* SHA-256 of it: a reload sees an edited file */
	char *ca_bundle;                /* extra roots for url, or NULL */
	int line;
	char *file;                     /* the included file it is defined in, else NULL */
};

#define CONFIG_CA_LIST_MAX 4     /* CAs in one certificate's `ca:` list */

struct config_cert {
	char *name;             /* [A-Za-z0-9._-]+, unique */
	size_t ca;              /* index into config.cas: the first CA of `ca:` */
	/* `ca: [a, b, ...]`: the CAs an order falls back to, in order (indexes
	 * into config.cas); nfallback == 0 for a single CA. */
	size_t fallback[CONFIG_CA_LIST_MAX - 1];
	size_t nfallback;
	struct config_strv domains; /* lower-cased, unique, non-empty */
	enum key_type key_type; /* default KEY_ECDSA_P256 */
	int key_type_set;       /* 0: not in the config: an existing certificate's type is kept */
	char *challenge;        /* "http-01" */
	char *dns_provider;     /* with dns-01: the name of one of config.dns_providers, else NULL */
	char *webroot;          /* http-01 token files go to webroot/.well-known/acme-challenge/; NULL */
	char *profile;          /* the ACME profile sent in newOrder, or NULL */
	char *preferred_chain;  /* issuer CN of the chain's top certificate to prefer, or NULL */
	int key_reuse;          /* renewals keep the private key in use (same key_type) */
	char *key_group;        /* privkey.pem 0640 with this group, or NULL (0600); looked up
				 * by check-config and at each install, never on the loop */
	int key_group_line, key_group_col;
	int webroot_line, webroot_col;
	int64_t renew_before;   /* seconds; 0 = not set */
	int renew_before_line, renew_before_col;   /* where it is set, for warnings */
	char *output_dir;       /* absolute; default <state_dir>/live/<name> */
	struct config_strv reload;  /* systemd units */
	struct config_strv exec;    /* argv; n == 0 when unset */
	int exec_line, exec_col;
	int output_dir_line, output_dir_col;   /* 0 when not set (the default) */
	int line;
	char *file;             /* the included file it is defined in, else NULL (the main one) */
};

struct config {
	char *path;             /* absolute path of the file parsed */
	char *state_dir;        /* absolute; default /var/lib/acmed */
	char *runtime_dir;      /* absolute; default /run/acmed */
	struct config_strv listen; /* default ["[::]:80", "0.0.0.0:80"] */
	struct config_strv tls_alpn_listen; /* tls-alpn-01; default ["[::]:443", "0.0.0.0:443"] */
	struct config_ca *cas;
	size_t ncas;
	struct config_cert *certs;
	size_t ncerts;
	struct config_dns dns;
	struct config_dns_provider *dns_providers;
	size_t ndns_providers;
};

/* Parse and validate path. On error returns -EINVAL (or -errno when the file
 * cannot be read), *out stays NULL and err holds "FILE:LINE:COL: message". */
int config_load(const char *path, struct config **out, char *err, size_t errlen);
/* For check-config: every error the file has (not only the first), each as
 * one "FILE:LINE:COL: message" line on errors; *nerrors how many. */
int config_load_every_error(const char *path, struct config **out, FILE *errors,
			    unsigned *nerrors);
int config_load_buffer_every_error(const char *name, const char *buf, size_t len,
				   struct config **out, FILE *errors, unsigned *nerrors);
/* Same, from memory; name is used in messages and to resolve relative paths
 * (relative to dirname(name)). */
int config_load_buffer(const char *name, const char *buf, size_t len,
		       struct config **out, char *err, size_t errlen);
void config_free(struct config *cfg);

/* "90s" "15m" "12h" "30d" (a positive integer and one unit). 0 or -EINVAL. */
int config_parse_duration(const char *s, int64_t *out);

const char *config_key_type_name(enum key_type kt);     /* "ecdsa-p256" ... */
int config_key_type_parse(const char *s, enum key_type *out);

/* Deep copy of one certificate's settings (for work that outlives a reload). */
/* The CA at position at (0: the first) of c's `ca:` list, as an index into
 * config.cas; config_cert_nca: how many the list holds (>= 1). */
size_t config_cert_ca_at(const struct config_cert *c, size_t at);
size_t config_cert_nca(const struct config_cert *c);
/* The position of CA index ca in c's list, or -1 when it is not in it. */
int config_cert_ca_pos(const struct config_cert *c, size_t ca);
int config_cert_copy(struct config_cert *dst, const struct config_cert *src);
void config_cert_clear(struct config_cert *ct);

/* Deep copy (dst overwritten; on -ENOMEM it holds what was copied: clear it). */
int config_strv_copy(struct config_strv *dst, const struct config_strv *src);
/* The same strings in the same order. */
int config_strv_equal(const struct config_strv *a, const struct config_strv *b);
void config_strv_clear(struct config_strv *sv);
/* Free a CA's eab settings (the key wiped). */
void config_eab_clear(struct config_ca *ca);
/* The MAC key of an EAB key file's text: base64url or standard base64, padded
 * or not, surrounding white space ignored. 0, -EINVAL (empty or not base64), -ENOMEM. */
int config_eab_key_decode(const char *text, size_t len, unsigned char **key, size_t *keylen);

const struct config_dns_provider *config_find_dns_provider(const struct config *cfg, const char *name);
/* "rfc2136", "exec", "acme-dns". */
const char *config_dns_type_name(enum config_dns_type t);
void config_dns_provider_clear(struct config_dns_provider *p);
int config_dns_provider_copy(struct config_dns_provider *dst, const struct config_dns_provider *src);
/* 1 when both say the same (a reload keeps the provider and what it does). */
int config_dns_provider_same(const struct config_dns_provider *a, const struct config_dns_provider *b);
/* Both change the same records: the same type and target (rfc2136 server,
 * exec command, acme-dns url), whatever their names, keys or timeouts. */
int config_dns_provider_same_place(const struct config_dns_provider *a, const struct config_dns_provider *b);

const struct config_cert *config_find_cert(const struct config *cfg, const char *name);

#endif
