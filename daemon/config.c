/* config.c - the config schema: document tree -> immutable struct config, with FILE:LINE:COL messages. */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"
#include "config_check.h"
#include "config_file.h"
#include "config_internal.h"
#include "config_paths.h"
#include "config_yaml.h"


/* ---- helpers ---- */


int config_strv_alloc(struct config_strv *sv, size_t n)
{
	sv->n = 0;
	sv->v = calloc(n + 1, sizeof(char *));
	return sv->v ? 0 : -ENOMEM;
}

static int cmp_idx(const void *a, const void *b, void *arg)
{
	char *const *s = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(s[x], s[y]);

	if (r)
		return r;
	return x < y ? -1 : x > y;
}

/* Earliest (in input order) repetition of a string: 1 with *dup and *first set,
 * 0 when all are unique. *sorted (optional) receives the indexes sorted by string. */
static int find_dup(char *const *s, size_t n, size_t *dup, size_t *first, size_t **sorted)
{
	size_t *idx = malloc((n ? n : 1) * sizeof(size_t)), best = SIZE_MAX, group = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(size_t), cmp_idx, (void *)s);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(s[idx[i]], s[idx[i - 1]])) {
			group = i;
		} else if (idx[i] < best) {
			best = idx[i];
			*first = idx[group];
		}
	}
	*dup = best;
	if (sorted)
		*sorted = idx;
	else
		free(idx);
	return best != SIZE_MAX;
}

