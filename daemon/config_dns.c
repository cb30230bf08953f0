/* config_dns.c - the dns: settings and the dns_providers: list (rfc2136 with its TSIG secret file, exec, acme-dns), each error at FILE:LINE:COL. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "config_check.h"
#include "config_internal.h"
#include "crypto.h"
#include "dns.h"
#include "store.h"

#define TSIG_FILE_MAX 4096

const char *config_dns_type_name(enum config_dns_type t)
{
	return t == CONFIG_DNS_RFC2136 ? "rfc2136" : t == CONFIG_DNS_EXEC ? "exec" : "acme-dns";
}

void config_dns_provider_clear(struct config_dns_provider *p)
{
	free(p->name);
	free(p->server);
	free(p->tsig_key);
	free(p->tsig_algorithm);
	if (p->tsig_secret)
		crypto_free_secret(p->tsig_secret, strlen(p->tsig_secret));
	free(p->tsig_secret_file);
	free(p->zone);
	config_strv_clear(&p->command);
	free(p->url);
	free(p->credentials_file);
	free(p->ca_bundle);
	free(p->file);
	memset(p, 0, sizeof(*p));
}

const struct config_dns_provider *config_find_dns_provider(const struct config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->ndns_providers; i++)
		if (strcmp(cfg->dns_providers[i].name, name) == 0)
			return &cfg->dns_providers[i];
	return NULL;
}

static int get_duration(struct ctx *c, const char *key, const struct node *v, int64_t max, int64_t *out)
{
	if (v->type != NODE_SCALAR || v->null || config_parse_duration(v->s, out) || *out > max)
		return cfg_err(c, v, "%s: expected a duration from 1s to %llds like 30s or 2m, got %s", key,
			       (long long)max, GOT(v));
	return 0;
}

/* An IP address with an optional port, as dns_parse_server reads it. */
static int get_server(struct ctx *c, const char *key, const struct node *v, char **out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int rc = config_yaml_want_scalar(&c->msg, key, "an IP address with an optional port", v);

	if (rc)
		return rc;
	if (dns_parse_server(v->s, 53, &ss, &len))
		return cfg_err(c, v, "%s: expected an IP address with an optional port like \"192.0.2.53\", "
			       "\"192.0.2.53:53\" or \"[2001:db8::53]:53\" (a name is not looked up), got %s",
			       key, GOT(v));
	return (*out = strdup(v->s)) ? 0 : -ENOMEM;
}

enum { D_RESOLVERS, D_PROPAGATION, D_TIMEOUT, D_NKEYS };
static const char *const dns_keys[] = { "resolvers", "propagation", "propagation_timeout" };

int config_parse_dns(struct ctx *c, const struct node *v)
{
	struct config_dns *d = &c->cfg->dns;
	const struct node *k[D_NKEYS];
	int rc;

	d->propagation = CONFIG_DNS_AUTHORITATIVE;
	d->propagation_timeout = 120;
	if (!v)
		return config_strv_alloc(&d->resolvers, 0);
	if (v->type != NODE_MAP)
		return cfg_err(c, v, "dns: expected a mapping (resolvers, propagation, propagation_timeout), "
			       "got %s", GOT(v));
	if ((rc = config_yaml_map_keys(&c->msg, v, "in dns", dns_keys, D_NKEYS, k)))
		return rc;
	if (k[D_RESOLVERS]) {
		const struct node *r = k[D_RESOLVERS];

		if (r->type != NODE_SEQ || r->n == 0)
			return cfg_err(c, r, "dns: resolvers: expected a list of IP addresses like "
				       "[\"127.0.0.1:53\"], got %s", GOT(r));
		if ((rc = config_strv_alloc(&d->resolvers, r->n)))
			return rc;
		for (size_t i = 0; i < r->n; i++, d->resolvers.n++)
			if ((rc = get_server(c, "dns: resolvers", r->kids[i], &d->resolvers.v[i])))
				return rc;
	} else if ((rc = config_strv_alloc(&d->resolvers, 0))) {
		return rc;
	}
	if (k[D_PROPAGATION]) {
		const struct node *p = k[D_PROPAGATION];
		const char *s = p->type == NODE_SCALAR ? p->s : "";

		if (!strcmp(s, "authoritative"))
			d->propagation = CONFIG_DNS_AUTHORITATIVE;
		else if (!strcmp(s, "resolvers"))
			d->propagation = CONFIG_DNS_RESOLVERS;
		else if (!strcmp(s, "none"))
			d->propagation = CONFIG_DNS_NONE;
		else
			return cfg_err(c, p, "dns: propagation: expected authoritative, resolvers or none, got %s",
				       GOT(p));
	}
	if (k[D_TIMEOUT] && (rc = get_duration(c, "dns: propagation_timeout", k[D_TIMEOUT], 86400,
					       &d->propagation_timeout)))
		return rc;
	return 0;
}

