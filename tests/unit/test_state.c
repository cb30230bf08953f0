/* test_state.c - unit tests for state.c (job, CA and live-cache files) and store_write_replace/store_live_stamp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "config.h"
#include "state.h"
#include "store.h"

static mode_t saved_umask;

/* ---- helpers ---- */

static int setup_dir(void **state)
{
	char tmpl[] = "/tmp/acmed-test-state-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		return -1;
	*state = strdup(d);
	return *state ? 0 : -1;
}

static int teardown_dir(void **state)
{
	rm_rf(*state);
	free(*state);
	umask(saved_umask);
	return 0;
}

/* malloc'd "<dir>/<rel>" (rel may contain slashes). */
static char *join(const char *dir, const char *rel)
{
	char *p = store_path(dir, rel);

	assert_non_null(p);
	return p;
}

static void put_file(const char *dir, const char *rel, const char *content)
{
	char *p = join(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(close(fd), 0);
	free(p);
}

static char *get_file(const char *path)
{
	char *data = NULL;
	size_t len = 0;

	assert_int_equal(store_read_file(path, &data, &len, 1 << 20), 0);
	assert_int_equal(strlen(data), len);
	return data;
}

static struct stat stat_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st;
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

/* Sleep in 1 ms steps until the coarse clock (what the kernel stamps files
 * with) is past the file's ctime, so the next write must give a new ctime. */
static void wait_past_ctime(const char *path)
{
	struct stat st = stat_of(path);

	for (int i = 0; i < 5000; i++) {
		struct timespec now, ms = { 0, 1000000 };

		assert_int_equal(clock_gettime(CLOCK_REALTIME_COARSE, &now), 0);
		if (now.tv_sec > st.st_ctim.tv_sec ||
		    (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec))
			return;
		nanosleep(&ms, NULL);
	}
	fail_msg("the clock did not pass the ctime of %s", path);
}

/* Overwrite a file in place (same inode) with bytes of the same length. */
static void rewrite_in_place(const char *path, const char *content)
{
	struct stat before = stat_of(path), after;
	int fd;

	assert_int_equal((size_t)before.st_size, strlen(content));
	wait_past_ctime(path);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(close(fd), 0);
	after = stat_of(path);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_size, before.st_size);
}

static void strv_set(struct config_strv *sv, const char *const *v, size_t n)
{
	sv->v = calloc(n + 1, sizeof(char *));
	assert_non_null(sv->v);
	for (size_t i = 0; i < n; i++) {
		sv->v[i] = strdup(v[i]);
		assert_non_null(sv->v[i]);
	}
	sv->n = n;
}

/* ---- state_job ---- */

static const char *const DOMS[] = { "example.org", "www.example.org", "mail.example.org" };

static void job_fill(struct state_job *st)
{
	memset(st, 0, sizeof(*st));
	st->failures = 7;
	st->next_attempt = 4102444800LL;         /* past 2^32: 64-bit round trip */
	st->last_error = strdup("urn:ietf:params:acme:error:rateLimited: \"too many\" \\ é");
	st->last_error_class = strdup("rate_limited");
	st->last_error_at = 1700000001;
	st->last_success = 1690000002;
	st->deploy_pending = 1;
	st->order_url = strdup("https://ca.example/acme/order/42");
	strv_set(&st->order_domains, DOMS, 3);
	st->order_key_type = KEY_RSA_3072;
	st->order_created = 1700000003;
	st->ari_cert_id = strdup("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	st->ari_start = 1710000004;
	st->ari_end = 1710086405;
	st->ari_chosen = 1710040006;
	st->ari_next_check = 1700021607;
	st->ari_explanation = strdup("https://ca.example/docs/ari");
	assert_non_null(st->last_error);
}

static void test_job_round_trip(void **state)
{
	const char *dir = *state;
	struct state_job in, out;
	struct stat st;
	char *path, *certs;

	umask(0);
	job_fill(&in);
	assert_int_equal(state_job_save(dir, "web", &in), 0);
	path = join(dir, "certs/web.json");
	certs = join(dir, "certs");
	st = stat_of(path);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat_of(certs).st_mode & 07777, 0700);

	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(state_job_load(dir, "web", &out), 0);
	assert_int_equal(out.failures, 7);
	assert_int_equal(out.next_attempt, 4102444800LL);
	assert_string_equal(out.last_error, in.last_error);
	assert_string_equal(out.last_error_class, "rate_limited");
	assert_int_equal(out.last_error_at, 1700000001);
	assert_int_equal(out.last_success, 1690000002);
	assert_int_equal(out.deploy_pending, 1);
	assert_string_equal(out.order_url, "https://ca.example/acme/order/42");
	assert_int_equal(out.order_domains.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(out.order_domains.v[i], DOMS[i]);
	assert_null(out.order_domains.v[3]);
	assert_int_equal(out.order_key_type, KEY_RSA_3072);
	assert_int_equal(out.order_created, 1700000003);
	assert_string_equal(out.ari_cert_id, in.ari_cert_id);
	assert_int_equal(out.ari_start, 1710000004);
	assert_int_equal(out.ari_end, 1710086405);
	assert_int_equal(out.ari_chosen, 1710040006);
	assert_int_equal(out.ari_next_check, 1700021607);
	assert_string_equal(out.ari_explanation, "https://ca.example/docs/ari");
	state_job_clear(&out);
	assert_true(all_zero(&out, sizeof(out)));

	/* A later save with less in it leaves nothing stale behind. */
	state_job_clear(&in);
	in.failures = 1;
	assert_int_equal(state_job_save(dir, "web", &in), 0);
	assert_int_equal(state_job_load(dir, "web", &out), 0);
	assert_int_equal(out.failures, 1);
	assert_null(out.last_error);
	assert_null(out.last_error_class);
	assert_null(out.order_url);
	assert_int_equal(out.order_domains.n, 0);
	assert_int_equal(out.deploy_pending, 0);
	assert_int_equal(out.next_attempt, 0);
	assert_null(out.ari_cert_id);
	assert_null(out.ari_explanation);
	assert_int_equal(out.ari_start, 0);
	state_job_clear(&out);
	state_job_clear(&out);  /* twice is harmless */

	/* Each certificate has its own file. */
	in.failures = 2;
	assert_int_equal(state_job_save(dir, "other", &in), 0);
	assert_int_equal(state_job_load(dir, "web", &out), 0);
	assert_int_equal(out.failures, 1);
	state_job_clear(&out);
	free(path);
	free(certs);
}

static void test_job_missing_and_remove(void **state)
{
	const char *dir = *state;
	struct state_job st;
	char *gone = join(dir, "nothing-here");

	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_job_load(dir, "web", &st), -ENOENT);
	assert_true(all_zero(&st, sizeof(st)));
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_job_load(gone, "web", &st), -ENOENT);
	assert_true(all_zero(&st, sizeof(st)));

	st.failures = 3;
	assert_int_equal(state_job_save(dir, "web", &st), 0);
	assert_int_equal(state_job_load(dir, "web", &st), 0);
	assert_int_equal(st.failures, 3);
	state_job_clear(&st);
	assert_int_equal(state_job_remove(dir, "web"), 0);
	assert_int_equal(state_job_load(dir, "web", &st), -ENOENT);
	assert_int_equal(state_job_remove(dir, "web"), 0);   /* already gone */
	assert_int_equal(state_job_remove(gone, "web"), 0);

	/* Something that cannot be unlinked is an error. */
	char *d = join(dir, "certs/dir.json");
	assert_int_equal(mkdir(d, 0700), 0);
	put_file(dir, "certs/dir.json/x", "x");
	assert_true(state_job_remove(dir, "dir") < 0);
	free(d);
	free(gone);
}

