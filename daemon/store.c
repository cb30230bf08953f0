/* store.c - files on disk: mkdir -p, atomic replace, reads, and generation-switched certificate bundles. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_internal.h"

#define STORE_LIVE_MAX (1024 * 1024)

/* The four files of a bundle, in the order they are written and linked. */

char *store_path(const char *a, const char *b)
{
	size_t la, lb;
	char *r;

	if (!a || !b)
		return NULL;
	la = strlen(a);
	if (la == 0)
		return strdup(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	if (la == 1 && a[0] == '/')
		la = 0; /* root: "/" + b */
	while (*b == '/')
		b++;
	lb = strlen(b);
	r = malloc(la + 1 + lb + 1);
	if (!r)
		return NULL;
	memcpy(r, a, la);
	r[la] = '/';
	memcpy(r + la + 1, b, lb + 1);
	return r;
}

int store_mkdir_p(const char *path, mode_t mode)
{
	struct stat st;
	const char *p;
	int dfd, r = 0;

	if (!path || !*path)
		return -EINVAL;
	/* Nearly always there already (every state write asks): one stat, not a
	 * walk of open+mkdir+close per component from the root. */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	dfd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		log_error(NULL, "%s: cannot open starting directory: %s", path, strerror(errno));
		return r;
	}
	p = path;
	while (*p) {
		char comp[NAME_MAX + 1];
		size_t n;
		int created = 0, nfd;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n > NAME_MAX) {
			log_error(NULL, "%s: path component too long", path);
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		if (mkdirat(dfd, comp, mode & 07777) == 0) {
			created = 1;
		} else if (errno != EEXIST) {
			r = -errno;
			log_error(NULL, "%s: cannot create directory %.*s: %s", path,
				  (int)(p - path), path, strerror(errno));
			break;
		}
		/* A directory we just made must not have turned into a symlink. */
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (created ? O_NOFOLLOW : 0));
		if (nfd < 0) {
			r = -errno;
			log_error(NULL, "%s: cannot open directory %.*s: %s", path, (int)(p - path),
				  path, strerror(errno));
			break;
		}
		/* The umask may have narrowed it: new directories get exactly mode. */
		if (created && fchmod(nfd, mode & 07777) < 0) {
			r = -errno;
			log_error(NULL, "%s: cannot chmod %.*s: %s", path, (int)(p - path), path,
				  strerror(errno));
			close(nfd);
			break;
		}
		close(dfd);
		dfd = nfd;
	}
	close(dfd);
	return r;
}

static int store_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Atomically replace dir/name (dfd is dir). where names the target in logs.
 * The directory is not fsynced here; the caller does it. */
