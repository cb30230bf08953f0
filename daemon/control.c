/* control.c - the daemon's control socket: newline-delimited JSON requests (status, renew, reload-wait) on the event loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "control.h"
#include "revoke.h"
#include "log.h"
#include "scheduler.h"
#include "store.h"

struct control_conn {
	struct control *c;
	struct bufferevent *bev;
	struct control_conn *prev, *next;
	int waiting;            /* reload-wait acknowledged; answer pending */
	unsigned long later_id; /* an answer pending (dry run, revoke): control_answer_later_done */
	int closing;            /* close once the output is flushed */
	int paused;             /* too many answers unread: its requests wait */
};

struct control {
	struct event_base *base;
	struct evconnlistener *listener;
	char *path;
	const struct control_ops *ops;
	void *arg;
	struct control_conn *conns;
	size_t nconns;
	unsigned idle_ms;
};

static void conn_free(struct control_conn *k)
{
	struct control *c = k->c;

	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	c->nconns--;
	bufferevent_free(k->bev);
	free(k);
}

/* Queue one answer line; takes the reference to resp. */
static void conn_send(struct control_conn *k, json_t *resp)
{
	char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	struct evbuffer *out = bufferevent_get_output(k->bev);

	json_decref(resp);
	if (!s || evbuffer_add(out, s, strlen(s)) < 0 || evbuffer_add(out, "\n", 1) < 0) {
		log_error(NULL, "control: cannot queue an answer (out of memory)");
		k->closing = 1;
	}
	free(s);
}

static json_t *answer_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* Close after the last byte is written (or at once when nothing is queued). */
static void conn_close_after_write(struct control_conn *k)
{
	k->closing = 1;
	if (evbuffer_get_length(bufferevent_get_output(k->bev)) == 0)
		conn_free(k);
	/* else: on_write frees it once drained. */
}

static json_t *do_status(struct control *c)
{
	json_t *st = c->ops && c->ops->status ? c->ops->status(c->arg) : NULL;

	if (!st)
		return answer_error("status unavailable");
	return json_pack("{s:b, s:o}", "ok", 1, "status", st);
}

/* msg with every byte outside printable ASCII replaced by '?'. */
static void printable(char *msg)
{
	for (size_t i = 0; msg[i]; i++)
		if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] >= 0x7f)
			msg[i] = '?';
}

