/* deploy_exec.c - the deployer's exec hooks: spawn, output logging, pidfd/SIGCHLD reaping, timeouts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "deploy_internal.h"
#include "log.h"

extern char **environ;

#define DEPLOY_KILL_GRACE_MS  5000L   /* SIGTERM -> SIGKILL for a hook that timed out */
#define DEPLOY_FREE_GRACE_MS  300     /* deploy_free: SIGTERM -> SIGKILL */
#define DEPLOY_OUTPUT_MAX     65536   /* hook output logged per run */

static void hook_emit(struct deploy_job *j)
{
	size_t len = j->linelen;

	while (len && j->line[len - 1] == '\r')
		len--;
	if (j->logged + len > DEPLOY_OUTPUT_MAX) {
		if (!j->truncated)
			log_warn(j->name, "hook: output truncated after %zu bytes", j->logged);
		j->truncated = 1;
	} else {
		log_info(j->name, "hook: %.*s%s", (int)len, j->line, j->cut ? " [...]" : "");
		j->logged += len + 1;
	}
	j->linelen = 0;
	j->cut = 0;
}

static void hook_feed(struct deploy_job *j, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n')
			hook_emit(j);
		else if (j->linelen < sizeof(j->line))
			j->line[j->linelen++] = buf[i];
		else
			j->cut = 1;
	}
}

/* Read what the pipe holds; at EOF (or when final) flush and close it. */
static void hook_read(struct deploy_job *j, int final)
{
	char buf[4096];
	ssize_t n;

	while (j->out_fd >= 0) {
		n = read(j->out_fd, buf, sizeof(buf));
		if (n > 0) {
			hook_feed(j, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !final)
			return;
		/* EOF, error, or the hook is gone and only descendants hold the pipe */
		if (j->linelen || j->cut)
			hook_emit(j);
		event_del(j->out_ev);
		close(j->out_fd);
		j->out_fd = -1;
	}
}

static void on_hook_output(evutil_socket_t fd, short what, void *arg)
{
	hook_read(arg, 0);
}

/* SIGCHLD is watched only while a hook without a pidfd runs. */
static void sigchld_update(struct deploy *d)
{
	struct deploy_job *k;

	TAILQ_FOREACH(k, &d->active, link)
		if (k->pid > 0 && k->pidfd < 0)
			return;
	evsignal_del(d->sigchld_ev);
}

static void hook_reaped(struct deploy_job *j, int status, int lost)
{
	struct deploy *d = j->d;
	const char *prog = j->argv[0];
	char *msg = NULL, t[32];

	j->pid = -1;
	hook_read(j, 1);
	evtimer_del(j->timeout_ev);
	evtimer_del(j->kill_ev);
	if (lost)
		msg = deploy_xasprintf("hook %s: exit status lost (is SIGCHLD ignored?)", prog);
	else if (j->timed_out)
		msg = deploy_xasprintf("hook %s timed out after %s and was killed", prog,
				deploy_dur(d->exec_timeout_ms, t, sizeof(t)));
	else if (WIFSIGNALED(status))
		msg = deploy_xasprintf("hook %s killed by signal %d (%s)", prog, WTERMSIG(status),
				strsignal(WTERMSIG(status)));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		msg = deploy_xasprintf("hook %s exited with status %d", prog, WEXITSTATUS(status));
	if (lost || j->timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_error(j->name, "%s", msg ? msg : "hook failed");
		deploy_job_fail(j, msg ? msg : "hook failed");
		free(msg);
	} else {
		log_info(j->name, "hook %s finished", prog);
	}
	deploy_job_finish(j);
	sigchld_update(d);
}

static void hook_try_reap(struct deploy_job *j)
{
	int status = 0;
	pid_t r;

	do
		r = waitpid(j->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == j->pid)
		hook_reaped(j, status, 0);
	else if (r < 0)
		hook_reaped(j, 0, 1);
	else if (j->pidfd >= 0)
		event_add(j->pid_ev, NULL);
}

static void on_pidfd(evutil_socket_t fd, short what, void *arg)
{
	hook_try_reap(arg);
}

void deploy_on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	struct deploy *d = arg;
	struct deploy_job *j, *next;

	for (j = TAILQ_FIRST(&d->active); j; j = next) {
		next = TAILQ_NEXT(j, link);
		if (j->state == JOB_HOOK && j->pid > 0 && j->pidfd < 0)
			hook_try_reap(j);
	}
}

static void on_hook_kill(evutil_socket_t fd, short what, void *arg)
{
	struct deploy_job *j = arg;

	if (j->pid > 0)
		kill(-j->pid, SIGKILL);
}

static void on_hook_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct deploy_job *j = arg;
	struct timeval tv = clock_tv_ms(DEPLOY_KILL_GRACE_MS);
	char t[32];

	if (j->pid <= 0)
		return;
	j->timed_out = 1;
	log_warn(j->name, "hook %s still running after %s, stopping it", j->argv[0],
		 deploy_dur(j->d->exec_timeout_ms, t, sizeof(t)));
	kill(-j->pid, SIGTERM);
	evtimer_add(j->kill_ev, &tv);
}

/* acmed's environment without the variables we set and without systemd's
 * messages to acmed itself (notify socket, watchdog, passed sockets), plus ours. */
