/* test_certbot_conf.c - unit tests for certbot's renewal conf reader and the hook mapping of `acmed import certbot`, with hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "certbot_conf.h"
#include "import.h"

static const char real[] =
	"# renew_before_expiry = 30 days\n"
	"version = 2.1.0\n"
	"archive_dir = /etc/letsencrypt/archive/example.org\n"
	"cert = /etc/letsencrypt/live/example.org/cert.pem\n"
	"\n"
	"# Options used in the renewal process\n"
	"[renewalparams]\n"
	"account = 8e1d0389b103bc5e4f466b75f87ea0a4\n"
	"authenticator = webroot\n"
	"webroot_path = /var/www/html,\n"
	"server = https://acme-v02.api.letsencrypt.org/directory\n"
	"renew_hook = systemctl reload nginx\n"
	"[[webroot_map]]\n"
	"example.org = /var/www/html\n"
	"'www.example.org' = \"/srv/www, second\"\n";

static void test_real_file(void **state)
{
	struct certbot_conf c;
	char err[128];
	const struct certbot_conf_entry *e;

	(void)state;
	assert_int_equal(certbot_conf_parse(real, strlen(real), &c, err, sizeof(err)), 0);
	assert_null(certbot_conf_get(&c, "", "renew_before_expiry"));          /* a comment */
	assert_string_equal(certbot_conf_str(&c, "", "version"), "2.1.0");
	assert_null(certbot_conf_str(&c, "", "account"));                      /* another section's */
	assert_string_equal(certbot_conf_str(&c, "renewalparams", "account"), "8e1d0389b103bc5e4f466b75f87ea0a4");
	assert_string_equal(certbot_conf_str(&c, "renewalparams", "renew_hook"), "systemctl reload nginx");
	e = certbot_conf_get(&c, "renewalparams", "webroot_path");
	assert_non_null(e);
	assert_true(e->is_list);
	assert_int_equal(e->nvalues, 1);
	assert_string_equal(e->values[0], "/var/www/html");
	assert_null(certbot_conf_str(&c, "renewalparams", "webroot_path"));     /* a list, not a scalar */
	assert_string_equal(certbot_conf_str(&c, "renewalparams/webroot_map", "example.org"), "/var/www/html");
	/* quoted key and value; the comma inside quotes is text */
	assert_string_equal(certbot_conf_str(&c, "renewalparams/webroot_map", "www.example.org"), "/srv/www, second");
	assert_int_equal(certbot_conf_get(&c, "renewalparams", "server")->line, 11);
	certbot_conf_clear(&c);
}

