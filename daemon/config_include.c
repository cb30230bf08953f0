/* config_include.c - `include:`: more CAs and certificates from files matching patterns, parsed and merged after the main file's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "config_internal.h"

#define CFG_MAX_INCLUDED 10000
enum { F_NKEYS = 2 };
static const char *const frag_keys[] = { "cas", "certificates" };

void config_include_free(struct ctx *c)
{
	for (size_t i = 0; i < c->nfrags; i++) {
		config_yaml_node_free(c->frags[i].root);
		free(c->frags[i].path);
		free(c->frags[i].dir);
	}
	free(c->frags);
	for (size_t i = 0; i < 2; i++) {
		if (c->merged[i])
			free(c->merged[i]->kids);
		free(c->merged[i]);
	}
}

/* One included file, read and parsed: its cas and certificates join the main
 * file's; messages name it, and relative paths in it are relative to its
 * directory. Only cas and certificates may be in it. */
static int load_fragment(struct ctx *c, const struct node *at, const char *path)
{
	struct fragment *f, *more = realloc(c->frags, (c->nfrags + 1) * sizeof(*more));
	struct config_yaml_msg fm = c->msg;
	const struct node *v[F_NKEYS];
	char err[600], *buf = NULL, *abs = NULL;
	size_t len = 0;
	int rc, line, col;

	if (!more)
		return -ENOMEM;
	c->frags = more;
	f = memset(&c->frags[c->nfrags], 0, sizeof(*f));
	if (!(f->path = strdup(path)))
		return -ENOMEM;
	c->nfrags++;
	if ((rc = config_file_location(path, &f->dir, &abs)))
		return rc;
	free(abs);
	rc = config_read_file(path, &buf, &len, err, sizeof(err));
	if (rc < 0)
		return rc == -ENOMEM ? rc : cfg_err(c, at, "include: %s", err);
	fm.name = f->path;
	rc = config_yaml_parse(&fm, buf, len, &f->root, &line, &col);
	free(buf);
	if (rc || !f->root || (f->root->type == NODE_SCALAR && f->root->null))
		return rc;              /* an empty file adds nothing */
	if (f->root->type != NODE_MAP)
		return cfg_err(c, f->root, "expected a mapping with \"cas\" and/or \"certificates\" in "
			       "an included file, got %s", GOT(f->root));
	return config_yaml_map_keys(&fm, f->root, "in an included file", frag_keys, F_NKEYS, v);
}

/* include: a pattern (or a list of them) relative to the file's directory;
 * the files it matches, in name order. */
int config_include_load(struct ctx *c, const struct node *inc)
{
	const struct node *one[1] = { inc }, *const *pats = one;
	size_t npats = 1;
	int rc = 0;

	if (inc->type == NODE_SEQ) {
		pats = (const struct node *const *)inc->kids;
		npats = inc->n;
	}
	for (size_t i = 0; i < npats; i++) {
		char **paths = NULL, *pattern;
		size_t n = 0;
		int r = config_yaml_want_scalar(&c->msg, "include", "a file name pattern", pats[i]);

		if (config_stop_at(c, &rc, r))
			return rc;
		if (r)
			continue;
		if (!(pattern = config_path_resolve(c->base, pats[i]->s)))
			return -ENOMEM;
		r = config_include_glob(pattern, &paths, &n);
		if (r == -EIO)
			r = cfg_err(c, pats[i], "include: %s: a directory cannot be read (its permissions)",
				    pattern);
		free(pattern);
		for (size_t k = 0; r == 0 && k < n; k++) {
			if (strcmp(paths[k], c->cfg->path) == 0)
				continue;       /* the main file, matched by its own pattern */
			if (c->nfrags >= CFG_MAX_INCLUDED) {
				r = cfg_err(c, pats[i], "include: more than %d files", CFG_MAX_INCLUDED);
				break;
			}
			if (config_stop_at(c, &rc, load_fragment(c, pats[i], paths[k])))
				break;
		}
		config_include_paths_free(paths, n);
		if (config_stop_at(c, &rc, r) || (rc && !c->msg.all))
			return rc;
	}
	return rc;
}

/* The sequences under key in the main file (mine) and every included one, as
 * one (its kids not owned); *out NULL when none has it. */
int config_include_merge(struct ctx *c, int which, const struct node *mine, const char *key,
		     const struct node **out)
{
	const struct node *first = mine && !mine->null ? mine : NULL;
	struct node *m;
	size_t n = first && first->type == NODE_SEQ ? first->n : 0, k = 0, parts = !!first;

	for (size_t i = 0; i < c->nfrags; i++) {
		const struct node *v[F_NKEYS];
		const struct node *s;

		if (!c->frags[i].root || c->frags[i].root->type != NODE_MAP ||
		    config_yaml_map_keys(&(struct config_yaml_msg){ .name = c->frags[i].path },
					 c->frags[i].root, "", frag_keys, F_NKEYS, v))
			continue;
		s = v[which];
		if (!s || s->null)
			continue;
		if (s->type != NODE_SEQ)
			return cfg_err(c, s, "%s: expected a sequence, got %s", key, GOT(s));
		n += s->n;
		parts++;
		if (!first)
			first = s;
	}
	*out = first;
	if (parts < 2)
		return 0;
	if (first->type != NODE_SEQ)
		return 0;               /* the main file's error, said by parse_cas/parse_certs */
	m = calloc(1, sizeof(*m));
	if (!m || !(m->kids = calloc(n ? n : 1, sizeof(*m->kids)))) {
		free(m);
		return -ENOMEM;
	}
	*m = (struct node){ .type = NODE_SEQ, .line = first->line, .col = first->col,
			    .file = first->file, .kids = m->kids, .n = n, .cap = n };
	for (size_t i = 0; mine && !mine->null && i < mine->n; i++)
		m->kids[k++] = mine->kids[i];
	for (size_t i = 0; i < c->nfrags; i++) {
		const struct node *v[F_NKEYS];

		if (!c->frags[i].root || c->frags[i].root->type != NODE_MAP ||
		    config_yaml_map_keys(&(struct config_yaml_msg){ .name = c->frags[i].path },
					 c->frags[i].root, "", frag_keys, F_NKEYS, v) || !v[which] ||
		    v[which]->null)
			continue;
		for (size_t j = 0; j < v[which]->n; j++)
			m->kids[k++] = v[which]->kids[j];
	}
	c->merged[which] = m;
	*out = m;
	return 0;
}

