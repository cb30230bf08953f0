/* test_control_limits.c - the control socket against hostile clients: its request parser, and a client that sends without reading (in-process server). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakeclock.h"
#include "testutil.h"
#include <event2/event.h>

#include "control.h"
#include "store.h"

/* ---- the request parser ---- */

/* Parses line; on success the request, on failure the message (printable
 * ASCII, never empty, and fit for a JSON answer). */
static int parse(const char *line, size_t len, struct control_request *r, char *err,
		 size_t errlen)
{
	int rc = control_request_parse(line, len, r, err, errlen);

	if (rc < 0) {
		json_t *a = json_pack("{s:b, s:s}", "ok", 0, "error", err);

		assert_int_equal(rc, -EINVAL);
		assert_true(err[0] != '\0');
		for (const char *p = err; *p; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
		assert_non_null(a);
		json_decref(a);
		assert_null(r->json);
		assert_null(r->names);
	}
	return rc;
}

static const char *parse_err(const char *line)
{
	static char err[256];
	struct control_request r;

	assert_int_equal(parse(line, strlen(line), &r, err, sizeof(err)), -EINVAL);
	return err;
}

static void test_parse_good(void **state)
{
	struct control_request r;
	char err[256];
	static const char renew[] = "{\"force\":true,\"cmd\":\"renew\",\"names\":[\"web\",\"\"],"
				    "\"all\":null,\"extra\":{\"x\":[1,2]}}";
	static const char renew_all[] = "{\"cmd\":\"renew\",\"all\":true,\"names\":null}";
	static const char reload[] = " {\"cmd\" : \"reload-wait\"} ";

	assert_int_equal(parse("{\"cmd\":\"status\"}", 16, &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, CONTROL_CMD_STATUS);
	control_request_clear(&r);
	assert_int_equal(parse(renew, strlen(renew), &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, CONTROL_CMD_RENEW);
	assert_int_equal(r.nnames, 2);
	assert_string_equal(r.names[0], "web");
	assert_string_equal(r.names[1], "");     /* an unknown name, said by renew */
	assert_false(r.all);
	assert_true(r.force);
	control_request_clear(&r);
	assert_int_equal(parse(renew_all, strlen(renew_all), &r, err, sizeof(err)), 0);
	assert_true(r.all);
	assert_int_equal(r.nnames, 0);
	control_request_clear(&r);
	assert_int_equal(parse(reload, strlen(reload), &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, CONTROL_CMD_RELOAD_WAIT);
	control_request_clear(&r);
	control_request_clear(&r);      /* twice is fine */
}

static void test_parse_hostile(void **state)
{
	static const char *const not_json[] = {
		"", " ", "{", "nul", "{\"cmd\":\"status\"}{}", "{\"cmd\":\"status\"} x",
		"{\"cmd\":\"sta\\u0000tus\"}",           /* no NUL inside a name */
		"{\"cmd\":\"st\xc3\"}", "{\"cmd\":\"\xff\xfe\"}",  /* not UTF-8 */
		"{\"cmd\":\"\\ud800\"}",                  /* a lone surrogate */
		"{\"cmd\":\"status\",\"n\":1e999}", "{'cmd':'status'}",
		"\"status\"", "7", "null",           /* JSON, but not an object or array */
	};
	static const char *const not_object[] = {
		"[1,2]", "[{\"cmd\":\"status\"}]", "{}", "{\"cmd\":5}", "{\"cmd\":null}",
		"{\"cmd\":[\"status\"]}", "{\"CMD\":\"status\"}",
	};
	static const char *const bad_renew[] = {
		"{\"cmd\":\"renew\"}", "{\"cmd\":\"renew\",\"names\":[]}",
		"{\"cmd\":\"renew\",\"names\":\"web\"}", "{\"cmd\":\"renew\",\"names\":{\"web\":1}}",
		"{\"cmd\":\"renew\",\"names\":[\"web\",7]}", "{\"cmd\":\"renew\",\"names\":[null]}",
		"{\"cmd\":\"renew\",\"names\":[[\"web\"]]}", "{\"cmd\":\"renew\",\"all\":1}",
		"{\"cmd\":\"renew\",\"names\":[\"web\"],\"all\":true}",
		"{\"cmd\":\"renew\",\"all\":true,\"force\":\"yes\"}",
		"{\"cmd\":\"renew\",\"all\":false}",
	};
	struct control_request r;
	char err[256], *deep, cmd[128], line[160], want[160];
	size_t i, n = 200000;

	for (i = 0; i < sizeof(not_json) / sizeof(not_json[0]); i++)
		assert_string_equal(parse_err(not_json[i]), "malformed request: not JSON");
	/* A raw NUL byte, and bytes after it. */
	assert_int_equal(parse("{\"cmd\":\"sta\0tus\"}", 17, &r, err, sizeof(err)), -EINVAL);
	for (i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++)
		assert_string_equal(parse_err(not_object[i]),
				    "malformed request: expected {\"cmd\": ...}");
	/* Duplicate keys are refused: which "cmd" counts would be a guess. */
	assert_string_equal(parse_err("{\"cmd\":\"status\",\"cmd\":\"renew\"}"),
			    "malformed request: not JSON");
	for (i = 0; i < sizeof(bad_renew) / sizeof(bad_renew[0]); i++)
		assert_int_equal(strncmp(parse_err(bad_renew[i]), "renew: ", 7), 0);

	/* Nesting 200 000 deep: refused, no stack overflow. */
	deep = malloc(2 * n + 1);
	assert_non_null(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	assert_string_equal(parse_err(deep), "malformed request: not JSON");
	free(deep);

	/* Unknown commands are echoed short and printable, even when the cut falls
	 * inside a UTF-8 character (the answer must stay valid JSON). */
	assert_string_equal(parse_err("{\"cmd\":\"rm -rf \\u001b[2J\\u007f\"}"),
			    "unknown command: rm -rf ?[2J?");
	memset(cmd, 'a', 63);
	strcpy(cmd + 63, "\xc3\xa9 and more");
	snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", cmd);
	strcpy(cmd + 63, "?");
	snprintf(want, sizeof(want), "unknown command: %s", cmd);
	assert_string_equal(parse_err(line), want);
	assert_string_equal(parse_err("{\"cmd\":\"st\xc3\xa1tus\"}"), "unknown command: st??tus");
	/* A short error buffer is cut, still terminated. */
	assert_int_equal(parse("{}", 2, &r, err, 8), -EINVAL);
	assert_string_equal(err, "malform");
}

/* Many names in one line: all of them, in order. */
static void test_parse_many_names(void **state)
{
	struct control_request r;
	char err[256], *line = malloc(CONTROL_MAX_LINE), *p = line;
	size_t n = 0;

	assert_non_null(line);
	p += sprintf(p, "{\"cmd\":\"renew\",\"names\":[");
	while (p - line < CONTROL_MAX_LINE - 64)
		p += sprintf(p, "%s\"c%zu\"", n ? "," : "", n), n++;
	p += sprintf(p, "]}");
	assert_int_equal(parse(line, (size_t)(p - line), &r, err, sizeof(err)), 0);
	assert_int_equal(r.nnames, n);
	assert_string_equal(r.names[0], "c0");
	assert_string_equal(r.names[n - 1], (sprintf(err, "c%zu", n - 1), err));
	control_request_clear(&r);
	free(line);
}

/* ---- a client that sends requests without reading the answers ---- */

#define ANSWER_PAD 1000         /* each status answer is a little over 1 KB */

struct srv {
	struct event_base *base;
	struct control *c;
	char *dir;
	unsigned status_calls;
	unsigned long dry_ids[4];       /* the dry runs started, in order */
	size_t ndry;
	unsigned long revoke_id;        /* the revocation waiting for its answer */
	int revoke_reason;
};

static json_t *big_status(void *arg)
{
	struct srv *s = arg;
	char pad[ANSWER_PAD + 1];

	memset(pad, 'x', ANSWER_PAD);
	pad[ANSWER_PAD] = '\0';
	s->status_calls++;
	return json_pack("{s:I, s:s}", "call", (json_int_t)s->status_calls, "pad", pad);
}

/* Dry runs: "nope" is unknown, "nostaging" has no staging CA; others start. */
static int fake_dry_run(void *arg, const char *const *names, size_t n, int all, unsigned long id,
			json_t *started, char *err, size_t errlen)
{
	struct srv *s = arg;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "nope") == 0) {
			snprintf(err, errlen, "unknown certificate: nope");
			return -ENOENT;
		}
		if (strcmp(names[i], "nostaging") == 0) {
			snprintf(err, errlen, "CA x has no staging directory");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(started, json_string(names[i]));
	if (all)
		json_array_append_new(started, json_string("every"));
	assert_true(s->ndry < 4);
	s->dry_ids[s->ndry++] = id;
	return 0;
}

/* Revocations: "nope" is unknown; others wait for the CA (the test answers). */
static int fake_revoke(void *arg, const char *name, int reason, unsigned long id, char *err, size_t errlen)
{
	struct srv *s = arg;

	if (strcmp(name, "nope") == 0) {
		snprintf(err, errlen, "unknown certificate: nope");
		return -ENOENT;
	}
	s->revoke_id = id;
	s->revoke_reason = reason;
	return 0;
}

static const struct control_ops big_ops = { big_status, NULL, fake_dry_run, fake_revoke, NULL };

static int srv_setup(void **state)
{
	struct srv *s = calloc(1, sizeof(*s));
	char tmpl[] = "/tmp/acmed-test-ctl-limits-XXXXXX";

	assert_non_null(s);
	assert_non_null(mkdtemp(tmpl));
	s->dir = strdup(tmpl);
	s->base = event_base_new();
	assert_non_null(s->base);
	assert_int_equal(control_new(s->base, s->dir, &big_ops, s, &s->c), 0);
	*state = s;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv *s = *state;

	control_free(s->c);
	event_base_free(s->base);
	rm_rf(s->dir);
	free(s->dir);
	free(s);
	return 0;
}

static int connect_nb(struct srv *s)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char *path = store_path(s->dir, CONTROL_SOCKET_NAME);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	size_t before = control_client_count(s->c);

	assert_true(fd >= 0);
	strcpy(a.sun_path, path);
	free(path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* The server accepts it. */
	while (control_client_count(s->c) == before)
		assert_true(event_base_loop(s->base, EVLOOP_ONCE) >= 0);
	return fd;
}

static const char req[] = "{\"cmd\":\"status\"}\n";
#define REQ_LEN (sizeof(req) - 1)

/* Send from stream[*off..len) as far as the server takes it without the
 * client reading: until everything is sent, or nothing moves for a thousand
 * turns of the server's loop (it reads no more). */
static void send_unread(struct srv *s, int fd, const char *stream, size_t len, size_t *off)
{
	unsigned idle = 0;

	while (*off < len && idle < 1000) {
		ssize_t w = send(fd, stream + *off, len - *off, MSG_NOSIGNAL);

		if (w > 0) {
			*off += (size_t)w;
			idle = 0;
		} else {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			idle++;
		}
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	}
}

static char *request_stream(size_t len)
{
	char *b = malloc(len);

	assert_non_null(b);
	for (size_t i = 0; i + REQ_LEN <= len; i += REQ_LEN)
		memcpy(b + i, req, REQ_LEN);
	return b;
}

/* 1 MiB of status requests, none of the answers read: the daemon stops taking
 * requests once CONTROL_MAX_UNREAD bytes of answers wait (before this fix it
 * answered all 61 680 and held them all: 147 MB for real STATUS answers). When
 * the client reads, every request is answered, in order. */
static void test_unread_answers_bounded(void **state)
{
	struct srv *s = *state;
	size_t len = (1 << 20) / REQ_LEN * REQ_LEN, off = 0, nreq = len / REQ_LEN, got = 0;
	size_t in_socket = 4u << 20;    /* generous: what the kernel buffers may hold */
	size_t bound = (CONTROL_MAX_UNREAD + in_socket) / ANSWER_PAD + 1, blen = 0, bcap = 1 << 16;
	char *stream = request_stream(len), *buf = malloc(bcap);
	int fd = connect_nb(s);

	assert_non_null(buf);

	send_unread(s, fd, stream, len, &off);
	print_message("sent %zu of %zu bytes unread; status answered %u times (bound %zu)\n", off,
		      len, s->status_calls, bound);
	assert_true(off < len);                 /* the daemon stopped reading */
	assert_true(s->status_calls <= bound);
	assert_int_equal(control_client_count(s->c), 1);

	/* Now read everything while sending the rest: every answer, in order. */
	while (got < nreq) {
		ssize_t r;

		if (off < len) {
			ssize_t w = send(fd, stream + off, len - off, MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
		}
		event_base_loop(s->base, EVLOOP_NONBLOCK);
		r = read(fd, buf + blen, bcap - blen);
		if (r < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			continue;
		}
		assert_true(r > 0);
		blen += (size_t)r;
		for (char *nl; (nl = memchr(buf, '\n', blen)) != NULL;) {
			json_t *ans = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			assert_non_null(ans);
			assert_true(json_is_true(json_object_get(ans, "ok")));
			assert_int_equal(json_integer_value(json_object_get(
				json_object_get(ans, "status"), "call")), (json_int_t)++got);
			json_decref(ans);
			blen -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, blen);
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(s->status_calls, nreq);
	close(fd);
	free(buf);
	free(stream);
}

/* A client that never reads is dropped once it has read nothing for the idle
 * timeout; others are served meanwhile. */
static void test_unread_client_dropped(void **state)
{
	struct srv *s = *state;
	size_t len = 4u << 20, off = 0;
	char *stream = request_stream(len), buf[65536];
	int fd = connect_nb(s), other;
	ssize_t r;

	control_set_idle_timeout(s->c, 200);
	send_unread(s, fd, stream, len, &off);
	assert_true(off < len);
	/* Another client is answered while the first is stuck. */
	other = connect_nb(s);
	assert_int_equal(control_client_count(s->c), 2);
	assert_int_equal(send(other, req, REQ_LEN, MSG_NOSIGNAL), (ssize_t)REQ_LEN);
	while ((r = read(other, buf, sizeof(buf))) < 0 && errno == EAGAIN)
		assert_true(event_base_loop(s->base, EVLOOP_ONCE) >= 0);
	assert_true(r > 0 && buf[r - 1] == '\n');
	assert_non_null(strstr(buf, "\"ok\":true"));
	close(other);
	/* Wait (on the loop's own timer) until the stuck client is gone. */
	while (control_client_count(s->c) > 0)
		assert_true(event_base_loop(s->base, EVLOOP_ONCE) >= 0);
	/* What had reached the socket can still be read, then the end. */
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		;
	assert_true(r == 0 || errno == ECONNRESET);
	close(fd);
	free(stream);
}

/* Read one answer line from a non-blocking client, turning the server's loop. */
static json_t *recv_answer(struct srv *s, int fd)
{
	char buf[4096];
	size_t len = 0;

	for (;;) {
		ssize_t r = read(fd, buf + len, 1);

		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			assert_true(event_base_loop(s->base, EVLOOP_ONCE) >= 0);
			continue;
		}
		if (r == 0)
			return NULL;    /* closed without an answer */
		assert_int_equal(r, 1);
		if (buf[len] == '\n')
			return json_loadb(buf, len, 0, NULL);
		assert_true(++len < sizeof(buf));
	}
}

/* An unknown command whose echo is cut inside a UTF-8 character is answered
 * (before: the answer was not valid UTF-8, json_pack failed and the
 * connection was closed as if out of memory), and the connection goes on. */
static void test_unknown_command_cut_in_utf8(void **state)
{
	struct srv *s = *state;
	char line[160], cmd[128];
	json_t *a;
	int fd = connect_nb(s);

	memset(cmd, 'b', 63);
	strcpy(cmd + 63, "\xc3\xa9");
	snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}\n{\"cmd\":\"status\"}\n", cmd);
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	a = recv_answer(s, fd);
	assert_non_null(a);
	assert_true(json_is_false(json_object_get(a, "ok")));
	assert_int_equal(strncmp(json_string_value(json_object_get(a, "error")),
				 "unknown command: bbb", 20), 0);
	json_decref(a);
	a = recv_answer(s, fd);
	assert_non_null(a);
	assert_true(json_is_true(json_object_get(a, "ok")));
	json_decref(a);
	close(fd);
}

static json_t *send_and_recv(struct srv *s, int fd, const char *line)
{
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	return recv_answer(s, fd);
}

/* A dry run is acknowledged at once and answered when it ends, to its own
 * client only, however long that takes (no idle timeout meanwhile); the
 * answer for a client that left is dropped. */
static void test_dry_run_answered_when_done(void **state)
{
	struct srv *s = *state;
	int a = connect_nb(s), b = connect_nb(s), gone = connect_nb(s);
	json_t *j;
	char buf[8];

	j = send_and_recv(s, a, "{\"cmd\":\"dry-run\",\"names\":[\"web\"]}\n");
	assert_true(json_is_true(json_object_get(j, "ok")) && json_is_true(json_object_get(j, "waiting")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "dry_run"), 0)), "web");
	json_decref(j);
	j = send_and_recv(s, b, "{\"cmd\":\"dry-run\",\"all\":true}\n");
	assert_true(json_is_true(json_object_get(j, "waiting")));
	json_decref(j);
	j = send_and_recv(s, gone, "{\"cmd\":\"dry-run\",\"names\":[\"mail\"]}\n");
	assert_true(json_is_true(json_object_get(j, "waiting")));
	json_decref(j);
	assert_int_equal(s->ndry, 3);
	assert_true(s->dry_ids[0] != s->dry_ids[1] && s->dry_ids[1] != s->dry_ids[2]);
	close(gone);

	/* Silent for four times the idle timeout (the fake clock moved 200 ms past
	 * a 50 ms timeout, the loop run at each step): still waiting. */
	fakeclock_freeze();
	control_set_idle_timeout(s->c, 50);
	for (int i = 0; i < 20; i++) {
		fakeclock_advance_ms(10);
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	}
	for (int i = 0; i < 1000 && control_client_count(s->c) > 2; i++)
		event_base_loop(s->base, EVLOOP_NONBLOCK);       /* gone's EOF */
	assert_int_equal(control_client_count(s->c), 2);
	assert_int_equal(read(a, buf, sizeof(buf)), -1);        /* nothing for a yet */
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

	/* b's run ends first: b alone gets it, then the socket closes */
	control_answer_later_done(s->c, s->dry_ids[1], json_pack("{s:b, s:[{s:s, s:b}]}", "ok", 1, "results",
							     "name", "web", "ok", 1));
	j = recv_answer(s, b);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
							      "name")), "web");
	json_decref(j);
	assert_null(recv_answer(s, b));
	/* the client that left: its answer goes nowhere */
	control_answer_later_done(s->c, s->dry_ids[2], json_pack("{s:b}", "ok", 1));
	control_answer_later_done(s->c, 987654, json_pack("{s:b}", "ok", 1));
	control_answer_later_done(s->c, s->dry_ids[0], json_pack("{s:b, s:s}", "ok", 0, "error", "stopped"));
	j = recv_answer(s, a);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "stopped");
	json_decref(j);
	assert_null(recv_answer(s, a));
	close(a);
	close(b);
}

