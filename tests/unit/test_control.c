/* test_control.c - unit tests for the control socket: a real server in a child process, real clients, the CLI side. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <event2/event.h>

#include "acme.h"
#include "config.h"
#include "control.h"
#include "scheduler.h"
#include "store.h"

/* ---- the fake daemon: the test's implementation of control_ops ---- */

struct fake {
	struct event_base *base;
	struct control *c;
	int reload_ok;          /* what SIGHUP answers */
	unsigned status_calls;
};

static json_t *fake_status(void *arg)
{
	struct fake *f = arg;

	f->status_calls++;
	return json_pack("{s:b, s:s, s:[], s:[{s:s, s:I}]}", "daemon", 1, "generated_at",
			 "2025-03-01T12:00:00Z", "cas", "certificates", "name", "web", "calls",
			 (json_int_t)f->status_calls);
}

static const char *const fake_names[] = { "web", "mail" };

static int fake_renew(void *arg, const char *const *names, size_t n, int all, int force,
		      json_t *renewing, json_t *not_due, char *err, size_t errlen)
{
	size_t i, k, count = all ? 2 : n;

	for (i = 0; !all && i < n; i++) {
		for (k = 0; k < 2 && strcmp(names[i], fake_names[k]) != 0; k++)
			;
		if (k == 2) {
			snprintf(err, errlen, "unknown certificate: %s", names[i]);
			return -ENOENT;
		}
	}
	for (i = 0; i < count; i++) {
		const char *name = all ? fake_names[i] : names[i];
		/* "mail" is valid and not due: only force renews it. */
		json_array_append_new(strcmp(name, "mail") == 0 && !force ? not_due : renewing,
				      json_string(name));
	}
	return 0;
}

static const struct control_ops fake_ops = { fake_status, fake_renew, NULL, NULL, NULL };

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct fake *f = arg;

	if (sig == SIGHUP && f->reload_ok)
		control_reload_done(f->c, 1, NULL, 3, 1, 0, 2);
	else if (sig == SIGHUP || sig == SIGUSR1)
		control_reload_done(f->c, 0, "/etc/acmed/acmed.yaml:3:5: unknown key \"foo\"", 0, 0,
				    0, 0);
	else
		event_base_loopexit(f->base, NULL);
}

/* The child: optionally hold the pid file lock, serve until SIGTERM. Exit 0
 * when it ran and cleaned up (socket unlinked), 10+ on failures. */
