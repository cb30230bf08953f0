/* config.c - libyaml event parser -> immutable struct config, validated with FILE:LINE:COL messages. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"

#define CFG_MAX_FILE (1024 * 1024)
#define CFG_MAX_CERTS 100000
#define CFG_MAX_SCALAR 4096
#define CFG_MAX_DEPTH 32
#define CFG_MAX_NAME 64

/* A small document tree built from libyaml events (no anchors, no aliases). */
enum node_type { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct node {
	enum node_type type;
	bool null;              /* plain "", "~" or "null" */
	int line, col;          /* 1-based */
	char *s;                /* scalar text */
	struct node **kids;     /* sequence items; mapping key, value, key, value... */
	size_t n, cap;
};

struct cert_aux {
	const struct node *map, *name, *ca, *out;
};

struct ctx {
	const char *name;
	char *err;
	size_t errlen;
	char *base;             /* absolute directory of the file */
	struct config *cfg;
	int doc_line, doc_col;  /* start of the document */
	const struct node **ca_names;
	struct cert_aux *certs;
};

static const char *const key_type_names[] = {
	[KEY_ECDSA_P256] = "ecdsa-p256", [KEY_ECDSA_P384] = "ecdsa-p384",
	[KEY_RSA_2048] = "rsa-2048", [KEY_RSA_3072] = "rsa-3072", [KEY_RSA_4096] = "rsa-4096",
};
#define NKEY_TYPES (sizeof(key_type_names) / sizeof(key_type_names[0]))

__attribute__((format(printf, 4, 5)))
static int cfg_err_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;
	int off;

	if (!c->err || !c->errlen)
		return -EINVAL;
	off = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->name, line, col);
	if (off >= 0 && (size_t)off < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + off, c->errlen - (size_t)off, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
#define cfg_err(c, nd, ...) cfg_err_at((c), (nd)->line, (nd)->col, __VA_ARGS__)

/* "value" with escapes, cut at a character boundary when long. */
static const char *cfg_quote(char *buf, size_t size, const char *s)
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
#define Q(s) cfg_quote((char[112]){0}, 112, (s))

static const char *node_got(char *buf, size_t size, const struct node *n)
{
	if (n->type == NODE_SEQ)
		return "a sequence";
	if (n->type == NODE_MAP)
		return "a mapping";
	if (n->null)
		return "an empty value";
	return cfg_quote(buf, size, n->s);
}
#define GOT(n) node_got((char[112]){0}, 112, (n))

/* ---- document tree ---- */

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kids[i]);
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

static int mark_err(struct ctx *c, yaml_mark_t m, const char *what, const char *s)
{
	return cfg_err_at(c, (int)m.line + 1, (int)m.column + 1, what, s);
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

static int syntax_err(struct ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	int line = 1, col = 1;

	if (p->error == YAML_MEMORY_ERROR) {
		cfg_err_at(c, 1, 1, "out of memory");
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
			return cfg_err_at(c, line, col, "invalid input: %s (byte 0x%02x); expected UTF-8 text",
					  problem, (unsigned)p->problem_value & 0xffu);
		return cfg_err_at(c, line, col, "invalid input: %s; expected UTF-8 text", problem);
	}
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	if (char_at(buf, len, line, col) == '\t')
		return cfg_err_at(c, line, col, "YAML syntax error: %s (a tab; YAML indentation uses spaces only)",
				  problem);
	if (p->context)
		return cfg_err_at(c, line, col, "YAML syntax error: %s (%s that started at %d:%d)", problem,
				  p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	return cfg_err_at(c, line, col, "YAML syntax error: %s", problem);
}

static int scalar_node(struct ctx *c, const yaml_event_t *ev, struct node *n)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (len > CFG_MAX_SCALAR)
		return cfg_err(c, n, "value too long (%zu bytes, max %d)", len, CFG_MAX_SCALAR);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return cfg_err(c, n, "control character 0x%02x in a value; expected printable text", ch);
	}
	n->s = strndup(s, len);
	if (!n->s)
		return -ENOMEM;
	n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		(len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") ||
		 !strcmp(n->s, "Null") || !strcmp(n->s, "NULL"));
	return 0;
}

static int event_node(struct ctx *c, const yaml_event_t *ev, struct node *stack[], size_t *depth,
		      struct node **root)
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
		return cfg_err_at(c, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
				  "nesting too deep (more than %d levels)", CFG_MAX_DEPTH);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
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

