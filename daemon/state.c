/* state.c - what acmed remembers per certificate and per CA across restarts (JSON files in state_dir). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <jansson.h>

#include "db_file.h"
#include "log.h"
#include "state.h"
#include "store.h"

#define STATE_MAX (1 << 20)

/* state_dir/<sub>/<name><suffix>, malloc'd. */
static char *state_file(const char *state_dir, const char *sub, const char *name,
			const char *suffix)
{
	char *dir = store_path(state_dir, sub), *file = NULL, *path = NULL;

	if (dir && asprintf(&file, "%s%s", name, suffix) >= 0)
		path = store_path(dir, file);
	free(dir);
	free(file);
	return path;
}


static char *dup_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

static int64_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* A counter: 0..1000000, anything else (damaged file) reads as 0. */
static int64_t get_count(json_t *o, const char *key)
{
	int64_t v = get_int(o, key);

	return v < 0 || v > 1000000 ? 0 : v;
}

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static void set_int(json_t *o, const char *key, int64_t v)
{
	if (v)
		json_object_set_new(o, key, json_integer((json_int_t)v));
}

void state_job_clear(struct state_job *st)
{
	free(st->last_error);
	free(st->last_error_class);
	free(st->order_url);
	free(st->order_directory);
	free(st->order_ca);
	free(st->deploy_error);
	free(st->issued_by);
	if (st->order_domains.v)
		for (size_t i = 0; i < st->order_domains.n; i++)
			free(st->order_domains.v[i]);
	free(st->order_domains.v);
	free(st->ari_cert_id);
	free(st->ari_explanation);
	free(st->ari_early_cert);
	free(st->revoked_cert);
	memset(st, 0, sizeof(*st));
}

/* A JSON object from bytes, or NULL (said as "<what> is damaged"). */
static json_t *parse_object(const char *data, size_t len, const char *what)
{
	json_t *o = json_loadb(data, len, 0, NULL);

	if (json_is_object(o))
		return o;
	json_decref(o);
	log_error(NULL, "%s is damaged (not a JSON object); starting afresh", what);
	return NULL;
}

int state_job_decode(const char *data, size_t len, const char *what, struct state_job *st)
{
	json_t *o, *doms, *ari, *d;
	size_t i;

	memset(st, 0, sizeof(*st));
	if (!(o = parse_object(data, len, what)))
		return -EINVAL;
	st->failures = (int)get_count(o, "failures");
	st->next_attempt = get_int(o, "next_attempt");
	st->last_error = dup_str(o, "last_error");
	st->last_error_class = dup_str(o, "last_error_class");
	st->last_error_at = get_int(o, "last_error_at");
	st->last_success = get_int(o, "last_success");
	st->ari_early_at = get_int(o, "ari_early_at");
	st->ari_early_cert = dup_str(o, "ari_early_cert");
	st->revoked_cert = dup_str(o, "revoked_cert");
	st->revoked_reason = (int)get_count(o, "revoked_reason");
	st->key_compromised = json_is_true(json_object_get(o, "key_compromised"));
	st->deploy_pending = json_is_true(json_object_get(o, "deploy_pending"));
	st->deploy_error = dup_str(o, "deploy_error");
	st->issued_kept = json_is_true(json_object_get(o, "issued_kept"));
	st->order_url = dup_str(o, "order_url");
	st->order_created = get_int(o, "order_created");
	st->order_directory = dup_str(o, "order_directory");
	st->order_ca = dup_str(o, "order_ca");
	st->issued_by = dup_str(o, "issued_by");
	if (config_key_type_parse(json_string_value(json_object_get(o, "order_key_type")) ?
				  json_string_value(json_object_get(o, "order_key_type")) : "",
				  &st->order_key_type) < 0)
		st->order_key_type = KEY_ECDSA_P256;
	doms = json_object_get(o, "order_domains");
	st->order_domains.v = calloc(json_array_size(doms) + 1, sizeof(char *));
	if (st->order_domains.v) {
		json_array_foreach(doms, i, d) {
			if (json_is_string(d))
				st->order_domains.v[st->order_domains.n++] = strdup(json_string_value(d));
		}
	}
	ari = json_object_get(o, "ari");
	if (json_is_object(ari)) {
		st->ari_cert_id = dup_str(ari, "cert_id");
		st->ari_start = get_int(ari, "start");
		st->ari_end = get_int(ari, "end");
		st->ari_chosen = get_int(ari, "chosen");
		st->ari_next_check = get_int(ari, "next_check");
		st->ari_explanation = dup_str(ari, "explanation_url");
	}
	json_decref(o);
	return 0;
}

