/* service.h - systemd integration (sd-daemon): notify, watchdog, socket activation. */
#ifndef ACMED_SERVICE_H
#define ACMED_SERVICE_H

#include <stddef.h>

/* Listening sockets passed by systemd (LISTEN_FDS), made non-blocking and
 * CLOEXEC; *fds malloc'd. Returns the count (0 when not activated). */
int service_listen_fds(int **fds);
void service_notify_ready(const char *status);
void service_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void service_notify_stopping(void);

#endif
