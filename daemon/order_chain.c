/* order_chain.c - preferred_chain: the CA's alternate chains (Link rel="alternate", RFC 8555 7.4.2) fetched until one's top certificate is issued by the configured name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "log.h"
#include "order_chain.h"

#define CHAIN_ALTERNATES_MAX 8

struct order_chain {
	struct acme_client *ca;
	char *cert_name, *name;
	char *default_pem;
	size_t default_len;
	char **urls;
	size_t n, next;
	struct acme_call *call;
	order_chain_fn done;
	void *arg;
};

int order_chain_top_matches(const char *pem, size_t len, const char *name)
{
	char *issuer = NULL;
	int match = crypto_chain_top_issuer(pem, len, &issuer) == 0 && strcmp(issuer, name) == 0;

	free(issuer);
	return match;
}

/* rel="alternate" among the parameters after the <URL> (rel may list several values). */
static int rel_alternate(const char *p)
{
	while ((p = strchr(p, ';'))) {
		const char *v;
		size_t len;

		p++;
		p += strspn(p, " \t");
		if (strncasecmp(p, "rel", 3) != 0)
			continue;
		v = p + 3 + strspn(p + 3, " \t");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t\"");
		while (*v && *v != '"' && *v != ';') {
			len = strcspn(v, " \t\";");
			if (len == 9 && strncasecmp(v, "alternate", 9) == 0)
				return 1;
			v += len;
			v += strspn(v, " \t");
		}
	}
	return 0;
}

void order_chain_urls_free(char **urls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

int order_chain_alternates(const char *const *links, char ***urls, size_t *n)
{
	*urls = NULL;
	*n = 0;
	for (size_t i = 0; links && links[i] && *n < CHAIN_ALTERNATES_MAX; i++) {
		const char *l = links[i] + strspn(links[i], " \t"), *end;
		char **grown;

		if (*l != '<' || !(end = strchr(l, '>')) || !rel_alternate(end) ||
		    (size_t)(end - l - 1) < 9 || strncasecmp(l + 1, "https://", 8) != 0 ||
		    memchr(l + 1, ' ', (size_t)(end - l - 1)))
			continue;
		grown = realloc(*urls, (*n + 1) * sizeof(*grown));
		if (!grown || !(grown[*n] = strndup(l + 1, (size_t)(end - l - 1)))) {
			if (grown)
				*urls = grown;
			order_chain_urls_free(*urls, *n);
			*urls = NULL;
			*n = 0;
			return -ENOMEM;
		}
		*urls = grown;
		(*n)++;
	}
	return 0;
}

static void chain_free(struct order_chain *c)
{
	order_chain_urls_free(c->urls, c->n);
	free(c->cert_name);
	free(c->name);
	free(c->default_pem);
	free(c);
}

static void chain_end(struct order_chain *c, const char *pem, size_t len, const char *note)
{
	c->done(c->arg, pem, len, note);
	chain_free(c);
}

static void chain_next(struct order_chain *c);

static void alternate_done(const struct acme_reply *r, void *arg)
{
	struct order_chain *c = arg;

	c->call = NULL;
	if (r->err != ACME_ERR_NONE) {
		log_warn(c->cert_name, "preferred_chain: the alternate chain %s could not be had: %s", r->url,
			 r->err_text ? r->err_text : "error");
	} else if (order_chain_top_matches(r->body, r->body_len, c->name)) {
		char note[512];

		snprintf(note, sizeof(note), "preferred_chain: the chain issued by %s (%s)", c->name, r->url);
		chain_end(c, r->body, r->body_len, note);
		return;
	}
	chain_next(c);
}

static void chain_next(struct order_chain *c)
{
	char note[512];

	while (c->next < c->n) {
		c->call = acme_client_post(c->ca, NULL, c->urls[c->next++], NULL, alternate_done, c);
		if (c->call)
			return;
	}
	snprintf(note, sizeof(note), "preferred_chain: none of the CA's %zu alternate chain%s is issued by %s; "
		 "keeping the default one", c->n, c->n == 1 ? "" : "s", c->name);
	chain_end(c, c->default_pem, c->default_len, note);
}

struct order_chain *order_chain_pick(struct acme_client *ca, const char *cert_name, const char *name,
				     const char *pem, size_t len, const char *const *links,
				     order_chain_fn done, void *arg)
{
	struct order_chain *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ca = ca;
	c->done = done;
	c->arg = arg;
	c->cert_name = strdup(cert_name);
	c->name = strdup(name);
	c->default_pem = malloc(len + 1);
	if (!c->cert_name || !c->name || !c->default_pem ||
	    order_chain_alternates(links, &c->urls, &c->n) < 0 || c->n == 0) {
		chain_free(c);
		return NULL;
	}
	memcpy(c->default_pem, pem, len);
	c->default_pem[len] = '\0';
	c->default_len = len;
	c->call = acme_client_post(ca, NULL, c->urls[c->next++], NULL, alternate_done, c);
	if (!c->call) {
		chain_free(c);
		return NULL;
	}
	return c;
}

void order_chain_cancel(struct order_chain *c)
{
	if (!c)
		return;
	if (c->call)
		acme_client_cancel(c->ca, c->call);
	chain_free(c);
}