enum { P_NAME, P_TYPE, P_SERVER, P_TSIG_KEY, P_TSIG_ALG, P_TSIG_FILE, P_ZONE, P_TTL, P_COMMAND, P_TIMEOUT,
       P_URL, P_CREDS, P_BUNDLE, P_NKEYS };
static const char *const provider_keys[] = { "name", "type", "server", "tsig_key", "tsig_algorithm",
	"tsig_secret_file", "zone", "ttl", "command", "timeout", "url", "credentials_file", "ca_bundle" };
/* Which keys each type takes (the others are errors: a typo must not pass for a setting). */
static const unsigned type_keys[] = {
	[CONFIG_DNS_RFC2136] = 1u << P_SERVER | 1u << P_TSIG_KEY | 1u << P_TSIG_ALG | 1u << P_TSIG_FILE |
			       1u << P_ZONE | 1u << P_TTL,
	[CONFIG_DNS_EXEC] = 1u << P_COMMAND | 1u << P_TIMEOUT,
	[CONFIG_DNS_ACMEDNS] = 1u << P_URL | 1u << P_CREDS | 1u << P_BUNDLE,
};

/* The TSIG secret: base64 (as in a BIND or knot key), in a file only acmed
 * (and its group) may read. Never the secret itself in a message. */
static int read_tsig_secret(struct ctx *c, const struct node *v, struct config_dns_provider *p)
{
	struct stat st;
	char *text = NULL, *s;
	size_t len = 0, n = 0;
	int rc;

	if (stat(p->tsig_secret_file, &st) == 0 && (st.st_mode & S_IROTH))
		return cfg_err(c, v, "tsig_secret_file %s is readable by every user (mode %04o); make it "
			       "readable by acmed alone: chmod 0600 (or 0640 with acmed's group)",
			       p->tsig_secret_file, (unsigned)(st.st_mode & 07777));
	rc = store_read_file(p->tsig_secret_file, &text, &len, TSIG_FILE_MAX);
	if (rc == -EFBIG)
		return cfg_err(c, v, "tsig_secret_file %s: larger than %d bytes; expected the key's secret "
			       "(base64)", p->tsig_secret_file, TSIG_FILE_MAX);
	if (rc < 0)
		return rc == -ENOMEM ? rc : cfg_err(c, v, "tsig_secret_file %s: %s", p->tsig_secret_file,
						    strerror(-rc));
	if (!(s = malloc(len + 1))) {
		crypto_free_secret(text, len);
		return -ENOMEM;
	}
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", text[i]))
			s[n++] = text[i];
	s[n] = '\0';
	crypto_free_secret(text, len);
	/* standard base64, padded: what tsig-keygen and keymgr print (the whole of it must decode) */
	rc = n == 0 || n % 4 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != n ?
	     -EINVAL : 0;
	if (rc == 0) {
		unsigned char key[DNS_TSIG_SECRET_MAX];
		size_t keylen = 0;

		rc = crypto_b64_decode(s, n, key, sizeof(key), &keylen);
		crypto_wipe(key, sizeof(key));
	}
	if (rc < 0) {
		crypto_free_secret(s, n + 1);
		return rc == -ENOMEM ? rc : cfg_err(c, v, "tsig_secret_file %s %s; expected the TSIG key's "
						    "secret in base64, as tsig-keygen or keymgr print it",
						    p->tsig_secret_file, n ? "is not base64" : "is empty");
	}
	p->tsig_secret = s;
	return 0;
}

static int parse_rfc2136(struct ctx *c, const struct node *m, const struct node *const *k,
			 struct config_dns_provider *p)
{
	int rc;

