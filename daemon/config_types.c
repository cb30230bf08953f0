/* config_types.c - the values of a loaded configuration: copied, freed, named and parsed (key types, durations). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

static const char *const key_type_names[] = {
	[KEY_ECDSA_P256] = "ecdsa-p256", [KEY_ECDSA_P384] = "ecdsa-p384",
	[KEY_RSA_2048] = "rsa-2048", [KEY_RSA_3072] = "rsa-3072", [KEY_RSA_4096] = "rsa-4096",
};
#define NKEY_TYPES (sizeof(key_type_names) / sizeof(key_type_names[0]))

void config_strv_clear(struct config_strv *sv)
{
	if (sv->v)
		for (size_t i = 0; i < sv->n; i++)
			free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int config_strv_copy(struct config_strv *dst, const struct config_strv *src)
{
	if (config_strv_alloc(dst, src->n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = strdup(src->v[i]);
		if (!dst->v[i])
			return -ENOMEM;
		dst->n++;
	}
	return 0;
}

int config_strv_equal(const struct config_strv *a, const struct config_strv *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

void config_cert_clear(struct config_cert *ct)
{
	free(ct->name);
	config_strv_clear(&ct->domains);
	free(ct->challenge);
	free(ct->webroot);
	free(ct->profile);
	free(ct->key_group);
	free(ct->preferred_chain);
	free(ct->dns_provider);
	free(ct->file);
	free(ct->output_dir);
	config_strv_clear(&ct->reload);
	config_strv_clear(&ct->exec);
	memset(ct, 0, sizeof(*ct));
}

size_t config_cert_ca_at(const struct config_cert *c, size_t at)
{
	return at == 0 || at > c->nfallback ? c->ca : c->fallback[at - 1];
}

size_t config_cert_nca(const struct config_cert *c)
{
	return 1 + c->nfallback;
}

int config_cert_ca_pos(const struct config_cert *c, size_t ca)
{
	for (size_t at = 0; at < config_cert_nca(c); at++)
		if (config_cert_ca_at(c, at) == ca)
			return (int)at;
	return -1;
}

int config_cert_copy(struct config_cert *dst, const struct config_cert *src)
{
	*dst = *src;
	dst->name = dst->challenge = dst->output_dir = dst->webroot = dst->file = dst->profile = NULL;
	dst->key_group = dst->preferred_chain = dst->dns_provider = NULL;
	memset(&dst->domains, 0, sizeof(dst->domains));
	memset(&dst->reload, 0, sizeof(dst->reload));
	memset(&dst->exec, 0, sizeof(dst->exec));
	if (!(dst->name = strdup(src->name)) ||
	    (src->challenge && !(dst->challenge = strdup(src->challenge))) ||
	    (src->webroot && !(dst->webroot = strdup(src->webroot))) ||
	    (src->profile && !(dst->profile = strdup(src->profile))) ||
	    (src->key_group && !(dst->key_group = strdup(src->key_group))) ||
	    (src->preferred_chain && !(dst->preferred_chain = strdup(src->preferred_chain))) ||
	    (src->dns_provider && !(dst->dns_provider = strdup(src->dns_provider))) ||
	    (src->file && !(dst->file = strdup(src->file))) ||
	    !(dst->output_dir = strdup(src->output_dir)) ||
	    config_strv_copy(&dst->domains, &src->domains) < 0 || config_strv_copy(&dst->reload, &src->reload) < 0 ||
	    config_strv_copy(&dst->exec, &src->exec) < 0) {
		config_cert_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; cfg->cas && i < cfg->ncas; i++) {
		free(cfg->cas[i].name);
		free(cfg->cas[i].directory);
		free(cfg->cas[i].staging);
		config_eab_clear(&cfg->cas[i]);
		config_strv_clear(&cfg->cas[i].contact);
		free(cfg->cas[i].ca_bundle);
		free(cfg->cas[i].file);
	}
	for (size_t i = 0; cfg->certs && i < cfg->ncerts; i++)
		config_cert_clear(&cfg->certs[i]);
	free(cfg->cas);
	free(cfg->certs);
	for (size_t i = 0; cfg->dns_providers && i < cfg->ndns_providers; i++)
		config_dns_provider_clear(&cfg->dns_providers[i]);
	free(cfg->dns_providers);
	config_strv_clear(&cfg->dns.resolvers);
	config_strv_clear(&cfg->listen);
	config_strv_clear(&cfg->tls_alpn_listen);
	free(cfg->path);
	free(cfg->state_dir);
	free(cfg->runtime_dir);
	free(cfg);
}

int config_parse_duration(const char *s, int64_t *out)
{
	size_t len = s ? strlen(s) : 0, digits = s ? strspn(s, "0123456789") : 0;
	int64_t v = 0, mult;

	if (len < 2 || digits != len - 1 || !out)
		return -EINVAL;
	switch (s[len - 1]) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: return -EINVAL;
	}
	for (size_t i = 0; i < digits; i++) {
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v == 0 || v > INT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

const char *config_key_type_name(enum key_type kt)
{
	return (unsigned)kt < NKEY_TYPES ? key_type_names[kt] : NULL;
}

int config_key_type_parse(const char *s, enum key_type *out)
{
	for (size_t i = 0; s && i < NKEY_TYPES; i++) {
		if (!strcmp(s, key_type_names[i])) {
			if (out)
				*out = (enum key_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

const struct config_cert *config_find_cert(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->ncerts; i++)
		if (!strcmp(cfg->certs[i].name, name))
			return &cfg->certs[i];
	return NULL;
}
