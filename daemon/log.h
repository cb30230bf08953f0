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
	const char *message_id;         /* MESSAGE_ID= (one of LOG_ID_*), journald only */
};

/* MESSAGE_IDs of the events an admin filters on: `journalctl MESSAGE_ID=...`
 * (documented in acmed(8); never change one). */
#define LOG_ID_ISSUED        "254a81dfb26b4318bc6a213ac5f89bbe"  /* a first certificate issued */
#define LOG_ID_RENEWED       "8867ff6004894d45957dede2b441d530"  /* a certificate replaced */
#define LOG_ID_FAILED        "a5acf086d8f444438700e0d57cdeb689"  /* an order failed */
#define LOG_ID_DEPLOY_FAILED "3b46f163c19c457facc484d9d7dd1396"  /* units or hook after a new certificate */
#define LOG_ID_CA_DOWN       "484d47c5b8fa4791bf75fce62d702877"  /* a CA marked unavailable */
#define LOG_ID_CA_UP         "775166e10be04a78addac72747ef0540"  /* it is back */

/* verbosity: 0 = info (default), >0 debug, <0 warnings and errors only.
 * Also decides where entries go: journald when stderr is the journal stream
 * (see log_under_journald()), stderr otherwise. */
void log_init(int verbosity);
int log_enabled(enum log_level level);
/* 1 when stderr is connected to journald (JOURNAL_STREAM holds the
 * "device:inode" of fd 2, as systemd sets it for StandardError=journal). */
int log_under_journald(void);

/* One entry, from file:line in func (journald's CODE_FILE=, CODE_LINE=,
 * CODE_FUNC=: the call site, given by the macros below); f may be NULL. */
void log_at(const char *file, int line, const char *func, enum log_level level,
	    const struct log_fields *f, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void log_vat(const char *file, int line, const char *func, enum log_level level,
	     const struct log_fields *f, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

/* cert may be NULL; when set the line is prefixed with "[cert] ". */
#define log_msg(level, cert_, ...) \
	log_at(__FILE__, __LINE__, __func__, (level), &(const struct log_fields){ .cert = (cert_) }, \
	       __VA_ARGS__)
/* The same with every field. */
#define log_msgf(level, f, ...) log_at(__FILE__, __LINE__, __func__, (level), (f), __VA_ARGS__)
/* An event with its MESSAGE_ID (LOG_ID_*). */
#define log_event(level, cert_, id, ...) \
	log_at(__FILE__, __LINE__, __func__, (level), \
	       &(const struct log_fields){ .cert = (cert_), .message_id = (id) }, __VA_ARGS__)

#define log_error(cert, ...) log_msg(LOG_LVL_ERROR, (cert), __VA_ARGS__)
#define log_warn(cert, ...)  log_msg(LOG_LVL_WARN, (cert), __VA_ARGS__)
#define log_info(cert, ...)  log_msg(LOG_LVL_INFO, (cert), __VA_ARGS__)
#define log_debug(cert, ...) log_msg(LOG_LVL_DEBUG, (cert), __VA_ARGS__)

#endif
