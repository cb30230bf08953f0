/* test_status.c - unit tests for status.c: STATUS from real files on disk and from a scheduler, and the table. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "ari.h"
#include "crypto.h"
#include "config.h"
#include "scheduler.h"
#include "state.h"
#include "status.h"
#include "store.h"
#include "timeparse.h"

#define DAY 86400

/* ---- helpers ---- */

struct fx {
	char *dir;
	struct config *cfg;
	int64_t now;
};

/* A certificate for names (SAN), valid [nb, na], with a key of kind ("P-256" or "RSA"). */
static void make_cert(const char *outdir, const char *const *names, int64_t nb, int64_t na,
		      const char *kind)
{
	EVP_PKEY *k = strcmp(kind, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen(kind);
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	BIO *b;
	char *pem, *path;
	long len;

	assert_non_null(k);
	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1,
				   -1, 0);
	X509_set_subject_name(x, subj);
	X509_set_issuer_name(x, subj);
	for (size_t i = 0; names[i]; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		ASN1_STRING_set(s, names[i], -1);
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		sk_GENERAL_NAME_push(gens, g);
	}
	assert_true(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1);
	{
		/* An AKI, so the certificate has an ARI CertID (RFC 9773) */
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

		akid->keyid = ASN1_OCTET_STRING_new();
		assert_true(ASN1_OCTET_STRING_set(akid->keyid, (const unsigned char *)"0123456789abcdefghij", 20));
		assert_true(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0) == 1);
		AUTHORITY_KEYID_free(akid);
	}
	assert_true(X509_set_pubkey(x, k));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(store_mkdir_p(outdir, 0755), 0);

	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_X509(b, x));
	len = BIO_get_mem_data(b, &pem);
	path = store_path(outdir, "fullchain.pem");
	assert_int_equal(store_write_atomic(path, pem, (size_t)len, 0644), 0);
	free(path);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
	len = BIO_get_mem_data(b, &pem);
	path = store_path(outdir, "privkey.pem");
	assert_int_equal(store_write_atomic(path, pem, (size_t)len, 0600), 0);
	free(path);
	BIO_free(b);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(subj);
	X509_free(x);
	EVP_PKEY_free(k);
}

static char *live(struct fx *f, const char *name)
{
	char *l = store_path(f->dir, "live"), *p = store_path(l, name);

	free(l);
	return p;
}