	if (!k[P_SERVER])
		return cfg_err(c, m, "dns provider %s (rfc2136): missing required key \"server\" (the primary "
			       "name server's address)", Q(p->name));
	if ((rc = get_server(c, "server", k[P_SERVER], &p->server)))
		return rc;
	if (k[P_ZONE]) {
		char *z;

		if ((rc = config_yaml_want_scalar(&c->msg, "zone", "a zone name like example.org", k[P_ZONE])))
			return rc;
		if (!(z = dns_name_canonical(k[P_ZONE]->s)) || strcmp(z, ".") == 0) {
			free(z);
			return cfg_err(c, k[P_ZONE], "zone: expected a zone name like example.org, got %s",
				       GOT(k[P_ZONE]));
		}
		z[strlen(z) - 1] = '\0';
		p->zone = z;
	}
	if (k[P_TTL] && (rc = get_duration(c, "ttl", k[P_TTL], 86400, &p->ttl)))
		return rc;
	if (!k[P_TTL])
		p->ttl = 60;
	if (!k[P_TSIG_KEY] != !k[P_TSIG_FILE])
		return cfg_err(c, k[P_TSIG_KEY] ? k[P_TSIG_KEY] : k[P_TSIG_FILE], "dns provider %s: tsig_key and "
			       "tsig_secret_file go together (the key's name and its secret)", Q(p->name));
	if (!k[P_TSIG_KEY]) {
		if (k[P_TSIG_ALG])
			return cfg_err(c, k[P_TSIG_ALG], "tsig_algorithm: only with tsig_key and tsig_secret_file");
		return 0;
	}
	if ((rc = config_yaml_want_scalar(&c->msg, "tsig_key", "the TSIG key's name", k[P_TSIG_KEY])))
		return rc;
	{
		char *kn = dns_name_canonical(k[P_TSIG_KEY]->s);

		if (!kn || strcmp(kn, ".") == 0) {
			free(kn);
			return cfg_err(c, k[P_TSIG_KEY], "tsig_key: expected the key's name like acmed-key, got %s",
				       GOT(k[P_TSIG_KEY]));
		}
		free(kn);
	}
	if (!(p->tsig_key = strdup(k[P_TSIG_KEY]->s)))
		return -ENOMEM;
	if (k[P_TSIG_ALG]) {
		if ((rc = config_yaml_want_scalar(&c->msg, "tsig_algorithm", "hmac-sha256", k[P_TSIG_ALG])))
			return rc;
		if (!dns_tsig_algorithm_known(k[P_TSIG_ALG]->s))
			return cfg_err(c, k[P_TSIG_ALG], "tsig_algorithm: expected hmac-sha256, hmac-sha384, "
				       "hmac-sha512 or hmac-sha1, got %s", GOT(k[P_TSIG_ALG]));
	}
	if (!(p->tsig_algorithm = strdup(k[P_TSIG_ALG] ? k[P_TSIG_ALG]->s : "hmac-sha256")))
		return -ENOMEM;
	if ((rc = config_get_path(c, "tsig_secret_file", k[P_TSIG_FILE], &p->tsig_secret_file)))
		return rc;
	return read_tsig_secret(c, k[P_TSIG_FILE], p);
}

static int parse_exec_provider(struct ctx *c, const struct node *m, const struct node *const *k,
			       struct config_dns_provider *p)
{
	const struct node *x = k[P_COMMAND];
	int rc;

	if (!x)
		return cfg_err(c, m, "dns provider %s (exec): missing required key \"command\" (a list: the "
			       "program first, run as COMMAND present|cleanup FQDN VALUE)", Q(p->name));
	if (x->type != NODE_SEQ || x->n == 0)
		return cfg_err(c, x, "command: expected a list, the program first, like [/usr/local/bin/dns-hook] "
			       "(no shell), got %s", GOT(x));
	if ((rc = config_strv_alloc(&p->command, x->n)))
		return rc;
	for (size_t i = 0; i < x->n; i++, p->command.n++)
		if ((rc = config_get_str(c, "command", "a word of the command", x->kids[i], &p->command.v[i])))
			return rc;
	if (p->command.v[0][0] != '/')
		return cfg_err(c, x->kids[0], "command: expected the program's absolute path, got %s",
			       Q(p->command.v[0]));
	p->timeout = 120;
	return k[P_TIMEOUT] ? get_duration(c, "timeout", k[P_TIMEOUT], 3600, &p->timeout) : 0;
}

/* What acme-dns's /register answered, by name: {"example.org": {"username": ..., "password": ...,
 * "subdomain": ..., "fulldomain": ...}} (lego's and certbot-dns-acmedns's file). Never a
 * value in a message. */
