/* service.c - systemd integration through sd-daemon: readiness/status notifications and socket activation. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "service.h"

int service_listen_fds(int **fds)
{
	int n, *v;

	*fds = NULL;
	n = sd_listen_fds(1);   /* also unsets LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES */
	if (n < 0) {
		log_error(NULL, "socket activation (LISTEN_FDS): %s", strerror(-n));
		return n;
	}
	if (n == 0)
		return 0;
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i, fl, r;

		r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
		if (r <= 0) {
			log_error(NULL, "socket activation: fd %d is not a listening stream socket%s%s",
				  fd, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
			free(v);
			return r < 0 ? r : -EINVAL;
		}
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    (fl = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			r = -errno;
			log_error(NULL, "socket activation: fd %d: %s", fd, strerror(errno));
			free(v);
			return r;
		}
		v[i] = fd;
	}
	*fds = v;
	return n;
}

/* One status line: a newline would start another notification field. */
static void status_clean(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

void service_notify_ready(const char *status)
{
	char buf[512];

	if (!status) {
		sd_notify(0, "READY=1");
		return;
	}
	snprintf(buf, sizeof(buf), "%s", status);
	status_clean(buf);
	sd_notifyf(0, "READY=1\nSTATUS=%s", buf);
}

void service_notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	status_clean(buf);
	sd_notifyf(0, "STATUS=%s", buf);
}

void service_notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