/* The object's text, malloc'd, or NULL (ENOMEM). */
static char *dump(json_t *o, size_t *len)
{
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	*len = text ? strlen(text) : 0;
	json_decref(o);
	return text;
}

char *state_job_encode(const char *name, const struct state_job *st, size_t *len)
{
	json_t *o = json_object(), *ari;

	if (!o)
		return NULL;
	json_object_set_new(o, "name", json_string(name));
	set_int(o, "failures", st->failures);
	set_int(o, "next_attempt", st->next_attempt);
	set_str(o, "last_error", st->last_error);
	set_str(o, "last_error_class", st->last_error_class);
	set_int(o, "last_error_at", st->last_error_at);
	set_int(o, "last_success", st->last_success);
	set_int(o, "ari_early_at", st->ari_early_at);
	set_str(o, "ari_early_cert", st->ari_early_cert);
	set_str(o, "revoked_cert", st->revoked_cert);
	if (st->revoked_cert)
		set_int(o, "revoked_reason", st->revoked_reason);
	if (st->key_compromised)
		json_object_set_new(o, "key_compromised", json_true());
	if (st->deploy_pending)
		json_object_set_new(o, "deploy_pending", json_true());
	set_str(o, "deploy_error", st->deploy_error);
	if (st->issued_kept)
		json_object_set_new(o, "issued_kept", json_true());
	set_str(o, "order_directory", st->order_directory);
	set_str(o, "order_ca", st->order_ca);
	set_str(o, "issued_by", st->issued_by);
	if (st->order_url) {
		json_t *doms = json_array();
		set_str(o, "order_url", st->order_url);
		set_int(o, "order_created", st->order_created);
		json_object_set_new(o, "order_key_type",
				    json_string(config_key_type_name(st->order_key_type)));
		for (size_t i = 0; i < st->order_domains.n; i++)
			json_array_append_new(doms, json_string(st->order_domains.v[i]));
		json_object_set_new(o, "order_domains", doms);
	}
	if (st->ari_cert_id) {
		ari = json_object();
		set_str(ari, "cert_id", st->ari_cert_id);
		set_int(ari, "start", st->ari_start);
		set_int(ari, "end", st->ari_end);
		set_int(ari, "chosen", st->ari_chosen);
		set_int(ari, "next_check", st->ari_next_check);
		set_str(ari, "explanation_url", st->ari_explanation);
		json_object_set_new(o, "ari", ari);
	}
	return dump(o, len);
}

/* Read a record's file for the command-line tools (no daemon, no loop). */
static int load_record(const char *state_dir, enum db_kind kind, const char *name, char **data,
		       size_t *len, char **path)
{
	int rc;

	*data = NULL;
	*path = db_file_path(state_dir, kind, name);
	if (!*path)
		return -ENOMEM;
	rc = store_read_file(*path, data, len, STATE_MAX);
	if (rc < 0 && rc != -ENOENT)
		log_error(NULL, "cannot read %s: %s", *path, strerror(-rc));
	return rc;
}

static int save_record(const char *state_dir, enum db_kind kind, const char *name, char *text,
		       size_t len, int durable)
{
	char *path = db_file_path(state_dir, kind, name), *slash;
	int rc = text && path ? 0 : -ENOMEM;

	if (rc == 0 && (slash = strrchr(path, '/'))) {
		*slash = '\0';
		rc = store_mkdir_p(path, 0700);
		*slash = '/';
	}
	if (rc == 0)
		rc = durable ? store_write_atomic(path, text, len, 0600) :
			       store_write_replace(path, text, len, 0600);
	if (rc < 0)
		log_error(NULL, "cannot write %s: %s", path ? path : name, strerror(-rc));
	free(text);
	free(path);
	return rc;
}

