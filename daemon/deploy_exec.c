/* deploy_exec.c - a certificate's deploy hook: its environment (acmed's and certbot's names), run through exec.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "deploy_internal.h"
#include "exec.h"
#include "log.h"

int deploy_hook_start(struct event_base *base, char *const *argv, const struct deploy_hook_cert *c,
		      long timeout_ms, int reap_on_sigchld, exec_done_fn cb, void *arg,
		      struct exec **out)
{
	static const char *const names[] = { "ACMED_CERT_NAME", "ACMED_DOMAINS", "ACMED_OUTPUT_DIR",
		"RENEWED_LINEAGE", "RENEWED_DOMAINS" };
	const char *vals[] = { c->name, c->domains, c->output_dir, c->output_dir, c->domains };
	char *env[6] = { NULL };
	struct exec_opts o = {
		.argv = (const char *const *)argv,
		.env = (const char *const *)env,
		.log_cert = c->name,
		.label = "hook",
		.timeout_ms = timeout_ms,
		.reap_on_sigchld = reap_on_sigchld,
	};
	int r = 0;

	for (size_t i = 0; i < 5 && r == 0; i++)
		if (asprintf(&env[i], "%s=%s", names[i], vals[i]) < 0) {
			env[i] = NULL;
			r = -ENOMEM;
		}
	if (r == 0) {
		log_debug(c->name, "running hook %s", argv[0]);
		r = exec_start(base, &o, cb, arg, out);
	}
	for (size_t i = 0; i < 5; i++)
		free(env[i]);
	return r;
}
