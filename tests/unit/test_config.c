/* test_config.c - cmocka tests of the YAML configuration: schema, defaults, paths, errors with line:col, hostile input. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define BIG (16 * 1024 * 1024)

#include "config.h"

#define CA_LE "cas:\n  - name: le\n    directory: https://acme.example/dir\n"

static int load(const char *yaml, struct config **cfg, char *err, size_t errlen)
{
	return config_load_buffer("acmed.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

/* The exact error message for yaml, and no config. */
static void expect_error(const char *yaml, const char *want)
{
	struct config *cfg = (struct config *)1;
	char err[512];
	int rc = load(yaml, &cfg, err, sizeof(err));

	if (rc != -EINVAL || strcmp(err, want))
		print_error("input:\n%s\n", yaml);
	assert_int_equal(rc, -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static struct config *expect_ok(const char *yaml)
{
	struct config *cfg = NULL;
	char err[512] = "";
	int rc = load(yaml, &cfg, err, sizeof(err));

	if (rc)
		print_error("input:\n%s\nerror: %s\n", yaml, err);
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	assert_string_equal(err, "");
	return cfg;
}

static void assert_strv(const struct config_strv *sv, size_t n, ...)
{
	va_list ap;

	assert_int_equal(sv->n, n);
	assert_non_null(sv->v);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(sv->v[i], va_arg(ap, const char *));
	va_end(ap);
	assert_null(sv->v[n]);
}

static void test_full_valid(void **state)
{
	static const char yaml[] =
		"# every key\n"
		"state_dir: /srv/acmed/state\n"
		"runtime_dir: rt\n"
		"listen: [\"[::1]:8080\", \"127.0.0.1:80\", \"localhost:65535\"]\n"
		"cas:\n"
		"  - name: letsencrypt\n"
		"    directory: https://acme-v02.api.letsencrypt.org/directory\n"
		"    contact: [mailto:ops@example.org, \"MAILTO:sec@example.org\"]\n"
		"    ca_bundle: roots/extra.pem\n"
		"    max_parallel: 1000\n"
		"    orders_per_hour: 300\n"
		"    staging: https://acme-staging-v02.api.letsencrypt.org/directory\n"
		"  - name: pebble_1.test\n"
		"    directory: http://127.0.0.1:14000/dir\n"
		"certificates:\n"
		"  - name: web\n"
		"    ca: letsencrypt\n"
		"    domains: [Example.ORG, www.example.org, localhost, xn--bcher-kva.example]\n"
		"    key_type: rsa-4096\n"
		"    challenge: http-01\n"
		"    renew_before: 30d\n"
		"    output_dir: /etc/ssl/./web//live/\n"
		"    reload: [nginx.service, \"postfix@main.service\"]\n"
		"    exec: [/usr/local/sbin/push-cert, --quiet, \"a b\"]\n"
		"  - {name: Mail-2, ca: pebble_1.test, domains: [mail.example.org], key_type: ecdsa-p384,\n"
		"     renew_before: 12h, output_dir: ../out/mail, profile: shortlived,\n     key_reuse: true, key_group: root}\n";
	struct config *cfg;
	char err[256];

	assert_int_equal(config_load_buffer("/nonexistent-acmed-test/etc/acmed.yaml", yaml, strlen(yaml),
					    &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->path, "/nonexistent-acmed-test/etc/acmed.yaml");
	assert_string_equal(cfg->state_dir, "/srv/acmed/state");
	assert_string_equal(cfg->runtime_dir, "/nonexistent-acmed-test/etc/rt");
	assert_strv(&cfg->listen, 3, "[::1]:8080", "127.0.0.1:80", "localhost:65535");

	assert_int_equal(cfg->ncas, 2);
	assert_string_equal(cfg->cas[0].name, "letsencrypt");
	assert_string_equal(cfg->cas[0].directory, "https://acme-v02.api.letsencrypt.org/directory");
	assert_strv(&cfg->cas[0].contact, 2, "mailto:ops@example.org", "MAILTO:sec@example.org");
	assert_string_equal(cfg->cas[0].ca_bundle, "/nonexistent-acmed-test/etc/roots/extra.pem");
	assert_int_equal(cfg->cas[0].max_parallel, 1000);
	assert_int_equal(cfg->cas[0].orders_per_hour, 300);
	assert_string_equal(cfg->cas[0].staging, "https://acme-staging-v02.api.letsencrypt.org/directory");
	assert_int_equal(cfg->cas[0].line, 6);
	assert_string_equal(cfg->cas[1].name, "pebble_1.test");
	assert_string_equal(cfg->cas[1].directory, "http://127.0.0.1:14000/dir");
	assert_strv(&cfg->cas[1].contact, 0);
	assert_null(cfg->cas[1].ca_bundle);
	assert_int_equal(cfg->cas[1].max_parallel, 4);
	assert_int_equal(cfg->cas[1].timeout, 60);
	assert_int_equal(cfg->cas[1].orders_per_hour, 50);
	assert_null(cfg->cas[1].staging);
	assert_int_equal(cfg->cas[1].line, 13);

	assert_int_equal(cfg->ncerts, 2);
	const struct config_cert *w = &cfg->certs[0], *m = &cfg->certs[1];
	assert_string_equal(w->name, "web");
	assert_int_equal(w->ca, 0);
	assert_strv(&w->domains, 4, "example.org", "www.example.org", "localhost", "xn--bcher-kva.example");
	assert_int_equal(w->key_type, KEY_RSA_4096);
	assert_string_equal(w->challenge, "http-01");
	assert_int_equal(w->renew_before, 30 * 86400);
	assert_string_equal(w->output_dir, "/etc/ssl/web/live");
	assert_strv(&w->reload, 2, "nginx.service", "postfix@main.service");
	assert_strv(&w->exec, 3, "/usr/local/sbin/push-cert", "--quiet", "a b");
	assert_int_equal(w->line, 16);

	assert_string_equal(m->name, "Mail-2");
	assert_int_equal(m->ca, 1);
	assert_strv(&m->domains, 1, "mail.example.org");
	assert_int_equal(m->key_type, KEY_ECDSA_P384);
	assert_string_equal(m->challenge, "http-01");
	assert_int_equal(m->renew_before, 12 * 3600);
	assert_string_equal(m->output_dir, "/nonexistent-acmed-test/out/mail");
	assert_strv(&m->reload, 0);
	assert_strv(&m->exec, 0);
	assert_int_equal(m->line, 25);
	assert_string_equal(m->profile, "shortlived");
	assert_null(w->profile);
	assert_true(m->key_reuse);
	assert_false(w->key_reuse);
	assert_string_equal(m->key_group, "root");
	assert_null(w->key_group);

	assert_ptr_equal(config_find_cert(cfg, "web"), w);
	assert_ptr_equal(config_find_cert(cfg, "Mail-2"), m);
	assert_null(config_find_cert(cfg, "mail-2"));
	assert_null(config_find_cert(cfg, NULL));
	assert_null(config_find_cert(NULL, "web"));
	config_free(cfg);
}

static void test_defaults(void **state)
{
	struct config *cfg = expect_ok(CA_LE "certificates:\n  - name: web\n    domains: [a.example]\n");
	char cwd[PATH_MAX], want[PATH_MAX + 16];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/acmed.yaml", strcmp(cwd, "/") ? cwd : "");
	assert_string_equal(cfg->path, want);
	assert_string_equal(cfg->state_dir, "/var/lib/acmed");
	assert_string_equal(cfg->runtime_dir, "/run/acmed");
	assert_strv(&cfg->listen, 2, "[::]:80", "0.0.0.0:80");
	assert_int_equal(cfg->ncas, 1);
	assert_strv(&cfg->cas[0].contact, 0);
	assert_null(cfg->cas[0].ca_bundle);
	assert_int_equal(cfg->cas[0].max_parallel, 4);
	assert_int_equal(cfg->ncerts, 1);
	assert_int_equal(cfg->certs[0].ca, 0);
	assert_int_equal(cfg->certs[0].key_type, KEY_ECDSA_P256);
	assert_string_equal(cfg->certs[0].challenge, "http-01");
	assert_int_equal(cfg->certs[0].renew_before, 0);
	assert_string_equal(cfg->certs[0].output_dir, "/var/lib/acmed/live/web");
	assert_strv(&cfg->certs[0].reload, 0);
	assert_strv(&cfg->certs[0].exec, 0);
	config_free(cfg);

	/* Certificates may be absent, empty or null; output_dir follows state_dir. */
	cfg = expect_ok(CA_LE);
	assert_int_equal(cfg->ncerts, 0);
	config_free(cfg);
	cfg = expect_ok(CA_LE "certificates: []\n");
	assert_int_equal(cfg->ncerts, 0);
	config_free(cfg);
	cfg = expect_ok(CA_LE "certificates:\n");
	assert_int_equal(cfg->ncerts, 0);
	config_free(cfg);
	cfg = expect_ok("state_dir: /srv/s/\n" CA_LE "certificates: [{name: x.y, domains: [a]}]\n");
	assert_string_equal(cfg->certs[0].output_dir, "/srv/s/live/x.y");
	config_free(cfg);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void test_relative_paths(void **state)
{
	char tmpl[] = "/tmp/acmed-config-XXXXXX", root[PATH_MAX], p[PATH_MAX + 64], want[PATH_MAX + 64];
	char cwd[PATH_MAX], err[256];
	struct config *cfg;

	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, root));
	snprintf(p, sizeof(p), "%s/etc", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/link", root);
	assert_int_equal(symlink("etc", p), 0);
	snprintf(p, sizeof(p), "%s/etc/acmed.yaml", root);
	write_file(p, "state_dir: state\nruntime_dir: ./run/../rt/\n"
		   "cas: [{name: le, directory: https://a.example/d, ca_bundle: ../roots.pem}]\n"
		   "certificates:\n  - {name: web, domains: [a.example]}\n"
		   "  - {name: api, domains: [b.example], output_dir: out//api/.}\n");

	/* Through a symlinked directory, by absolute path. */
	snprintf(p, sizeof(p), "%s/link/acmed.yaml", root);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/etc/acmed.yaml", root);
	assert_string_equal(cfg->path, want);
	snprintf(want, sizeof(want), "%s/etc/state", root);
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/rt", root);
	assert_string_equal(cfg->runtime_dir, want);
	snprintf(want, sizeof(want), "%s/roots.pem", root);
	assert_string_equal(cfg->cas[0].ca_bundle, want);
	snprintf(want, sizeof(want), "%s/etc/state/live/web", root);
	assert_string_equal(cfg->certs[0].output_dir, want);
	snprintf(want, sizeof(want), "%s/etc/out/api", root);
	assert_string_equal(cfg->certs[1].output_dir, want);
	config_free(cfg);

	/* By a relative path from another working directory; the name in errors stays as given. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(root), 0);
	assert_int_equal(config_load("link/acmed.yaml", &cfg, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/etc/state", root);
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/acmed.yaml", root);
	assert_string_equal(cfg->path, want);
	config_free(cfg);
	write_file("bad.yaml", "cas: 1\n");
	assert_int_equal(config_load("./bad.yaml", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "./bad.yaml:1:6: cas: expected a sequence of CAs, got \"1\"");
	/* A directory that does not exist: joined to the working directory. */
	assert_int_equal(config_load_buffer("no/such/../dir/a.yaml", CA_LE, strlen(CA_LE), &cfg, err,
					    sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/no/dir/a.yaml", root);
	assert_string_equal(cfg->path, want);
	config_free(cfg);
	assert_int_equal(chdir(cwd), 0);

	snprintf(p, sizeof(p), "rm -rf '%s'", root);
	assert_int_equal(system(p), 0);
}

static void test_load_errors(void **state)
{
	char tmpl[] = "/tmp/acmed-config-XXXXXX", p[PATH_MAX], err[256];
	struct config *cfg = (struct config *)1;
	char *big;
	FILE *f;

	assert_int_equal(config_load("/nonexistent-acmed-test/acmed.yaml", &cfg, err, sizeof(err)), -ENOENT);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent-acmed-test/acmed.yaml: cannot open: No such file or directory");
	assert_non_null(mkdtemp(tmpl));
	assert_int_equal(config_load(tmpl, &cfg, err, sizeof(err)), -EISDIR);
	assert_null(cfg);
	snprintf(p, sizeof(p), "%s: not a regular file (a directory); acmed reads its configuration "
		 "from a regular file", tmpl);
	assert_string_equal(err, p);

	/* 16 MiB (10 000 certificates in block style need ~3 MiB) is accepted (a valid file padded with a comment), one byte more is not. */
	big = malloc(BIG + 2);
	assert_non_null(big);
	memset(big, '#', BIG + 1);
	memcpy(big, CA_LE, strlen(CA_LE));
	big[BIG] = '\n';
	snprintf(p, sizeof(p), "%s/big.yaml", tmpl);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, BIG, f), BIG);
	fclose(f);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), 0);
	config_free(cfg);
	f = fopen(p, "a");
	fputc('\n', f);
	fclose(f);
	/* The message gives the size and the limit, in bytes when MiB would read
	 * "16 MiB, more than the 16 MiB". */
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EFBIG);
	assert_null(cfg);
	assert_non_null(strstr(err, "big.yaml: 16777217 bytes, more than the 16 MiB a configuration "
			       "may have"));
	assert_int_equal(config_load_buffer("b.yaml", big, BIG + 1, &cfg, err, sizeof(err)), -EFBIG);
	assert_string_equal(err, "b.yaml: 16777217 bytes, more than the 16 MiB a configuration may have");
	/* Larger ones are refused from their size, unread. */
	assert_int_equal(truncate(p, 17 * 1024 * 1024), 0);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "big.yaml: 17 MiB, more than the 16 MiB a configuration may have"));
	assert_int_equal(truncate(p, 40 * 1024 * 1024 + 300000), 0);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "big.yaml: 40.3 MiB, more than the 16 MiB a configuration may have"));
	free(big);
	unlink(p);

	/* Not a regular file: refused at once (a FIFO would block open() and read()
	 * until someone writes: check-config and reload hung). */
	snprintf(p, sizeof(p), "%s/fifo.yaml", tmpl);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EINVAL);
	assert_null(cfg);
	assert_non_null(strstr(err, "fifo.yaml: not a regular file (a FIFO); acmed reads its "
			       "configuration from a regular file"));
	unlink(p);
	assert_int_equal(config_load("/dev/null", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/null: not a regular file (a character device); acmed reads "
			    "its configuration from a regular file");
	/* A symlink to a regular file is fine. */
	snprintf(p, sizeof(p), "%s/real.yaml", tmpl);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(CA_LE, f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/link.yaml", tmpl);
	assert_int_equal(symlink("real.yaml", p), 0);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), 0);
	config_free(cfg);
	unlink(p);
	snprintf(p, sizeof(p), "%s/real.yaml", tmpl);
	unlink(p);
	rmdir(tmpl);

	/* A tiny error buffer is truncated, never overrun; NULL err is allowed. */
	char small[12];
	assert_int_equal(config_load_buffer("acmed.yaml", "x: 1\n", 5, &cfg, small, sizeof(small)), -EINVAL);
	assert_string_equal(small, "acmed.yaml:");
	assert_int_equal(config_load_buffer("acmed.yaml", "x: 1\n", 5, &cfg, NULL, 0), -EINVAL);
	assert_null(cfg);
	assert_int_equal(config_load_buffer("acmed.yaml", NULL, 5, &cfg, err, sizeof(err)), -EINVAL);
}

