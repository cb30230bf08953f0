/* ca_known.h - what acmed knows of public ACME CAs without asking them: names, usual lifetimes, staging. */
#ifndef ACMED_CA_KNOWN_H
#define ACMED_CA_KNOWN_H

#include <stdint.h>

struct ca_known {
	const char *host;               /* host of the directory URL */
	const char *label;              /* "Let's Encrypt" */
	int64_t lifetime;               /* usual certificate lifetime, seconds */
	int staging;                    /* 1: a test CA whose certificates nobody trusts */
	const char *staging_directory;  /* the matching staging directory, or NULL */
};

/* The entry whose host is the directory URL's host (case-insensitive), else NULL. */
const struct ca_known *ca_known_find(const char *directory_url);

#endif