static int yaml_to_tree(struct ctx *c, const char *buf, size_t len, struct node **root)
{
	struct node *stack[CFG_MAX_DEPTH];
	size_t depth = 0;
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0, rc = 0;
	bool done = false;

	*root = NULL;
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
			c->doc_line = (int)ev.start_mark.line + 1;
			c->doc_col = (int)ev.start_mark.column + 1;
			if (++docs > 1)
				rc = cfg_err_at(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
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
		node_free(*root);
		*root = NULL;
	}
	return rc;
}

/* ---- helpers ---- */

static void strv_free(struct config_strv *sv)
{
	if (sv->v)
		for (size_t i = 0; i < sv->n; i++)
			free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

static int strv_alloc(struct config_strv *sv, size_t n)
{
	sv->n = 0;
	sv->v = calloc(n + 1, sizeof(char *));
	return sv->v ? 0 : -ENOMEM;
}

static int cmp_idx(const void *a, const void *b, void *arg)
{
	char *const *s = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(s[x], s[y]);

	if (r)
		return r;
	return x < y ? -1 : x > y;
}

/* Earliest (in input order) repetition of a string: 1 with *dup and *first set,
 * 0 when all are unique. *sorted (optional) receives the indexes sorted by string. */
static int find_dup(char *const *s, size_t n, size_t *dup, size_t *first, size_t **sorted)
{
	size_t *idx = malloc((n ? n : 1) * sizeof(size_t)), best = SIZE_MAX, group = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(size_t), cmp_idx, (void *)s);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(s[idx[i]], s[idx[i - 1]])) {
			group = i;
		} else if (idx[i] < best) {
			best = idx[i];
			*first = idx[group];
		}
	}
	*dup = best;
	if (sorted)
		*sorted = idx;
	else
		free(idx);
	return best != SIZE_MAX;
}

/* Lexical normalisation of base/p (or p when absolute): no ".", "..", "//". */
static char *path_resolve(const char *base, const char *p)
{
	size_t len = strlen(base) + strlen(p) + 2, o = 0;
	char *tmp = malloc(len), *out = malloc(len), *save = NULL;

	if (!tmp || !out) {
		free(tmp);
		free(out);
		return NULL;
	}
	if (p[0] == '/')
		snprintf(tmp, len, "%s", p);
	else
		snprintf(tmp, len, "%s/%s", base, p);
	for (char *t = strtok_r(tmp, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, t, strlen(t));
		o += strlen(t);
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(tmp);
	return out;
}

/* Absolute directory of the file and absolute file path. */
static int file_location(const char *name, char **dir_out, char **path_out)
{
	char *copy = strdup(name), *slash, *dir, *real, *cwd = NULL;
	const char *file;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		dir = slash == copy ? "/" : copy;
		file = slash + 1;
	} else {
		dir = ".";
		file = copy;
	}
	real = realpath(dir, NULL);
	if (!real) {
		if (dir[0] != '/' && !(cwd = getcwd(NULL, 0))) {
			free(copy);
			return -errno;
		}
		real = path_resolve(cwd ? cwd : "/", dir);
		free(cwd);
	}
	*dir_out = real;
	*path_out = real ? path_resolve(real, file) : NULL;
	free(copy);
	if (!*path_out) {
		free(real);
		*dir_out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Fill vals[] from a mapping; refuse unknown and duplicate keys. */
static int map_keys(struct ctx *c, const struct node *map, const char *what,
		    const char *const keys[], size_t nkeys, const struct node *vals[])
{
	const struct node *seen[16] = { 0 };

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct node *k = map->kids[i];
		size_t j;

		if (k->type != NODE_SCALAR || k->null)
			return cfg_err(c, k, "expected a key name %s, got %s", what, GOT(k));
		for (j = 0; j < nkeys && strcmp(keys[j], k->s); j++)
			;
		if (j == nkeys) {
			char list[256];
			size_t o = 0;
			for (size_t x = 0; x < nkeys && o < sizeof(list); x++)
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", x ? ", " : "", keys[x]);
			return cfg_err(c, k, "unknown key %s %s; expected one of %s", Q(k->s), what, list);
		}
		if (seen[j])
			return cfg_err(c, k, "duplicate key %s %s (first at %d:%d)", Q(k->s), what,
				       seen[j]->line, seen[j]->col);
		seen[j] = k;
		vals[j] = map->kids[i + 1];
	}
	return 0;
}

static int want_scalar(struct ctx *c, const char *key, const char *what, const struct node *v)
{
	if (v->type != NODE_SCALAR || v->null)
		return cfg_err(c, v, "%s: expected %s, got %s", key, what, GOT(v));
	return 0;
}

static int want_seq(struct ctx *c, const char *key, const char *what, const struct node *v)
{
	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "%s: expected a sequence of %s, got %s", key, what, GOT(v));
	for (size_t i = 0; i < v->n; i++)
		if (v->kids[i]->type != NODE_SCALAR || v->kids[i]->null)
			return cfg_err(c, v->kids[i], "%s: expected %s, got %s", key, what, GOT(v->kids[i]));
	return 0;
}

