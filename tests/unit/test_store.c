/* test_store.c - unit tests for store.c on real files: atomic writes, modes, bundle generations, readers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "store.h"

/* ---- helpers ---- */

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/acmed-test-store-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static int setup_dir(void **state)
{
	*state = tmpdir_new();
	return 0;
}

static int teardown_dir(void **state)
{
	rm_rf(*state);
	free(*state);
	umask(022);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of dir joined by ','. */
static void list_dir(const char *dir, char *out, size_t size)
{
	char *names[64];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		assert_true(n < 64);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, names[i], size - strlen(out) - 1);
		free(names[i]);
	}
}

static void assert_listing(const char *dir, const char *want)
{
	char got[2048];

	list_dir(dir, got, sizeof(got));
	assert_string_equal(got, want);
}

static mode_t mode_of(const char *dir, const char *name)
{
	char *p = store_path(dir, name);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return st.st_mode & 07777;
}

static void assert_link(const char *dir, const char *name, const char *target)
{
	char *p = store_path(dir, name);
	char buf[PATH_MAX];
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);

	free(p);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, target);
}

static void assert_content(const char *dir, const char *name, const char *want)
{
	char *p = store_path(dir, name), *data = NULL;
	size_t len = 0;

	assert_int_equal(store_read_file(p, &data, &len, 1 << 20), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(data, want);
	free(data);
	free(p);
}

static void put_file(const char *dir, const char *name, const char *content, mode_t mode)
{
	char *p = store_path(dir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

/* A self-describing record "<kind> <id> <len>\n" padded with 'x' to len bytes. */
static size_t make_rec(char *buf, size_t size, const char *kind, int id)
{
	size_t len = 64 + (size_t)(id * 37) % 3000;
	int n;

	assert_true(len < size);
	n = snprintf(buf, size, "%s %d %zu\n", kind, id, len);
	memset(buf + n, 'x', len - (size_t)n);
	buf[len - 1] = '\n';
	buf[len] = '\0';
	return len;
}

/* The id of a complete record of this kind, or -1 when torn or foreign. */
static int parse_rec(const char *buf, size_t len, const char *kind)
{
	char k[16];
	int id;
	size_t want;
	int n = 0;

	if (sscanf(buf, "%15s %d %zu\n%n", k, &id, &want, &n) != 3 || n == 0)
		return -1;
	if (strcmp(k, kind) != 0 || want != len || buf[len - 1] != '\n')
		return -1;
	for (size_t i = (size_t)n; i < len - 1; i++)
		if (buf[i] != 'x')
			return -1;
	return id;
}

struct recs {
	char key[4096], cert[4096], chain[4096], full[4096];
	struct store_bundle b;
};

static void make_bundle(struct recs *r, int id)
{
	r->b.key_pem = r->key;
	r->b.key_len = make_rec(r->key, sizeof(r->key), "KEY", id);
	r->b.cert_pem = r->cert;
	r->b.cert_len = make_rec(r->cert, sizeof(r->cert), "CERT", id);
	r->b.chain_pem = r->chain;
	r->b.chain_len = make_rec(r->chain, sizeof(r->chain), "CHAIN", id);
	r->b.fullchain_pem = r->full;
	r->b.fullchain_len = make_rec(r->full, sizeof(r->full), "FULL", id);
}

static void assert_live(const char *out, int id)
{
	char *key = NULL, *full = NULL;
	size_t kl = 0, fl = 0;

	assert_int_equal(store_read_live(out, &key, &kl, &full, &fl), 0);
	assert_int_equal(parse_rec(key, kl, "KEY"), id);
	assert_int_equal(parse_rec(full, fl, "FULL"), id);
	free(key);
	free(full);
}

static void assert_bundle_files(const char *out, const char *gen, const struct recs *r)
{
	char *g = store_path(out, gen);

	assert_content(g, "privkey.pem", r->key);
	assert_content(g, "cert.pem", r->cert);
	assert_content(g, "chain.pem", r->chain);
	assert_content(g, "fullchain.pem", r->full);
	assert_int_equal(mode_of(g, "privkey.pem"), 0600);
	assert_int_equal(mode_of(g, "cert.pem"), 0644);
	assert_int_equal(mode_of(g, "chain.pem"), 0644);
	assert_int_equal(mode_of(g, "fullchain.pem"), 0644);
	assert_int_equal(mode_of(out, gen), 0755);
	/* Through the top-level links too. */
	assert_content(out, "privkey.pem", r->key);
	assert_content(out, "cert.pem", r->cert);
	assert_content(out, "chain.pem", r->chain);
	assert_content(out, "fullchain.pem", r->full);
	free(g);
}

#define LAYOUT_TAIL "cert.pem,chain.pem,current,fullchain.pem,privkey.pem"

/* ---- store_path ---- */

static void test_path(void **state)
{
	static const char *const cases[][3] = {
		{ "a", "b", "a/b" },         { "a/", "b", "a/b" },
		{ "a//", "/b", "a/b" },      { "/", "b", "/b" },
		{ "//", "b", "/b" },         { "/x/y", "z/w", "/x/y/z/w" },
		{ "", "b", "b" },            { "a", "", "a/" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = store_path(cases[i][0], cases[i][1]);

		assert_non_null(p);
		assert_string_equal(p, cases[i][2]);
		free(p);
	}
	assert_null(store_path(NULL, "b"));
}

/* ---- store_mkdir_p ---- */

static void test_mkdir_p(void **state)
{
	const char *dir = *state;
	char *deep = store_path(dir, "a//b/c/"), *p, *f;
	struct stat st;

	umask(077);
	assert_int_equal(store_mkdir_p(deep, 0755), 0);
	assert_int_equal(mode_of(dir, "a"), 0755); /* exactly mode despite the umask */
	assert_int_equal(mode_of(dir, "a/b/c"), 0755);
	/* Existing directories are left alone. */
	p = store_path(dir, "a/b");
	assert_int_equal(chmod(p, 0711), 0);
	assert_int_equal(store_mkdir_p(deep, 0755), 0);
	assert_int_equal(mode_of(dir, "a/b"), 0711);
	free(p);
	umask(0);
	p = store_path(dir, "s/t");
	assert_int_equal(store_mkdir_p(p, 0700), 0);
	assert_int_equal(mode_of(dir, "s"), 0700);
	assert_int_equal(mode_of(dir, "s/t"), 0700);
	free(p);
	/* A regular file in the way. */
	put_file(dir, "file", "x", 0644);
	f = store_path(dir, "file/sub");
	assert_int_equal(store_mkdir_p(f, 0755), -ENOTDIR);
	assert_int_equal(lstat(f, &st), -1);
	free(f);
	f = store_path(dir, "file");
	assert_int_equal(store_mkdir_p(f, 0755), -ENOTDIR);
	free(f);
	assert_int_equal(store_mkdir_p("", 0755), -EINVAL);
	free(deep);
}

/* ---- store_write_atomic ---- */

static void test_write_atomic_modes(void **state)
{
	const char *dir = *state;
	char *key = store_path(dir, "key.pem"), *pub = store_path(dir, "pub.pem");

	umask(0);
	assert_int_equal(store_write_atomic(key, "secret\n", 7, 0600), 0);
	assert_int_equal(mode_of(dir, "key.pem"), 0600);
	assert_content(dir, "key.pem", "secret\n");
	umask(077);
	assert_int_equal(store_write_atomic(pub, "public\n", 7, 0644), 0);
	assert_int_equal(mode_of(dir, "pub.pem"), 0644); /* not narrowed by the umask */
	assert_int_equal(store_write_atomic(key, "secret2\n", 8, 0600), 0);
	assert_int_equal(mode_of(dir, "key.pem"), 0600);
	assert_content(dir, "key.pem", "secret2\n");
	/* A file that existed with another mode gets exactly the new one. */
	assert_int_equal(chmod(key, 0666), 0);
	umask(0);
	assert_int_equal(store_write_atomic(key, "secret3\n", 8, 0600), 0);
	assert_int_equal(mode_of(dir, "key.pem"), 0600);
	assert_int_equal(chmod(pub, 0600), 0);
	assert_int_equal(store_write_atomic(pub, "", 0, 0644), 0);
	assert_int_equal(mode_of(dir, "pub.pem"), 0644);
	assert_content(dir, "pub.pem", "");
	/* No temporary files left behind. */
	assert_listing(dir, "key.pem,pub.pem");
	free(key);
	free(pub);
}

static void test_write_atomic_failures(void **state)
{
	const char *dir = *state;
	char *sub = store_path(dir, "d"), *inner = store_path(dir, "d/x"),
	     *missing = store_path(dir, "nope/f"), *big = store_path(dir, "big");
	struct rlimit old, lim;
	char buf[8192];

	/* The target is a non-empty directory: rename fails. */
	assert_int_equal(mkdir(sub, 0755), 0);
	put_file(dir, "d/x", "x", 0644);
	assert_true(store_write_atomic(sub, "data", 4, 0600) < 0);
	assert_listing(dir, "d");
	assert_listing(sub, "x");
	/* Parent missing. */
	assert_int_equal(store_write_atomic(missing, "data", 4, 0600), -ENOENT);
	assert_listing(dir, "d");
	/* The write itself fails (file size limit): the old content stays. */
	assert_int_equal(store_write_atomic(big, "old\n", 4, 0644), 0);
	memset(buf, 'b', sizeof(buf));
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1024;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(store_write_atomic(big, buf, sizeof(buf), 0644), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_content(dir, "big", "old\n");
	assert_listing(dir, "big,d");
	/* Not a file name. */
	assert_int_equal(store_write_atomic("/tmp/", "x", 1, 0600), -EINVAL);
	free(sub);
	free(inner);
	free(missing);
	free(big);
}

/* ---- store_read_file ---- */

static void test_read_file(void **state)
{
	const char *dir = *state;
	char *p = store_path(dir, "f"), *nx = store_path(dir, "nx"), *data = (char *)1;
	size_t len = 99;

	assert_int_equal(store_read_file(nx, &data, &len, 100), -ENOENT);
	assert_null(data);
	assert_int_equal(store_write_atomic(p, "0123456789", 10, 0644), 0);
	assert_int_equal(store_read_file(p, &data, &len, 10), 0);
	assert_int_equal(len, 10);
	assert_int_equal(data[10], '\0');
	assert_memory_equal(data, "0123456789", 10);
	free(data);
	assert_int_equal(store_read_file(p, &data, &len, 9), -EFBIG);
	assert_null(data);
	assert_int_equal(store_write_atomic(p, "", 0, 0644), 0);
	assert_int_equal(store_read_file(p, &data, &len, 9), 0);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	free(data);
	assert_int_equal(store_read_file(dir, &data, &len, 9), -EISDIR);
	free(p);
	free(nx);
}

/* ---- store_install_bundle / store_read_live ---- */

/* key_group: privkey.pem 0640 with that group, the others unchanged; a group the
 * process may not give files to fails the install and leaves nothing behind. */
static void test_install_key_group(void **state)
{
	const char *dir = *state;
	char *out = store_path(dir, "live/grp"), *g;
	struct recs *r = calloc(1, sizeof(*r));
	gid_t other = getegid() == 0 ? 65534 : getegid();
	struct stat st;

	assert_non_null(r);
	umask(077);
	make_bundle(r, 1);
	r->b.key_group_set = 1;
	r->b.key_gid = other;
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	g = store_path(out, ".gen-1");
	assert_int_equal(mode_of(g, "privkey.pem"), 0640);
	assert_int_equal(mode_of(g, "cert.pem"), 0644);
	assert_int_equal(mode_of(g, "fullchain.pem"), 0644);
	{
		char *k = store_path(g, "privkey.pem");
		assert_int_equal(stat(k, &st), 0);
		assert_int_equal(st.st_gid, other);
		free(k);
	}
	free(g);
	if (geteuid() != 0) {
		/* a group we are not in: refused (EPERM), the live pair untouched */
		r->b.key_gid = 0;
		assert_int_equal(store_install_bundle(out, &r->b), -EPERM);
		assert_link(out, "current", ".gen-1");
	}
	free(out);
	free(r);
}

static void test_install_layout(void **state)
{
	const char *dir = *state;
	char *out = store_path(dir, "live/web");
	struct recs *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	umask(077);
	make_bundle(r, 1);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_int_equal(mode_of(dir, "live"), 0755);
	assert_int_equal(mode_of(dir, "live/web"), 0755);
	assert_listing(out, ".gen-1," LAYOUT_TAIL);
	assert_listing(dir, "live");
	assert_link(out, "current", ".gen-1");
	assert_link(out, "privkey.pem", "current/privkey.pem");
	assert_link(out, "cert.pem", "current/cert.pem");
	assert_link(out, "chain.pem", "current/chain.pem");
	assert_link(out, "fullchain.pem", "current/fullchain.pem");
	assert_bundle_files(out, ".gen-1", r);
	{
		char *g = store_path(out, ".gen-1");

		assert_listing(g, "cert.pem,chain.pem,fullchain.pem,privkey.pem");
		free(g);
	}
	assert_live(out, 1);

	/* umask 0 changes nothing: the key is still 0600. */
	umask(0);
	make_bundle(r, 2);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_bundle_files(out, ".gen-2", r);
	free(r);
	free(out);
}

static void test_install_generations(void **state)
{
	const char *dir = *state;
	char *out = store_path(dir, "out"), *stray;
	struct recs *r = calloc(1, sizeof(*r)), *r1 = calloc(1, sizeof(*r1));

	assert_non_null(r);
	assert_non_null(r1);
	make_bundle(r1, 1);
	assert_int_equal(store_install_bundle(out, &r1->b), 0);
	make_bundle(r, 2);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	/* Exactly one previous generation, intact. */
	assert_listing(out, ".gen-1,.gen-2," LAYOUT_TAIL);
	assert_link(out, "current", ".gen-2");
	assert_bundle_files(out, ".gen-2", r);
	{
		char *g = store_path(out, ".gen-1");

		assert_content(g, "privkey.pem", r1->key);
		assert_content(g, "fullchain.pem", r1->full);
		free(g);
	}
	make_bundle(r, 3);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_listing(out, ".gen-2,.gen-3," LAYOUT_TAIL);
	assert_live(out, 3);

	/* A leftover of a crashed install is neither current nor previous: removed. */
	stray = store_path(out, ".gen-9");
	assert_int_equal(mkdir(stray, 0755), 0);
	put_file(stray, "privkey.pem", "junk", 0600);
	make_bundle(r, 4);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_listing(out, ".gen-10,.gen-3," LAYOUT_TAIL);
	assert_link(out, "current", ".gen-10");
	assert_live(out, 4);
	assert_bundle_files(out, ".gen-10", r);
	/* Other names in output_dir are not ours to remove. */
	put_file(out, "README", "mine", 0644);
	put_file(out, ".gen-x", "mine", 0644);
	make_bundle(r, 5);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_listing(out, ".gen-10,.gen-11,.gen-x,README," LAYOUT_TAIL);
	free(stray);
	free(r);
	free(r1);
	free(out);
}

static void test_install_replaces_regular_files(void **state)
{
	const char *dir = *state;
	struct recs *r = calloc(1, sizeof(*r));
	char *key = NULL, *full = NULL;
	size_t kl, fl;
	struct stat st;
	char *p;

	assert_non_null(r);
	/* An older layout: plain files written by someone else. */
	put_file(dir, "privkey.pem", "OLD KEY\n", 0640);
	put_file(dir, "cert.pem", "OLD CERT\n", 0644);
	put_file(dir, "fullchain.pem", "OLD FULL\n", 0644);
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), 0);
	assert_string_equal(key, "OLD KEY\n");
	assert_string_equal(full, "OLD FULL\n");
	free(key);
	free(full);

	make_bundle(r, 7);
	assert_int_equal(store_install_bundle(dir, &r->b), 0);
	assert_listing(dir, ".gen-1," LAYOUT_TAIL);
	p = store_path(dir, "privkey.pem");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	free(p);
	assert_link(dir, "cert.pem", "current/cert.pem");
	assert_link(dir, "chain.pem", "current/chain.pem");
	assert_bundle_files(dir, ".gen-1", r);
	assert_live(dir, 7);
	free(r);
}

static void test_read_live_missing(void **state)
{
	const char *dir = *state;
	char *key = (char *)1, *full = (char *)1, *nx = store_path(dir, "nx");
	size_t kl = 5, fl = 5;
	char big[4096];

	assert_int_equal(store_read_live(nx, &key, &kl, &full, &fl), -ENOENT);
	assert_null(key);
	assert_null(full);
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), -ENOENT);
	/* One of the pair alone is not a pair. */
	put_file(dir, "privkey.pem", "K\n", 0600);
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), -ENOENT);
	assert_null(key);
	assert_null(full);
	{
		char *p = store_path(dir, "privkey.pem");

		unlink(p);
		free(p);
	}
	put_file(dir, "fullchain.pem", "F\n", 0644);
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), -ENOENT);
	assert_null(key);
	/* A dangling link (the generation vanished) counts as missing. */
	{
		char *p = store_path(dir, "privkey.pem");

		assert_int_equal(symlink("current/privkey.pem", p), 0);
		free(p);
	}
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), -ENOENT);
	/* Over 1 MiB. */
	{
		char *p = store_path(dir, "privkey.pem");
		FILE *f;

		unlink(p);
		f = fopen(p, "w");
		assert_non_null(f);
		memset(big, 'k', sizeof(big));
		for (int i = 0; i < 257; i++)
			assert_int_equal(fwrite(big, 1, sizeof(big), f), sizeof(big));
		assert_int_equal(fclose(f), 0);
		free(p);
	}
	assert_int_equal(store_read_live(dir, &key, &kl, &full, &fl), -EFBIG);
	assert_null(key);
	assert_null(full);
	free(nx);
}

