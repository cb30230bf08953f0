/* pidfile.h - one acmed per runtime_dir: runtime_dir/acmed.pid, held locked while it runs. */
#ifndef ACMED_PIDFILE_H
#define ACMED_PIDFILE_H

#include <sys/types.h>

struct pidfile {
	char *path;
	int fd;                 /* open and flock()ed; -1 when not held */
};

#define PIDFILE_INIT { NULL, -1 }

/* Take runtime_dir/acmed.pid: create it 0600, lock it, write our pid. uid/gid:
 * whom the file belongs to when root takes it for the daemon's user (a dry run
 * as root leaves nothing the daemon cannot open); (uid_t)-1: the caller.
 * -EBUSY when another acmed holds it (logged, with its pid). */
int pidfile_take(const char *runtime_dir, uid_t uid, gid_t gid, struct pidfile *pf);
struct store_owner;
/* A command that does the daemon's work without one (a dry run, a
 * revocation): runtime_dir made if needed and the pid file taken, both given
 * to state_dir's owner when run as root (owner says whom). what names the
 * command in the message when another acmed runs. 0 or -errno (said). */
int pidfile_take_command(const char *state_dir, const char *runtime_dir, const char *what,
			 struct pidfile *pf, struct store_owner *owner);
/* Unlink and close it (when held), free the path. */
void pidfile_release(struct pidfile *pf);

#endif
