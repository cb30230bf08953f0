/* service.c - systemd glue (sd-daemon): sd_notify (ready, status, reloading, watchdog) and socket activation. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "service.h"

int service_listen_fds(int **http, size_t *nhttp, int **alpn, size_t *nalpn)
{
	char **names = NULL;
	int n, r = 0;

	*http = *alpn = NULL;
	*nhttp = *nalpn = 0;
	n = sd_listen_fds_with_names(1, &names);   /* also unsets LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES */
	if (n < 0) {
		log_error(NULL, "socket activation (LISTEN_FDS): %s", strerror(-n));
		return n;
	}
	if (n > 0) {
		*http = calloc((size_t)n, sizeof(int));
		*alpn = calloc((size_t)n, sizeof(int));
		if (!*http || !*alpn)
			r = -ENOMEM;
	}
	for (int i = 0; r == 0 && i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i, fl;

		r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
		if (r <= 0) {
			log_error(NULL, "socket activation: fd %d is not a listening stream socket%s%s",
				  fd, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
			r = r < 0 ? r : -EINVAL;
			break;
		}
		r = 0;
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    (fl = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			r = -errno;
			log_error(NULL, "socket activation: fd %d: %s", fd, strerror(errno));
			break;
		}
		/* FileDescriptorName=tls-alpn: the tls-alpn-01 responder's; the others http-01's */
		if (names && names[i] && strcmp(names[i], "tls-alpn") == 0)
			(*alpn)[(*nalpn)++] = fd;
		else
			(*http)[(*nhttp)++] = fd;
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	if (r < 0) {
		free(*http);
		free(*alpn);
		*http = *alpn = NULL;
		*nhttp = *nalpn = 0;
	}
	return r;
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

void service_notify_reloading(void)
{
	unsigned long long usec = (unsigned long long)clock_mono_us();

	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading configuration\nMONOTONIC_USEC=%llu", usec);
}

/* ---------- watchdog ---------- */

static struct event *watchdog_ev;

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

int service_watchdog_start(struct event_base *base)
{
	uint64_t usec = 0;
	struct timeval tv;
	int r;

	service_watchdog_stop();
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0) {
		log_error(NULL, "watchdog (WATCHDOG_USEC=%s): %s",
			  getenv("WATCHDOG_USEC") ? getenv("WATCHDOG_USEC") : "", strerror(-r));
		return r;
	}
	if (r == 0 || usec == 0)
		return 0;
	/* Ping at half the interval, as sd_watchdog_enabled(3) recommends. */
	usec /= 2;
	if (usec == 0)
		usec = 1;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
	if (!watchdog_ev || event_add(watchdog_ev, &tv) < 0) {
		log_error(NULL, "watchdog: cannot arm the keep-alive timer");
		service_watchdog_stop();
		return -ENOMEM;
	}
	log_debug(NULL, "watchdog: keep-alive every %llu ms", (unsigned long long)usec / 1000);
	return 1;
}

void service_watchdog_stop(void)
{
	if (watchdog_ev) {
		event_free(watchdog_ev);   /* also deletes it from its base */
		watchdog_ev = NULL;
	}
}