static void test_install_bad_args(void **state)
{
	const char *dir = *state;
	struct store_bundle b = { "k", 1, "c", 1, NULL, 0, NULL, 0, 0, 0 };
	struct store_bundle nokey = { NULL, 0, "c", 1, "", 0, "", 0, 0, 0 };

	assert_int_equal(store_install_bundle(dir, &nokey), -EINVAL);
	assert_int_equal(store_install_bundle(dir, NULL), -EINVAL);
	assert_listing(dir, "");
	/* Empty chain and fullchain are allowed (written as empty files). */
	assert_int_equal(store_install_bundle(dir, &b), 0);
	assert_content(dir, "chain.pem", "");
	assert_content(dir, "privkey.pem", "k");
}

static void test_install_enotdir(void **state)
{
	const char *dir = *state;
	char *out = store_path(dir, "file/out"), *ro = store_path(dir, "ro"),
	     *ro_out = store_path(dir, "ro/out");
	struct recs *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	make_bundle(r, 1);
	put_file(dir, "file", "not a directory", 0644);
	assert_int_equal(store_install_bundle(out, &r->b), -ENOTDIR);
	assert_listing(dir, "file");
	assert_content(dir, "file", "not a directory");
	/* Read-only parent; root bypasses permissions, so only when not root. */
	assert_int_equal(mkdir(ro, 0500), 0);
	if (geteuid() != 0) {
		assert_int_equal(store_install_bundle(ro_out, &r->b), -EACCES);
		assert_listing(ro, "");
	}
	free(out);
	free(ro);
	free(ro_out);
	free(r);
}