static const char cfg_text[] =
	"state_dir: state\n"
	"runtime_dir: run\n"
	"cas:\n"
	"  - name: letsencrypt\n"
	"    directory: https://127.0.0.1:9/dir\n"
	"certificates:\n"
	"  - name: web\n"
	"    domains: [example.org, www.example.org]\n"
	"    output_dir: live/web\n"
	"  - name: mail\n"
	"    domains: [mail.example.org]\n"
	"    output_dir: live/mail\n"
	"  - name: old\n"
	"    domains: [old.example.org]\n"
	"    output_dir: live/old\n"
	"  - name: wrong\n"
	"    domains: [wrong.example.org, extra.example.org]\n"
	"    output_dir: live/wrong\n"
	"  - name: rsa\n"
	"    domains: [rsa.example.org]\n"
	"    key_type: rsa-2048\n"
	"    output_dir: live/rsa\n"
	"  - name: retry\n"
	"    domains: [retry.example.org]\n"
	"    output_dir: live/retry\n"
	"    renew_before: 30d\n";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/acmed-test-status-XXXXXX", err[512], *name;

	assert_non_null(f);
	assert_non_null(mkdtemp(tmpl));
	f->dir = strdup(tmpl);
	name = store_path(f->dir, "acmed.yaml");
	assert_int_equal(config_load_buffer(name, cfg_text, strlen(cfg_text), &f->cfg, err,
					    sizeof(err)), 0);
	free(name);
	f->now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	config_free(f->cfg);
	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static json_t *cert_by_name(json_t *st, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(st, "certificates"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
			return c;
	fail_msg("no certificate %s in status", name);
	return NULL;
}

static const char *sfield(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static int64_t tfield(json_t *o, const char *key)
{
	int64_t t;

	assert_int_equal(timeparse_rfc3339(sfield(o, key), &t), 0);
	return t;
}

/* Exactly these keys, no others. */
static void assert_keys(json_t *o, const char *const *keys)
{
	size_t n = 0;

	assert_true(json_is_object(o));
	for (; keys[n]; n++)
		if (!json_object_get(o, keys[n]))
			fail_msg("key %s missing", keys[n]);
	assert_int_equal(json_object_size(o), n);
}

static const char *const top_keys[] = { "daemon", "generated_at", "cas", "certificates", NULL };
static const char *const ca_keys[] = { "name", "state", "next_probe", "waiting", "running", NULL };
static const char *const cert_keys[] = {
	"name", "ca", "domains", "key_type", "output_dir", "not_before", "not_after",
	"days_left", "state", "next_action", "next_at", "failures", "last_error",
	"last_error_at", "order_url", "ari", "waiting_for_ca_until", "issuer", "issued_by",
	"test_ca", "deploy_pending", "deploy_error", "cas", "issued_by_ca", NULL,
};

/* ---- from disk ---- */

static void test_disk_states(void **state)
{
	struct fx *f = *state;
	static const char *const web[] = { "example.org", "www.example.org", NULL };
	static const char *const old[] = { "old.example.org", NULL };
	static const char *const wrong[] = { "wrong.example.org", NULL };
	static const char *const rsa[] = { "rsa.example.org", NULL };
	static const char *const retry[] = { "retry.example.org", NULL };
	int64_t now = f->now;
	char *d;
	json_t *st, *c, *ca;
	size_t i;

	/* web: valid 90 days, 10 days old: renew when 1/3 is left, in 50 days. */
	d = live(f, "web"); make_cert(d, web, now - 10 * DAY, now + 80 * DAY, "P-256"); free(d);
	d = live(f, "old"); make_cert(d, old, now - 92 * DAY, now - 2 * DAY + 100, "P-256"); free(d);
	d = live(f, "wrong"); make_cert(d, wrong, now - DAY, now + 89 * DAY, "P-256"); free(d);
	d = live(f, "rsa"); make_cert(d, rsa, now - DAY, now + 89 * DAY, "P-256"); free(d);
	d = live(f, "retry"); make_cert(d, retry, now - 60 * DAY, now + 30 * DAY, "P-256"); free(d);

	st = status_from_disk_at(f->cfg, now);
	assert_non_null(st);
	assert_keys(st, top_keys);
	assert_true(json_is_false(json_object_get(st, "daemon")));
	assert_int_equal(tfield(st, "generated_at"), now);
	assert_int_equal(json_array_size(json_object_get(st, "certificates")), 6);
	json_array_foreach(json_object_get(st, "certificates"), i, c)
		assert_keys(c, cert_keys);
	ca = json_array_get(json_object_get(st, "cas"), 0);
	assert_keys(ca, ca_keys);
	assert_string_equal(sfield(ca, "name"), "letsencrypt");
	assert_string_equal(sfield(ca, "state"), "up");
	assert_true(json_is_null(json_object_get(ca, "next_probe")));

	c = cert_by_name(st, "web");
	assert_string_equal(sfield(c, "state"), "valid");
	assert_string_equal(sfield(c, "ca"), "letsencrypt");
	assert_string_equal(sfield(c, "key_type"), "ecdsa-p256");
	d = live(f, "web");
	assert_string_equal(sfield(c, "output_dir"), d);
	free(d);
	assert_int_equal(json_array_size(json_object_get(c, "domains")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "domains"), 1)),
			    "www.example.org");
	assert_int_equal(tfield(c, "not_before"), now - 10 * DAY);
	assert_int_equal(tfield(c, "not_after"), now + 80 * DAY);
	assert_int_equal(json_integer_value(json_object_get(c, "days_left")), 80);
	assert_string_equal(sfield(c, "next_action"), "renew");
	/* When 1/3 is left, minus the certificate's own spread (at most an hour):
	 * the very time the daemon would choose. */
	assert_int_equal(tfield(c, "next_at"), sched_lifetime_renewal("web", now - 10 * DAY, now + 80 * DAY, 0));
	assert_in_range(tfield(c, "next_at"), now + 50 * DAY - 3600, now + 50 * DAY);
	assert_int_equal(json_integer_value(json_object_get(c, "failures")), 0);
	assert_true(json_is_null(json_object_get(c, "last_error")));
	assert_true(json_is_null(json_object_get(c, "last_error_at")));
	assert_true(json_is_null(json_object_get(c, "order_url")));
	assert_true(json_is_null(json_object_get(c, "ari")));

	c = cert_by_name(st, "mail");
	assert_string_equal(sfield(c, "state"), "missing");
	assert_true(json_is_null(json_object_get(c, "not_before")));
	assert_true(json_is_null(json_object_get(c, "not_after")));
	assert_true(json_is_null(json_object_get(c, "days_left")));
	assert_string_equal(sfield(c, "next_action"), "order");
	assert_int_equal(tfield(c, "next_at"), now);

	c = cert_by_name(st, "old");
	assert_string_equal(sfield(c, "state"), "expired");
	/* 2 days minus 100 s ago: floor gives -2, not -1. */
	assert_int_equal(json_integer_value(json_object_get(c, "days_left")), -2);
	assert_string_equal(sfield(c, "next_action"), "renew");
	assert_int_equal(tfield(c, "next_at"), now);

	assert_string_equal(sfield(cert_by_name(st, "wrong"), "state"), "mismatch");
	assert_string_equal(sfield(cert_by_name(st, "rsa"), "state"), "mismatch");
	assert_string_equal(sfield(cert_by_name(st, "rsa"), "key_type"), "rsa-2048");

	/* renew_before 30d and 30 days left: due now. */
	c = cert_by_name(st, "retry");
	assert_string_equal(sfield(c, "state"), "valid");
	assert_int_equal(tfield(c, "next_at"), now);
	json_decref(st);
}