static void test_example_config(void **state)
{
	const char *data = getenv("ACMED_TEST_DATA");
	char p[PATH_MAX], err[512] = "";
	struct config *cfg = NULL;

	size_t n;

	/* ACMED_TEST_DATA is <source>/tests/unit/data, which need not exist. */
	assert_non_null(data);
	n = strlen(data);
	assert_true(n >= 15 && !strcmp(data + n - 15, "tests/unit/data"));
	snprintf(p, sizeof(p), "%.*sconfig/example.yaml", (int)(n - 15), data);
	if (config_load(p, &cfg, err, sizeof(err)))
		print_error("%s\n", err);
	assert_non_null(cfg);
	assert_int_equal(cfg->ncas, 2);
	assert_int_equal(cfg->ncerts, 3);
	assert_string_equal(cfg->state_dir, "/var/lib/acmed");
	assert_string_equal(cfg->certs[1].challenge, "dns-01");
	assert_string_equal(cfg->certs[1].dns_provider, "hook");
	assert_int_equal(cfg->ndns_providers, 1);
	assert_strv(&cfg->cas[0].contact, 2, "mailto:ops@example.org", "mailto:security@example.org");
	assert_null(cfg->cas[0].ca_bundle);       /* shown, commented out: check-config must pass */
	assert_int_equal(cfg->certs[2].ca, 1);
	assert_int_equal(cfg->certs[2].key_type, KEY_RSA_3072);
	assert_int_equal(cfg->certs[0].exec.n, 0);
	assert_int_equal(cfg->certs[0].renew_before, 30 * 86400);
	config_free(cfg);
}