static int check_acmedns_creds(struct ctx *c, const struct node *v, const char *path, unsigned char digest[32])
{
	static const char *const fields[] = { "username", "password", "subdomain", "fulldomain" };
	char *text = NULL;
	size_t len = 0;
	json_t *root, *e;
	const char *name, *bad = NULL, *missing = NULL;
	int rc = store_read_file(path, &text, &len, 1024 * 1024);

	if (rc < 0)
		return rc == -ENOMEM ? rc : cfg_err(c, v, "credentials_file %s: %s", path, strerror(-rc));
	root = json_loadb(text, len, 0, NULL);
	crypto_sha256(text, len, digest);
	crypto_free_secret(text, len);
	if (!json_is_object(root)) {
		json_decref(root);
		return cfg_err(c, v, "credentials_file %s is not a JSON object of names (what acme-dns's "
			       "/register answered, under each name)", path);
	}
	json_object_foreach(root, name, e) {
		for (size_t i = 0; i < 4 && !missing; i++)
			if (!json_is_string(json_object_get(e, fields[i])) ||
			    !*json_string_value(json_object_get(e, fields[i])))
				missing = fields[i];
		if (!missing) {
			char *full = dns_name_canonical(json_string_value(json_object_get(e, "fulldomain")));

			if (!full)
				missing = "fulldomain that is a domain name";
			free(full);
		}
		if (missing) {
			bad = name;
			break;
		}
	}
	rc = bad ? cfg_err(c, v, "credentials_file %s: %s has no %s", path, Q(bad), missing) : 0;
	json_decref(root);
	return rc;
}

static int parse_acmedns(struct ctx *c, const struct node *m, const struct node *const *k,
			 struct config_dns_provider *p)
{
	int rc;

	if (!k[P_URL] || !k[P_CREDS])
		return cfg_err(c, m, "dns provider %s (acme-dns): missing required key \"%s\"", Q(p->name),
			       k[P_URL] ? "credentials_file" : "url");
	if ((rc = config_yaml_want_scalar(&c->msg, "url", "an https:// URL", k[P_URL])) ||
	    (rc = config_check_directory(&c->msg, "url", k[P_URL])))
		return rc;
	if (!(p->url = strdup(k[P_URL]->s)))
		return -ENOMEM;
	while (strlen(p->url) > 8 && p->url[strlen(p->url) - 1] == '/')
		p->url[strlen(p->url) - 1] = '\0';
	if ((rc = config_get_path(c, "credentials_file", k[P_CREDS], &p->credentials_file)))
		return rc;
	{
		struct stat st;

		if (stat(p->credentials_file, &st))
			return cfg_err(c, k[P_CREDS], "credentials_file %s: %s", p->credentials_file,
				       strerror(errno));
		if (st.st_mode & S_IROTH)
			return cfg_err(c, k[P_CREDS], "credentials_file %s is readable by every user (mode %04o); "
				       "chmod 0600 it", p->credentials_file, (unsigned)(st.st_mode & 07777));
		if ((rc = check_acmedns_creds(c, k[P_CREDS], p->credentials_file, p->credentials_digest)))
			return rc;
	}
	return k[P_BUNDLE] ? config_get_path(c, "ca_bundle", k[P_BUNDLE], &p->ca_bundle) : 0;
}

static int parse_provider(struct ctx *c, const struct node *m, struct config_dns_provider *p)
{
	const struct node *k[P_NKEYS];
	const char *t;
	int rc;

	p->line = m->line;
	if (m->type != NODE_MAP)
		return cfg_err(c, m, "dns_providers: expected a mapping with name and type, got %s", GOT(m));
	if ((rc = config_yaml_map_keys(&c->msg, m, "in a DNS provider", provider_keys, P_NKEYS, k)))
		return rc;
	if (!k[P_NAME] || !k[P_TYPE])
		return cfg_err(c, m, "dns provider: missing required key \"%s\"", k[P_NAME] ? "type" : "name");
	if ((rc = config_check_name(c, "name", k[P_NAME])) || !(p->name = strdup(k[P_NAME]->s)))
		return rc ? rc : -ENOMEM;
	t = k[P_TYPE]->type == NODE_SCALAR ? k[P_TYPE]->s : "";
	if (!strcmp(t, "rfc2136"))
		p->type = CONFIG_DNS_RFC2136;
	else if (!strcmp(t, "exec"))
		p->type = CONFIG_DNS_EXEC;
	else if (!strcmp(t, "acme-dns"))
		p->type = CONFIG_DNS_ACMEDNS;
	else
		return cfg_err(c, k[P_TYPE], "type: expected rfc2136, exec or acme-dns, got %s", GOT(k[P_TYPE]));
	for (int i = P_SERVER; i < P_NKEYS; i++)
		if (k[i] && !(type_keys[p->type] & 1u << i))
			return cfg_err(c, k[i], "%s: not a setting of %s providers", provider_keys[i], t);
	return p->type == CONFIG_DNS_RFC2136 ? parse_rfc2136(c, m, k, p) :
	       p->type == CONFIG_DNS_EXEC ? parse_exec_provider(c, m, k, p) : parse_acmedns(c, m, k, p);
}

