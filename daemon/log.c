/* log.c - leveled log entries: structured to journald under systemd, one plain line on stderr otherwise. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "service.h"

#define LOG_MSG_MAX 2048
#define LOG_FIELD_MAX 256

static int log_max = LOG_LVL_INFO;
static int log_journal = -1;    /* -1: not decided yet */

void log_init(int verbosity)
{
	if (verbosity > 0)
		log_max = LOG_LVL_DEBUG;
	else if (verbosity < 0)
		log_max = LOG_LVL_WARN;
	else
		log_max = LOG_LVL_INFO;
	log_journal = service_under_journald();
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

/* One line per event: fold control characters (they may come from the network). */
static void log_fold(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* A folded, bounded copy of a field value, or NULL. */
static const char *log_field(const char *v, char *buf, size_t len)
{
	if (!v)
		return NULL;
	snprintf(buf, len, "%s", v);
	log_fold(buf);
	return buf;
}

static void log_stderr(enum log_level level, const char *cert, const char *ca,
		       const char *acme_error, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], extra[2 * LOG_FIELD_MAX + 32] = "";

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (ca || acme_error)
		snprintf(extra, sizeof(extra), " (%s%s%s%s%s)", ca ? "CA=" : "", ca ? ca : "",
			 ca && acme_error ? " " : "", acme_error ? "ACME_ERROR=" : "",
			 acme_error ? acme_error : "");
	fprintf(stderr, "%s.%03ld acmed %s: %s%s%s%s%s\n", stamp, ts.tv_nsec / 1000000,
		log_level_name(level), cert ? "[" : "", cert ? cert : "", cert ? "] " : "", msg,
		extra);
}

void log_vmsgf(enum log_level level, const struct log_fields *f, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], line[LOG_MSG_MAX + LOG_FIELD_MAX + 4];
	char cb[LOG_FIELD_MAX], cab[LOG_FIELD_MAX], eb[LOG_FIELD_MAX];
	const char *cert, *ca, *err;

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_fold(msg);
	cert = log_field(f ? f->cert : NULL, cb, sizeof(cb));
	ca = log_field(f ? f->ca : NULL, cab, sizeof(cab));
	err = log_field(f ? f->acme_error : NULL, eb, sizeof(eb));
	if (log_journal < 0)
		log_journal = service_under_journald();
	if (log_journal) {
		/* MESSAGE= reads like the stderr line, without what journald adds itself. */
		snprintf(line, sizeof(line), "%s%s%s%s", cert ? "[" : "", cert ? cert : "",
			 cert ? "] " : "", msg);
		if (service_journal_send((int)level, cert, ca, err, line) == 0)
			return;
		/* No journal socket after all: the line still goes somewhere. */
	}
	log_stderr(level, cert, ca, err, msg);
}

void log_msgf(enum log_level level, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsgf(level, f, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *cert, const char *fmt, ...)
{
	struct log_fields f = { .cert = cert };
	va_list ap;

	va_start(ap, fmt);
	log_vmsgf(level, &f, fmt, ap);
	va_end(ap);
}
