/* exec.c - the one child-process runner: spawn without a shell, log the output line by line, time out, reap on the loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "exec.h"
#include "log.h"
#include "timeparse.h"

extern char **environ;

#define EXEC_READ_TURN   65536          /* output read per turn of the loop */
#define EXEC_READ_FINAL  (1 << 20)      /* read after the exit, from descendants still writing */

struct exec {
	struct event_base *base;
	exec_done_fn cb;
	void *arg;
	char **argv, **env_add;
	char *cert, *label;
	long timeout_ms, grace_ms;
	int use_pidfd;
	pid_t pid;                      /* > 0 until reaped */
	int pidfd, out_fd;
	struct event *out_ev, *pid_ev, *sig_ev, *timeout_ev, *kill_ev, *done_ev;
	int timed_out, canceled, done, in_cb, free_requested;
	struct exec_result res;
	char *msg;
	/* output */
	char line[EXEC_LINE_MAX];
	size_t linelen, logged;
	int cut, over;
};

/* pidfd_open refused once (old kernel, seccomp): SIGCHLD for every later run. */
static int exec_pidfd_broken;

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup(const char *const *src)
{
	size_t n = 0;
	char **v;

	while (src && src[n])
		n++;
	if (!(v = calloc(n + 1, sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] = strdup(src[i]))) {
			strv_free(v);
			return NULL;
		}
	return v;
}

static void ev_free(struct event *ev)
{
	if (ev)
		event_free(ev);
}


/* ---- output ---- */

static void out_emit(struct exec *e)
{
	size_t len = e->linelen;

	while (len && e->line[len - 1] == '\r')
		len--;
	if (e->logged + len > EXEC_LOG_MAX) {
		if (!e->over)
			log_warn(e->cert, "%s: output truncated after %zu bytes", e->label, e->logged);
		e->over = 1;
		e->res.output_truncated = 1;
	} else {
		log_info(e->cert, "%s: %.*s%s", e->label, (int)len, e->line, e->cut ? " [...]" : "");
		e->logged += len + 1;
		if (e->cut)
			e->res.output_truncated = 1;
	}
	e->linelen = 0;
	e->cut = 0;
}

static void out_feed(struct exec *e, const char *buf, size_t n)
{
	e->res.output_bytes += n;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n')
			out_emit(e);
		else if (e->linelen < sizeof(e->line))
			e->line[e->linelen++] = buf[i];
		else
			e->cut = 1;
	}
}

/* Read what the pipe holds, at most EXEC_READ_TURN bytes a turn so that a child
 * writing without pause cannot keep the loop here. At EOF, or when final (the
 * child is gone: only descendants may still hold the pipe, and what they write
 * later is not read), flush the last line and close it. */
static void out_read(struct exec *e, int final)
{
	char buf[4096];
	size_t budget = final ? EXEC_READ_FINAL : EXEC_READ_TURN;
	ssize_t n;

	if (e->out_fd < 0)
		return;
	while (budget) {
		n = read(e->out_fd, buf, sizeof(buf));
		if (n > 0) {
			out_feed(e, buf, (size_t)n);
			budget -= (size_t)n < budget ? (size_t)n : budget;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !final)
			return;
		break;          /* EOF, an error, or final and drained */
	}
	if (!budget && !final)
		return;         /* the rest at the next turn of the loop */
	if (e->linelen || e->cut)
		out_emit(e);
	event_del(e->out_ev);
	close(e->out_fd);
	e->out_fd = -1;
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
	out_read(arg, 0);
}

/* ---- the end ---- */

static void exec_destroy(struct exec *e)
{
	ev_free(e->out_ev);
	ev_free(e->pid_ev);
	ev_free(e->sig_ev);
	ev_free(e->timeout_ev);
	ev_free(e->kill_ev);
	ev_free(e->done_ev);
	if (e->out_fd >= 0)
		close(e->out_fd);
	if (e->pidfd >= 0)
		close(e->pidfd);
	strv_free(e->argv);
	strv_free(e->env_add);
	free(e->cert);
	free(e->label);
	free(e->msg);
	free(e);
}

static void describe(struct exec *e)
{
	const char *p = e->argv[0], *l = e->label;
	struct exec_result *r = &e->res;
	char t[32];

	switch (r->end) {
	case EXEC_EXITED:
		e->msg = r->exit_code == 0 ? xasprintf("%s %s finished", l, p)
					   : xasprintf("%s %s exited with status %d", l, p, r->exit_code);
		break;
	case EXEC_SIGNALED:
		e->msg = xasprintf("%s %s killed by signal %d (%s)", l, p, r->signal,
				   strsignal(r->signal));
		break;
	case EXEC_TIMED_OUT:
		e->msg = xasprintf("%s %s timed out after %s and was killed", l, p,
				   timeparse_format_ms(e->timeout_ms, t, sizeof(t)));
		break;
	case EXEC_CANCELED:
		e->msg = xasprintf("%s %s was stopped", l, p);
		break;
	case EXEC_SPAWN_FAILED:
		e->msg = xasprintf("%s %s: cannot run: %s", l, p, strerror(-r->error));
		break;
	case EXEC_LOST:
		e->msg = xasprintf("%s %s: exit status lost (is SIGCHLD ignored?)", l, p);
		break;
	}
	r->message = e->msg ? e->msg : "out of memory";
}