int config_parse_dns_providers(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	int rc = 0;

	if (!v || v->null)
		return 0;
	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "dns_providers: expected a list of providers, got %s", GOT(v));
	if (!(cfg->dns_providers = calloc(v->n ? v->n : 1, sizeof(*cfg->dns_providers))))
		return -ENOMEM;
	cfg->ndns_providers = v->n;
	for (size_t i = 0; i < v->n; i++) {
		int r = parse_provider(c, v->kids[i], &cfg->dns_providers[i]);

		if (r && !rc)
			rc = r;
		if (r && (r == -ENOMEM || !c->msg.all))
			return r;
		for (size_t j = 0; !r && j < i; j++)
			if (cfg->dns_providers[j].name && !strcmp(cfg->dns_providers[j].name,
								  cfg->dns_providers[i].name)) {
				r = cfg_err(c, v->kids[i], "name: duplicate DNS provider name %s (first at line "
					    "%d)", Q(cfg->dns_providers[i].name), cfg->dns_providers[j].line);
				if (!rc)
					rc = r;
				if (!c->msg.all)
					return r;
			}
	}
	return rc;
}

/* A certificate's dns_provider: with dns-01 only, and one of dns_providers. */
int config_get_dns_provider(struct ctx *c, const struct node *v, const struct node *map, struct config_cert *ct)
{
	int dns01 = ct->challenge && strcmp(ct->challenge, "dns-01") == 0;
	int rc;

	if (!v)
		return dns01 ? cfg_err(c, map, "certificate %s: challenge dns-01 needs \"dns_provider\" (the "
				       "name of one of dns_providers)", Q(ct->name)) : 0;
	if (!dns01)
		return cfg_err(c, v, "dns_provider: only with challenge: dns-01 (this certificate uses %s)",
			       ct->challenge ? ct->challenge : "http-01");
	if ((rc = config_yaml_want_scalar(&c->msg, "dns_provider", "the name of one of dns_providers", v)))
		return rc;
	if (!config_find_dns_provider(c->cfg, v->s))
		return cfg_err(c, v, "dns_provider: expected the name of one of dns_providers, got %s%s", Q(v->s),
			       c->cfg->ndns_providers ? "" : " (there is no dns_providers list)");
	return (ct->dns_provider = strdup(v->s)) ? 0 : -ENOMEM;
}

int config_dns_provider_copy(struct config_dns_provider *dst, const struct config_dns_provider *src)
{
	*dst = *src;
	dst->name = dst->server = dst->tsig_key = dst->tsig_algorithm = dst->tsig_secret = NULL;
	dst->tsig_secret_file = dst->zone = dst->url = dst->credentials_file = dst->ca_bundle = dst->file = NULL;
	memset(&dst->command, 0, sizeof(dst->command));
#define DUP(f) (src->f && !(dst->f = strdup(src->f)))
	if (DUP(name) || DUP(server) || DUP(tsig_key) || DUP(tsig_algorithm) || DUP(tsig_secret) ||
	    DUP(tsig_secret_file) || DUP(zone) || DUP(url) || DUP(credentials_file) || DUP(ca_bundle) || DUP(file) ||
	    config_strv_copy(&dst->command, &src->command) < 0) {
		config_dns_provider_clear(dst);
		return -ENOMEM;
	}
#undef DUP
	return 0;
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

int config_dns_provider_same_place(const struct config_dns_provider *a, const struct config_dns_provider *b)
{
	return a->type == b->type && str_eq(a->server, b->server) && str_eq(a->url, b->url) &&
	       config_strv_equal(&a->command, &b->command);
}

int config_dns_provider_same(const struct config_dns_provider *a, const struct config_dns_provider *b)
{
	if (a->type != b->type || !str_eq(a->name, b->name) || !str_eq(a->server, b->server) ||
	    !str_eq(a->tsig_key, b->tsig_key) || !str_eq(a->tsig_algorithm, b->tsig_algorithm) ||
	    !str_eq(a->tsig_secret, b->tsig_secret) || !str_eq(a->zone, b->zone) || a->ttl != b->ttl ||
	    !str_eq(a->url, b->url) || !str_eq(a->credentials_file, b->credentials_file) ||
	    !str_eq(a->ca_bundle, b->ca_bundle) || a->timeout != b->timeout ||
	    !config_strv_equal(&a->command, &b->command) ||
	    memcmp(a->credentials_digest, b->credentials_digest, sizeof(a->credentials_digest)))
		return 0;
	return 1;
}