static void test_schema_errors(void **state)
{
	/* Unknown keys point at the key. */
	expect_error("stat_dir: /x\n" CA_LE,
		     "acmed.yaml:1:1: unknown key \"stat_dir\" at the top level; expected one of state_dir, "
		     "runtime_dir, listen, cas, certificates, include, tls_alpn_listen, dns, dns_providers");
	expect_error(CA_LE "    maxparallel: 3\n",
		     "acmed.yaml:4:5: unknown key \"maxparallel\" in a CA; expected one of name, directory, "
		     "contact, ca_bundle, max_parallel, timeout, orders_per_hour, staging, eab");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    staging: ftp://a/d\n",
		     "acmed.yaml:4:14: staging: expected an https:// URL, got \"ftp://a/d\"");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    staging: http://192.0.2.1/d\n",
		     "acmed.yaml:4:14: staging: expected an https:// URL (http:// is only allowed for "
		     "127.0.0.0/8, [::1] and localhost), got \"http://192.0.2.1/d\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], profile: \"tls server\"}]\n",
		     "acmed.yaml:4:49: profile: expected a profile name (letters, digits, '.', '_', '-'; at most 64), "
		     "got \"tls server\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], key_group: \"a:b\"}]\n",
		     "acmed.yaml:4:51: key_group: expected a group name like ssl-cert, got \"a:b\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], key_reuse: yes}]\n",
		     "acmed.yaml:4:51: key_reuse: expected true or false, got \"yes\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], profile: [x]}]\n",
		     "acmed.yaml:4:49: profile: expected a profile name like tlsserver, got a sequence");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    staging: [x]\n",
		     "acmed.yaml:4:14: staging: expected an https:// URL, got a sequence");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    timeout: 0s\n",
		     "acmed.yaml:4:14: timeout: expected a duration from 1s to 1h like 30s or 2m, got \"0s\"");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    timeout: 2h\n",
		     "acmed.yaml:4:14: timeout: expected a duration from 1s to 1h like 30s or 2m, got \"2h\"");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    timeout: [5s]\n",
		     "acmed.yaml:4:14: timeout: expected a duration from 1s to 1h like 30s or 2m, got a sequence");
	expect_error(CA_LE "certificates:\n  - name: w\n    domains: [a]\n    keytype: rsa-2048\n",
		     "acmed.yaml:7:5: unknown key \"keytype\" in a certificate; expected one of name, ca, domains, "
		     "key_type, challenge, renew_before, output_dir, reload, exec, webroot, profile, key_reuse, key_group, preferred_chain, "
		     "dns_provider");
	/* Duplicate keys point at the second one, quoting does not hide them. */
	expect_error(CA_LE "state_dir: /a\n\"state_dir\": /b\n",
		     "acmed.yaml:5:1: duplicate key \"state_dir\" at the top level (first at 4:1)");
	expect_error(CA_LE "    name: other\n",
		     "acmed.yaml:4:5: duplicate key \"name\" in a CA (first at 2:5)");
	expect_error(CA_LE "certificates: [{name: a, domains: [a], domains: [b]}]\n",
		     "acmed.yaml:4:40: duplicate key \"domains\" in a certificate (first at 4:26)");
	/* Wrong node types point at the value. */
	expect_error("state_dir: {a: 1}\n" CA_LE, "acmed.yaml:1:12: state_dir: expected a path, got a mapping");
	expect_error("runtime_dir: [a]\n" CA_LE, "acmed.yaml:1:14: runtime_dir: expected a path, got a sequence");
	expect_error("state_dir:\n" CA_LE, "acmed.yaml:1:11: state_dir: expected a path, got an empty value");
	expect_error("cas: {name: le}\n", "acmed.yaml:1:6: cas: expected a sequence of CAs, got a mapping");
	expect_error("cas: [le]\n", "acmed.yaml:1:7: cas: expected a mapping with name and directory, got \"le\"");
	expect_error(CA_LE "certificates: {}\n",
		     "acmed.yaml:4:15: certificates: expected a sequence of certificates, got a mapping");
	expect_error(CA_LE "certificates: [web]\n",
		     "acmed.yaml:4:16: certificates: expected a mapping with name and domains, got \"web\"");
	expect_error(CA_LE "certificates: [{name: w, domains: a.example}]\n",
		     "acmed.yaml:4:35: domains: expected a sequence of DNS names, got \"a.example\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [[a.example]]}]\n",
		     "acmed.yaml:4:36: domains: expected DNS names, got a sequence");
	expect_error(CA_LE "certificates: [{name: {a: b}, domains: [a]}]\n",
		     "acmed.yaml:4:23: name: expected a name, got a mapping");
	expect_error(CA_LE "listen: {a: 1}\n",
		     "acmed.yaml:4:9: listen: expected a sequence of \"host:port\" addresses, got a mapping");
	expect_error("? [a, b]\n: c\n" CA_LE,
		     "acmed.yaml:1:3: expected a key name at the top level, got a sequence");
	expect_error("cas:\n  - name: le\n    directory: https://a/d\n    max_parallel: [4]\n",
		     "acmed.yaml:4:19: max_parallel: expected an integer from 1 to 1000, got a sequence");
	/* Required keys point at the mapping. */
	expect_error("state_dir: /x\n", "acmed.yaml:1:1: missing required key \"cas\" (the ACME CAs to use)");
	expect_error("cas: []\n", "acmed.yaml:1:6: cas: expected at least one CA, got an empty list");
	expect_error("cas:\n  - directory: https://a/d\n", "acmed.yaml:2:5: CA: missing required key \"name\"");
	expect_error("cas:\n  - name: le\n", "acmed.yaml:2:5: CA \"le\": missing required key \"directory\"");
	expect_error(CA_LE "certificates:\n  - domains: [a]\n",
		     "acmed.yaml:5:5: certificate: missing required key \"name\"");
	expect_error(CA_LE "certificates:\n  - name: web\n",
		     "acmed.yaml:5:5: certificate \"web\": missing required key \"domains\"");
	expect_error(CA_LE "certificates:\n  - name: web\n    domains: []\n",
		     "acmed.yaml:6:14: domains: expected at least one DNS name, got an empty list");
}

