/* control.h - the control socket (<runtime_dir>/acmed.sock): daemon side and the CLI that talks to it. */
#ifndef ACMED_CONTROL_H
#define ACMED_CONTROL_H

#include <stddef.h>
#include <jansson.h>
#include <event2/event.h>

#include "config.h"

#define CONTROL_SOCKET_NAME "acmed.sock"
#define CONTROL_PID_NAME "acmed.pid"
#define CONTROL_MAX_LINE (64 * 1024)    /* longest request line accepted */
#define CONTROL_IDLE_TIMEOUT_MS 60000   /* a client silent this long is dropped */
#define CONTROL_MAX_UNREAD (1 << 20)    /* answers queued for a client that does not read */

/*
 * Protocol: newline-delimited JSON, one request per line, one answer line each.
 *  {"cmd":"status"}      -> {"ok":true,"status":STATUS}          (status.h)
 *  {"cmd":"renew","names":[...],"all":false,"force":false}
 *                        -> {"ok":true,"renewing":[names],"not_due":[names]}
 *                         | {"ok":false,"error":"unknown certificate: foo","unknown":true}
 *  {"cmd":"dry-run","names":[...],"all":false}
 *                        -> {"ok":true,"waiting":true,"dry_run":[names]} at once; then,
 *                           when every order at the staging directories ended,
 *                           {"ok":true,"results":[{"name":..,"ok":true,"message":..,
 *                           "directory":URL,"not_after":T}]}; then the socket closes.
 *  {"cmd":"revoke","name":"web","reason":"keyCompromise"}   (reason optional: unspecified)
 *                        -> when the CA answered: {"ok":true,"message":"revoked at CA ...; ordering
 *                           its replacement now"} | {"ok":false,"error":..}; then the socket closes.
 *  {"cmd":"account","action":"rollover"|"deactivate","ca":"le"}
 *                        -> when the CA answered: {"ok":true,"message":..} | {"ok":false,"error":..};
 *                           then the socket closes.
 *  {"cmd":"reload-wait"} -> {"ok":true,"waiting":true} at once; then, when the
 *                           daemon finishes its next reload,
 *                           {"ok":true,"certificates":3,"added":1,"removed":0,"changed":0}
 *                         | {"ok":false,"error":"FILE:LINE:COL: ..."}; then the socket closes.
 *  anything else         -> {"ok":false,"error":"..."} (the connection stays usable,
 *                           except after a line longer than CONTROL_MAX_LINE).
 * A client may send requests before reading the answers, but while more than
 * CONTROL_MAX_UNREAD bytes of answers wait for it, its next requests are not
 * read; a client that reads nothing for CONTROL_IDLE_TIMEOUT_MS is dropped.
 */

/* One request line, parsed (control_request_parse). */
enum control_cmd { CONTROL_CMD_STATUS, CONTROL_CMD_RENEW, CONTROL_CMD_RELOAD_WAIT, CONTROL_CMD_DRY_RUN,
		   CONTROL_CMD_REVOKE, CONTROL_CMD_ACCOUNT };
struct control_request {
	enum control_cmd cmd;
	const char **names;     /* renew: nnames certificate names (owned by json) */
	size_t nnames;
	int all, force;
	const char *name;       /* revoke: the certificate; account: the CA (owned by json) */
	const char *action;     /* account: "rollover" or "deactivate" (owned by json) */
	int reason;             /* revoke: the reason code (revoke.h) */
	json_t *json;           /* the parsed line */
};
/* Parse line[0..len) (no newline). 0, or -EINVAL with the client's error
 * message in err (printable ASCII), or -ENOMEM. r is cleared either way. */
int control_request_parse(const char *line, size_t len, struct control_request *r, char *err,
			  size_t errlen);
void control_request_clear(struct control_request *r);

struct control;
struct sched;

