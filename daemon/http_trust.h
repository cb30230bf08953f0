/* http_trust.h - the CA's trust store for curl (http.c): system roots + ca_bundle as one file, or in memory. */
#ifndef ACMED_HTTP_TRUST_H
#define ACMED_HTTP_TRUST_H

#include <stddef.h>

struct http_trust {
	char *file;             /* the roots as one PEM file: for CURLOPT_CAINFO, or NULL */
	char *blob;             /* the same in memory (CURLOPT_CAINFO_BLOB) when no file */
	size_t blob_len;
	int has_system;         /* the system roots are in it (else: only ca_bundle) */
};

/* The system roots (the PEM file sys; NULL, "" or unreadable: none, with a
 * warning) plus ca_bundle, written to trust_file (mode 0644, its directory made
 * 0700, rewritten only when different; readers see the old or the new file) so
 * that curl parses them once and keeps the store for new connections. In
 * memory when trust_file is NULL or cannot be written (curl then parses them for
 * every new connection). Fails when ca_bundle cannot be read or memory runs out. */
int http_trust_load(struct http_trust *t, const char *sys, const char *ca_bundle,
		    const char *trust_file);
void http_trust_clear(struct http_trust *t);

#endif
