/* cli.h - the acmed commands besides `run`: each returns the exit status (0 ok, 1 failure, 2 usage or configuration error). */
#ifndef ACMED_CLI_H
#define ACMED_CLI_H

#include "config.h"

extern const char cli_usage_text[];
/* "acmed: " fmt (with arg), then where to find help, on stderr; returns 2. */
int cli_usage_error(const char *fmt, const char *arg);
/* config_load, its error printed; 0 or 2. */
int cli_load_config(const char *path, struct config **cfg);
int cli_check_config(const char *path);
/* reload, status, renew: argv after the command. */
int cli_control(const char *path, const char *cmd, int argc, char **argv);
/* account show [CA]: argv after "account". */
int cli_account(const char *path, int argc, char **argv);
/* import certbot [DIR] [--write FILE]: argv after "import". */
int cli_import(const char *path, int argc, char **argv);
/* revoke NAME [--reason R]: argv after "revoke". */
int cli_revoke(const char *path, int argc, char **argv);
/* revoke_cmd.c: without a daemon, revoke NAME's certificate and order its
 * replacement here (what `run --once` does, after the revocation). */
int revoke_cmd_standalone(const struct config *cfg, const char *name, const char *reason);
/* run.c: `acmed run [--once]` with the configuration at path; the exit status. */
int run_main(const char *path, int once, long timeout);

#endif
