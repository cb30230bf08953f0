/* store_group.c - the group that may read a key (key_group): its gid, looked up where blocking is allowed. */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"

int store_group_gid(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 ? (size_t)hint : 4096;
	char *buf = NULL;
	int e = ERANGE;

	/* A group with many members needs a larger buffer: grown until it fits. */
	while (e == ERANGE && size <= (1u << 24)) {
		char *b = realloc(buf, size);

		if (!b) {
			free(buf);
			return -ENOMEM;
		}
		buf = b;
		e = getgrnam_r(name, &gr, buf, size, &res);
		size *= 2;
	}
	if (e == 0 && res)
		*gid = res->gr_gid;
	free(buf);
	return e ? -e : res ? 0 : -ENOENT;
}