static void test_job_save_failure(void **state)
{
	const char *dir = *state;
	struct state_job st = { .failures = 1 };

	put_file(dir, "certs", "a file where the directory should be");
	assert_true(state_job_save(dir, "web", &st) < 0);
}

static const char *const BAD_JSON[] = {
	"", " ", "not json", "[1, 2, 3]", "[]", "\"a string\"", "42", "null", "true",
	"{\"failures\": 3", "{\"failures\": 3, \"last_error\": \"tru", "{\"a\":1}}",
	"{\"failures\": 99999999999999999999999999}", "{\"x\": 1e99999}",
	"\xef\xbb\xbf{\"\xff\xfe\": 1}",
};


static void put_bytes(const char *dir, const char *rel, const char *data, size_t len)
{
	char *p = join(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	free(p);
}

static void mkdir_rel(const char *dir, const char *rel)
{
	char *p = join(dir, rel);

	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
}

/* A JSON text nested far deeper than any parser should recurse. */
static char *deep_nesting(size_t depth)
{
	char *s = malloc(2 * depth + 1);

	assert_non_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	return s;
}

/* Load certs/web.json holding text; the struct is poisoned first. */
static int job_load_text(const char *dir, const char *text, struct state_job *st)
{
	put_file(dir, "certs/web.json", text);
	memset(st, 0xa5, sizeof(*st));
	return state_job_load(dir, "web", st);
}

static void test_job_damaged(void **state)
{
	const char *dir = *state;
	struct state_job st;
	char *deep = deep_nesting(200000), *big;

	mkdir_rel(dir, "certs");
	for (size_t i = 0; i < sizeof(BAD_JSON) / sizeof(BAD_JSON[0]); i++) {
		assert_int_equal(job_load_text(dir, BAD_JSON[i], &st), -EINVAL);
		assert_true(all_zero(&st, sizeof(st)));
	}
	assert_int_equal(job_load_text(dir, deep, &st), -EINVAL);
	assert_true(all_zero(&st, sizeof(st)));

	/* An embedded NUL. */
	put_bytes(dir, "certs/web.json", "{\"failures\": 2}\0{}", 18);
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_job_load(dir, "web", &st), -EINVAL);
	assert_true(all_zero(&st, sizeof(st)));

	/* Larger than any real state file: refused, zeroed. */
	big = malloc((2u << 20) + 16);
	assert_non_null(big);
	memset(big, ' ', (2u << 20) + 16);
	memcpy(big, "{\"failures\": 2", 14);
	memcpy(big + (2u << 20) + 14, "}", 2);
	assert_true(job_load_text(dir, big, &st) < 0);
	assert_true(all_zero(&st, sizeof(st)));

	/* A directory where the file should be. */
	mkdir_rel(dir, "certs/d.json");
	memset(&st, 0xa5, sizeof(st));
	assert_true(state_job_load(dir, "d", &st) < 0);
	assert_true(all_zero(&st, sizeof(st)));
	free(big);
	free(deep);
}