static int dup_str(char **out, const char *s)
{
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_path(struct ctx *c, const char *key, const struct node *v, char **out)
{
	int rc = want_scalar(c, key, "a path", v);

	if (rc)
		return rc;
	*out = path_resolve(c->base, v->s);
	return *out ? 0 : -ENOMEM;
}

static int check_name(struct ctx *c, const char *key, const struct node *v)
{
	size_t len;
	int rc = want_scalar(c, key, "a name", v);

	if (rc)
		return rc;
	len = strlen(v->s);
	if (len > CFG_MAX_NAME)
		return cfg_err(c, v, "%s: too long (%zu characters, max %d)", key, len, CFG_MAX_NAME);
	if (strspn(v->s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
		return cfg_err(c, v, "%s: expected letters, digits, '.', '_' and '-' only, got %s", key, Q(v->s));
	if (!strcmp(v->s, ".") || !strcmp(v->s, ".."))
		return cfg_err(c, v, "%s: \".\" and \"..\" are not allowed as names", key);
	return 0;
}

/* Port of "1".."65535": 0 or -1. */
static int parse_port(const char *s)
{
	size_t len = strlen(s);
	long v;

	if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
		return -1;
	v = strtol(s, NULL, 10);
	return v >= 1 && v <= 65535 ? 0 : -1;
}

/* host or [v6] followed by end or :port; *v6 tells whether it was an IPv6 literal. */
static int parse_hostport(const char *s, size_t len, bool port_required, char *host, size_t hostsz,
			  bool *v6)
{
	const char *end = s + len, *h = s, *he, *rest;
	unsigned char addr[16];
	char port[8];

	*v6 = false;
	if (len && s[0] == '[') {
		he = memchr(s, ']', len);
		if (!he)
			return -1;
		h = s + 1;
		rest = he + 1;
		*v6 = true;
	} else {
		he = memchr(s, ':', len);
		rest = he ? he : end;
		he = rest;
	}
	if (he == h || (size_t)(he - h) >= hostsz)
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	if (*v6 ? inet_pton(AF_INET6, host, addr) != 1 :
	    strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(host))
		return -1;
	if (rest == end)
		return port_required ? -1 : 0;
	if (*rest != ':' || (size_t)(end - rest) > sizeof(port))
		return -1;
	memcpy(port, rest + 1, (size_t)(end - rest - 1));
	port[end - rest - 1] = '\0';
	return parse_port(port);
}

static int check_listen(struct ctx *c, const struct node *v)
{
	char host[64];
	bool v6;

	if (parse_hostport(v->s, strlen(v->s), true, host, sizeof(host), &v6))
		return cfg_err(c, v, "listen: expected \"host:port\" like \"0.0.0.0:80\" or \"[::]:80\" "
			       "(port 1..65535), got %s", Q(v->s));
	return 0;
}

static int check_directory(struct ctx *c, const struct node *v)
{
	const char *s = v->s, *auth;
	char host[256];
	size_t alen;
	bool https = !strncasecmp(s, "https://", 8), v6;
	unsigned char a[16];

	if (!https && strncasecmp(s, "http://", 7))
		return cfg_err(c, v, "directory: expected an https:// URL, got %s", Q(s));
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return cfg_err(c, v, "directory: expected a URL without spaces or non-ASCII characters, got %s",
				       Q(s));
	auth = s + (https ? 8 : 7);
	alen = strcspn(auth, "/?#");
	if (memchr(auth, '@', alen))
		return cfg_err(c, v, "directory: user names or passwords in the URL are not supported, got %s", Q(s));
	if (parse_hostport(auth, alen, false, host, sizeof(host), &v6))
		return cfg_err(c, v, "directory: expected a URL with a valid host and port, got %s", Q(s));
	if (!https && !(v6 ? (inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, &in6addr_loopback, 16)) :
			(!strcasecmp(host, "localhost") || (inet_pton(AF_INET, host, a) == 1 && a[0] == 127))))
		return cfg_err(c, v, "directory: expected an https:// URL (http:// is only allowed for "
			       "127.0.0.0/8, [::1] and localhost), got %s", Q(s));
	return 0;
}

static int check_contact(struct ctx *c, const struct node *v)
{
	if (strncasecmp(v->s, "mailto:", 7) || !strchr(v->s + 7, '@') || v->s[7] == '@' ||
	    strchr(v->s, ' '))
		return cfg_err(c, v, "contact: expected a \"mailto:user@example.org\" address, got %s", Q(v->s));
	return 0;
}

/* Lower-cases s in place and checks it is a DNS name we can validate with http-01. */
static int check_domain(struct ctx *c, const struct node *v, char *s)
{
	size_t len = strlen(s), label = 0;
	const char *lbl = s;

	for (char *p = s; *p; p++) {
		if ((unsigned char)*p >= 0x80)
			return cfg_err(c, v, "domains: %s: expected an ASCII name; write internationalised "
				       "names in their xn-- (punycode) form", Q(s));
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	if (!strncmp(s, "*.", 2))
		return cfg_err(c, v, "domains: %s: wildcard names need the dns-01 challenge, which acmed "
			       "does not do yet", Q(s));
	if (len > 253)
		return cfg_err(c, v, "domains: name too long (%zu characters, max 253)", len);
	if (len && s[len - 1] == '.')
		return cfg_err(c, v, "domains: %s: expected a name without a trailing dot", Q(s));
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || *lbl == '-' || p[-1] == '-')
				return cfg_err(c, v, "domains: %s: expected labels of 1 to 63 letters, digits "
					       "or '-', not starting or ending with '-'", Q(s));
			if (*p == '\0')
				break;
			lbl = p + 1;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return cfg_err(c, v, "domains: %s: expected a DNS name (letters, digits, '-' and '.'), "
				       "got the character '%c'", Q(s), *p);
		label++;
	}
	if (strspn(lbl, "0123456789") == strlen(lbl))
		return cfg_err(c, v, "domains: %s: expected a DNS name; IP addresses are not supported", Q(s));
	return 0;
}

static int check_unit(struct ctx *c, const struct node *v)
{
	static const char *const types[] = { "service", "socket", "target", "mount", "automount",
		"swap", "path", "timer", "slice", "scope", "device" };
	const char *s = v->s, *dot = strrchr(s, '.');
	size_t len = strlen(s);
	bool ok = dot && dot != s && len <= 255 &&
		strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.\\@-") == len;

	for (size_t i = 0; ok && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot + 1, types[i]))
			return 0;
	return cfg_err(c, v, "reload: expected a systemd unit name like \"nginx.service\", got %s", Q(s));
}