static void server_main(const char *rundir, int ready_fd, unsigned idle_ms, int pid_lock,
			int reload_ok)
{
	struct fake f = { .reload_ok = reload_ok };
	struct event *ev[4];
	static const int sigs[4] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	char *sock = store_path(rundir, CONTROL_SOCKET_NAME);
	struct stat st;
	int lock_fd = -1;

	signal(SIGPIPE, SIG_IGN);
	if (pid_lock) {
		char *pidf = store_path(rundir, CONTROL_PID_NAME), buf[32];
		int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
		lock_fd = open(pidf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0 ||
		    pwrite(lock_fd, buf, (size_t)n, 0) != n)
			_exit(10);
		free(pidf);
	}
	f.base = event_base_new();
	if (!f.base || control_new(f.base, rundir, &fake_ops, &f, &f.c) < 0)
		_exit(11);
	if (idle_ms)
		control_set_idle_timeout(f.c, idle_ms);
	for (int i = 0; i < 4; i++) {
		ev[i] = evsignal_new(f.base, sigs[i], on_signal, &f);
		if (!ev[i] || evsignal_add(ev[i], NULL) < 0)
			_exit(12);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(13);
	close(ready_fd);
	event_base_dispatch(f.base);
	control_free(f.c);
	for (int i = 0; i < 4; i++)
		event_free(ev[i]);
	event_base_free(f.base);
	if (lstat(sock, &st) == 0)
		_exit(14);      /* control_free must unlink the socket */
	free(sock);
	if (lock_fd >= 0)
		close(lock_fd);
	_exit(0);
}

struct fx {
	char *dir, *rundir, *sock;
	struct config *cfg;
	pid_t child;
};

static void start_server(struct fx *x, unsigned idle_ms, int pid_lock, int reload_ok)
{
	int p[2];
	char c;

	assert_int_equal(pipe(p), 0);
	x->child = fork();
	assert_true(x->child >= 0);
	if (x->child == 0) {
		close(p[0]);
		server_main(x->rundir, p[1], idle_ms, pid_lock, reload_ok);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
}

static void stop_server(struct fx *x)
{
	int status;

	if (x->child <= 0)
		return;
	assert_int_equal(kill(x->child, SIGTERM), 0);
	assert_int_equal(waitpid(x->child, &status, 0), x->child);
	x->child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	char tmpl[] = "/tmp/acmed-test-control-XXXXXX", err[512], *yaml, *name;

	assert_non_null(x);
	assert_non_null(mkdtemp(tmpl));
	x->dir = strdup(tmpl);
	x->rundir = store_path(x->dir, "run");
	x->sock = store_path(x->rundir, CONTROL_SOCKET_NAME);
	assert_int_equal(mkdir(x->rundir, 0755), 0);
	assert_true(asprintf(&yaml, "state_dir: state\nruntime_dir: run\ncas:\n  - name: le\n"
			     "    directory: https://127.0.0.1:9/dir\ncertificates:\n"
			     "  - name: web\n    domains: [example.org]\n"
			     "  - name: mail\n    domains: [mail.example.org]\n") > 0);
	name = store_path(x->dir, "acmed.yaml");
	assert_int_equal(config_load_buffer(name, yaml, strlen(yaml), &x->cfg, err, sizeof(err)),
			 0);
	free(name);
	free(yaml);
	control_cli_set_timeout(5000);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	int status;

	if (x->child > 0) {
		kill(x->child, SIGKILL);
		waitpid(x->child, &status, 0);
	}
	config_free(x->cfg);
	rm_rf(x->dir);
	free(x->dir);
	free(x->rundir);
	free(x->sock);
	free(x);
	return 0;
}

/* ---- a raw client ---- */

static int cl_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(a.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void cl_send(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
		assert_true(w > 0);
		data += w;
		len -= (size_t)w;
	}
}

static void cl_sends(int fd, const char *s)
{
	cl_send(fd, s, strlen(s));
}

/* One answer line (NULL on EOF), within 5 s. */
static json_t *cl_recv(int fd)
{
	char buf[65536];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		assert_int_equal(poll(&p, 1, 5000), 1);
		/* Byte by byte: the next answer stays in the socket. */
		r = read(fd, buf + len, 1);
		if (r == 0 || (r < 0 && errno == ECONNRESET)) {
			assert_int_equal(len, 0);
			return NULL;
		}
		assert_int_equal(r, 1);
		if (buf[len] == '\n') {
			json_t *j = json_loadb(buf, len, 0, NULL);
			assert_non_null(j);
			return j;
		}
		assert_true(++len < sizeof(buf));
	}
}

static void assert_eof(int fd)
{
	assert_null(cl_recv(fd));
}

static const char *err_of(json_t *a)
{
	assert_true(json_is_false(json_object_get(a, "ok")));
	assert_non_null(json_string_value(json_object_get(a, "error")));
	return json_string_value(json_object_get(a, "error"));
}

/* Capture what fn prints on fd 1 or 2. */
struct capture {
	int fd, saved;
	FILE *tmp;
};

static void capture_begin(struct capture *c, int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(fd);
	assert_int_equal(dup2(fileno(c->tmp), fd), fd);
}

static char *capture_end(struct capture *c)
{
	char *s;
	long n;

	fflush(c->fd == 1 ? stdout : stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	n = ftell(c->tmp);
	s = calloc(1, (size_t)n + 1);
	rewind(c->tmp);
	assert_int_equal(fread(s, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	return s;
}

/* ---- tests ---- */

static void test_socket_mode_and_stale(void **state)
{
	struct fx *x = *state;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	json_t *j;
	int fd;

	/* A socket left behind by a crashed daemon is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(a.sun_path, x->sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	umask(0);               /* a wide umask must not leak into the socket's mode */
	start_server(x, 0, 0, 1);
	umask(022);
	assert_int_equal(lstat(x->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	fd = cl_connect(x->sock);
	cl_sends(fd, "{\"cmd\":\"status\"}\n");
	j = cl_recv(fd);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	close(fd);
	stop_server(x);
}

static void test_new_errors(void **state)
{
	struct fx *x = *state;
	struct event_base *base = event_base_new();
	struct control *c = NULL;
	char *longdir;
	int fd;

	/* Something that is not a socket is not removed. */
	fd = open(x->sock, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(control_new(base, x->rundir, &fake_ops, NULL, &c), -EEXIST);
	assert_null(c);
	assert_int_equal(access(x->sock, F_OK), 0);
	unlink(x->sock);
	/* sun_path holds 108 bytes. */
	assert_true(asprintf(&longdir, "%s/%0120d", x->dir, 0) > 0);
	assert_int_equal(control_new(base, longdir, &fake_ops, NULL, &c), -ENAMETOOLONG);
	free(longdir);
	/* A runtime_dir that does not exist. */
	assert_int_equal(control_new(base, "/nonexistent/acmed", &fake_ops, NULL, &c), -ENOENT);
	/* In-process: listen, free, the socket is gone. */
	assert_int_equal(control_new(base, x->rundir, &fake_ops, NULL, &c), 0);
	assert_int_equal(access(x->sock, F_OK), 0);
	assert_int_equal(control_client_count(c), 0);
	control_free(c);
	assert_int_equal(access(x->sock, F_OK), -1);
	control_free(NULL);
	event_base_free(base);
}

static void test_status_roundtrip(void **state)
{
	struct fx *x = *state;
	json_t *a, *st;
	int fd;

	start_server(x, 0, 0, 1);
	fd = cl_connect(x->sock);
	/* Two requests in one write, CRLF on the second: two answers, in order. */
	cl_sends(fd, "{\"cmd\":\"status\"}\n{\"cmd\": \"status\"}\r\n\n");
	for (int i = 1; i <= 2; i++) {
		a = cl_recv(fd);
		assert_true(json_is_true(json_object_get(a, "ok")));
		st = json_object_get(a, "status");
		assert_true(json_is_true(json_object_get(st, "daemon")));
		assert_string_equal(json_string_value(json_object_get(
			json_array_get(json_object_get(st, "certificates"), 0), "name")), "web");
		assert_int_equal(json_integer_value(json_object_get(
			json_array_get(json_object_get(st, "certificates"), 0), "calls")), i);
		json_decref(a);
	}
	/* A request split over several writes. */
	cl_sends(fd, "{\"cmd\":");
	usleep(50000);
	cl_sends(fd, "\"status\"}\n");
	a = cl_recv(fd);
	assert_true(json_is_true(json_object_get(a, "ok")));
	json_decref(a);
	close(fd);
	stop_server(x);
}

static void test_renew(void **state)
{
	struct fx *x = *state;
	json_t *a;
	int fd;

	start_server(x, 0, 0, 1);
	fd = cl_connect(x->sock);
	cl_sends(fd, "{\"cmd\":\"renew\",\"names\":[\"web\",\"foo\"],\"all\":false,\"force\":false}\n");
	a = cl_recv(fd);
	assert_string_equal(err_of(a), "unknown certificate: foo");
	assert_true(json_is_true(json_object_get(a, "unknown")));
	json_decref(a);

	cl_sends(fd, "{\"cmd\":\"renew\",\"names\":[\"web\",\"mail\"]}\n");
	a = cl_recv(fd);
	assert_true(json_is_true(json_object_get(a, "ok")));
	assert_int_equal(json_array_size(json_object_get(a, "renewing")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(a, "renewing"), 0)),
			    "web");
	assert_string_equal(json_string_value(json_array_get(json_object_get(a, "not_due"), 0)),
			    "mail");
	json_decref(a);

	cl_sends(fd, "{\"cmd\":\"renew\",\"names\":[],\"all\":true,\"force\":true}\n");
	a = cl_recv(fd);
	assert_true(json_is_true(json_object_get(a, "ok")));
	assert_int_equal(json_array_size(json_object_get(a, "renewing")), 2);
	assert_int_equal(json_array_size(json_object_get(a, "not_due")), 0);
	json_decref(a);

	/* Malformed renew requests. */
	static const char *const bad[] = {
		"{\"cmd\":\"renew\"}\n",
		"{\"cmd\":\"renew\",\"names\":[]}\n",
		"{\"cmd\":\"renew\",\"names\":\"web\"}\n",
		"{\"cmd\":\"renew\",\"names\":[\"web\", 7]}\n",
		"{\"cmd\":\"renew\",\"names\":[\"web\"],\"all\":true}\n",
		"{\"cmd\":\"renew\",\"names\":[\"web\"],\"force\":\"yes\"}\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cl_sends(fd, bad[i]);
		a = cl_recv(fd);
		assert_null(json_object_get(a, "unknown"));
		assert_non_null(strstr(err_of(a), "renew"));
		json_decref(a);
	}
	close(fd);
	stop_server(x);
}

static void test_reload_wait(void **state)
{
	struct fx *x = *state;
	int w1, w2, other;
	json_t *a;

	start_server(x, 0, 0, 1);
	w1 = cl_connect(x->sock);
	w2 = cl_connect(x->sock);
	other = cl_connect(x->sock);
	cl_sends(w1, "{\"cmd\":\"reload-wait\"}\n");
	cl_sends(w2, "{\"cmd\":\"reload-wait\"}\n");
	for (int i = 0; i < 2; i++) {
		a = cl_recv(i ? w2 : w1);
		assert_true(json_is_true(json_object_get(a, "ok")));
		assert_true(json_is_true(json_object_get(a, "waiting")));
		json_decref(a);
	}
	assert_int_equal(kill(x->child, SIGHUP), 0);
	for (int i = 0; i < 2; i++) {
		int fd = i ? w2 : w1;
		a = cl_recv(fd);
		assert_true(json_is_true(json_object_get(a, "ok")));
		assert_int_equal(json_integer_value(json_object_get(a, "certificates")), 3);
		assert_int_equal(json_integer_value(json_object_get(a, "added")), 1);
		assert_int_equal(json_integer_value(json_object_get(a, "removed")), 0);
		assert_int_equal(json_integer_value(json_object_get(a, "changed")), 2);
		json_decref(a);
		assert_eof(fd);
		close(fd);
	}
	/* The client that did not wait is untouched and still served. */
	cl_sends(other, "{\"cmd\":\"status\"}\n");
	a = cl_recv(other);
	assert_true(json_is_true(json_object_get(a, "ok")));
	json_decref(a);

	/* The error variant: the parser's message reaches the waiter. */
	w1 = cl_connect(x->sock);
	cl_sends(w1, "{\"cmd\":\"reload-wait\"}\n");
	a = cl_recv(w1);
	assert_true(json_is_true(json_object_get(a, "waiting")));
	json_decref(a);
	assert_int_equal(kill(x->child, SIGUSR1), 0);
	a = cl_recv(w1);
	assert_string_equal(err_of(a), "/etc/acmed/acmed.yaml:3:5: unknown key \"foo\"");
	json_decref(a);
	assert_eof(w1);
	close(w1);
	close(other);
	stop_server(x);
}

static void test_garbage(void **state)
{
	struct fx *x = *state;
	static const char *const bad[] = {
		"not json\n", "[1,2]\n", "{\"cmd\":5}\n", "{}\n", "\"status\"\n",
		"{\"cmd\":\"status\",\"cmd\":\"renew\"}\n", "{\"cmd\":\"status\"\n",
	};
	char *big;
	json_t *a;
	int fd;

	start_server(x, 0, 0, 1);
	fd = cl_connect(x->sock);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cl_sends(fd, bad[i]);
		a = cl_recv(fd);
		assert_non_null(strstr(err_of(a), "malformed request"));
		json_decref(a);
	}
	cl_sends(fd, "{\"cmd\":\"rm -rf \\u001b[2J\"}\n");
	a = cl_recv(fd);
	assert_string_equal(err_of(a), "unknown command: rm -rf ?[2J");
	json_decref(a);
	cl_send(fd, "{\"cmd\":\"sta\0tus\"}\n", 18);
	a = cl_recv(fd);
	err_of(a);
	json_decref(a);
	/* After all that, the same connection still works. */
	cl_sends(fd, "{\"cmd\":\"status\"}\n");
	a = cl_recv(fd);
	assert_true(json_is_true(json_object_get(a, "ok")));
	json_decref(a);
	close(fd);

	/* Over 64 KiB without a newline: an error, then the connection closes. */
	big = malloc(CONTROL_MAX_LINE + 4096);
	memset(big, 'x', CONTROL_MAX_LINE + 4096);
	fd = cl_connect(x->sock);
	cl_send(fd, big, CONTROL_MAX_LINE + 4096);
	a = cl_recv(fd);
	assert_string_equal(err_of(a), "request too long");
	json_decref(a);
	assert_eof(fd);
	close(fd);
	/* Over 64 KiB with a newline at the end: the same. */
	big[CONTROL_MAX_LINE + 10] = '\n';
	fd = cl_connect(x->sock);
	cl_send(fd, big, CONTROL_MAX_LINE + 11);
	a = cl_recv(fd);
	assert_string_equal(err_of(a), "request too long");
	json_decref(a);
	assert_eof(fd);
	close(fd);
	free(big);
	/* The server keeps running. */
	fd = cl_connect(x->sock);
	cl_sends(fd, "{\"cmd\":\"status\"}\n");
	a = cl_recv(fd);
	assert_true(json_is_true(json_object_get(a, "ok")));
	json_decref(a);
	close(fd);
	stop_server(x);
}

static void test_many_clients(void **state)
{
	struct fx *x = *state;
	enum { N = 200 };
	int fds[N];
	json_t *a;

	start_server(x, 0, 0, 1);
	for (int i = 0; i < N; i++)
		fds[i] = cl_connect(x->sock);
	/* All connected at once; each asks, answers come to each. */
	for (int i = 0; i < N; i++)
		cl_sends(fds[i], i % 2 ? "{\"cmd\":\"status\"}\n"
				       : "{\"cmd\":\"renew\",\"names\":[\"web\"]}\n");
	for (int i = N - 1; i >= 0; i--) {
		a = cl_recv(fds[i]);
		assert_true(json_is_true(json_object_get(a, "ok")));
		assert_non_null(json_object_get(a, i % 2 ? "status" : "renewing"));
		json_decref(a);
	}
	for (int i = 0; i < N; i++)
		close(fds[i]);
	stop_server(x);
}

static void test_idle_timeout(void **state)
{
	struct fx *x = *state;
	struct timespec t0, t1;
	json_t *a;
	int fd;

	start_server(x, 300, 0, 1);
	fd = cl_connect(x->sock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_eof(fd);         /* silent: dropped after 300 ms (cl_recv allows 5 s) */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 250);
	close(fd);
	/* A client that keeps talking is not dropped. */
	fd = cl_connect(x->sock);
	for (int i = 0; i < 4; i++) {
		usleep(150000);
		cl_sends(fd, "{\"cmd\":\"status\"}\n");
		a = cl_recv(fd);
		assert_true(json_is_true(json_object_get(a, "ok")));
		json_decref(a);
	}
	close(fd);
	stop_server(x);
}

/* Only our own uid and root are served (SO_PEERCRED), even if the mode is widened. */
static void test_other_uid_refused(void **state)
{
	struct fx *x = *state;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		skip();
	start_server(x, 0, 0, 1);
	/* Make the server's uid differ from the client's: the client drops to nobody. */
	assert_int_equal(chmod(x->sock, 0666), 0);
	assert_int_equal(chmod(x->dir, 0755), 0);
	assert_int_equal(chmod(x->rundir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		char c;
		int fd;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(20);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		strcpy(a.sun_path, x->sock);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			_exit(21);
		if (send(fd, "{\"cmd\":\"status\"}\n", 17, MSG_NOSIGNAL) < 0 && errno != EPIPE)
			_exit(22);
		/* Closed without an answer. */
		_exit(read(fd, &c, 1) <= 0 ? 0 : 23);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	stop_server(x);
}

static void test_cli_reload(void **state)
{
	struct fx *x = *state;
	struct capture out, err;
	char *o, *e;
	int rc;

	start_server(x, 0, 1, 1);
	capture_begin(&out, 1);
	rc = control_cli_reload(x->cfg);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "reloaded: 3 certificates (1 added, 0 removed, 2 changed)\n");
	free(o);
	stop_server(x);

	/* The daemon rejects the new file: exit 1 with its FILE:LINE:COL message. */
	start_server(x, 0, 1, 0);
	capture_begin(&err, 2);
	rc = control_cli_reload(x->cfg);
	e = capture_end(&err);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(e, "/etc/acmed/acmed.yaml:3:5: unknown key \"foo\"\n"));
	free(e);
	stop_server(x);
}

static void test_cli_reload_no_daemon(void **state)
{
	struct fx *x = *state;
	struct capture err;
	char *e, *want, *pidf;
	int rc, fd;

	assert_true(asprintf(&want, "acmed is not running (runtime_dir %s)\n", x->rundir) > 0);
	/* No pid file at all. */
	capture_begin(&err, 2);
	rc = control_cli_reload(x->cfg);
	e = capture_end(&err);
	assert_int_equal(rc, 1);
	assert_string_equal(e, want);
	free(e);
	/* A pid file nobody holds locked (naming a live pid: ours). */
	pidf = store_path(x->rundir, CONTROL_PID_NAME);
	fd = open(pidf, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_true(dprintf(fd, "%ld\n", (long)getpid()) > 0);
	close(fd);
	capture_begin(&err, 2);
	rc = control_cli_reload(x->cfg);
	e = capture_end(&err);
	assert_int_equal(rc, 1);
	assert_string_equal(e, want);
	free(e);
	/* Locked but empty: a daemon that is starting. Said at once, without waiting. */
	fd = open(pidf, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	capture_begin(&err, 2);
	rc = control_cli_reload(x->cfg);
	e = capture_end(&err);
	close(fd);          /* flock belongs to the open file: the CLI's own open conflicts */
	assert_int_equal(rc, 1);
	assert_non_null(strstr(e, "acmed is starting"));
	free(e);
	free(pidf);
	free(want);
}

/* A daemon that holds the lock but never answers its socket: the CLI gives up. */
static void test_cli_reload_socket_missing(void **state)
{
	struct fx *x = *state;
	struct capture err;
	char *e;
	int rc;

	start_server(x, 0, 1, 1);
	assert_int_equal(unlink(x->sock), 0);
	capture_begin(&err, 2);
	rc = control_cli_reload(x->cfg);
	e = capture_end(&err);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(e, "is running, but its control socket"));
	free(e);
	stop_server(x);
}

static void test_cli_status(void **state)
{
	struct fx *x = *state;
	struct capture out;
	json_t *j;
	char *o;
	int rc;

	start_server(x, 0, 0, 1);
	capture_begin(&out, 1);
	rc = control_cli_status(x->cfg, 1);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	j = json_loads(o, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "daemon")));
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(j, "certificates"), 0), "name")), "web");
	assert_non_null(strstr(o, "\n  \"daemon\": true"));    /* indented by 2 */
	json_decref(j);
	free(o);
	stop_server(x);

	/* No daemon: from disk, and the table says so. */
	capture_begin(&out, 1);
	rc = control_cli_status(x->cfg, 0);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	assert_int_equal(strncmp(o, "acmed is not running; from state_dir\nNAME ", 42), 0);
	assert_non_null(strstr(o, "\nweb   example.org       -  "));
	assert_non_null(strstr(o, "missing"));
	assert_non_null(strstr(o, "\nCA le: up\n"));
	free(o);
	capture_begin(&out, 1);
	rc = control_cli_status(x->cfg, 1);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	j = json_loads(o, 0, NULL);
	assert_true(json_is_false(json_object_get(j, "daemon")));
	assert_int_equal(json_array_size(json_object_get(j, "certificates")), 2);
	json_decref(j);
	free(o);
}

