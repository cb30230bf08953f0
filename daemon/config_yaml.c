/* config_yaml.c - libyaml event reader: the config document tree with line:col marks, and node helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_yaml.h"

#define CFG_MAX_SCALAR 4096
#define CFG_MAX_DEPTH 32

static int yaml_verr(const struct config_yaml_msg *m, const char *file, int line, int col,
		     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static int yaml_verr(const struct config_yaml_msg *m, const char *file, int line, int col,
		     const char *fmt, va_list ap)
{
	char text[1024];
	int off;

	off = snprintf(text, sizeof(text), "%s:%d:%d: ", file ? file : m->name, line, col);
	if (off >= 0 && (size_t)off < sizeof(text))
		vsnprintf(text + off, sizeof(text) - (size_t)off, fmt, ap);
	if (m->err && m->errlen && (!m->all || m->all->n == 0))
		snprintf(m->err, m->errlen, "%s", text);
	if (m->all) {
		if (m->all->out)
			fprintf(m->all->out, "%s\n", text);
		m->all->n++;
	}
	return -EINVAL;
}

int config_yaml_err_in(const struct config_yaml_msg *m, const char *file, int line, int col,
		       const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = yaml_verr(m, file, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

/* "value" with escapes, cut at a character boundary when long. */
const char *config_yaml_quote(char *buf, size_t size, const char *s)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i] && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (s[i]) {
		while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 1 && (unsigned char)buf[o - 1] >= 0xc0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *config_yaml_got(char *buf, size_t size, const struct node *n)
{
	if (n->type == NODE_SEQ)
		return "a sequence";
	if (n->type == NODE_MAP)
		return "a mapping";
	if (n->null)
		return "an empty value";
	return config_yaml_quote(buf, size, n->s);
}

void config_yaml_node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		config_yaml_node_free(n->kids[i]);
	free(n->kids);
	free(n->s);
	free(n);
}

static int node_add(struct node *parent, struct node *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct node **k = realloc(parent->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

static int mark_err(const struct config_yaml_msg *c, yaml_mark_t m, const char *what, const char *s)
{
	return config_yaml_err_at(c, (int)m.line + 1, (int)m.column + 1, what, s);
}

/* The byte at 1-based line:col, to explain syntax errors caused by tabs. */
static char char_at(const char *buf, size_t len, int line, int col)
{
	size_t i = 0;

	for (int l = 1; l < line && i < len; i++)
		if (buf[i] == '\n')
			l++;
	for (int k = 1; i < len && buf[i] != '\n'; i++)
		if (((unsigned char)buf[i] & 0xc0) != 0x80 && k++ == col)
			return buf[i];
	return '\0';
}

static int syntax_err(const struct config_yaml_msg *c, const yaml_parser_t *p, const char *buf,
		      size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	int line = 1, col = 1;

	if (p->error == YAML_MEMORY_ERROR) {
		config_yaml_err_at(c, 1, 1, "out of memory");
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark. */
		for (size_t i = 0; i < p->problem_offset && i < len; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
				col++;
			}
		}
		if (p->problem_value >= 0)
			return config_yaml_err_at(c, line, col, "invalid input: %s (byte 0x%02x); expected UTF-8 text",
					  problem, (unsigned)p->problem_value & 0xffu);
		return config_yaml_err_at(c, line, col, "invalid input: %s; expected UTF-8 text", problem);
	}
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	if (char_at(buf, len, line, col) == '\t')
		return config_yaml_err_at(c, line, col, "YAML syntax error: %s (a tab; YAML indentation uses spaces only)",
				  problem);
	if (p->context)
		return config_yaml_err_at(c, line, col, "YAML syntax error: %s (%s that started at %d:%d)", problem,
				  p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	return config_yaml_err_at(c, line, col, "YAML syntax error: %s", problem);
}

static int scalar_node(const struct config_yaml_msg *c, const yaml_event_t *ev, struct node *n)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (len > CFG_MAX_SCALAR)
		return config_yaml_err(c, n, "value too long (%zu bytes, max %d)", len, CFG_MAX_SCALAR);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return config_yaml_err(c, n, "control character 0x%02x in a value; expected printable text", ch);
	}
	n->s = strndup(s, len);
	if (!n->s)
		return -ENOMEM;
	n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		(len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") ||
		 !strcmp(n->s, "Null") || !strcmp(n->s, "NULL"));
	return 0;
}

