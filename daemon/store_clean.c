/* store_clean.c - what a crash can leave behind (temporary files, a generation never published) found and removed at start-up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_internal.h"

/* All digits, at least one. */
static int digits(const char *p, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* ".<name>.tmp-<pid>-<n>": store_write_atomic's temporary file. */
static int atomic_tmp_name(const char *s)
{
	const char *t = strstr(s, ".tmp-"), *dash;

	if (s[0] != '.' || !t || t == s + 1)
		return 0;
	t += 5;
	dash = strchr(t, '-');
	return dash && digits(t, (size_t)(dash - t)) && digits(dash + 1, strlen(dash + 1));
}

/* "<current|privkey.pem|...>.tmp-<pid>": a symlink being swapped in. */
static int link_tmp_name(const char *s)
{
	const char *t = strstr(s, ".tmp-");
	size_t n;

	if (!t)
		return 0;
	n = (size_t)(t - s);
	if (!digits(t + 5, strlen(t + 5)))
		return 0;
	if (n == strlen(STORE_CURRENT) && strncmp(s, STORE_CURRENT, n) == 0)
		return 1;
	for (size_t i = 0; i < STORE_NFILES; i++)
		if (n == strlen(store_names[i]) && strncmp(s, store_names[i], n) == 0)
			return 1;
	return 0;
}

static int remove_entry(int dfd, const char *dir, const char *name, int tree)
{
	int r = tree ? store_remove_tree(dfd, name) : (unlinkat(dfd, name, 0) < 0 ? -errno : 0);

	if (r < 0 && r != -ENOENT) {
		log_warn(NULL, "%s/%s: a leftover from a crash, cannot be removed: %s", dir, name,
			 strerror(-r));
		return 0;
	}
	log_info(NULL, "%s/%s: removed a leftover from a crash", dir, name);
	return 1;
}

int store_clean_leftovers(const char *dir, int output_dir)
{
	char cur[PATH_MAX];
	long long cur_gen = -1;
	struct dirent *e;
	int dfd, fd, removed = 0;
	ssize_t n;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (output_dir) {
		n = readlinkat(dfd, STORE_CURRENT, cur, sizeof(cur) - 1);
		cur[n > 0 ? n : 0] = '\0';
		cur_gen = n > 0 ? store_gen_number(cur) : -1;
	}
	fd = dup(dfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		close(dfd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		long long g;

		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && atomic_tmp_name(e->d_name))
			removed += remove_entry(dfd, dir, e->d_name, 0);
		else if (output_dir && S_ISLNK(st.st_mode) && link_tmp_name(e->d_name))
			removed += remove_entry(dfd, dir, e->d_name, 0);
		else if (output_dir && S_ISDIR(st.st_mode) && (g = store_gen_number(e->d_name)) >= 0 &&
			 g > cur_gen)
			/* Written after the one in use (or with none in use) and never
			 * published: a crash mid-install. It may hold a private key. */
			removed += remove_entry(dfd, dir, e->d_name, 1);
	}
	closedir(d);
	close(dfd);
	return removed;
}
