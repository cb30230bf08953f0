/* testutil.h - helpers shared by the unit tests: reading a file (whole, or whether it holds a text), removing a test directory, sockets handed over as systemd would. */
#ifndef ACMED_TESTUTIL_H
#define ACMED_TESTUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* A whole file, NUL-terminated, malloc'd; NULL when it cannot be opened. No
 * ftell: /proc files have no size. */
static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap += 65536;
			if (!(buf = realloc(buf, cap + 1)))
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* 1 when the file holds needle, 0 when not, -1 when it cannot be read. */
static inline int file_has(const char *path, const char *needle)
{
	char *s = slurp(path);
	int found = s ? strstr(s, needle) != NULL : -1;

	free(s);
	return found;
}

/* rm -rf path (made writable first: tests drop permissions on purpose). */
static inline void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		unlink(path);
		return;
	}
	chmod(path, 0700);
	while ((e = readdir(d)) != NULL) {
		char *p;
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = store_path(path, e->d_name);
		if (p && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_rf(p);
		else if (p)
			unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

/* A TCP socket listening on 127.0.0.1 at a port the kernel picked (in *port). */
static inline int listening_socket(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Put fd at 3 (SD_LISTEN_FDS_START), keeping whatever was there. Returns the saved copy or -1. */
static inline int move_to_3(int fd)
{
	int saved;

	if (fd == 3)
		return -1;
	saved = fcntl(3, F_GETFD) >= 0 ? fcntl(3, F_DUPFD_CLOEXEC, 100) : -1;
	assert_int_equal(dup2(fd, 3), 3);
	close(fd);
	return saved;
}

static inline void restore_3(int saved)
{
	if (saved >= 0) {
		dup2(saved, 3);
		close(saved);
	} else {
		close(3);
	}
}

/* LISTEN_FDS / LISTEN_PID as systemd sets them for socket activation. */
static inline void set_listen_env(const char *nfds, long pid)
{
	char p[32];

	snprintf(p, sizeof(p), "%ld", pid);
	setenv("LISTEN_FDS", nfds, 1);
	setenv("LISTEN_PID", p, 1);
}

#endif
