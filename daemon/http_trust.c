/* http_trust.c - the CA's trust store for curl: the system roots + ca_bundle as one PEM file, rewritten only when it changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http_trust.h"
#include "log.h"
#include "store.h"

#define HTTP_CA_FILE_MAX     (16u * 1024 * 1024)

static int read_whole_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (cap - n < 65536) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			if (cap > HTTP_CA_FILE_MAX + 65536) {
				err = -EFBIG;
				break;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				err = -EIO;
			break;
		}
	}
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Write content to path (mode 0644) unless it already holds exactly that (a
 * restart rewrites nothing). Readers see the old or the new file, never a mix. */
static int write_if_changed(const char *path, const char *content, size_t len)
{
	struct stat st;
	char *old = NULL;
	size_t oldlen = 0;
	char *dir, *slash;
	int rc;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 &&
	    (size_t)st.st_size == len && read_whole_file(path, &old, &oldlen) == 0) {
		int same = oldlen == len && memcmp(old, content, len) == 0;

		free(old);
		if (same)
			return 0;
	}
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	rc = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		rc = store_mkdir_p(dir, 0700);
	}
	free(dir);
	if (rc == 0)
		rc = store_write_replace(path, content, len, 0644);
	return rc;
}

/* The system roots plus the extra bundle as one PEM: written to trust_file so
 * that curl loads it once and keeps the parsed store for later connections
 * (CURLOPT_CA_CACHE_TIMEOUT works with a CA file only, not a blob, and not
 * beside a CApath); in memory (CURLOPT_CAINFO_BLOB, parsed again for every
 * new connection) when there is no trust_file or it cannot be written. */
int http_trust_load(struct http_trust *t, const char *sys, const char *ca_bundle,
		    const char *trust_file)
{
	char *a = NULL, *b = NULL, *all;
	size_t alen = 0, blen = 0, len;
	int err;

	memset(t, 0, sizeof(*t));
	err = read_whole_file(ca_bundle, &b, &blen);
	if (err) {
		log_error(NULL, "ca_bundle %s: %s", ca_bundle, strerror(-err));
		return err;
	}
	err = sys && *sys ? read_whole_file(sys, &a, &alen) : -ENOENT;
	if (err) {
		log_warn(NULL, "system CA bundle %s: %s; trusting only %s", sys && *sys ? sys : "(none)",
			 strerror(-err), ca_bundle);
		alen = 0;
	}
	len = alen + 1 + blen;
	all = malloc(len);
	if (!all) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	if (alen)
		memcpy(all, a, alen);
	all[alen] = '\n';
	memcpy(all + alen + 1, b, blen);
	free(a);
	free(b);
	t->has_system = alen > 0;
	if (trust_file && write_if_changed(trust_file, all, len) == 0) {
		t->file = strdup(trust_file);
		if (t->file) {
			free(all);
			return 0;
		}
	} else if (trust_file) {
		log_warn(NULL, "trust store %s not written: reading the roots again for every "
			 "new connection to the CA", trust_file);
	}
	t->blob = all;
	t->blob_len = len;
	return 0;
}

void http_trust_clear(struct http_trust *t)
{
	free(t->file);
	free(t->blob);
	memset(t, 0, sizeof(*t));
}