static void test_job_wrong_types(void **state)
{
	const char *dir = *state;
	struct state_job st;

	mkdir_rel(dir, "certs");
	/* Every field of the wrong type: ignored, defaults instead. */
	assert_int_equal(job_load_text(dir,
		"{\"failures\": \"3\", \"next_attempt\": \"soon\", \"last_error\": 5,"
		" \"last_error_class\": [], \"last_error_at\": 1.5, \"last_success\": null,"
		" \"deploy_pending\": \"yes\", \"order_url\": {}, \"order_domains\": \"a.example\","
		" \"order_key_type\": 7, \"order_created\": true, \"ari\": [1, 2],"
		" \"name\": 12}", &st), 0);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.next_attempt, 0);
	assert_null(st.last_error);
	assert_null(st.last_error_class);
	assert_int_equal(st.last_error_at, 0);
	assert_int_equal(st.last_success, 0);
	assert_int_equal(st.deploy_pending, 0);
	assert_null(st.order_url);
	assert_int_equal(st.order_domains.n, 0);
	assert_int_equal(st.order_key_type, KEY_ECDSA_P256);
	assert_int_equal(st.order_created, 0);
	assert_null(st.ari_cert_id);
	assert_null(st.ari_explanation);
	assert_int_equal(st.ari_start, 0);
	assert_int_equal(st.ari_end, 0);
	assert_int_equal(st.ari_chosen, 0);
	assert_int_equal(st.ari_next_check, 0);
	state_job_clear(&st);

	/* Inside ari too; non-strings among the domains are dropped. */
	assert_int_equal(job_load_text(dir,
		"{\"order_url\": \"https://ca/o/1\", \"order_key_type\": \"ed448\","
		" \"order_domains\": [\"a.example\", 5, null, \"b.example\", {\"x\": 1}, []],"
		" \"ari\": {\"cert_id\": 1, \"start\": \"x\", \"end\": [], \"chosen\": 2.5,"
		" \"explanation_url\": false}}", &st), 0);
	assert_string_equal(st.order_url, "https://ca/o/1");
	assert_int_equal(st.order_key_type, KEY_ECDSA_P256);
	assert_int_equal(st.order_domains.n, 2);
	assert_string_equal(st.order_domains.v[0], "a.example");
	assert_string_equal(st.order_domains.v[1], "b.example");
	assert_null(st.order_domains.v[2]);
	assert_null(st.ari_cert_id);
	assert_null(st.ari_explanation);
	assert_int_equal(st.ari_start, 0);
	assert_int_equal(st.ari_end, 0);
	assert_int_equal(st.ari_chosen, 0);
	state_job_clear(&st);

	/* An empty object is a fresh state. */
	assert_int_equal(job_load_text(dir, "{}", &st), 0);
	assert_int_equal(st.failures, 0);
	assert_null(st.order_url);
	state_job_clear(&st);
}

static void test_job_failures_range(void **state)
{
	static const struct { const char *text; int want; } cases[] = {
		{ "{\"failures\": -5}", 0 },
		{ "{\"failures\": -2147483648}", 0 },
		{ "{\"failures\": 2000000}", 0 },
		{ "{\"failures\": 2147483647}", 0 },
		{ "{\"failures\": 9223372036854775807}", 0 },
		{ "{\"failures\": -9223372036854775808}", 0 },
		{ "{\"failures\": 1e300}", 0 },
		{ "{\"failures\": 1000000}", 1000000 },
		{ "{\"failures\": 12}", 12 },
	};
	const char *dir = *state;
	struct state_job st;

	mkdir_rel(dir, "certs");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(job_load_text(dir, cases[i].text, &st), 0);
		if (st.failures != cases[i].want)
			fail_msg("%s: failures %d, want %d", cases[i].text, st.failures,
				 cases[i].want);
		state_job_clear(&st);
	}
}

/* Out-of-range counts must not wrap into plausible ones: 2^32 + 7 is not 7. */
static void test_job_failures_no_wrap(void **state)
{
	const char *dir = *state;
	struct state_job st;
	struct state_ca ca;
	int job_failures, ca_failures;

	mkdir_rel(dir, "certs");
	assert_int_equal(job_load_text(dir, "{\"failures\": 4294967303}", &st), 0);
	job_failures = st.failures;
	state_job_clear(&st);
	mkdir_rel(dir, "cas");
	put_file(dir, "cas/le.json", "{\"probe_failures\": -4294967290}");
	assert_int_equal(state_ca_load(dir, "le", &ca), 0);
	ca_failures = ca.probe_failures;
	state_ca_clear(&ca);
	if (job_failures != 0 || ca_failures != 0)
		fail_msg("failures 4294967303 loaded as %d, probe_failures -4294967290 as %d;"
			 " want 0 and 0", job_failures, ca_failures);
}

/* ---- state_ca ---- */