static char **hook_env(const struct deploy_job *j, char **own)
{
	static const char *const names[] = { "ACMED_CERT_NAME=", "ACMED_DOMAINS=",
		"ACMED_OUTPUT_DIR=", "RENEWED_LINEAGE=", "RENEWED_DOMAINS=", "NOTIFY_SOCKET=",
		"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "WATCHDOG_PID=", "WATCHDOG_USEC=" };
	const char *vals[] = { j->name, j->domains, j->output_dir, j->output_dir, j->domains };
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	if (!(env = calloc(n + 6, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int drop = 0;

		for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++)
			drop |= !strncmp(environ[i], names[m], strlen(names[m]));
		if (!drop)
			env[k++] = environ[i];
	}
	for (size_t m = 0; m < 5; m++) {
		if (!(own[m] = deploy_xasprintf("%s%s", names[m], vals[m]))) {
			free(env);
			return NULL;
		}
		env[k++] = own[m];
	}
	return env;
}

/* PATH lookup done here, so "not found" is an error of ours on every libc
 * (and under valgrind), not an exit status 127 of the child. */
static int hook_resolve(const char *prog, char **out)
{
	const char *path = getenv("PATH"), *p, *end;
	int err = -ENOENT;
	struct stat st;

	if (strchr(prog, '/')) {
		if (access(prog, X_OK) < 0)
			return -errno;
		return (*out = strdup(prog)) ? 0 : -ENOMEM;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; p; p = *end ? end + 1 : NULL) {
		char *cand;

		end = strchrnul(p, ':');
		if (!(cand = deploy_xasprintf("%.*s/%s", (int)(end - p), end == p ? "." : p, prog)))
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

static int hook_spawn(struct deploy_job *j)
{
	static const int dfl[] = { SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD,
		SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ };
	struct deploy *d = j->d;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char *own[5] = { 0 }, **env, *prog = NULL;
	int p[2], r;

	if ((r = hook_resolve(j->argv[0], &prog)) < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(prog);
		return -errno;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (!(env = hook_env(j, own))) {
		r = -ENOMEM;
		goto out_pipe;
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
	if (!d->use_pidfd && evsignal_add(d->sigchld_ev, NULL) < 0) {
		r = -EIO;
		goto out;
	}
	r = -posix_spawn(&j->pid, prog, &fa, &attr, j->argv, env);
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(env);
	for (size_t m = 0; m < 5; m++)
		free(own[m]);
out_pipe:
	free(prog);
	close(p[1]);
	if (r < 0) {
		j->pid = -1;
		close(p[0]);
		sigchld_update(d);
		return r;
	}
	j->out_fd = p[0];
	return 0;
}

void deploy_job_start_hook(struct deploy_job *j)
{
	struct deploy *d = j->d;
	struct timeval tv = clock_tv_ms(d->exec_timeout_ms);
	int r;

	j->state = JOB_HOOK;
	if (j->argc == 0) {
		deploy_job_finish(j);
		return;
	}
	log_debug(j->name, "running hook %s", j->argv[0]);
	j->out_ev = event_new(d->base, -1, 0, NULL, NULL);
	j->timeout_ev = evtimer_new(d->base, on_hook_timeout, j);
	j->kill_ev = evtimer_new(d->base, on_hook_kill, j);
	r = (j->out_ev && j->timeout_ev && j->kill_ev) ? hook_spawn(j) : -ENOMEM;
	if (r < 0) {
		char *msg = deploy_xasprintf("hook %s: cannot run: %s", j->argv[0], strerror(-r));

		log_error(j->name, "%s", msg ? msg : "hook: cannot run");
		deploy_job_fail(j, msg ? msg : "hook: cannot run");
		free(msg);
		deploy_job_finish(j);
		return;
	}
	event_assign(j->out_ev, d->base, j->out_fd, EV_READ | EV_PERSIST, on_hook_output, j);
	event_add(j->out_ev, NULL);
	evtimer_add(j->timeout_ev, &tv);
	if (d->use_pidfd) {
		j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
		if (j->pidfd < 0 && (errno == ENOSYS || errno == EPERM)) {
			/* old kernel or a seccomp filter: SIGCHLD from now on */
			log_debug(NULL, "pidfd_open: %s; reaping hooks on SIGCHLD", strerror(errno));
			d->use_pidfd = 0;
		}
		if (j->pidfd >= 0 && !(j->pid_ev = event_new(d->base, j->pidfd, EV_READ, on_pidfd, j))) {
			close(j->pidfd);
			j->pidfd = -1;
		}
	}
	if (j->pid_ev) {
		event_add(j->pid_ev, NULL);
	} else {
		evsignal_add(d->sigchld_ev, NULL);
		/* it may have exited before SIGCHLD was watched: look once now */
		event_active(d->sigchld_ev, EV_SIGNAL, 1);
	}
}

void deploy_hooks_kill(struct deploy *d)
{
	struct deploy_job *j;
	int left = 0;

	TAILQ_FOREACH(j, &d->active, link)
		if (j->pid > 0 && kill(-j->pid, SIGTERM) == 0)
			left++;
	/* teardown only, outside the loop: a short grace period, then SIGKILL */
	for (int waited = 0; left && waited < DEPLOY_FREE_GRACE_MS; waited += 10) {
		poll(NULL, 0, 10);
		left = 0;
		TAILQ_FOREACH(j, &d->active, link)
			if (j->pid > 0 && waitpid(j->pid, NULL, WNOHANG) == 0)
				left++;
			else
				j->pid = -1;
	}
	TAILQ_FOREACH(j, &d->active, link) {
		if (j->pid <= 0)
			continue;
		kill(-j->pid, SIGKILL);
		while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
			;
		j->pid = -1;
	}
}