/* Report once, from a loop callback; the callback may free e. */
static void finish(struct exec *e)
{
	if (e->done)
		return;
	e->done = 1;
	describe(e);
	e->in_cb = 1;
	if (e->cb)
		e->cb(e, &e->res, e->arg);
	e->in_cb = 0;
	if (e->free_requested)
		exec_destroy(e);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	finish(arg);
}

static void reaped(struct exec *e, int status, int lost)
{
	struct exec_result *r = &e->res;

	e->pid = -1;
	if (e->pid_ev)
		event_del(e->pid_ev);
	if (e->sig_ev)
		evsignal_del(e->sig_ev);
	evtimer_del(e->timeout_ev);
	evtimer_del(e->kill_ev);
	out_read(e, 1);
	if (lost) {
		r->end = EXEC_LOST;
		r->error = -ECHILD;
	} else {
		if (WIFEXITED(status))
			r->exit_code = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			r->signal = WTERMSIG(status);
		if (e->timed_out)
			r->end = EXEC_TIMED_OUT;
		else if (e->canceled)
			r->end = EXEC_CANCELED;
		else
			r->end = WIFEXITED(status) ? EXEC_EXITED : EXEC_SIGNALED;
		r->ok = r->end == EXEC_EXITED && r->exit_code == 0;
	}
	finish(e);
}

static void try_reap(struct exec *e)
{
	int status = 0;
	pid_t r;

	if (e->pid <= 0)
		return;
	do
		r = waitpid(e->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == e->pid)
		reaped(e, status, 0);
	else if (r < 0)
		reaped(e, 0, 1);
	else if (e->pid_ev)
		event_add(e->pid_ev, NULL);     /* spurious wake-up: wait on */
}

static void on_exit_event(evutil_socket_t fd, short what, void *arg)
{
	try_reap(arg);
}

/* ---- stopping ---- */

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct exec *e = arg;

	if (e->pid > 0)
		kill(-e->pid, SIGKILL);
}

