/* log.c - leveled log entries: structured to journald (the one sd-journal user) under systemd, one plain line on stderr otherwise. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* CODE_FILE= and friends are the caller's (log_at), not this file's. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"

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
	log_journal = log_under_journald();
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
	char stamp[32], zone[8], extra[2 * LOG_FIELD_MAX + 32] = "";

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);        /* the local time's offset: +0100 */
	if (ca || acme_error)
		snprintf(extra, sizeof(extra), " (%s%s%s%s%s)", ca ? "CA=" : "", ca ? ca : "",
			 ca && acme_error ? " " : "", acme_error ? "ACME_ERROR=" : "",
			 acme_error ? acme_error : "");
	fprintf(stderr, "%s.%03ld%s acmed %s: %s%s%s%s%s\n", stamp, ts.tv_nsec / 1000000, zone,
		log_level_name(level), cert ? "[" : "", cert ? cert : "", cert ? "] " : "", msg,
		extra);
}

/* ---------- journald ---------- */

int log_under_journald(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (!e || !*e)
		return 0;
	if (sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The source file as a path from the project's top ("daemon/acme.c"): the
 * compiler's __FILE__ is relative to the build directory ("../daemon/..."). */
static const char *log_code_file(const char *file)
{
	while (file && strncmp(file, "../", 3) == 0)
		file += 3;
	return file;
}

/* One structured entry: MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=acmed,
 * CODE_FILE=, CODE_LINE=, CODE_FUNC= and, when not NULL, ACMED_CERT=, CA=,
 * ACME_ERROR=, MESSAGE_ID=. 0 or a negative errno (no journal socket...);
 * logs nothing itself. */
static int log_journal_send(int priority, const char *file, int line, const char *func,
			    const char *cert, const char *ca, const char *acme_error,
			    const char *message_id, const char *message)
{
	enum { NF = 10 };
	static const char *const key[NF] = { "MESSAGE=", "PRIORITY=", "SYSLOG_IDENTIFIER=",
		"CODE_FILE=", "CODE_LINE=", "CODE_FUNC=", "ACMED_CERT=", "CA=", "ACME_ERROR=",
		"MESSAGE_ID=" };
	char prio[4], lineno[16];
	const char *val[NF];
	struct iovec iov[NF];
	char *buf[NF] = { NULL };
	int n = 0, r = 0;

	if (priority < 0 || priority > 7)
		priority = 6;
	snprintf(prio, sizeof(prio), "%d", priority);
	snprintf(lineno, sizeof(lineno), "%d", line);
	val[0] = message ? message : "";
	val[1] = prio;
	val[2] = "acmed";
	val[3] = log_code_file(file);
	val[4] = file ? lineno : NULL;
	val[5] = func;
	val[6] = cert;
	val[7] = ca;
	val[8] = acme_error;
	val[9] = message_id;
	for (int i = 0; i < NF; i++) {
		size_t kl, vl;

		if (!val[i])
			continue;
		kl = strlen(key[i]);
		vl = strlen(val[i]);
		buf[n] = malloc(kl + vl + 1);
		if (!buf[n]) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(buf[n], key[i], kl);
		memcpy(buf[n] + kl, val[i], vl + 1);
		iov[n].iov_base = buf[n];
		iov[n].iov_len = kl + vl;
		n++;
	}
	r = sd_journal_sendv(iov, n);
out:
	for (int i = 0; i < NF; i++)
		free(buf[i]);
	return r < 0 ? r : 0;
}

/* ---------- entries ---------- */

void log_vat(const char *file, int line, const char *func, enum log_level level,
	     const struct log_fields *f, const char *fmt, va_list ap)
{
	char msg[LOG_MSG_MAX], text[LOG_MSG_MAX + LOG_FIELD_MAX + 4];
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
		log_journal = log_under_journald();
	if (log_journal) {
		/* MESSAGE= reads like the stderr line, without what journald adds itself. */
		snprintf(text, sizeof(text), "%s%s%s%s", cert ? "[" : "", cert ? cert : "",
			 cert ? "] " : "", msg);
		if (log_journal_send((int)level, file, line, func, cert, ca, err,
				     f ? f->message_id : NULL, text) == 0)
			return;
		/* No journal socket after all: the line still goes somewhere. */
	}
	log_stderr(level, cert, ca, err, msg);
}

void log_at(const char *file, int line, const char *func, enum log_level level,
	    const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vat(file, line, func, level, f, fmt, ap);
	va_end(ap);
}
