/* lint.c - what check-config says beyond the syntax: settings that parse but would misbehave, files that are not there. */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca_known.h"
#include "crypto.h"
#include "lint.h"
#include "policy.h"
#include "store.h"
#include "timeparse.h"

/* The lifetime of the certificate in output_dir, else 0. */
static int64_t live_lifetime(const struct config_cert *c)
{
	char *key = NULL, *full = NULL;
	size_t klen = 0, flen = 0;
	struct crypto_cert_info info = {0};
	int64_t lifetime = 0;

	if (store_read_live(c->output_dir, &key, &klen, &full, &flen) == 0 &&
	    crypto_cert_info_pem(full, flen, &info) == 0 && info.not_after > info.not_before)
		lifetime = info.not_after - info.not_before;
	crypto_cert_info_clear(&info);
	crypto_free_secret(key, klen);
	free(full);
	return lifetime;
}

/* renew_before that would renew each new certificate at once (policy.h):
 * said when the lifetime is known, from the live certificate or the CA. */
static int lint_renew_before(const struct config *cfg, const struct config_cert *c, FILE *out)
{
	const struct ca_known *k = ca_known_find(cfg->cas[c->ca].directory);
	int64_t lifetime = live_lifetime(c);
	char rb[16], lt[16], fl[16], whose[160];

	if (c->renew_before == 0)
		return 0;
	if (lifetime)
		snprintf(whose, sizeof(whose), "its certificate in %s lives", c->output_dir);
	else if (k)
		snprintf(whose, sizeof(whose), "certificates of %s usually live", k->label);
	else
		return 0;
	if (!lifetime)
		lifetime = k->lifetime;
	if (policy_renew_before_usable(0, lifetime, c->renew_before))
		return 0;
	fprintf(out, "%s:%d:%d: warning: certificate %s: renew_before %s would renew each new "
		"certificate at once: %s %s, and acmed replaces none younger than %s; it ignores "
		"renew_before and renews when %s of the lifetime is left\n", c->file ? c->file : cfg->path,
		c->renew_before_line, c->renew_before_col, c->name,
		timeparse_format_duration(c->renew_before, rb, sizeof(rb)), whose,
		timeparse_format_duration(lifetime, lt, sizeof(lt)),
		timeparse_format_duration(policy_reissue_floor(0, lifetime), fl, sizeof(fl)),
		lifetime < 10 * POLICY_DAY ? "1/2" : "1/3");
	return 1;
}

/* file: where the setting is (an included file), NULL: the main one. */
static void say(FILE *out, const struct config *cfg, const char *file, int line, int col,
		const char *level, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void say(FILE *out, const struct config *cfg, const char *file, int line, int col,
		const char *level, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "%s:%d:%d: %s: ", file ? file : cfg->path, line, col, level);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* ca_bundle: a readable file holding at least one certificate (the daemon
 * cannot talk to the CA without it). */
static int lint_ca_bundle(const struct config *cfg, const struct config_ca *ca, FILE *out)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (!ca->ca_bundle)
		return 0;
	rc = store_read_file(ca->ca_bundle, &pem, &len, 16u << 20);
	if (rc == 0 && !strstr(pem, "-----BEGIN CERTIFICATE-----"))
		rc = -ENOEXEC;
	free(pem);
	if (rc == 0)
		return 0;
	say(out, cfg, ca->file, ca->ca_bundle_line, ca->ca_bundle_col, "error", "CA %s: ca_bundle %s: %s",
	    ca->name, ca->ca_bundle, rc == -ENOEXEC ? "no PEM certificate in it" : strerror(-rc));
	return 1;
}

/* eab: hmac_key_file is a secret: no one but root and the acmed user may read
 * it (the loader already read and decoded it). */
static int lint_eab(const struct config *cfg, const struct config_ca *ca, FILE *out)
{
	struct stat st;

	if (!ca->eab_key_file || stat(ca->eab_key_file, &st) < 0 || !(st.st_mode & 0004))
		return 0;
	say(out, cfg, ca->file, ca->eab_line, ca->eab_col, "error", "CA %s: eab: hmac_key_file %s is readable "
	    "by every user (mode %04o): it is a secret; chmod 0640 it, group acmed (or 0600, owner acmed)",
	    ca->name, ca->eab_key_file, (unsigned)(st.st_mode & 07777));
	return 1;
}