/* The ARI CertID of the certificate in output_dir name, malloc'd. */
static char *cert_id_of(struct fx *f, const char *name)
{
	struct crypto_cert_info ci = { 0 };
	char *d = live(f, name), *path = store_path(d, "fullchain.pem"), *pem = NULL, *id = NULL;
	size_t len = 0;

	assert_int_equal(store_read_file(path, &pem, &len, 1 << 20), 0);
	assert_int_equal(crypto_cert_info_pem(pem, len, &ci), 0);
	assert_int_equal(ari_cert_id_info(&ci, &id), 0);
	assert_non_null(id);
	crypto_cert_info_clear(&ci);
	free(pem);
	free(path);
	free(d);
	return id;
}

static void test_disk_with_state(void **state)
{
	struct fx *f = *state;
	static const char *const web[] = { "example.org", "www.example.org", NULL };
	static const char *const retry[] = { "retry.example.org", NULL };
	struct state_job sj = { 0 };
	struct state_ca sc = { 0 };
	int64_t now = f->now;
	json_t *st, *c, *ari, *ca;
	char *d;

	d = live(f, "web"); make_cert(d, web, now - 10 * DAY, now + 80 * DAY, "P-256"); free(d);
	d = live(f, "retry"); make_cert(d, retry, now - 60 * DAY, now + 30 * DAY, "P-256"); free(d);

	/* web: an ARI window for this very certificate; the chosen instant wins
	 * over the 1/3 rule. */
	sj.ari_cert_id = cert_id_of(f, "web");
	sj.ari_start = now + 40 * DAY;
	sj.ari_end = now + 42 * DAY;
	sj.ari_chosen = now + 41 * DAY;
	sj.issued_by = strdup("https://acme-staging-v02.api.letsencrypt.org/directory");
	assert_int_equal(state_job_save(f->cfg->state_dir, "web", &sj), 0);
	state_job_clear(&sj);
	/* retry: failed twice, backing off for 3 hours, an order in flight. */
	sj.failures = 2;
	sj.next_attempt = now + 3 * 3600 + 10;
	sj.last_error = strdup("urn:ietf:params:acme:error:rateLimited: too many certificates");
	sj.last_error_at = now - 60;
	sj.order_url = strdup("https://127.0.0.1:9/order/7");
	assert_int_equal(state_job_save(f->cfg->state_dir, "retry", &sj), 0);
	state_job_clear(&sj);
	/* The CA has been down for a while. */
	sc.down_since = now - 600;
	sc.probe_failures = 3;
	sc.next_probe = now + 120;
	assert_int_equal(state_ca_save(f->cfg->state_dir, "letsencrypt", &sc, 1), 0);
	state_ca_clear(&sc);

	st = status_from_disk_at(f->cfg, now);
	assert_non_null(st);
	c = cert_by_name(st, "web");
	assert_string_equal(sfield(c, "state"), "valid");
	assert_int_equal(tfield(c, "next_at"), now + 41 * DAY);
	ari = json_object_get(c, "ari");
	assert_keys(ari, (const char *const[]){ "window_start", "window_end", "chosen", NULL });
	assert_int_equal(tfield(ari, "window_start"), now + 40 * DAY);
	assert_int_equal(tfield(ari, "window_end"), now + 42 * DAY);
	assert_int_equal(tfield(ari, "chosen"), now + 41 * DAY);
	/* Issued by Let's Encrypt's staging directory: flagged, whatever its issuer says. */
	assert_string_equal(sfield(c, "issued_by"),
			    "https://acme-staging-v02.api.letsencrypt.org/directory");
	assert_string_equal(sfield(c, "issuer"), "example.org");       /* self-signed */
	assert_true(json_is_true(json_object_get(c, "test_ca")));

	c = cert_by_name(st, "retry");
	assert_true(json_is_null(json_object_get(c, "issued_by")));     /* not recorded */
	assert_string_equal(sfield(c, "issuer"), "retry.example.org");
	assert_true(json_is_false(json_object_get(c, "test_ca")));
	assert_string_equal(sfield(c, "state"), "backoff");
	assert_string_equal(sfield(c, "next_action"), "retry");
	assert_int_equal(tfield(c, "next_at"), now + 3 * 3600 + 10);
	assert_int_equal(json_integer_value(json_object_get(c, "failures")), 2);
	assert_string_equal(sfield(c, "last_error"),
			    "urn:ietf:params:acme:error:rateLimited: too many certificates");
	assert_int_equal(tfield(c, "last_error_at"), now - 60);
	assert_string_equal(sfield(c, "order_url"), "https://127.0.0.1:9/order/7");

	/* Down: mail, old, wrong, rsa are missing (due now) and wait for it. */
	ca = json_array_get(json_object_get(st, "cas"), 0);
	assert_string_equal(sfield(ca, "state"), "down");
	assert_int_equal(tfield(ca, "next_probe"), now + 120);
	assert_int_equal(json_integer_value(json_object_get(ca, "waiting")), 4);
	json_decref(st);
}