static void stop(struct exec *e)
{
	struct timeval tv = clock_tv_ms(e->grace_ms);

	kill(-e->pid, SIGTERM);
	evtimer_add(e->kill_ev, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct exec *e = arg;
	char t[32];

	if (e->pid <= 0 || e->timed_out || e->canceled)
		return;
	e->timed_out = 1;
	log_warn(e->cert, "%s %s still running after %s, stopping it", e->label, e->argv[0],
		 timeparse_format_ms(e->timeout_ms, t, sizeof(t)));
	stop(e);
}

void exec_cancel(struct exec *e)
{
	if (!e || e->pid <= 0 || e->timed_out || e->canceled)
		return;
	e->canceled = 1;
	evtimer_del(e->timeout_ev);
	log_debug(e->cert, "stopping %s %s", e->label, e->argv[0]);
	stop(e);
}

void exec_free(struct exec *e)
{
	if (!e)
		return;
	if (e->in_cb) {
		e->free_requested = 1;
		return;
	}
	if (e->pid > 0) {
		/* the group first: descendants holding the pipe go too; then the
		 * child, dead or dying, is reaped (the kernel only finishes the kill) */
		kill(-e->pid, SIGKILL);
		while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	exec_destroy(e);
}

pid_t exec_pid(const struct exec *e)
{
	return e && e->pid > 0 ? e->pid : -1;
}

/* ---- starting ---- */

/* acmed's environment without the variables set in add and without systemd's
 * messages to acmed itself, plus add. The strings are borrowed. */
static char **build_env(char **add)
{
	static const char *const own[] = { "NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=",
		"LISTEN_FDNAMES=", "WATCHDOG_PID=", "WATCHDOG_USEC=" };
	size_t n = 0, na = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	while (add[na])
		na++;
	if (!(env = calloc(n + na + 1, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *v = environ[i];
		int drop = 0;

		for (size_t m = 0; m < sizeof(own) / sizeof(own[0]) && !drop; m++)
			drop = !strncmp(v, own[m], strlen(own[m]));
		for (size_t m = 0; m < na && !drop; m++) {
			size_t kl = strcspn(add[m], "=");

			drop = !strncmp(v, add[m], kl) && v[kl] == '=';
		}
		if (!drop)
			env[k++] = environ[i];
	}
	for (size_t m = 0; m < na; m++)
		env[k++] = add[m];
	return env;
}

/* PATH lookup done here, so "not found" is an error of ours on every libc
 * (and under valgrind), not an exit status 127 of the child. */
static int resolve(const char *prog, char **out)
{
	const char *path = getenv("PATH"), *p, *end;
	int err = -ENOENT;
	struct stat st;

	if (!*prog)
		return -ENOENT;
	if (strchr(prog, '/')) {
		if (access(prog, X_OK) < 0)
			return -errno;
		if (stat(prog, &st) == 0 && S_ISDIR(st.st_mode))
			return -EISDIR;
		return (*out = strdup(prog)) ? 0 : -ENOMEM;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; p; p = *end ? end + 1 : NULL) {
		char *cand;

		end = strchrnul(p, ':');
		if (!(cand = xasprintf("%.*s/%s", (int)(end - p), end == p ? "." : p, prog)))
			return -ENOMEM;
		if (access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			*out = cand;
			return 0;
		}
		if (errno == EACCES)
			err = -EACCES;
		free(cand);
	}
	return err;
}

static int spawn(struct exec *e)
{
	static const int dfl[] = { SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD,
		SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char **env, *prog = NULL;
	int p[2], r;

	if ((r = resolve(e->argv[0], &prog)) < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		free(prog);
		return r;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (!(env = build_env(e->env_add))) {
		free(prog);
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	sigemptyset(&none);
	sigemptyset(&defaults);
	for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		sigaddset(&defaults, dfl[i]);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setpgroup(&attr, 0);
	r = -posix_spawn(&e->pid, prog, &fa, &attr, e->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(env);
	free(prog);
	close(p[1]);
	if (r < 0) {
		e->pid = -1;
		close(p[0]);
		return r;
	}
	e->out_fd = p[0];
	return 0;
}

/* Watch for the child's exit: its pidfd, else SIGCHLD. */
static int watch_exit(struct exec *e)
{
	if (e->use_pidfd && !exec_pidfd_broken) {
		e->pidfd = (int)syscall(SYS_pidfd_open, e->pid, 0);
		if (e->pidfd < 0 && (errno == ENOSYS || errno == EPERM)) {
			log_debug(NULL, "pidfd_open: %s; reaping children on SIGCHLD", strerror(errno));
			exec_pidfd_broken = 1;
		}
		if (e->pidfd >= 0) {
			e->pid_ev = event_new(e->base, e->pidfd, EV_READ, on_exit_event, e);
			if (e->pid_ev && event_add(e->pid_ev, NULL) == 0)
				return 0;
			ev_free(e->pid_ev);
			e->pid_ev = NULL;
			close(e->pidfd);
			e->pidfd = -1;
		}
	}
	e->sig_ev = evsignal_new(e->base, SIGCHLD, on_exit_event, e);
	if (!e->sig_ev || evsignal_add(e->sig_ev, NULL) < 0)
		return -ENOMEM;
	/* it may have exited before SIGCHLD was watched: look once now */
	event_active(e->sig_ev, EV_SIGNAL, 1);
	return 0;
}

int exec_start(struct event_base *base, const struct exec_opts *o, exec_done_fn cb, void *arg,
	       struct exec **out)
{
	struct exec *e;
	int r;

	*out = NULL;
	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->base = base;
	e->cb = cb;
	e->arg = arg;
	e->pid = -1;
	e->pidfd = e->out_fd = -1;
	e->timeout_ms = o->timeout_ms;
	e->grace_ms = o->kill_grace_ms > 0 ? o->kill_grace_ms : EXEC_KILL_GRACE_MS;
	e->use_pidfd = !o->reap_on_sigchld;
	e->res.exit_code = -1;
	e->res.pid = -1;
	e->argv = strv_dup(o->argv);
	e->env_add = strv_dup(o->env);
	e->label = strdup(o->label ? o->label : "exec");
	e->cert = o->log_cert ? strdup(o->log_cert) : NULL;
	e->out_ev = event_new(base, -1, 0, NULL, NULL);
	e->timeout_ev = evtimer_new(base, on_timeout, e);
	e->kill_ev = evtimer_new(base, on_kill, e);
	e->done_ev = event_new(base, -1, 0, on_done, e);
	if (!e->argv || !e->env_add || !e->label || (o->log_cert && !e->cert) || !e->out_ev ||
	    !e->timeout_ev || !e->kill_ev || !e->done_ev) {
		exec_destroy(e);
		return -ENOMEM;
	}
	r = spawn(e);
	if (r < 0) {
		e->res.end = EXEC_SPAWN_FAILED;
		e->res.error = r;
		event_active(e->done_ev, EV_TIMEOUT, 1);
		*out = e;
		return 0;
	}
	e->res.pid = e->pid;
	log_debug(e->cert, "%s %s started (pid %d)", e->label, e->argv[0], (int)e->pid);
	event_assign(e->out_ev, base, e->out_fd, EV_READ | EV_PERSIST, on_output, e);
	event_add(e->out_ev, NULL);
	if (e->timeout_ms > 0) {
		struct timeval tv = clock_tv_ms(e->timeout_ms);

		evtimer_add(e->timeout_ev, &tv);
	}
	if (watch_exit(e) < 0) {
		exec_free(e);           /* kills and reaps it */
		return -ENOMEM;
	}
	*out = e;
	return 0;
}