static int store_write_at(int dfd, const char *where, const char *name, const void *data,
			  size_t len, mode_t mode, int sync, gid_t gid)
{
	static unsigned counter;
	char tmp[NAME_MAX + 1];
	int fd = -1, r;

	for (int tries = 0;; tries++) {
		/* Atomic: the loop and the worker threads write files at once. */
		int n = snprintf(tmp, sizeof(tmp), ".%.200s.tmp-%ld-%u", name, (long)getpid(),
				 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));

		if (n < 0 || (size_t)n >= sizeof(tmp))
			return -ENAMETOOLONG;
		/* Created with mode (the umask can only narrow it), then set exactly. */
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    mode & 07777);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries >= 100) {
			r = -errno;
			log_error(NULL, "%s: cannot create temporary file: %s", where,
				  strerror(errno));
			return r;
		}
	}
	/* A group first, then the mode that lets it read: before any byte is written. */
	if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) {
		r = -errno;
		log_error(NULL, "%s: cannot give it to group %u: %s%s", where, (unsigned)gid, strerror(errno),
			  errno == EPERM ? " (acmed's user must be a member of that group: "
			  "SupplementaryGroups= in the service)" : "");
		goto fail;
	}
	if (fchmod(fd, mode & 07777) < 0) {
		r = -errno;
		log_error(NULL, "%s: cannot chmod temporary file: %s", where, strerror(errno));
		goto fail;
	}
	r = store_write_all(fd, data, len);
	if (r < 0) {
		log_error(NULL, "%s: write failed: %s", where, strerror(-r));
		goto fail;
	}
	if (sync && fsync(fd) < 0) {
		r = -errno;
		log_error(NULL, "%s: fsync failed: %s", where, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		log_error(NULL, "%s: close failed: %s", where, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		r = -errno;
		log_error(NULL, "%s: rename failed: %s", where, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
	return r;
}

/* Split path into its directory (opened) and its last component. */
static int store_open_parent(const char *path, int *dfd, const char **base)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int r = 0;

	if (!slash) {
		dir = strdup(".");
		*base = path;
	} else {
		dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		*base = slash + 1;
	}
	if (!dir)
		return -ENOMEM;
	if (!**base || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
		log_error(NULL, "%s: not a file name", path);
		free(dir);
		return -EINVAL;
	}
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0) {
		r = -errno;
		log_error(NULL, "%s: cannot open directory %s: %s", path, dir, strerror(errno));
	}
	free(dir);
	return r;
}

/* Temp file beside path, renamed over it; sync: fsync the file and the directory too. */
static int store_write_file(const char *path, const void *data, size_t len, mode_t mode, int sync, gid_t gid)
{
	const char *base;
	int dfd, r;

	if (!path || (!data && len))
		return -EINVAL;
	r = store_open_parent(path, &dfd, &base);
	if (r < 0)
		return r;
	r = store_write_at(dfd, path, base, data ? data : "", len, mode, sync, gid);
	if (r == 0 && sync && fsync(dfd) < 0) {
		r = -errno;
		log_error(NULL, "%s: fsync of the directory failed: %s", path, strerror(errno));
	}
	close(dfd);
	return r;
}

int store_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return store_write_file(path, data, len, mode, 1, (gid_t)-1);
}

int store_write_atomic_group(const char *path, const void *data, size_t len, mode_t mode, gid_t gid)
{
	return store_write_file(path, data, len, mode, 1, gid);
}

int store_write_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	return store_write_file(path, data, len, mode, 0, (gid_t)-1);
}

int store_write_in_place(const char *path, const void *data, size_t len, char pad)
{
	struct stat st;
	char fill[512];
	off_t at;
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = errno ? -errno : -EINVAL;
		goto out;
	}
	if ((off_t)len > st.st_size) {
		r = -ENOSPC;            /* it would need blocks the disk does not have */
		goto out;
	}
	if (pwrite(fd, data, len, 0) != (ssize_t)len) {
		r = -errno;
		goto out;
	}
	memset(fill, pad, sizeof(fill));
	for (at = (off_t)len; at < st.st_size;) {
		size_t n = (size_t)(st.st_size - at) < sizeof(fill) ? (size_t)(st.st_size - at) : sizeof(fill);
		ssize_t w = pwrite(fd, fill, n, at);
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			goto out;
		}
		at += w;
	}
	if (fdatasync(fd) < 0)
		r = -errno;
out:
	close(fd);
	return r;
}

