/* fdguard.h - file descriptors as a budget: RLIMIT_NOFILE raised, a reserve kept free, accept() paused (not spun) when they run out. */
#ifndef ACMED_FDGUARD_H
#define ACMED_FDGUARD_H

#include <stddef.h>
#include <event2/event.h>

/* Descriptors no listener may take: state writes, the CA's connections, the
 * control socket, the journal, child processes. At least this many, or an
 * eighth of the limit when that is more. */
#define FDGUARD_RESERVE_MIN 64

/* Raise the soft RLIMIT_NOFILE to the hard limit (a no-op when they are equal;
 * a sandbox that forbids setrlimit keeps the limit it gave). Returns the soft
 * limit now in force, or -errno when even that cannot be read. */
long fdguard_raise_limit(void);
/* The soft RLIMIT_NOFILE now (RLIM_INFINITY as LONG_MAX). */
long fdguard_limit(void);
/* How many connections a listener may hold: min(want, limit - reserve),
 * at least 1. */
size_t fdguard_conn_cap(size_t want);

/* accept() that failed for want of descriptors (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) or anything else that is not the client's doing: the listener stops
 * accepting for a while (100 ms, doubling to 1 s while it persists) instead of
 * trying again at once, which would spin. An episode is logged twice: when it
 * starts (what failed, how many connections are open, when accepting resumes)
 * and when accepting has worked for FDGUARD_QUIET_MS again (how often it
 * paused). */
#define FDGUARD_PAUSE_MIN_MS 100
#define FDGUARD_PAUSE_MAX_MS 1000
#define FDGUARD_QUIET_MS     10000

struct fdguard_pause;
/* on = 0: stop accepting on every listener of the group; 1: accept again. */
typedef void (*fdguard_accept_fn)(void *arg, int on);

/* what names the listener in the log ("http-01"). NULL when out of memory. */
struct fdguard_pause *fdguard_pause_new(struct event_base *base, const char *what,
					fdguard_accept_fn set_accepting, void *arg);
void fdguard_pause_free(struct fdguard_pause *p);
/* accept() failed with err (an errno value) while nopen connections were open. */
void fdguard_pause_accept(struct fdguard_pause *p, int err, size_t nopen);
/* 1 while accepting is stopped. */
int fdguard_paused(const struct fdguard_pause *p);
/* Pauses since the listener was created (for tests and status). */
unsigned long fdguard_pause_count(const struct fdguard_pause *p);

#endif