int state_job_load(const char *state_dir, const char *name, struct state_job *st)
{
	char *data, *path;
	size_t len = 0;
	int rc = load_record(state_dir, DB_JOB, name, &data, &len, &path);

	memset(st, 0, sizeof(*st));
	if (rc == 0)
		rc = state_job_decode(data, len, path, st);
	free(data);
	free(path);
	return rc;
}

int state_job_save(const char *state_dir, const char *name, const struct state_job *st)
{
	size_t len = 0;
	char *text = state_job_encode(name, st, &len);

	return save_record(state_dir, DB_JOB, name, text, len, 1);
}

static int remove_file(const char *state_dir, const char *sub, const char *name,
		       const char *suffix)
{
	char *path = state_file(state_dir, sub, name, suffix);
	int rc = 0;

	if (!path)
		return -ENOMEM;
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		log_error(NULL, "cannot remove %s: %s", path, strerror(errno));
	}
	free(path);
	return rc;
}

int state_job_remove(const char *state_dir, const char *name)
{
	return remove_file(state_dir, "certs", name, ".json");
}


void state_ca_up(struct state_ca *st)
{
	free(st->last_error);
	st->last_error = NULL;
	st->down_since = 0;
	st->probe_failures = 0;
	st->next_probe = 0;
}

void state_ca_clear(struct state_ca *st)
{
	free(st->last_error);
	policy_orders_clear(&st->orders);
	memset(st, 0, sizeof(*st));
}

int state_ca_decode(const char *data, size_t len, const char *what, struct state_ca *st)
{
	json_t *o, *orders, *t;
	size_t i;

	memset(st, 0, sizeof(*st));
	if (!(o = parse_object(data, len, what)))
		return -EINVAL;
	st->down_since = get_int(o, "down_since");
	st->probe_failures = (int)get_count(o, "probe_failures");
	st->next_probe = get_int(o, "next_probe");
	st->last_error = dup_str(o, "last_error");
	orders = json_object_get(o, "orders");
	json_array_foreach(orders, i, t) {
		/* A damaged entry is skipped; the list is kept sorted by _add. */
		if (json_is_integer(t) && json_integer_value(t) > 0 &&
		    policy_orders_add(&st->orders, (int64_t)json_integer_value(t)) < 0)
			break;
	}
	json_decref(o);
	return 0;
}

char *state_ca_encode(const char *name, const struct state_ca *st, size_t *len)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "name", json_string(name));
	set_int(o, "down_since", st->down_since);
	set_int(o, "probe_failures", st->probe_failures);
	set_int(o, "next_probe", st->next_probe);
	set_str(o, "last_error", st->last_error);
	if (st->orders.n) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < st->orders.n; i++)
			json_array_append_new(a, json_integer((json_int_t)st->orders.times[i]));
		json_object_set_new(o, "orders", a);
	}
	return dump(o, len);
}

int state_ca_load(const char *state_dir, const char *name, struct state_ca *st)
{
	char *data, *path;
	size_t len = 0;
	int rc = load_record(state_dir, DB_CA, name, &data, &len, &path);

	memset(st, 0, sizeof(*st));
	if (rc == 0)
		rc = state_ca_decode(data, len, path, st);
	free(data);
	free(path);
	return rc;
}

int state_ca_save(const char *state_dir, const char *name, const struct state_ca *st, int durable)
{
	size_t len = 0;
	char *text = state_ca_encode(name, st, &len);

	return save_record(state_dir, DB_CA, name, text, len, durable);
}

/* ---------- the cached inspection of the live files ---------- */

#define STATE_LIVE_FILE "live.json"
#define STATE_LIVE_MAX (256u << 20)     /* 100 000 certificates with many names */
#define STATE_LIVE_NAMES_MAX 1000

struct state_live_set {
	json_t *o;                      /* name -> entry object; NULL when empty */
};

void state_live_clear(struct state_live *l)
{
	free(l->stamp);
	if (l->names.v)
		for (size_t i = 0; i < l->names.n; i++)
			free(l->names.v[i]);
	free(l->names.v);
	free(l->cert_id);
	free(l->issuer);
	memset(l, 0, sizeof(*l));
}

struct state_live_set *state_live_set_load(const char *state_dir)
{
	struct state_live_set *set = calloc(1, sizeof(*set));
	char *path = store_path(state_dir, STATE_LIVE_FILE), *data = NULL;
	size_t len = 0;

