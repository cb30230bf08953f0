/* log.h - leveled logging to stderr (journald fields come with the service issue). */
#ifndef ACMED_LOG_H
#define ACMED_LOG_H

enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* verbosity: 0 = info (default), >0 debug, <0 warnings and errors only. */
void log_init(int verbosity);
int log_enabled(enum log_level level);

/* cert may be NULL; when set the line is prefixed with "[cert] ". */
void log_msg(enum log_level level, const char *cert, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(cert, ...) log_msg(LOG_LVL_ERROR, (cert), __VA_ARGS__)
#define log_warn(cert, ...)  log_msg(LOG_LVL_WARN, (cert), __VA_ARGS__)
#define log_info(cert, ...)  log_msg(LOG_LVL_INFO, (cert), __VA_ARGS__)
#define log_debug(cert, ...) log_msg(LOG_LVL_DEBUG, (cert), __VA_ARGS__)

#endif
