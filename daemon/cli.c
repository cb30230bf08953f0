/* cli.c - the commands that do not run the daemon: usage, check-config, those that talk to it (reload, status, renew), import. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_cmd.h"
#include "cli.h"
#include "config.h"
#include "control.h"
#include "import.h"
#include "lint.h"
#include "log.h"
#include "revoke.h"
#include "status.h"

#define EXIT_OPERATIONAL 1
#define EXIT_USAGE 2

const char cli_usage_text[] =
	"usage: acmed [-c FILE] [-v | -q] COMMAND [ARGS]\n"
	"\n"
	"Keeps the certificates named in FILE valid (ACME, RFC 8555).\n"
	"\n"
	"commands:\n"
	"  run [--once] [--timeout SEC]  run the daemon in the foreground; with --once,\n"
	"                                do what is due now and exit (default timeout 300 s)\n"
	"  check-config                  validate FILE; errors as FILE:LINE:COL: message\n"
	"  reload                        make the running daemon re-read FILE; prints the result\n"
	"  status [--json]               every certificate: names, expiry, next action, last error\n"
	"  status --check                monitoring plugin: one line; exit 0 OK, 1 WARNING,\n"
	"                                2 CRITICAL, 3 UNKNOWN\n"
	"  renew NAME... | --all [--force]\n"
	"                                ask the running daemon to renew now (--force: even\n"
	"                                certificates that are not due)\n"
	"  renew NAME... | --all --dry-run\n"
	"                                a whole order at the CA's staging directory, through\n"
	"                                the running daemon (else by itself); nothing installed\n"
	"  revoke NAME [--reason R]      revoke NAME's certificate at the CA that issued it and\n"
	"                                order a new one at once (a new key for keyCompromise);\n"
	"                                R: unspecified, keyCompromise, affiliationChanged,\n"
	"                                superseded, cessationOfOperation\n"
	"  account show [CA]             each CA's account as state_dir keeps it: URL, contact,\n"
	"                                key and its thumbprint\n"
	"  account rollover [CA]         a new account key (RFC 8555 keyChange); the old one is\n"
	"                                kept until the CA took the new one\n"
	"  account deactivate CA --yes   end CA's account at the CA; a new one at the next order\n"
	"  import certbot [DIR] [--write FILE]\n"
	"                                print the configuration for certbot's certificates\n"
	"                                (DIR, default /etc/letsencrypt); --write: adopt them,\n"
	"                                with certbot's account, and write FILE\n"
	"\n"
	"options:\n"
	"  -c FILE      configuration (default $ACMED_CONFIG, else " CONFIG_DEFAULT_PATH ")\n"
	"  -v           more log output (debug)\n"
	"  -q           only warnings and errors\n"
	"  --version    print the version\n"
	"  --help       this text\n"
	"\n"
	"exit status: 0 ok, 1 operational failure, 2 usage or configuration error\n";

int cli_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "acmed: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'acmed --help'.\n");
	return EXIT_USAGE;
}

int cli_load_config(const char *path, struct config **cfg)
{
	char err[1024] = "";
	int rc = config_load(path, cfg, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

int cli_check_config(const char *path)
{
	struct config *cfg = NULL;
	unsigned nerr = 0;
	int warnings, errors;

	/* Every error of the file, so one run is enough to fix them all. */
	if (config_load_every_error(path, &cfg, stderr, &nerr) < 0) {
		if (nerr > 1)
			fprintf(stderr, "%s: %u errors\n", path, nerr);
		return EXIT_USAGE;
	}
	warnings = lint_config(cfg, stderr, &errors);
	if (errors) {
		fprintf(stderr, "%s: %d error%s\n", cfg->path, errors, errors == 1 ? "" : "s");
		config_free(cfg);
		return EXIT_USAGE;
	}
	printf("%s: ok (%zu certificate%s, %zu CA%s", cfg->path, cfg->ncerts,
	       cfg->ncerts == 1 ? "" : "s", cfg->ncas, cfg->ncas == 1 ? "" : "s");
	if (warnings)
		printf("; %d warning%s", warnings, warnings == 1 ? "" : "s");
	printf(")\n");
	config_free(cfg);
	return 0;
}

