/* exec.h - the one child-process runner: argv without a shell, an environment, a timeout, output to the log, reaped on the loop. */
#ifndef ACMED_EXEC_H
#define ACMED_EXEC_H

#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#define EXEC_LINE_MAX        1024     /* an output line longer than this is cut (" [...]") */
#define EXEC_LOG_MAX         65536    /* output bytes logged per run; the rest is read and dropped */
#define EXEC_KILL_GRACE_MS   5000L    /* default SIGTERM -> SIGKILL delay */

struct exec;

/* How a run ended. */
enum exec_end {
	EXEC_EXITED,            /* it exited by itself: exit_code */
	EXEC_SIGNALED,          /* a signal that was not ours ended it: signal */
	EXEC_TIMED_OUT,         /* it outlived timeout_ms: SIGTERM, SIGKILL after the grace period */
	EXEC_CANCELED,          /* exec_cancel() stopped it the same way */
	EXEC_SPAWN_FAILED,      /* it never ran: error (the program is missing, not executable...) */
	EXEC_LOST,              /* someone else took its exit status (SIGCHLD set to SIG_IGN?) */
};

struct exec_result {
	enum exec_end end;
	int ok;                 /* EXEC_EXITED with exit code 0 */
	int exit_code;          /* when it exited (also after a SIGTERM it caught), else -1 */
	int signal;             /* the signal that ended it, else 0 */
	int error;              /* EXEC_SPAWN_FAILED, EXEC_LOST: a negative errno, else 0 */
	pid_t pid;              /* -1 when it never ran */
	size_t output_bytes;    /* read from its stdout and stderr */
	int output_truncated;   /* some of it did not reach the log (a long line, over EXEC_LOG_MAX) */
	/* One line naming the program, for the caller to log or keep:
	 * "hook /usr/local/bin/x exited with status 3", "... killed by signal 9 (Killed)",
	 * "... timed out after 60 s and was killed", "... was stopped",
	 * "hook x: cannot run: No such file or directory", "hook /usr/local/bin/x finished".
	 * Valid during the callback only. */
	const char *message;
};

struct exec_opts {
	const char *const *argv;    /* NULL-terminated; argv[0] is a path or a name looked up in PATH */
	/* "NAME=value" strings (NULL-terminated, may be NULL) set for the child on top of
	 * acmed's environment. The variables systemd meant for acmed itself (NOTIFY_SOCKET,
	 * LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, WATCHDOG_PID, WATCHDOG_USEC) never pass. */
	const char *const *env;
	const char *log_cert;       /* certificate of the log entries (ACMED_CERT=), may be NULL */
	const char *label;          /* names the child in the log, e.g. "hook"; NULL: "exec" */
	long timeout_ms;            /* <= 0: none */
	long kill_grace_ms;         /* SIGTERM -> SIGKILL after a timeout or exec_cancel(); <= 0: 5 s */
	int reap_on_sigchld;        /* reap through SIGCHLD even where pidfds work (tests) */
};

/* Called once per run, from its own event on the loop (never from inside exec_start()
 * or exec_cancel()), after every output line was logged. r is valid during the call.
 * The callback may call exec_free(e). */
typedef void (*exec_done_fn)(struct exec *e, const struct exec_result *r, void *arg);

/*
 * Run o->argv with posix_spawn (no shell): stdin /dev/null, stdout and stderr into
 * one pipe read on base and logged line by line at info level as
 * "[log_cert] label: line", fds above 2 closed, default signal dispositions, an
 * empty signal mask, and its own process group (so stopping it reaches its
 * children too). Copies what it needs from o.
 *
 * A timeout (a timer on base, so it follows clock_gettime()) logs a warning and
 * sends SIGTERM to the group, then SIGKILL kill_grace_ms later.
 *
 * The child is reaped on the loop through a pidfd (Linux >= 5.3), else through an
 * evsignal on SIGCHLD; either way only with waitpid(pid, ...) on its own pid, so
 * nothing else in the process may reap with waitpid(-1, ...) nor set SIGCHLD to
 * SIG_IGN (the run would end as EXEC_LOST).
 *
 * 0 and *out set, or -ENOMEM / -EINVAL (nothing started, no callback). A program
 * that cannot be started is reported through the callback (EXEC_SPAWN_FAILED).
 */
int exec_start(struct event_base *base, const struct exec_opts *o, exec_done_fn cb, void *arg,
	       struct exec **out);

/* Stop it as a timeout would (SIGTERM to the group, SIGKILL after the grace
 * period); the callback follows with EXEC_CANCELED. Harmless when it is over. */
void exec_cancel(struct exec *e);

/* At any time, also from the callback: a child still running gets SIGKILL (its
 * whole process group) and is reaped here, at once; no callback after this. */
void exec_free(struct exec *e);

/* The child's pid while it has not been reaped, else -1. */
pid_t exec_pid(const struct exec *e);

#endif