static void test_install_failure_keeps_live(void **state)
{
	const char *dir = *state;
	struct recs *r = calloc(1, sizeof(*r));
	char *huge = malloc(1 << 16);
	struct rlimit old, lim;
	struct store_bundle b;

	assert_non_null(r);
	assert_non_null(huge);
	make_bundle(r, 1);
	assert_int_equal(store_install_bundle(dir, &r->b), 0);
	make_bundle(r, 2);
	assert_int_equal(store_install_bundle(dir, &r->b), 0);

	/* The new generation cannot be written: live files, current and the
	 * previous generation stay; the half-written generation is removed. */
	memset(huge, 'h', 1 << 16);
	b = r->b;
	b.fullchain_pem = huge;
	b.fullchain_len = 1 << 16;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 8192;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(store_install_bundle(dir, &b), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_listing(dir, ".gen-1,.gen-2," LAYOUT_TAIL);
	assert_link(dir, "current", ".gen-2");
	assert_bundle_files(dir, ".gen-2", r);
	assert_live(dir, 2);

	/* Read-only output_dir (not as root: root ignores the mode). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0500), 0);
		make_bundle(r, 3);
		assert_int_equal(store_install_bundle(dir, &r->b), -EACCES);
		assert_int_equal(chmod(dir, 0700), 0);
		assert_listing(dir, ".gen-1,.gen-2," LAYOUT_TAIL);
		assert_live(dir, 2);
	}
	/* `current` is a real directory: the swap fails, nothing changes. */
	{
		char *sub = store_path(dir, "x");
		struct recs *r2 = calloc(1, sizeof(*r2));

		assert_non_null(r2);
		make_bundle(r2, 2);
		assert_int_equal(mkdir(sub, 0755), 0);
		put_file(sub, "privkey.pem", r2->key, 0600);
		put_file(sub, "fullchain.pem", r2->full, 0644);
		make_bundle(r, 4);
		/* Replace the symlink with a non-empty directory holding gen 2's files. */
		{
			char *cur = store_path(dir, "current");

			assert_int_equal(unlink(cur), 0);
			assert_int_equal(rename(sub, cur), 0);
			free(cur);
		}
		assert_true(store_install_bundle(dir, &r->b) < 0);
		assert_listing(dir, ".gen-1,.gen-2," LAYOUT_TAIL);
		assert_live(dir, 2);
		free(r2);
		free(sub);
	}
	free(huge);
	free(r);
}

/* argv[0], to start the reader as a fresh process (also under valgrind). */
static const char *test_self;

/* One read of a whole (small) file; its length or -1. */
static ssize_t slurp_at(int dfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dfd, name, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

/* The reader: loops until the stop file exists, writing one byte to the pipe
 * after each complete iteration. Exit status 0, or which check failed. */
static int reader_child(const char *out, const char *stop, int tick)
{
	static char k[8192], c[8192];
	int dfd = open(out, O_RDONLY | O_DIRECTORY);

	if (dfd < 0 || fcntl(tick, F_SETFL, O_NONBLOCK) < 0)
		return 9;
	do {
		ssize_t kl, cl;
		int gfd;

		/* Top-level links: always present, always a complete file. */
		kl = slurp_at(dfd, "privkey.pem", k, sizeof(k));
		if (kl <= 0)
			return 10;
		cl = slurp_at(dfd, "cert.pem", c, sizeof(c));
		if (cl <= 0)
			return 11;
		if (parse_rec(k, (size_t)kl, "KEY") < 0 || parse_rec(c, (size_t)cl, "CERT") < 0)
			return 12;
		/* Through one resolved generation: key and certificate always match. */
		gfd = openat(dfd, "current", O_RDONLY | O_DIRECTORY);
		if (gfd < 0)
			return 13;
		kl = slurp_at(gfd, "privkey.pem", k, sizeof(k));
		cl = slurp_at(gfd, "cert.pem", c, sizeof(c));
		close(gfd);
		if (kl <= 0 || cl <= 0)
			return 14;
		if (parse_rec(k, (size_t)kl, "KEY") < 0 ||
		    parse_rec(k, (size_t)kl, "KEY") != parse_rec(c, (size_t)cl, "CERT"))
			return 15;
		if (write(tick, "", 1) < 0 && errno != EAGAIN)
			return 16;
	} while (access(stop, F_OK) != 0);
	close(dfd);
	return 0;
}

/* Wait until the reader completes n iterations that start after this call
 * (stale ticks are drained first); 0, or -1 when it stopped ticking. */
static int wait_ticks(int fd, int n)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (errno != EAGAIN)
		return -1;
	while (n > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t got;

		if (poll(&pfd, 1, 20000) != 1)
			return -1;
		got = read(fd, buf, 1);
		if (got <= 0)
			return -1;
		n--;
	}
	return 0;
}

/* A separate process reads the live files without pause while installs run.
 * Installs are paced so that no single read spans two of them: the reader
 * holds a generation for microseconds in real life, while installs come days
 * apart, and the previous generation is only removed by the install after. */
static void test_reader_during_installs(void **state)
{
	const char *dir = *state;
	char *out = store_path(dir, "out"), *stop = store_path(dir, "stop");
	struct recs *r = calloc(1, sizeof(*r));
	char want[256], fdarg[16];
	int pipefd[2], status;
	pid_t pid;

	assert_non_null(r);
	make_bundle(r, 1);
	assert_int_equal(store_install_bundle(out, &r->b), 0);
	assert_int_equal(pipe(pipefd), 0);
	snprintf(fdarg, sizeof(fdarg), "%d", pipefd[1]);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A fresh image: the reader shares no heap with cmocka or this test. */
		close(pipefd[0]);
		execlp(test_self, test_self, "--reader", out, stop, fdarg, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	assert_int_equal(fcntl(pipefd[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(wait_ticks(pipefd[0], 1), 0);
	for (int i = 2; i <= 150; i++) {
		make_bundle(r, i);
		assert_int_equal(store_install_bundle(out, &r->b), 0);
		assert_live(out, i);
		assert_int_equal(wait_ticks(pipefd[0], 2), 0);
	}
	put_file(dir, "stop", "", 0644);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pipefd[0]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(want, sizeof(want), ".gen-149,.gen-150,%s", LAYOUT_TAIL);
	assert_listing(out, want);
	free(stop);
	free(out);
	free(r);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--reader") == 0)
		return reader_child(argv[2], argv[3], atoi(argv[4]));
	test_self = argv[0];

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_write_atomic_modes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_write_atomic_failures, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_read_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_layout, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_key_group, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_generations, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_replaces_regular_files, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_read_live_missing, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_bad_args, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_enotdir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_install_failure_keeps_live, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_reader_during_installs, setup_dir,
						teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
