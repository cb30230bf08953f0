/* config_internal.h - private to config.c and config_include.c: the parse context, messages, the helpers both use. */
#ifndef ACMED_CONFIG_INTERNAL_H
#define ACMED_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"
#include "config_yaml.h"

#define CFG_MAX_CERTS 100000
#define CFG_MAX_NAME 64

struct cert_aux {
	const struct node *map, *name, *ca, *out;
};

/* A file named by `include:`, parsed. */
struct fragment {
	char *path;             /* its nodes point at it (node->file) */
	char *dir;              /* relative paths in it are relative to this */
	struct node *root;
};

struct ctx {
	struct config_yaml_msg msg;
	char *base;             /* absolute directory of the file */
	struct fragment *frags;
	size_t nfrags;
	struct node *merged[2]; /* cas and certificates of every file, in order (kids not owned) */
	struct config *cfg;
	int doc_line, doc_col;  /* start of the document */
	const struct node **ca_names;
	struct cert_aux *certs;
};


/* Messages go to the caller's err buffer through config_yaml.c. */
#define cfg_err_at(c, line, col, ...) config_yaml_err_at(&(c)->msg, (line), (col), __VA_ARGS__)
#define cfg_err(c, nd, ...) config_yaml_err(&(c)->msg, (nd), __VA_ARGS__)

/* config.c */
/* p resolved against base (p itself when absolute), malloc'd; NULL on ENOMEM. */
char *config_path_resolve(const char *base, const char *p);
/* The absolute directory of name and its absolute path, malloc'd. 0 or -errno. */
int config_file_location(const char *name, char **dir_out, char **path_out);
/* After an error in one setting: check-config (c->msg.all) goes on with the
 * next independent one; loading stops at the first. Keeps the first error in
 * *rc; 1 when the caller must return *rc now. */
int config_stop_at(const struct ctx *c, int *rc, int r);
/* n empty slots (v[n] == NULL); 0 or -ENOMEM. */
int config_strv_alloc(struct config_strv *sv, size_t n);
/* A path (relative to the file the node is in), malloc'd in *out; else the error. */
int config_get_path(struct ctx *c, const char *key, const struct node *v, char **out);

/* A name: [A-Za-z0-9._-], at most CFG_MAX_NAME. */
int config_check_name(struct ctx *c, const char *key, const struct node *v);

/* config_dns.c: dns:, dns_providers: and a certificate's dns_provider */
int config_parse_dns(struct ctx *c, const struct node *v);
int config_parse_dns_providers(struct ctx *c, const struct node *v);
int config_get_dns_provider(struct ctx *c, const struct node *v, const struct node *map, struct config_cert *ct);

/* config_values.c: single values, each with its FILE:LINE:COL error */
int config_get_str(struct ctx *c, const char *key, const char *what, const struct node *v, char **out);
int config_get_bool(struct ctx *c, const char *key, const struct node *v, int *out);
int config_get_group(struct ctx *c, const struct node *v, struct config_cert *ct);
int config_get_profile(struct ctx *c, const struct node *v, char **out);
/* `challenge:` (default http-01; dns-01, tls-alpn-01, dns-persist-01), no webroot
 * but with http-01, wildcards only with a DNS challenge, no address with one. */
int config_get_challenge(struct ctx *c, const struct node *v, const struct node *webroot,
			 const struct node *domains, struct config_cert *ct);

/* config_eab.c: a CA's eab: mapping */
int config_parse_eab(struct ctx *c, const struct node *v, struct config_ca *ca);

/* config_include.c: `include:` */
enum { CONFIG_F_CAS, CONFIG_F_CERTIFICATES };
/* Read and parse every file the include patterns match (kept in c->frags). */
int config_include_load(struct ctx *c, const struct node *inc);
/* The sequences under key (which: CONFIG_F_*) in the main file (mine) and
 * every included one, as one (its kids not owned); *out NULL when none has it. */
int config_include_merge(struct ctx *c, int which, const struct node *mine, const char *key,
			 const struct node **out);
void config_include_free(struct ctx *c);

#endif