static void test_value_errors(void **state)
{
	/* The example from the design, and the column counted in characters. */
	expect_error(CA_LE "certificates:\n  - name: web\n    domains: [a.example]\n    key_type: rsa-1024\n",
		     "acmed.yaml:7:15: key_type: expected one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, "
		     "rsa-4096, got \"rsa-1024\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], exec: [ä], key_type: RSA-2048}]\n",
		     "acmed.yaml:4:61: key_type: expected one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, "
		     "rsa-4096, got \"RSA-2048\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], challenge: dns-02}]\n",
		     "acmed.yaml:4:51: challenge: expected \"http-01\", \"dns-01\", \"tls-alpn-01\" or "
		     "\"dns-persist-01\", got \"dns-02\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [192.0.2.1], challenge: dns-persist-01}]\n",
		     "acmed.yaml:4:36: domains: \"192.0.2.1\": an IP address cannot be validated by dns-persist-01 "
		     "(http-01 or tls-alpn-01 can)");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], challenge: tls-alpn-01, webroot: /srv}]\n",
		     "acmed.yaml:4:73: webroot: only with the http-01 challenge (this certificate uses tls-alpn-01)");
	expect_error(CA_LE "tls_alpn_listen: []\n",
		     "acmed.yaml:4:18: tls_alpn_listen: expected at least one \"host:port\" address, got an empty list");
	/* Durations. */
	static const char *const bad_durations[] = { "0d", "-1d", "1.5d", "\"1 d\"", "10", "d", "1w", "+5m",
		"99999999999999999999d", "106751991167301d", "1dd", "\"\"", "0x10s" };
	for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++) {
		char yaml[256], want[512], shown[64];
		snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [a], renew_before: %s}]\n",
			 bad_durations[i]);
		if (bad_durations[i][0] == '"')
			snprintf(shown, sizeof(shown), "%s", bad_durations[i]);
		else
			snprintf(shown, sizeof(shown), "\"%s\"", bad_durations[i]);
		snprintf(want, sizeof(want), "acmed.yaml:4:54: renew_before: expected a duration like 90s, 15m, "
			 "12h or 30d (a positive whole number and one unit), got %s", shown);
		expect_error(yaml, want);
	}
	/* Names. */
	expect_error(CA_LE "certificates: [{name: \"we/b\", domains: [a]}]\n",
		     "acmed.yaml:4:23: name: expected letters, digits, '.', '_' and '-' only, got \"we/b\"");
	expect_error(CA_LE "certificates: [{name: .., domains: [a]}]\n",
		     "acmed.yaml:4:23: name: \".\" and \"..\" are not allowed as names");
	expect_error(CA_LE "certificates: [{name: \".\", domains: [a]}]\n",
		     "acmed.yaml:4:23: name: \".\" and \"..\" are not allowed as names");
	expect_error(CA_LE "certificates: [{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, "
		     "domains: [a]}]\n", "acmed.yaml:4:23: name: too long (65 characters, max 64)");
	config_free(expect_ok(CA_LE "certificates: [{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, "
			      "domains: [a]}]\n"));
	expect_error("cas: [{name: \"l e\", directory: https://a/d}]\n",
		     "acmed.yaml:1:14: name: expected letters, digits, '.', '_' and '-' only, got \"l e\"");
	expect_error("cas: [{name: a, directory: https://a/d}, {name: b, directory: https://b/d},\n"
		     "       {name: a, directory: https://c/d}]\n",
		     "acmed.yaml:2:15: name: duplicate CA name \"a\" (first at line 1)");
	expect_error(CA_LE "certificates:\n  - {name: web, domains: [a]}\n  - {name: api, domains: [a]}\n"
		     "  - {name: web, domains: [b]}\n",
		     "acmed.yaml:7:12: name: duplicate certificate name \"web\" (first at line 5)");
	/* CA references. */
	expect_error(CA_LE "certificates: [{name: w, domains: [a], ca: lets}]\n",
		     "acmed.yaml:4:44: ca: expected the name of a CA defined under cas, got \"lets\"");
	expect_error("certificates: [{name: w, domains: [a]}]\n"
		     "cas: [{name: a, directory: https://a/d}, {name: b, directory: https://b/d}]\n",
		     "acmed.yaml:1:16: certificate \"w\": missing key \"ca\" (required when more than one CA is "
		     "defined)");
	/* CA directory URLs. */
	static const struct { const char *url, *msg; } urls[] = {
		{ "ftp://a/d", "expected an https:// URL, got \"ftp://a/d\"" },
		{ "acme.example/dir", "expected an https:// URL, got \"acme.example/dir\"" },
		{ "http://acme.example/dir", "expected an https:// URL (http:// is only allowed for 127.0.0.0/8, "
		  "[::1] and localhost), got \"http://acme.example/dir\"" },
		{ "http://128.0.0.1/dir", "expected an https:// URL (http:// is only allowed for 127.0.0.0/8, "
		  "[::1] and localhost), got \"http://128.0.0.1/dir\"" },
		{ "http://[::2]:14000/dir", "expected an https:// URL (http:// is only allowed for 127.0.0.0/8, "
		  "[::1] and localhost), got \"http://[::2]:14000/dir\"" },
		{ "http://127.0.0.1@evil.example/dir", "user names or passwords in the URL are not supported, got "
		  "\"http://127.0.0.1@evil.example/dir\"" },
		{ "https:///dir", "expected a URL with a valid host and port, got \"https:///dir\"" },
		{ "https://a:0/dir", "expected a URL with a valid host and port, got \"https://a:0/dir\"" },
		{ "https://[::1/dir", "expected a URL with a valid host and port, got \"https://[::1/dir\"" },
		{ "\"https://a b/dir\"", "expected a URL without spaces or non-ASCII characters, got "
		  "\"https://a b/dir\"" },
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char yaml[256], want[512];
		snprintf(yaml, sizeof(yaml), "cas:\n  - name: a\n    directory: %s\n", urls[i].url);
		snprintf(want, sizeof(want), "acmed.yaml:3:16: directory: %s", urls[i].msg);
		expect_error(yaml, want);
	}
	static const char *const good_urls[] = { "http://127.0.0.1:14000/dir", "http://127.9.8.7/d",
		"http://[::1]:14000/dir", "http://LOCALHOST:80/dir", "HTTPS://acme.example", "https://[2001:db8::1]/d",
		"https://acme.example:443/dir?x=1" };
	for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
		char yaml[256];
		snprintf(yaml, sizeof(yaml), "cas:\n  - name: a\n    directory: %s\n", good_urls[i]);
		config_free(expect_ok(yaml));
	}
	/* Contact, max_parallel, ca_bundle. */
	expect_error("cas: [{name: a, directory: https://a/d, contact: [ops@example.org]}]\n",
		     "acmed.yaml:1:51: contact: expected a \"mailto:user@example.org\" address, got \"ops@example.org\"");
	expect_error("cas: [{name: a, directory: https://a/d, contact: [\"mailto:\"]}]\n",
		     "acmed.yaml:1:51: contact: expected a \"mailto:user@example.org\" address, got \"mailto:\"");
	expect_error("cas: [{name: a, directory: https://a/d, contact: mailto:a@b}]\n",
		     "acmed.yaml:1:50: contact: expected a sequence of \"mailto:\" addresses, got \"mailto:a@b\"");
	static const char *const bad_mp[] = { "0", "1001", "-1", "four", "4.0", "\"\"", "99999999999" };
	for (size_t i = 0; i < sizeof(bad_mp) / sizeof(bad_mp[0]); i++) {
		char yaml[256], want[512];
		snprintf(yaml, sizeof(yaml), "cas:\n  - name: a\n    directory: https://a/d\n    max_parallel: %s\n",
			 bad_mp[i]);
		snprintf(want, sizeof(want), "acmed.yaml:4:19: max_parallel: expected an integer from 1 to 1000, "
			 "got %s%s%s", bad_mp[i][0] == '"' ? "" : "\"", bad_mp[i], bad_mp[i][0] == '"' ? "" : "\"");
		expect_error(yaml, want);
	}
	static const char *const bad_oph[] = { "0", "100001", "-5", "ten", "1e3", "[50]" };
	for (size_t i = 0; i < sizeof(bad_oph) / sizeof(bad_oph[0]); i++) {
		char yaml[256], want[512];
		snprintf(yaml, sizeof(yaml), "cas:\n  - name: a\n    directory: https://a/d\n    orders_per_hour: %s\n",
			 bad_oph[i]);
		snprintf(want, sizeof(want), "acmed.yaml:4:22: orders_per_hour: expected an integer from 1 to 100000, "
			 "got %s%s%s", bad_oph[i][0] == '[' ? "" : "\"", bad_oph[i][0] == '[' ? "a sequence" : bad_oph[i],
			 bad_oph[i][0] == '[' ? "" : "\"");
		expect_error(yaml, want);
	}
	expect_error("cas: [{name: a, directory: https://a/d, ca_bundle: ~}]\n",
		     "acmed.yaml:1:52: ca_bundle: expected a path, got an empty value");
	/* listen. */
	static const char *const bad_listen[] = { "80", "\":80\"", "\"[::1]80\"", "\"1.2.3.4:0\"",
		"\"1.2.3.4:65536\"", "\"[zz]:80\"", "\"::1:80\"", "\"a b:80\"", "\"host:\"", "\"1.2.3.4:080x\"" };
	for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
		char yaml[256], want[512];
		snprintf(yaml, sizeof(yaml), "listen: [\"0.0.0.0:80\", %s]\n" CA_LE, bad_listen[i]);
		snprintf(want, sizeof(want), "acmed.yaml:1:24: listen: expected \"host:port\" like \"0.0.0.0:80\" "
			 "or \"[::]:80\" (port 1..65535), got %s%s%s", bad_listen[i][0] == '"' ? "" : "\"",
			 bad_listen[i], bad_listen[i][0] == '"' ? "" : "\"");
		expect_error(yaml, want);
	}
	expect_error("listen: []\n" CA_LE,
		     "acmed.yaml:1:9: listen: expected at least one \"host:port\" address, got an empty list");
	expect_error("listen: [\"[::]:80\", \"[::]:80\"]\n" CA_LE,
		     "acmed.yaml:1:21: listen: duplicate entry \"[::]:80\" (first at 1:10)");
	/* reload and exec. */
	/* webroot: a path, relative to the file's directory; none by default. */
	{
		struct config *cfg = expect_ok(CA_LE "certificates: [{name: w, domains: [a], webroot: www},"
					       " {name: v, domains: [b]}]\n");
		size_t n = strlen(cfg->certs[0].webroot);

		assert_true(cfg->certs[0].webroot[0] == '/' && n > 4);
		assert_string_equal(cfg->certs[0].webroot + n - 4, "/www");
		assert_null(cfg->certs[1].webroot);
		config_free(cfg);
	}
	expect_error(CA_LE "certificates: [{name: w, domains: [a], webroot: [a, b]}]\n",
		     "acmed.yaml:4:49: webroot: expected a path, got a sequence");
	/* A name without a unit type is a service, as for systemctl. */
	{
		struct config *cfg = expect_ok(CA_LE "certificates: [{name: w, domains: [a], reload: "
					       "[nginx, php8.2-fpm, \"postfix@main\", dovecot.socket]}]\n");

		assert_strv(&cfg->certs[0].reload, 4, "nginx.service", "php8.2-fpm.service",
			    "postfix@main.service", "dovecot.socket");
		config_free(cfg);
	}
	expect_error(CA_LE "certificates: [{name: w, domains: [a], reload: [nginx, nginx.service]}]\n",
		     "acmed.yaml:4:56: reload: duplicate entry \"nginx.service\" (first at 4:49)");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], reload: [\"ngi nx\"]}]\n",
		     "acmed.yaml:4:49: reload: expected a systemd unit name like \"nginx.service\", got \"ngi nx\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], reload: [a.service, x/y.service]}]\n",
		     "acmed.yaml:4:60: reload: expected a systemd unit name like \"nginx.service\", got \"x/y.service\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], reload: [.service]}]\n",
		     "acmed.yaml:4:49: reload: expected a systemd unit name like \"nginx.service\", got \".service\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], reload: nginx.service}]\n",
		     "acmed.yaml:4:48: reload: expected a sequence of systemd unit names, got \"nginx.service\"");
	expect_error(CA_LE "certificates:\n  - name: w\n    domains: [a]\n    exec: /usr/sbin/push-cert --quiet\n",
		     "acmed.yaml:7:11: exec: expected a list (argv), e.g. exec: [/usr/local/sbin/push-cert, "
		     "--quiet]; acmed runs no shell, so it does not split a string, got "
		     "\"/usr/sbin/push-cert --quiet\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], exec: []}]\n",
		     "acmed.yaml:4:46: exec: expected a non-empty list (argv), got an empty list");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], exec: {a: b}}]\n",
		     "acmed.yaml:4:46: exec: expected a non-empty list (argv), got a mapping");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], exec: [\"\", x]}]\n",
		     "acmed.yaml:4:47: exec: expected the program to run first, got \"\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], exec: [/bin/x, [y]]}]\n",
		     "acmed.yaml:4:55: exec: expected a string argument, got a sequence");
	/* Two certificates writing to the same directory. */
	expect_error("state_dir: /s\n" CA_LE "certificates:\n  - {name: a, domains: [a], output_dir: /s/live/b}\n"
		     "  - {name: b, domains: [b]}\n",
		     "acmed.yaml:6:41: output_dir: \"/s/live/b\" is also the output directory of certificate \"b\"");
	expect_error(CA_LE "certificates:\n  - {name: a, domains: [a], output_dir: /o}\n"
		     "  - {name: b, domains: [b], output_dir: /o/}\n",
		     "acmed.yaml:6:41: output_dir: \"/o\" is also the output directory of certificate \"a\"");
}