/* A sequence of scalars into sv, each checked by fn (which may rewrite its copy). */
static int get_strv(struct ctx *c, const char *key, const char *what, const struct node *v,
		    struct config_strv *sv, int (*fn)(struct ctx *, const struct node *, char *))
{
	size_t dup, first;
	int rc = want_seq(c, key, what, v);

	if (rc || (rc = strv_alloc(sv, v->n)))
		return rc;
	for (size_t i = 0; i < v->n; i++) {
		if ((rc = dup_str(&sv->v[i], v->kids[i]->s)))
			return rc;
		sv->n++;
		if (fn && (rc = fn(c, v->kids[i], sv->v[i])))
			return rc;
	}
	rc = find_dup(sv->v, sv->n, &dup, &first, NULL);
	if (rc == 1)
		return cfg_err(c, v->kids[dup], "%s: duplicate entry %s (first at %d:%d)", key, Q(sv->v[dup]),
			       v->kids[first]->line, v->kids[first]->col);
	return rc;
}

static int fn_listen(struct ctx *c, const struct node *v, char *s) { (void)s; return check_listen(c, v); }
static int fn_contact(struct ctx *c, const struct node *v, char *s) { (void)s; return check_contact(c, v); }
static int fn_domain(struct ctx *c, const struct node *v, char *s) { return check_domain(c, v, s); }
static int fn_unit(struct ctx *c, const struct node *v, char *s) { (void)s; return check_unit(c, v); }

/* ---- the schema ---- */

enum { CA_NAME, CA_DIRECTORY, CA_CONTACT, CA_BUNDLE, CA_MAX_PARALLEL, CA_TIMEOUT, CA_NKEYS };
static const char *const ca_keys[] = { "name", "directory", "contact", "ca_bundle", "max_parallel",
	"timeout" };

