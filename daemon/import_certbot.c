/* import_certbot.c - reads a certbot directory (renewal/NAME.conf, live/, accounts/, renewal-hooks/deploy/) into an import plan. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ca_known.h"
#include "certbot_conf.h"
#include "crypto.h"
#include "import.h"
#include "store.h"

#define IMPORT_FILE_MAX (1u << 20)
#define IMPORT_MAX_LINEAGES 10000

static int strv_push(struct config_strv *sv, const char *s)
{
	char **v = realloc(sv->v, (sv->n + 2) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	sv->v = v;
	v[sv->n] = strdup(s);
	if (!v[sv->n])
		return -ENOMEM;
	v[++sv->n] = NULL;
	return 0;
}

static int strv_has(const struct config_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return 1;
	return 0;
}

static int note(struct import_lineage *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int note(struct import_lineage *l, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	rc = strv_push(&l->notes, s);
	free(s);
	return rc;
}

static int set_error(struct import_lineage *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_error(struct import_lineage *l, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (l->error)
		return 0;               /* the first reason is the one to fix */
	va_start(ap, fmt);
	rc = vasprintf(&l->error, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		l->error = NULL;
		return -ENOMEM;
	}
	return 0;
}

static char *path_join(const char *a, const char *b)
{
	return store_path(a, b);
}

/* ---------- hooks ---------- */

static int unit_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 200)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("@._:-", s[i]))
			return 0;
	return 1;
}

/* Split cmd on blanks; NULL when it has anything a shell would read specially. */
static int words(const char *cmd, char w[][256], int max)
{
	int n = 0;

	if (strpbrk(cmd, "\"'`$\\|&;<>(){}*?[]~#!\n"))
		return -1;
	while (*cmd) {
		size_t len;

		cmd += strspn(cmd, " \t");
		len = strcspn(cmd, " \t");
		if (!len)
			break;
		if (n == max || len >= 256)
			return -1;
		memcpy(w[n], cmd, len);
		w[n++][len] = '\0';
		cmd += len;
	}
	return n;
}

int import_hook_units(const char *cmd, struct config_strv *units)
{
	char w[8][256];
	int n = words(cmd, w, 8), first, last, i;
	const char *verb;

	if (n < 3)
		return 0;
	if (strcmp(w[0], "systemctl") == 0 || strcmp(w[0], "/bin/systemctl") == 0 ||
	    strcmp(w[0], "/usr/bin/systemctl") == 0) {
		verb = w[1];
		first = 2;
		last = n;
	} else if ((strcmp(w[0], "service") == 0 || strcmp(w[0], "/usr/sbin/service") == 0) && n == 3) {
		verb = w[2];
		first = 1;
		last = 2;
	} else {
		return 0;
	}
	if (strcmp(verb, "reload") && strcmp(verb, "restart") && strcmp(verb, "reload-or-restart") &&
	    strcmp(verb, "try-reload-or-restart") && strcmp(verb, "force-reload"))
		return 0;
	for (i = first; i < last; i++)
		if (w[i][0] == '-' || !unit_name_ok(w[i], strlen(w[i])))
			return 0;
	for (i = first; i < last; i++) {
		char unit[272];

		snprintf(unit, sizeof(unit), "%s%s", w[i], strchr(w[i], '.') ? "" : ".service");
		if (!strv_has(units, unit) && strv_push(units, unit) < 0)
			return -ENOMEM;
	}
	return 1;
}

static int add_hook(struct import_lineage *l, const char *cmd)
{
	int r;

	if (!cmd || !*cmd)
		return 0;
	r = import_hook_units(cmd, &l->reload);
	if (r != 0)
		return r < 0 ? r : 0;
	return strv_has(&l->hooks, cmd) ? 0 : strv_push(&l->hooks, cmd);
}

