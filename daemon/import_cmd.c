/* import_cmd.c - `acmed import certbot [DIR] [--write FILE]`: the plan as YAML, what is not carried over, and the next steps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "import.h"
#include "policy.h"
#include "store.h"

#define EXIT_USAGE 2

/* A YAML scalar: plain when nothing in it can be misread, else double-quoted (JSON escapes are YAML's). */
static void yaml_scalar(FILE *out, const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "null", "y", "n" };
	size_t n = strlen(s);
	int plain = n > 0 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789/_.@:+-") == n && !strchr("-:@", s[0]) && s[n - 1] != ':';

	for (size_t i = 0; plain && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			plain = 0;
	if (plain) {
		fputs(s, out);
	} else {
		json_t *j = json_string(s);
		char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

		fputs(q ? q : "\"\"", out);
		free(q);
		json_decref(j);
	}
}

/* Text from certbot's files in a YAML comment: one line, printable ASCII only. */
static void comment_text(FILE *out, const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?', out);
}

static void yaml_list(FILE *out, const struct config_strv *sv)
{
	fputc('[', out);
	for (size_t i = 0; i < sv->n; i++) {
		if (i)
			fputs(", ", out);
		yaml_scalar(out, sv->v[i]);
	}
	fputc(']', out);
}

/* Hooks as one argv: a lone program path as is, else through sh like certbot ran them. */
static void yaml_exec(FILE *out, const struct config_strv *hooks, const char *indent)
{
	size_t n = hooks->n;

	if (!n)
		return;
	fprintf(out, "%sexec: ", indent);
	if (n == 1 && hooks->v[0][0] == '/' && !strpbrk(hooks->v[0], " \t\"'`$\\|&;<>(){}*?[]~#!")) {
		fputc('[', out);
		yaml_scalar(out, hooks->v[0]);
		fputs("]\n", out);
		return;
	}
	fputs("[/bin/sh, -c, ", out);
	if (n == 1) {
		yaml_scalar(out, hooks->v[0]);
	} else {
		/* Each hook is an argument of its own, run by its own shell as certbot runs
		 * them, the next even when one failed: nothing in one can touch another. */
		yaml_scalar(out, "rc=0; for h in \"$@\"; do /bin/sh -c \"$h\" || rc=1; done; exit $rc");
		fputs(", sh", out);
		for (size_t i = 0; i < n; i++) {
			fputs(", ", out);
			yaml_scalar(out, hooks->v[i]);
		}
	}
	fputs("]\n", out);
}

