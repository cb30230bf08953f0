/* dryrun.c - `acmed renew NAME --dry-run`: orders at the staging directories through the daemon's solvers; results told, nothing installed or kept. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "ca_known.h"
#include "challenge.h"
#include "challenge_webroot.h"
#include "dryrun.h"
#include "keygen.h"
#include "log.h"
#include "order.h"
#include "timeparse.h"

struct dr_ca {
	size_t cfg_index;               /* the CA in the configuration */
	char *directory;                /* its staging directory */
	struct acme_ca *ca;             /* named "<ca>.staging": its own account */
};

struct dr_one {
	struct dryrun *run;
	struct config_cert cert;        /* a copy: a reload meanwhile changes nothing */
	struct dr_ca *ca;
	struct challenge *webroot;      /* its own, for `webroot:`; else the daemon's listener */
	struct keygen_req *kreq;
	struct order *order;
	int ended;
};

struct dryrun {
	struct dryrun_set *set;
	struct dryrun *next;
	unsigned long id;
	struct dr_ca *cas;
	size_t ncas;
	struct dr_one *ones;
	size_t n, left;
	struct keygen *kg;
	json_t *results;
	struct event *end_ev;
};

struct dryrun_set {
	struct dryrun_env env;
	char *state_dir;                /* env.state_dir, kept over reloads */
	struct dryrun *runs;
};

const char *dryrun_staging_of(const struct config_ca *ca)
{
	const struct ca_known *k;

	if (ca->staging)
		return ca->staging;
	k = ca_known_find(ca->directory);
	if (k && k->staging)
		return ca->directory;
	return k ? k->staging_directory : NULL;
}

static void run_free(struct dryrun *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct dr_one *o = &r->ones[i];
		keygen_cancel(o->kreq);
		order_free(o->order);           /* withdraws what it presented */
		challenge_free(o->webroot);
		config_cert_clear(&o->cert);
	}
	for (size_t i = 0; i < r->ncas; i++) {
		acme_ca_free(r->cas[i].ca);
		free(r->cas[i].directory);
	}
	keygen_free(r->kg);
	if (r->end_ev)
		event_free(r->end_ev);
	json_decref(r->results);
	free(r->ones);
	free(r->cas);
	free(r);
}

