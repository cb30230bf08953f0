/* test_service.c - unit tests for the systemd glue (service.c): socket activation, sd_notify, watchdog on a fake clock. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "fakeclock.h"
#include "service.h"
#include "testutil.h"

static struct event_base *base;

static int setup(void **state)
{
	base = event_base_new();
	return base ? 0 : -1;
}

static int teardown(void **state)
{
	event_base_free(base);
	return 0;
}

/* ---------- socket activation (service_listen_fds) ---------- */

static void test_listen_fds(void **state)
{
	int port, saved, saved4, *fds = NULL, *alpn = NULL;
	size_t n = 9, na = 9;
	int sock = listening_socket(&port);

	/* Not activated. */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	assert_int_equal(service_listen_fds(&fds, &n, &alpn, &na), 0);
	assert_null(fds);
	assert_int_equal(n + na, 0);
	/* For another process. */
	set_listen_env("1", (long)getpid() + 1);
	assert_int_equal(service_listen_fds(&fds, &n, &alpn, &na), 0);
	assert_null(fds);
	assert_int_equal(n + na, 0);

	saved = move_to_3(sock);
	set_listen_env("1", (long)getpid());
	assert_int_equal(service_listen_fds(&fds, &n, &alpn, &na), 0);
	assert_int_equal(n, 1);
	assert_int_equal(na, 0);
	assert_int_equal(fds[0], 3);
	assert_true(fcntl(3, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC);
	assert_null(getenv("LISTEN_FDS"));      /* not passed on to children */
	assert_null(getenv("LISTEN_PID"));
	free(fds);
	free(alpn);

	/* Two sockets, the second named tls-alpn (FileDescriptorName=tls-alpn): each to its own. */
	saved4 = fcntl(4, F_GETFD) >= 0 ? fcntl(4, F_DUPFD_CLOEXEC, 110) : -1;
	assert_int_equal(dup2(listening_socket(&port), 4), 4);
	set_listen_env("2", (long)getpid());
	setenv("LISTEN_FDNAMES", "acmed.socket:tls-alpn", 1);
	assert_int_equal(service_listen_fds(&fds, &n, &alpn, &na), 0);
	assert_int_equal(n, 1);
	assert_int_equal(na, 1);
	assert_int_equal(fds[0], 3);
	assert_int_equal(alpn[0], 4);
	assert_null(getenv("LISTEN_FDNAMES"));
	free(fds);
	free(alpn);
	close(4);
	if (saved4 >= 0) {
		dup2(saved4, 4);
		close(saved4);
	}
	restore_3(saved);                       /* closes the listening socket */
}

static void test_listen_fds_rejects(void **state)
{
	int saved, *fds = (int *)1, *alpn = (int *)1;
	size_t n, na;
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	int tcp;

	/* A datagram socket is not what the listener needs. */
	saved = move_to_3(udp);
	set_listen_env("1", (long)getpid());
	assert_true(service_listen_fds(&fds, &n, &alpn, &na) < 0);
	assert_null(fds);
	assert_null(alpn);
	restore_3(saved);

	/* Nor is a stream socket that does not listen. */
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	saved = move_to_3(tcp);
	set_listen_env("1", (long)getpid());
	fds = (int *)1;
	assert_true(service_listen_fds(&fds, &n, &alpn, &na) < 0);
	assert_null(fds);
	restore_3(saved);

	/* Garbage in LISTEN_FDS. */
	set_listen_env("x", (long)getpid());
	assert_true(service_listen_fds(&fds, &n, &alpn, &na) < 0);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
}

/* ---------- sd_notify ---------- */

static void test_notify(void **state)
{
	char dir[] = "/tmp/acmed-test-notify-XXXXXX", path[100], buf[1024];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;
	ssize_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", path, 1);

	service_notify_ready("x");
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "READY=1"));
	assert_non_null(strstr(buf, "STATUS=x"));

	service_notify_status("%d certificates, next renewal in %s", 3, "2d");
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "STATUS=3 certificates, next renewal in 2d");

	/* A newline in the status cannot smuggle another field in. */
	service_notify_status("bad\nREADY=1");
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "STATUS=bad READY=1");

	service_notify_stopping();
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "STOPPING=1"));

	service_notify_ready(NULL);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1");

	/* Without NOTIFY_SOCKET nothing is sent and nothing breaks. */
	unsetenv("NOTIFY_SOCKET");
	service_notify_ready("y");
	assert_true(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* A bound AF_UNIX datagram socket standing in for systemd's notify socket. */
struct notify_sock {
	char dir[64];
	char path[100];
	int fd;
};

static void notify_open(struct notify_sock *ns)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(ns->dir, sizeof(ns->dir), "/tmp/acmed-test-notify-XXXXXX");
	assert_non_null(mkdtemp(ns->dir));
	snprintf(ns->path, sizeof(ns->path), "%s/notify", ns->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ns->path);
	ns->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(ns->fd >= 0);
	assert_int_equal(bind(ns->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("NOTIFY_SOCKET", ns->path, 1);
}

static void notify_close(struct notify_sock *ns)
{
	unsetenv("NOTIFY_SOCKET");
	close(ns->fd);
	unlink(ns->path);
	rmdir(ns->dir);
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_notify_reloading(void **state)
{
	struct notify_sock ns;
	char buf[1024], *line, *save = NULL;
	uint64_t before, after, stamp = 0;
	int reloading = 0, nfields = 0;
	ssize_t n;

	notify_open(&ns);
	before = now_usec();
	service_notify_reloading();
	after = now_usec();
	n = recv(ns.fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		nfields++;
		if (strcmp(line, "RELOADING=1") == 0) {
			reloading = 1;
		} else if (strncmp(line, "MONOTONIC_USEC=", 15) == 0) {
			char *end;

			stamp = strtoull(line + 15, &end, 10);
			assert_int_equal(*end, '\0');
		} else {
			assert_int_equal(strncmp(line, "STATUS=", 7), 0);
		}
	}
	assert_true(reloading);
	assert_true(nfields >= 2);
	/* The same clock systemd compares it with, taken during the call. */
	assert_true(stamp >= before);
	assert_true(stamp <= after);

	/* The reload is over: READY=1 follows, in order. */
	service_notify_ready("3 certificates");
	n = recv(ns.fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=3 certificates");
	assert_true(recv(ns.fd, buf, sizeof(buf), 0) < 0);
	notify_close(&ns);
}

/* The datagrams waiting on the notify socket, in order, joined with '|'; "" when none. */
static void drain(struct notify_sock *ns, char *out, size_t len)
{
	char buf[256];
	ssize_t n;

	*out = '\0';
	while ((n = recv(ns->fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? "|" : "", buf);
	}
}

/* Move the fake clock and run what is due now. sd_notify() sends from inside the
 * timer's callback, so its datagram is queued when this returns. */
static void advance(int64_t ms)
{
	fakeclock_advance_ms(ms);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static void set_watchdog_env(const char *usec, long pid)
{
	char p[32];

	snprintf(p, sizeof(p), "%ld", pid);
	setenv("WATCHDOG_USEC", usec, 1);
	setenv("WATCHDOG_PID", p, 1);
}

static void test_watchdog(void **state)
{
	struct notify_sock ns;
	char got[1024];

	notify_open(&ns);
	fakeclock_freeze();

	/* WatchdogSec=200ms: one ping per 100 ms, never before. */
	set_watchdog_env("200000", (long)getpid());
	assert_int_equal(service_watchdog_start(base), 1);
	for (int i = 0; i < 10; i++) {
		advance(99);
		drain(&ns, got, sizeof(got));
		assert_string_equal(got, "");
		advance(1);
		drain(&ns, got, sizeof(got));
		assert_string_equal(got, "WATCHDOG=1");
	}

	/* Among the other notifications, in the order they were sent. */
	service_notify_status("busy");
	advance(100);
	service_notify_status("idle");
	advance(100);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "STATUS=busy|WATCHDOG=1|STATUS=idle|WATCHDOG=1");

	/* A loop stalled for 10 intervals sends one ping when it runs again, not a
	 * burst, and the next one an interval later. */
	advance(1000);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "WATCHDOG=1");
	advance(99);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "");
	advance(1);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "WATCHDOG=1");

	/* Starting again re-arms from now: one timer, not two. */
	advance(50);
	assert_int_equal(service_watchdog_start(base), 1);
	advance(99);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "");
	advance(1);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "WATCHDOG=1");
	for (int i = 0; i < 5; i++)
		advance(100);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "WATCHDOG=1|WATCHDOG=1|WATCHDOG=1|WATCHDOG=1|WATCHDOG=1");

	/* Stopped: nothing, however long. */
	service_watchdog_stop();
	service_watchdog_stop();        /* twice is harmless */
	advance(10000);
	service_notify_stopping();
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "STOPPING=1\nSTATUS=stopping");

	/* The watchdog is for another process (a parent's variables inherited). */
	set_watchdog_env("200000", (long)getpid() + 1);
	assert_int_equal(service_watchdog_start(base), 0);
	advance(10000);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "");

	/* Garbage is an error, not a silent default. */
	set_watchdog_env("soon", (long)getpid());
	assert_true(service_watchdog_start(base) < 0);

	/* No WatchdogSec=: nothing is armed and nothing is sent. */
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(service_watchdog_start(base), 0);
	advance(10000);
	drain(&ns, got, sizeof(got));
	assert_string_equal(got, "");
	service_watchdog_stop();
	notify_close(&ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_notify_reloading),
		cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
		cmocka_unit_test(test_listen_fds),
		cmocka_unit_test(test_listen_fds_rejects),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
