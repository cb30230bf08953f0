/* pidfile.c - one acmed per runtime_dir: takes runtime_dir/acmed.pid (0600, flock), replacing one left by a crash or made too open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "pidfile.h"
#include "store.h"
#include "store_owner.h"

/* A pid file no one but acmed's user (and root) can open: then no one else can
 * hold a lock on it. An older acmed made it 0644, and anyone could take a
 * shared lock and so keep acmed from starting after a crash. */
static int pid_file_private(const struct stat *st, uid_t owner)
{
	return st->st_uid == owner && (st->st_mode & 077) == 0;
}

/* pid names a live process of uid. */
static int pid_alive_as(long pid, uid_t uid)
{
	char path[64];
	struct stat st;

	if (pid <= 1)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld", pid);
	return stat(path, &st) == 0 && st.st_uid == uid;
}

/* One acmed per runtime_dir: the pid file is held locked while it runs. */
int pidfile_take(const char *runtime_dir, uid_t uid, gid_t gid, struct pidfile *pf)
{
	const char *path;
	struct stat st, now;
	uid_t owner = uid == (uid_t)-1 ? geteuid() : uid;
	char buf[32];
	long pid;
	int fd = -1, n;

	pf->path = store_path(runtime_dir, CONTROL_PID_NAME);
	if (!pf->path)
		return -ENOMEM;
	path = pf->path;
	/* Each turn either takes the file or removes one that was not acmed's. */
	for (int turn = 0; turn < 4; turn++) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
		if (fd < 0) {
			n = errno;
			log_error(NULL, "cannot open %s: %s", path, strerror(n));
			return -n;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			log_error(NULL, "%s is not a regular file; remove it", path);
			close(fd);
			return -EEXIST;
		}
		/* root taking it for the daemon's user: the file is that user's from the start */
		/* (never a file with another name elsewhere: a hard link the owner of
		 * runtime_dir made to a file of root's would be given away) */
		if (owner != geteuid() && st.st_uid == geteuid() && st.st_nlink == 1) {
			if (fchown(fd, owner, gid) < 0) {
				n = errno;
				log_error(NULL, "cannot give %s to uid %u: %s", path, (unsigned)owner,
					  strerror(n));
				close(fd);
				return -n;
			}
			st.st_uid = owner;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* Another acmed may have replaced the file since we opened it. */
			if (stat(path, &now) < 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
				close(fd);
				fd = -1;
				continue;
			}
			if (pid_file_private(&st, owner))
				break;
			log_info(NULL, "%s: mode %04o, owner uid %u: replacing it with a file only "
				 "acmed can open", path, (unsigned)(st.st_mode & 07777),
				 (unsigned)st.st_uid);
			unlink(path);
			close(fd);
			fd = -1;
			continue;
		}
		n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		pid = strtol(buf, NULL, 10);
		if (pid_file_private(&st, owner) || pid_alive_as(pid, st.st_uid)) {
			if (!buf[0] || pid_alive_as(pid, st.st_uid))
				log_error(NULL, "another acmed is running (pid %s, %s); stop it first",
					  buf[0] ? buf : "?", path);
			else
				log_error(NULL, "%s is held locked by another process of uid %u or "
					  "root; the acmed it names (pid %s) is gone", path,
					  (unsigned)st.st_uid, buf);
			close(fd);
			return -EBUSY;
		}
		/* Left by an acmed that is gone, and held by whoever could open it. */
		log_warn(NULL, "%s (mode %04o) is held locked by a process that is not acmed (pid %s "
			 "is gone); replacing it with a file only acmed can open", path,
			 (unsigned)(st.st_mode & 07777), buf[0] ? buf : "?");
		unlink(path);
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		log_error(NULL, "cannot take %s: it keeps being replaced", path);
		return -EBUSY;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_error(NULL, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -EIO;
	}
	pf->fd = fd;
	return 0;
}

void pidfile_release(struct pidfile *pf)
{
	if (pf->fd >= 0) {
		unlink(pf->path);
		close(pf->fd);
		pf->fd = -1;
	}
	free(pf->path);
	pf->path = NULL;
}

int pidfile_take_command(const char *state_dir, const char *runtime_dir, const char *what,
			 struct pidfile *pf, struct store_owner *owner)
{
	struct stat st;
	int rc;

	owner->give = store_owner_wanted(state_dir, &owner->uid, &owner->gid);
	if (!owner->give) {
		owner->uid = (uid_t)-1;
		owner->gid = (gid_t)-1;
	}
	if (stat(runtime_dir, &st) < 0) {
		rc = store_mkdir_p(runtime_dir, 0755);
		if (rc < 0) {
			fprintf(stderr, "acmed: cannot create runtime_dir %s: %s\n", runtime_dir, strerror(-rc));
			return rc;
		}
		if (owner->give && lchown(runtime_dir, owner->uid, owner->gid) < 0)
			fprintf(stderr, "acmed: %s: cannot give it to uid %u: %s\n", runtime_dir,
				(unsigned)owner->uid, strerror(errno));
	}
	/* No control socket is not yet no daemon: `run --once` has none. The pid
	 * file says; held, it also keeps a daemon from starting meanwhile. */
	rc = pidfile_take(runtime_dir, owner->uid, owner->gid, pf);
	if (rc < 0) {
		fprintf(stderr, "acmed: %s answers the CA's challenges here, as a daemon would; try again when "
			"that acmed is done\n", what);
		pidfile_release(pf);
	}
	return rc;
}
