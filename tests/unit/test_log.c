/* test_log.c - unit tests for log.c: stderr lines, levels, folding, journald detection and entries (log.c owns sd-journal). */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* ---------- fd 2 captured in a temporary file ---------- */

struct capture {
	char path[64];
	int saved;              /* the real stderr */
	int fd;
};

static void capture_start(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/acmed-test-log-XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* What was written since the start (malloc'd), and stderr restored. */
static char *capture_end(struct capture *c)
{
	struct stat st;
	char *buf;
	ssize_t n;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	assert_int_equal(fstat(c->fd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	n = pread(c->fd, buf, (size_t)st.st_size, 0);
	assert_int_equal(n, st.st_size);
	close(c->fd);
	unlink(c->path);
	return buf;
}

static void set_journal_stream_to(int fd, long ino_delta)
{
	struct stat st;
	char v[64];

	assert_int_equal(fstat(fd, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
	setenv("JOURNAL_STREAM", v, 1);
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	int r;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
	r = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (r != 0)
		fail_msg("\"%s\" does not match /%s/", text, pattern);
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{4} acmed "

static int setup(void **state)
{
	unsetenv("JOURNAL_STREAM");
	log_init(0);
	return 0;
}

/* ---------- stderr ---------- */

static void test_stderr_format(void **state)
{
	struct capture c;
	char *out;

	capture_start(&c);
	log_info(NULL, "hello %d", 5);
	log_error("web", "order %s failed", "https://ca.example/order/1");
	log_warn("mail", "slow");
	{
		struct log_fields f = { .cert = "web", .ca = "letsencrypt",
					.acme_error = "urn:ietf:params:acme:error:rateLimited" };
		struct log_fields only_ca = { .ca = "pebble" };

		log_msgf(LOG_LVL_WARN, &f, "rate limited, retry in %ds", 3600);
		log_msgf(LOG_LVL_INFO, &only_ca, "directory fetched");
		log_msgf(LOG_LVL_INFO, NULL, "no fields");
	}
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 6);
	assert_matches(out, STAMP "info: hello 5$");
	assert_matches(out, STAMP "error: \\[web\\] order https://ca\\.example/order/1 failed$");
	assert_matches(out, STAMP "warning: \\[mail\\] slow$");
	assert_matches(out, STAMP "warning: \\[web\\] rate limited, retry in 3600s "
		       "\\(CA=letsencrypt ACME_ERROR=urn:ietf:params:acme:error:rateLimited\\)$");
	assert_matches(out, STAMP "info: directory fetched \\(CA=pebble\\)$");
	assert_matches(out, STAMP "info: no fields$");
	free(out);

	/* The stamp says its zone (local time, as the admin reads it). */
	setenv("TZ", "UTC", 1);
	tzset();
	capture_start(&c);
	log_info(NULL, "in utc");
	setenv("TZ", "EST5", 1);
	tzset();
	log_info(NULL, "in est");
	out = capture_end(&c);
	assert_matches(out, "^[0-9 :-]{19}\\.[0-9]{3}\\+0000 acmed info: in utc$");
	assert_matches(out, "^[0-9 :-]{19}\\.[0-9]{3}-0500 acmed info: in est$");
	free(out);
	unsetenv("TZ");
	tzset();
}

static void test_levels(void **state)
{
	struct capture c;
	char *out;

	log_init(-1);           /* -q */
	assert_true(log_enabled(LOG_LVL_ERROR));
	assert_true(log_enabled(LOG_LVL_WARN));
	assert_false(log_enabled(LOG_LVL_INFO));
	assert_false(log_enabled(LOG_LVL_DEBUG));
	capture_start(&c);
	log_debug(NULL, "d1");
	log_info(NULL, "i1");
	log_warn(NULL, "w1");
	log_error(NULL, "e1");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 2);
	assert_null(strstr(out, "d1"));
	assert_null(strstr(out, "i1"));
	assert_matches(out, STAMP "warning: w1$");
	assert_matches(out, STAMP "error: e1$");
	free(out);

	log_init(0);            /* default */
	assert_true(log_enabled(LOG_LVL_INFO));
	assert_false(log_enabled(LOG_LVL_DEBUG));
	capture_start(&c);
	log_debug(NULL, "d2");
	log_info(NULL, "i2");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	assert_matches(out, STAMP "info: i2$");
	free(out);

	log_init(2);            /* -v -v */
	assert_true(log_enabled(LOG_LVL_DEBUG));
	capture_start(&c);
	log_debug("x", "d3");
	out = capture_end(&c);
	assert_matches(out, STAMP "debug: \\[x\\] d3$");
	free(out);
	log_init(0);
}

static void test_folding(void **state)
{
	struct capture c;
	char *out, big[5000];

	capture_start(&c);
	/* A CA's error detail trying to forge a second line and colour the terminal. */
	log_error("we\nb", "detail: %s", "bad\nacmed info: forged\r\x1b[31mred\x7f\tend");
	{
		struct log_fields f = { .ca = "c\na", .acme_error = "urn:x\r\nINJECT" };

		log_msgf(LOG_LVL_WARN, &f, "fields");
	}
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info(NULL, "%s", big);               /* truncated, still one line */
	log_info(NULL, "caf\xc3\xa9");           /* UTF-8 is kept as is */
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 4);
	assert_matches(out, STAMP "error: \\[we b\\] detail: bad acmed info: forged  \\[31mred  end$");
	assert_matches(out, STAMP "warning: fields \\(CA=c a ACME_ERROR=urn:x  INJECT\\)$");
	assert_matches(out, STAMP "info: z{100,2047}$");
	assert_non_null(strstr(out, "info: caf\xc3\xa9\n"));
	assert_null(strstr(out, "\x1b"));
	assert_null(strstr(out, "\r"));
	free(out);
}

/* ---------- journald ---------- */

static void test_journald_detection(void **state)
{
	struct capture c;
	int match, wrong_ino;

	capture_start(&c);
	set_journal_stream_to(STDERR_FILENO, 0);
	match = log_under_journald();
	set_journal_stream_to(STDERR_FILENO, 1);
	wrong_ino = log_under_journald();
	free(capture_end(&c));
	assert_int_equal(match, 1);
	assert_int_equal(wrong_ino, 0);

	/* The variable inherited from a parent whose stderr was the journal, ours is not. */
	{
		int other = open("/dev/null", O_RDONLY | O_CLOEXEC);

		assert_true(other >= 0);
		set_journal_stream_to(other, 0);
		close(other);
		assert_int_equal(log_under_journald(), 0);
	}
	setenv("JOURNAL_STREAM", "", 1);
	assert_int_equal(log_under_journald(), 0);
	setenv("JOURNAL_STREAM", "12:", 1);
	assert_int_equal(log_under_journald(), 0);
	setenv("JOURNAL_STREAM", "x:y", 1);
	assert_int_equal(log_under_journald(), 0);
	capture_start(&c);
	{
		char v[80];
		struct stat st;

		assert_int_equal(fstat(STDERR_FILENO, &st), 0);
		snprintf(v, sizeof(v), "%llu:%llu:1", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", v, 1);         /* trailing junk */
		match = log_under_journald();
	}
	free(capture_end(&c));
	assert_int_equal(match, 0);
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(log_under_journald(), 0);
}

/* One native-protocol datagram: "KEY=value\n" or "KEY\n<le64 size><value>\n". */
struct jentry {
	char key[16][32];
	char val[16][2300];
	int n;
};

static void jentry_parse(const char *buf, size_t len, struct jentry *e)
{
	const char *p = buf, *end = buf + len;

	memset(e, 0, sizeof(*e));
	while (p < end && e->n < 16) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eq = memchr(p, '=', (size_t)((nl ? nl : end) - p));

		assert_non_null(nl);
		if (eq) {
			assert_true((size_t)(eq - p) < sizeof(e->key[0]));
			assert_true((size_t)(nl - eq - 1) < sizeof(e->val[0]));
			memcpy(e->key[e->n], p, (size_t)(eq - p));
			memcpy(e->val[e->n], eq + 1, (size_t)(nl - eq - 1));
			p = nl + 1;
		} else {
			uint64_t sz = 0;

			assert_true((size_t)(nl - p) < sizeof(e->key[0]));
			memcpy(e->key[e->n], p, (size_t)(nl - p));
			assert_true(end - nl > 9);
			for (int i = 0; i < 8; i++)
				sz |= (uint64_t)(unsigned char)nl[1 + i] << (8 * i);
			assert_true(sz < sizeof(e->val[0]));
			memcpy(e->val[e->n], nl + 9, (size_t)sz);
			p = nl + 9 + sz + 1;
		}
		e->n++;
	}
}

static const char *jget(const struct jentry *e, const char *key)
{
	for (int i = 0; i < e->n; i++)
		if (strcmp(e->key[i], key) == 0)
			return e->val[i];
	return NULL;
}

/* sd_journal_send() talks to /run/systemd/journal/socket. In a private mount
 * namespace a tmpfs over /run lets this test own that socket. */
static int private_journal_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (unshare(CLONE_NEWNS) < 0)
		return -1;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return -1;
	assert_int_equal(mkdir("/run/systemd", 0755), 0);
	assert_int_equal(mkdir("/run/systemd/journal", 0755), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/run/systemd/journal/socket");
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void test_journald_entries(void **state)
{
	static struct jentry e;
	struct capture c;
	char buf[8192], *out;
	ssize_t n;
	int jfd = private_journal_socket();
	struct log_fields f = { .cert = "web", .ca = "letsencrypt",
				.acme_error = "urn:ietf:params:acme:error:rateLimited" };

	if (jfd < 0)
		skip();         /* needs CAP_SYS_ADMIN for a private mount namespace */
	capture_start(&c);
	set_journal_stream_to(STDERR_FILENO, 0);
	log_init(0);

	log_msgf(LOG_LVL_WARN, &f, "rate limited\nretry in %ds", 3600);
	n = recv(jfd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	jentry_parse(buf, (size_t)n, &e);
	assert_string_equal(jget(&e, "MESSAGE"), "[web] rate limited retry in 3600s");
	assert_string_equal(jget(&e, "PRIORITY"), "4");
	assert_string_equal(jget(&e, "SYSLOG_IDENTIFIER"), "acmed");
	assert_string_equal(jget(&e, "ACMED_CERT"), "web");
	assert_string_equal(jget(&e, "CA"), "letsencrypt");
	assert_string_equal(jget(&e, "ACME_ERROR"), "urn:ietf:params:acme:error:rateLimited");

	log_info(NULL, "started"); int line = __LINE__;
	n = recv(jfd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	jentry_parse(buf, (size_t)n, &e);
	assert_string_equal(jget(&e, "MESSAGE"), "started");
	assert_string_equal(jget(&e, "PRIORITY"), "6");
	assert_null(jget(&e, "ACMED_CERT"));
	assert_null(jget(&e, "CA"));
	assert_null(jget(&e, "ACME_ERROR"));
	assert_null(jget(&e, "MESSAGE_ID"));
	/* Where the call is, not log.c's own sd_journal_send(). */
	assert_string_equal(jget(&e, "CODE_FILE"), "tests/unit/test_log.c");
	assert_int_equal(atoi(jget(&e, "CODE_LINE")), line);
	assert_string_equal(jget(&e, "CODE_FUNC"), "test_journald_entries");

	log_event(LOG_LVL_INFO, "web", LOG_ID_RENEWED, "certificate issued"); line = __LINE__;
	n = recv(jfd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	jentry_parse(buf, (size_t)n, &e);
	assert_string_equal(jget(&e, "MESSAGE"), "[web] certificate issued");
	assert_string_equal(jget(&e, "MESSAGE_ID"), LOG_ID_RENEWED);
	assert_int_equal(atoi(jget(&e, "CODE_LINE")), line);
	assert_int_equal(strlen(LOG_ID_RENEWED), 32);

	log_error("mail", "boom");
	n = recv(jfd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	jentry_parse(buf, (size_t)n, &e);
	assert_string_equal(jget(&e, "PRIORITY"), "3");
	assert_string_equal(jget(&e, "ACMED_CERT"), "mail");

	/* Filtered levels send nothing. */
	log_debug(NULL, "not at this level");
	assert_true(recv(jfd, buf, sizeof(buf), 0) < 0);

	/* journald stops (its socket refuses): lines fall back to stderr, none are lost.
	 * (A socket file gone altogether is dropped silently by sd_journal_send().) */
	close(jfd);
	log_error("web", "after the journal");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 1);
	assert_matches(out, STAMP "error: \\[web\\] after the journal$");
	free(out);
	unsetenv("JOURNAL_STREAM");
	log_init(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_stderr_format, setup),
		cmocka_unit_test_setup(test_levels, setup),
		cmocka_unit_test_setup(test_folding, setup),
		cmocka_unit_test_setup(test_journald_detection, setup),
		cmocka_unit_test_setup(test_journald_entries, setup),  /* last: it leaves a mount namespace */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
