/* test_config_dns.c - cmocka tests of dns:, dns_providers: and a certificate's dns-01 settings: values read, and every mistake refused at FILE:LINE:COL. */
#include <errno.h>
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

#include "config.h"

#define CA_LE "cas:\n  - name: le\n    directory: https://acme.example/dir\n"

static char dir[64];
static char good[128], open_mode[128], notb64[128], empty[128], creds[128];

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/acmed-test-config-dns.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(good, sizeof(good), "%s/good.secret", dir);
	snprintf(open_mode, sizeof(open_mode), "%s/open.secret", dir);
	snprintf(notb64, sizeof(notb64), "%s/notb64.secret", dir);
	snprintf(empty, sizeof(empty), "%s/empty.secret", dir);
	snprintf(creds, sizeof(creds), "%s/acme-dns.json", dir);
	put(good, "  c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=\n", 0600);
	put(open_mode, "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=\n", 0644);
	put(notb64, "this is not base64!\n", 0600);
	put(empty, "\n", 0600);
	put(creds, "{\"example.org\": {\"username\": \"u\", \"password\": \"p\", \"subdomain\": \"s\", "
	    "\"fulldomain\": \"s.auth.example.org\"}}", 0600);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int load(const char *yaml, struct config **cfg, char *err, size_t errlen)
{
	return config_load_buffer("acmed.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

static void expect_error(const char *yaml, const char *want)
{
	struct config *cfg = (struct config *)1;
	char err[600];
	int rc = load(yaml, &cfg, err, sizeof(err));

	if (rc != -EINVAL || strcmp(err, want))
		print_error("input:\n%s\n", yaml);
	assert_int_equal(rc, -EINVAL);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static char *fmt(const char *f, ...)
{
	static char buf[4][2048];
	static int at;
	va_list ap;
	char *b = buf[at++ % 4];

	va_start(ap, f);
	vsnprintf(b, sizeof(buf[0]), f, ap);
	va_end(ap);
	return b;
}

static void test_values(void **state)
{
	struct config *cfg = NULL;
	char err[600] = "";
	const char *yaml = fmt(CA_LE "dns:\n  resolvers: [\"127.0.0.1:5353\", \"::1\"]\n  propagation: resolvers\n"
			       "  propagation_timeout: 5m\n"
			       "dns_providers:\n"
			       "  - {name: primary, type: rfc2136, server: \"192.0.2.53\", tsig_key: acmed-key,\n"
			       "     tsig_algorithm: hmac-sha512, tsig_secret_file: %s, zone: Example.ORG., ttl: 2m}\n"
			       "  - {name: hook, type: exec, command: [/usr/local/bin/dns-hook, --quiet], timeout: 30s}\n"
			       "  - {name: delegated, type: acme-dns, url: \"https://auth.example.org/\", "
			       "credentials_file: %s}\n"
			       "certificates:\n"
			       "  - {name: wild, domains: [\"*.example.org\", example.org], challenge: dns-01, "
			       "dns_provider: primary}\n", good, creds);
	const struct config_dns_provider *p;

	(void)state;
	if (load(yaml, &cfg, err, sizeof(err)))
		print_error("%s\n", err);
	assert_non_null(cfg);
	assert_int_equal(cfg->dns.resolvers.n, 2);
	assert_string_equal(cfg->dns.resolvers.v[0], "127.0.0.1:5353");
	assert_int_equal(cfg->dns.propagation, CONFIG_DNS_RESOLVERS);
	assert_int_equal(cfg->dns.propagation_timeout, 300);
	assert_int_equal(cfg->ndns_providers, 3);
	p = config_find_dns_provider(cfg, "primary");
	assert_non_null(p);
	assert_int_equal(p->type, CONFIG_DNS_RFC2136);
	assert_string_equal(p->server, "192.0.2.53");
	assert_string_equal(p->tsig_algorithm, "hmac-sha512");
	/* white space around the secret is not part of it */
	assert_string_equal(p->tsig_secret, "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=");
	assert_string_equal(p->zone, "example.org");
	assert_int_equal(p->ttl, 120);
	p = config_find_dns_provider(cfg, "hook");
	assert_int_equal(p->type, CONFIG_DNS_EXEC);
	assert_int_equal(p->command.n, 2);
	assert_int_equal(p->timeout, 30);
	p = config_find_dns_provider(cfg, "delegated");
	assert_int_equal(p->type, CONFIG_DNS_ACMEDNS);
	assert_string_equal(p->url, "https://auth.example.org");
	assert_string_equal(cfg->certs[0].challenge, "dns-01");
	assert_string_equal(cfg->certs[0].dns_provider, "primary");
	/* a copy is the same, and a reload with it keeps the provider */
	{
		struct config_dns_provider copy;

		assert_int_equal(config_dns_provider_copy(&copy, config_find_dns_provider(cfg, "primary")), 0);
		assert_true(config_dns_provider_same(&copy, config_find_dns_provider(cfg, "primary")));
		assert_false(config_dns_provider_same(&copy, config_find_dns_provider(cfg, "hook")));
		/* another key for the same server: another provider, the same records */
		free(copy.tsig_key);
		copy.tsig_key = strdup("rotated-key");
		assert_false(config_dns_provider_same(&copy, config_find_dns_provider(cfg, "primary")));
		assert_true(config_dns_provider_same_place(&copy, config_find_dns_provider(cfg, "primary")));
		assert_false(config_dns_provider_same_place(&copy, config_find_dns_provider(cfg, "hook")));
		free(copy.server);
		copy.server = strdup("192.0.2.54");
		assert_false(config_dns_provider_same_place(&copy, config_find_dns_provider(cfg, "primary")));
		config_dns_provider_clear(&copy);
		/* the same hook with another timeout changes the same records; another command does not */
		assert_int_equal(config_dns_provider_copy(&copy, config_find_dns_provider(cfg, "hook")), 0);
		copy.timeout = 5;
		assert_true(config_dns_provider_same_place(&copy, config_find_dns_provider(cfg, "hook")));
		free(copy.command.v[1]);
		copy.command.v[1] = strdup("--verbose");
		assert_false(config_dns_provider_same_place(&copy, config_find_dns_provider(cfg, "hook")));
		config_dns_provider_clear(&copy);
	}
	config_free(cfg);

	/* defaults: the system's resolvers, every authoritative server, 2 minutes */
	yaml = CA_LE "dns_providers: [{name: h, type: exec, command: [/bin/true]}]\n"
	       "certificates: [{name: w, domains: [a.example], challenge: dns-01, dns_provider: h}]\n";
	assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->dns.resolvers.n, 0);
	assert_int_equal(cfg->dns.propagation, CONFIG_DNS_AUTHORITATIVE);
	assert_int_equal(cfg->dns.propagation_timeout, 120);
	assert_int_equal(cfg->dns_providers[0].timeout, 120);
	config_free(cfg);
}

#define EXEC_H "dns_providers: [{name: h, type: exec, command: [/bin/true]}]\n"

static void test_certificate_errors(void **state)
{
	(void)state;
	expect_error(CA_LE "certificates: [{name: w, domains: [a], challenge: dns-01}]\n",
		     "acmed.yaml:4:16: certificate \"w\": challenge dns-01 needs \"dns_provider\" (the name of one of "
		     "dns_providers)");
	expect_error(CA_LE EXEC_H "certificates: [{name: w, domains: [a], challenge: dns-01, dns_provider: nope}]\n",
		     "acmed.yaml:5:73: dns_provider: expected the name of one of dns_providers, got \"nope\"");
	expect_error(CA_LE "certificates: [{name: w, domains: [a], challenge: dns-01, dns_provider: nope}]\n",
		     "acmed.yaml:4:73: dns_provider: expected the name of one of dns_providers, got \"nope\" (there "
		     "is no dns_providers list)");
	expect_error(CA_LE EXEC_H "certificates: [{name: w, domains: [a], dns_provider: h}]\n",
		     "acmed.yaml:5:54: dns_provider: only with challenge: dns-01 (this certificate uses http-01)");
	expect_error(CA_LE EXEC_H "certificates: [{name: w, domains: [192.0.2.1], challenge: dns-01, dns_provider: h}]\n",
		     "acmed.yaml:5:36: domains: \"192.0.2.1\": an IP address cannot be validated by dns-01 (http-01 "
		     "or tls-alpn-01 can)");
	expect_error(CA_LE "certificates: [{name: w, domains: [\"*.a.example\"], challenge: tls-alpn-01}]\n",
		     "acmed.yaml:4:36: domains: \"*.a.example\": a wildcard needs a DNS challenge: challenge: dns-01 "
		     "(with a dns_provider) or dns-persist-01");
	expect_error(CA_LE "certificates: [{name: w, domains: [\"*.a.example\"]}]\n",
		     "acmed.yaml:4:36: domains: \"*.a.example\": a wildcard needs a DNS challenge: challenge: dns-01 "
		     "(with a dns_provider) or dns-persist-01");
}

static void test_provider_errors(void **state)
{
	(void)state;
	expect_error(CA_LE "dns_providers: [{name: p, type: route53}]\n",
		     "acmed.yaml:4:33: type: expected rfc2136, exec or acme-dns, got \"route53\"");
	expect_error(CA_LE "dns_providers: [{type: exec}]\n",
		     "acmed.yaml:4:17: dns provider: missing required key \"name\"");
	expect_error(CA_LE "dns_providers: [{name: p, type: rfc2136}]\n",
		     "acmed.yaml:4:17: dns provider \"p\" (rfc2136): missing required key \"server\" (the primary name "
		     "server's address)");
	expect_error(CA_LE "dns_providers: [{name: p, type: rfc2136, server: ns1.example.org}]\n",
		     "acmed.yaml:4:50: server: expected an IP address with an optional port like \"192.0.2.53\", "
		     "\"192.0.2.53:53\" or \"[2001:db8::53]:53\" (a name is not looked up), got \"ns1.example.org\"");
	expect_error(CA_LE "dns_providers: [{name: p, type: exec, command: [/bin/true], server: \"192.0.2.1\"}]\n",
		     "acmed.yaml:4:69: server: not a setting of exec providers");
	expect_error(CA_LE "dns_providers: [{name: p, type: exec, command: \"/bin/hook present\"}]\n",
		     "acmed.yaml:4:48: command: expected a list, the program first, like [/usr/local/bin/dns-hook] "
		     "(no shell), got \"/bin/hook present\"");
	expect_error(CA_LE "dns_providers: [{name: p, type: exec, command: [hook]}]\n",
		     "acmed.yaml:4:49: command: expected the program's absolute path, got \"hook\"");
	expect_error(CA_LE "dns_providers:\n  - {name: p, type: exec, command: [/bin/true]}\n"
		     "  - {name: p, type: exec, command: [/bin/true]}\n",
		     "acmed.yaml:6:5: name: duplicate DNS provider name \"p\" (first at line 5)");
	expect_error(CA_LE "dns_providers: [{name: p, type: acme-dns, url: \"http://auth.example.org\", "
		     "credentials_file: /x}]\n",
		     "acmed.yaml:4:48: url: expected an https:// URL (http:// is only allowed for 127.0.0.0/8, [::1] "
		     "and localhost), got \"http://auth.example.org\"");
	expect_error(CA_LE "dns_providers: [{name: p, type: acme-dns, url: \"https://a.example\", "
		     "credentials_file: /nonexistent/acme-dns.json}]\n",
		     "acmed.yaml:4:87: credentials_file /nonexistent/acme-dns.json: No such file or directory");
	expect_error(CA_LE "dns: {propagation: sometimes}\n",
		     "acmed.yaml:4:20: dns: propagation: expected authoritative, resolvers or none, got \"sometimes\"");
	expect_error(CA_LE "dns: {resolvers: [dns.google]}\n",
		     "acmed.yaml:4:19: dns: resolvers: expected an IP address with an optional port like "
		     "\"192.0.2.53\", \"192.0.2.53:53\" or \"[2001:db8::53]:53\" (a name is not looked up), got "
		     "\"dns.google\"");
	expect_error(CA_LE "dns: {propagation_timeout: 0s}\n",
		     "acmed.yaml:4:28: dns: propagation_timeout: expected a duration from 1s to 86400s like 30s or 2m, "
		     "got \"0s\"");
	expect_error(CA_LE "dns: {resolver: [\"127.0.0.1\"]}\n",
		     "acmed.yaml:4:7: unknown key \"resolver\" in dns; expected one of resolvers, propagation, "
		     "propagation_timeout");
}

static void test_acmedns_errors(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/bad-creds.json", dir);
	put(path, "[1, 2]", 0600);
	expect_error(fmt(CA_LE "dns_providers: [{name: p, type: acme-dns, url: \"https://a.example\", "
			 "credentials_file: %s}]\n", path),
		     fmt("acmed.yaml:4:87: credentials_file %s is not a JSON object of names (what acme-dns's "
			 "/register answered, under each name)", path));
	put(path, "{\"a.example\": {\"username\": \"u\", \"subdomain\": \"s\", \"fulldomain\": \"f\"}}", 0600);
	expect_error(fmt(CA_LE "dns_providers: [{name: p, type: acme-dns, url: \"https://a.example\", "
			 "credentials_file: %s}]\n", path),
		     fmt("acmed.yaml:4:87: credentials_file %s: \"a.example\" has no password", path));
	chmod(path, 0644);
	expect_error(fmt(CA_LE "dns_providers: [{name: p, type: acme-dns, url: \"https://a.example\", "
			 "credentials_file: %s}]\n", path),
		     fmt("acmed.yaml:4:87: credentials_file %s is readable by every user (mode 0644); chmod 0600 "
			 "it", path));
}

static void test_tsig_errors(void **state)
{
#define RFC "dns_providers: [{name: p, type: rfc2136, server: \"192.0.2.1\", "
	(void)state;
	expect_error(fmt(CA_LE RFC "tsig_key: k, tsig_algorithm: hmac-md5, tsig_secret_file: %s}]\n", good),
		     "acmed.yaml:4:92: tsig_algorithm: expected hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1, "
		     "got \"hmac-md5\"");
	expect_error(CA_LE RFC "tsig_key: k}]\n",
		     "acmed.yaml:4:73: dns provider \"p\": tsig_key and tsig_secret_file go together (the key's name "
		     "and its secret)");
	expect_error(fmt(CA_LE RFC "tsig_key: k, tsig_secret_file: %s/missing}]\n", dir),
		     fmt("acmed.yaml:4:94: tsig_secret_file %s/missing: No such file or directory", dir));
	expect_error(fmt(CA_LE RFC "tsig_key: k, tsig_secret_file: %s}]\n", open_mode),
		     fmt("acmed.yaml:4:94: tsig_secret_file %s is readable by every user (mode 0644); make it "
			 "readable by acmed alone: chmod 0600 (or 0640 with acmed's group)", open_mode));
	expect_error(fmt(CA_LE RFC "tsig_key: k, tsig_secret_file: %s}]\n", notb64),
		     fmt("acmed.yaml:4:94: tsig_secret_file %s is not base64; expected the TSIG key's secret in "
			 "base64, as tsig-keygen or keymgr print it", notb64));
	expect_error(fmt(CA_LE RFC "tsig_key: k, tsig_secret_file: %s}]\n", empty),
		     fmt("acmed.yaml:4:94: tsig_secret_file %s is empty; expected the TSIG key's secret in base64, "
			 "as tsig-keygen or keymgr print it", empty));
#undef RFC
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_certificate_errors),
		cmocka_unit_test(test_provider_errors),
		cmocka_unit_test(test_tsig_errors),
		cmocka_unit_test(test_acmedns_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