static int parse_ca(struct ctx *c, const struct node *m, struct config_ca *ca, const struct node **name)
{
	const struct node *v[CA_NKEYS];
	int rc;

	ca->max_parallel = 4;
	ca->timeout = 60;
	ca->line = m->line;
	if (m->type != NODE_MAP)
		return cfg_err(c, m, "cas: expected a mapping with name and directory, got %s", GOT(m));
	if ((rc = map_keys(c, m, "in a CA", ca_keys, CA_NKEYS, v)))
		return rc;
	if (!v[CA_NAME])
		return cfg_err(c, m, "CA: missing required key \"name\"");
	*name = v[CA_NAME];
	if ((rc = check_name(c, "name", v[CA_NAME])) || (rc = dup_str(&ca->name, v[CA_NAME]->s)))
		return rc;
	if (!v[CA_DIRECTORY])
		return cfg_err(c, m, "CA %s: missing required key \"directory\"", Q(v[CA_NAME]->s));
	if ((rc = want_scalar(c, "directory", "an https:// URL", v[CA_DIRECTORY])) ||
	    (rc = check_directory(c, v[CA_DIRECTORY])) || (rc = dup_str(&ca->directory, v[CA_DIRECTORY]->s)))
		return rc;
	if (v[CA_CONTACT])
		rc = get_strv(c, "contact", "\"mailto:\" addresses", v[CA_CONTACT], &ca->contact, fn_contact);
	else
		rc = strv_alloc(&ca->contact, 0);
	if (rc)
		return rc;
	if (v[CA_BUNDLE] && (rc = get_path(c, "ca_bundle", v[CA_BUNDLE], &ca->ca_bundle)))
		return rc;
	if (v[CA_MAX_PARALLEL]) {
		const struct node *mp = v[CA_MAX_PARALLEL];
		size_t len = mp->type == NODE_SCALAR ? strlen(mp->s) : 0;
		if (mp->null || !len || len > 4 || strspn(mp->s, "0123456789") != len ||
		    atoi(mp->s) < 1 || atoi(mp->s) > 1000)
			return cfg_err(c, mp, "max_parallel: expected an integer from 1 to 1000, got %s", GOT(mp));
		ca->max_parallel = atoi(mp->s);
	}
	if (v[CA_TIMEOUT]) {
		const struct node *t = v[CA_TIMEOUT];
		if (t->type != NODE_SCALAR || t->null || config_parse_duration(t->s, &ca->timeout) ||
		    ca->timeout > 3600)
			return cfg_err(c, t, "timeout: expected a duration from 1s to 1h like 30s or 2m, got %s",
				       GOT(t));
	}
	return 0;
}

enum { C_NAME, C_CA, C_DOMAINS, C_KEY_TYPE, C_CHALLENGE, C_RENEW_BEFORE, C_OUTPUT_DIR, C_RELOAD,
       C_EXEC, C_NKEYS };
static const char *const cert_keys[] = { "name", "ca", "domains", "key_type", "challenge",
	"renew_before", "output_dir", "reload", "exec" };