/* A path as a word of a shell command: as is when it is plain, else in single quotes. */
static int push_quoted(struct config_strv *sv, const char *path)
{
	size_t n = strlen(path), o = 0;
	char *q;
	int rc;

	if (strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+:@-") == n)
		return strv_push(sv, path);
	q = malloc(4 * n + 3);
	if (!q)
		return -ENOMEM;
	q[o++] = '\'';
	for (size_t i = 0; i < n; i++) {
		if (path[i] == '\'') {
			memcpy(q + o, "'\\''", 4);
			o += 4;
		} else {
			q[o++] = path[i];
		}
	}
	q[o++] = '\'';
	q[o] = '\0';
	rc = strv_push(sv, q);
	free(q);
	return rc;
}

/* renewal-hooks/deploy/: executables certbot runs after every renewal, in name order. */
static int read_global_hooks(const char *dir, struct config_strv *out)
{
	char *hd = path_join(dir, "renewal-hooks/deploy");
	struct dirent **list = NULL;
	int n, rc = 0;

	if (!hd)
		return -ENOMEM;
	n = scandir(hd, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char *p = list[i]->d_name[0] == '.' ? NULL : path_join(hd, list[i]->d_name);
		struct stat st;

		if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) && rc == 0)
			rc = push_quoted(out, p);
		free(p);
		free(list[i]);
	}
	free(list);
	free(hd);
	return rc;
}

/* ---------- the account ---------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* accounts/<host[:port]><path>/<id>/, as certbot lays them out. */
static char *account_dir(const char *dir, const char *server, const char *id)
{
	const char *rest = strstr(server, "://");
	char *p = NULL;

	if (!rest || strstr(rest, "..") || strspn(id, "0123456789abcdef") != strlen(id) || !*id)
		return NULL;
	rest += 3;
	if (asprintf(&p, "%s/accounts/%s/%s", dir, rest, id) < 0)
		return NULL;
	return p;
}