static void run_unlink(struct dryrun *r)
{
	for (struct dryrun **p = &r->set->runs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

/* Every order ended: the client gets the results (from the loop, never from an order's callback). */
static void run_end(evutil_socket_t fd, short what, void *arg)
{
	struct dryrun *r = arg;
	struct dryrun_set *set = r->set;
	json_t *answer = json_pack("{s:b, s:O}", "ok", 1, "results", r->results);

	(void)fd;
	(void)what;
	run_unlink(r);
	set->env.answer(set->env.arg, r->id, answer);
	run_free(r);
}

static void one_end(struct dr_one *o, int ok, const char *message, int64_t not_after)
{
	struct dryrun *r = o->run;
	char when[64] = "";
	json_t *j;

	if (o->ended)
		return;
	o->ended = 1;
	if (ok) {
		timeparse_format(not_after, when, sizeof(when));
		log_info(o->cert.name, "dry run: the staging CA %s issued the certificate (valid until %s); "
			 "nothing installed", o->ca->directory, when);
	} else {
		log_warn(o->cert.name, "dry run at the staging CA %s failed: %s", o->ca->directory,
			 message ? message : "no reason given");
	}
	j = json_pack("{s:s, s:b, s:s, s:s, s:I}", "name", o->cert.name, "ok", ok, "message",
		      ok ? "issued by the staging CA; nothing installed" : message ? message : "failed",
		      "directory", o->ca->directory, "not_after", (json_int_t)(ok ? not_after : 0));
	if (!j || json_array_append_new(r->results, j) < 0)
		log_error(o->cert.name, "dry run: cannot record the result (out of memory)");
	if (--r->left == 0)
		event_active(r->end_ev, 0, 0);
}

static struct challenge *one_pick(void *arg, const char *id_type, const char *identifier, int wildcard,
				  const char **why)
{
	struct dr_one *o = arg;
	const struct dryrun_env *env = &o->run->set->env;

	if (o->webroot)
		return challenge_supports(o->webroot, id_type, identifier, wildcard) ? o->webroot :
		       (*why = "the challenge cannot validate it", NULL);
	for (size_t i = 0; i < env->nsolvers; i++) {
		struct challenge *c = env->solvers[i];

		if (c && strcmp(challenge_name(c), o->cert.challenge) == 0) {
			if (challenge_supports(c, id_type, identifier, wildcard))
				return c;
			break;
		}
	}
	*why = wildcard ? "a wildcard needs a DNS challenge" : "the challenge cannot validate it";
	return NULL;
}

static void one_ordered(struct order *ord, const struct order_result *res, void *arg)
{
	struct dr_one *o = arg;

	o->order = NULL;
	one_end(o, res->ok, res->message, res->not_after);
	order_free(ord);
}

static void one_key(struct crypto_key *key, void *arg)
{
	struct dr_one *o = arg;
	struct order_params p = {
		.cert = &o->cert, .key = key, .pick = one_pick, .pick_arg = o,
	};

	o->kreq = NULL;
	if (!key) {
		one_end(o, 0, "private key generation failed", 0);
		return;
	}
	log_info(o->cert.name, "dry run: ordering at the staging CA %s", o->ca->directory);
	o->order = order_start(o->run->set->env.base, acme_ca_client(o->ca->ca), &p, one_ordered, o);
	if (!o->order)
		one_end(o, 0, "cannot start an order", 0);
}

/* The staging CA of configuration CA i, made once per run. */
static struct dr_ca *run_ca(struct dryrun *r, const struct config *cfg, size_t i)
{
	const struct config_ca *c = &cfg->cas[i];
	struct config_ca st = *c;
	struct dr_ca *d;
	char *name = NULL;

	for (size_t k = 0; k < r->ncas; k++)
		if (r->cas[k].cfg_index == i)
			return &r->cas[k];
	d = &r->cas[r->ncas];
	if (asprintf(&name, "%s.staging", c->name) < 0)
		return NULL;
	st.name = name;
	st.directory = (char *)dryrun_staging_of(c);
	/* The production EAB binding is not the staging CA's: none is sent there. */
	st.eab_kid = NULL;
	st.eab_key = NULL;
	st.eab_key_len = 0;
	d->cfg_index = i;
	d->directory = strdup(st.directory);
	d->ca = d->directory ? acme_ca_new(r->set->env.base, &st, r->set->env.state_dir, r->set->env.db) : NULL;
	free(name);
	r->ncas++;              /* counted even when half made: run_free frees it */
	if (!d->ca || acme_ca_load_account(d->ca) < 0)
		return NULL;
	return d;
}

/* Which certificates: every one, or the names given (each once); -ENOENT for an unknown one. */
static int pick_certs(const struct config *cfg, const char *const *names, size_t n, int all, size_t *idx,
		      size_t *count, char *err, size_t errlen)
{
	*count = 0;
	for (size_t i = 0; all && i < cfg->ncerts; i++)
		idx[(*count)++] = i;
	for (size_t i = 0; !all && i < n; i++) {
		size_t k = 0, seen = 0;

		while (k < cfg->ncerts && strcmp(cfg->certs[k].name, names[i]) != 0)
			k++;
		if (k == cfg->ncerts) {
			snprintf(err, errlen, "unknown certificate: %.64s", names[i]);
			return -ENOENT;
		}
		for (size_t j = 0; j < *count; j++)
			seen |= idx[j] == k;
		if (!seen)
			idx[(*count)++] = k;
	}
	for (size_t i = 0; i < *count; i++) {
		const struct config_ca *ca = &cfg->cas[cfg->certs[idx[i]].ca];
		if (!dryrun_staging_of(ca)) {
			snprintf(err, errlen, "CA %s has no staging directory for a dry run: set `staging:` "
				 "for it in the configuration", ca->name);
			return -EINVAL;
		}
	}
	return 0;
}

int dryrun_set_start(struct dryrun_set *set, const struct config *cfg, const char *const *names,
		     size_t n, int all, unsigned long id, json_t *started, char *err, size_t errlen)
{
	size_t *idx = calloc(cfg->ncerts + 1, sizeof(*idx)), count = 0;
	struct dryrun *r = NULL;
	int rc = idx ? pick_certs(cfg, names, n, all, idx, &count, err, errlen) : -ENOMEM;

	if (rc == 0 && count == 0) {
		snprintf(err, errlen, "no certificate to try");
		rc = -EINVAL;
	}
	if (rc == 0 && !(r = calloc(1, sizeof(*r))))
		rc = -ENOMEM;
	if (rc == 0) {
		r->set = set;
		r->id = id;
		r->ones = calloc(count, sizeof(*r->ones));
		r->cas = calloc(cfg->ncas, sizeof(*r->cas));
		r->results = json_array();
		r->kg = keygen_new(set->env.base);
		r->end_ev = event_new(set->env.base, -1, 0, run_end, r);
		if (!r->ones || !r->cas || !r->results || !r->kg || !r->end_ev)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < count; i++) {
		const struct config_cert *c = &cfg->certs[idx[i]];
		struct dr_one *o = &r->ones[r->n++];

		o->run = r;
		if (config_cert_copy(&o->cert, c) < 0 || !(o->ca = run_ca(r, cfg, c->ca)) ||
		    (c->webroot && !(o->webroot = challenge_webroot_new(set->env.io, c->webroot))) ||
		    json_array_append_new(started, json_string(c->name)) < 0)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		r->ones[i].kreq = keygen_request(r->kg, r->ones[i].cert.key_type, one_key, &r->ones[i]);
		if (!r->ones[i].kreq)
			rc = -ENOMEM;
	}
	free(idx);
	if (rc < 0) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		if (r)
			run_free(r);
		return rc;
	}
	r->left = r->n;
	r->next = set->runs;
	set->runs = r;
	return 0;
}

struct dryrun_set *dryrun_set_new(const struct dryrun_env *env)
{
	struct dryrun_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->env = *env;
	set->state_dir = env->state_dir ? strdup(env->state_dir) : NULL;
	if (env->state_dir && !set->state_dir) {
		free(set);
		return NULL;
	}
	set->env.state_dir = set->state_dir;
	return set;
}

void dryrun_set_free(struct dryrun_set *set)
{
	if (!set)
		return;
	while (set->runs) {
		struct dryrun *r = set->runs;

		set->runs = r->next;
		set->env.answer(set->env.arg, r->id,
				json_pack("{s:b, s:s}", "ok", 0, "error",
					  "acmed stopped before the dry run ended"));
		run_free(r);
	}
	free(set->state_dir);
	free(set);
}