static void test_domain_errors(void **state)
{
	static const struct { const char *dom, *msg; } cases[] = {
		{ "\"*.example.org\"", "\"*.example.org\": a wildcard needs a DNS challenge: challenge: "
		  "dns-01 (with a dns_provider) or dns-persist-01" },
		{ "\"*.*.example.org\"", "\"*.*.example.org\": a wildcard is \"*.\" then a name, with no other '*'" },
		{ "bücher.example", "\"bücher.example\": expected an ASCII name; write internationalised names in "
		  "their xn-- (punycode) form" },
		{ "-a.example", "\"-a.example\": expected labels of 1 to 63 letters, digits or '-', not starting or "
		  "ending with '-'" },
		{ "a-.example", "\"a-.example\": expected labels of 1 to 63 letters, digits or '-', not starting or "
		  "ending with '-'" },
		{ "a..example", "\"a..example\": expected labels of 1 to 63 letters, digits or '-', not starting or "
		  "ending with '-'" },
		{ ".example", "\".example\": expected labels of 1 to 63 letters, digits or '-', not starting or "
		  "ending with '-'" },
		{ "example.org.", "\"example.org.\": expected a name without a trailing dot" },
		{ "a_b.example", "\"a_b.example\": expected a DNS name (letters, digits, '-' and '.'), got the "
		  "character '_'" },
		{ "a.*.example", "\"a.*.example\": expected a DNS name (letters, digits, '-' and '.'), got the "
		  "character '*'" },
		{ "\"a b\"", "\"a b\": expected a DNS name (letters, digits, '-' and '.'), got the character ' '" },
		{ "\"a:80\"", "\"a:80\": expected a DNS name or an IP address (IPv6 without brackets, port or zone)" },
		{ "\"[2001:db8::1]\"", "\"[2001:db8::1]\": expected a DNS name or an IP address (IPv6 without "
		  "brackets, port or zone)" },
		{ "\"fe80::1%eth0\"", "\"fe80::1%eth0\": expected a DNS name or an IP address (IPv6 without "
		  "brackets, port or zone)" },
		{ "192.0.2", "\"192.0.2\": expected a DNS name or an IP address (IPv4 as four decimal numbers)" },
		{ "192.0.2.256", "\"192.0.2.256\": expected a DNS name or an IP address (IPv4 as four decimal "
		  "numbers)" },
		{ "0x7f.0.0.1", "\"0x7f.0.0.1\": expected a DNS name or an IP address (IPv4 as four decimal "
		  "numbers)" },
		{ "\"\"", "\"\": expected labels of 1 to 63 letters, digits or '-', not starting or ending with '-'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[256], want[512];
		snprintf(yaml, sizeof(yaml), CA_LE "certificates:\n  - name: w\n    domains: [ok.example, %s]\n",
			 cases[i].dom);
		snprintf(want, sizeof(want), "acmed.yaml:6:27: domains: %s", cases[i].msg);
		expect_error(yaml, want);
	}
	/* Label and name length limits. */
	char label63[64], yaml[1024], want[512];
	memset(label63, 'a', 63);
	label63[63] = '\0';
	snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [%s.example]}]\n", label63);
	config_free(expect_ok(yaml));
	snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [%sa.example]}]\n", label63);
	snprintf(want, sizeof(want), "acmed.yaml:4:36: domains: \"%sa.example\": expected labels of 1 to 63 letters, "
		 "digits or '-', not starting or ending with '-'", label63);
	expect_error(yaml, want);
	/* Long values are cut in messages, at a character boundary. */
	snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [ok, \"%s%sä\"]}]\n", label63, label63);
	snprintf(want, sizeof(want), "acmed.yaml:4:40: domains: \"%s%.40s...\": expected an ASCII name; write "
		 "internationalised names in their xn-- (punycode) form", label63, label63);
	expect_error(yaml, want);
	/* 253 characters are fine, 254 are not. */
	snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [%s.%s.%s.%.61s]}]\n",
		 label63, label63, label63, label63);
	config_free(expect_ok(yaml));
	snprintf(yaml, sizeof(yaml), CA_LE "certificates: [{name: w, domains: [%s.%s.%s.%.62s]}]\n",
		 label63, label63, label63, label63);
	expect_error(yaml, "acmed.yaml:4:36: domains: name too long (254 characters, max 253)");
	/* Duplicates after lower-casing. */
	expect_error(CA_LE "certificates: [{name: w, domains: [a.example, b.example, A.Example]}]\n",
		     "acmed.yaml:4:58: domains: duplicate entry \"a.example\" (first at 4:36)");
	/* Single-label names, digits in labels, and the same name in two certificates are fine. */
	struct config *cfg = expect_ok(CA_LE "certificates:\n  - {name: a, domains: [localhost, 0-9.example, "
				       "a1.b2.c3]}\n  - {name: b, domains: [LOCALHOST], key_type: rsa-2048}\n");
	assert_strv(&cfg->certs[0].domains, 3, "localhost", "0-9.example", "a1.b2.c3");
	assert_strv(&cfg->certs[1].domains, 1, "localhost");
	config_free(cfg);
}

