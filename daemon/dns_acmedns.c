/* dns_acmedns.c - the acme-dns DNS provider: joohoi/acme-dns's HTTP API (POST /update), for names whose _acme-challenge is a CNAME into an acme-dns zone; credentials in lego's/certbot's file format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "dns.h"
#include "dns_provider.h"
#include "http.h"
#include "log.h"
#include "store.h"

#define CREDS_FILE_MAX (1024 * 1024)

struct creds {
	char *domain;                   /* "example.org" (lower case, no final dot) */
	char *username, *password, *subdomain;
	char *fulldomain;               /* canonical, with the final dot */
};

struct dns_prov_op {
	struct acmedns *owner;
	struct http_req *req;
	char *fqdn, *cert_name;
	dns_prov_done_fn done;
	void *arg;
	struct dns_prov_op *next;
};

struct acmedns {
	struct dns_prov p;
	struct event_base *base;
	struct http_client *http;
	struct creds *creds;
	size_t ncreds;
	struct dns_prov_op *ops;        /* in flight */
};

static void creds_clear(struct creds *c)
{
	free(c->domain);
	free(c->username);
	if (c->password)
		crypto_free_secret(c->password, strlen(c->password));
	free(c->subdomain);
	free(c->fulldomain);
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	return d;
}

/* {"example.org": {"username": .., "password": .., "subdomain": .., "fulldomain": ..}, ...} */
static int load_creds(struct acmedns *a, const char *path)
{
	char *text = NULL;
	size_t len = 0, i = 0;
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int rc = store_read_file(path, &text, &len, CREDS_FILE_MAX);

	if (rc < 0) {
		log_error(NULL, "dns provider %s: credentials_file %s: %s", a->p.name, path, strerror(-rc));
		return rc;
	}
	root = json_loadb(text, len, 0, &jerr);
	crypto_free_secret(text, len);
	if (!root || !json_is_object(root) || json_object_size(root) == 0) {
		log_error(NULL, "dns provider %s: credentials_file %s is not a JSON object of names, each with "
			  "username, password, subdomain and fulldomain (what acme-dns's /register answered)",
			  a->p.name, path);
		json_decref(root);
		return -EINVAL;
	}
	a->creds = calloc(json_object_size(root), sizeof(*a->creds));
	json_object_foreach(root, key, v) {
		struct creds *c = &a->creds[i];
		const char *u = json_string_value(json_object_get(v, "username"));
		const char *pw = json_string_value(json_object_get(v, "password"));
		const char *sub = json_string_value(json_object_get(v, "subdomain"));
		const char *full = json_string_value(json_object_get(v, "fulldomain"));

		if (!a->creds)
			break;
		if (!u || !pw || !sub || !full || !*u || !*pw || !*sub) {
			log_error(NULL, "dns provider %s: credentials_file %s: %s lacks username, password, subdomain "
				  "or fulldomain", a->p.name, path, key);
			rc = -EINVAL;
			break;
		}
		c->domain = lower_dup(key);
		if (c->domain && strlen(c->domain) > 1 && c->domain[strlen(c->domain) - 1] == '.')
			c->domain[strlen(c->domain) - 1] = '\0';
		c->username = strdup(u);
		c->password = strdup(pw);
		c->subdomain = strdup(sub);
		c->fulldomain = dns_name_canonical(full);
		i++;
		if (!c->domain || !c->username || !c->password || !c->subdomain || !c->fulldomain) {
			log_error(NULL, "dns provider %s: credentials_file %s: %s: bad fulldomain or out of memory",
				  a->p.name, path, key);
			rc = -EINVAL;
			break;
		}
	}
	a->ncreds = i;
	json_decref(root);
	return a->creds ? rc : -ENOMEM;
}

static const struct creds *creds_for(const struct acmedns *a, const char *identifier)
{
	for (size_t i = 0; i < a->ncreds; i++)
		if (strcasecmp(a->creds[i].domain, identifier) == 0)
			return &a->creds[i];
	return NULL;
}

static void unlink_op(struct acmedns *a, struct dns_prov_op *op)
{
	for (struct dns_prov_op **pp = &a->ops; *pp; pp = &(*pp)->next)
		if (*pp == op) {
			*pp = op->next;
			return;
		}
}

static void op_free(struct dns_prov_op *op)
{
	free(op->fqdn);
	free(op->cert_name);
	free(op);
}

static void updated(const struct http_response *resp, void *arg)
{
	struct dns_prov_op *op = arg;
	struct acmedns *a = op->owner;
	char msg[700];
	enum acme_err_class err = ACME_ERR_NONE;

	op->req = NULL;
	unlink_op(a, op);
	if (resp->status == 0) {
		snprintf(msg, sizeof(msg), "acme-dns %s: %s", resp->url, resp->error_text ? resp->error_text : "no answer");
		err = ACME_ERR_UNAVAILABLE;
	} else if (resp->status >= 500) {
		snprintf(msg, sizeof(msg), "acme-dns %s answered HTTP %ld", resp->url, resp->status);
		err = ACME_ERR_UNAVAILABLE;
	} else if (resp->status != 200) {
		/* 401: bad credentials; 400: {"error": "bad_subdomain"} ... (never the password in a message) */
		snprintf(msg, sizeof(msg), "acme-dns %s refused the update of %s: HTTP %ld %.200s%s", resp->url,
			 op->fqdn, resp->status, resp->body, resp->status == 401 ?
			 " (check username and password in credentials_file)" : "");
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		err = ACME_ERR_CERT;
	}
	if (err != ACME_ERR_NONE)       /* said once, by whoever asked (the order) */
		log_debug(op->cert_name, "dns provider %s: %s", a->p.name, msg);
	op->done(op->arg, err, err == ACME_ERR_NONE ? NULL : msg);
	op_free(op);
}

