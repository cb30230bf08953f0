/* certbot_conf.c - a strict reader of certbot's renewal/<name>.conf (configobj syntax: sections, key = value, lists, quotes). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certbot_conf.h"

#define SECTION_DEPTH 8

struct parse {
	struct certbot_conf *c;
	char *sections[SECTION_DEPTH];  /* the open section at each depth (1-based) */
	int depth;
	unsigned line;
	char *err;
	size_t errlen;
};

static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (p->err && p->errlen) {
		n = snprintf(p->err, p->errlen, "line %u: ", p->line);
		if (n < 0 || (size_t)n >= p->errlen)
			n = 0;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static char *dup_range(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

/* Trim spaces at both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

/* "[a]", "[[b]]": depth = bracket count; the name may be quoted. */
static int parse_section(struct parse *p, const char *s, const char *e)
{
	int open = 0, close = 0;
	const char *ns, *ne;
	char *name, *path;
	size_t plen;

	while (s < e && *s == '[') {
		open++;
		s++;
	}
	while (e > s && e[-1] == ']') {
		close++;
		e--;
	}
	if (open != close)
		return fail(p, "unbalanced section brackets");
	if (open >= SECTION_DEPTH)      /* sections[1..SECTION_DEPTH - 1] */
		return fail(p, "sections nested more than %d deep", SECTION_DEPTH - 1);
	if (open > p->depth + 1)
		return fail(p, "section nested more than one level below its parent");
	ns = s;
	ne = e;
	trim(&ns, &ne);
	if (ne - ns >= 2 && (*ns == '"' || *ns == '\'') && ne[-1] == *ns) {
		ns++;
		ne--;
	}
	if (ne == ns || memchr(ns, '/', (size_t)(ne - ns)) || memchr(ns, '[', (size_t)(ne - ns)) ||
	    memchr(ns, ']', (size_t)(ne - ns)))
		return fail(p, "bad section name");
	name = dup_range(ns, (size_t)(ne - ns));
	if (!name)
		return -ENOMEM;
	plen = open > 1 ? strlen(p->sections[open - 1]) + 1 : 0;
	path = malloc(plen + strlen(name) + 1);
	if (!path) {
		free(name);
		return -ENOMEM;
	}
	if (open > 1)
		sprintf(path, "%s/%s", p->sections[open - 1], name);
	else
		strcpy(path, name);
	free(name);
	for (int d = open; d <= p->depth; d++) {
		free(p->sections[d]);
		p->sections[d] = NULL;
	}
	p->sections[open] = path;
	p->depth = open;
	return 0;
}

static int add_value(struct certbot_conf_entry *en, const char *s, size_t n)
{
	char **v = realloc(en->values, (en->nvalues + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	en->values = v;
	v[en->nvalues] = dup_range(s, n);
	if (!v[en->nvalues])
		return -ENOMEM;
	en->nvalues++;
	return 0;
}

/* The text after '=': items separated by commas, each plain or quoted; '#' starts a comment. */
static int parse_values(struct parse *p, struct certbot_conf_entry *en, const char *s, const char *e)
{
	int rc, commas = 0;

	for (;;) {
		const char *is, *ie;
		int quoted = 0;

		while (s < e && is_space(*s))
			s++;
		if (s >= e || *s == '#')
			break;
		if (*s == '"' || *s == '\'') {
			char q = *s;

			quoted = 1;
			if (e - s >= 3 && s[1] == q && s[2] == q)
				return fail(p, "multi-line (triple-quoted) values are not supported");
			is = s + 1;
			ie = memchr(is, q, (size_t)(e - is));
			if (!ie)
				return fail(p, "unterminated quote");
			s = ie + 1;
			while (s < e && is_space(*s))
				s++;
			if (s < e && *s != ',' && *s != '#')
				return fail(p, "text after a quoted value");
		} else {
			is = s;
			while (s < e && *s != ',' && *s != '#')
				s++;
			ie = s;
			trim(&is, &ie);
		}
		/* "d = ," is an empty list: an empty unquoted item is no item */
		rc = ie == is && !quoted ? 0 : add_value(en, is, (size_t)(ie - is));
		if (rc < 0)
			return rc;
		if (s < e && *s == ',') {
			commas++;
			s++;
			continue;
		}
		break;
	}
	en->is_list = commas > 0 || (s < e && *s == ',');
	if (!en->is_list && en->nvalues == 0)
		return add_value(en, "", 0);   /* "key =": an empty string */
	if (!en->is_list && en->nvalues != 1)
		return fail(p, "more than one value without a comma");
	return 0;
}

static int parse_keyval(struct parse *p, const char *s, const char *e)
{
	const char *eq = memchr(s, '=', (size_t)(e - s)), *ks = s, *ke;
	struct certbot_conf_entry *en, *grown;
	int rc;

	if (!eq)
		return fail(p, "expected key = value or [section]");
	ke = eq;
	trim(&ks, &ke);
	if (ke - ks >= 2 && (*ks == '"' || *ks == '\'') && ke[-1] == *ks) {
		ks++;
		ke--;
	}
	if (ke == ks)
		return fail(p, "empty key");
	if (p->c->n >= CERTBOT_CONF_ENTRIES)
		return fail(p, "more than %d entries", CERTBOT_CONF_ENTRIES);
	grown = realloc(p->c->e, (p->c->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->c->e = grown;
	en = &grown[p->c->n++];
	memset(en, 0, sizeof(*en));
	en->line = p->line;
	en->section = strdup(p->depth ? p->sections[p->depth] : "");
	en->key = dup_range(ks, (size_t)(ke - ks));
	if (!en->section || !en->key)
		return -ENOMEM;
	rc = parse_values(p, en, eq + 1, e);
	return rc;
}

int certbot_conf_parse(const char *text, size_t len, struct certbot_conf *out, char *err,
		       size_t errlen)
{
	struct parse p = { .c = out, .err = err, .errlen = errlen };
	const char *s = text, *end = text + len;
	int rc = 0;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!text && len)
		return -EINVAL;
	if (len > CERTBOT_CONF_MAX)
		return fail(&p, "file larger than %u bytes", CERTBOT_CONF_MAX);
	if (len && memchr(text, '\0', len))
		return fail(&p, "NUL byte in the file");
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (s < end && rc == 0) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *le = nl ? nl : end, *ls = s;

		p.line++;
		s = nl ? nl + 1 : end;
		if (le > ls && le[-1] == '\r')
			le--;
		trim(&ls, &le);
		if (ls == le || *ls == '#')
			continue;
		rc = *ls == '[' ? parse_section(&p, ls, le) : parse_keyval(&p, ls, le);
	}
	for (int d = 0; d < SECTION_DEPTH; d++)
		free(p.sections[d]);
	if (rc < 0)
		certbot_conf_clear(out);
	return rc;
}

const struct certbot_conf_entry *certbot_conf_get(const struct certbot_conf *c, const char *section,
						  const char *key)
{
	for (size_t i = c ? c->n : 0; i-- > 0;)
		if (strcmp(c->e[i].section, section) == 0 && strcmp(c->e[i].key, key) == 0)
			return &c->e[i];
	return NULL;
}

const char *certbot_conf_str(const struct certbot_conf *c, const char *section, const char *key)
{
	const struct certbot_conf_entry *en = certbot_conf_get(c, section, key);

	return en && !en->is_list && en->nvalues == 1 ? en->values[0] : NULL;
}

void certbot_conf_clear(struct certbot_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		for (size_t v = 0; v < c->e[i].nvalues; v++)
			free(c->e[i].values[v]);
		free(c->e[i].values);
		free(c->e[i].section);
		free(c->e[i].key);
	}
	free(c->e);
	memset(c, 0, sizeof(*c));
}