static void test_ca_round_trip(void **state)
{
	const char *dir = *state;
	struct state_ca in = { 0 }, out;
	char *path = join(dir, "cas/letsencrypt.json");

	umask(0);
	in.down_since = 4102444801LL;
	in.probe_failures = 4;
	in.next_probe = 4102448401LL;
	in.last_error = strdup("https://acme.example/directory: HTTP 503 \"busy\"\n");
	assert_int_equal(state_ca_save(dir, "letsencrypt", &in, 1), 0);
	assert_int_equal(stat_of(path).st_mode & 07777, 0600);

	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(state_ca_load(dir, "letsencrypt", &out), 0);
	assert_int_equal(out.down_since, 4102444801LL);
	assert_int_equal(out.probe_failures, 4);
	assert_int_equal(out.next_probe, 4102448401LL);
	assert_string_equal(out.last_error, in.last_error);
	state_ca_clear(&out);
	assert_true(all_zero(&out, sizeof(out)));

	/* The CA came back: a zeroed state round-trips as zero. */
	state_ca_clear(&in);
	assert_int_equal(state_ca_save(dir, "letsencrypt", &in, 1), 0);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(state_ca_load(dir, "letsencrypt", &out), 0);
	assert_true(all_zero(&out, sizeof(out)));
	state_ca_clear(&out);

	/* CA state and certificate state live apart. */
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(state_ca_load(dir, "other", &out), -ENOENT);
	assert_true(all_zero(&out, sizeof(out)));
	free(path);
}

static void test_ca_hostile(void **state)
{
	const char *dir = *state;
	struct state_ca st;
	char *deep = deep_nesting(200000);

	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_ca_load(dir, "le", &st), -ENOENT);
	assert_true(all_zero(&st, sizeof(st)));

	mkdir_rel(dir, "cas");
	for (size_t i = 0; i < sizeof(BAD_JSON) / sizeof(BAD_JSON[0]); i++) {
		put_file(dir, "cas/le.json", BAD_JSON[i]);
		memset(&st, 0xa5, sizeof(st));
		assert_int_equal(state_ca_load(dir, "le", &st), -EINVAL);
		assert_true(all_zero(&st, sizeof(st)));
	}
	put_file(dir, "cas/le.json", deep);
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_ca_load(dir, "le", &st), -EINVAL);
	assert_true(all_zero(&st, sizeof(st)));

	put_file(dir, "cas/le.json", "{\"down_since\": \"x\", \"probe_failures\": [],"
		 " \"next_probe\": 1.5, \"last_error\": 3}");
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(state_ca_load(dir, "le", &st), 0);
	assert_true(all_zero(&st, sizeof(st)));
	state_ca_clear(&st);

	put_file(dir, "cas/le.json", "{\"down_since\": 5, \"probe_failures\": -1}");
	assert_int_equal(state_ca_load(dir, "le", &st), 0);
	assert_int_equal(st.down_since, 5);
	assert_int_equal(st.probe_failures, 0);
	state_ca_clear(&st);
	put_file(dir, "cas/le.json", "{\"probe_failures\": 1000001}");
	assert_int_equal(state_ca_load(dir, "le", &st), 0);
	assert_int_equal(st.probe_failures, 0);
	state_ca_clear(&st);

	/* cas/ cannot be created: the save fails, nothing crashes. */
	char *cas = join(dir, "cas");
	rm_rf(cas);
	put_file(dir, "cas", "a file where the directory should be");
	st.down_since = 1;
	assert_true(state_ca_save(dir, "le", &st, 1) < 0);
	free(cas);
	free(deep);
}

/* ---- the live cache ---- */

static const char *const NAMES[] = { "example.org", "www.example.org", "xn--bcher-kva.example" };

/* Certificate i (0..2) of the round trip; every field differs between them.
 * 0: ECDSA P-384 with a CertID; 1: key type unknown, with a CertID; 2: RSA-2048, no CertID. */