static struct dns_prov_op *adns_change(struct dns_prov *p, const struct dns_change_req *rq, dns_prov_done_fn done,
				       void *arg)
{
	struct acmedns *a = (struct acmedns *)p;
	const struct creds *c = creds_for(a, rq->identifier);
	struct dns_prov_op *op;
	char *url = NULL, *body = NULL;
	json_t *j;

	if (!c) {
		log_error(rq->cert_name, "dns provider %s: no credentials for %s in %s; register it with acme-dns "
			  "(POST %s/register), add what it answers under \"%s\" and create the CNAME "
			  "_acme-challenge.%s. -> its fulldomain", p->name, rq->identifier, p->cfg.credentials_file,
			  p->cfg.url, rq->identifier, rq->identifier);
		return NULL;
	}
	if (!rq->add) {         /* acme-dns keeps the two newest values itself: never asked (withdraws 0) */
		log_error(rq->cert_name, "dns provider %s: acme-dns removes nothing", p->name);
		return NULL;
	}
	if (strcasecmp(rq->fqdn, c->fulldomain) != 0) {
		log_error(rq->cert_name, "dns provider %s: _acme-challenge.%s. leads to %s, not to acme-dns's %s: "
			  "create the record _acme-challenge.%s. CNAME %s", p->name, rq->identifier, rq->fqdn,
			  c->fulldomain, rq->identifier, c->fulldomain);
		return NULL;
	}
	if (!(op = calloc(1, sizeof(*op))) || !(op->fqdn = strdup(rq->fqdn)) ||
	    (rq->cert_name && !(op->cert_name = strdup(rq->cert_name)))) {
		if (op)
			op_free(op);
		return NULL;
	}
	op->owner = a;
	op->done = done;
	op->arg = arg;
	j = json_pack("{s:s, s:s}", "subdomain", c->subdomain, "txt", rq->value);
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (body && asprintf(&url, "%s/update", p->cfg.url) >= 0) {
		char *hdr_user = NULL, *hdr_key = NULL;

		/* acme-dns authenticates with two headers */
		if (asprintf(&hdr_user, "X-Api-User: %s", c->username) >= 0 &&
		    asprintf(&hdr_key, "X-Api-Key: %s", c->password) >= 0) {
			const char *headers[] = { hdr_user, hdr_key, NULL };

			op->req = http_send_headers(a->http, "POST", url, "application/json", body, strlen(body),
						    headers, updated, op);
		}
		free(hdr_user);
		if (hdr_key)
			crypto_free_secret(hdr_key, strlen(hdr_key));
	}
	free(url);
	free(body);
	if (!op->req) {
		log_error(rq->cert_name, "dns provider %s: cannot send the update (out of memory)", p->name);
		op_free(op);
		return NULL;
	}
	op->next = a->ops;
	a->ops = op;
	return op;
}

static void adns_cancel(struct dns_prov *p, struct dns_prov_op *op)
{
	struct acmedns *a = (struct acmedns *)p;

	http_cancel(op->req);
	unlink_op(a, op);
	op_free(op);
}

static void adns_free(struct dns_prov *p)
{
	struct acmedns *a = (struct acmedns *)p;

	while (a->ops)
		adns_cancel(p, a->ops);
	http_client_free(a->http);
	for (size_t i = 0; i < a->ncreds; i++)
		creds_clear(&a->creds[i]);
	free(a->creds);
	free(a);
}

static const struct dns_prov_ops acmedns_ops = {
	.type = "acme-dns",
	.withdraws = 0,
	.change = adns_change,
	.cancel = adns_cancel,
	.free = adns_free,
};

struct dns_prov *dns_acmedns_new(struct event_base *base, const struct config_dns_provider *cfg,
				 const char *runtime_dir)
{
	struct acmedns *a = calloc(1, sizeof(*a));

	(void)runtime_dir;
	if (!a)
		return NULL;
	a->p.ops = &acmedns_ops;
	a->p.name = cfg->name;          /* for the messages below; dns_prov_new sets its own copy */
	a->base = base;
	if (!(a->http = http_client_new(base, cfg->ca_bundle, NULL)) || load_creds(a, cfg->credentials_file) < 0) {
		a->p.name = NULL;
		adns_free(&a->p);
		return NULL;
	}
	http_client_set_timeouts(a->http, 10000, 30000);
	a->p.name = NULL;
	return &a->p;
}