	if (!set || !path) {
		free(set);
		free(path);
		return NULL;
	}
	if (store_read_file(path, &data, &len, STATE_LIVE_MAX) == 0) {
		set->o = json_loadb(data, len, 0, NULL);
		if (!json_is_object(set->o)) {
			json_decref(set->o);
			set->o = NULL;
		}
	}
	free(data);
	free(path);
	return set;
}

void state_live_set_free(struct state_live_set *set)
{
	if (!set)
		return;
	json_decref(set->o);
	free(set);
}

int state_live_set_get(const struct state_live_set *set, const char *name, struct state_live *l)
{
	json_t *o = set && name ? json_object_get(set->o, name) : NULL, *names, *d;
	const char *kt;
	size_t i;

	memset(l, 0, sizeof(*l));
	if (!o)
		return -ENOENT;
	names = json_object_get(o, "names");
	kt = json_string_value(json_object_get(o, "key_type"));
	if (!json_is_object(o) || !json_is_array(names) || json_array_size(names) == 0 ||
	    json_array_size(names) > STATE_LIVE_NAMES_MAX)
		return -EINVAL;
	l->stamp = dup_str(o, "stamp");
	l->cert_id = dup_str(o, "cert_id");
	l->issuer = dup_str(o, "issuer");
	l->not_before = get_int(o, "not_before");
	l->not_after = get_int(o, "not_after");
	l->key_type_known = kt && config_key_type_parse(kt, &l->key_type) == 0;
	l->names.v = calloc(json_array_size(names) + 1, sizeof(char *));
	if (!l->stamp || !l->names.v || l->not_after == 0)
		goto bad;
	json_array_foreach(names, i, d) {
		if (!json_is_string(d) || !(l->names.v[l->names.n] = strdup(json_string_value(d))))
			goto bad;
		l->names.n++;
	}
	return 0;
bad:
	state_live_clear(l);
	return -EINVAL;
}

static json_t *live_entry(const struct state_live *l)
{
	json_t *o = json_object(), *names = json_array();

	if (!o || !names) {
		json_decref(o);
		json_decref(names);
		return NULL;
	}
	set_str(o, "stamp", l->stamp);
	set_int(o, "not_before", l->not_before);
	set_int(o, "not_after", l->not_after);
	if (l->key_type_known)
		set_str(o, "key_type", config_key_type_name(l->key_type));
	for (size_t i = 0; i < l->names.n; i++)
		json_array_append_new(names, json_string(l->names.v[i]));
	json_object_set_new(o, "names", names);
	set_str(o, "cert_id", l->cert_id);
	set_str(o, "issuer", l->issuer);
	return o;
}

/* One entry at a time into a growing buffer: a tree of 10 000 entries would
 * cost several times the file in small allocations the heap keeps. */
int state_live_save_all(const char *state_dir, const char *const *names,
			const struct state_live *const *lives, size_t n)
{
	char *path = store_path(state_dir, STATE_LIVE_FILE), *text = NULL;
	size_t len = 0, written = 0;
	FILE *f = path ? open_memstream(&text, &len) : NULL;
	int rc = -ENOMEM, bad = !f;

	if (f)
		bad |= fputc('{', f) == EOF;
	for (size_t i = 0; i < n && !bad; i++) {
		json_t *key, *e;

		if (!lives[i] || !lives[i]->stamp || !names[i])
			continue;
		key = json_string(names[i]);
		e = live_entry(lives[i]);
		bad = !key || !e || (written && fputc(',', f) == EOF) ||
		      json_dumpf(key, f, JSON_ENCODE_ANY) < 0 || fputc(':', f) == EOF ||
		      json_dumpf(e, f, JSON_COMPACT) < 0;
		written++;
		json_decref(key);
		json_decref(e);
	}
	if (f) {
		bad |= fputc('}', f) == EOF;
		bad |= fclose(f) != 0;
	}
	if (!bad)
		rc = store_write_replace(path, text, len, 0600);
	if (rc < 0)
		log_warn(NULL, "cannot write %s (a cache; acmed carries on): %s", path ? path : STATE_LIVE_FILE,
			 strerror(-rc));
	free(text);
	free(path);
	return rc;
}
