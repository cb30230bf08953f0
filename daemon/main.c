/* main.c - acmed: the options and the command; `run` is in run.c, the other commands in cli.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#define DEFAULT_ONCE_TIMEOUT 300

int main(int argc, char **argv)
{
	const char *path = getenv("ACMED_CONFIG");
	int verbosity = 0, i;

	if (!path || !*path)
		path = CONFIG_DEFAULT_PATH;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(cli_usage_text, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("acmed %s\n", ACMED_VERSION);
			return 0;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i >= argc)
				return cli_usage_error("%s needs a file name", a);
			path = argv[i];
		} else if (strcmp(a, "-v") == 0) {
			verbosity++;
		} else if (strcmp(a, "-q") == 0) {
			verbosity--;
		} else {
			return cli_usage_error("unknown option %s", a);
		}
	}
	log_init(verbosity);
	if (i >= argc)
		return cli_usage_error("%s", "no command given");
	const char *cmd = argv[i++];
	if (strcmp(cmd, "check-config") == 0) {
		if (i < argc)
			return cli_usage_error("check-config takes no argument: %s", argv[i]);
		return cli_check_config(path);
	}
	if (strcmp(cmd, "run") == 0) {
		int once = 0;
		long timeout = DEFAULT_ONCE_TIMEOUT;
		for (; i < argc; i++) {
			if (strcmp(argv[i], "--once") == 0) {
				once = 1;
			} else if (strcmp(argv[i], "--timeout") == 0) {
				char *end;
				if (++i >= argc)
					return cli_usage_error("%s", "--timeout needs a number of seconds");
				errno = 0;
				timeout = strtol(argv[i], &end, 10);
				if (errno || *end || end == argv[i] || timeout <= 0 || timeout > 86400 * 7)
					return cli_usage_error("--timeout: expected seconds (1..604800), got %s",
							   argv[i]);
			} else if (strcmp(argv[i], "-v") == 0) {
				log_init(++verbosity);
			} else if (strcmp(argv[i], "-q") == 0) {
				log_init(--verbosity);
			} else {
				return cli_usage_error("run: unknown argument %s", argv[i]);
			}
		}
		return run_main(path, once, timeout);
	}
	if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "status") == 0 || strcmp(cmd, "renew") == 0)
		return cli_control(path, cmd, argc - i, argv + i);
	if (strcmp(cmd, "import") == 0)
		return cli_import(path, argc - i, argv + i);
	if (strcmp(cmd, "account") == 0)
		return cli_account(path, argc - i, argv + i);
	if (strcmp(cmd, "revoke") == 0)
		return cli_revoke(path, argc - i, argv + i);
	return cli_usage_error("unknown command %s", cmd);
}
