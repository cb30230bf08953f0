/* store_owner.c - what a command run as root (import, a dry run) leaves in state_dir is the daemon's user's, never root's. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_owner.h"

#define SERVICE_USER "acmed"

/* Give what root owns in the directory open as dfd (recursively) to uid:gid.
 * Each step is relative to an open directory and never follows a symbolic
 * link: the user who owns the tree cannot, by swapping a directory for a
 * link mid-walk, make root give away a file elsewhere. */
static void give_dir(int dfd, const char *where, uid_t uid, gid_t gid, int depth)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(dfd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (st.st_uid == 0 && fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			fprintf(stderr, "acmed: %s/%s: cannot give it to uid %u: %s\n", where, e->d_name,
				(unsigned)uid, strerror(errno));
		if (S_ISDIR(st.st_mode) && depth < 16) {
			int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				give_dir(sub, where, uid, gid, depth + 1);
				close(sub);
			}
		}
	}
	closedir(d);
}

int store_owner_wanted(const char *state_dir, uid_t *uid, gid_t *gid)
{
	struct stat st;
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (stat(state_dir, &st) == 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
	} else if ((pw = getpwnam(SERVICE_USER))) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	} else {
		return 0;
	}
	return *uid != 0;
}

void store_owner_give_tree(const char *dir, uid_t uid, gid_t gid)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_uid == 0 && fchown(fd, uid, gid) < 0)
		fprintf(stderr, "acmed: %s: cannot give it to uid %u: %s\n", dir, (unsigned)uid, strerror(errno));
	give_dir(fd, dir, uid, gid, 0);
	close(fd);
}
