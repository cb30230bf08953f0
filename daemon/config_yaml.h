/* config_yaml.h - private to config.c and config_yaml.c: the YAML document tree with line:col marks. */
#ifndef ACMED_CONFIG_YAML_H
#define ACMED_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A small document tree built from libyaml events (no anchors, no aliases). */
enum node_type { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct node {
	enum node_type type;
	bool null;              /* plain "", "~" or "null" */
	int line, col;          /* 1-based */
	const char *file;       /* the file it is in (the parse's message name; included files too) */
	char *s;                /* scalar text */
	struct node **kids;     /* sequence items; mapping key, value, key, value... */
	size_t n, cap;
};

/* Where messages go: "NAME:LINE:COL: text" into err (nowhere when err is NULL or errlen 0). */
/* Where every error goes when check-config wants them all (NULL: only the first). */
struct config_yaml_errs {
	FILE *out;              /* each message, one line */
	unsigned n;
};

struct config_yaml_msg {
	const char *name;
	char *err;              /* the first message */
	size_t errlen;
	struct config_yaml_errs *all;
};

/* Write "FILE:LINE:COL: message" (into err when it is the first, and to
 * all->out); file NULL: m's name. Always returns -EINVAL. */
__attribute__((format(printf, 5, 6)))
int config_yaml_err_in(const struct config_yaml_msg *m, const char *file, int line, int col,
		       const char *fmt, ...);
#define config_yaml_err_at(m, line, col, ...) \
	config_yaml_err_in((m), NULL, (line), (col), __VA_ARGS__)
#define config_yaml_err(m, nd, ...) \
	config_yaml_err_in((m), (nd)->file, (nd)->line, (nd)->col, __VA_ARGS__)

/* Parse buf (one YAML document at most) into *root; *root stays NULL when the stream
 * holds no document. *doc_line:*doc_col receive where the document starts.
 * 0, -EINVAL with a message, or -ENOMEM. */
int config_yaml_parse(const struct config_yaml_msg *m, const char *buf, size_t len,
		      struct node **root, int *doc_line, int *doc_col);
void config_yaml_node_free(struct node *n);

/* "value" with escapes, cut at a character boundary when long; returns buf. */
const char *config_yaml_quote(char *buf, size_t size, const char *s);
/* What a node holds, for "got ..." in messages; returns buf or a constant. */
const char *config_yaml_got(char *buf, size_t size, const struct node *n);
#define Q(s) config_yaml_quote((char[112]){0}, 112, (s))
#define GOT(n) config_yaml_got((char[112]){0}, 112, (n))

/* Fill vals[] from a mapping; refuse unknown and duplicate keys (nkeys <= 16). */
int config_yaml_map_keys(const struct config_yaml_msg *m, const struct node *map, const char *what,
			 const char *const keys[], size_t nkeys, const struct node *vals[]);
/* A non-null scalar, else "key: expected what, got ...". */
int config_yaml_want_scalar(const struct config_yaml_msg *m, const char *key, const char *what,
			    const struct node *v);
/* A sequence of non-null scalars, else "key: expected a sequence of what, got ...". */
int config_yaml_want_seq(const struct config_yaml_msg *m, const char *key, const char *what,
			 const struct node *v);

#endif
