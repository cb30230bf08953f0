/* childtest.h - helpers for unit tests that run real child processes while acmed's timers follow the fake clock: scripts, FIFOs, the log captured, waits on real events. */
#ifndef ACMED_CHILDTEST_H
#define ACMED_CHILDTEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "fakeclock.h"
#include "testutil.h"

#define SAFETY_S 60     /* real seconds before a wait that never ends fails the test */

/* ---- a temporary directory ---- */

static char tmpdir[64];

static inline void tmpdir_make(const char *what)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/acmed-test-%s-XXXXXX", what);
	assert_non_null(mkdtemp(tmpdir));
}

static inline void tmpdir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (tmpdir[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* tmpdir/name, in one of 32 rotating buffers. */
static inline char *tpath(const char *name)
{
	static char buf[32][256];
	static int i;
	char *p = buf[i++ % 32];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

/* Writes an executable /bin/sh script into tmpdir; returns its path (rotating buffer). */
static inline char *script(const char *name, const char *body)
{
	char *path = tpath(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0700), 0);
	return path;
}

static inline size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* ---- FIFOs: what children block on instead of sleeping ---- */

/* tmpdir/never, a FIFO nobody writes to: a child reading it blocks until killed. */
static inline const char *never_fifo(void)
{
	unlink(tpath("never"));
	assert_int_equal(mkfifo(tpath("never"), 0600), 0);
	return tpath("never");
}

/* After a failed test: children still blocked opening tmpdir/never get EOF. */
static inline void never_fifo_release(void)
{
	int fd = open(tpath("never"), O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
}

/* What a child writes into the FIFO at path, without blocking the test forever. */
static inline void read_fifo(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	assert_true(fd >= 0);
	if (poll(&p, 1, SAFETY_S * 1000) != 1)
		fail_msg("nothing came through %s", path);
	n = read(fd, buf, len - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	close(fd);
}

/* ---- the log (log.c writes to stderr) captured in tmpdir/stderr.log ---- */

static int saved_stderr = -1;

static inline void capture_start(void)
{
	int fd = open(tpath("stderr.log"), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* What was logged so far (malloc'd). */
static inline char *captured(void)
{
	char *s;

	fflush(stderr);
	s = slurp(tpath("stderr.log"));
	assert_non_null(s);
	return s;
}

/* stderr restored; what was logged (malloc'd), also copied to the test's output. */
static inline char *capture_end(void)
{
	char *s = captured();

	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	fputs(s, stderr);
	return s;
}

static inline int logged(const char *needle)
{
	char *s = captured();
	int found = strstr(s, needle) != NULL;

	free(s);
	return found;
}

/* The needles appear in the log in this order (NULL-terminated). */
static inline void assert_log_order(const char *log, ...)
{
	const char *prev = log, *needle;
	va_list ap;

	va_start(ap, log);
	while ((needle = va_arg(ap, const char *)) != NULL) {
		const char *at = strstr(prev, needle);

		if (!at)
			fail_msg("\"%s\" not in the log after the previous line", needle);
		prev = at + strlen(needle);
	}
	va_end(ap);
}

/* ---- waiting for events ---- */

/* A timerfd on the kernel's real monotonic clock (the fake clock does not move it). */
static inline int real_timer(long first_ms, long every_ms)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { every_ms / 1000, (every_ms % 1000) * 1000000 },
	};

	assert_true(fd >= 0);
	assert_int_equal(timerfd_settime(fd, 0, &its, NULL), 0);
	return fd;
}

static inline void on_real_timer(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n) && arg)
		*(int *)arg = 1;
}

/*
 * Run the loop on real events (children's output and exits, sockets) until
 * pred(a, b) holds. The fake clock stands still: acmed's timers fire only when
 * the test moves it with advance(). A real 10 ms tick re-checks pred for what
 * happens outside the loop; SAFETY_S real seconds fail a wait that never ends.
 */
static inline void wait_until(struct event_base *base, int (*pred)(void *, const void *),
			      void *a, const void *b)
{
	int hit = 0, sfd = real_timer(SAFETY_S * 1000, 0), tfd = real_timer(10, 10);
	struct event *safety = event_new(base, sfd, EV_READ, on_real_timer, &hit);
	struct event *tick = event_new(base, tfd, EV_READ | EV_PERSIST, on_real_timer, NULL);

	event_add(safety, NULL);
	event_add(tick, NULL);
	while (!pred(a, b) && !hit)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(safety);
	event_free(tick);
	close(sfd);
	close(tfd);
	if (hit)
		fail_msg("waited %d s for an event that never came", SAFETY_S);
}

/* pred for wait_until: b (a string) is in the log. */
static inline int in_log(void *a, const void *b)
{
	return logged(b);
}

/* Move the fake clock and run what is due now. */
static inline void advance(struct event_base *base, int64_t ms)
{
	fakeclock_advance_ms(ms);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

/* ---- processes ---- */

/* Orphans of the children (their background processes) come to this process,
 * so a test can wait for their exact end instead of polling /proc. */
static inline int become_subreaper(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return -1;
	}
	return 0;
}

static inline void assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* pid is dead and reaped: no zombie left. */
static inline void assert_gone(pid_t pid)
{
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* A descendant orphaned by a killed child ended by sig (we are its subreaper). */
static inline void assert_orphan_killed(pid_t pid, int sig)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_true(fd >= 0);
	if (poll(&p, 1, SAFETY_S * 1000) != 1)
		fail_msg("process %d outlived its group's signal", (int)pid);
	close(fd);
	assert_int_equal(waitpid(pid, &st, WNOHANG), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), sig);
}

/* The number after prefix in the log (a pid a child printed). */
static inline pid_t pid_after(const char *log, const char *prefix)
{
	const char *p = strstr(log, prefix);

	assert_non_null(p);
	return (pid_t)atoi(p + strlen(prefix));
}

#endif
