/* deploy_internal.h - what deploy.c uses of deploy_exec.c: a certificate's exec hook, started through exec.c. */
#ifndef ACMED_DEPLOY_INTERNAL_H
#define ACMED_DEPLOY_INTERNAL_H

#include <event2/event.h>

#include "exec.h"

/* What a certificate's hook is told about it. */
struct deploy_hook_cert {
	const char *name;               /* ACMED_CERT_NAME */
	const char *domains;            /* ACMED_DOMAINS, RENEWED_DOMAINS: space-separated */
	const char *output_dir;         /* ACMED_OUTPUT_DIR, RENEWED_LINEAGE */
};

/* Start argv as the certificate's deploy hook: exec.c with the hook environment,
 * the output logged as "[name] hook: ...", timeout_ms then SIGTERM and SIGKILL
 * 5 s later. cb reports the end (see exec.h); the caller frees *out. 0 or a
 * negative errno (nothing started). */
int deploy_hook_start(struct event_base *base, char *const *argv, const struct deploy_hook_cert *c,
		      long timeout_ms, int reap_on_sigchld, exec_done_fn cb, void *arg,
		      struct exec **out);

#endif
