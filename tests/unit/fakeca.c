/* fakeca.c - an ACME CA in memory behind the acme_client interface, for order and scheduler tests: scripted answers, real certificates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "clock.h"
#include "crypto.h"
#include "fakeca.h"

#define BASE_URL "https://ca.test"
#define MAX_AUTHZ 16

struct fake_authz {
	char *identifier;
	int wildcard;
	char token[32];
	int status;             /* 0 pending, 1 valid, 2 invalid */
	int answered;           /* challenge POSTed */
	int polls_left;         /* after answered, before the verdict */
};

struct fake_order {
	char *url;
	struct fake_authz authz[MAX_AUTHZ];
	size_t nauthz;
	int finalized;
	int processing_left;
	char *cert_pem;
	int invalid;
};

struct fake_fault {
	char *prefix;
	int count;
	long status;
	char *problem;
	int64_t retry_after;
	int relayed;
};

struct acme_call {
	struct fakeca *f;
	struct event *ev;
	char *desc;             /* request description */
	char *url;
	char *payload;
	int is_get;
	acme_reply_fn cb;
	void *arg;
	struct acme_call *next;
};

struct fakeca {
	struct acme_client client;
	struct event_base *base;
	char *name;
	char **reqs;
	int64_t *req_ms;                /* clock_mono_ms() when each was answered */
	size_t nreqs;
	char *last_new_order;
	struct fake_order *orders;
	size_t norders;
	struct fake_fault faults[8];
	size_t nfaults;
	int val_polls;
	int64_t val_retry_after;
	fakeca_check_fn check;
	void *check_arg;
	int processing;
	int64_t lifetime;
	char *wrong_name;
	char *foreign_authz;
	int ari;
	int64_t ari_start, ari_end, ari_retry_after;
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;
	struct acme_call *calls;        /* in flight */
	struct crypto_key *account;
};

/* ---------- the CA's certificates ---------- */

static X509 *make_cert(struct fakeca *f, X509_NAME *subject, EVP_PKEY *pub, const char *const *names,
		       size_t n, int64_t lifetime)
{
	X509 *x = X509_new();
	time_t now = (time_t)clock_now();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	static long serial = 1000;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)lifetime, &now);
	X509_set_subject_name(x, subject);
	X509_set_issuer_name(x, f->ca_cert ? X509_get_subject_name(f->ca_cert) : subject);
	X509_set_pubkey(x, pub);
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		ASN1_STRING_set(s, names[i], (int)strlen(names[i]));
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		sk_GENERAL_NAME_push(gens, g);
	}
	if (n)
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
	sk_GENERAL_NAME_pop_free(gens, GENERAL_NAME_free);
	{
		/* Key identifiers: the issuer's in every leaf (AKI), so ARI has a CertID. */
		X509V3_CTX ctx;
		X509_EXTENSION *e;
		X509 *issuer = f->ca_cert ? f->ca_cert : x;

		X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
		if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash"))) {
			X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
		}
		if (f->ca_cert && (e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
							   "keyid:always"))) {
			X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
		}
	}
	X509_sign(x, f->ca_key, EVP_sha256());
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

/* Sign the CSR of a finalize payload: the names come from its SAN extension. */
static char *issue(struct fakeca *f, const char *csr_b64)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *gens = NULL;
	const char *names[64];
	size_t n = 0;
	char *leaf = NULL, *out = NULL;
	X509 *x;

	if (crypto_b64url_decode(csr_b64, strlen(csr_b64), &der, &len) < 0)
		return NULL;
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)len);
	free(der);
	if (!req)
		return NULL;
	exts = X509_REQ_get_extensions(req);
	for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts) && !gens; i++)
		gens = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i));
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < 64; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS)
			names[n++] = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
	}
	if (f->wrong_name) {
		names[0] = f->wrong_name;
		n = 1;
	}
	x = make_cert(f, X509_REQ_get_subject_name(req), X509_REQ_get0_pubkey(req), names, n,
		      f->lifetime);
	leaf = pem_of(x);
	if (leaf && asprintf(&out, "%s%s", leaf, f->ca_pem) < 0)
		out = NULL;
	free(leaf);
	X509_free(x);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return out;
}

/* ---------- requests ---------- */

static void record(struct fakeca *f, const char *desc)
{
	f->reqs = realloc(f->reqs, (f->nreqs + 1) * sizeof(*f->reqs));
	f->req_ms = realloc(f->req_ms, (f->nreqs + 1) * sizeof(*f->req_ms));
	f->req_ms[f->nreqs] = clock_mono_ms();
	f->reqs[f->nreqs++] = strdup(desc);
}

