/* status.c - builds STATUS (JSON) from the scheduler or from the files on disk, and prints it as a table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "acme_err.h"
#include "ari.h"
#include "ca_known.h"
#include "names.h"
#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "policy.h"
#include "scheduler.h"
#include "state.h"
#include "status.h"
#include "store.h"
#include "timeparse.h"

#define STATUS_CERT_MAX (1 << 20)       /* a fullchain.pem larger than this is not ours */
#define DAY 86400

const char *status_rfc3339(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
	return buf;
}

/* RFC 3339 string, or null when t == 0. */
static json_t *jtime(int64_t t)
{
	char buf[40];

	return t ? json_string(status_rfc3339(t, buf, sizeof(buf))) : json_null();
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int64_t floor_days(int64_t seconds)
{
	return seconds >= 0 ? seconds / DAY : -((-seconds + DAY - 1) / DAY);
}

/* The parts that come from the configuration. */
static json_t *cert_base(const struct config *cfg, const struct config_cert *cc,
			 enum key_type key_type)
{
	json_t *domains = json_array();

	for (size_t i = 0; domains && i < cc->domains.n; i++)
		json_array_append_new(domains, json_string(cc->domains.v[i]));
	return json_pack("{s:s, s:s, s:o*, s:s, s:s}", "name", cc->name, "ca",
			 cc->ca < cfg->ncas ? cfg->cas[cc->ca].name : "?", "domains", domains,
			 "key_type", config_key_type_name(key_type), "output_dir",
			 cc->output_dir ? cc->output_dir : "");
}

/* `ca: [a, b]`: the list ("cas"), and which of them issued the certificate
 * in use ("issued_by_ca", by its directory; null when none of them). */
static int cert_cas(json_t *o, const struct config *cfg, const struct config_cert *cc,
		    const struct state_job *st, int64_t not_after)
{
	json_t *cas = json_array();
	const char *by = NULL;

	for (size_t at = 0; cas && at < config_cert_nca(cc); at++) {
		const struct config_ca *ca = &cfg->cas[config_cert_ca_at(cc, at)];
		json_array_append_new(cas, json_string(ca->name));
		if (!by && not_after && st && st->issued_by && strcmp(st->issued_by, ca->directory) == 0)
			by = ca->name;
	}
	if (!cas || json_object_set_new(o, "cas", cas) < 0 ||
	    json_object_set_new(o, "issued_by_ca", jstr_or_null(by)) < 0)
		return -ENOMEM;
	return 0;
}

/* When the CA made this certificate wait (rateLimited, with its Retry-After or
 * the default hour): nothing is sent for it before then. 0: not waiting. */
static int64_t ca_wait_until(const struct state_job *st, int64_t now)
{
	if (!st || st->next_attempt <= now || !st->last_error_class ||
	    strcmp(st->last_error_class, acme_err_class_name(ACME_ERR_RATELIMIT)) != 0)
		return 0;
	return st->next_attempt;
}

/* A certificate nobody trusts: from a directory known as staging, or an
 * issuer whose name says so (Let's Encrypt staging "(STAGING) ...", "Fake LE",
 * Pebble, a test CA). */
int status_test_ca(const char *issued_by, const char *issuer)
{
	static const char *const words[] = { "staging", "fake le", "pebble", "test" };
	const struct ca_known *k = ca_known_find(issued_by);

	if (k && k->staging)
		return 1;
	for (size_t i = 0; issuer && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(issuer, words[i]))
			return 1;
	return 0;
}

/* Validity, issuer, state, next step and what state_dir remembers; takes nothing. */
static int cert_fill(json_t *o, int64_t now, int64_t not_before, int64_t not_after,
		     const char *issuer, const char *state, const char *action, int64_t next_at,
		     const struct state_job *st)
{
	const char *issued_by = st && not_after ? st->issued_by : NULL;
	json_t *ari = json_null();
	int64_t ca_wait = ca_wait_until(st, now);
	int rc = 0;

	if (ca_wait)
		next_at = ca_wait;

	if (st && st->ari_start && st->ari_end)
		ari = json_pack("{s:o, s:o, s:o}", "window_start", jtime(st->ari_start),
				"window_end", jtime(st->ari_end), "chosen", jtime(st->ari_chosen));
	rc |= json_object_set_new(o, "not_before", jtime(not_before));
	rc |= json_object_set_new(o, "not_after", jtime(not_after));
	rc |= json_object_set_new(o, "issuer", jstr_or_null(not_after ? issuer : NULL));
	rc |= json_object_set_new(o, "issued_by", jstr_or_null(issued_by));
	rc |= json_object_set_new(o, "test_ca", json_boolean(not_after &&
							     status_test_ca(issued_by, issuer)));
	rc |= json_object_set_new(o, "days_left", not_after ?
				  json_integer((json_int_t)floor_days(not_after - now)) : json_null());
	rc |= json_object_set_new(o, "state", json_string(state));
	rc |= json_object_set_new(o, "next_action", json_string(action));
	rc |= json_object_set_new(o, "next_at", jtime(next_at));
	rc |= json_object_set_new(o, "failures", json_integer(st ? st->failures : 0));
	rc |= json_object_set_new(o, "last_error", jstr_or_null(st ? st->last_error : NULL));
	rc |= json_object_set_new(o, "last_error_at", jtime(st ? st->last_error_at : 0));
	rc |= json_object_set_new(o, "order_url", jstr_or_null(st ? st->order_url : NULL));
	rc |= json_object_set_new(o, "ari", ari ? ari : json_null());
	rc |= json_object_set_new(o, "waiting_for_ca_until", jtime(ca_wait));
	rc |= json_object_set_new(o, "deploy_pending", json_boolean(st && st->deploy_pending));
	rc |= json_object_set_new(o, "deploy_error", jstr_or_null(st ? st->deploy_error : NULL));
	return rc ? -ENOMEM : 0;
}

static json_t *status_new(int daemon, int64_t now, json_t **cas, json_t **certs)
{
	json_t *o;

	*cas = json_array();
	*certs = json_array();
	o = json_pack("{s:b, s:o, s:o*, s:o*}", "daemon", daemon, "generated_at", jtime(now),
		      "cas", *cas, "certificates", *certs);
	return o;
}

json_t *status_from_sched(const struct config *cfg, const struct sched *s)
{
	int64_t now = clock_now();
	json_t *cas, *certs, *out = status_new(1, now, &cas, &certs);
	struct sched_ca_info ci;
	struct sched_job_info ji;
	size_t i, n;

	if (!out)
		return NULL;
	for (i = 0; i < cfg->ncas; i++) {
		memset(&ci, 0, sizeof(ci));
		if (sched_ca_info(s, i, &ci) < 0)
			continue;
		json_array_append_new(cas, json_pack("{s:s, s:s, s:o, s:I, s:I}", "name",
			ci.name ? ci.name : cfg->cas[i].name, "state", ci.up ? "up" : "down",
			"next_probe", jtime(ci.up ? 0 : ci.next_probe),
			"waiting", (json_int_t)ci.waiting, "running", (json_int_t)ci.running));
	}
	n = sched_job_count(s);
	for (i = 0; i < n; i++) {
		const char *action = "none";
		int64_t next_at = 0;
		json_t *o;

		memset(&ji, 0, sizeof(ji));
		if (sched_job_info(s, i, &ji) < 0 || !ji.cert)
			continue;
		switch (ji.phase) {
		case SCHED_VALID:
			action = "renew";
			next_at = ji.next_at;
			break;
		case SCHED_QUEUED:
		case SCHED_ORDERING:
			action = ji.not_after ? "renew" : "order";
			next_at = ji.next_at ? ji.next_at : now;
			break;
		case SCHED_BACKOFF:
			action = "retry";
			next_at = ji.next_at;
			break;
		case SCHED_CA_DOWN:
			action = "retry";
			next_at = ji.next_at;
			memset(&ci, 0, sizeof(ci));
			if (!next_at && sched_ca_info(s, ji.ca, &ci) == 0)
				next_at = ci.next_probe;
			break;
		case SCHED_STARTING:            /* not looked at yet: nothing is known */
		case SCHED_DONE:
		case SCHED_FAILED:
			break;
		}
		o = cert_base(cfg, ji.cert, ji.key_type);
		if (!o || cert_fill(o, now, ji.not_before, ji.not_after, ji.issuer,
				    sched_phase_name(ji.phase), action, next_at, ji.state) < 0 ||
		    cert_cas(o, cfg, ji.cert, ji.state, ji.not_after) < 0 ||
		    json_array_append_new(certs, o) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Same names (as sets) and key type as configured (or any type acmed makes
 * when key_type is not in the config: the certificate's is kept). */
static int cert_matches_config(const struct config_cert *cc, const struct crypto_cert_info *ci)
{
	return ci->key_type_known && (!cc->key_type_set || ci->key_type == cc->key_type) &&
	       names_same_set((const char *const *)cc->domains.v, cc->domains.n,
			      (const char *const *)ci->names, ci->nnames);
}

/* One certificate as the daemon would see it on start-up. */
static json_t *disk_cert(const struct config *cfg, const struct config_cert *cc, int64_t now)
{
	struct crypto_cert_info ci = { 0 };
	struct state_job st = { 0 };
	const char *state, *action;
	char *path = store_path(cc->output_dir, "fullchain.pem"), *pem = NULL;
	int64_t next_at, nb = 0, na = 0;
	size_t len = 0;
	json_t *o;
	int have = 0, rc;

	/* Only the certificate: status never needs to read the private key. */
	if (path && store_read_file(path, &pem, &len, STATUS_CERT_MAX) == 0 &&
	    crypto_cert_info_pem(pem, len, &ci) == 0) {
		have = 1;
		nb = ci.not_before;
		na = ci.not_after;
	}
	free(path);
	free(pem);
	rc = state_job_load(cfg->state_dir, cc->name, &st);
	if (rc < 0 && rc != -ENOENT)
		memset(&st, 0, sizeof(st));     /* damaged or unreadable: logged; show none */
	if (!have) {
		state = "missing";
		action = "order";
		next_at = now;
	} else if (!cert_matches_config(cc, &ci)) {
		state = "mismatch";
		action = "renew";
		next_at = now;
	} else if (na <= now) {
		state = "expired";
		action = "renew";
		next_at = now;
	} else {
		char *id = NULL;

		state = "valid";
		action = "renew";
		/* As the daemon decides (scheduler.c): the CA's ARI window for
		 * this very certificate when renew_before is not set, else the
		 * lifetime rule with the certificate's own spread. */
		if (st.ari_chosen && st.ari_start && st.ari_end && st.ari_cert_id && !cc->renew_before &&
		    ari_cert_id_info(&ci, &id) == 0 && id && strcmp(id, st.ari_cert_id) == 0)
			next_at = st.ari_chosen;
		else
			next_at = sched_lifetime_renewal(cc->name, nb, na, cc->renew_before);
		free(id);
	}
	if (st.order_url && strcmp(state, "valid") != 0)
		action = "order";               /* an order in flight is resumed on start */
	if (st.next_attempt > now) {
		state = "backoff";
		action = "retry";
		next_at = st.next_attempt;
	}
	if (next_at < now && strcmp(action, "renew") == 0 && strcmp(state, "valid") == 0)
		next_at = now;                  /* due: the daemon would renew at once */
	o = cert_base(cfg, cc, !cc->key_type_set && have && ci.key_type_known ? ci.key_type :
			  cc->key_type);
	if (o && (cert_fill(o, now, nb, na, ci.issuer, state, action, next_at, &st) < 0 ||
		  cert_cas(o, cfg, cc, &st, na) < 0)) {
		json_decref(o);
		o = NULL;
	}
	crypto_cert_info_clear(&ci);
	state_job_clear(&st);
	return o;
}

json_t *status_from_disk_at(const struct config *cfg, int64_t now)
{
	json_t *cas, *certs, *out = status_new(0, now, &cas, &certs), *o;
	size_t i, j;

	if (!out)
		return NULL;
	for (i = 0; i < cfg->ncerts; i++) {
		o = disk_cert(cfg, &cfg->certs[i], now);
		if (!o || json_array_append_new(certs, o) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	for (i = 0; i < cfg->ncas; i++) {
		struct state_ca sc = { 0 };
		int down = 0;
		unsigned waiting = 0;

		if (state_ca_load(cfg->state_dir, cfg->cas[i].name, &sc) == 0 && sc.down_since)
			down = 1;
		/* While it is down, everything due for it waits. */
		for (j = 0; down && j < cfg->ncerts; j++) {
			int64_t t = 0;
			if (config_cert_ca_pos(&cfg->certs[j], i) < 0)
				continue;
			const char *at = json_string_value(json_object_get(
				json_array_get(certs, j), "next_at"));
			if (at && timeparse_rfc3339(at, &t) == 0 && t <= now)
				waiting++;
		}
		o = json_pack("{s:s, s:s, s:o, s:I, s:I}", "name", cfg->cas[i].name, "state",
			      down ? "down" : "up", "next_probe", jtime(down ? sc.next_probe : 0),
			      "waiting", (json_int_t)waiting, "running", (json_int_t)0);
		state_ca_clear(&sc);
		if (!o || json_array_append_new(cas, o) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *status_from_disk(const struct config *cfg)
{
	return status_from_disk_at(cfg, clock_now());
}

/* ---- table ---- */

enum { COL_NAME, COL_DOMAINS, COL_NOT_AFTER, COL_DAYS, COL_ISSUER, COL_STATE, COL_NEXT, COL_ERROR,
       NCOLS };
static const char *const col_title[NCOLS] = {
	"NAME", "DOMAINS", "NOT AFTER", "DAYS", "ISSUER", "STATE", "NEXT", "LAST ERROR",
};

/* Printable ASCII only: names and errors may come from the network. */
static char *clean(const char *s)
{
	char *d = strdup(s ? s : "");

	for (char *p = d; p && *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return d;
}

static int64_t field_time(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t t = 0;

	if (!s || timeparse_rfc3339(s, &t) < 0)
		return 0;
	return t;
}

/* Local time; the time alone when it is the same day as now. */
static void local_when(char *buf, size_t len, int64_t t, int64_t now)
{
	time_t tt = (time_t)t, nt = (time_t)now;
	struct tm tm, tn;

	localtime_r(&tt, &tm);
	localtime_r(&nt, &tn);
	strftime(buf, len, tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year ?
		 "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
}

/* "now", "in 45s", "in 12m", "in 3h", "in 21d"; "5d ago" never: past is "now". */
static void relative(char *buf, size_t len, int64_t t, int64_t now)
{
	int64_t d = t - now;

	if (d <= 0)
		snprintf(buf, len, "now");
	else if (d < 60)
		snprintf(buf, len, "in %llds", (long long)d);
	else if (d < 3600)
		snprintf(buf, len, "in %lldm", (long long)(d / 60));
	else if (d < DAY)
		snprintf(buf, len, "in %lldh", (long long)(d / 3600));
	else
		snprintf(buf, len, "in %lldd", (long long)(d / DAY));
}

static const char *or_default(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

static void row_fill(char **row, const json_t *c, int64_t now)
{
	const json_t *domains = json_object_get(c, "domains"), *days = json_object_get(c, "days_left");
	const char *action = json_string_value(json_object_get(c, "next_action"));
	char buf[128], when[32];
	int64_t na = field_time(c, "not_after"), next = field_time(c, "next_at");
	int64_t ca_wait = field_time(c, "waiting_for_ca_until");
	size_t nd = json_array_size(domains);

	row[COL_NAME] = clean(json_string_value(json_object_get(c, "name")));
	if (nd > 1)
		snprintf(buf, sizeof(buf), "%.100s +%zu",
			 or_default(json_string_value(json_array_get(domains, 0)), "?"), nd - 1);
	else
		snprintf(buf, sizeof(buf), "%.100s",
			 nd ? or_default(json_string_value(json_array_get(domains, 0)), "?") : "-");
	row[COL_DOMAINS] = clean(buf);
	if (na) {
		time_t tt = (time_t)na;
		struct tm tm;
		localtime_r(&tt, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
	} else {
		snprintf(buf, sizeof(buf), "-");
	}
	row[COL_NOT_AFTER] = clean(buf);
	if (json_is_integer(days))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(days));
	else
		snprintf(buf, sizeof(buf), "-");
	row[COL_DAYS] = clean(buf);
	/* Who issued it, flagged when nobody trusts that CA (staging, Pebble);
	 * with `ca: [a, b]`, which of them. */
	const char *by = json_array_size(json_object_get(c, "cas")) > 1 ?
			 json_string_value(json_object_get(c, "issued_by_ca")) : NULL;
	snprintf(buf, sizeof(buf), "%.40s%s%s%.30s%s",
		 or_default(json_string_value(json_object_get(c, "issuer")), na ? "?" : "-"),
		 json_is_true(json_object_get(c, "test_ca")) ? " (TEST CA)" : "",
		 by ? " (from CA " : "", by ? by : "", by ? ")" : "");
	row[COL_ISSUER] = clean(buf);
	row[COL_STATE] = clean(json_string_value(json_object_get(c, "state")));
	if (ca_wait > now) {
		local_when(when, sizeof(when), ca_wait, now);
		snprintf(buf, sizeof(buf), "waiting for the CA until %s", when);
	} else if (!action || strcmp(action, "none") == 0) {
		snprintf(buf, sizeof(buf), "-");
	} else if (next) {
		relative(when, sizeof(when), next, now);
		snprintf(buf, sizeof(buf), "%.20s %s", action, when);
	} else {
		snprintf(buf, sizeof(buf), "%.20s", action);
	}
	row[COL_NEXT] = clean(buf);
	{
		const char *err = json_string_value(json_object_get(c, "last_error"));
		const char *dep = json_string_value(json_object_get(c, "deploy_error"));
		char both[512];

		if (dep)
			snprintf(both, sizeof(both), "%.200s%sdeploy failed: %.200s", err ? err : "",
				 err ? "; " : "", dep);
		row[COL_ERROR] = clean(dep ? both : or_default(err, "-"));
	}
}

static unsigned table_width(FILE *out)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");
	long n;

	if (isatty(fileno(out)) && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (cols && (n = strtol(cols, NULL, 10)) > 0 && n < 10000)
		return (unsigned)n;
	return 120;
}

void status_print_table(FILE *out, const json_t *status)
{
	status_print_table_width(out, status, table_width(out));
}

static void print_cas(FILE *out, const json_t *cas, int64_t now)
{
	const json_t *ca;
	size_t i;

	json_array_foreach(cas, i, ca) {
		char *name = clean(json_string_value(json_object_get(ca, "name")));
		const char *state = json_string_value(json_object_get(ca, "state"));
		long long waiting = json_integer_value(json_object_get(ca, "waiting"));
		long long running = json_integer_value(json_object_get(ca, "running"));
		int64_t probe = field_time(ca, "next_probe");

		if (state && strcmp(state, "down") == 0) {
			fprintf(out, "CA %s: DOWN", name ? name : "?");
			if (probe) {
				char buf[32];
				local_when(buf, sizeof(buf), probe, now);
				fprintf(out, ", next probe %s", buf);
			}
		} else {
			fprintf(out, "CA %s: up", name ? name : "?");
			if (running)
				fprintf(out, ", %lld running", running);
		}
		if (waiting)
			fprintf(out, ", %lld waiting", waiting);
		fputc('\n', out);
		free(name);
	}
}

void status_print_table_width(FILE *out, const json_t *status, unsigned width)
{
	const json_t *certs = json_object_get(status, "certificates"), *c;
	size_t n = json_array_size(certs), i, w[NCOLS], used = 0;
	int64_t now = field_time(status, "generated_at");
	char **rows;
	int col;

	if (!now)
		now = clock_now();
	if (!json_is_true(json_object_get(status, "daemon")))
		fprintf(out, "acmed is not running; from state_dir\n");
	rows = calloc((n + 1) * NCOLS, sizeof(*rows));
	if (!rows)
		return;
	for (col = 0; col < NCOLS; col++)
		rows[col] = strdup(col_title[col]);
	json_array_foreach(certs, i, c)
		row_fill(rows + (i + 1) * NCOLS, c, now);
	for (col = 0; col < NCOLS; col++) {
		w[col] = 0;
		for (i = 0; i <= n; i++) {
			const char *s = rows[i * NCOLS + col];
			if (s && strlen(s) > w[col])
				w[col] = strlen(s);
		}
		if (col < COL_ERROR)
			used += w[col] + 2;
	}
	/* The last error gets what is left of the line, at least 10 columns. */
	w[COL_ERROR] = width > used + 10 ? width - used : 10;
	for (i = 0; i <= n; i++) {
		char **r = rows + i * NCOLS;
		for (col = 0; col < COL_ERROR; col++)
			fprintf(out, "%-*s  ", (int)w[col], r[col] ? r[col] : "");
		if (r[COL_ERROR] && strlen(r[COL_ERROR]) > w[COL_ERROR])
			fprintf(out, "%.*s...\n", (int)w[COL_ERROR] - 3, r[COL_ERROR]);
		else
			fprintf(out, "%s\n", r[COL_ERROR] ? r[COL_ERROR] : "");
	}
	for (i = 0; i < (n + 1) * NCOLS; i++)
		free(rows[i]);
	free(rows);
	print_cas(out, json_object_get(status, "cas"), now);
}