static void test_dry_run_refused(void **state)
{
	struct srv *s = *state;
	int fd = connect_nb(s);
	json_t *j;

	j = send_and_recv(s, fd, "{\"cmd\":\"dry-run\",\"names\":[\"web\",\"nope\"]}\n");
	assert_true(json_is_false(json_object_get(j, "ok")) && json_is_true(json_object_get(j, "unknown")));
	json_decref(j);
	j = send_and_recv(s, fd, "{\"cmd\":\"dry-run\",\"names\":[\"nostaging\"]}\n");
	assert_string_equal(json_string_value(json_object_get(j, "error")), "CA x has no staging directory");
	assert_null(json_object_get(j, "unknown"));
	json_decref(j);
	j = send_and_recv(s, fd, "{\"cmd\":\"dry-run\",\"names\":[]}\n");
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "no certificate named"));
	json_decref(j);
	assert_int_equal(s->ndry, 0);
	/* the connection goes on after each refusal */
	j = send_and_recv(s, fd, "{\"cmd\":\"status\"}\n");
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	close(fd);
}

/* A revocation is answered once, when the CA answered (no "waiting" line
 * first), however long that takes; a bad reason or name is refused at once. */
static void test_revoke_answered_when_the_ca_did(void **state)
{
	struct srv *s = *state;
	int a = connect_nb(s), fd = connect_nb(s);
	json_t *j;
	char buf[8];

	j = send_and_recv(s, fd, "{\"cmd\":\"revoke\",\"name\":\"web\",\"reason\":\"stolen\"}\n");
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
			       "unknown reason; expected one of unspecified, keyCompromise"));
	json_decref(j);
	j = send_and_recv(s, fd, "{\"cmd\":\"revoke\",\"name\":\"nope\"}\n");
	assert_true(json_is_true(json_object_get(j, "unknown")));
	json_decref(j);
	j = send_and_recv(s, fd, "{\"cmd\":\"revoke\",\"name\":[\"web\"]}\n");
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "revoke: \"name\" must be a certificate name");
	json_decref(j);
	close(fd);

	const char *line = "{\"cmd\":\"revoke\",\"name\":\"web\",\"reason\":\"KEYCOMPROMISE\"}\n";
	assert_int_equal(send(a, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	for (int i = 0; i < 1000 && !s->revoke_id; i++)
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	assert_true(s->revoke_id != 0);
	assert_int_equal(s->revoke_reason, 1);
	fakeclock_freeze();
	control_set_idle_timeout(s->c, 50);
	for (int i = 0; i < 20; i++) {
		fakeclock_advance_ms(10);
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	}
	assert_int_equal(read(a, buf, sizeof(buf)), -1);        /* nothing yet, still connected */
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	control_answer_later_done(s->c, s->revoke_id, json_pack("{s:b, s:s}", "ok", 1, "message", "revoked"));
	j = recv_answer(s, a);
	assert_string_equal(json_string_value(json_object_get(j, "message")), "revoked");
	json_decref(j);
	assert_null(recv_answer(s, a));
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_parse_many_names),
		cmocka_unit_test_setup_teardown(test_unknown_command_cut_in_utf8, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_unread_answers_bounded, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_unread_client_dropped, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_answered_when_done, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_refused, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_revoke_answered_when_the_ca_did, srv_setup, srv_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