static struct fake_fault *fault_for(struct fakeca *f, const char *desc)
{
	for (size_t i = 0; i < f->nfaults; i++)
		if (f->faults[i].count > 0 && strncmp(desc, f->faults[i].prefix, strlen(f->faults[i].prefix)) == 0)
			return &f->faults[i];
	return NULL;
}

static const char *status_name(int st)
{
	return st == 1 ? "valid" : st == 2 ? "invalid" : "pending";
}

static char *order_json(struct fakeca *f, size_t n)
{
	struct fake_order *o = &f->orders[n];
	json_t *j = json_object(), *az = json_array();
	int all_valid = 1;
	const char *st;
	char buf[128];
	char *s;

	for (size_t i = 0; i < o->nauthz; i++) {
		snprintf(buf, sizeof(buf), BASE_URL "/authz/%zu/%zu", n, i);
		json_array_append_new(az, json_string(buf));
		all_valid &= o->authz[i].status == 1;
		if (o->authz[i].status == 2)
			o->invalid = 1;
	}
	if (o->invalid)
		st = "invalid";
	else if (o->cert_pem)
		st = o->processing_left > 0 ? "processing" : "valid";
	else
		st = all_valid ? "ready" : "pending";
	json_object_set_new(j, "status", json_string(st));
	json_object_set_new(j, "authorizations", az);
	snprintf(buf, sizeof(buf), BASE_URL "/finalize/%zu", n);
	json_object_set_new(j, "finalize", json_string(buf));
	if (o->cert_pem && o->processing_left <= 0) {
		snprintf(buf, sizeof(buf), BASE_URL "/cert/%zu", n);
		json_object_set_new(j, "certificate", json_string(buf));
	}
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static char *authz_json(struct fakeca *f, size_t n, size_t i)
{
	struct fake_authz *a = &f->orders[n].authz[i];
	json_t *ch = json_object(), *j;
	char buf[128];
	char *s;

	snprintf(buf, sizeof(buf), BASE_URL "/chal/%zu/%zu", n, i);
	json_object_set_new(ch, "type", json_string("http-01"));
	json_object_set_new(ch, "url", json_string(buf));
	json_object_set_new(ch, "token", json_string(a->token));
	json_object_set_new(ch, "status", json_string(a->status ? status_name(a->status) :
						     a->answered ? "processing" : "pending"));
	if (a->status == 2)
		json_object_set_new(ch, "error", json_pack("{s:s, s:s}", "type",
			"urn:ietf:params:acme:error:unauthorized", "detail", "the token was not served"));
	j = json_pack("{s:s, s:{s:s, s:s}, s:[o]}", "status", status_name(a->status), "identifier",
		      "type", "dns", "value", f->foreign_authz ? f->foreign_authz : a->identifier, "challenges", ch);
	if (a->wildcard)
		json_object_set_new(j, "wildcard", json_true());
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* The verdict, once the validator had its polls. */
static void authz_advance(struct fakeca *f, struct fake_authz *a)
{
	if (!a->answered || a->status)
		return;
	if (a->polls_left > 0) {
		a->polls_left--;
		return;
	}
	a->status = !f->check || f->check(f->check_arg, a->identifier, a->token) ? 1 : 2;
}

static void new_order(struct fakeca *f, const char *payload, struct acme_reply *r, char **body,
		      char **location)
{
	json_t *p = json_loads(payload ? payload : "", 0, NULL), *ids = json_object_get(p, "identifiers"), *id;
	struct fake_order *o;
	size_t i, n = f->norders;
	char url[128];

	f->orders = realloc(f->orders, (n + 1) * sizeof(*f->orders));
	o = &f->orders[n];
	memset(o, 0, sizeof(*o));
	f->norders++;
	json_array_foreach(ids, i, id) {
		const char *v = json_string_value(json_object_get(id, "value"));
		struct fake_authz *a = &o->authz[o->nauthz++];
		a->wildcard = strncmp(v, "*.", 2) == 0;
		a->identifier = strdup(a->wildcard ? v + 2 : v);
		snprintf(a->token, sizeof(a->token), "tok%zu_%zu", n, i);
	}
	json_decref(p);
	snprintf(url, sizeof(url), BASE_URL "/order/%zu", n);
	o->url = strdup(url);
	*location = strdup(url);
	*body = order_json(f, n);
	r->status = 201;
}

static void answer(struct fakeca *f, struct acme_call *c, struct acme_reply *r, char **body,
		   char **location)
{
	size_t n, i;

	r->status = 200;
	if (strcmp(c->desc, "newOrder") == 0) {
		new_order(f, c->payload, r, body, location);
	} else if (sscanf(c->desc, "order %zu", &n) == 1 && n < f->norders) {
		struct fake_order *o = &f->orders[n];
		if (o->cert_pem && o->processing_left > 0)
			o->processing_left--;
		*body = order_json(f, n);
	} else if (sscanf(c->desc, "authz %zu/%zu", &n, &i) == 2 && n < f->norders) {
		struct fake_authz *a = &f->orders[n].authz[i];
		authz_advance(f, a);
		*body = authz_json(f, n, i);
		if (!a->status && a->answered && f->val_retry_after >= 0)
			r->retry_after = f->val_retry_after;
	} else if (sscanf(c->desc, "challenge %zu/%zu", &n, &i) == 2 && n < f->norders) {
		struct fake_authz *a = &f->orders[n].authz[i];
		if (!a->answered) {
			a->answered = 1;
			a->polls_left = f->val_polls;
		}
		*body = strdup("{\"type\":\"http-01\",\"status\":\"processing\"}");
	} else if (sscanf(c->desc, "finalize %zu", &n) == 1 && n < f->norders) {
		struct fake_order *o = &f->orders[n];
		json_t *p = json_loads(c->payload ? c->payload : "", 0, NULL);
		const char *csr = json_string_value(json_object_get(p, "csr"));
		if (!o->cert_pem && csr) {
			o->cert_pem = issue(f, csr);
			o->processing_left = f->processing;
		}
		json_decref(p);
		*body = order_json(f, n);
	} else if (sscanf(c->desc, "cert %zu", &n) == 1 && n < f->norders && f->orders[n].cert_pem) {
		*body = strdup(f->orders[n].cert_pem);
	} else if (strncmp(c->desc, "renewalInfo ", 12) == 0 && f->ari == 1) {
		char a[32], b[32];
		time_t s = (time_t)f->ari_start, e = (time_t)f->ari_end;
		strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
		strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", gmtime(&e));
		if (asprintf(body, "{\"suggestedWindow\":{\"start\":\"%s\",\"end\":\"%s\"}}", a, b) < 0)
			*body = NULL;
		r->retry_after = f->ari_retry_after;
	} else if (strncmp(c->desc, "renewalInfo ", 12) == 0) {
		r->status = 0;
		r->err = ACME_ERR_INPUT;
		r->missing_resource = 1;
		r->err_text = "the directory has no \"renewalInfo\"";
	} else {
		r->status = 404;
		r->err = ACME_ERR_INPUT;
		r->err_text = "no such resource";
	}
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct acme_call *c = arg, **pp;
	struct fakeca *f = c->f;
	struct acme_reply r = {0};
	struct acme_problem prob = {0};
	struct fake_fault *fault = fault_for(f, c->desc);
	char *body = NULL, *location = NULL, text[256], ptype[160];

	(void)fd;
	(void)what;
	for (pp = &f->calls; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	record(f, c->desc);
	r.url = c->url;
	r.retry_after = -1;
	if (fault) {
		fault->count--;
		r.status = fault->status;
		r.retry_after = fault->retry_after;
		r.relayed = fault->relayed;
		r.err = acme_classify(fault->status, fault->problem);
		if (r.err == ACME_ERR_NONE)
			r.err = ACME_ERR_INPUT;
		if (fault->problem) {
			/* "name" or "name:detail" */
			const char *colon = strchr(fault->problem, ':');

			snprintf(ptype, sizeof(ptype), "urn:ietf:params:acme:error:%.*s",
				 colon ? (int)(colon - fault->problem) : (int)strlen(fault->problem), fault->problem);
			prob.type = ptype;
			prob.name = ptype + strlen("urn:ietf:params:acme:error:");
			prob.detail = colon ? (char *)colon + 1 : NULL;
			r.problem = &prob;
		}
		snprintf(text, sizeof(text), "%s: HTTP %ld %s", c->desc, fault->status,
			 fault->problem ? fault->problem : "");
		r.err_text = text;
	} else {
		answer(f, c, &r, &body, &location);
	}
	r.body = body ? body : "";
	r.body_len = strlen(r.body);
	r.location = location;
	c->cb(&r, c->arg);
	free(body);
	free(location);
	event_free(c->ev);
	free(c->desc);
	free(c->url);
	free(c->payload);
	free(c);
}

/* "order 3" from "https://ca.test/order/3". */
static char *describe(const char *resource, const char *url)
{
	static const char *const kinds[][2] = {
		{ "/order/", "order" }, { "/authz/", "authz" }, { "/chal/", "challenge" },
		{ "/finalize/", "finalize" }, { "/cert/", "cert" },
	};
	char *d = NULL;

	if (resource)
		return strdup(resource);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *p = url ? strstr(url, kinds[i][0]) : NULL;
		if (p && asprintf(&d, "%s %s", kinds[i][1], p + strlen(kinds[i][0])) >= 0)
			return d;
	}
	return strdup(url ? url : "?");
}

static struct acme_call *queue_call(struct fakeca *f, char *desc, const char *url,
				    const char *payload, acme_reply_fn cb, void *arg)
{
	struct acme_call *c = calloc(1, sizeof(*c));
	struct timeval zero = { 0, 0 };

	c->f = f;
	c->desc = desc;
	c->url = url ? strdup(url) : NULL;
	c->payload = payload ? strdup(payload) : NULL;
	c->cb = cb;
	c->arg = arg;
	c->ev = evtimer_new(f->base, deliver_cb, c);
	c->next = f->calls;
	f->calls = c;
	evtimer_add(c->ev, &zero);
	return c;
}

static const char *fc_name(const struct acme_client *c)
{
	return ((const struct fakeca *)c)->name;
}

static struct acme_call *fc_post(struct acme_client *c, const char *resource, const char *url,
				 const char *payload, acme_reply_fn cb, void *arg)
{
	struct fakeca *f = (struct fakeca *)c;

	if (resource && strcmp(resource, "newOrder") == 0) {
		free(f->last_new_order);
		f->last_new_order = strdup(payload ? payload : "");
	}
	return queue_call(f, describe(resource, url), url, payload, cb, arg);
}

static struct acme_call *fc_get(struct acme_client *c, const char *resource, const char *suffix,
				acme_reply_fn cb, void *arg)
{
	struct fakeca *f = (struct fakeca *)c;
	char *d = NULL;

	if (asprintf(&d, "%s %s", resource, suffix) < 0)
		return NULL;
	if (f->ari < 0)
		f->ari = 0;
	return queue_call(f, d, NULL, NULL, cb, arg);
}

static void fc_cancel(struct acme_client *cl, struct acme_call *c)
{
	struct fakeca *f = (struct fakeca *)cl;
	struct acme_call **pp;

	for (pp = &f->calls; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	*pp = c->next;
	event_free(c->ev);
	free(c->desc);
	free(c->url);
	free(c->payload);
	free(c);
}

static const struct crypto_key *fc_account_key(const struct acme_client *c)
{
	return ((const struct fakeca *)c)->account;
}

static int fc_has_resource(const struct acme_client *c, const char *resource)
{
	const struct fakeca *f = (const struct fakeca *)c;

	if (strcmp(resource, "renewalInfo") == 0)
		return f->ari;
	return 1;
}

static long fc_poll_hint_ms(const struct acme_client *c, enum acme_poll_kind kind)
{
	(void)c;
	return kind == ACME_POLL_AUTHZ ? 100 : 40;
}

static void fc_poll_learn(struct acme_client *c, enum acme_poll_kind kind, long ms, int first)
{
	(void)c;
	(void)kind;
	(void)ms;
	(void)first;
}

static const struct acme_client_ops fakeca_ops = {
	.name = fc_name, .post = fc_post, .get = fc_get, .cancel = fc_cancel,
	.account_key = fc_account_key, .has_resource = fc_has_resource,
	.poll_hint_ms = fc_poll_hint_ms, .poll_learn = fc_poll_learn,
};

/* ---------- set-up and queries ---------- */

struct fakeca *fakeca_new(struct event_base *base, const char *name)
{
	struct fakeca *f = calloc(1, sizeof(*f));
	X509_NAME *n = X509_NAME_new();

	f->client.ops = &fakeca_ops;
	f->base = base;
	f->name = strdup(name);
	f->lifetime = 90 * 86400;
	f->val_retry_after = -1;
	f->ari = -1;
	f->ca_key = EVP_EC_gen("P-256");
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Fake CA", -1, -1, 0);
	f->ca_cert = make_cert(f, n, f->ca_key, NULL, 0, 3650L * 86400);
	f->ca_pem = pem_of(f->ca_cert);
	X509_NAME_free(n);
	crypto_key_generate(KEY_ECDSA_P256, &f->account);
	return f;
}

void fakeca_free(struct fakeca *f)
{
	if (!f)
		return;
	while (f->calls)
		fc_cancel(&f->client, f->calls);
	for (size_t i = 0; i < f->nreqs; i++)
		free(f->reqs[i]);
	free(f->reqs);
	free(f->req_ms);
	for (size_t n = 0; n < f->norders; n++) {
		for (size_t i = 0; i < f->orders[n].nauthz; i++)
			free(f->orders[n].authz[i].identifier);
		free(f->orders[n].url);
		free(f->orders[n].cert_pem);
	}
	free(f->orders);
	for (size_t i = 0; i < f->nfaults; i++) {
		free(f->faults[i].prefix);
		free(f->faults[i].problem);
	}
	free(f->last_new_order);
	free(f->wrong_name);
	free(f->foreign_authz);
	free(f->name);
	free(f->ca_pem);
	X509_free(f->ca_cert);
	EVP_PKEY_free(f->ca_key);
	crypto_key_free(f->account);
	free(f);
}

struct acme_client *fakeca_client(struct fakeca *f)
{
	return &f->client;
}

size_t fakeca_nrequests(const struct fakeca *f)
{
	return f->nreqs;
}

const char *fakeca_request(const struct fakeca *f, size_t i)
{
	return i < f->nreqs ? f->reqs[i] : NULL;
}

int64_t fakeca_request_ms(const struct fakeca *f, size_t i)
{
	return i < f->nreqs ? f->req_ms[i] : -1;
}

size_t fakeca_count(const struct fakeca *f, const char *prefix)
{
	size_t n = 0;

	for (size_t i = 0; i < f->nreqs; i++)
		n += strncmp(f->reqs[i], prefix, strlen(prefix)) == 0;
	return n;
}

const char *fakeca_last_new_order(const struct fakeca *f)
{
	return f->last_new_order;
}

size_t fakeca_in_flight(const struct fakeca *f)
{
	size_t n = 0;

	for (const struct acme_call *c = f->calls; c; c = c->next)
		n++;
	return n;
}

void fakeca_fail(struct fakeca *f, const char *prefix, int count, long status, const char *problem,
		 int64_t retry_after)
{
	struct fake_fault *x = &f->faults[f->nfaults++];

	x->prefix = strdup(prefix);
	x->count = count;
	x->status = status;
	x->problem = problem ? strdup(problem) : NULL;
	x->retry_after = retry_after;
}

void fakeca_fail_relayed(struct fakeca *f, const char *prefix, int count, long status, const char *problem)
{
	fakeca_fail(f, prefix, count, status, problem, -1);
	f->faults[f->nfaults - 1].relayed = 1;
}

void fakeca_set_validation(struct fakeca *f, int polls, int64_t retry_after, fakeca_check_fn check,
			   void *arg)
{
	f->val_polls = polls;
	f->val_retry_after = retry_after;
	f->check = check;
	f->check_arg = arg;
}

void fakeca_set_processing(struct fakeca *f, int polls)
{
	f->processing = polls;
}

void fakeca_set_lifetime(struct fakeca *f, int64_t seconds)
{
	f->lifetime = seconds;
}

void fakeca_set_foreign_authz(struct fakeca *f, const char *name)
{
	free(f->foreign_authz);
	f->foreign_authz = name ? strdup(name) : NULL;
}

void fakeca_set_wrong_name(struct fakeca *f, const char *name)
{
	free(f->wrong_name);
	f->wrong_name = name ? strdup(name) : NULL;
}

void fakeca_set_ari(struct fakeca *f, int has)
{
	f->ari = has;
}

void fakeca_set_ari_window(struct fakeca *f, int64_t start, int64_t end, int64_t retry_after)
{
	f->ari = 1;
	f->ari_start = start;
	f->ari_end = end;
	f->ari_retry_after = retry_after;
}

size_t fakeca_orders(const struct fakeca *f)
{
	return f->norders;
}

const char *fakeca_order_url(const struct fakeca *f, size_t n)
{
	return n < f->norders ? f->orders[n].url : NULL;
}
