/* test_config_eab.c - a CA's eab: key ID, MAC key file decoded tolerantly, hostile and secret-leaking cases; check-config's checks of secret files and groups. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config.h"
#include "lint.h"
#include "testutil.h"

/* 32 bytes 0x00..0x1f in the forms CAs hand them out */
static const char key_std_padded[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
static const char key_url[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/* bytes with + and / in standard base64 */
static const char key_std_plus[] = "  +/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/  \r\n";
static const unsigned char key_std_plus_bytes[33] = {
	0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff,
	0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf };

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/acmed-eab-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(dir);
	return 0;
}

static void put(const char *name, const char *text, mode_t mode)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

/* The config with eab: VALUE under the CA, loaded from dir (relative paths are relative to it). */
static int load(const char *eab, struct config **cfg, char *err, size_t errlen)
{
	char yaml[1024], path[128];

	snprintf(yaml, sizeof(yaml), "cas:\n  - name: zerossl\n    directory: https://acme.zerossl.com/v2/DV90\n"
		 "    eab: %s\ncertificates: []\n", eab);
	snprintf(path, sizeof(path), "%s/acmed.yaml", dir);
	return config_load_buffer(path, yaml, strlen(yaml), cfg, err, errlen);
}

static void expect_key(const char *file_text, const unsigned char *want, size_t wantlen)
{
	struct config *cfg = NULL;
	char err[512];

	put("k", file_text, 0600);
	if (load("{kid: kid-1, hmac_key_file: k}", &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", file_text, err);
	assert_string_equal(cfg->cas[0].eab_kid, "kid-1");
	assert_string_equal(cfg->cas[0].eab_alg, "HS256");
	assert_int_equal(cfg->cas[0].eab_key_len, wantlen);
	assert_memory_equal(cfg->cas[0].eab_key, want, wantlen);
	config_free(cfg);
}

static void test_key_forms(void **state)
{
	unsigned char seq[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		seq[i] = (unsigned char)i;
	expect_key(key_std_padded, seq, 32);
	expect_key(key_url, seq, 32);
	expect_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", seq, 32);     /* over-padded */
	expect_key(key_std_plus, key_std_plus_bytes, 33);
}

static void expect_error(const char *eab, const char *file_text, const char *want)
{
	struct config *cfg = NULL;
	char err[512];

	if (file_text)
		put("k", file_text, 0600);
	if (load(eab, &cfg, err, sizeof(err)) != -EINVAL)
		fail_msg("eab: %s, file \"%s\": loaded", eab, file_text ? file_text : "-");
	assert_null(cfg);
	if (!strstr(err, want))
		fail_msg("eab: %s, file %s: got \"%s\", want \"%s\"", eab, file_text ? file_text : "-", err, want);
	/* the key is never in a message */
	if (file_text && strlen(file_text) > 8 && strstr(err, file_text))
		fail_msg("the key file's text is in the message: %s", err);
}

static void test_hostile(void **state)
{
	(void)state;
	expect_error("{kid: k, hmac_key_file: k}", "", "hmac_key_file ");
	expect_error("{kid: k, hmac_key_file: k}", "", "/k is empty; expected the MAC key the CA gave");
	expect_error("{kid: k, hmac_key_file: k}", " \n\n", "is empty");
	expect_error("{kid: k, hmac_key_file: k}", "not*base64!secretsecret\n", "/k is not base64");
	expect_error("{kid: k, hmac_key_file: k}", "-----BEGIN PRIVATE KEY-----\nabc\n", "/k is a PEM file");
	expect_error("{kid: k, hmac_key_file: nosuch}", NULL, "/nosuch: No such file or directory");
	expect_error("{hmac_key_file: k}", "AAAA", "eab: missing required key \"kid\"");
	expect_error("{kid: k}", NULL, "eab: missing required key \"hmac_key_file\"");
	expect_error("kid-1", NULL, "eab: expected a mapping with kid and hmac_key_file, got \"kid-1\"");
	expect_error("{kid: [a], hmac_key_file: k}", "AAAA", "eab: kid: expected the key identifier");
	expect_error("{kid: k, hmac_key_file: k, alg: HS1}", "AAAA", "eab: alg: expected HS256, HS384 or HS512");
	expect_error("{kid: k, hmac_key_file: k, key: x}", "AAAA", "unknown key \"key\" in eab");
}

static void test_alg_and_no_eab(void **state)
{
	struct config *cfg = NULL;
	char err[512], yaml[] = "cas: [{name: le, directory: https://a.example/d}]\n";

	(void)state;
	put("k", key_url, 0600);
	assert_int_equal(load("{kid: k, hmac_key_file: k, alg: HS512}", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->cas[0].eab_alg, "HS512");
	config_free(cfg);
	assert_int_equal(config_load_buffer("/x/acmed.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
	assert_null(cfg->cas[0].eab_kid);
	assert_null(cfg->cas[0].eab_key);
	config_free(cfg);
}

/* check-config: a key file others can read is an error; 0600 or 0640 is fine. */
static void test_lint_mode(void **state)
{
	struct config *cfg = NULL;
	char err[512], *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int errors = -1;

	(void)state;
	put("k", key_url, 0644);
	assert_int_equal(load("{kid: k, hmac_key_file: k}", &cfg, err, sizeof(err)), 0);
	f = open_memstream(&out, &outlen);
	lint_config(cfg, f, &errors);
	fclose(f);
	assert_int_equal(errors, 1);
	assert_non_null(strstr(out, "CA zerossl: eab: hmac_key_file "));
	assert_non_null(strstr(out, "/k is readable by every user (mode 0644): it is a secret; chmod 0640"));
	assert_null(strstr(out, key_url));
	free(out);
	out = NULL;
	put("k", key_url, 0640);
	f = open_memstream(&out, &outlen);
	lint_config(cfg, f, &errors);
	fclose(f);
	assert_int_equal(errors, 0);
	free(out);
	config_free(cfg);
}

/* key_group: the file only names the group; check-config looks it up (the
 * daemon does at each install, off its loop). */
static void test_lint_key_group(void **state)
{
	static const char yaml[] = "cas: [{name: le, directory: https://a.example/d}]\ncertificates:\n"
		"  - {name: a, domains: [a.example], key_group: root}\n"
		"  - {name: b, domains: [b.example], key_group: no-such-group-acmed}\n";
	struct config *cfg = NULL;
	char err[512], *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int errors = -1;

	(void)state;
	assert_int_equal(config_load_buffer("/x/acmed.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
	f = open_memstream(&out, &outlen);
	lint_config(cfg, f, &errors);
	fclose(f);
	assert_int_equal(errors, 1);
	assert_non_null(strstr(out, "acmed.yaml:4:48: error: certificate b: key_group: no group "
				    "\"no-such-group-acmed\" on this system (see getent group)"));
	assert_null(strstr(out, "certificate a:"));
	free(out);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alg_and_no_eab, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lint_mode, setup, teardown),
		cmocka_unit_test(test_lint_key_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
