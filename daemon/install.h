/* install.h - a new certificate and its key written into output_dir on the I/O worker: the fsyncs never stall the loop. */
#ifndef ACMED_INSTALL_H
#define ACMED_INSTALL_H

#include <stddef.h>

struct worker;
struct install;

/* What a finished order hands over: PEM text, each NUL-terminated. */
struct install_pem {
	const char *key;        /* the private key (a secret) */
	size_t key_len;
	const char *leaf;       /* the certificate */
	const char *chain;      /* its issuers, may be "" */
	const char *key_group;  /* privkey.pem 0640 with this group (looked up on the worker), or NULL */
};

/* rc: 0, or the negative errno of the failed write (logged with the path). */
typedef void (*install_done_fn)(void *arg, int rc);

/* Copy pem and write it into output_dir as store_install_bundle() does
 * (privkey.pem 0600, cert.pem, chain.pem, fullchain.pem = leaf + chain,
 * swapped as a pair), on io. done is called on the loop. NULL on failure
 * (out of memory: logged). */
struct install *install_start(struct worker *io, const char *output_dir,
			      const struct install_pem *pem, install_done_fn done, void *arg);
/* done will not be called; a write under way still completes (atomically:
 * the old or the new pair). NULL ok. */
void install_cancel(struct install *in);

#endif
