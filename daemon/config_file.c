/* config_file.c - reading configuration files (the main one and those it includes) and expanding `include:` patterns. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"

#define MIB (1024 * 1024)

/* "FILE: 17 MiB, more than the 16 MiB a configuration may have"; the size in
 * bytes when MiB would round it down to the limit. */
int config_too_large(const char *name, uint64_t size, char *err, size_t errlen)
{
	char text[48];

	if (size % MIB == 0)
		snprintf(text, sizeof(text), "%llu MiB", (unsigned long long)(size / MIB));
	else if (size >= CONFIG_FILE_MAX + MIB / 10)
		snprintf(text, sizeof(text), "%.1f MiB", (double)size / MIB);
	else
		snprintf(text, sizeof(text), "%llu bytes", (unsigned long long)size);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s, more than the " CONFIG_FILE_MAX_TEXT " a configuration "
			 "may have", name, text);
	return -EFBIG;
}

static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ?
	       "a character device" : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" :
	       "not a file";
}

int config_read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd, rc = 0;

	*out = NULL;
	*outlen = 0;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer (check-config
	 * and the daemon's reload would hang). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: not a regular file (%s); acmed reads its "
				 "configuration from a regular file", path, file_kind(st.st_mode));
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return config_too_large(path, (uint64_t)st.st_size, err, errlen);
	}
	buf = malloc(CONFIG_FILE_MAX + 1);
	while (buf && len <= CONFIG_FILE_MAX) {
		ssize_t r = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			if (err && errlen)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!buf) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory (reading up to " CONFIG_FILE_MAX_TEXT ")",
				 path);
		return -ENOMEM;
	}
	if (rc == 0 && len > CONFIG_FILE_MAX)
		rc = config_too_large(path, len, err, errlen);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* A directory of the pattern that does not exist matches nothing; one that
 * cannot be read (permissions) stops the expansion: files would be missed. */
static int glob_error(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

int config_include_glob(const char *pattern, char ***paths, size_t *n)
{
	glob_t g;
	int r;

	*paths = NULL;
	*n = 0;
	/* Sorted (glob's default): files are read in name order, 10-web before 20-mail. */
	r = glob(pattern, 0, glob_error, &g);
	if (r == GLOB_NOMATCH)
		return 0;               /* an empty conf.d is fine */
	if (r == GLOB_NOSPACE)
		return -ENOMEM;
	if (r != 0) {
		globfree(&g);
		return -EIO;
	}
	*paths = calloc(g.gl_pathc + 1, sizeof(char *));
	for (size_t i = 0; *paths && i < g.gl_pathc; i++) {
		if (!((*paths)[i] = strdup(g.gl_pathv[i]))) {
			config_include_paths_free(*paths, i);
			*paths = NULL;
			break;
		}
	}
	if (*paths)
		*n = g.gl_pathc;
	globfree(&g);
	return *paths ? 0 : -ENOMEM;
}

void config_include_paths_free(char **paths, size_t n)
{
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
}