static int read_json(const char *path, json_t **out, int secret, char *why, size_t whylen)
{
	char *data = NULL;
	size_t len = 0;
	json_error_t je;
	int rc = store_read_file(path, &data, &len, IMPORT_FILE_MAX);

	*out = NULL;
	if (rc < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	*out = json_loadb(data, len, 0, &je);
	if (secret)
		crypto_free_secret(data, len);
	else
		free(data);
	if (!json_is_object(*out)) {
		snprintf(why, whylen, "%s: not a JSON object (line %d)", path, je.line);
		json_decref(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

static int account_key(json_t *jwk, struct import_account *a, const char *path, char *why, size_t whylen)
{
	struct crypto_jwk_private j = {
		.kty = jstr(jwk, "kty"), .crv = jstr(jwk, "crv"), .x = jstr(jwk, "x"),
		.y = jstr(jwk, "y"), .d = jstr(jwk, "d"), .n = jstr(jwk, "n"), .e = jstr(jwk, "e"),
		.p = jstr(jwk, "p"), .q = jstr(jwk, "q"), .dp = jstr(jwk, "dp"),
		.dq = jstr(jwk, "dq"), .qi = jstr(jwk, "qi"),
	};
	struct crypto_key *key = NULL;
	int rc = crypto_key_from_jwk_private(&j, &key);

	if (rc == -ENOTSUP) {
		snprintf(why, whylen, "%s: a %s key acmed cannot use (it signs with P-256, P-384 "
			 "or RSA 2048/3072/4096)", path, j.kty ? j.kty : "?");
		return rc;
	}
	if (rc < 0) {
		snprintf(why, whylen, "%s: not a usable private key", path);
		return rc;
	}
	rc = crypto_key_to_pem(key, &a->key_pem, &a->key_len);
	crypto_key_free(key);
	if (rc < 0)
		snprintf(why, whylen, "cannot encode the account key of %s", path);
	return rc;
}

static int account_read(const char *dir, struct import_account *a, char *why, size_t whylen)
{
	char *ad = account_dir(dir, a->server, a->id), *kp = NULL, *rp = NULL;
	json_t *jwk = NULL, *regr = NULL, *c, *v;
	size_t i;
	int rc = -ENOMEM;

	if (!ad) {
		snprintf(why, whylen, "account %s of %s: not a certbot account id or server", a->id,
			 a->server);
		return -EINVAL;
	}
	kp = path_join(ad, "private_key.json");
	rp = path_join(ad, "regr.json");
	if (!kp || !rp)
		goto out;
	rc = read_json(rp, &regr, 0, why, whylen);
	if (rc < 0)
		goto out;
	if (!jstr(regr, "uri") || strncmp(jstr(regr, "uri"), "https://", 8) != 0) {
		snprintf(why, whylen, "%s: no account URL (\"uri\")", rp);
		rc = -EINVAL;
		goto out;
	}
	a->kid = strdup(jstr(regr, "uri"));
	c = json_object_get(json_object_get(regr, "body"), "contact");
	if (json_is_array(c)) {
		a->contact_known = 1;
		json_array_foreach(c, i, v)
			if (json_is_string(v) && strv_push(&a->contact, json_string_value(v)) < 0)
				goto out;
	}
	rc = read_json(kp, &jwk, 1, why, whylen);
	if (rc == 0)
		rc = account_key(jwk, a, kp, why, whylen);
out:
	json_decref(jwk);
	json_decref(regr);
	free(ad);
	free(kp);
	free(rp);
	return rc;
}

/* The CA's name: known CAs by theirs, others by host, or "<beside>-certbot"
 * next to a CA of that name; "-2"... for a second account. */
static char *ca_name_for(const struct import_plan *plan, const struct import_account *a, const char *beside)
{
	const char *server = a->server;
	const struct ca_known *k = ca_known_find(server);
	char base[64], *name = NULL;
	const char *host = strstr(server, "://");
	size_t o = 0;

	if (beside)
		snprintf(base, sizeof(base), "%.50s-certbot", beside);
	else if (k && strcmp(k->host, "acme-v02.api.letsencrypt.org") == 0)
		snprintf(base, sizeof(base), "letsencrypt");
	else if (k && strcmp(k->host, "acme-staging-v02.api.letsencrypt.org") == 0)
		snprintf(base, sizeof(base), "letsencrypt-staging");
	else {
		for (host = host ? host + 3 : server; *host && *host != '/' && o < 40; host++)
			base[o++] = isalnum((unsigned char)*host) || *host == '.' ? *host : '-';
		base[o] = '\0';
		if (!o)
			snprintf(base, sizeof(base), "ca");
	}
	for (unsigned n = 1; n < 1000; n++) {
		int taken = 0;

		free(name);
		if ((n == 1 ? asprintf(&name, "%s", base) : asprintf(&name, "%s-%u", base, n)) < 0)
			return NULL;
		for (size_t i = 0; i < plan->naccounts; i++)
			taken |= plan->accounts[i].ca_name && strcmp(plan->accounts[i].ca_name, name) == 0;
		/* nor a name the configuration in place gives another CA (its account is in state_dir) */
		for (size_t i = 0; plan->cfg && i < plan->cfg->ncas; i++)
			taken |= strcmp(plan->cfg->cas[i].name, name) == 0;
		/* nor one whose account in state_dir is another */
		taken |= import_account_conflict(plan->state_dir, name, a->key_pem, a->key_len) != 0;
		if (!taken)
			return name;
	}
	free(name);
	return NULL;
}

/* The plan's account for (server, id), read on first use; SIZE_MAX when it cannot be. */
static size_t account_for(struct import_plan *plan, const char *server, const char *id,
			  struct import_lineage *l)
{
	struct import_account *grown, *a;
	char why[512] = "";

	for (size_t i = 0; i < plan->naccounts; i++)
		if (strcmp(plan->accounts[i].server, server) == 0 && strcmp(plan->accounts[i].id, id) == 0) {
			if (plan->accounts[i].error)
				set_error(l, "%s", plan->accounts[i].error);
			return plan->accounts[i].error ? SIZE_MAX : i;
		}
	grown = realloc(plan->accounts, (plan->naccounts + 1) * sizeof(*grown));
	if (!grown) {
		set_error(l, "out of memory");
		return SIZE_MAX;
	}
	plan->accounts = grown;
	a = &grown[plan->naccounts];
	memset(a, 0, sizeof(*a));
	a->server = strdup(server);
	a->id = strdup(id);
	if (!a->server || !a->id) {
		free(a->server);
		free(a->id);
		set_error(l, "out of memory");
		return SIZE_MAX;
	}
	/* The configuration in place may name this CA already: its name and settings stay. */
	for (size_t i = 0; plan->cfg && !a->from && i < plan->cfg->ncas; i++) {
		int taken = 0;

		for (size_t k = 0; k < plan->naccounts; k++)
			taken |= plan->accounts[k].from == &plan->cfg->cas[i];
		if (!taken && strcmp(plan->cfg->cas[i].directory, server) == 0)
			a->from = &plan->cfg->cas[i];
	}
	plan->naccounts++;
	if (account_read(plan->certbot_dir, a, why, sizeof(why)) < 0) {
		a->error = strdup(*why ? why : "out of memory");
		set_error(l, "%s", *why ? why : "out of memory");
		return SIZE_MAX;
	}
	/* That CA keeps its name unless state_dir holds another account under it
	 * (acmed ran with it already): then certbot's is a CA of its own beside it. */
	if (a->from && import_account_conflict(plan->state_dir, a->from->name, a->key_pem, a->key_len) == 0)
		a->ca_name = strdup(a->from->name);
	else if (a->from)
		a->ca_name = ca_name_for(plan, a, a->from->name);
	else
		a->ca_name = ca_name_for(plan, a, NULL);
	if (!a->ca_name) {
		a->error = strdup("out of memory");
		set_error(l, "out of memory");
		return SIZE_MAX;
	}
	return plan->naccounts - 1;
}

/* ---------- one lineage ---------- */

static int read_live(const char *path, char **data, size_t *len, struct import_lineage *l)
{
	int rc = store_read_file(path, data, len, IMPORT_FILE_MAX);

	if (rc < 0)
		set_error(l, "%s: %s", path, strerror(-rc));
	return rc;
}

static const char *live_path(const struct certbot_conf *c, const char *key, const char *dflt)
{
	const char *p = certbot_conf_str(c, "", key);

	return p && p[0] == '/' ? p : dflt;
}

static int lineage_files(const struct certbot_conf *c, struct import_lineage *l)
{
	char *d[4] = { path_join(l->live_dir, "privkey.pem"), path_join(l->live_dir, "cert.pem"),
		       path_join(l->live_dir, "chain.pem"), path_join(l->live_dir, "fullchain.pem") };
	struct crypto_cert_info info = { 0 };
	struct crypto_key *key = NULL;
	int rc = -ENOMEM;

	if (!d[0] || !d[1] || !d[2] || !d[3])
		goto out;
	if ((rc = read_live(live_path(c, "privkey", d[0]), &l->key_pem, &l->key_len, l)) < 0 ||
	    (rc = read_live(live_path(c, "cert", d[1]), &l->cert_pem, &l->cert_len, l)) < 0 ||
	    (rc = read_live(live_path(c, "chain", d[2]), &l->chain_pem, &l->chain_len, l)) < 0 ||
	    (rc = read_live(live_path(c, "fullchain", d[3]), &l->fullchain_pem, &l->fullchain_len, l)) < 0)
		goto out;
	if (crypto_key_from_pem(l->key_pem, l->key_len, &key) < 0) {
		rc = set_error(l, "%s: a private key acmed cannot use (it keeps P-256, P-384 and "
			       "RSA 2048/3072/4096 keys)", live_path(c, "privkey", d[0]));
		rc = -EINVAL;
		goto out;
	}
	if (crypto_cert_inspect(l->fullchain_pem, l->fullchain_len, key, &info) < 0 || info.key_matches != 1) {
		set_error(l, "%s does not hold the certificate of %s", live_path(c, "fullchain", d[3]),
			  live_path(c, "privkey", d[0]));
		rc = -EINVAL;
		goto out;
	}
	crypto_key_type(key, &l->key_type);
	l->not_after = info.not_after;
	for (size_t i = 0; i < info.nnames && rc != -ENOMEM; i++)
		if (strv_push(&l->domains, info.names[i]) < 0)
			rc = -ENOMEM;
	if (rc != -ENOMEM && l->domains.n == 0)
		set_error(l, "the certificate names no DNS name");
	rc = l->error ? -EINVAL : 0;
out:
	crypto_cert_info_clear(&info);
	crypto_key_free(key);
	for (int i = 0; i < 4; i++)
		free(d[i]);
	return rc;
}

/* "30 days", "2 weeks", "12 hours": acmed's "30d"; NULL otherwise. */
static char *renew_before(const char *v)
{
	char unit[16] = "", *out = NULL;
	long n = 0;
	int used = 0;

	if (!v || sscanf(v, "%ld %15s%n", &n, unit, &used) != 2 || v[used] || n <= 0 || n > 3650)
		return NULL;
	if (strncmp(unit, "day", 3) == 0)
		return asprintf(&out, "%ldd", n) < 0 ? NULL : out;
	if (strncmp(unit, "week", 4) == 0)
		return asprintf(&out, "%ldd", 7 * n) < 0 ? NULL : out;
	if (strncmp(unit, "hour", 4) == 0)
		return asprintf(&out, "%ldh", n) < 0 ? NULL : out;
	return NULL;
}

static int lineage_webroot(const struct certbot_conf *c, struct import_lineage *l)
{
	const struct certbot_conf_entry *wp = certbot_conf_get(c, "renewalparams", "webroot_path");
	struct config_strv roots = { 0 };
	int rc = 0;

	for (size_t i = 0; wp && i < wp->nvalues && rc == 0; i++)
		if (*wp->values[i] && !strv_has(&roots, wp->values[i]))
			rc = strv_push(&roots, wp->values[i]);
	for (size_t i = 0; i < c->n && rc == 0; i++)
		if (strcmp(c->e[i].section, "renewalparams/webroot_map") == 0 && c->e[i].nvalues == 1 &&
		    *c->e[i].values[0] && !strv_has(&roots, c->e[i].values[0]))
			rc = strv_push(&roots, c->e[i].values[0]);
	if (rc == 0 && roots.n == 0)
		rc = set_error(l, "authenticator webroot without a webroot_path");
	if (rc == 0 && roots.n > 0 && !(l->webroot = strdup(roots.v[0])))
		rc = -ENOMEM;
	if (rc == 0 && roots.n > 1)
		rc = note(l, "certbot used %zu webroots; acmed writes every name's token to %s, which "
			  "must serve /.well-known/acme-challenge/ for all of them", roots.n, roots.v[0]);
	config_strv_clear(&roots);
	return rc;
}

static int lineage_params(const struct certbot_conf *c, struct import_lineage *l)
{
	const char *auth = certbot_conf_str(c, "renewalparams", "authenticator");
	const char *installer = certbot_conf_str(c, "renewalparams", "installer");
	const char *port = certbot_conf_str(c, "renewalparams", "http01_port");
	const char *rb = certbot_conf_str(c, "", "renew_before_expiry");
	static const char *const ignored[] = { "pre_hook", "post_hook", "preferred_chain",
					       "must_staple", "reuse_key" };
	int rc = 0;

	if (!auth || strcmp(auth, "standalone") == 0) {
		if (port && strcmp(port, "80") != 0)
			rc = note(l, "certbot's standalone server listened on port %s; acmed's listener "
				  "is acmed.socket (port 80) or listen:", port);
	} else if (strcmp(auth, "webroot") == 0) {
		rc = lineage_webroot(c, l);
	} else if (strcmp(auth, "nginx") == 0 || strcmp(auth, "apache") == 0) {
		rc = note(l, "certbot's %s plugin answered the challenges; forward "
			  "/.well-known/acme-challenge/ to acmed's listener or set webroot: "
			  "(README, \"Install as a service\")", auth);
	} else {
		rc = set_error(l, "authenticator %s: certbot's DNS plugin and its credentials are not "
			       "carried over; give it challenge: dns-01 and a dns_providers entry by hand "
			       "(README, \"Wildcards and internal hosts\"), or keep certbot for it", auth);
	}
	if (rc == 0 && installer && (strcmp(installer, "nginx") == 0 || strcmp(installer, "apache") == 0)) {
		const char *unit = strcmp(installer, "nginx") == 0 ? "nginx.service" : "apache2.service";
		if (!strv_has(&l->reload, unit))
			rc = strv_push(&l->reload, unit);
	}
	if (rc == 0) {
		const char *h = certbot_conf_str(c, "renewalparams", "deploy_hook");
		rc = add_hook(l, h ? h : certbot_conf_str(c, "renewalparams", "renew_hook"));
	}
	if (rc == 0 && rb && !(l->renew_before = renew_before(rb)))
		rc = note(l, "renew_before_expiry = %s is not carried over (acmed takes 30d, 12h...)", rb);
	for (size_t i = 0; rc == 0 && i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		const char *v = certbot_conf_str(c, "renewalparams", ignored[i]);
		if (v && *v && strcmp(v, "False") && strcmp(v, "None"))
			rc = note(l, "%s = %s is not carried over", ignored[i], v);
	}
	return rc;
}

static int lineage_read(struct import_plan *plan, const char *conf_path, struct import_lineage *l)
{
	struct certbot_conf c = { 0 };
	char *text = NULL, err[256];
	size_t len = 0;
	const char *server, *account;
	int rc = store_read_file(conf_path, &text, &len, IMPORT_FILE_MAX);

	if (rc < 0)
		return set_error(l, "%s: %s", conf_path, strerror(-rc));
	rc = certbot_conf_parse(text, len, &c, err, sizeof(err));
	free(text);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return set_error(l, "%s: %s", conf_path, err);
	l->live_dir = path_join(plan->certbot_dir, "live");
	if (l->live_dir) {
		char *d = path_join(l->live_dir, l->name);
		free(l->live_dir);
		l->live_dir = d;
	}
	server = certbot_conf_str(&c, "renewalparams", "server");
	account = certbot_conf_str(&c, "renewalparams", "account");
	if (!l->live_dir)
		rc = -ENOMEM;
	else if (!server || strncmp(server, "https://", 8) != 0)
		rc = set_error(l, "%s: no https:// server in [renewalparams]", conf_path);
	else if (!account)
		rc = set_error(l, "%s: no account in [renewalparams]", conf_path);
	if (rc == 0 && !l->error)
		rc = lineage_params(&c, l);
	if (rc == 0 && !l->error)
		rc = lineage_files(&c, l) == -ENOMEM ? -ENOMEM : 0;
	if (rc == 0 && !l->error)
		l->account = account_for(plan, server, account, l);
	certbot_conf_clear(&c);
	return rc;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789._-") == n && strcmp(s, ".") && strcmp(s, "..");
}

static int conf_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 5 && e->d_name[0] != '.' && strcmp(e->d_name + n - 5, ".conf") == 0;
}

int import_plan_read(const char *certbot_dir, const char *state_dir, const struct config *cfg,
		     struct import_plan *plan)
{
	struct config_strv global = { 0 };
	struct dirent **list = NULL;
	char *rd;
	int n, rc = 0;

	memset(plan, 0, sizeof(*plan));
	plan->cfg = cfg;
	plan->certbot_dir = strdup(certbot_dir);
	plan->state_dir = strdup(state_dir);
	rd = path_join(certbot_dir, "renewal");
	if (!plan->certbot_dir || !plan->state_dir || !rd) {
		free(rd);
		return -ENOMEM;
	}
	n = scandir(rd, &list, conf_file, alphasort);
	if (n < 0) {
		rc = -errno;
		fprintf(stderr, "acmed: %s: %s (is %s certbot's directory?)\n", rd, strerror(errno),
			certbot_dir);
		free(rd);
		return rc;
	}
	if (n > IMPORT_MAX_LINEAGES)
		n = IMPORT_MAX_LINEAGES;
	plan->lineages = calloc((size_t)n + 1, sizeof(*plan->lineages));
	rc = plan->lineages ? read_global_hooks(certbot_dir, &global) : -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct import_lineage *l = &plan->lineages[plan->nlineages];
		char *conf = path_join(rd, list[i]->d_name);

		if (rc == 0 && (!conf || !(l->name = strndup(list[i]->d_name, strlen(list[i]->d_name) - 5))))
			rc = -ENOMEM;
		if (rc == 0) {
			plan->nlineages++;
			if (!name_ok(l->name))
				rc = set_error(l, "%s: the name is not one acmed accepts "
					       "([A-Za-z0-9._-], at most 64)", conf);
			else
				rc = lineage_read(plan, conf, l);
			for (size_t h = 0; rc == 0 && !l->error && h < global.n; h++)
				rc = add_hook(l, global.v[h]);
			plan->errors += l->error != NULL;
		}
		free(conf);
		free(list[i]);
	}
	free(list);
	free(rd);
	config_strv_clear(&global);
	return rc;
}

void import_plan_clear(struct import_plan *plan)
{
	for (size_t i = 0; i < plan->naccounts; i++) {
		struct import_account *a = &plan->accounts[i];
		free(a->server);
		free(a->id);
		free(a->ca_name);
		free(a->kid);
		free(a->error);
		crypto_free_secret(a->key_pem, a->key_len);
		config_strv_clear(&a->contact);
	}
	for (size_t i = 0; i < plan->nlineages; i++) {
		struct import_lineage *l = &plan->lineages[i];
		free(l->name);
		free(l->error);
		free(l->renew_before);
		free(l->webroot);
		free(l->live_dir);
		config_strv_clear(&l->domains);
		config_strv_clear(&l->reload);
		config_strv_clear(&l->hooks);
		config_strv_clear(&l->notes);
		crypto_free_secret(l->key_pem, l->key_len);
		free(l->cert_pem);
		free(l->chain_pem);
		free(l->fullchain_pem);
	}
	free(plan->accounts);
	free(plan->lineages);
	free(plan->certbot_dir);
	free(plan->state_dir);
	free(plan->runtime_dir);
	config_strv_clear(&plan->listen);
	memset(plan, 0, sizeof(*plan));
}
