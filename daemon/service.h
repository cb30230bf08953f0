/* service.h - systemd integration (sd-daemon): notify, watchdog, socket activation; the journal is log.c's. */
#ifndef ACMED_SERVICE_H
#define ACMED_SERVICE_H

#include <stddef.h>

struct event_base;

/* Listening sockets passed by systemd (LISTEN_FDS), made non-blocking and
 * CLOEXEC, split by name: FileDescriptorName=tls-alpn into alpn, the others
 * (http-01) into http; both malloc'd (NULL when none). 0 or -errno (logged). */
int service_listen_fds(int **http, size_t *nhttp, int **alpn, size_t *nalpn);
void service_notify_ready(const char *status);
void service_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void service_notify_stopping(void);
/* "RELOADING=1" with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs> (what systemd
 * wants since v253; older versions ignore the extra field). Send
 * service_notify_ready() when the reload is over, whatever its outcome. */
void service_notify_reloading(void);

/* When the service manager asks for keep-alive pings (WatchdogSec=: the
 * WATCHDOG_USEC and WATCHDOG_PID variables name this process), arm a
 * persistent timer on base sending WATCHDOG=1 at half that interval.
 * Returns 1 when armed, 0 when no watchdog is asked for, <0 on error.
 * Calling it again re-arms; the timer belongs to this module. */
int service_watchdog_start(struct event_base *base);
/* Disarm and free the timer (before freeing base). Harmless when not armed. */
void service_watchdog_stop(void);

#endif