static int event_node(const struct config_yaml_msg *c, const yaml_event_t *ev, struct node *stack[],
		      size_t *depth, struct node **root)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	struct node *n;
	int rc;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		return 0;
	}
	if (anchor)
		return mark_err(c, ev->start_mark, "YAML anchors (&%.40s) are not supported", (const char *)anchor);
	if (tag)
		return mark_err(c, ev->start_mark, "YAML tags (%.40s) are not supported", (const char *)tag);
	if (ev->type != YAML_SCALAR_EVENT && *depth == CFG_MAX_DEPTH)
		return config_yaml_err_at(c, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
				  "nesting too deep (more than %d levels)", CFG_MAX_DEPTH);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	n->file = c->name;
	n->type = ev->type == YAML_SCALAR_EVENT ? NODE_SCALAR :
		ev->type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP;
	rc = *depth ? node_add(stack[*depth - 1], n) : 0;
	if (rc) {
		free(n);
		return rc;
	}
	if (!*depth)
		*root = n;      /* only one root: a second document is refused earlier */
	if (n->type == NODE_SCALAR)
		return scalar_node(c, ev, n);
	stack[(*depth)++] = n;
	return 0;
}

int config_yaml_parse(const struct config_yaml_msg *c, const char *buf, size_t len,
		      struct node **root, int *doc_line, int *doc_col)
{
	struct node *stack[CFG_MAX_DEPTH];
	size_t depth = 0;
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0, rc = 0;
	bool done = false;

	*root = NULL;
	/* A UTF-8 byte order mark (Windows editors write one) is not content: with
	 * the encoding set, libyaml would count it as a column of the first line. */
	while (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {      /* even twice */
		buf += 3;
		len -= 3;
	}
	if (len >= 2 && (memcmp(buf, "\xff\xfe", 2) == 0 || memcmp(buf, "\xfe\xff", 2) == 0))
		return config_yaml_err_at(c, 1, 1, "the file is UTF-16 (it starts with a UTF-16 byte "
					  "order mark); save it as UTF-8");
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = syntax_err(c, &p, buf, len);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			*doc_line = (int)ev.start_mark.line + 1;
			*doc_col = (int)ev.start_mark.column + 1;
			if (++docs > 1)
				rc = config_yaml_err_at(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
						"a second YAML document; expected exactly one document in the file");
			break;
		case YAML_ALIAS_EVENT:
			rc = mark_err(c, ev.start_mark, "YAML aliases (*%.40s) are not supported; write the value out",
				      (const char *)ev.data.alias.anchor);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			rc = event_node(c, &ev, stack, &depth, root);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (rc) {
		config_yaml_node_free(*root);
		*root = NULL;
	}
	return rc;
}

/* Fill vals[] from a mapping; refuse unknown and duplicate keys. */
int config_yaml_map_keys(const struct config_yaml_msg *c, const struct node *map, const char *what,
			 const char *const keys[], size_t nkeys, const struct node *vals[])
{
	const struct node *seen[16] = { 0 };

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct node *k = map->kids[i];
		size_t j;

		if (k->type != NODE_SCALAR || k->null)
			return config_yaml_err(c, k, "expected a key name %s, got %s", what, GOT(k));
		for (j = 0; j < nkeys && strcmp(keys[j], k->s); j++)
			;
		if (j == nkeys) {
			char list[256];
			size_t o = 0;
			for (size_t x = 0; x < nkeys && o < sizeof(list); x++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", x ? ", " : "", keys[x]);
			return config_yaml_err(c, k, "unknown key %s %s; expected one of %s", Q(k->s), what, list);
		}
		if (seen[j])
			return config_yaml_err(c, k, "duplicate key %s %s (first at %d:%d)", Q(k->s), what,
				       seen[j]->line, seen[j]->col);
		seen[j] = k;
		vals[j] = map->kids[i + 1];
	}
	return 0;
}

int config_yaml_want_scalar(const struct config_yaml_msg *c, const char *key, const char *what,
			    const struct node *v)
{
	if (v->type != NODE_SCALAR || v->null)
		return config_yaml_err(c, v, "%s: expected %s, got %s", key, what, GOT(v));
	return 0;
}

int config_yaml_want_seq(const struct config_yaml_msg *c, const char *key, const char *what,
			 const struct node *v)
{
	if (v->type != NODE_SEQ)
		return config_yaml_err(c, v, "%s: expected a sequence of %s, got %s", key, what, GOT(v));
	for (size_t i = 0; i < v->n; i++)
		if (v->kids[i]->type != NODE_SCALAR || v->kids[i]->null)
			return config_yaml_err(c, v->kids[i], "%s: expected %s, got %s", key, what, GOT(v->kids[i]));
	return 0;
}