/* A rate limit (the CA's Retry-After: a day) is shown as waiting for the CA,
 * until then; other failures, and a rate limit that is over, are not. */
static void test_disk_waiting_for_ca(void **state)
{
	struct fx *f = *state;
	static const char *const retry[] = { "retry.example.org", NULL };
	struct state_job sj = { 0 };
	int64_t now = f->now;
	json_t *st, *c;
	char *d, *out = NULL;
	size_t len = 0;
	FILE *m;

	d = live(f, "retry"); make_cert(d, retry, now - 60 * DAY, now + 30 * DAY, "P-256"); free(d);
	/* retry: rateLimited on its renewal; the order is kept for later. */
	sj.failures = 1;
	sj.next_attempt = now + DAY;
	sj.last_error = strdup("creating the order: HTTP 429 urn:ietf:params:acme:error:rateLimited");
	sj.last_error_class = strdup("rate limited");
	sj.last_error_at = now - 5;
	sj.order_url = strdup("https://127.0.0.1:9/order/8");
	assert_int_equal(state_job_save(f->cfg->state_dir, "retry", &sj), 0);
	state_job_clear(&sj);
	/* mail: never issued; its first order was rate limited (no order kept). */
	sj.failures = 2;
	sj.next_attempt = now + 3600;
	sj.last_error = strdup("creating the order: HTTP 429 rateLimited");
	sj.last_error_class = strdup("rate limited");
	assert_int_equal(state_job_save(f->cfg->state_dir, "mail", &sj), 0);
	state_job_clear(&sj);
	/* web: a certificate error, backing off: not the CA's doing. */
	sj.failures = 1;
	sj.next_attempt = now + 600;
	sj.last_error = strdup("authorization for example.org is invalid");
	sj.last_error_class = strdup("certificate error");
	assert_int_equal(state_job_save(f->cfg->state_dir, "web", &sj), 0);
	state_job_clear(&sj);
	/* old: rate limited once, but that is over. */
	sj.failures = 1;
	sj.next_attempt = now - 10;
	sj.last_error_class = strdup("rate limited");
	assert_int_equal(state_job_save(f->cfg->state_dir, "old", &sj), 0);
	state_job_clear(&sj);

	st = status_from_disk_at(f->cfg, now);
	assert_non_null(st);
	c = cert_by_name(st, "retry");
	assert_keys(c, cert_keys);
	assert_int_equal(tfield(c, "waiting_for_ca_until"), now + DAY);
	assert_int_equal(tfield(c, "next_at"), now + DAY);
	assert_string_equal(sfield(c, "next_action"), "retry");
	c = cert_by_name(st, "mail");
	assert_int_equal(tfield(c, "waiting_for_ca_until"), now + 3600);
	assert_int_equal(tfield(c, "next_at"), now + 3600);
	c = cert_by_name(st, "web");
	assert_true(json_is_null(json_object_get(c, "waiting_for_ca_until")));
	assert_int_equal(tfield(c, "next_at"), now + 600);
	c = cert_by_name(st, "old");
	assert_true(json_is_null(json_object_get(c, "waiting_for_ca_until")));

	/* The table says so, with the time (local; TZ=UTC here). */
	m = open_memstream(&out, &len);
	assert_non_null(m);
	status_print_table_width(m, st, 400);
	fclose(m);
	{
		char want[80], day[32];
		time_t t = (time_t)(now + DAY);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(want, sizeof(want), " waiting for the CA until %s ", day);
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "\nweb "));
		assert_non_null(strstr(out, "retry in 10m"));
	}
	free(out);
	json_decref(st);
}