static void test_yaml_errors(void **state)
{
	expect_error("", "acmed.yaml:1:1: the file is empty; expected a mapping with at least \"cas\"");
	expect_error("# only a comment\n\n", "acmed.yaml:1:1: the file is empty; expected a mapping with at least \"cas\"");
	expect_error("---\n", "acmed.yaml:1:1: the document is empty; expected a mapping with at least \"cas\"");
	expect_error("\n\n---\n...\n", "acmed.yaml:3:1: the document is empty; expected a mapping with at least \"cas\"");
	expect_error("- a\n- b\n", "acmed.yaml:1:1: expected a mapping of settings (state_dir, cas, certificates, ...) "
		     "at the top level, got a sequence");
	expect_error("acmed\n", "acmed.yaml:1:1: expected a mapping of settings (state_dir, cas, certificates, ...) "
		     "at the top level, got \"acmed\"");
	expect_error(CA_LE "---\n" CA_LE, "acmed.yaml:4:1: a second YAML document; expected exactly one document in "
		     "the file");
	expect_error(CA_LE "...\n---\nfoo: 1\n", "acmed.yaml:5:1: a second YAML document; expected exactly one "
		     "document in the file");
	/* Anchors, aliases and tags. */
	expect_error("cas:\n  - &le\n    name: le\n    directory: https://a/d\n",
		     "acmed.yaml:2:5: YAML anchors (&le) are not supported");
	expect_error(CA_LE "certificates:\n  - name: w\n    domains: *doms\n",
		     "acmed.yaml:6:14: YAML aliases (*doms) are not supported; write the value out");
	expect_error("state_dir: !!str /x\n" CA_LE, "acmed.yaml:1:12: YAML tags (tag:yaml.org,2002:str) are not "
		     "supported");
	expect_error("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
		     "acmed.yaml:1:4: YAML anchors (&a) are not supported");
	expect_error("a: *x\n", "acmed.yaml:1:4: YAML aliases (*x) are not supported; write the value out");
	/* Syntax errors carry libyaml's mark and context. */
	expect_error(CA_LE "certificates: [{name: w, domains: [a]}\n",
		     "acmed.yaml:5:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
		     "sequence that started at 4:15)");
	expect_error("cas:\n  - name: le\n   directory: x\n",
		     "acmed.yaml:3:4: YAML syntax error: did not find expected '-' indicator (while parsing a "
		     "block collection that started at 2:3)");
	expect_error("state_dir: \"/x\n", "acmed.yaml:2:1: YAML syntax error: found unexpected end of stream "
		     "(while scanning a quoted scalar that started at 1:12)");
	expect_error("cas:\n\t- name: le\n", "acmed.yaml:2:1: YAML syntax error: found character that cannot start "
		     "any token (a tab; YAML indentation uses spaces only)");
	/* Binary data: NUL bytes, invalid UTF-8, UTF-16, controls in quoted strings. */
	{
		static const char nul[] = "cas:\n  - name: l\0e\n";
		struct config *cfg;
		char err[256];
		assert_int_equal(config_load_buffer("acmed.yaml", nul, sizeof(nul) - 1, &cfg, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "acmed.yaml:2:12: invalid input: control characters are not allowed "
				    "(byte 0x00); expected UTF-8 text");
		static const char utf16[] = "\xff\xfe" "c\0a\0s\0:\0";
		assert_int_equal(config_load_buffer("acmed.yaml", utf16, sizeof(utf16) - 1, &cfg, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "acmed.yaml:1:1: the file is UTF-16 (it starts with a UTF-16 "
				    "byte order mark); save it as UTF-8");
	}
	expect_error("cas: [x]\nstate_dir: /a\xc3\n", "acmed.yaml:2:15: invalid input: invalid trailing UTF-8 "
		     "octet (byte 0x0a); expected UTF-8 text");
	expect_error("cas: [x]\nstate_dir: /a\xc3", "acmed.yaml:2:14: invalid input: incomplete UTF-8 octet "
		     "sequence; expected UTF-8 text");
	expect_error("state_dir: \"/a\\0b\"\n" CA_LE,
		     "acmed.yaml:1:12: control character 0x00 in a value; expected printable text");
	expect_error("state_dir: \"/a\\tb\"\n" CA_LE,
		     "acmed.yaml:1:12: control character 0x09 in a value; expected printable text");
	expect_error("state_dir: |\n  /a\n  /b\n" CA_LE,
		     "acmed.yaml:1:12: control character 0x0a in a value; expected printable text");
	/* A byte-order mark is fine, whatever follows it (it was taken as one
	 * column of line 1: a second top-level key was "did not find expected
	 * <document start>"), and columns on line 1 are counted without it. */
	config_free(expect_ok("\xef\xbb\xbf" CA_LE));
	config_free(expect_ok("\xef\xbb\xbfstate_dir: /a\n" CA_LE "runtime_dir: /r\n"));
	config_free(expect_ok("\xef\xbb\xbf# a comment\nstate_dir: /a\n" CA_LE));
	config_free(expect_ok("\xef\xbb\xbf---\nstate_dir: /a\n" CA_LE));
	config_free(expect_ok("\xef\xbb\xbf%YAML 1.1\n---\nstate_dir: /a\n" CA_LE));
	expect_error("\xef\xbb\xbfstate_dir: [x]\n" CA_LE,
		     "acmed.yaml:1:12: state_dir: expected a path, got a sequence");
	expect_error("\xef\xbb\xbfstate_dir: /a\nfoo: 1\n" CA_LE,
		     "acmed.yaml:2:1: unknown key \"foo\" at the top level; expected one of state_dir, "
		     "runtime_dir, listen, cas, certificates, include, tls_alpn_listen, dns, dns_providers");
	expect_error("\xef\xbb\xbf", "acmed.yaml:1:1: the file is empty; expected a mapping with at "
		     "least \"cas\"");
	/* Twice (an editor that added one to a file that had one). */
	config_free(expect_ok("\xef\xbb\xbf\xef\xbb\xbfstate_dir: /a\n" CA_LE));
	{
		static const char be[] = "\xfe\xff" "\0c\0a\0s\0:";
		struct config *cfg;
		char err[256];
		assert_int_equal(config_load_buffer("acmed.yaml", be, sizeof(be) - 1, &cfg, err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "acmed.yaml:1:1: the file is UTF-16 (it starts with a UTF-16 "
				    "byte order mark); save it as UTF-8");
	}
}

static void test_hostile_sizes(void **state)
{
	/* Deep nesting stops at 32 levels. */
	char *deep = malloc(20001);
	assert_non_null(deep);
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	deep[20000] = '\0';
	expect_error(deep, "acmed.yaml:1:33: nesting too deep (more than 32 levels)");
	for (int i = 0; i < 5000; i++)
		memcpy(deep + i * 4, "{a: ", 4);
	deep[20000] = '\0';
	expect_error(deep, "acmed.yaml:1:129: nesting too deep (more than 32 levels)");
	free(deep);

	/* Scalars: 4096 bytes are fine, 4097 are not. */
	char *huge = malloc(8192);
	assert_non_null(huge);
	memcpy(huge, "state_dir: /", 12);
	memset(huge + 12, 'a', 4095);
	strcpy(huge + 12 + 4095, "\n" CA_LE);
	struct config *cfg = expect_ok(huge);
	assert_int_equal(strlen(cfg->state_dir), 4096);
	config_free(cfg);
	memset(huge + 12, 'a', 4096);
	strcpy(huge + 12 + 4096, "\n" CA_LE);
	expect_error(huge, "acmed.yaml:1:12: value too long (4097 bytes, max 4096)");
	free(huge);

	/* 100000 certificates at most: the next one is refused where it starts. */
	size_t n = 100001, len = strlen(CA_LE) + 16 + n * 3 + 4;
	char *many = malloc(len), *p;
	assert_non_null(many);
	p = many + sprintf(many, "%scertificates: [", CA_LE);
	for (size_t i = 0; i < n; i++, p += 3)
		memcpy(p, "{},", 3);
	strcpy(p - 1, "]\n");
	expect_error(many, "acmed.yaml:4:300016: certificates: too many (max 100000)");
	free(many);

	/* Many certificates: all parsed, unique names checked, output dirs derived. */
	n = 20000;
	many = malloc(strlen(CA_LE) + 20 + n * 64);
	assert_non_null(many);
	p = many + sprintf(many, "%scertificates:\n", CA_LE);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "  - {name: c%zu, domains: [c%zu.example]}\n", i, i);
	cfg = expect_ok(many);
	assert_int_equal(cfg->ncerts, n);
	assert_string_equal(cfg->certs[n - 1].output_dir, "/var/lib/acmed/live/c19999");
	assert_ptr_equal(config_find_cert(cfg, "c12345"), &cfg->certs[12345]);
	config_free(cfg);
	sprintf(p, "  - {name: c7, domains: [x]}\n");
	expect_error(many, "acmed.yaml:20005:12: name: duplicate certificate name \"c7\" (first at line 12)");
	free(many);
}

/* Random and mutated inputs: every result is either a config or a located error. */
static void test_garbage(void **state)
{
	static const char base[] = CA_LE "certificates:\n  - {name: w, domains: [a.example], exec: [/x]}\n";
	static const char alphabet[] = "[]{}:,-?&*!|>'\"%@`#\n\t \\ax1.\xc3\xa4\xff";
	uint32_t seed = 12345;
	char buf[256], err[512];

	for (int iter = 0; iter < 20000; iter++) {
		size_t len;
		struct config *cfg;
		int rc;

		if (iter % 2) {
			len = sizeof(base) - 1;
			memcpy(buf, base, len);
			for (int k = 0; k < 3; k++) {
				seed = seed * 1103515245u + 12345u;
				buf[(seed >> 8) % len] = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
			}
		} else {
			seed = seed * 1103515245u + 12345u;
			len = (seed >> 16) % sizeof(buf);
			for (size_t k = 0; k < len; k++) {
				seed = seed * 1103515245u + 12345u;
				buf[k] = (char)(seed >> 16);
			}
		}
		rc = config_load_buffer("g.yaml", buf, len, &cfg, err, sizeof(err));
		if (rc == 0) {
			assert_true(cfg->ncas >= 1);
			for (size_t i = 0; i < cfg->ncerts; i++) {
				assert_true(cfg->certs[i].ca < cfg->ncas);
				assert_true(cfg->certs[i].domains.n >= 1);
				assert_null(cfg->certs[i].exec.v[cfg->certs[i].exec.n]);
			}
			config_free(cfg);
		} else {
			int line, col;
			assert_int_equal(rc, -EINVAL);
			assert_null(cfg);
			assert_int_equal(sscanf(err, "g.yaml:%d:%d: ", &line, &col), 2);
			assert_true(line >= 1 && col >= 1);
		}
	}
}

static void test_duration(void **state)
{
	static const struct { const char *s; int64_t v; } good[] = {
		{ "90s", 90 }, { "15m", 900 }, { "12h", 43200 }, { "30d", 2592000 }, { "1s", 1 }, { "007s", 7 },
		{ "9223372036854775807s", INT64_MAX }, { "106751991167300d", 106751991167300LL * 86400 },
		{ "153722867280912930m", 153722867280912930LL * 60 },
	};
	static const char *const bad[] = { "", "s", "0s", "00d", "-1d", "+1d", "1.5d", "1 d", " 1d", "1d ", "1",
		"1w", "1D", "1dd", "d1", "9223372036854775808s", "106751991167301d", "2562047788015216h",
		"99999999999999999999999999s", "1e3s", "0x10s", "１d" };
	int64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		assert_int_equal(config_parse_duration(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -1;
		if (config_parse_duration(bad[i], &v) != -EINVAL)
			print_error("accepted \"%s\"\n", bad[i]);
		assert_int_equal(config_parse_duration(bad[i], &v), -EINVAL);
		assert_int_equal(v, -1);
	}
	assert_int_equal(config_parse_duration(NULL, &v), -EINVAL);
	assert_int_equal(config_parse_duration("1s", NULL), -EINVAL);
}

static void test_key_types(void **state)
{
	static const char *const names[] = { "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096" };
	static const enum key_type kts[] = { KEY_ECDSA_P256, KEY_ECDSA_P384, KEY_RSA_2048, KEY_RSA_3072, KEY_RSA_4096 };
	enum key_type kt;

	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(config_key_type_name(kts[i]), names[i]);
		kt = (enum key_type)99;
		assert_int_equal(config_key_type_parse(names[i], &kt), 0);
		assert_int_equal(kt, kts[i]);
	}
	kt = KEY_RSA_2048;
	assert_int_equal(config_key_type_parse("rsa-1024", &kt), -EINVAL);
	assert_int_equal(config_key_type_parse("ECDSA-P256", &kt), -EINVAL);
	assert_int_equal(config_key_type_parse("ecdsa-p256 ", &kt), -EINVAL);
	assert_int_equal(config_key_type_parse("", &kt), -EINVAL);
	assert_int_equal(config_key_type_parse(NULL, &kt), -EINVAL);
	assert_int_equal(kt, KEY_RSA_2048);
	assert_null(config_key_type_name((enum key_type)5));
	assert_null(config_key_type_name((enum key_type)-1));
}

/* check-config: every error of the file, each at its place, in file order;
 * loading stops at the first (the same one). */
static void test_every_error(void **state)
{
	static const char yaml[] =
		"cas:\n"
		"  - name: le\n"
		"    directory: http://example.com/dir\n"
		"    contact: [ops@example.org]\n"
		"    max_parallel: 0\n"
		"  - name: ok\n"
		"    directory: https://acme.example/dir\n"
		"certificates:\n"
		"  - name: web\n"
		"    ca: ok\n"
		"    domains: [\"*.example.org\"]\n"
		"    key_type: rsa-1024\n"
		"    exec: /bin/true --quiet\n"
		"  - name: api\n"
		"    ca: ok\n"
		"    domains: [api.example.org]\n"
		"    renew_before: 3x\n"
		"  - name: fine\n"
		"    ca: ok\n"
		"    domains: [fine.example.org]\n";
	struct config *cfg = NULL;
	char *all = NULL, err[1024];
	size_t len = 0;
	unsigned n = 0;
	FILE *m = open_memstream(&all, &len);

	assert_non_null(m);
	assert_int_equal(config_load_buffer_every_error("/etc/acmed/acmed.yaml", yaml, sizeof(yaml) - 1,
							 &cfg, m, &n), -EINVAL);
	fclose(m);
	assert_null(cfg);
	assert_int_equal(n, 7);
	assert_string_equal(all,
		"/etc/acmed/acmed.yaml:3:16: directory: expected an https:// URL (http:// is only allowed "
		"for 127.0.0.0/8, [::1] and localhost), got \"http://example.com/dir\"\n"
		"/etc/acmed/acmed.yaml:4:15: contact: expected a \"mailto:user@example.org\" address, got "
		"\"ops@example.org\"\n"
		"/etc/acmed/acmed.yaml:5:19: max_parallel: expected an integer from 1 to 1000, got \"0\"\n"
		"/etc/acmed/acmed.yaml:11:15: domains: \"*.example.org\": a wildcard needs a DNS challenge: "
		"challenge: dns-01 (with a dns_provider) or dns-persist-01\n"
		"/etc/acmed/acmed.yaml:12:15: key_type: expected one of ecdsa-p256, ecdsa-p384, rsa-2048, "
		"rsa-3072, rsa-4096, got \"rsa-1024\"\n"
		"/etc/acmed/acmed.yaml:13:11: exec: expected a list (argv), e.g. exec: "
		"[/usr/local/sbin/push-cert, --quiet]; acmed runs no shell, so it does not split a string, "
		"got \"/bin/true --quiet\"\n"
		"/etc/acmed/acmed.yaml:17:19: renew_before: expected a duration like 90s, 15m, 12h or 30d "
		"(a positive whole number and one unit), got \"3x\"\n");
	/* Loading says the first, and only it. */
	assert_int_equal(config_load_buffer("/etc/acmed/acmed.yaml", yaml, sizeof(yaml) - 1, &cfg, err,
					    sizeof(err)), -EINVAL);
	assert_null(cfg);
	assert_int_equal(strncmp(all, err, strlen(err)), 0);
	assert_int_equal(all[strlen(err)], '\n');
	free(all);
}

/* include: one file per certificate (or CA), merged in name order; messages
 * and relative paths belong to the file they are in. */
static void test_include(void **state)
{
	char tmpl[] = "/tmp/acmed-include-XXXXXX", root[512], p[600], want[2048];
	char err[1024], *all = NULL;
	struct config *cfg = NULL;
	size_t len = 0;
	unsigned n = 0;
	FILE *m;

	assert_non_null(mkdtemp(tmpl));
	assert_true(strlen(tmpl) < sizeof(root));
	snprintf(root, sizeof(root), "%s", tmpl);
	snprintf(p, sizeof(p), "%s/conf.d", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/acmed.yaml", root);
	write_file(p, "state_dir: state\ninclude: conf.d/*.yaml\ncertificates:\n"
		      "  - name: main\n    domains: [main.example.org]\n");
	/* No CA anywhere: said at the main file. */
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1:1: missing required key \"cas\" (the ACME CAs to use), here "
		 "or in an included file", p);
	assert_string_equal(err, want);
	snprintf(p, sizeof(p), "%s/conf.d/00-ca.yaml", root);
	write_file(p, "cas:\n  - name: le\n    directory: https://acme.example/dir\n");
	snprintf(p, sizeof(p), "%s/conf.d/10-web.yaml", root);
	write_file(p, "certificates:\n  - name: web\n    domains: [web.example.org]\n    output_dir: live/web\n");
	snprintf(p, sizeof(p), "%s/conf.d/15-empty.yaml", root);
	write_file(p, "# nothing yet\n");
	snprintf(p, sizeof(p), "%s/conf.d/20-mail.yml", root);            /* not matched by *.yaml */
	write_file(p, "certificates: [{name: mail, domains: [mail.example.org]}]\n");
	snprintf(p, sizeof(p), "%s/acmed.yaml", root);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->ncas, 1);
	assert_int_equal(cfg->ncerts, 2);
	assert_string_equal(cfg->certs[0].name, "main");            /* the main file first */
	assert_null(cfg->certs[0].file);
	assert_string_equal(cfg->certs[1].name, "web");
	snprintf(want, sizeof(want), "%s/conf.d/10-web.yaml", root);
	assert_string_equal(cfg->certs[1].file, want);
	snprintf(want, sizeof(want), "%s/conf.d/live/web", root);     /* relative to its own file */
	assert_string_equal(cfg->certs[1].output_dir, want);
	snprintf(want, sizeof(want), "%s/conf.d/00-ca.yaml", root);
	assert_string_equal(cfg->cas[0].file, want);
	config_free(cfg);

	/* Errors name the included file; a name used twice says where the first one is. */
	snprintf(p, sizeof(p), "%s/conf.d/30-bad.yaml", root);
	write_file(p, "certificates:\n  - name: other\n    domains: [o.example.org]\n    key_type: rsa-1\n"
		      "  - name: web\n    domains: [dup.example.org]\n");
	snprintf(p, sizeof(p), "%s/acmed.yaml", root);
	m = open_memstream(&all, &len);
	assert_non_null(m);
	assert_int_equal(config_load_every_error(p, &cfg, m, &n), -EINVAL);
	fclose(m);
	assert_int_equal(n, 1);
	snprintf(want, sizeof(want), "%s/conf.d/30-bad.yaml:4:15: key_type: expected one of ecdsa-p256, "
		 "ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, got \"rsa-1\"\n", root);
	assert_string_equal(all, want);
	free(all);
	snprintf(p, sizeof(p), "%s/conf.d/30-bad.yaml", root);
	write_file(p, "certificates:\n  - name: other\n    domains: [o.example.org]\n"
		      "  - name: web\n    domains: [dup.example.org]\n");
	snprintf(p, sizeof(p), "%s/acmed.yaml", root);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/30-bad.yaml:4:11: name: duplicate certificate name \"web\" "
		 "(first at %s/conf.d/10-web.yaml:2)", root, root);
	assert_string_equal(err, want);
	/* Only cas and certificates in an included file. */
	snprintf(p, sizeof(p), "%s/conf.d/30-bad.yaml", root);
	write_file(p, "state_dir: /elsewhere\n");
	snprintf(p, sizeof(p), "%s/acmed.yaml", root);
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/30-bad.yaml:1:1: unknown key \"state_dir\" in an included "
		 "file; expected one of cas, certificates", root);
	assert_string_equal(err, want);
	/* A pattern matching nothing is fine (an empty conf.d). */
	write_file(p, "include: [none/*.yaml]\ncas: [{name: le, directory: https://acme.example/dir}]\n");
	assert_int_equal(config_load(p, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->ncerts, 0);
	config_free(cfg);
	snprintf(want, sizeof(want), "rm -rf '%s'", root);
	assert_int_equal(system(want), 0);
}