/* Lexical normalisation of base/p (or p when absolute): no ".", "..", "//". */
char *config_path_resolve(const char *base, const char *p)
{
	size_t len = strlen(base) + strlen(p) + 2, o = 0;
	char *tmp = malloc(len), *out = malloc(len), *save = NULL;

	if (!tmp || !out) {
		free(tmp);
		free(out);
		return NULL;
	}
	if (p[0] == '/')
		snprintf(tmp, len, "%s", p);
	else
		snprintf(tmp, len, "%s/%s", base, p);
	for (char *t = strtok_r(tmp, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, t, strlen(t));
		o += strlen(t);
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(tmp);
	return out;
}

/* Absolute directory of the file and absolute file path. */
int config_file_location(const char *name, char **dir_out, char **path_out)
{
	char *copy = strdup(name), *slash, *dir, *real, *cwd = NULL;
	const char *file;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
		file = slash + 1;
	} else {
		dir = ".";
		file = copy;
	}
	real = realpath(dir, NULL);
	if (!real) {
		if (dir[0] != '/' && !(cwd = getcwd(NULL, 0))) {
			free(copy);
			return -errno;
		}
		real = config_path_resolve(cwd ? cwd : "/", dir);
		free(cwd);
	}
	*dir_out = real;
	*path_out = real ? config_path_resolve(real, file) : NULL;
	free(copy);
	if (!*path_out) {
		free(real);
		*dir_out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int dup_str(char **out, const char *s)
{
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* The directory relative paths of node v are relative to: its file's. */
static const char *base_of(const struct ctx *c, const struct node *v)
{
	for (size_t i = 0; v->file && i < c->nfrags; i++)
		if (v->file == c->frags[i].path)
			return c->frags[i].dir;
	return c->base;
}

int config_get_path(struct ctx *c, const char *key, const struct node *v, char **out)
{
	int rc = config_yaml_want_scalar(&c->msg, key, "a path", v);

	if (rc)
		return rc;
	*out = config_path_resolve(base_of(c, v), v->s);
	return *out ? 0 : -ENOMEM;
}

/* The file a node is in, when it is not the main one (NULL), malloc'd. */
static int origin_of(const struct ctx *c, const struct node *v, char **out)
{
	*out = NULL;
	if (!v->file || v->file == c->msg.name || strcmp(v->file, c->msg.name) == 0)
		return 0;
	*out = strdup(v->file);
	return *out ? 0 : -ENOMEM;
}

int config_check_name(struct ctx *c, const char *key, const struct node *v)
{
	size_t len;
	int rc = config_yaml_want_scalar(&c->msg, key, "a name", v);

	if (rc)
		return rc;
	len = strlen(v->s);
	if (len > CFG_MAX_NAME)
		return cfg_err(c, v, "%s: too long (%zu characters, max %d)", key, len, CFG_MAX_NAME);
	if (strspn(v->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
		return cfg_err(c, v, "%s: expected letters, digits, '.', '_' and '-' only, got %s", key, Q(v->s));
	if (!strcmp(v->s, ".") || !strcmp(v->s, ".."))
		return cfg_err(c, v, "%s: \".\" and \"..\" are not allowed as names", key);
	return 0;
}

/* A sequence of scalars into sv, each checked by fn (which may rewrite or
 * replace its copy, a malloc'd string). */
static int get_strv(struct ctx *c, const char *key, const char *what, const struct node *v,
		    struct config_strv *sv, int (*fn)(struct ctx *, const struct node *, char **))
{
	size_t dup, first;
	int rc = config_yaml_want_seq(&c->msg, key, what, v);

	if (rc || (rc = config_strv_alloc(sv, v->n)))
		return rc;
	for (size_t i = 0; i < v->n; i++) {
		if ((rc = dup_str(&sv->v[i], v->kids[i]->s)))
			return rc;
		sv->n++;
		if (fn && (rc = fn(c, v->kids[i], &sv->v[i])))
			return rc;
	}
	rc = find_dup(sv->v, sv->n, &dup, &first, NULL);
	if (rc == 1)
		return cfg_err(c, v->kids[dup], "%s: duplicate entry %s (first at %d:%d)", key, Q(sv->v[dup]),
			       v->kids[first]->line, v->kids[first]->col);
	return rc;
}

static int fn_listen(struct ctx *c, const struct node *v, char **s) { (void)s; return config_check_listen(&c->msg, v); }
static int fn_contact(struct ctx *c, const struct node *v, char **s) { (void)s; return config_check_contact(&c->msg, v); }
static int fn_domain(struct ctx *c, const struct node *v, char **s) { return config_check_domain(&c->msg, v, s); }
static int fn_unit(struct ctx *c, const struct node *v, char **s) { return config_check_unit(&c->msg, v, s); }

/* ---- the schema ---- */

enum { CA_NAME, CA_DIRECTORY, CA_CONTACT, CA_BUNDLE, CA_MAX_PARALLEL, CA_TIMEOUT, CA_ORDERS,
       CA_STAGING, CA_EAB, CA_NKEYS };
static const char *const ca_keys[] = { "name", "directory", "contact", "ca_bundle", "max_parallel",
	"timeout", "orders_per_hour", "staging", "eab" };

/* A whole number from lo to hi. */
static int get_int_in(struct ctx *c, const char *key, const struct node *v, int lo, int hi, int *out)
{
	size_t len = v->type == NODE_SCALAR && !v->null ? strlen(v->s) : 0;
	long n = len && len <= 9 && strspn(v->s, "0123456789") == len ? strtol(v->s, NULL, 10) : -1;

	if (n < lo || n > hi)
		return cfg_err(c, v, "%s: expected an integer from %d to %d, got %s", key, lo, hi, GOT(v));
	*out = (int)n;
	return 0;
}

/* After an error in one setting: check-config (c->msg.all) goes on with the
 * next independent one, to report them all; loading stops at the first.
 * Keeps the first error in *rc; 1 when the caller must return *rc now. */
int config_stop_at(const struct ctx *c, int *rc, int r)
{
	if (!r)
		return 0;
	if (!*rc || r == -ENOMEM)
		*rc = r;
	return r == -ENOMEM || !c->msg.all;
}

static int parse_ca(struct ctx *c, const struct node *m, struct config_ca *ca, const struct node **name)
{
	const struct node *v[CA_NKEYS];
	int rc;

	ca->max_parallel = 4;
	ca->timeout = 60;
	ca->orders_per_hour = POLICY_ORDERS_DEFAULT;
	ca->line = m->line;
	if ((rc = origin_of(c, m, &ca->file)))
		return rc;
	if (m->type != NODE_MAP)
		return cfg_err(c, m, "cas: expected a mapping with name and directory, got %s", GOT(m));
	if ((rc = config_yaml_map_keys(&c->msg, m, "in a CA", ca_keys, CA_NKEYS, v)))
		return rc;
	if (!v[CA_NAME])
		return cfg_err(c, m, "CA: missing required key \"name\"");
	*name = v[CA_NAME];
	if ((rc = config_check_name(c, "name", v[CA_NAME])) || (rc = dup_str(&ca->name, v[CA_NAME]->s)))
		return rc;
	if (!v[CA_DIRECTORY])
		return cfg_err(c, m, "CA %s: missing required key \"directory\"", Q(v[CA_NAME]->s));
	if (config_stop_at(c, &rc, config_yaml_want_scalar(&c->msg, "directory", "an https:// URL",
						     v[CA_DIRECTORY])))
		return rc;
	if (!rc && config_stop_at(c, &rc, config_check_directory(&c->msg, "directory", v[CA_DIRECTORY])))
		return rc;
	if (config_stop_at(c, &rc, dup_str(&ca->directory, v[CA_DIRECTORY]->s ? v[CA_DIRECTORY]->s : "")))
		return rc;
	/* staging: the CA's test directory, for renew --dry-run; the same URL rules */
	if (v[CA_STAGING] && !config_stop_at(c, &rc, config_yaml_want_scalar(&c->msg, "staging",
									     "an https:// URL", v[CA_STAGING])) &&
	    !config_stop_at(c, &rc, config_check_directory(&c->msg, "staging", v[CA_STAGING])) &&
	    config_stop_at(c, &rc, dup_str(&ca->staging, v[CA_STAGING]->s)))
		return rc;
	if (config_stop_at(c, &rc, v[CA_CONTACT] ? get_strv(c, "contact", "\"mailto:\" addresses",
						      v[CA_CONTACT], &ca->contact, fn_contact) :
					      config_strv_alloc(&ca->contact, 0)))
		return rc;
	if (v[CA_BUNDLE] && config_stop_at(c, &rc, config_get_path(c, "ca_bundle", v[CA_BUNDLE], &ca->ca_bundle)))
		return rc;
	if (v[CA_BUNDLE]) {
		ca->ca_bundle_line = v[CA_BUNDLE]->line;
		ca->ca_bundle_col = v[CA_BUNDLE]->col;
	}
	if (v[CA_EAB] && config_stop_at(c, &rc, config_parse_eab(c, v[CA_EAB], ca)))
		return rc;
	if (v[CA_MAX_PARALLEL] && config_stop_at(c, &rc, get_int_in(c, "max_parallel", v[CA_MAX_PARALLEL], 1,
							      1000, &ca->max_parallel)))
		return rc;
	if (v[CA_ORDERS] && config_stop_at(c, &rc, get_int_in(c, "orders_per_hour", v[CA_ORDERS], 1,
							POLICY_ORDERS_MAX, &ca->orders_per_hour)))
		return rc;
	if (v[CA_TIMEOUT]) {
		const struct node *t = v[CA_TIMEOUT];
		if ((t->type != NODE_SCALAR || t->null || config_parse_duration(t->s, &ca->timeout) ||
		     ca->timeout > 3600) &&
		    config_stop_at(c, &rc, cfg_err(c, t, "timeout: expected a duration from 1s to 1h like 30s "
					    "or 2m, got %s", GOT(t))))
			return rc;
	}
	return rc;
}

enum { C_NAME, C_CA, C_DOMAINS, C_KEY_TYPE, C_CHALLENGE, C_RENEW_BEFORE, C_OUTPUT_DIR, C_RELOAD,
       C_EXEC, C_WEBROOT, C_PROFILE, C_KEY_REUSE, C_KEY_GROUP, C_CHAIN, C_DNS_PROVIDER, C_NKEYS };
static const char *const cert_keys[] = { "name", "ca", "domains", "key_type", "challenge",
	"renew_before", "output_dir", "reload", "exec", "webroot", "profile", "key_reuse", "key_group", "preferred_chain",
	"dns_provider" };

/* exec: a non-empty list, the program first (no shell: a string is refused). */
static int parse_exec(struct ctx *c, const struct node *x, struct config_strv *exec)
{
	int rc;

	if (!x)
		return config_strv_alloc(exec, 0);
	if (x->type == NODE_SCALAR && !x->null)
		return cfg_err(c, x, "exec: expected a list (argv), e.g. exec: [/usr/local/sbin/push-cert, "
			       "--quiet]; acmed runs no shell, so it does not split a string, got %s", GOT(x));
	if (x->type != NODE_SEQ || x->n == 0)
		return cfg_err(c, x, "exec: expected a non-empty list (argv), got %s",
			       x->type == NODE_SEQ ? "an empty list" : GOT(x));
	if ((rc = config_yaml_want_seq(&c->msg, "exec", "a string argument", x)))
		return rc;
	if (!x->kids[0]->s[0])
		return cfg_err(c, x->kids[0], "exec: expected the program to run first, got \"\"");
	if ((rc = config_strv_alloc(exec, x->n)))
		return rc;
	for (size_t i = 0; i < x->n; i++, exec->n++)
		if ((rc = dup_str(&exec->v[i], x->kids[i]->s)))
			return rc;
	return 0;
}

/* Where node first is, seen from node at: "line 3", or "FILE:3" in another file. */
static const char *where(const struct node *at, const struct node *first, char *buf, size_t len)
{
	if (at->file && first->file && strcmp(at->file, first->file) != 0)
		snprintf(buf, len, "%.250s:%d", first->file, first->line);
	else
		snprintf(buf, len, "line %d", first->line);
	return buf;
}

/* `ca: NAME` or `ca: [NAME, NAME, ...]` (the CAs tried in turn): names only here, resolve_cas finds them. */
static int check_ca_list(struct ctx *c, const struct node *v)
{
	int rc;

	if (v->type != NODE_SEQ)
		return config_check_name(c, "ca", v);
	if (v->n == 0)
		return cfg_err(c, v, "ca: expected a CA name or a list of CA names, got an empty list");
	if (v->n > CONFIG_CA_LIST_MAX)
		return cfg_err(c, v->kids[CONFIG_CA_LIST_MAX], "ca: at most %d CAs in a list",
			       CONFIG_CA_LIST_MAX);
	for (size_t i = 0; i < v->n; i++) {
		if ((rc = config_check_name(c, "ca", v->kids[i])))
			return rc;
		for (size_t k = 0; k < i; k++)
			if (strcmp(v->kids[k]->s, v->kids[i]->s) == 0)
				return cfg_err(c, v->kids[i], "ca: %s is already in the list (at %s)",
					       Q(v->kids[i]->s), where(v->kids[i], v->kids[k], (char[300]){0}, 300));
	}
	return 0;
}

static int parse_cert(struct ctx *c, const struct node *m, struct config_cert *ct, struct cert_aux *aux)
{
	const struct node *v[C_NKEYS];
	int rc, r;

	ct->key_type = KEY_ECDSA_P256;
	ct->line = m->line;
	if ((rc = origin_of(c, m, &ct->file)))
		return rc;
	aux->map = m;
	if (m->type != NODE_MAP)
		return cfg_err(c, m, "certificates: expected a mapping with name and domains, got %s", GOT(m));
	if ((rc = config_yaml_map_keys(&c->msg, m, "in a certificate", cert_keys, C_NKEYS, v)))
		return rc;
	if (!v[C_NAME])
		return cfg_err(c, m, "certificate: missing required key \"name\"");
	if ((rc = config_check_name(c, "name", v[C_NAME])) || (rc = dup_str(&ct->name, v[C_NAME]->s)))
		return rc;
	if (!v[C_DOMAINS])
		return cfg_err(c, m, "certificate %s: missing required key \"domains\"", Q(v[C_NAME]->s));
	aux->name = v[C_NAME];
	aux->ca = v[C_CA];
	aux->out = v[C_OUTPUT_DIR];
	if (v[C_CA] && config_stop_at(c, &rc, check_ca_list(c, v[C_CA])))
		return rc;
	r = get_strv(c, "domains", "DNS names", v[C_DOMAINS], &ct->domains, fn_domain);
	if (config_stop_at(c, &rc, r))
		return rc;
	if (!r && ct->domains.n == 0 &&
	    config_stop_at(c, &rc, cfg_err(c, v[C_DOMAINS], "domains: expected at least one DNS name, got an "
				    "empty list")))
		return rc;
	if (config_stop_at(c, &rc, config_get_challenge(c, v[C_CHALLENGE], v[C_WEBROOT], v[C_DOMAINS], ct)))
		return rc;
	if (ct->challenge && config_stop_at(c, &rc, config_get_dns_provider(c, v[C_DNS_PROVIDER], m, ct)))
		return rc;
	if (v[C_KEY_TYPE] && (config_key_type_parse(v[C_KEY_TYPE]->s, &ct->key_type) ||
			      v[C_KEY_TYPE]->type != NODE_SCALAR) &&
	    config_stop_at(c, &rc, cfg_err(c, v[C_KEY_TYPE], "key_type: expected one of ecdsa-p256, ecdsa-p384, "
				    "rsa-2048, rsa-3072, rsa-4096, got %s", GOT(v[C_KEY_TYPE]))))
		return rc;
	ct->key_type_set = v[C_KEY_TYPE] != NULL;
	/* webroot: http-01 through the web server that owns port 80. */
	if (v[C_PROFILE] && config_stop_at(c, &rc, config_get_profile(c, v[C_PROFILE], &ct->profile)))
		return rc;
	if (v[C_KEY_REUSE] && config_stop_at(c, &rc, config_get_bool(c, "key_reuse", v[C_KEY_REUSE], &ct->key_reuse)))
		return rc;
	if (v[C_KEY_GROUP] && config_stop_at(c, &rc, config_get_group(c, v[C_KEY_GROUP], ct)))
		return rc;
	if (v[C_CHAIN] && config_stop_at(c, &rc, config_get_str(c, "preferred_chain", "the name (CN) of the issuer of "
							       "the chain's top certificate", v[C_CHAIN],
							       &ct->preferred_chain)))
		return rc;
	if (v[C_WEBROOT] && config_stop_at(c, &rc, config_get_path(c, "webroot", v[C_WEBROOT], &ct->webroot)))
		return rc;
	if (v[C_WEBROOT]) {
		ct->webroot_line = v[C_WEBROOT]->line;
		ct->webroot_col = v[C_WEBROOT]->col;
	}
	if (v[C_RENEW_BEFORE] && (v[C_RENEW_BEFORE]->type != NODE_SCALAR ||
				  config_parse_duration(v[C_RENEW_BEFORE]->s, &ct->renew_before)) &&
	    config_stop_at(c, &rc, cfg_err(c, v[C_RENEW_BEFORE], "renew_before: expected a duration like 90s, "
				    "15m, 12h or 30d (a positive whole number and one unit), got %s",
				    GOT(v[C_RENEW_BEFORE]))))
		return rc;
	if (v[C_RENEW_BEFORE]) {
		ct->renew_before_line = v[C_RENEW_BEFORE]->line;
		ct->renew_before_col = v[C_RENEW_BEFORE]->col;
	}
	if (v[C_OUTPUT_DIR]) {
		if (config_stop_at(c, &rc, config_get_path(c, "output_dir", v[C_OUTPUT_DIR], &ct->output_dir)))
			return rc;
		ct->output_dir_line = v[C_OUTPUT_DIR]->line;
		ct->output_dir_col = v[C_OUTPUT_DIR]->col;
	} else {
		char rel[CFG_MAX_NAME + 8];
		snprintf(rel, sizeof(rel), "live/%s", ct->name);
		ct->output_dir = config_path_resolve(c->cfg->state_dir, rel);
		if (config_stop_at(c, &rc, ct->output_dir ? 0 : -ENOMEM))
			return rc;
	}
	if (config_stop_at(c, &rc, v[C_RELOAD] ? get_strv(c, "reload", "systemd unit names", v[C_RELOAD],
						    &ct->reload, fn_unit) :
					    config_strv_alloc(&ct->reload, 0)))
		return rc;
	config_stop_at(c, &rc, parse_exec(c, v[C_EXEC], &ct->exec));
	if (v[C_EXEC] && v[C_EXEC]->n > 0) {
		ct->exec_line = v[C_EXEC]->kids[0]->line;
		ct->exec_col = v[C_EXEC]->kids[0]->col;
	}
	return rc;
}

static int parse_cas(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	char **names;
	size_t dup, first;
	int rc = 0;

	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "cas: expected a sequence of CAs, got %s", GOT(v));
	if (v->n == 0)
		return cfg_err(c, v, "cas: expected at least one CA, got an empty list");
	cfg->cas = calloc(v->n, sizeof(*cfg->cas));
	c->ca_names = calloc(v->n, sizeof(*c->ca_names));
	if (!cfg->cas || !c->ca_names)
		return -ENOMEM;
	cfg->ncas = v->n;
	for (size_t i = 0; i < v->n; i++) {
		int r = parse_ca(c, v->kids[i], &cfg->cas[i], &c->ca_names[i]);

		if (r && !rc)
			rc = r;
		if (r && (r == -ENOMEM || !c->msg.all))
			return r;       /* check-config goes on to the next CA */
	}
	if (rc)
		return rc;
	if (!(names = malloc(v->n * sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		names[i] = cfg->cas[i].name;
	rc = find_dup(names, v->n, &dup, &first, NULL);
	free(names);
	if (rc == 1)
		return cfg_err(c, c->ca_names[dup], "name: duplicate CA name %s (first at %s)",
			       Q(cfg->cas[dup].name), where(c->ca_names[dup], c->ca_names[first],
							    (char[300]){0}, 300));
	return rc;
}

static int find_ca(const struct config *cfg, const char *name, size_t *idx)
{
	for (size_t i = 0; i < cfg->ncas; i++) {
		if (!strcmp(cfg->cas[i].name, name)) {
			*idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

static int parse_certs(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	char **names;
	size_t dup, first, n;
	int rc = 0;

	if (v->null)
		return 0;
	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "certificates: expected a sequence of certificates, got %s", GOT(v));
	n = v->n;
	if (n > CFG_MAX_CERTS)
		return cfg_err(c, v->kids[CFG_MAX_CERTS], "certificates: too many (max %d)", CFG_MAX_CERTS);
	if (n == 0)
		return 0;
	cfg->certs = calloc(n, sizeof(*cfg->certs));
	c->certs = calloc(n, sizeof(*c->certs));
	if (!cfg->certs || !c->certs)
		return -ENOMEM;
	cfg->ncerts = n;
	for (size_t i = 0; i < n; i++) {
		int r = parse_cert(c, v->kids[i], &cfg->certs[i], &c->certs[i]);

		if (r && !rc)
			rc = r;
		if (r && (r == -ENOMEM || !c->msg.all))
			return r;       /* check-config goes on to the next certificate */
	}
	if (rc)
		return rc;
	if (!(names = malloc(n * sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		names[i] = cfg->certs[i].name;
	rc = find_dup(names, n, &dup, &first, NULL);
	if (rc == 1)
		rc = cfg_err(c, c->certs[dup].name, "name: duplicate certificate name %s (first at %s)",
			     Q(names[dup]), where(c->certs[dup].name, c->certs[first].name,
						  (char[300]){0}, 300));
	for (size_t i = 0; rc == 0 && i < n; i++)
		names[i] = cfg->certs[i].output_dir;
	if (rc == 0 && (rc = find_dup(names, n, &dup, &first, NULL)) == 1) {
		size_t at = c->certs[dup].out ? dup : first, other = at == dup ? first : dup;
		rc = cfg_err(c, c->certs[at].out ? c->certs[at].out : c->certs[at].map, "output_dir: %s is also the output directory of certificate %s",
			     Q(names[at]), Q(cfg->certs[other].name));
	}
	/* The same directory by another path (a symbolic link, a bind mount). */
	if (rc == 0 && config_paths_same((const char *const *)names, n, &first, &dup)) {
		size_t at = c->certs[dup].out ? dup : first, other = at == dup ? first : dup;
		rc = cfg_err(c, c->certs[at].out ? c->certs[at].out : c->certs[at].map, "output_dir: %s is "
			     "the same directory as %s, the output directory of certificate %s (a symbolic "
			     "link or a mount leads there); each certificate needs its own", Q(names[at]),
			     Q(names[other]), Q(cfg->certs[other].name));
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *part;
		if (c->certs[i].out && config_paths_private(names[i], cfg->state_dir, &part))
			rc = cfg_err(c, c->certs[i].out, "output_dir: %s is inside %s; give the certificate "
				     "a directory of its own", Q(names[i]), part);
	}
	free(names);
	return rc;
}

static int resolve_cas(struct ctx *c)
{
	struct config *cfg = c->cfg;

	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct node *ca = c->certs[i].ca;
		if (!ca && cfg->ncas > 1)
			return cfg_err(c, c->certs[i].map, "certificate %s: missing key \"ca\" (required when more "
				       "than one CA is defined)", Q(cfg->certs[i].name));
		if (!ca)
			continue;
		struct config_cert *ct = &cfg->certs[i];
		const struct node *first = ca->type == NODE_SEQ ? ca->kids[0] : ca;
		if (find_ca(cfg, first->s, &ct->ca))
			return cfg_err(c, first, "ca: expected the name of a CA defined under cas, got %s",
				       Q(first->s));
		for (size_t k = 1; ca->type == NODE_SEQ && k < ca->n; k++)
			if (find_ca(cfg, ca->kids[k]->s, &ct->fallback[ct->nfallback++]))
				return cfg_err(c, ca->kids[k], "ca: expected the name of a CA defined under "
					       "cas, got %s", Q(ca->kids[k]->s));
	}
	return 0;
}

enum { T_STATE_DIR, T_RUNTIME_DIR, T_LISTEN, T_CAS, T_CERTIFICATES, T_INCLUDE, T_TLS_ALPN_LISTEN, T_DNS,
       T_DNS_PROVIDERS, T_NKEYS };
static const char *const top_keys[] = { "state_dir", "runtime_dir", "listen", "cas", "certificates",
	"include", "tls_alpn_listen", "dns", "dns_providers" };

/* listen / tls_alpn_listen: "host:port" addresses, default [::] and 0.0.0.0 on port. */
static int get_listen(struct ctx *c, const char *key, const struct node *v, struct config_strv *out,
		      const char *port)
{
	int rc;

	if (v) {
		if ((rc = get_strv(c, key, "\"host:port\" addresses", v, out, fn_listen)))
			return rc;
		return out->n ? 0 : cfg_err(c, v, "%s: expected at least one \"host:port\" address, got an "
					     "empty list", key);
	}
	if ((rc = config_strv_alloc(out, 2)) < 0 || asprintf(&out->v[0], "[::]:%s", port) < 0)
		return -ENOMEM;
	out->n = 1;
	if (asprintf(&out->v[1], "0.0.0.0:%s", port) < 0)
		return -ENOMEM;
	out->n = 2;
	return 0;
}

static int parse_top(struct ctx *c, const struct node *root)
{
	struct config *cfg = c->cfg;
	const struct node *v[T_NKEYS];
	int rc;

	if (root->type == NODE_SCALAR && root->null)
		return cfg_err_at(c, c->doc_line, c->doc_col, "the document is empty; expected a mapping with at "
				  "least \"cas\"");
	if (root->type != NODE_MAP)
		return cfg_err(c, root, "expected a mapping of settings (state_dir, cas, certificates, ...) at "
			       "the top level, got %s", GOT(root));
	const struct node *cas, *certs;
	int inc_rc = 0;

	if ((rc = config_yaml_map_keys(&c->msg, root, "at the top level", top_keys, T_NKEYS, v)))
		return rc;
	/* check-config goes on after an included file's error, to say them all */
	if (v[T_INCLUDE] && config_stop_at(c, &inc_rc, config_include_load(c, v[T_INCLUDE])))
		return inc_rc;
	if ((rc = config_include_merge(c, CONFIG_F_CAS, v[T_CAS], "cas", &cas)) ||
	    (rc = config_include_merge(c, CONFIG_F_CERTIFICATES, v[T_CERTIFICATES], "certificates", &certs)))
		return rc;
	if (!cas)
		return cfg_err(c, root, "missing required key \"cas\" (the ACME CAs to use)%s",
			       v[T_INCLUDE] ? ", here or in an included file" : "");
	rc = v[T_STATE_DIR] ? config_get_path(c, "state_dir", v[T_STATE_DIR], &cfg->state_dir) :
		dup_str(&cfg->state_dir, "/var/lib/acmed");
	if (rc)
		return rc;
	rc = v[T_RUNTIME_DIR] ? config_get_path(c, "runtime_dir", v[T_RUNTIME_DIR], &cfg->runtime_dir) :
		dup_str(&cfg->runtime_dir, "/run/acmed");
	if (rc)
		return rc;
	if ((rc = get_listen(c, "listen", v[T_LISTEN], &cfg->listen, "80")) ||
	    (rc = get_listen(c, "tls_alpn_listen", v[T_TLS_ALPN_LISTEN], &cfg->tls_alpn_listen, "443")))
		return rc;
	if (config_stop_at(c, &inc_rc, config_parse_dns(c, v[T_DNS])) ||
	    config_stop_at(c, &inc_rc, config_parse_dns_providers(c, v[T_DNS_PROVIDERS])))
		return inc_rc;
	rc = parse_cas(c, cas);
	if (rc && (rc == -ENOMEM || !c->msg.all))
		return rc;
	/* check-config: the certificates' errors too, after the CAs' */
	if (certs) {
		int r = parse_certs(c, certs);

		if (r && !rc)
			rc = r;
	}
	if (!rc)
		rc = inc_rc;
	return rc ? rc : resolve_cas(c);
}

/* ---- public API ---- */

static int load_buffer(const char *name, const char *buf, size_t len, struct config **out,
		       char *err, size_t errlen, struct config_yaml_errs *all)
{
	struct ctx c = { .msg = { .name = name ? name : "<config>", .err = err, .errlen = errlen,
				  .all = all } };
	struct node *root = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!out || (!buf && len))
		return -EINVAL;
	if (len > CONFIG_FILE_MAX)
		return config_too_large(c.msg.name, len, err, errlen);
	c.cfg = calloc(1, sizeof(*c.cfg));
	if (!c.cfg)
		return -ENOMEM;
	rc = config_file_location(c.msg.name, &c.base, &c.cfg->path);
	if (rc == 0)
		rc = config_yaml_parse(&c.msg, buf ? buf : "", len, &root, &c.doc_line, &c.doc_col);
	if (rc == 0 && !root)
		rc = cfg_err_at(&c, 1, 1, "the file is empty; expected a mapping with at least \"cas\"");
	if (rc == 0)
		rc = parse_top(&c, root);
	if (rc == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "%s: out of memory", c.msg.name);
	else if (rc && err && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", c.msg.name, strerror(-rc));
	config_include_free(&c);
	config_yaml_node_free(root);
	free(c.base);
	free(c.ca_names);
	free(c.certs);
	if (rc) {
		config_free(c.cfg);
		return rc;
	}
	*out = c.cfg;
	return 0;
}

int config_load_buffer(const char *name, const char *buf, size_t len,
		       struct config **out, char *err, size_t errlen)
{
	return load_buffer(name, buf, len, out, err, errlen, NULL);
}

static int load_file(const char *path, struct config **out, char *err, size_t errlen,
		     struct config_yaml_errs *all)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path || !out)
		return -EINVAL;
	rc = config_read_file(path, &buf, &len, err, errlen);
	if (rc == 0)
		rc = load_buffer(path, buf, len, out, err, errlen, all);
	free(buf);
	return rc;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	return load_file(path, out, err, errlen, NULL);
}

/* buf NULL: read the file name. */
static int every_error(const char *name, const char *buf, size_t len, struct config **out,
		       FILE *errors, unsigned *nerrors)
{
	struct config_yaml_errs all = { .out = errors };
	char err[1024] = "";
	int rc = buf ? load_buffer(name, buf, len, out, err, sizeof(err), &all) :
		       load_file(name, out, err, sizeof(err), &all);

	/* Not a message from the parser (the file cannot be read, no memory): say it. */
	if (rc && all.n == 0) {
		fprintf(errors, "%s\n", err);
		all.n = 1;
	}
	*nerrors = all.n;
	return rc;
}

int config_load_every_error(const char *path, struct config **out, FILE *errors, unsigned *nerrors)
{
	return every_error(path, NULL, 0, out, errors, nerrors);
}

int config_load_buffer_every_error(const char *name, const char *buf, size_t len,
				   struct config **out, FILE *errors, unsigned *nerrors)
{
	return every_error(name, buf ? buf : "", len, out, errors, nerrors);
}