/* The layout store_install_bundle makes (symlinks into a generation) reads the same. */
static void test_disk_installed_bundle(void **state)
{
	struct fx *f = *state;
	static const char *const web[] = { "example.org", "www.example.org", NULL };
	char *tmp = store_path(f->dir, "tmpcert"), *pem, *key, *d;
	size_t plen, klen;
	json_t *st, *c;

	make_cert(tmp, web, f->now - DAY, f->now + 89 * DAY, "P-256");
	d = store_path(tmp, "fullchain.pem");
	assert_int_equal(store_read_file(d, &pem, &plen, 1 << 20), 0);
	free(d);
	d = store_path(tmp, "privkey.pem");
	assert_int_equal(store_read_file(d, &key, &klen, 1 << 20), 0);
	free(d);
	struct store_bundle b = { key, klen, pem, plen, "", 0, pem, plen, 0, 0 };
	d = live(f, "web");
	assert_int_equal(store_install_bundle(d, &b), 0);
	free(d);
	free(pem);
	free(key);
	free(tmp);

	st = status_from_disk_at(f->cfg, f->now);
	c = cert_by_name(st, "web");
	assert_string_equal(sfield(c, "state"), "valid");
	assert_int_equal(json_integer_value(json_object_get(c, "days_left")), 89);
	json_decref(st);
}

/* A damaged state file or certificate does not stop status. */
static void test_disk_damaged(void **state)
{
	struct fx *f = *state;
	char *d = live(f, "web"), *p, *sd;
	json_t *st;

	assert_int_equal(store_mkdir_p(d, 0755), 0);
	p = store_path(d, "fullchain.pem");
	assert_int_equal(store_write_atomic(p, "-----BEGIN CERTIFICATE-----\nAAAA\n", 33, 0644), 0);
	free(p);
	free(d);
	sd = store_path(f->cfg->state_dir, "certs");
	assert_int_equal(store_mkdir_p(sd, 0700), 0);
	p = store_path(sd, "web.json");
	assert_int_equal(store_write_atomic(p, "{\"failures\": [", 14, 0600), 0);
	free(p);
	free(sd);
	st = status_from_disk_at(f->cfg, f->now);
	assert_non_null(st);
	assert_string_equal(sfield(cert_by_name(st, "web"), "state"), "missing");
	assert_int_equal(json_integer_value(json_object_get(cert_by_name(st, "web"), "failures")), 0);
	json_decref(st);
}

/* ---- from a scheduler ---- */

