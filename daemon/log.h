/* log.h - leveled logging: structured journald entries under systemd (log.c owns sd-journal), plain lines on stderr otherwise. */
#ifndef ACMED_LOG_H
#define ACMED_LOG_H

#include <stdarg.h>

/* The values are the syslog priorities journald stores in PRIORITY=. */
enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* Optional context of one log entry; any member may be NULL. Under journald
 * they become the fields ACMED_CERT=, CA= and ACME_ERROR= (the problem type,
 * e.g. "urn:ietf:params:acme:error:rateLimited"); on stderr the certificate
 * prefixes the line as "[cert] " and the others follow as
 * " (CA=name ACME_ERROR=type)". */
struct log_fields {
	const char *cert;
	const char *ca;
	const char *acme_error;
};

/* verbosity: 0 = info (default), >0 debug, <0 warnings and errors only.
 * Also decides where entries go: journald when stderr is the journal stream
 * (see log_under_journald()), stderr otherwise. */
void log_init(int verbosity);
int log_enabled(enum log_level level);
/* 1 when stderr is connected to journald (JOURNAL_STREAM holds the
 * "device:inode" of fd 2, as systemd sets it for StandardError=journal). */
int log_under_journald(void);

/* cert may be NULL; when set the line is prefixed with "[cert] ". */
void log_msg(enum log_level level, const char *cert, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with every field; f may be NULL. */
void log_msgf(enum log_level level, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsgf(enum log_level level, const struct log_fields *f, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_error(cert, ...) log_msg(LOG_LVL_ERROR, (cert), __VA_ARGS__)
#define log_warn(cert, ...)  log_msg(LOG_LVL_WARN, (cert), __VA_ARGS__)
#define log_info(cert, ...)  log_msg(LOG_LVL_INFO, (cert), __VA_ARGS__)
#define log_debug(cert, ...) log_msg(LOG_LVL_DEBUG, (cert), __VA_ARGS__)

#endif
