/* store_owner.c - what a command run as root (import, a dry run) leaves in state_dir is the daemon's user's, never root's. */
#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_owner.h"

#define SERVICE_USER "acmed"

static uid_t give_uid;
static gid_t give_gid;

static int give_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (st->st_uid == 0 && lchown(path, give_uid, give_gid) < 0)
		fprintf(stderr, "acmed: %s: cannot give it to uid %u: %s\n", path, (unsigned)give_uid,
			strerror(errno));
	return 0;
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
	give_uid = uid;
	give_gid = gid;
	nftw(dir, give_one, 16, FTW_PHYS);
}