/* `ca: [a, b]`: the CAs an order falls back to, in order. */
#define CA_TWO CA_LE "  - name: zs\n    directory: https://zs.example/dir\n  - name: gts\n    directory: https://gts.example/dir\n"
static void test_ca_list(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok(CA_TWO "certificates:\n  - {name: w, domains: [a], ca: [zs, le]}\n"
			"  - {name: v, domains: [b], ca: [gts]}\n  - {name: u, domains: [c], ca: le}\n");
	assert_int_equal(config_cert_nca(&cfg->certs[0]), 2);
	assert_string_equal(cfg->cas[config_cert_ca_at(&cfg->certs[0], 0)].name, "zs");
	assert_string_equal(cfg->cas[config_cert_ca_at(&cfg->certs[0], 1)].name, "le");
	assert_int_equal(cfg->certs[0].ca, config_cert_ca_at(&cfg->certs[0], 0));
	assert_int_equal(config_cert_ca_pos(&cfg->certs[0], 0), 1);    /* le */
	assert_int_equal(config_cert_ca_pos(&cfg->certs[0], 2), -1);   /* gts: not in it */
	assert_int_equal(config_cert_nca(&cfg->certs[1]), 1);
	assert_string_equal(cfg->cas[cfg->certs[1].ca].name, "gts");
	assert_int_equal(config_cert_nca(&cfg->certs[2]), 1);
	config_free(cfg);

	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: []}]\n",
		     "acmed.yaml:8:44: ca: expected a CA name or a list of CA names, got an empty list");
	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: [le, zs, le]}]\n",
		     "acmed.yaml:8:53: ca: \"le\" is already in the list (at line 8)");
	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: [le, nosuch]}]\n",
		     "acmed.yaml:8:49: ca: expected the name of a CA defined under cas, got \"nosuch\"");
	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: [le, zs, gts, le, zs]}]\n",
		     "acmed.yaml:8:62: ca: at most 4 CAs in a list");
	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: [le, [zs]]}]\n",
		     "acmed.yaml:8:49: ca: expected a name, got a sequence");
	expect_error(CA_TWO "certificates: [{name: w, domains: [a], ca: {le: 1}}]\n",
		     "acmed.yaml:8:44: ca: expected a name, got a mapping");
}

/* RFC 8738: IP addresses among the names, each in its one written form. */
static void test_ip_identifiers(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = expect_ok(CA_LE "certificates:\n  - name: w\n    domains: [192.0.2.10, \"2001:DB8:0:0::10\", "
			"\"::ffff:192.0.2.1\", www.example.org]\n");
	assert_strv(&cfg->certs[0].domains, 4, "192.0.2.10", "2001:db8::10", "::ffff:192.0.2.1", "www.example.org");
	config_free(cfg);
	/* the same address written twice is a duplicate */
	expect_error(CA_LE "certificates:\n  - name: w\n    domains: [\"2001:db8::10\", \"2001:0db8::0010\"]\n",
		     "acmed.yaml:6:31: domains: duplicate entry \"2001:db8::10\" (first at 6:15)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_valid),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_example_config),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_domain_errors),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_every_error),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_ca_list),
		cmocka_unit_test(test_ip_identifiers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