void control_request_clear(struct control_request *r)
{
	free(r->names);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static int req_fail(struct control_request *r, char *err, size_t errlen, const char *msg)
{
	control_request_clear(r);
	snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

static int parse_renew(struct control_request *r, char *err, size_t errlen)
{
	json_t *jnames = json_object_get(r->json, "names"), *jall = json_object_get(r->json, "all");
	json_t *jforce = json_object_get(r->json, "force"), *v;
	size_t i;

	if (jnames && !json_is_array(jnames) && !json_is_null(jnames))
		return req_fail(r, err, errlen,
				"renew: \"names\" must be an array of certificate names");
	if ((jall && !json_is_boolean(jall) && !json_is_null(jall)) ||
	    (jforce && !json_is_boolean(jforce) && !json_is_null(jforce)))
		return req_fail(r, err, errlen, "renew: \"all\" and \"force\" must be booleans");
	r->all = json_is_true(jall);
	r->force = json_is_true(jforce);
	r->nnames = json_is_array(jnames) ? json_array_size(jnames) : 0;
	if (r->all && r->nnames > 0)
		return req_fail(r, err, errlen, "renew: give certificate names or \"all\", not both");
	if (!r->all && r->nnames == 0)
		return req_fail(r, err, errlen,
				"renew: no certificate named (give names or \"all\")");
	if (r->nnames > 0) {
		r->names = calloc(r->nnames, sizeof(*r->names));
		if (!r->names) {
			control_request_clear(r);
			return -ENOMEM;
		}
	}
	json_array_foreach(jnames, i, v) {
		if (!json_is_string(v))
			return req_fail(r, err, errlen,
					"renew: \"names\" must be an array of certificate names");
		r->names[i] = json_string_value(v);
	}
	return 0;
}

/* {"cmd":"revoke","name":"web","reason":"keyCompromise"} (reason optional). */
static int parse_revoke(struct control_request *r, char *err, size_t errlen)
{
	json_t *jname = json_object_get(r->json, "name"), *jreason = json_object_get(r->json, "reason");

	if (!json_is_string(jname))
		return req_fail(r, err, errlen, "revoke: \"name\" must be a certificate name");
	if (jreason && !json_is_string(jreason) && !json_is_null(jreason))
		return req_fail(r, err, errlen, "revoke: \"reason\" must be a string");
	r->name = json_string_value(jname);
	r->reason = REVOKE_UNSPECIFIED;
	if (json_is_string(jreason) && revoke_reason_parse(json_string_value(jreason), &r->reason) < 0) {
		control_request_clear(r);
		snprintf(err, errlen, "revoke: unknown reason; expected one of %s", revoke_reason_list);
		return -EINVAL;
	}
	return 0;
}

int control_request_parse(const char *line, size_t len, struct control_request *r, char *err,
			  size_t errlen)
{
	json_error_t jerr;
	const char *cmd;

	memset(r, 0, sizeof(*r));
	if (errlen)
		err[0] = '\0';
	/* No JSON_ALLOW_NUL: a "\u0000" inside a string is refused, so every
	 * string handed on is a whole C string. */
	r->json = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r->json)
		return req_fail(r, err, errlen, "malformed request: not JSON");
	cmd = json_string_value(json_object_get(r->json, "cmd"));
	if (!json_is_object(r->json) || !cmd)
		return req_fail(r, err, errlen, "malformed request: expected {\"cmd\": ...}");
	if (strcmp(cmd, "status") == 0) {
		r->cmd = CONTROL_CMD_STATUS;
	} else if (strcmp(cmd, "renew") == 0) {
		r->cmd = CONTROL_CMD_RENEW;
		return parse_renew(r, err, errlen);
	} else if (strcmp(cmd, "dry-run") == 0) {
		/* Its own command: a daemon that does not know it refuses it, rather
		 * than take it for a renew and install certificates. */
		r->cmd = CONTROL_CMD_DRY_RUN;
		return parse_renew(r, err, errlen);
	} else if (strcmp(cmd, "revoke") == 0) {
		r->cmd = CONTROL_CMD_REVOKE;
		return parse_revoke(r, err, errlen);
	} else if (strcmp(cmd, "account") == 0) {
		r->cmd = CONTROL_CMD_ACCOUNT;
		r->action = json_string_value(json_object_get(r->json, "action"));
		r->name = json_string_value(json_object_get(r->json, "ca"));
		if (!r->action || !r->name || (strcmp(r->action, "rollover") && strcmp(r->action, "deactivate")))
			return req_fail(r, err, errlen, "account: expected \"action\": \"rollover\" or "
					"\"deactivate\" and \"ca\": a CA name");
	} else if (strcmp(cmd, "reload-wait") == 0) {
		r->cmd = CONTROL_CMD_RELOAD_WAIT;
	} else {
		/* Echo at most a short, printable piece of the command. */
		snprintf(err, errlen, "unknown command: %.64s", cmd);
		printable(err);
		json_decref(r->json);
		r->json = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The answer to a renew that failed (rc < 0), or NULL when it did not. */
static json_t *answer_failed(int rc, const char *err)
{
	if (rc == -ENOENT)      /* "unknown": true lets the CLI tell a typo (exit 2) from a failure */
		return json_pack("{s:b, s:s, s:b}", "ok", 0, "error", err[0] ? err : "unknown certificate",
				 "unknown", 1);
	return rc < 0 ? answer_error(err[0] ? err : strerror(-rc)) : NULL;
}

/* The id of an answer that comes later (dry runs, revocations): never 0. */
static unsigned long later_id_next(void)
{
	static unsigned long next_id;

	if (++next_id == 0)
		next_id = 1;
	return next_id;
}

/* A dry run: acknowledged now ("waiting"), its results sent by control_answer_later_done. */
static json_t *do_dry_run(struct control_conn *k, const struct control_request *q)
{
	unsigned long next_id;
	json_t *started = json_array(), *resp;
	char err[512] = "";
	int rc;

	if (!k->c->ops || !k->c->ops->dry_run) {
		json_decref(started);
		return answer_error("dry runs unavailable");
	}
	if (!started)
		return answer_error("out of memory");
	next_id = later_id_next();
	rc = k->c->ops->dry_run(k->c->arg, q->names, q->nnames, q->all, next_id, started, err,
				sizeof(err));
	resp = answer_failed(rc, err);
	if (!resp) {
		k->later_id = next_id;
		/* The order takes minutes at worst: the client waits without a word. */
		bufferevent_set_timeouts(k->bev, NULL, NULL);
		resp = json_pack("{s:b, s:b, s:O}", "ok", 1, "waiting", 1, "dry_run", started);
	}
	json_decref(started);
	return resp;
}

/* A revocation or an account change: started now, answered once the CA did
 * (control_answer_later_done); NULL: nothing to send now. */
static json_t *do_later(struct control_conn *k, const struct control_request *q)
{
	const struct control_ops *ops = k->c->ops;
	int revoke = q->cmd == CONTROL_CMD_REVOKE;
	unsigned long id;
	char err[512] = "";
	int rc;

	if (!ops || (revoke ? ops->revoke == NULL : ops->account == NULL))
		return answer_error(revoke ? "revoke unavailable" : "account changes unavailable");
	id = later_id_next();
	rc = revoke ? ops->revoke(k->c->arg, q->name, q->reason, id, err, sizeof(err)) :
		      ops->account(k->c->arg, q->action, q->name, id, err, sizeof(err));
	if (rc < 0)
		return answer_failed(rc, err);
	k->later_id = id;
	bufferevent_set_timeouts(k->bev, NULL, NULL);   /* the CA takes its time: no idle timeout */
	return NULL;
}

static json_t *do_renew(struct control *c, const struct control_request *q)
{
	json_t *renewing, *not_due, *resp;
	char err[512] = "";
	int rc;

	if (!c->ops || !c->ops->renew)
		return answer_error("renew unavailable");
	renewing = json_array();
	not_due = json_array();
	if (!renewing || !not_due) {
		json_decref(renewing);
		json_decref(not_due);
		return answer_error("out of memory");
	}
	rc = c->ops->renew(c->arg, q->names, q->nnames, q->all, q->force, renewing, not_due, err,
			   sizeof(err));
	resp = answer_failed(rc, err);
	if (!resp)
		resp = json_pack("{s:b, s:O, s:O}", "ok", 1, "renewing", renewing, "not_due",
				 not_due);
	json_decref(renewing);
	json_decref(not_due);
	return resp;
}

/* One request line; returns the answer. */
static json_t *conn_request(struct control_conn *k, const char *line, size_t len)
{
	struct control_request q;
	char err[256];
	json_t *resp;
	int rc = control_request_parse(line, len, &q, err, sizeof(err));

	if (rc == -ENOMEM)
		return answer_error("out of memory");
	if (rc < 0)
		return answer_error(err);
	switch (q.cmd) {
	case CONTROL_CMD_STATUS:
		resp = do_status(k->c);
		break;
	case CONTROL_CMD_RENEW:
		resp = do_renew(k->c, &q);
		break;
	case CONTROL_CMD_DRY_RUN:
		resp = do_dry_run(k, &q);
		break;
	case CONTROL_CMD_REVOKE:
	case CONTROL_CMD_ACCOUNT:
		resp = do_later(k, &q);
		break;
	case CONTROL_CMD_RELOAD_WAIT:
	default:
		k->waiting = 1;
		resp = json_pack("{s:b, s:b}", "ok", 1, "waiting", 1);
		break;
	}
	control_request_clear(&q);
	return resp;
}

/* Answer the complete request lines that have arrived, as long as the client
 * reads its answers. May free k. */
static void conn_process(struct control_conn *k)
{
	struct bufferevent *bev = k->bev;
	struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
	char *line;
	size_t len;

	for (;;) {
		if (k->closing || k->waiting || k->later_id) {
			/* Nothing more is read from a client whose answer is pending. */
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		if (evbuffer_get_length(out) > CONTROL_MAX_UNREAD) {
			/* Its answers pile up unread: take no more requests until it has
			 * read them (on_write), or drop it when it reads nothing for the
			 * idle timeout (on_event). Memory stays bounded either way. */
			if (!k->paused)
				log_debug(NULL, "control: a client has %zu bytes of answers unread "
					  "(limit %d); reading its requests once it reads them",
					  evbuffer_get_length(out), CONTROL_MAX_UNREAD);
			k->paused = 1;
			bufferevent_disable(bev, EV_READ);
			return;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (!line)
			break;
		if (len > CONTROL_MAX_LINE) {
			free(line);
			goto too_long;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > 0)
		{
			json_t *resp = conn_request(k, line, len);

			if (resp || !k->later_id)       /* NULL: the answer comes later */
				conn_send(k, resp);
		}
		free(line);
	}
	if (!k->closing && !k->waiting && !k->later_id && evbuffer_get_length(in) > CONTROL_MAX_LINE)
		goto too_long;
	if (k->paused) {
		k->paused = 0;
		if (!k->closing)
			bufferevent_enable(bev, EV_READ);
	}
	if (k->closing)
		conn_close_after_write(k);
	return;
too_long:
	log_warn(NULL, "control: request longer than %d bytes; closing that connection",
		 CONTROL_MAX_LINE);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(bev, EV_READ);
	conn_send(k, answer_error("request too long"));
	conn_close_after_write(k);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

/* The output is drained (the low watermark is 0). */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct control_conn *k = arg;

	if (k->closing)
		conn_free(k);
	else if (k->paused)
		conn_process(k);        /* the client read its answers: go on */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_conn *k = arg;
	size_t unread = evbuffer_get_length(bufferevent_get_output(bev));

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING)) {
		log_warn(NULL, "control: a client read none of its %zu bytes of answers for %u ms; "
			 "closing that connection", unread, k->c->idle_ms);
	} else if (what & BEV_EVENT_TIMEOUT) {
		log_debug(NULL, "control: client idle for %u ms; closing", k->c->idle_ms);
	} else if (what & BEV_EVENT_ERROR) {
		log_debug(NULL, "control: client connection error: %s",
			  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	} else if ((what & BEV_EVENT_EOF) && !k->waiting && unread > 0) {
		/* The client finished sending: deliver what is queued, then close. */
		bufferevent_disable(bev, EV_READ);
		conn_close_after_write(k);
		return;
	}
	conn_free(k);
}

static void set_timeouts(struct control_conn *k)
{
	struct timeval tv = { k->c->idle_ms / 1000, (k->c->idle_ms % 1000) * 1000 };

	bufferevent_set_timeouts(k->bev, &tv, &tv);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct control *c = arg;
	struct control_conn *k;
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || clen != sizeof(cred)) {
		log_warn(NULL, "control: cannot identify a client of %s: %s", c->path,
			 strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		log_warn(NULL, "control: refused a client of %s: uid %u (pid %ld) is not ours",
			 c->path, (unsigned)cred.uid, (long)cred.pid);
		evutil_closesocket(fd);
		return;
	}
	k = calloc(1, sizeof(*k));
	if (k)
		k->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!k || !k->bev) {
		log_error(NULL, "control: out of memory for a client of %s", c->path);
		free(k);
		evutil_closesocket(fd);
		return;
	}
	k->c = c;
	k->next = c->conns;
	if (c->conns)
		c->conns->prev = k;
	c->conns = k;
	c->nconns++;
	/* Stop reading once a line is over the limit: memory stays bounded. */
	bufferevent_setwatermark(k->bev, EV_READ, 0, CONTROL_MAX_LINE + 2);
	bufferevent_setcb(k->bev, on_read, on_write, on_event, k);
	set_timeouts(k);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct control *c = arg;
	int e = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: keep listening; the next accept may succeed. */
	log_error(NULL, "control: accept on %s failed: %s", c->path,
		  evutil_socket_error_to_string(e));
}

int control_new(struct event_base *base, const char *runtime_dir, const struct control_ops *ops,
		void *arg, struct control **out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct control *c;
	struct stat st;
	mode_t old;
	int fd, rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = store_path(runtime_dir, CONTROL_SOCKET_NAME))) {
		free(c);
		return -ENOMEM;
	}
	c->base = base;
	c->ops = ops;
	c->arg = arg;
	c->idle_ms = CONTROL_IDLE_TIMEOUT_MS;
	if (strlen(c->path) >= sizeof(addr.sun_path)) {
		log_error(NULL, "control socket path %s is too long (max %zu bytes)", c->path,
			  sizeof(addr.sun_path) - 1);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	memcpy(addr.sun_path, c->path, strlen(c->path) + 1);
	/* The pid file lock makes us the only acmed here: a socket left behind is stale. */
	if (lstat(c->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error(NULL, "%s exists and is not a socket; remove it", c->path);
			rc = -EEXIST;
			goto fail;
		}
		if (unlink(c->path) < 0 && errno != ENOENT) {
			rc = -errno;
			log_error(NULL, "cannot remove stale socket %s: %s", c->path, strerror(errno));
			goto fail;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		log_error(NULL, "control: socket(): %s", strerror(errno));
		goto fail;
	}
	old = umask(0177);      /* never reachable by others, not even for an instant */
	rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (rc < 0 || chmod(c->path, 0600) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		log_error(NULL, "cannot listen on %s: %s", c->path, strerror(errno));
		close(fd);
		goto fail_unlink;
	}
	c->listener = evconnlistener_new(base, on_accept, c,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!c->listener) {
		log_error(NULL, "control: cannot add %s to the event loop", c->path);
		close(fd);
		rc = -ENOMEM;
		goto fail_unlink;
	}
	evconnlistener_set_error_cb(c->listener, on_accept_error);
	log_debug(NULL, "control socket listening on %s", c->path);
	*out = c;
	return 0;
fail_unlink:
	unlink(c->path);
fail:
	free(c->path);
	free(c);
	return rc;
}

void control_reload_done(struct control *c, int ok, const char *error, unsigned ncerts,
			 unsigned added, unsigned removed, unsigned changed)
{
	struct control_conn *k, *next;

	if (!c)
		return;
	for (k = c->conns; k; k = next) {
		next = k->next;
		if (!k->waiting || k->closing)
			continue;
		k->waiting = 0;
		if (ok)
			conn_send(k, json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", 1, "certificates",
					       (json_int_t)ncerts, "added", (json_int_t)added,
					       "removed", (json_int_t)removed, "changed",
					       (json_int_t)changed));
		else
			conn_send(k, answer_error(error && *error ? error : "reload failed"));
		conn_close_after_write(k);
	}
}

void control_answer_later_done(struct control *c, unsigned long id, json_t *answer)
{
	struct control_conn *k;

	for (k = c ? c->conns : NULL; k; k = k->next)
		if (k->later_id == id && !k->closing)
			break;
	if (!k) {
		json_decref(answer);    /* the client went away */
		return;
	}
	k->later_id = 0;
	conn_send(k, answer ? answer : answer_error("out of memory"));
	conn_close_after_write(k);
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->conns)
		conn_free(c->conns);
	if (c->listener)
		evconnlistener_free(c->listener);
	unlink(c->path);
	free(c->path);
	free(c);
}

void control_set_idle_timeout(struct control *c, unsigned ms)
{
	struct control_conn *k;

	c->idle_ms = ms ? ms : CONTROL_IDLE_TIMEOUT_MS;
	for (k = c->conns; k; k = k->next)
		if (!k->later_id)       /* a dry run's client waits as long as it takes */
			set_timeouts(k);
}

size_t control_client_count(const struct control *c)
{
	return c ? c->nconns : 0;
}

int control_renew_sched(const struct config *cfg, struct sched *s, const char *const *names,
			size_t n, int all, int force, json_t *renewing, json_t *not_due,
			char *err, size_t errlen)
{
	size_t i, count = all ? cfg->ncerts : n;
	int rc;

	for (i = 0; !all && i < n; i++) {
		if (!config_find_cert(cfg, names[i])) {
			snprintf(err, errlen, "unknown certificate: %s", names[i]);
			return -ENOENT;
		}
	}
	for (i = 0; i < count; i++) {
		const char *name = all ? cfg->certs[i].name : names[i];
		rc = sched_renew_now(s, name, force);
		if (rc == -ENOENT) {
			snprintf(err, errlen, "unknown certificate: %s", name);
			return -ENOENT;
		}
		if (rc == -EALREADY) {
			/* Named ones are listed; "all" means "all that are due". */
			if (!all)
				json_array_append_new(not_due, json_string(name));
			continue;
		}
		if (rc < 0) {
			snprintf(err, errlen, "%s: cannot renew now: %s", name, strerror(-rc));
			return rc;
		}
		json_array_append_new(renewing, json_string(name));
	}
	return 0;
}
