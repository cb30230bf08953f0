/* store_owner.h - files a command run as root makes in state_dir belong to the daemon's user. */
#ifndef ACMED_STORE_OWNER_H
#define ACMED_STORE_OWNER_H

#include <sys/types.h>

/* Whom files made by a command belong to (store_owner_wanted's answer). */
struct store_owner {
	int give;               /* 1: give what is made to uid:gid */
	uid_t uid;              /* (uid_t)-1 when not */
	gid_t gid;
};

/* Run as root: the uid and gid state_dir belongs to (else those of the user
 * acmed). 1 when files made here must be given to them, 0 when not (not root,
 * or the daemon runs as root too). */
int store_owner_wanted(const char *state_dir, uid_t *uid, gid_t *gid);
/* Give every entry under dir (dir too) that root owns to uid:gid; symlinks
 * themselves, never what they point to. A failure is said on stderr. */
void store_owner_give_tree(const char *dir, uid_t uid, gid_t gid);

#endif