static void test_values(void **state)
{
	static const char t[] =
		"\xef\xbb\xbf" "a = 1 # a comment\r\n"
		"b =\n"
		"c = x, 'y z' , \"w\",\n"
		"d = ,\n"
		"a = 2\n"
		"  [ s ]  \n"
		"k=v\n"
		"[t]\n"
		"k = 'it''s'\n";
	struct certbot_conf c;
	const struct certbot_conf_entry *e;
	char err[128];

	(void)state;
	assert_int_equal(certbot_conf_parse(t, sizeof(t) - 1, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 9: text after a quoted value");
	assert_int_equal(c.n, 0);
	assert_int_equal(certbot_conf_parse(t, sizeof(t) - 1 - strlen("k = 'it''s'\n"), &c, err, sizeof(err)), 0);
	assert_string_equal(certbot_conf_str(&c, "", "a"), "2");               /* the later one wins */
	assert_string_equal(certbot_conf_str(&c, "", "b"), "");
	e = certbot_conf_get(&c, "", "c");
	assert_int_equal(e->nvalues, 3);
	assert_string_equal(e->values[0], "x");
	assert_string_equal(e->values[1], "y z");
	assert_string_equal(e->values[2], "w");
	e = certbot_conf_get(&c, "", "d");
	assert_true(e->is_list);
	assert_int_equal(e->nvalues, 0);
	assert_string_equal(certbot_conf_str(&c, "s", "k"), "v");
	certbot_conf_clear(&c);
}

static void expect_bad(const char *text, size_t len, const char *want)
{
	struct certbot_conf c;
	char err[128];
	int rc = certbot_conf_parse(text, len, &c, err, sizeof(err));

	if (rc != -EINVAL || c.n != 0 || c.e != NULL || strstr(err, want) == NULL)
		fail_msg("parse(\"%.*s\") = %d, \"%s\"; want -EINVAL, \"%s\"", (int)len, text, rc, err, want);
}

static void test_hostile(void **state)
{
	char *big;

	(void)state;
	expect_bad("just words\n", 11, "line 1: expected key = value");
	expect_bad("= v\n", 4, "empty key");
	expect_bad("a = 'open\n", 10, "unterminated quote");
	expect_bad("a = '''multi\nline'''\n", 21, "triple-quoted");
	expect_bad("a = 'x' y\n", 10, "text after a quoted value");
	expect_bad("[a]]\n", 5, "unbalanced");
	expect_bad("[[a]]\n", 6, "nested more than one level");
	expect_bad("[a]\n[[[b]]]\n", 12, "line 2: section nested");
	expect_bad("[]\n", 3, "bad section name");
	expect_bad("[a/b]\n", 6, "bad section name");
	expect_bad("[[[[[[[[[x]]]]]]]]]\n", 20, "nested more than 7 deep");
	{
		/* 7 levels are fine, an 8th is refused (it once wrote past the section stack) */
		static const char deep[] = "[a]\n[[b]]\n[[[c]]]\n[[[[d]]]]\n[[[[[e]]]]]\n[[[[[[f]]]]]]\n"
			"[[[[[[[g]]]]]]]\nk = v\n[[[[[[[[h]]]]]]]]\nx = y\n";
		struct certbot_conf c;
		char err[128];

		assert_int_equal(certbot_conf_parse(deep, strlen("[a]\n[[b]]\n[[[c]]]\n[[[[d]]]]\n[[[[[e]]]]]\n"
							       "[[[[[[f]]]]]]\n[[[[[[[g]]]]]]]\nk = v\n"),
						    &c, err, sizeof(err)), 0);
		assert_string_equal(certbot_conf_str(&c, "a/b/c/d/e/f/g", "k"), "v");
		certbot_conf_clear(&c);
		expect_bad(deep, sizeof(deep) - 1, "line 9: sections nested more than 7 deep");
	}
	expect_bad("a = b\0c\n", 8, "NUL byte");
	expect_bad("a = 'x'y'\n", 10, "text after a quoted value");
	/* too many entries, too large */
	big = malloc(CERTBOT_CONF_MAX + 1);
	assert_non_null(big);
	for (size_t i = 0; i < CERTBOT_CONF_MAX; i += 4)
		memcpy(big + i, "a=1\n", 4);
	expect_bad(big, CERTBOT_CONF_ENTRIES * 4 + 4, "more than 4096 entries");
	expect_bad(big, CERTBOT_CONF_MAX + 1, "larger than");
	free(big);
}

static void test_empty_and_sections(void **state)
{
	struct certbot_conf c;
	char err[64];

	(void)state;
	assert_int_equal(certbot_conf_parse("", 0, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 0);
	static const char t[] = "[a]\n[[b]]\nx=1\n[c]\n[[d]]\n[[[e]]]\ny=2\n[[f]]\nz=3\n";

	assert_int_equal(certbot_conf_parse(t, sizeof(t) - 1, &c, err, sizeof(err)), 0);
	assert_string_equal(certbot_conf_str(&c, "a/b", "x"), "1");
	assert_string_equal(certbot_conf_str(&c, "c/d/e", "y"), "2");
	assert_string_equal(certbot_conf_str(&c, "c/f", "z"), "3");   /* back up a level */
	certbot_conf_clear(&c);
}

static void expect_units(const char *cmd, int want, const char *joined)
{
	struct config_strv u = { 0 };
	char got[512] = "";
	int r = import_hook_units(cmd, &u);

	for (size_t i = 0; i < u.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", u.v[i]);
	if (r != want || strcmp(got, joined) != 0)
		fail_msg("import_hook_units(\"%s\") = %d \"%s\"; want %d \"%s\"", cmd, r, got, want, joined);
	config_strv_clear(&u);
}

static void test_hook_units(void **state)
{
	(void)state;
	expect_units("systemctl reload nginx", 1, "nginx.service");
	expect_units("  /usr/bin/systemctl   restart postfix dovecot.service ", 1, "postfix.service dovecot.service");
	expect_units("systemctl reload-or-restart haproxy@main", 1, "haproxy@main.service");
	expect_units("service apache2 reload", 1, "apache2.service");
	/* anything else stays a shell command */
	expect_units("systemctl reload nginx && cp a b", 0, "");
	expect_units("systemctl reload nginx; rm -rf /", 0, "");
	expect_units("systemctl stop nginx", 0, "");
	expect_units("systemctl reload --no-block nginx", 0, "");
	expect_units("systemctl reload $UNIT", 0, "");
	expect_units("systemctl reload", 0, "");
	expect_units("service nginx reload extra", 0, "");
	expect_units("/usr/local/bin/deploy", 0, "");
	expect_units("", 0, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_file),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_empty_and_sections),
		cmocka_unit_test(test_hook_units),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