static int parse_cert(struct ctx *c, const struct node *m, struct config_cert *ct, struct cert_aux *aux)
{
	const struct node *v[C_NKEYS];
	int rc;

	ct->key_type = KEY_ECDSA_P256;
	ct->line = m->line;
	aux->map = m;
	if (m->type != NODE_MAP)
		return cfg_err(c, m, "certificates: expected a mapping with name and domains, got %s", GOT(m));
	if ((rc = map_keys(c, m, "in a certificate", cert_keys, C_NKEYS, v)))
		return rc;
	if (!v[C_NAME])
		return cfg_err(c, m, "certificate: missing required key \"name\"");
	if ((rc = check_name(c, "name", v[C_NAME])) || (rc = dup_str(&ct->name, v[C_NAME]->s)))
		return rc;
	if (!v[C_DOMAINS])
		return cfg_err(c, m, "certificate %s: missing required key \"domains\"", Q(v[C_NAME]->s));
	aux->name = v[C_NAME];
	aux->ca = v[C_CA];
	aux->out = v[C_OUTPUT_DIR];
	if (v[C_CA] && (rc = check_name(c, "ca", v[C_CA])))
		return rc;
	if ((rc = get_strv(c, "domains", "DNS names", v[C_DOMAINS], &ct->domains, fn_domain)))
		return rc;
	if (ct->domains.n == 0)
		return cfg_err(c, v[C_DOMAINS], "domains: expected at least one DNS name, got an empty list");
	if (v[C_KEY_TYPE] && (config_key_type_parse(v[C_KEY_TYPE]->s, &ct->key_type) ||
			      v[C_KEY_TYPE]->type != NODE_SCALAR))
		return cfg_err(c, v[C_KEY_TYPE], "key_type: expected one of ecdsa-p256, ecdsa-p384, rsa-2048, "
			       "rsa-3072, rsa-4096, got %s", GOT(v[C_KEY_TYPE]));
	if (v[C_CHALLENGE] && (v[C_CHALLENGE]->type != NODE_SCALAR || strcmp(v[C_CHALLENGE]->s, "http-01")))
		return cfg_err(c, v[C_CHALLENGE], "challenge: expected \"http-01\" (the only challenge acmed "
			       "supports for now), got %s", GOT(v[C_CHALLENGE]));
	if ((rc = dup_str(&ct->challenge, "http-01")))
		return rc;
	if (v[C_RENEW_BEFORE] && (v[C_RENEW_BEFORE]->type != NODE_SCALAR ||
				  config_parse_duration(v[C_RENEW_BEFORE]->s, &ct->renew_before)))
		return cfg_err(c, v[C_RENEW_BEFORE], "renew_before: expected a duration like 90s, 15m, 12h "
			       "or 30d (a positive whole number and one unit), got %s", GOT(v[C_RENEW_BEFORE]));
	if (v[C_OUTPUT_DIR]) {
		rc = get_path(c, "output_dir", v[C_OUTPUT_DIR], &ct->output_dir);
	} else {
		char rel[CFG_MAX_NAME + 8];
		snprintf(rel, sizeof(rel), "live/%s", ct->name);
		ct->output_dir = path_resolve(c->cfg->state_dir, rel);
		rc = ct->output_dir ? 0 : -ENOMEM;
	}
	if (rc)
		return rc;
	if (v[C_RELOAD])
		rc = get_strv(c, "reload", "systemd unit names", v[C_RELOAD], &ct->reload, fn_unit);
	else
		rc = strv_alloc(&ct->reload, 0);
	if (rc)
		return rc;
	if (!v[C_EXEC])
		return strv_alloc(&ct->exec, 0);
	if (v[C_EXEC]->type == NODE_SCALAR && !v[C_EXEC]->null)
		return cfg_err(c, v[C_EXEC], "exec: expected a list (argv), e.g. exec: [/usr/local/sbin/push-cert, "
			       "--quiet]; acmed runs no shell, so it does not split a string, got %s", GOT(v[C_EXEC]));
	if (v[C_EXEC]->type != NODE_SEQ || v[C_EXEC]->n == 0)
		return cfg_err(c, v[C_EXEC], "exec: expected a non-empty list (argv), got %s",
			       v[C_EXEC]->type == NODE_SEQ ? "an empty list" : GOT(v[C_EXEC]));
	if ((rc = want_seq(c, "exec", "a string argument", v[C_EXEC])))
		return rc;
	if (!v[C_EXEC]->kids[0]->s[0])
		return cfg_err(c, v[C_EXEC]->kids[0], "exec: expected the program to run first, got \"\"");
	if ((rc = strv_alloc(&ct->exec, v[C_EXEC]->n)))
		return rc;
	for (size_t i = 0; i < v[C_EXEC]->n; i++, ct->exec.n++)
		if ((rc = dup_str(&ct->exec.v[i], v[C_EXEC]->kids[i]->s)))
			return rc;
	return 0;
}