/* One file's identity for store_live_stamp: device, inode, size, mtime, ctime. */
static int store_stamp_one(int dfd, const char *name, char *buf, size_t size)
{
	struct stat st;
	int n;

	if (fstatat(dfd, name, &st, 0) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	n = snprintf(buf, size, "%llx:%llx:%llx:%lld.%09ld:%lld.%09ld",
		     (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		     (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
		     st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int store_live_stamp(const char *output_dir, char **stamp)
{
	char k[160], f[160];
	int dfd, r;

	if (!output_dir || !stamp)
		return -EINVAL;
	*stamp = NULL;
	dfd = open(output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	r = store_stamp_one(dfd, "privkey.pem", k, sizeof(k));
	if (r == 0)
		r = store_stamp_one(dfd, "fullchain.pem", f, sizeof(f));
	close(dfd);
	if (r < 0)
		return r;
	if (asprintf(stamp, "%s/%s", k, f) < 0) {
		*stamp = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Read dir/name (dfd may be AT_FDCWD); -ENOENT is not logged, callers probe with it. */
static int store_read_at(int dfd, const char *where, const char *name, char **data,
			 size_t *len, size_t max)
{
	struct stat st;
	size_t cap, n = 0;
	char *buf;
	int fd, r;

	*data = NULL;
	*len = 0;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			log_error(NULL, "%s: cannot open: %s", where, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		log_error(NULL, "%s: fstat failed: %s", where, strerror(errno));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		log_error(NULL, "%s: not a regular file", where);
		close(fd);
		return r;
	}
	if (st.st_size > 0 && (uint64_t)st.st_size > max) {
		log_error(NULL, "%s: larger than %zu bytes", where, max);
		close(fd);
		return -EFBIG;
	}
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			/* The file grew while we read it. */
			size_t lim = max < SIZE_MAX - 1 ? max + 1 : SIZE_MAX - 1;
			size_t ncap = cap > lim / 2 ? lim : cap * 2;
			char *nb;

			if (ncap <= cap) {
				log_error(NULL, "%s: larger than %zu bytes", where, max);
				r = -EFBIG;
				goto fail;
			}
			nb = realloc(buf, ncap + 1);
			if (!nb) {
				r = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			log_error(NULL, "%s: read failed: %s", where, strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > max) {
		log_error(NULL, "%s: larger than %zu bytes", where, max);
		r = -EFBIG;
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
fail:
	close(fd);
	free(buf);
	return r;
}

int store_read_file(const char *path, char **data, size_t *len, size_t max)
{
	if (!path || !data || !len)
		return -EINVAL;
	return store_read_at(AT_FDCWD, path, path, data, len, max);
}

const char *const store_names[STORE_NFILES] = { "privkey.pem", "cert.pem", "chain.pem",
					    "fullchain.pem" };

/* ".gen-<N>" with N decimal: N, else -1. */
long long store_gen_number(const char *name)
{
	const char *p;
	long long n = 0;

	if (strncmp(name, STORE_GEN_PREFIX, strlen(STORE_GEN_PREFIX)) != 0)
		return -1;
	p = name + strlen(STORE_GEN_PREFIX);
	if (!*p || strlen(p) > 15)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (*p - '0');
	}
	return n;
}

/* rm -r of dir/name without following symlinks. */
int store_remove_tree(int dfd, const char *name)
{
	DIR *d;
	struct dirent *e;
	int fd, r = 0;

	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	if (errno == ENOTDIR)
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		int rr;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0)
			continue;
		rr = (errno == EISDIR || errno == EPERM) ? store_remove_tree(fd, e->d_name) : -errno;
		if (rr < 0 && r == 0)
			r = rr;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Make a symlink tmp -> target in dfd; a stale tmp from a crash is replaced. */
static int store_symlink_tmp(int dfd, const char *target, const char *tmp)
{
	if (symlinkat(target, dfd, tmp) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
		return -errno;
	return symlinkat(target, dfd, tmp) < 0 ? -errno : 0;
}

/* Is dir/name a symlink whose target is exactly want? */
static int store_link_is(int dfd, const char *name, const char *want)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);

	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

/* Scan output_dir: the highest generation and the one `current` points to. */
static int store_scan(int dfd, const char *output_dir, long long *max_gen, char *cur,
		      size_t cur_size)
{
	DIR *d;
	struct dirent *e;
	int fd;
	ssize_t n;

	*max_gen = 0;
	n = readlinkat(dfd, STORE_CURRENT, cur, cur_size - 1);
	cur[n > 0 ? n : 0] = '\0';
	fd = dup(dfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		log_error(NULL, "%s: cannot list directory: %s", output_dir, strerror(-r));
		return r;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		long long g = store_gen_number(e->d_name);

		if (g > *max_gen)
			*max_gen = g;
	}
	closedir(d);
	return 0;
}

/* Remove every generation except keep_a and keep_b; failures only warn. */
static void store_prune(int dfd, const char *output_dir, const char *keep_a, const char *keep_b)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(dfd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		log_warn(NULL, "%s: cannot list directory to prune old generations", output_dir);
		return;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		int r;

		if (store_gen_number(e->d_name) < 0 || strcmp(e->d_name, keep_a) == 0 ||
		    strcmp(e->d_name, keep_b) == 0)
			continue;
		r = store_remove_tree(dfd, e->d_name);
		if (r < 0)
			log_warn(NULL, "%s/%s: cannot remove old generation: %s", output_dir,
				 e->d_name, strerror(-r));
	}
	closedir(d);
}

/* Point the four top-level names at current/<name>, replacing files from an
 * older layout. All temporary links are made first so the renames follow each
 * other closely. */
static int store_link_names(int dfd, const char *output_dir)
{
	char target[4][64], tmp[4][64];
	int todo[4] = { 0 }, r = 0;

	for (int i = 0; i < 4; i++) {
		snprintf(target[i], sizeof(target[i]), STORE_CURRENT "/%s", store_names[i]);
		snprintf(tmp[i], sizeof(tmp[i]), "%s.tmp-%ld", store_names[i], (long)getpid());
		if (store_link_is(dfd, store_names[i], target[i]))
			continue;
		r = store_symlink_tmp(dfd, target[i], tmp[i]);
		if (r < 0) {
			log_error(NULL, "%s/%s: cannot create symlink: %s", output_dir, tmp[i],
				  strerror(-r));
			goto out;
		}
		todo[i] = 1;
	}
	for (int i = 0; i < 4; i++) {
		if (!todo[i])
			continue;
		if (renameat(dfd, tmp[i], dfd, store_names[i]) < 0) {
			r = -errno;
			log_error(NULL, "%s/%s: cannot replace with a symlink: %s", output_dir,
				  store_names[i], strerror(errno));
			goto out;
		}
		todo[i] = 0;
	}
	if (fsync(dfd) < 0) {
		r = -errno;
		log_error(NULL, "%s: fsync failed: %s", output_dir, strerror(errno));
	}
out:
	for (int i = 0; i < 4; i++)
		if (todo[i])
			unlinkat(dfd, tmp[i], 0);
	return r;
}

int store_install_bundle(const char *output_dir, const struct store_bundle *b)
{
	const char *data[4];
	size_t lens[4];
	char prev[PATH_MAX], gen[64], tmp[64];
	long long max_gen;
	int dfd = -1, gfd = -1, r, made_gen = 0;

	if (!output_dir || !b || !b->key_pem || !b->key_len || !b->cert_pem || !b->cert_len ||
	    (!b->chain_pem && b->chain_len) || (!b->fullchain_pem && b->fullchain_len))
		return -EINVAL;
	data[0] = b->key_pem;
	lens[0] = b->key_len;
	data[1] = b->cert_pem;
	lens[1] = b->cert_len;
	data[2] = b->chain_pem ? b->chain_pem : "";
	lens[2] = b->chain_len;
	data[3] = b->fullchain_pem ? b->fullchain_pem : "";
	lens[3] = b->fullchain_len;

	r = store_mkdir_p(output_dir, 0755);
	if (r < 0)
		return r;
	dfd = open(output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		log_error(NULL, "%s: cannot open: %s", output_dir, strerror(errno));
		return r;
	}
	r = store_scan(dfd, output_dir, &max_gen, prev, sizeof(prev));
	if (r < 0)
		goto out;

	/* A fresh generation directory, beyond any existing one. */
	for (int tries = 0;; tries++) {
		snprintf(gen, sizeof(gen), STORE_GEN_PREFIX "%lld", max_gen + 1 + tries);
		if (mkdirat(dfd, gen, 0755) == 0)
			break;
		if (errno != EEXIST || tries >= 100) {
			r = -errno;
			log_error(NULL, "%s/%s: cannot create directory: %s", output_dir, gen,
				  strerror(errno));
			goto out;
		}
	}
	made_gen = 1;
	gfd = openat(dfd, gen, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (gfd < 0 || fchmod(gfd, 0755) < 0) {
		r = -errno;
		log_error(NULL, "%s/%s: cannot open directory: %s", output_dir, gen,
			  strerror(errno));
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		char where[PATH_MAX];

		snprintf(where, sizeof(where), "%s/%s/%s", output_dir, gen, store_names[i]);
		r = store_write_at(gfd, where, store_names[i], data[i], lens[i],
				   i ? 0644 : b->key_group_set ? 0640 : 0600, 1,
				   i == 0 && b->key_group_set ? b->key_gid : (gid_t)-1);
		if (r < 0)
			goto out;
	}
	if (fsync(gfd) < 0) {
		r = -errno;
		log_error(NULL, "%s/%s: fsync failed: %s", output_dir, gen, strerror(errno));
		goto out;
	}

	/* Publish: one rename swaps all four files. */
	snprintf(tmp, sizeof(tmp), STORE_CURRENT ".tmp-%ld", (long)getpid());
	r = store_symlink_tmp(dfd, gen, tmp);
	if (r < 0) {
		log_error(NULL, "%s/%s: cannot create symlink: %s", output_dir, tmp, strerror(-r));
		goto out;
	}
	if (renameat(dfd, tmp, dfd, STORE_CURRENT) < 0) {
		r = -errno;
		log_error(NULL, "%s/" STORE_CURRENT ": cannot replace: %s", output_dir,
			  strerror(errno));
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	made_gen = 0; /* live now: never removed below */
	if (fsync(dfd) < 0) {
		r = -errno;
		log_error(NULL, "%s: fsync failed: %s", output_dir, strerror(errno));
		goto out;
	}
	r = store_link_names(dfd, output_dir);
	if (r < 0)
		goto out;
	/* Keep the previous generation for rollback, remove older ones. */
	store_prune(dfd, output_dir, gen, store_gen_number(prev) >= 0 ? prev : gen);
out:
	if (gfd >= 0)
		close(gfd);
	if (made_gen) {
		int rr = store_remove_tree(dfd, gen);

		if (rr < 0)
			log_warn(NULL, "%s/%s: cannot remove failed generation: %s", output_dir,
				 gen, strerror(-rr));
	}
	close(dfd);
	return r;
}

/* Both names are the links this module makes: read through one pinned
 * generation so key and certificate come from the same install. */
static int store_read_pair(int dfd, const char *output_dir, char **key, size_t *key_len,
			   char **full, size_t *full_len)
{
	char wk[PATH_MAX], wf[PATH_MAX];
	int r;

	snprintf(wk, sizeof(wk), "%s/privkey.pem", output_dir);
	snprintf(wf, sizeof(wf), "%s/fullchain.pem", output_dir);
	r = store_read_at(dfd, wk, "privkey.pem", key, key_len, STORE_LIVE_MAX);
	if (r < 0)
		return r;
	r = store_read_at(dfd, wf, "fullchain.pem", full, full_len, STORE_LIVE_MAX);
	if (r < 0) {
		free(*key);
		*key = NULL;
		*key_len = 0;
	}
	return r;
}

int store_read_live(const char *output_dir, char **key_pem, size_t *key_len,
		    char **fullchain_pem, size_t *fullchain_len)
{
	int dfd, gfd, r;

	if (!output_dir || !key_pem || !key_len || !fullchain_pem || !fullchain_len)
		return -EINVAL;
	*key_pem = *fullchain_pem = NULL;
	*key_len = *fullchain_len = 0;
	dfd = open(output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		if (r == -ENOTDIR)
			r = -ENOENT;
		if (r != -ENOENT)
			log_error(NULL, "%s: cannot open: %s", output_dir, strerror(errno));
		return r;
	}
	if (store_link_is(dfd, "privkey.pem", STORE_CURRENT "/privkey.pem") &&
	    store_link_is(dfd, "fullchain.pem", STORE_CURRENT "/fullchain.pem") &&
	    (gfd = openat(dfd, STORE_CURRENT, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		r = store_read_pair(gfd, output_dir, key_pem, key_len, fullchain_pem,
				    fullchain_len);
		close(gfd);
	} else {
		r = store_read_pair(dfd, output_dir, key_pem, key_len, fullchain_pem,
				    fullchain_len);
	}
	close(dfd);
	return r;
}