/* reload, status, renew: they talk to the running daemon (control.h). */
int cli_control(const char *path, const char *cmd, int argc, char **argv)
{
	struct config *cfg = NULL;
	const char **names = NULL;
	size_t n = 0;
	int json = 0, check = 0, all = 0, force = 0, dry = 0, rc;

	names = calloc((size_t)argc + 1, sizeof(*names));
	if (!names)
		return EXIT_OPERATIONAL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(cmd, "status") == 0 && strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(cmd, "status") == 0 && strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(cmd, "renew") == 0 && strcmp(argv[i], "--all") == 0)
			all = 1;
		else if (strcmp(cmd, "renew") == 0 && strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(cmd, "renew") == 0 && strcmp(argv[i], "--dry-run") == 0)
			dry = 1;
		else if (strcmp(cmd, "renew") == 0 && argv[i][0] != '-')
			names[n++] = argv[i];
		else {
			free(names);
			return cli_usage_error("%s: unexpected argument", argv[i]);
		}
	}
	if (strcmp(cmd, "renew") == 0 && (all ? n > 0 : n == 0)) {
		free(names);
		return cli_usage_error("%s", "renew: give certificate names or --all");
	}
	if (json && check) {
		free(names);
		return cli_usage_error("%s", "status: --json or --check, not both");
	}
	if (dry && force) {
		free(names);
		return cli_usage_error("%s", "renew: --dry-run orders a certificate anyway; --force adds nothing");
	}
	rc = cli_load_config(path, &cfg);
	if (rc) {
		free(names);
		if (check) {
			/* A monitoring system reads stdout and the exit code. */
			printf("ACMED UNKNOWN - cannot load the configuration (see stderr)\n");
			return STATUS_CHECK_UNKNOWN;
		}
		if (strcmp(cmd, "reload") == 0) {
			/* Nothing was sent: the daemon keeps the configuration it runs. */
			fprintf(stderr, "acmed: not reloaded; the running acmed keeps its configuration\n");
			return EXIT_OPERATIONAL;
		}
		return rc;
	}
	if (strcmp(cmd, "reload") == 0)
		rc = control_cli_reload(cfg);
	else if (strcmp(cmd, "status") == 0)
		rc = control_cli_status(cfg, check ? CONTROL_STATUS_CHECK :
					json ? CONTROL_STATUS_JSON : CONTROL_STATUS_TABLE);
	else if (dry)
		rc = control_cli_dry_run(cfg, names, n, all);
	else
		rc = control_cli_renew(cfg, names, n, all, force);
	config_free(cfg);
	free(names);
	return rc;
}

int cli_import(const char *path, int argc, char **argv)
{
	const char *dir = "/etc/letsencrypt", *write = NULL;
	int i = 1, dir_set = 0;

	if (argc < 1 || strcmp(argv[0], "certbot") != 0)
		return cli_usage_error("%s", "import: only `import certbot [DIR] [--write FILE]` exists");
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--write") == 0) {
			if (++i >= argc)
				return cli_usage_error("%s", "--write needs a file name");
			write = argv[i];
		} else if (argv[i][0] != '-' && !dir_set) {
			dir = argv[i];
			dir_set = 1;
		} else {
			return cli_usage_error("import certbot: unexpected argument %s", argv[i]);
		}
	}
	return import_certbot(path, dir, write);
}


int cli_account(const char *path, int argc, char **argv)
{
	struct config *cfg = NULL;
	const char *ca = NULL;
	int yes = 0, rc;

	if (argc < 1 || (strcmp(argv[0], "show") && strcmp(argv[0], "rollover") && strcmp(argv[0], "deactivate")))
		return cli_usage_error("%s", "account: `account show [CA]`, `account rollover [CA]` or "
				       "`account deactivate CA --yes`");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[0], "deactivate") == 0 && strcmp(argv[i], "--yes") == 0)
			yes = 1;
		else if (argv[i][0] != '-' && !ca)
			ca = argv[i];
		else
			return cli_usage_error("account: unexpected argument %s", argv[i]);
	}
	if (strcmp(argv[0], "deactivate") == 0 && !ca)
		return cli_usage_error("%s", "account deactivate: name the CA whose account ends");
	if (strcmp(argv[0], "deactivate") == 0 && !yes) {
		fprintf(stderr, "acmed: account deactivate %s: the CA ends the account for good (it cannot be "
			"used again, nor its key); acmed registers a new one at the next order. Add --yes "
			"to do it.\n", ca);
		return EXIT_USAGE;
	}
	rc = cli_load_config(path, &cfg);
	if (rc)
		return rc;
	rc = strcmp(argv[0], "show") == 0 ? account_cmd_show(cfg, ca) : account_cmd_change(cfg, argv[0], ca);
	config_free(cfg);
	return rc;
}

int cli_revoke(const char *path, int argc, char **argv)
{
	struct config *cfg = NULL;
	const char *name = NULL, *reason = "unspecified";
	int code, rc;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0) {
			if (++i >= argc)
				return cli_usage_error("--reason needs one of %s", revoke_reason_list);
			reason = argv[i];
		} else if (strncmp(argv[i], "--reason=", 9) == 0) {
			reason = argv[i] + 9;
		} else if (argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			return cli_usage_error("revoke: unexpected argument %s", argv[i]);
		}
	}
	if (!name)
		return cli_usage_error("%s", "revoke: give the name of the certificate");
	if (revoke_reason_parse(reason, &code) < 0) {
		fprintf(stderr, "acmed: revoke: unknown reason %s; expected one of %s\n", reason,
			revoke_reason_list);
		return EXIT_USAGE;
	}
	rc = cli_load_config(path, &cfg);
	if (rc)
		return rc;
	if (!config_find_cert(cfg, name)) {
		fprintf(stderr, "acmed: unknown certificate: %s\n", name);
		config_free(cfg);
		return EXIT_USAGE;
	}
	rc = control_cli_revoke(cfg, name, revoke_reason_name(code));
	config_free(cfg);
	return rc;
}