static int parse_cas(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	char **names;
	size_t dup, first;
	int rc = 0;

	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "cas: expected a sequence of CAs, got %s", GOT(v));
	if (v->n == 0)
		return cfg_err(c, v, "cas: expected at least one CA, got an empty list");
	cfg->cas = calloc(v->n, sizeof(*cfg->cas));
	c->ca_names = calloc(v->n, sizeof(*c->ca_names));
	if (!cfg->cas || !c->ca_names)
		return -ENOMEM;
	cfg->ncas = v->n;
	for (size_t i = 0; i < v->n; i++)
		if ((rc = parse_ca(c, v->kids[i], &cfg->cas[i], &c->ca_names[i])))
			return rc;
	if (!(names = malloc(v->n * sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		names[i] = cfg->cas[i].name;
	rc = find_dup(names, v->n, &dup, &first, NULL);
	free(names);
	if (rc == 1)
		return cfg_err(c, c->ca_names[dup], "name: duplicate CA name %s (first at line %d)",
			       Q(cfg->cas[dup].name), c->ca_names[first]->line);
	return rc;
}

static int find_ca(const struct config *cfg, const char *name, size_t *idx)
{
	for (size_t i = 0; i < cfg->ncas; i++) {
		if (!strcmp(cfg->cas[i].name, name)) {
			*idx = i;
			return 0;
		}
	}
	return -ENOENT;
}

static int parse_certs(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	char **names;
	size_t dup, first, n;
	int rc = 0;

	if (v->null)
		return 0;
	if (v->type != NODE_SEQ)
		return cfg_err(c, v, "certificates: expected a sequence of certificates, got %s", GOT(v));
	n = v->n;
	if (n > CFG_MAX_CERTS)
		return cfg_err(c, v->kids[CFG_MAX_CERTS], "certificates: too many (max %d)", CFG_MAX_CERTS);
	if (n == 0)
		return 0;
	cfg->certs = calloc(n, sizeof(*cfg->certs));
	c->certs = calloc(n, sizeof(*c->certs));
	if (!cfg->certs || !c->certs)
		return -ENOMEM;
	cfg->ncerts = n;
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_cert(c, v->kids[i], &cfg->certs[i], &c->certs[i])))
			return rc;
	if (!(names = malloc(n * sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		names[i] = cfg->certs[i].name;
	rc = find_dup(names, n, &dup, &first, NULL);
	if (rc == 1)
		rc = cfg_err(c, c->certs[dup].name, "name: duplicate certificate name %s (first at line %d)",
			     Q(names[dup]), c->certs[first].name->line);
	for (size_t i = 0; rc == 0 && i < n; i++)
		names[i] = cfg->certs[i].output_dir;
	if (rc == 0 && (rc = find_dup(names, n, &dup, &first, NULL)) == 1) {
		size_t at = c->certs[dup].out ? dup : first, other = at == dup ? first : dup;
		rc = cfg_err(c, c->certs[at].out ? c->certs[at].out : c->certs[at].map, "output_dir: %s is also the output directory of certificate %s",
			     Q(names[at]), Q(cfg->certs[other].name));
	}
	free(names);
	return rc;
}

static int resolve_cas(struct ctx *c)
{
	struct config *cfg = c->cfg;

	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct node *ca = c->certs[i].ca;
		if (!ca && cfg->ncas > 1)
			return cfg_err(c, c->certs[i].map, "certificate %s: missing key \"ca\" (required when more "
				       "than one CA is defined)", Q(cfg->certs[i].name));
		if (ca && find_ca(cfg, ca->s, &cfg->certs[i].ca))
			return cfg_err(c, ca, "ca: expected the name of a CA defined under cas, got %s", Q(ca->s));
	}
	return 0;
}

enum { T_STATE_DIR, T_RUNTIME_DIR, T_LISTEN, T_CAS, T_CERTIFICATES, T_NKEYS };
static const char *const top_keys[] = { "state_dir", "runtime_dir", "listen", "cas", "certificates" };

static int parse_top(struct ctx *c, const struct node *root)
{
	struct config *cfg = c->cfg;
	const struct node *v[T_NKEYS];
	int rc;

	if (root->type == NODE_SCALAR && root->null)
		return cfg_err_at(c, c->doc_line, c->doc_col, "the document is empty; expected a mapping with at "
				  "least \"cas\"");
	if (root->type != NODE_MAP)
		return cfg_err(c, root, "expected a mapping of settings (state_dir, cas, certificates, ...) at "
			       "the top level, got %s", GOT(root));
	if ((rc = map_keys(c, root, "at the top level", top_keys, T_NKEYS, v)))
		return rc;
	if (!v[T_CAS])
		return cfg_err(c, root, "missing required key \"cas\" (the ACME CAs to use)");
	rc = v[T_STATE_DIR] ? get_path(c, "state_dir", v[T_STATE_DIR], &cfg->state_dir) :
		dup_str(&cfg->state_dir, "/var/lib/acmed");
	if (rc)
		return rc;
	rc = v[T_RUNTIME_DIR] ? get_path(c, "runtime_dir", v[T_RUNTIME_DIR], &cfg->runtime_dir) :
		dup_str(&cfg->runtime_dir, "/run/acmed");
	if (rc)
		return rc;
	if (v[T_LISTEN]) {
		if ((rc = get_strv(c, "listen", "\"host:port\" addresses", v[T_LISTEN], &cfg->listen, fn_listen)))
			return rc;
		if (cfg->listen.n == 0)
			return cfg_err(c, v[T_LISTEN], "listen: expected at least one \"host:port\" address, got an "
				       "empty list");
	} else if ((rc = strv_alloc(&cfg->listen, 2)) == 0) {
		if ((rc = dup_str(&cfg->listen.v[0], "[::]:80")) == 0) {
			cfg->listen.n = 1;
			if ((rc = dup_str(&cfg->listen.v[1], "0.0.0.0:80")) == 0)
				cfg->listen.n = 2;
		}
	}
	if (rc || (rc = parse_cas(c, v[T_CAS])))
		return rc;
	if (v[T_CERTIFICATES] && (rc = parse_certs(c, v[T_CERTIFICATES])))
		return rc;
	return resolve_cas(c);
}

/* ---- public API ---- */

int config_load_buffer(const char *name, const char *buf, size_t len,
		       struct config **out, char *err, size_t errlen)
{
	struct ctx c = { .name = name ? name : "<config>", .err = err, .errlen = errlen };
	struct node *root = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!out || (!buf && len))
		return -EINVAL;
	if (len > CFG_MAX_FILE) {
		if (err && errlen)
			snprintf(err, errlen, "%s: file too large (more than %d bytes)", c.name, CFG_MAX_FILE);
		return -EINVAL;
	}
	c.cfg = calloc(1, sizeof(*c.cfg));
	if (!c.cfg)
		return -ENOMEM;
	rc = file_location(c.name, &c.base, &c.cfg->path);
	if (rc == 0)
		rc = yaml_to_tree(&c, buf ? buf : "", len, &root);
	if (rc == 0 && !root)
		rc = cfg_err_at(&c, 1, 1, "the file is empty; expected a mapping with at least \"cas\"");
	if (rc == 0)
		rc = parse_top(&c, root);
	if (rc == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "%s: out of memory", c.name);
	else if (rc && err && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", c.name, strerror(-rc));
	node_free(root);
	free(c.base);
	free(c.ca_names);
	free(c.certs);
	if (rc) {
		config_free(c.cfg);
		return rc;
	}
	*out = c.cfg;
	return 0;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	char *buf;
	size_t len = 0;
	int fd, rc = 0;

	if (out)
		*out = NULL;
	if (!path || !out)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	buf = malloc(CFG_MAX_FILE + 1);
	while (buf && len <= CFG_MAX_FILE) {
		ssize_t r = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			if (err && errlen)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!buf)
		rc = -ENOMEM;
	if (rc == 0)
		rc = config_load_buffer(path, buf, len, out, err, errlen);
	free(buf);
	return rc;
}

static int strv_copy(struct config_strv *dst, const struct config_strv *src)
{
	if (strv_alloc(dst, src->n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = strdup(src->v[i]);
		if (!dst->v[i])
			return -ENOMEM;
		dst->n++;
	}
	return 0;
}

void config_cert_clear(struct config_cert *ct)
{
	free(ct->name);
	strv_free(&ct->domains);
	free(ct->challenge);
	free(ct->output_dir);
	strv_free(&ct->reload);
	strv_free(&ct->exec);
	memset(ct, 0, sizeof(*ct));
}

int config_cert_copy(struct config_cert *dst, const struct config_cert *src)
{
	*dst = *src;
	dst->name = dst->challenge = dst->output_dir = NULL;
	memset(&dst->domains, 0, sizeof(dst->domains));
	memset(&dst->reload, 0, sizeof(dst->reload));
	memset(&dst->exec, 0, sizeof(dst->exec));
	if (!(dst->name = strdup(src->name)) ||
	    (src->challenge && !(dst->challenge = strdup(src->challenge))) ||
	    !(dst->output_dir = strdup(src->output_dir)) ||
	    strv_copy(&dst->domains, &src->domains) < 0 || strv_copy(&dst->reload, &src->reload) < 0 ||
	    strv_copy(&dst->exec, &src->exec) < 0) {
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
		strv_free(&cfg->cas[i].contact);
		free(cfg->cas[i].ca_bundle);
	}
	for (size_t i = 0; cfg->certs && i < cfg->ncerts; i++) {
		struct config_cert *ct = &cfg->certs[i];
		free(ct->name);
		strv_free(&ct->domains);
		free(ct->challenge);
		free(ct->output_dir);
		strv_free(&ct->reload);
		strv_free(&ct->exec);
	}
	free(cfg->cas);
	free(cfg->certs);
	strv_free(&cfg->listen);
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