static void test_from_sched(void **state)
{
	struct fx *f = *state;
	struct event_base *base = event_base_new();
	struct acme_ca *ca = acme_ca_new(base, &f->cfg->cas[0], NULL, NULL);
	struct sched *s;
	json_t *st, *c, *jca;
	size_t i;

	assert_non_null(ca);
	struct acme_client *client = acme_ca_client(ca);
	s = sched_new(base, f->cfg, &client, NULL, 0, 0, NULL, NULL);
	assert_non_null(s);
	st = status_from_sched(f->cfg, s);
	assert_non_null(st);
	assert_keys(st, top_keys);
	assert_true(json_is_true(json_object_get(st, "daemon")));
	assert_int_equal(json_array_size(json_object_get(st, "certificates")), f->cfg->ncerts);
	json_array_foreach(json_object_get(st, "certificates"), i, c) {
		assert_keys(c, cert_keys);
		assert_string_equal(sfield(c, "name"), f->cfg->certs[i].name);
		assert_string_equal(sfield(c, "ca"), "letsencrypt");
		/* Not started: nothing known yet, no certificate. */
		assert_string_equal(sfield(c, "state"), "starting");
		assert_true(json_is_null(json_object_get(c, "not_after")));
		assert_true(json_is_null(json_object_get(c, "days_left")));
	}
	jca = json_array_get(json_object_get(st, "cas"), 0);
	assert_keys(jca, ca_keys);
	assert_string_equal(sfield(jca, "name"), "letsencrypt");
	assert_string_equal(sfield(jca, "state"), "up");
	assert_int_equal(json_integer_value(json_object_get(jca, "waiting")), 0);
	json_decref(st);
	sched_free(s);
	acme_ca_free(ca);
	event_base_free(base);
}

/* ---- table ---- */