static void test_cli_renew(void **state)
{
	struct fx *x = *state;
	static const char *const web[] = { "web" }, *const both[] = { "web", "mail" };
	static const char *const typo[] = { "wbe" };
	struct capture out, err;
	char *o, *e;
	int rc;

	/* Usage errors need no daemon. */
	assert_int_equal(control_cli_renew(x->cfg, NULL, 0, 0, 0), 2);
	assert_int_equal(control_cli_renew(x->cfg, web, 1, 1, 0), 2);
	/* No daemon. */
	capture_begin(&err, 2);
	rc = control_cli_renew(x->cfg, web, 1, 0, 0);
	e = capture_end(&err);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(e, "acmed is not running"));
	free(e);

	start_server(x, 0, 0, 1);
	capture_begin(&out, 1);
	rc = control_cli_renew(x->cfg, both, 2, 0, 0);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "renewing: web\nnot due yet (use --force to renew anyway): mail\n");
	free(o);
	capture_begin(&out, 1);
	rc = control_cli_renew(x->cfg, NULL, 0, 1, 1);
	o = capture_end(&out);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "renewing: web mail\n");
	free(o);
	capture_begin(&err, 2);
	rc = control_cli_renew(x->cfg, typo, 1, 0, 0);
	e = capture_end(&err);
	assert_int_equal(rc, 2);
	assert_string_equal(e, "acmed: unknown certificate: wbe\n");
	free(e);
	stop_server(x);
}

/* control_renew_sched checks every name before touching the scheduler. */
static void test_renew_sched_unknown(void **state)
{
	struct fx *x = *state;
	struct event_base *base = event_base_new();
	struct acme_ca *ca = acme_ca_new(base, &x->cfg->cas[0], NULL, NULL);
	struct acme_client *client = acme_ca_client(ca);
	struct sched *s = sched_new(base, x->cfg, &client, NULL, 0, 0, NULL, NULL);
	static const char *const names[] = { "web", "nope" };
	json_t *renewing = json_array(), *not_due = json_array();
	char err[128] = "";

	assert_non_null(s);
	assert_int_equal(control_renew_sched(x->cfg, s, names, 2, 0, 0, renewing, not_due, err,
					     sizeof(err)), -ENOENT);
	assert_string_equal(err, "unknown certificate: nope");
	assert_int_equal(json_array_size(renewing), 0);
	assert_int_equal(json_array_size(not_due), 0);
	json_decref(renewing);
	json_decref(not_due);
	sched_free(s);
	acme_ca_free(ca);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode_and_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_uid_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_reload_no_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_reload_socket_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_renew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renew_sched_unknown, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
