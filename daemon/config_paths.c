/* config_paths.c - where certificates' files go: one directory reached two ways, or one inside state_dir's private parts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_paths.h"

char *config_paths_resolve(const char *path)
{
	char head[PATH_MAX], real[PATH_MAX], *out = NULL;
	size_t cut;

	if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head))
		return strdup(path);
	/* The longest prefix that exists, resolved; the rest as written. */
	for (;;) {
		if (realpath(head, real)) {
			cut = strlen(head);
			if (asprintf(&out, "%s%s", strcmp(real, "/") == 0 && path[cut] ? "" : real,
				     path + cut) < 0)
				out = NULL;
			return out;
		}
		char *slash = strrchr(head, '/');
		if (!slash || slash == head) {
			return strdup(path);
		}
		*slash = '\0';
	}
}

static int is_under(const char *dir, const char *top)
{
	size_t n = strlen(top);

	return strncmp(dir, top, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

struct entry {
	size_t i;
	char *res;
	int have;
	dev_t dev;
	ino_t ino;
};

static int by_res(const void *x, const void *y)
{
	const struct entry *p = x, *q = y;
	int c = strcmp(p->res, q->res);

	return c ? c : (p->i > q->i) - (p->i < q->i);
}

static int by_inode(const void *x, const void *y)
{
	const struct entry *p = x, *q = y;

	if (p->have != q->have)
		return p->have - q->have;
	if (p->dev != q->dev)
		return p->dev < q->dev ? -1 : 1;
	if (p->ino != q->ino)
		return p->ino < q->ino ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

/* The first pair (lowest later index) of neighbours that cmp calls equal. */
static void pick(struct entry *e, size_t n, int (*same)(const struct entry *, const struct entry *),
		 size_t *a, size_t *b, int *found)
{
	for (size_t k = 1; k < n; k++) {
		size_t lo = e[k - 1].i < e[k].i ? e[k - 1].i : e[k].i;
		size_t hi = e[k - 1].i < e[k].i ? e[k].i : e[k - 1].i;

		if (!same(&e[k - 1], &e[k]) || (*found && hi >= *b))
			continue;
		*a = lo;
		*b = hi;
		*found = 1;
	}
}

static int same_res(const struct entry *p, const struct entry *q)
{
	return strcmp(p->res, q->res) == 0;
}

static int same_inode(const struct entry *p, const struct entry *q)
{
	return p->have && q->have && p->dev == q->dev && p->ino == q->ino;
}

int config_paths_same(const char *const *dirs, size_t n, size_t *a, size_t *b)
{
	struct entry *e = calloc(n ? n : 1, sizeof(*e));
	int found = 0, ok = e != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		struct stat st;

		e[i].i = i;
		e[i].res = config_paths_resolve(dirs[i]);
		ok = e[i].res != NULL;
		if (ok && stat(dirs[i], &st) == 0) {
			e[i].have = 1;
			e[i].dev = st.st_dev;
			e[i].ino = st.st_ino;
		}
	}
	/* Sorted, so 10 000 certificates cost n log n, not n squared. */
	if (ok) {
		qsort(e, n, sizeof(*e), by_res);
		pick(e, n, same_res, a, b, &found);
		qsort(e, n, sizeof(*e), by_inode);
		pick(e, n, same_inode, a, b, &found);
	}
	for (size_t i = 0; e && i < n; i++)
		free(e[i].res);
	free(e);
	return found;
}

int config_paths_private(const char *dir, const char *state_dir, const char **part)
{
	static const char *const subs[] = { "accounts", "certs", "cas" };
	char *d = config_paths_resolve(dir), *s = config_paths_resolve(state_dir), sub[PATH_MAX];
	int hit = 0;

	if (!d || !s)
		goto out;
	if (strcmp(d, s) == 0) {
		*part = "state_dir itself";
		hit = 1;
		goto out;
	}
	snprintf(sub, sizeof(sub), "%s/live", s);
	if (strcmp(d, sub) == 0) {
		*part = "state_dir/live, where each certificate has its own directory";
		hit = 1;
		goto out;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", s, subs[i]);
		if (is_under(d, sub)) {
			*part = i == 0 ? "state_dir/accounts (account keys)" :
				i == 1 ? "state_dir/certs (job state and order keys)" :
					 "state_dir/cas (CA state)";
			hit = 1;
			goto out;
		}
	}
out:
	free(d);
	free(s);
	return hit;
}