static void live_fill(struct state_live *l, int i)
{
	static const enum key_type kt[] = { KEY_ECDSA_P384, KEY_RSA_4096, KEY_RSA_2048 };

	memset(l, 0, sizeof(*l));
	assert_true(asprintf(&l->stamp, "fd01:1a2b:4d2:1700000000.123456789:1700000000.12345678%d/"
			     "fd01:1a2c:9a0:1700000001.000000001:1700000001.000000001", i) > 0);
	l->not_before = 1700000000 + i;
	l->not_after = 4102444800LL + i;        /* past 2^32: 64-bit round trip */
	l->key_type_known = i != 1;
	l->key_type = kt[i];
	strv_set(&l->names, NAMES + i, 3 - (size_t)i);
	if (i != 2)
		assert_true(asprintf(&l->cert_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQy%c", 'A' + i) > 0);
}

/* The entry name of set holds exactly certificate i of live_fill(). */
static void live_expect(const struct state_live_set *set, const char *name, int i)
{
	struct state_live want, got;

	live_fill(&want, i);
	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(state_live_set_get(set, name, &got), 0);
	assert_string_equal(got.stamp, want.stamp);
	assert_int_equal(got.not_before, want.not_before);
	assert_int_equal(got.not_after, want.not_after);
	assert_int_equal(got.key_type_known, want.key_type_known);
	if (want.key_type_known)
		assert_int_equal(got.key_type, want.key_type);
	assert_int_equal(got.names.n, want.names.n);
	for (size_t k = 0; k < want.names.n; k++)
		assert_string_equal(got.names.v[k], want.names.v[k]);
	assert_null(got.names.v[want.names.n]);
	if (want.cert_id)
		assert_string_equal(got.cert_id, want.cert_id);
	else
		assert_null(got.cert_id);
	state_live_clear(&got);
	assert_true(all_zero(&got, sizeof(got)));
	state_live_clear(&want);
}

/* get fails with want and leaves the struct cleared. */
static void live_fails(const struct state_live_set *set, const char *name, int want)
{
	struct state_live l;
	int rc;

	memset(&l, 0xa5, sizeof(l));
	rc = state_live_set_get(set, name, &l);
	if (rc != want)
		fail_msg("entry %s: %d, want %d", name ? name : "(null)", rc, want);
	assert_true(all_zero(&l, sizeof(l)));
}

static void test_live_round_trip(void **state)
{
	const char *dir = *state;
	const char *const names[] = { "web", "mail", "api", "nostamp", NULL, "nolive" };
	struct state_live l[5];
	const struct state_live *const lives[] = { &l[0], &l[1], &l[2], &l[3], &l[4], NULL };
	struct state_live_set *set;
	struct state_job job;
	char *path = join(dir, "live.json"), *text;
	size_t stamps = 0;

	umask(0);
	for (int i = 0; i < 3; i++)
		live_fill(&l[i], i);
	live_fill(&l[3], 0);                    /* no stamp: left out */
	free(l[3].stamp);
	l[3].stamp = NULL;
	live_fill(&l[4], 0);                    /* no name: left out */
	assert_int_equal(state_live_save_all(dir, names, lives, 6), 0);
	assert_true(S_ISREG(stat_of(path).st_mode));
	assert_int_equal(stat_of(path).st_mode & 07777, 0600);
	text = get_file(path);
	for (const char *p = text; (p = strstr(p, "\"stamp\"")) != NULL; p++)
		stamps++;
	assert_int_equal(stamps, 3);
	free(text);

	set = state_live_set_load(dir);
	assert_non_null(set);
	live_expect(set, "web", 0);
	live_expect(set, "mail", 1);
	live_expect(set, "api", 2);
	live_expect(set, "web", 0);             /* a get consumes nothing */
	live_fails(set, "nostamp", -ENOENT);
	live_fails(set, "nolive", -ENOENT);
	live_fails(set, "other", -ENOENT);
	live_fails(set, NULL, -ENOENT);
	live_fails(NULL, "web", -ENOENT);
	state_live_set_free(set);
	state_live_set_free(NULL);

	/* The cache is not the job state. */
	memset(&job, 0xa5, sizeof(job));
	assert_int_equal(state_job_load(dir, "web", &job), -ENOENT);
	assert_true(all_zero(&job, sizeof(job)));

	/* A later save replaces the whole file: unlisted certificates disappear. */
	assert_int_equal(state_live_save_all(dir, names + 1, lives + 1, 1), 0);
	assert_int_equal(stat_of(path).st_mode & 07777, 0600);
	set = state_live_set_load(dir);
	assert_non_null(set);
	live_expect(set, "mail", 1);
	live_fails(set, "web", -ENOENT);
	live_fails(set, "api", -ENOENT);
	state_live_set_free(set);
	assert_int_equal(state_live_save_all(dir, names, lives, 0), 0);
	set = state_live_set_load(dir);
	assert_non_null(set);
	live_fails(set, "mail", -ENOENT);
	state_live_set_free(set);

	for (int i = 0; i < 5; i++) {
		state_live_clear(&l[i]);
		state_live_clear(&l[i]);        /* twice is harmless */
		assert_true(all_zero(&l[i], sizeof(l[i])));
	}
	free(path);
}

#define LIVE_OK "{\"stamp\": \"s\", \"not_after\": 5, \"names\": [\"a.example\"]}"
#define LIVE_GOOD "{\"web\": " LIVE_OK "}"

/* state_live_set_load(dir) is an empty set. */
static void live_empty(const char *dir)
{
	struct state_live_set *set = state_live_set_load(dir);

	assert_non_null(set);
	live_fails(set, "web", -ENOENT);
	state_live_set_free(set);
}

static void test_live_damaged_file(void **state)
{
	/* Each holds a sound "web" entry, yet the file as a whole is damaged. */
	static const char *const bad[] = {
		"[" LIVE_GOOD "]", LIVE_GOOD "}", LIVE_GOOD " x", "\xef\xbb\xbf" LIVE_GOOD,
		"{\"web\": " LIVE_OK ", \"x\": \"\xff\xfe\"}", "{\"web\": " LIVE_OK ", \"x\"}",
		"{\"web\": " LIVE_OK ", \"x\": 1e99999}", "{\"web\": " LIVE_OK ", \"x\": -}",
	};
	const char *dir = *state;
	char *missing = join(dir, "missing"), *deep = deep_nesting(200000), *text;
	char *path = join(dir, "live.json");
	struct state_live_set *set;
	struct state_live l;

	live_empty(missing);
	live_empty(dir);
	put_file(dir, "live.json", LIVE_GOOD);          /* sound, to start with */
	set = state_live_set_load(dir);
	assert_non_null(set);
	assert_int_equal(state_live_set_get(set, "web", &l), 0);
	assert_string_equal(l.names.v[0], "a.example");
	state_live_clear(&l);
	state_live_set_free(set);

	for (size_t len = 0; len < strlen(LIVE_GOOD); len++) {  /* truncated anywhere; 0: empty */
		put_bytes(dir, "live.json", LIVE_GOOD, len);
		live_empty(dir);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file(dir, "live.json", bad[i]);
		live_empty(dir);
	}
	for (size_t i = 0; i < sizeof(BAD_JSON) / sizeof(BAD_JSON[0]); i++) {
		put_file(dir, "live.json", BAD_JSON[i]);
		live_empty(dir);
	}
	put_bytes(dir, "live.json", LIVE_GOOD "\0{}", sizeof(LIVE_GOOD) + 2);
	live_empty(dir);
	put_file(dir, "live.json", deep);
	live_empty(dir);
	assert_true(asprintf(&text, "{\"web\": " LIVE_OK ", \"x\": %s}", deep) > 0);
	put_file(dir, "live.json", text);               /* beside something nested too deep */
	live_empty(dir);

	assert_int_equal(unlink(path), 0);
	mkdir_rel(dir, "live.json");                    /* a directory in its place */
	live_empty(dir);
	free(text);
	free(deep);
	free(missing);
	free(path);
}

/* One file: sound entries among damaged ones; each is judged on its own. */
static void test_live_damaged_entries(void **state)
{
	static const char *const bad[] = {
		"\"a string\"", "42", "null", "true", "{}", "[" LIVE_OK "]",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": \"a.example\"}",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": {\"a.example\": 1}}",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": []}",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": [\"a.example\", 5]}",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": [null, \"a.example\"]}",
		"{\"stamp\": \"s\", \"not_after\": 5, \"names\": [\"a.example\", [\"b\"]]}",
		"{\"stamp\": \"s\", \"not_after\": 5}",
		"{\"not_after\": 5, \"names\": [\"a.example\"]}",
		"{\"stamp\": 17, \"not_after\": 5, \"names\": [\"a.example\"]}",
		"{\"stamp\": null, \"not_after\": 5, \"names\": [\"a.example\"]}",
		"{\"stamp\": \"s\", \"names\": [\"a.example\"]}",
		"{\"stamp\": \"s\", \"not_after\": \"5\", \"names\": [\"a.example\"]}",
		"{\"stamp\": \"s\", \"not_after\": 0, \"names\": [\"a.example\"]}",
		"{\"stamp\": \"s\", \"not_after\": 5.5, \"names\": [\"a.example\"]}",
	};
	/* Key types: a known name is used; anything else is merely unknown. */
	static const char *const kts[] = { "\"rsa-4096\"", "\"ed25519\"", "\"\"", "3", "null",
					   "[\"rsa-2048\"]", "\"RSA-2048\"" };
	const char *dir = *state;
	struct state_live_set *set;
	struct state_live l;
	char *text = NULL, key[32];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	fprintf(f, "{\"first\": " LIVE_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fprintf(f, ", \"bad%zu\": %s", i, bad[i]);
	for (size_t i = 0; i < sizeof(kts) / sizeof(kts[0]); i++)
		fprintf(f, ", \"kt%zu\": {\"stamp\": \"s\", \"not_after\": 5, \"names\": [\"a.example\"],"
			" \"key_type\": %s, \"cert_id\": 9}", i, kts[i]);
	for (int n = 1000; n <= 1001; n++) {            /* 1000 names is the most an entry may hold */
		fprintf(f, ", \"many%d\": {\"stamp\": \"s\", \"not_after\": 5, \"names\": [\"n0\"", n);
		for (int i = 1; i < n; i++)
			fprintf(f, ", \"n%d\"", i);
		fprintf(f, "]}");
	}
	fprintf(f, ", \"last\": " LIVE_OK "}");
	assert_int_equal(fclose(f), 0);
	put_file(dir, "live.json", text);
	set = state_live_set_load(dir);
	assert_non_null(set);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(key, sizeof(key), "bad%zu", i);
		live_fails(set, key, -EINVAL);
	}
	live_fails(set, "many1001", -EINVAL);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(state_live_set_get(set, i ? "last" : "first", &l), 0);
		assert_string_equal(l.stamp, "s");
		assert_int_equal(l.not_before, 0);
		assert_int_equal(l.not_after, 5);
		assert_int_equal(l.key_type_known, 0);
		assert_int_equal(l.names.n, 1);
		assert_string_equal(l.names.v[0], "a.example");
		assert_null(l.names.v[1]);
		assert_null(l.cert_id);
		state_live_clear(&l);
	}
	for (size_t i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		snprintf(key, sizeof(key), "kt%zu", i);
		assert_int_equal(state_live_set_get(set, key, &l), 0);
		assert_int_equal(l.key_type_known, i == 0);
		if (i == 0)
			assert_int_equal(l.key_type, KEY_RSA_4096);
		assert_string_equal(l.stamp, "s");
		assert_int_equal(l.names.n, 1);
		assert_null(l.cert_id);                 /* not a string */
		state_live_clear(&l);
	}
	assert_int_equal(state_live_set_get(set, "many1000", &l), 0);
	assert_int_equal(l.names.n, 1000);
	assert_string_equal(l.names.v[999], "n999");
	assert_null(l.names.v[1000]);
	state_live_clear(&l);
	state_live_set_free(set);
	free(text);
}

/* ---- store_live_stamp ---- */

static char *stamp_of(const char *dir)
{
	char *s = (char *)"poison";
	int r = store_live_stamp(dir, &s);

	if (r != 0)
		fail_msg("store_live_stamp(%s): %d", dir, r);
	assert_non_null(s);
	assert_true(strlen(s) > 0);
	return s;
}

static int stamp_err(const char *dir)
{
	char *s = (char *)"poison";
	int r = store_live_stamp(dir, &s);

	assert_null(s);
	return r;
}

static void test_stamp_missing(void **state)
{
	const char *dir = *state;
	char *s, *missing = join(dir, "missing"), *key = join(dir, "privkey.pem");

	assert_int_equal(stamp_err(missing), -ENOENT);
	assert_int_equal(stamp_err(dir), -ENOENT);
	put_file(dir, "privkey.pem", "KEY");
	assert_int_equal(stamp_err(dir), -ENOENT);
	put_file(dir, "fullchain.pem", "CHAIN");
	s = stamp_of(dir);
	free(s);
	assert_int_equal(unlink(key), 0);
	assert_int_equal(stamp_err(dir), -ENOENT);
	assert_int_equal(stamp_err(key), -ENOENT);           /* not a directory */
	put_file(dir, "plain", "x");
	free(missing);
	missing = join(dir, "plain");
	assert_int_equal(stamp_err(missing), -ENOENT);
	assert_int_equal(store_live_stamp(NULL, &s), -EINVAL);
	assert_int_equal(store_live_stamp(dir, NULL), -EINVAL);
	free(missing);
	free(key);
}

static void assert_differ(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		fail_msg("stamp did not change: %s", a);
}

static void test_stamp_changes(void **state)
{
	const char *dir = *state;
	char *key = join(dir, "privkey.pem"), *chain = join(dir, "fullchain.pem");
	char *tmp = join(dir, "new.pem"), *a, *b, *c, *rd;

	put_file(dir, "privkey.pem", "KEY-AAAA");
	put_file(dir, "fullchain.pem", "CHAIN-AAAA");
	a = stamp_of(dir);
	b = stamp_of(dir);
	assert_string_equal(a, b);                          /* nothing changed */
	rd = get_file(chain);                               /* reading changes nothing */
	free(rd);
	rd = get_file(key);
	free(rd);
	free(b);
	b = stamp_of(dir);
	assert_string_equal(a, b);
	free(b);

	rewrite_in_place(chain, "CHAIN-BBBB");              /* same size, same inode */
	b = stamp_of(dir);
	assert_differ(a, b);
	c = stamp_of(dir);
	assert_string_equal(b, c);
	free(a);
	free(c);

	put_file(dir, "new.pem", "CHAIN-BBBB");             /* identical bytes, new inode */
	assert_int_equal(rename(tmp, chain), 0);
	a = stamp_of(dir);
	assert_differ(b, a);
	free(b);

	rewrite_in_place(key, "KEY-BBBB");
	b = stamp_of(dir);
	assert_differ(a, b);
	free(a);

	put_file(dir, "new.pem", "KEY-BBBB");
	assert_int_equal(rename(tmp, key), 0);
	a = stamp_of(dir);
	assert_differ(b, a);
	free(a);
	free(b);

	/* Not regular files: errors. */
	assert_int_equal(unlink(chain), 0);
	assert_int_equal(mkdir(chain, 0700), 0);
	assert_true(stamp_err(dir) < 0);
	assert_int_equal(rmdir(chain), 0);
	put_file(dir, "fullchain.pem", "CHAIN");
	assert_int_equal(unlink(key), 0);
	assert_int_equal(mkdir(key, 0700), 0);
	assert_true(stamp_err(dir) < 0);
	assert_int_equal(rmdir(key), 0);
	assert_int_equal(mkfifo(key, 0600), 0);
	assert_true(stamp_err(dir) < 0);
	free(key);
	free(chain);
	free(tmp);
}

static void test_stamp_symlinks(void **state)
{
	const char *dir = *state;
	char *out = join(dir, "out"), *g1 = join(dir, "out/gen-1"), *g2 = join(dir, "out/gen-2");
	char *cur = join(dir, "out/current"), *curtmp = join(dir, "out/current.tmp");
	char *lk = join(dir, "out/privkey.pem"), *lc = join(dir, "out/fullchain.pem");
	char *s1, *s2, *a, *b;

	mkdir_rel(dir, "out");
	mkdir_rel(dir, "out/gen-1");
	mkdir_rel(dir, "out/gen-2");
	put_file(dir, "out/gen-1/privkey.pem", "KEY");
	put_file(dir, "out/gen-1/fullchain.pem", "CHAIN");
	put_file(dir, "out/gen-2/privkey.pem", "KEY");       /* same bytes, other files */
	put_file(dir, "out/gen-2/fullchain.pem", "CHAIN");
	assert_int_equal(symlink("gen-1", cur), 0);
	assert_int_equal(symlink("current/privkey.pem", lk), 0);
	assert_int_equal(symlink("current/fullchain.pem", lc), 0);

	s1 = stamp_of(g1);
	s2 = stamp_of(g2);
	assert_differ(s1, s2);
	a = stamp_of(out);
	assert_string_equal(a, s1);                         /* the links are followed */

	assert_int_equal(symlink("gen-2", curtmp), 0);
	assert_int_equal(rename(curtmp, cur), 0);
	b = stamp_of(out);
	assert_string_equal(b, s2);
	assert_differ(a, b);
	free(a);
	free(b);

	/* A dangling link is an absent file. */
	assert_int_equal(symlink("gen-3", curtmp), 0);
	assert_int_equal(rename(curtmp, cur), 0);
	assert_int_equal(stamp_err(out), -ENOENT);
	/* A link to a directory is not a file. */
	assert_int_equal(unlink(cur), 0);
	assert_int_equal(symlink("gen-1", cur), 0);
	assert_int_equal(unlink(lc), 0);
	assert_int_equal(symlink("current", lc), 0);
	assert_true(stamp_err(out) < 0);

	free(s1);
	free(s2);
	free(out);
	free(g1);
	free(g2);
	free(cur);
	free(curtmp);
	free(lk);
	free(lc);
}

/* What acmed itself does: every install, even of identical bytes, is seen. */
static void test_stamp_install_bundle(void **state)
{
	const char *dir = *state;
	char *out = join(dir, "live"), *a, *b, *key = NULL, *fc = NULL;
	size_t kl = 0, fl = 0;
	struct store_bundle bd = {
		.key_pem = "KEY\n", .key_len = 4, .cert_pem = "CERT\n", .cert_len = 5,
		.chain_pem = "CA\n", .chain_len = 3, .fullchain_pem = "CERT\nCA\n", .fullchain_len = 8,
	};

	assert_int_equal(stamp_err(out), -ENOENT);
	assert_int_equal(store_install_bundle(out, &bd), 0);
	a = stamp_of(out);
	b = stamp_of(out);
	assert_string_equal(a, b);
	free(b);
	assert_int_equal(store_install_bundle(out, &bd), 0);
	b = stamp_of(out);
	assert_differ(a, b);
	assert_int_equal(store_read_live(out, &key, &kl, &fc, &fl), 0);
	assert_string_equal(key, "KEY\n");
	assert_string_equal(fc, "CERT\nCA\n");
	free(key);
	free(fc);
	free(a);
	free(b);
	free(out);
}

/* ---- store_write_replace ---- */

/* Entries of dir other than . and .., sorted by nothing: count and hidden ones. */
static void assert_entries(const char *dir, int want)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_name[0] == '.')
			fail_msg("temporary file left behind in %s: %s", dir, e->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, want);
}