static char *table(const char *json, unsigned width)
{
	json_t *st = json_loads(json, 0, NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(st);
	assert_non_null(m);
	status_print_table_width(m, st, width);
	fclose(m);
	json_decref(st);
	return buf;
}

static const char table_json[] =
	"{\"daemon\": true, \"generated_at\": \"2025-03-01T12:00:00Z\","
	" \"cas\": [{\"name\": \"letsencrypt\", \"state\": \"up\", \"next_probe\": null,"
	"            \"waiting\": 0, \"running\": 0},"
	"           {\"name\": \"staging\", \"state\": \"down\","
	"            \"next_probe\": \"2025-03-01T14:05:30Z\", \"waiting\": 12, \"running\": 0}],"
	" \"certificates\": ["
	"  {\"name\": \"web\", \"ca\": \"letsencrypt\", \"domains\": [\"example.org\", \"www.example.org\"],"
	"   \"key_type\": \"ecdsa-p256\", \"output_dir\": \"/x\", \"not_before\": \"2025-02-19T00:00:00Z\","
	"   \"not_after\": \"2025-05-20T00:00:00Z\", \"days_left\": 79, \"state\": \"valid\","
	"   \"next_action\": \"renew\", \"next_at\": \"2025-04-20T12:00:00Z\", \"failures\": 0,"
	"   \"last_error\": null, \"last_error_at\": null, \"order_url\": null, \"ari\": null,"
	"   \"issuer\": \"(STAGING) Ersatz Edamame E1\", \"test_ca\": true},"
	"  {\"name\": \"api\", \"ca\": \"staging\", \"domains\": [\"api.example.org\"],"
	"   \"key_type\": \"rsa-2048\", \"output_dir\": \"/y\", \"not_before\": null,"
	"   \"not_after\": null, \"days_left\": null, \"state\": \"backoff\","
	"   \"next_action\": \"retry\", \"next_at\": \"2025-03-01T15:00:30Z\", \"failures\": 3,"
	"   \"last_error\": \"caa: \\u001b[31mCAA record forbids issuance\", "
	"   \"last_error_at\": null, \"order_url\": null, \"ari\": null},"
	"  {\"name\": \"gone\", \"ca\": \"staging\", \"domains\": [],"
	"   \"key_type\": \"rsa-2048\", \"output_dir\": \"/z\", \"not_before\": null,"
	"   \"not_after\": \"2025-02-27T00:00:00Z\", \"days_left\": -3, \"state\": \"failed\","
	"   \"next_action\": \"none\", \"next_at\": null, \"failures\": 0,"
	"   \"last_error\": null, \"last_error_at\": null, \"order_url\": null, \"ari\": null,"
	"   \"issuer\": \"R11\", \"test_ca\": false}]}";

static void test_table_exact(void **state)
{
	char *out = table(table_json, 120);

	assert_string_equal(out,
		"NAME  DOMAINS          NOT AFTER   DAYS  ISSUER                                 STATE    NEXT          LAST ERROR\n"
		"web   example.org +1   2025-05-20  79    (STAGING) Ersatz Edamame E1 (TEST CA)  valid    renew in 50d  -\n"
		"api   api.example.org  -           -     -                                      backoff  retry in 3h   caa: ?[31mCAA ...\n"
		"gone  -                2025-02-27  -3    R11                                    failed   -             -\n"
		"CA letsencrypt: up\n"
		"CA staging: DOWN, next probe 14:05:30, 12 waiting\n");
	free(out);

	/* Wide enough: the error is whole (control characters still folded). */
	out = table(table_json, 200);
	assert_non_null(strstr(out, "retry in 3h   caa: ?[31mCAA record forbids issuance\n"));
	assert_null(strstr(out, "R11 (TEST CA)"));
	assert_null(strchr(out, '\x1b'));
	free(out);
}

/* From the daemon's JSON: the NEXT column names the CA's wait and its end. */
static void test_table_waiting_for_ca(void **state)
{
	char *out = table("{\"daemon\": true, \"generated_at\": \"2025-03-01T12:00:00Z\","
			  " \"cas\": [], \"certificates\": ["
			  "{\"name\": \"a\", \"domains\": [\"a.example\"], \"not_after\": null,"
			  " \"days_left\": null, \"state\": \"ordering\", \"next_action\": \"order\","
			  " \"next_at\": \"2025-03-02T12:00:00Z\", \"last_error\": \"rate limited\","
			  " \"waiting_for_ca_until\": \"2025-03-02T12:00:00Z\"},"
			  "{\"name\": \"b\", \"domains\": [\"b.example\"], \"not_after\": null,"
			  " \"days_left\": null, \"state\": \"backoff\", \"next_action\": \"retry\","
			  " \"next_at\": \"2025-03-01T15:00:30Z\", \"last_error\": null,"
			  " \"waiting_for_ca_until\": \"2025-03-01T15:00:30Z\"},"
			  "{\"name\": \"c\", \"domains\": [\"c.example\"], \"not_after\": null,"
			  " \"days_left\": null, \"state\": \"backoff\", \"next_action\": \"retry\","
			  " \"next_at\": \"2025-03-01T12:00:30Z\", \"last_error\": null,"
			  " \"waiting_for_ca_until\": null}]}", 200);

	assert_string_equal(out,
		"NAME  DOMAINS    NOT AFTER  DAYS  ISSUER  STATE     NEXT                                          LAST ERROR\n"
		"a     a.example  -          -     -       ordering  waiting for the CA until 2025-03-02 12:00:00  rate limited\n"
		"b     b.example  -          -     -       backoff   waiting for the CA until 15:00:30             -\n"
		"c     c.example  -          -     -       backoff   retry in 30s                                  -\n");
	free(out);
}

static void test_table_not_running(void **state)
{
	char *out = table("{\"daemon\": false, \"generated_at\": \"2025-03-01T12:00:00Z\","
			  " \"cas\": [{\"name\": \"le\", \"state\": \"down\", \"next_probe\":"
			  " \"2025-03-03T01:02:03Z\", \"waiting\": 0, \"running\": 0}],"
			  " \"certificates\": [{\"name\": \"a\", \"domains\": [\"a.example\"],"
			  " \"not_after\": null, \"days_left\": null, \"state\": \"missing\","
			  " \"next_action\": \"order\", \"next_at\": \"2025-03-01T12:00:00Z\","
			  " \"last_error\": null}]}", 100);

	assert_string_equal(out,
		"acmed is not running; from state_dir\n"
		"NAME  DOMAINS    NOT AFTER  DAYS  ISSUER  STATE    NEXT       LAST ERROR\n"
		"a     a.example  -          -     -       missing  order now  -\n"
		"CA le: DOWN, next probe 2025-03-03 01:02:03\n");
	free(out);
}

static void test_rfc3339(void **state)
{
	char buf[32];

	assert_string_equal(status_rfc3339(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	assert_string_equal(status_rfc3339(1740830400, buf, sizeof(buf)), "2025-03-01T12:00:00Z");
}

/* `status --check` on a status made of the given certificates (JSON objects, comma-separated). */
static int check(const char *certs, char **line)
{
	char *doc = NULL;
	size_t len = 0;
	FILE *m = open_memstream(line, &len);
	json_t *st;
	int rc;

	assert_true(asprintf(&doc, "{\"daemon\": true, \"generated_at\": \"2025-03-01T12:00:00Z\","
			     " \"cas\": [], \"certificates\": [%s]}", certs) > 0);
	st = json_loads(doc, 0, NULL);
	free(doc);
	assert_non_null(st);
	assert_non_null(m);
	rc = status_check(m, st);
	fclose(m);
	json_decref(st);
	return rc;
}

#define CERT(name, state, not_after, failures, err, dep) \
	"{\"name\": \"" name "\", \"state\": \"" state "\", \"not_after\": " not_after "," \
	" \"failures\": " #failures ", \"last_error\": " err ", \"deploy_error\": " dep "}"
#define FAR "\"2025-05-20T00:00:00Z\""

static void test_check_verdicts(void **state)
{
	char *line = NULL;

	assert_int_equal(check(CERT("web", "valid", FAR, 0, "null", "null") ","
			       CERT("api", "valid", FAR, 0, "null", "null"), &line), STATUS_CHECK_OK);
	assert_string_equal(line, "ACMED OK - 2 of 2 certificates OK | certificates=2 ok=2 warning=0 "
			    "critical=0\n");
	free(line);

	/* Failing, not deployed, a first order under way: WARNING, each named with its reason. */
	assert_int_equal(check(CERT("web", "backoff", FAR, 2, "\"rateLimited: too many\"", "null") ","
			       CERT("api", "valid", FAR, 0, "null", "\"reload of nginx.service failed\"") ","
			       CERT("new", "ordering", "null", 0, "null", "null") ","
			       CERT("ok", "valid", FAR, 0, "null", "null"), &line), STATUS_CHECK_WARNING);
	assert_string_equal(line, "ACMED WARNING - web failing: rateLimited: too many, api not deployed: "
			    "reload of nginx.service failed, new not issued yet; 1 of 4 certificates OK | "
			    "certificates=4 ok=1 warning=3 critical=0\n");
	free(line);

	/* Expiring within 7 days, expired, none after a failure: CRITICAL first. */
	assert_int_equal(check(CERT("soon", "valid", "\"2025-03-04T13:00:00Z\"", 0, "null", "null") ","
			       CERT("gone", "backoff", "\"2025-02-27T00:00:00Z\"", 3, "\"dns\"", "null") ","
			       CERT("never", "backoff", "null", 1, "\"unauthorized: \\u001b[31m| x\"", "null") ","
			       CERT("web", "backoff", FAR, 2, "\"serverInternal\"", "null"), &line),
			 STATUS_CHECK_CRITICAL);
	assert_string_equal(line, "ACMED CRITICAL - soon expires in 3d, gone expired, never has no "
			    "certificate: unauthorized: ?[31m? x; web failing: serverInternal; 0 of 4 "
			    "certificates OK | certificates=4 ok=0 warning=1 critical=3\n");
	free(line);

	/* No status at all. */
	{
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);
		json_t *st = json_pack("{s:b}", "daemon", 0);

		assert_int_equal(status_check(m, st), STATUS_CHECK_UNKNOWN);
		fclose(m);
		json_decref(st);
		assert_string_equal(line, "ACMED UNKNOWN - no certificates in acmed's status\n");
		free(line);
	}
}

/* A long list stays one bounded line: five named, then "...". */
static void test_check_bounded(void **state)
{
	char certs[16384] = "", *line = NULL;
	size_t used = 0;

	for (int i = 0; i < 40; i++)
		used += (size_t)snprintf(certs + used, sizeof(certs) - used, "%s{\"name\": \"c%d\", "
					 "\"state\": \"backoff\", \"not_after\": " FAR ", \"failures\": 1, "
					 "\"last_error\": \"%0200d\"}", i ? "," : "", i, 7);
	assert_int_equal(check(certs, &line), STATUS_CHECK_WARNING);
	assert_non_null(strstr(line, ", c4 failing: "));
	assert_null(strstr(line, "c5 failing"));
	assert_non_null(strstr(line, "..., ..."));
	assert_non_null(strstr(line, "| certificates=40 ok=0 warning=40 critical=0\n"));
	assert_true(strlen(line) < 1024);
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_with_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_waiting_for_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_installed_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_sched, setup, teardown),
		cmocka_unit_test(test_table_exact),
		cmocka_unit_test(test_table_waiting_for_ca),
		cmocka_unit_test(test_table_not_running),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_check_verdicts),
		cmocka_unit_test(test_check_bounded),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