struct control_ops {
	/* STATUS as a new reference, or NULL (answered as an error). */
	json_t *(*status)(void *arg);
	/* Renew names[0..n) (or every certificate when all) now; force: even when
	 * not due. Append the names acted on to renewing and those left alone
	 * because they are valid and not due to not_due (JSON arrays). On an
	 * unknown name: nothing is done, err says "unknown certificate: NAME",
	 * return -ENOENT. Other errors: err set, another negative code. */
	int (*renew)(void *arg, const char *const *names, size_t n, int all, int force,
		     json_t *renewing, json_t *not_due, char *err, size_t errlen);
	/* Start a dry run of names (or all): append them to started, and call
	 * control_answer_later_done(c, id, ...) when every one has ended. Errors as renew. */
	int (*dry_run)(void *arg, const char *const *names, size_t n, int all, unsigned long id,
		       json_t *started, char *err, size_t errlen);
	/* Revoke name's certificate (reason: revoke.h), and call
	 * control_answer_later_done(c, id, ...) when the CA answered. Errors as renew. */
	int (*revoke)(void *arg, const char *name, int reason, unsigned long id, char *err, size_t errlen);
	/* Roll over or deactivate CA ca's account; control_answer_later_done(c, id,
	 * ...) when the CA answered. Errors as renew (-ENOENT: no such CA). */
	int (*account)(void *arg, const char *action, const char *ca, unsigned long id, char *err,
		       size_t errlen);
};

/* Listen on <runtime_dir>/acmed.sock (a stale socket is replaced; mode 0600;
 * only peers with our euid or root are served). ops and arg must outlive c. */
int control_new(struct event_base *base, const char *runtime_dir, const struct control_ops *ops,
		void *arg, struct control **out);
/* Answer every client waiting in reload-wait, then close them. ok == 0: error
 * is the message (e.g. the config's "FILE:LINE:COL: message"). */
void control_reload_done(struct control *c, int ok, const char *error, unsigned ncerts,
			 unsigned added, unsigned removed, unsigned changed);
/* Send answer (a reference taken over) to the client waiting for id (a dry
 * run's, a revocation's), then close it; dropped when that client is gone. */
void control_answer_later_done(struct control *c, unsigned long id, json_t *answer);
/* Closes every connection and the listener, and unlinks the socket. NULL is fine. */
void control_free(struct control *c);
/* For tests: idle timeout per connection (default CONTROL_IDLE_TIMEOUT_MS). */
void control_set_idle_timeout(struct control *c, unsigned ms);
/* Number of open client connections (for tests and the status line). */
size_t control_client_count(const struct control *c);

/* A ready-made control_ops.renew over the scheduler: checks every name against
 * cfg first (all or nothing), then sched_renew_now() each. */
int control_renew_sched(const struct config *cfg, struct sched *s, const char *const *names,
			size_t n, int all, int force, json_t *renewing, json_t *not_due,
			char *err, size_t errlen);

/* ---- CLI side (control_client.c); each returns the exit code: 0 ok,
 * 1 operational failure, 2 usage. Messages go to stdout / stderr. ---- */

/* `acmed reload`: reload-wait on the socket, SIGHUP to the pid in acmed.pid
 * (which must be locked by the running daemon), print the answer. */
int control_cli_reload(const struct config *cfg);
/* `acmed status [--json|--check]`: from the daemon, or from state_dir when
 * none runs. --check: status_check()'s line and exit code (3 when no status). */
enum control_status_mode { CONTROL_STATUS_TABLE, CONTROL_STATUS_JSON, CONTROL_STATUS_CHECK };
int control_cli_status(const struct config *cfg, enum control_status_mode mode);
/* `acmed renew NAME... | --all [--force]`: needs the daemon. */
int control_cli_renew(const struct config *cfg, const char *const *names, size_t n, int all,
		      int force);
/* `acmed renew NAME... | --all --dry-run`: the daemon (or, when none runs, this
 * process: dryrun_cmd_standalone) orders each at its CA's staging directory and
 * installs nothing; prints each result. 0 when all were issued, 1 otherwise. */
int control_cli_dry_run(const struct config *cfg, const char *const *names, size_t n, int all);
/* Print a dry run's answer ({"ok":..., "results":[...]}), a line per certificate; the exit code. */
int control_cli_dry_run_results(const json_t *answer);
/* `acmed revoke NAME [--reason R]`: the daemon revokes and orders the
 * replacement (or, when none runs, this process: revoke_cmd_standalone).
 * reason: a name revoke_reason_parse knows. 0, 1 failed, 2 unknown name. */
int control_cli_revoke(const struct config *cfg, const char *name, const char *reason);
/* `acmed account rollover|deactivate` through the running daemon, one
 * request per CA (ca NULL: every CA): the exit status, or -ENOENT when no
 * daemon runs (nothing sent). */
int control_cli_account(const struct config *cfg, const char *action, const char *ca);
/* For tests: how long control_cli_reload waits for the answer (default 60000). */
void control_cli_set_timeout(unsigned ms);

#endif