static void test_write_replace(void **state)
{
	const char *dir = *state;
	char *f = join(dir, "f.json"), *g = join(dir, "g.json"), *h = join(dir, "h.json"), *s;
	struct stat before, after;
	char buf[16] = { 0 };
	int fd;

	umask(0);
	assert_int_equal(store_write_replace(f, "hello", 5, 0600), 0);
	s = get_file(f);
	assert_string_equal(s, "hello");
	free(s);
	assert_int_equal(stat_of(f).st_mode & 07777, 0600);
	assert_int_equal(store_write_replace(g, "x", 1, 0640), 0);
	assert_int_equal(stat_of(g).st_mode & 07777, 0640);
	umask(077);
	assert_int_equal(store_write_replace(h, "y", 1, 0644), 0);
	assert_int_equal(stat_of(h).st_mode & 07777, 0644);
	umask(0);

	/* Replacement: a new inode; a reader of the old file keeps the old bytes. */
	before = stat_of(f);
	fd = open(f, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(store_write_replace(f, "a longer text", 13, 0644), 0);
	after = stat_of(f);
	assert_true(after.st_ino != before.st_ino);
	assert_int_equal(after.st_mode & 07777, 0644);
	assert_int_equal(after.st_size, 13);
	s = get_file(f);
	assert_string_equal(s, "a longer text");
	free(s);
	assert_int_equal(pread(fd, buf, sizeof(buf) - 1, 0), 5);
	assert_string_equal(buf, "hello");
	close(fd);

	/* Empty content. */
	assert_int_equal(store_write_replace(g, NULL, 0, 0600), 0);
	assert_int_equal(stat_of(g).st_size, 0);
	assert_int_equal(stat_of(g).st_mode & 07777, 0600);
	assert_int_equal(store_write_replace(g, NULL, 3, 0600), -EINVAL);
	assert_int_equal(store_write_replace(NULL, "x", 1, 0600), -EINVAL);
	assert_entries(dir, 3);
	free(f);
	free(g);
	free(h);
}

static void test_write_replace_failures(void **state)
{
	const char *dir = *state;
	char *missing = join(dir, "missing/f.json"), *missing_dir = join(dir, "missing");
	char *under_file = join(dir, "plain/f.json"), *d = join(dir, "d"), *slash;
	struct stat st;

	assert_int_equal(store_write_replace(missing, "x", 1, 0600), -ENOENT);
	assert_int_equal(stat(missing_dir, &st), -1);
	assert_int_equal(errno, ENOENT);

	put_file(dir, "plain", "x");
	assert_true(store_write_replace(under_file, "x", 1, 0600) < 0);

	/* A non-empty directory cannot be replaced by a file; nothing is left behind. */
	mkdir_rel(dir, "d");
	put_file(dir, "d/keep", "k");
	assert_true(store_write_replace(d, "x", 1, 0600) < 0);
	assert_true(S_ISDIR(stat_of(d).st_mode));
	assert_entries(dir, 2);

	assert_int_equal(asprintf(&slash, "%s/", dir) > 0, 1);
	assert_int_equal(store_write_replace(slash, "x", 1, 0600), -EINVAL);
	assert_entries(dir, 2);
	free(slash);
	free(missing);
	free(missing_dir);
	free(under_file);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)
		T(test_job_round_trip),
		T(test_job_missing_and_remove),
		T(test_job_save_failure),
		T(test_job_damaged),
		T(test_job_wrong_types),
		T(test_job_failures_range),
		T(test_job_failures_no_wrap),
		T(test_ca_round_trip),
		T(test_ca_hostile),
		T(test_live_round_trip),
		T(test_live_damaged_file),
		T(test_live_damaged_entries),
		T(test_stamp_missing),
		T(test_stamp_changes),
		T(test_stamp_symlinks),
		T(test_stamp_install_bundle),
		T(test_write_replace),
		T(test_write_replace_failures),
#undef T
	};

	saved_umask = umask(022);
	umask(saved_umask);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