static void yaml_lineage(FILE *out, const struct import_plan *plan, const struct import_lineage *l)
{
	const char *p = "  ";
	char rel[64], *out_dir = import_output_dir(plan, l);
	struct tm tm;
	time_t t = (time_t)l->not_after;

	if (l->error) {
		fputs("# Not imported: ", out);
		comment_text(out, l->name);
		fputs(": ", out);
		comment_text(out, l->error);
		fputc('\n', out);
		free(out_dir);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(rel, sizeof(rel), "%Y-%m-%d", &tm);
	fprintf(out, "%s- name: ", p);
	yaml_scalar(out, l->name);
	fprintf(out, "                # certbot's lineage; the certificate in use expires %s\n", rel);
	fprintf(out, "%s  ca: %s\n", p, plan->accounts[l->account].ca_name);
	fprintf(out, "%s  domains: ", p);
	yaml_list(out, &l->domains);
	fprintf(out, "\n%s  key_type: %s\n", p, config_key_type_name(l->key_type));
	if (out_dir) {
		fprintf(out, "%s  output_dir: ", p);
		yaml_scalar(out, out_dir);
		fputc('\n', out);
		free(out_dir);
	}
	if (l->webroot) {
		fprintf(out, "%s  webroot: ", p);
		yaml_scalar(out, l->webroot);
		fputc('\n', out);
	}
	if (l->renew_before)
		fprintf(out, "%s  renew_before: %s\n", p, l->renew_before);
	if (l->reload.n) {
		fprintf(out, "%s  reload: ", p);
		yaml_list(out, &l->reload);
		fputc('\n', out);
	}
	yaml_exec(out, &l->hooks, "    ");
	for (size_t i = 0; i < l->notes.n; i++) {
		fputs("    # ", out);
		comment_text(out, l->notes.v[i]);
		fputc('\n', out);
	}
}

/* contact, and the settings of the CA of the configuration in place when there is one. */
static void yaml_ca_settings(FILE *out, const struct import_account *a)
{
	const struct config_strv *contact = a->from && a->from->contact.n ? &a->from->contact :
					    a->contact_known && a->contact.n ? &a->contact : NULL;

	if (contact) {
		fputs("    contact: ", out);
		yaml_list(out, contact);
		fputc('\n', out);
	} else {
		fputs("    # contact: [mailto:you@example.org]   (certbot does not keep it; set it to "
		      "have it sent to the CA)\n", out);
	}
	if (!a->from)
		return;
	if (a->from->ca_bundle) {
		fputs("    ca_bundle: ", out);
		yaml_scalar(out, a->from->ca_bundle);
		fputc('\n', out);
	}
	if (a->from->max_parallel != 4)
		fprintf(out, "    max_parallel: %d\n", a->from->max_parallel);
	if (a->from->timeout != 60)
		fprintf(out, "    timeout: %llds\n", (long long)a->from->timeout);
	if (a->from->orders_per_hour != POLICY_ORDERS_DEFAULT)
		fprintf(out, "    orders_per_hour: %d\n", a->from->orders_per_hour);
}

static int account_used(const struct import_plan *plan, size_t a)
{
	for (size_t i = 0; i < plan->nlineages; i++)
		if (!plan->lineages[i].error && plan->lineages[i].account == a)
			return 1;
	return 0;
}

int import_plan_yaml(const struct import_plan *plan, FILE *out)
{
	fputs("# acmed configuration made by `acmed import certbot ", out);
	comment_text(out, plan->certbot_dir);
	fputs("`.\n", out);
	fputs("# certbot's certificates, adopted as they are: acmed renews each when it is due, with\n"
	      "# certbot's ACME account (imported into state_dir); certbot's live/<name>/*.pem link\n"
	      "# to the files acmed keeps in output_dir. See acmed.yaml(5) for every key.\n", out);
	fputs("state_dir: ", out);
	yaml_scalar(out, plan->state_dir);
	if (plan->runtime_dir) {
		fputs("\nruntime_dir: ", out);
		yaml_scalar(out, plan->runtime_dir);
	}
	if (plan->listen.n) {
		fputs("\nlisten: ", out);
		yaml_list(out, &plan->listen);
	}
	fputs("\n\ncas:\n", out);
	for (size_t i = 0; i < plan->naccounts; i++) {
		const struct import_account *a = &plan->accounts[i];
		if (a->error || !account_used(plan, i))
			continue;
		fprintf(out, "  - name: %s\n    directory: ", a->ca_name);
		yaml_scalar(out, a->server);
		fputs("\n    # certbot's account ", out);
		comment_text(out, a->id);
		fputs(": ", out);
		comment_text(out, a->kid);
		fputc('\n', out);
		yaml_ca_settings(out, a);
	}
	fputs("\ncertificates:\n", out);
	for (size_t i = 0; i < plan->nlineages; i++)
		if (!plan->lineages[i].error)
			yaml_lineage(out, plan, &plan->lineages[i]);
	for (size_t i = 0; i < plan->nlineages; i++)
		if (plan->lineages[i].error)
			yaml_lineage(out, plan, &plan->lineages[i]);
	return ferror(out) ? -EIO : 0;
}

static void next_steps(const struct import_plan *plan, const char *write_path, FILE *err)
{
	int hooks = 0, webroot = 0;

	for (size_t i = 0; i < plan->nlineages; i++) {
		hooks |= !plan->lineages[i].error && plan->lineages[i].hooks.n > 0;
		webroot |= !plan->lineages[i].error && plan->lineages[i].webroot != NULL;
	}
	fprintf(err, "next:\n"
		"  systemctl disable --now certbot.timer     # and remove /etc/cron.d/certbot if present\n"
		"  acmed -c %s check-config\n", write_path);
	if (webroot)
		fputs("  # webroot: acmed (user acmed, ProtectSystem=strict) must be able to write\n"
		      "  # WEBROOT/.well-known/acme-challenge: install -d -o acmed it and add\n"
		      "  # ReadWritePaths=WEBROOT/.well-known/acme-challenge with `systemctl edit acmed`\n", err);
	if (hooks)
		fputs("  # exec hooks run as user acmed in acmed's sandbox: one that writes outside\n"
		      "  # /var/lib/acmed needs ReadWritePaths= too (`systemctl edit acmed`)\n", err);
	fputs("  systemctl enable --now acmed.service      # (and acmed.socket when acmed answers on port 80)\n"
	      "  acmed status\n", err);
}

static void summary(const struct import_plan *plan, FILE *err)
{
	for (size_t i = 0; i < plan->nlineages; i++) {
		const struct import_lineage *l = &plan->lineages[i];

		if (l->error)
			fprintf(err, "acmed: %s: not imported: %s\n", l->name, l->error);
		else
			fprintf(err, "acmed: %s: %zu name%s, %s, %s; CA %s\n", l->name, l->domains.n,
				l->domains.n == 1 ? "" : "s", config_key_type_name(l->key_type),
				l->webroot ? "webroot" : "acmed's listener",
				plan->accounts[l->account].ca_name);
		for (size_t n = 0; !l->error && n < l->notes.n; n++)
			fprintf(err, "acmed: %s: note: %s\n", l->name, l->notes.v[n]);
	}
}

/* Writing over the configuration in place drops its own certificates: say so. */
static void dropped(const struct config *cfg, const char *write_path)
{
	char *a, *b;

	if (!cfg || cfg->ncerts == 0)
		return;
	a = realpath(cfg->path, NULL);
	b = realpath(write_path, NULL);
	if (a && b && strcmp(a, b) == 0)
		fprintf(stderr, "acmed: the %zu certificate%s %s named before (%s...) %s not in it: "
			"copy them from %s.bak if you want them\n", cfg->ncerts, cfg->ncerts == 1 ? "" : "s",
			write_path, cfg->certs[0].name, cfg->ncerts == 1 ? "is" : "are", write_path);
	free(a);
	free(b);
}

static int write_config(const struct import_plan *plan, const char *path)
{
	char *text = NULL, *old = NULL, *bak = NULL;
	size_t len = 0, oldlen = 0;
	FILE *m = open_memstream(&text, &len);
	struct stat st;
	mode_t mode = 0644;             /* a new file: the daemon's user must read it */
	gid_t gid = (gid_t)-1;
	int rc;

	if (!m)
		return -ENOMEM;
	rc = import_plan_yaml(plan, m);
	if (fclose(m) != 0 && rc == 0)
		rc = -EIO;
	/* The file in place keeps its mode and group (an admin's 0640 stays 0640), its copy too. */
	if (rc == 0 && stat(path, &st) == 0) {
		mode = st.st_mode & 07777;
		gid = st.st_gid;
	}
	if (rc == 0) {
		rc = store_read_file(path, &old, &oldlen, 16u << 20);
		if (rc == 0 && (asprintf(&bak, "%s.bak", path) < 0 || !bak)) {
			bak = NULL;
			rc = -ENOMEM;
		} else if (rc == 0) {
			rc = store_write_atomic_group(bak, old, oldlen, mode, gid);
			if (rc == 0)
				fprintf(stderr, "acmed: the previous %s is kept as %s\n", path, bak);
		} else if (rc == -ENOENT) {
			rc = 0;
		}
	}
	/* The group set on the new file before it takes the old one's place: the
	 * daemon's user can read it from its first instant. */
	if (rc == 0)
		rc = store_write_atomic_group(path, text, len, mode, gid);
	if (rc < 0)
		fprintf(stderr, "acmed: cannot write %s: %s\n", path, strerror(-rc));
	free(text);
	free(old);
	free(bak);
	return rc;
}

int import_certbot(const char *config_path, const char *certbot_dir, const char *write_path)
{
	struct import_plan plan = { 0 };
	struct config *cfg = NULL;
	char err[1024], *state_dir;
	int rc, imported;

	/* state_dir comes from the configuration in place, when there is one. */
	if (access(config_path, F_OK) == 0) {
		if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\nacmed: import needs the state_dir of %s: fix the file, or "
				"name another with -c\n", err, config_path);
			return EXIT_USAGE;
		}
		state_dir = strdup(cfg->state_dir);
	} else {
		state_dir = strdup("/var/lib/acmed");
	}
	rc = state_dir ? import_plan_read(certbot_dir, state_dir, cfg, &plan) : -ENOMEM;
	free(state_dir);
	if (cfg && rc == 0 && (!(plan.runtime_dir = strdup(cfg->runtime_dir)) ||
			       config_strv_copy(&plan.listen, &cfg->listen) < 0))
		rc = -ENOMEM;
	if (rc < 0) {
		if (rc == -ENOMEM)
			fprintf(stderr, "acmed: out of memory\n");
		import_plan_clear(&plan);
		config_free(cfg);
		return 1;
	}
	imported = (int)(plan.nlineages - plan.errors);
	summary(&plan, stderr);
	if (imported == 0) {
		fprintf(stderr, "acmed: nothing to import from %s (%zu certbot certificate%s)\n", certbot_dir,
			plan.nlineages, plan.nlineages == 1 ? "" : "s");
		import_plan_clear(&plan);
		config_free(cfg);
		return 1;
	}
	if (!write_path) {
		rc = import_plan_yaml(&plan, stdout);
		fprintf(stderr, "acmed: nothing written; with --write FILE acmed imports the account%s "
			"and certificates into %s and writes FILE\n", plan.naccounts == 1 ? "" : "s",
			plan.state_dir);
	} else {
		rc = import_plan_apply(&plan);
		if (rc == 0)
			rc = write_config(&plan, write_path);
		if (rc == 0) {
			fprintf(stderr, "acmed: wrote %s: %d certificate%s adopted, nothing re-issued\n",
				write_path, imported, imported == 1 ? "" : "s");
			dropped(cfg, write_path);
			next_steps(&plan, write_path, stderr);
		}
	}
	rc = rc < 0 ? 1 : plan.errors ? 1 : 0;
	import_plan_clear(&plan);
	config_free(cfg);
	return rc;
}
