/* log.c - leveled log lines on stderr, one line per event, with the certificate name when known. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_max = LOG_LVL_INFO;

void log_init(int verbosity)
{
	if (verbosity > 0)
		log_max = LOG_LVL_DEBUG;
	else if (verbosity < 0)
		log_max = LOG_LVL_WARN;
	else
		log_max = LOG_LVL_INFO;
}

int log_enabled(enum log_level level)
{
	return (int)level <= log_max;
}

static const char *log_level_name(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERROR: return "error";
	case LOG_LVL_WARN: return "warning";
	case LOG_LVL_INFO: return "info";
	case LOG_LVL_DEBUG: return "debug";
	}
	return "?";
}

void log_msg(enum log_level level, const char *cert, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line per event: fold control characters coming from the network. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (cert)
		fprintf(stderr, "%s.%03ld acmed %s: [%s] %s\n", stamp, ts.tv_nsec / 1000000,
			log_level_name(level), cert, msg);
	else
		fprintf(stderr, "%s.%03ld acmed %s: %s\n", stamp, ts.tv_nsec / 1000000,
			log_level_name(level), msg);
}