/* key_group: a group this system has (the daemon looks it up at each install, off the loop). */
static int lint_key_group(const struct config *cfg, const struct config_cert *c, FILE *out)
{
	gid_t gid;
	int rc;

	if (!c->key_group || (rc = store_group_gid(c->key_group, &gid)) == 0)
		return 0;
	say(out, cfg, c->file, c->key_group_line, c->key_group_col, "error",
	    "certificate %s: key_group: no group \"%s\" on this system (see getent group)%s%s", c->name,
	    c->key_group, rc == -ENOENT ? "" : ": ", rc == -ENOENT ? "" : strerror(-rc));
	return 1;
}

/* exec: the program is run as given, without a shell or PATH: an absolute
 * path to an executable file. */
static int lint_exec(const struct config *cfg, const struct config_cert *c, FILE *out)
{
	const char *prog = c->exec.n ? c->exec.v[0] : NULL;
	struct stat st;
	const char *why = NULL;

	if (!prog)
		return 0;
	if (prog[0] != '/')
		why = "not an absolute path (acmed runs it without a shell or PATH)";
	else if (stat(prog, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (access(prog, X_OK) < 0 || !(st.st_mode & 0111))
		why = "not executable";
	if (!why)
		return 0;
	say(out, cfg, c->file, c->exec_line, c->exec_col, "error", "certificate %s: exec %s: %s", c->name, prog,
	    why);
	return 1;
}

/* output_dir, when it exists: a directory (else an error, counted in
 * *errors), writable by the user acmed runs as (the service user "acmed" when
 * it exists, else whoever runs check-config; else a warning, returned). */
static int lint_output_dir(const struct config *cfg, const struct config_cert *c, FILE *out,
			   int *errors)
{
	const struct passwd *pw = getpwnam("acmed");
	uid_t uid = pw ? pw->pw_uid : geteuid();
	gid_t gid = pw ? pw->pw_gid : getegid();
	struct stat st;
	int ok;

	if (stat(c->output_dir, &st) < 0)
		return 0;               /* made when the first certificate comes */
	if (!S_ISDIR(st.st_mode)) {
		say(out, cfg, c->file, c->output_dir_line ? c->output_dir_line : c->line,
		    c->output_dir_line ? c->output_dir_col : 1, "error",
		    "certificate %s: output_dir %s is not a directory", c->name, c->output_dir);
		(*errors)++;
		return 0;
	}
	ok = uid == 0 || (st.st_uid == uid ? (st.st_mode & 0300) == 0300 :
			  st.st_gid == gid ? (st.st_mode & 0030) == 0030 : (st.st_mode & 0003) == 0003);
	if (ok)
		return 0;
	say(out, cfg, c->file, c->output_dir_line ? c->output_dir_line : c->line,
	    c->output_dir_line ? c->output_dir_col : 1, "warning",
	    "certificate %s: output_dir %s is not writable by %s%s (owner uid %u, mode %04o)", c->name,
	    c->output_dir, pw ? "the service user " : "uid ", pw ? "acmed" : "",
	    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 1;
}

/* webroot: a directory the web server serves (acmed makes
 * .well-known/acme-challenge in it, and needs to write there). */
static int lint_webroot(const struct config *cfg, const struct config_cert *c, FILE *out)
{
	struct stat st;
	const char *why = NULL;

	if (!c->webroot)
		return 0;
	if (stat(c->webroot, &st) < 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	if (!why)
		return 0;
	say(out, cfg, c->file, c->webroot_line, c->webroot_col, "error", "certificate %s: webroot %s: %s",
	    c->name, c->webroot, why);
	return 1;
}

int lint_config(const struct config *cfg, FILE *out, int *errors)
{
	int n = 0;

	*errors = 0;
	for (size_t i = 0; i < cfg->ncas; i++)
		*errors += lint_ca_bundle(cfg, &cfg->cas[i], out) + lint_eab(cfg, &cfg->cas[i], out);
	for (size_t i = 0; i < cfg->ncerts; i++) {
		n += lint_renew_before(cfg, &cfg->certs[i], out);
		*errors += lint_exec(cfg, &cfg->certs[i], out) + lint_key_group(cfg, &cfg->certs[i], out);
		*errors += lint_webroot(cfg, &cfg->certs[i], out);
		n += lint_output_dir(cfg, &cfg->certs[i], out, errors);
	}
	return n;
}
