/* dns_records.c - the TXT records dns-01 published and has not removed: shared, withdrawn by the last user, written to state_dir (DB_DNS) before they are added so a crash leaves nothing behind for long. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "dns_provider.h"
#include "dns_records.h"
#include "log.h"

#define DB_NAME "records"

enum rstate {
	R_SAVING,               /* waiting to be on disk before it is added */
	R_ADDING,
	R_LIVE,
	R_REMOVING,
	R_ORPHAN,               /* left by an earlier run; its provider is not configured */
};

struct dns_record_ref {
	struct dns_record_ref *next;
	struct record *rec;
	dns_record_fn cb;       /* NULL once called */
	void *arg;
};

struct record {
	struct record *next;
	struct dns_records *rs;
	struct dns_prov *prov;          /* NULL for an orphan */
	char *prov_name, *zone, *fqdn, *value, *identifier, *cert_name;
	enum rstate state;
	unsigned long gen;              /* the save that must finish before it is added */
	struct dns_prov_op *op;
	struct dns_record_ref *refs;
	int failed;                     /* the add failed: gone once withdrawn */
	int maybe_added;                /* ... in a way that may have added it all the same */
	int stands_for;                 /* took over the same TXT from a record that went: withdrawn even if its add fails */
	int again;                      /* an orphan whose removal failed: tried again later */
};

struct dns_records {
	struct event_base *base;
	struct db *db;
	dns_records_find_fn find;
	dns_records_idle_fn idle;
	void *arg;
	struct record *list;
	int loaded;                     /* the earlier run's records are read */
	struct db_req *load_req;
	struct db_req *save_req;
	unsigned long gen, saved_gen, saving_gen;
	struct event *kick_ev;          /* shares told, unused records removed: from the loop */
	struct event *again_ev;         /* failed removals tried again, with backoff */
	int again_s;
};

static void record_free(struct record *r)
{
	free(r->prov_name);
	free(r->zone);
	free(r->fqdn);
	free(r->value);
	free(r->identifier);
	free(r->cert_name);
	free(r);
}

static void save(struct dns_records *rs);
static void start_add(struct record *r);
static void start_remove(struct record *r);
static void notify(struct record *r, enum acme_err_class err, const char *msg);

/* The same TXT in the same place: the same name and value, through one
 * provider or through two that change the same records (the one a reload
 * replaced and its successor, two entries for one server). An earlier run's
 * record whose provider is not looked up yet goes by the provider's name. */
static int same_rr(const struct record *a, const struct record *b)
{
	if (strcmp(a->fqdn, b->fqdn) || strcmp(a->value, b->value))
		return 0;
	if (a->prov && b->prov)
		return a->prov == b->prov || config_dns_provider_same_place(&a->prov->cfg, &b->prov->cfg);
	return strcmp(a->prov_name, b->prov_name) == 0;
}

/* A record in use or on its way (not failed) that is the same TXT as o:
 * withdrawing o would take it away too, so it stands for o instead. */
static struct record *successor(const struct record *o)
{
	for (struct record *r = o->rs->list; r; r = r->next)
		if (r != o && r->state <= R_LIVE && !r->failed && same_rr(r, o))
			return r;
	return NULL;
}

/* A withdrawal of the same TXT under way through another provider: an add
 * sent meanwhile could land first and be undone by it. */
static int behind_removal(const struct record *o)
{
	for (const struct record *r = o->rs->list; r; r = r->next)
		if (r != o && r->state == R_REMOVING && r->prov != o->prov && same_rr(r, o))
			return 1;
	return 0;
}

static void kick(struct dns_records *rs)
{
	struct timeval zero = { 0, 0 };

	if (!evtimer_pending(rs->kick_ev, NULL))
		evtimer_add(rs->kick_ev, &zero);
}

static void unlink_record(struct record *r);

/* Nobody wants a record not added yet: forgotten, or withdrawn when it took
 * over a TXT that is there. */
static void drop_unadded(struct record *r)
{
	if (r->stands_for)
		start_remove(r);
	else
		unlink_record(r);
}

/* A record whose add failed, nobody using it: withdrawn when the add may
 * have happened all the same, else simply forgotten. */
static void forget_failed(struct record *r)
{
	if (r->maybe_added)
		start_remove(r);
	else
		unlink_record(r);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_records *rs = arg;
	struct record *r, *next;

	(void)fd;
	(void)what;
	/* what nobody uses first: a TXT wanted again is handed over, not withdrawn and added */
	for (r = rs->list; r; r = next) {
		next = r->next;
		if (!r->refs && r->state == R_LIVE)
			start_remove(r);        /* R_ADDING: when added; R_REMOVING: under way */
		else if (!r->refs && r->state == R_SAVING)
			drop_unadded(r);
		else if (!r->refs && r->state == R_ADDING && r->failed && !r->op)
			forget_failed(r);       /* its last user let go after the callback */
	}
	for (r = rs->list; r; r = next) {
		next = r->next;
		if (r->state == R_SAVING && r->refs && rs->loaded && r->gen <= rs->saved_gen)
			start_add(r);
		else if (r->state == R_LIVE && r->refs)
			notify(r, ACME_ERR_NONE, NULL);
	}
}

static char *encode(const struct dns_records *rs, size_t *len)
{
	json_t *root = json_object(), *arr = json_array();
	char *s;

	json_object_set_new(root, "records", arr);
	for (const struct record *r = rs->list; r; r = r->next) {
		/* a record whose add failed with nothing to withdraw is not worth remembering */
		json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s, s:s?}", "provider", r->prov_name,
						     "zone", r->zone, "fqdn", r->fqdn, "value", r->value,
						     "identifier", r->identifier));
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	*len = s ? strlen(s) : 0;
	return s;
}

static void saved(void *arg, int rc)
{
	struct dns_records *rs = arg;
	struct record *r, *next;

	rs->save_req = NULL;
	if (rc < 0)
		log_warn(NULL, "dns-01: cannot remember the published DNS records in state_dir (%s); after a "
			 "crash they would stay", strerror(-rc));
	rs->saved_gen = rs->saving_gen;
	if (rs->gen > rs->saved_gen)
		save(rs);
	for (r = rs->list; r; r = next) {
		next = r->next;
		if (r->state == R_SAVING && r->gen <= rs->saved_gen)
			start_add(r);
	}
}

static void save(struct dns_records *rs)
{
	size_t len;
	char *data;

	if (!rs->loaded)
		return;                 /* the earlier run's records first: loaded() saves */
	if (!rs->db) {
		rs->saved_gen = rs->gen;
		return;
	}
	if (rs->save_req)
		return;                 /* saved again when this one is done */
	if (!(data = encode(rs, &len))) {
		log_error(NULL, "dns-01: out of memory");
		return;
	}
	rs->saving_gen = rs->gen;
	rs->save_req = db_put(rs->db, DB_DNS, DB_NAME, data, len, DB_DURABLE, saved, rs);
	free(data);
	if (!rs->save_req)
		rs->saved_gen = rs->gen;        /* logged by the store */
}

static void changed(struct dns_records *rs)
{
	rs->gen++;
	save(rs);
}

static void unlink_record(struct record *r)
{
	struct dns_records *rs = r->rs;
	struct dns_prov *p = r->prov;

	for (struct record **pp = &rs->list; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	record_free(r);
	changed(rs);
	if (p && dns_records_using(rs, p) == 0 && rs->idle)
		rs->idle(rs->arg, p);
}

static void notify(struct record *r, enum acme_err_class err, const char *msg)
{
	for (struct dns_record_ref *f = r->refs; f; f = f->next) {
		dns_record_fn cb = f->cb;

		if (!cb)
			continue;
		f->cb = NULL;
		/* a callback may release its ref (or others): start over after each */
		cb(f->arg, err, msg);
		notify(r, err, msg);
		return;
	}
}

/* A removal failed (logged): kept in state, tried again in a while (1 min,
 * doubling up to 1 h), at a reload, and at the next start. */
static void orphan(struct record *r)
{
	struct dns_records *rs = r->rs;
	struct dns_prov *p = r->prov;
	struct timeval tv = { rs->again_s, 0 };

	r->state = R_ORPHAN;
	r->prov = NULL;
	r->again = 1;
	if (!evtimer_pending(rs->again_ev, NULL))
		evtimer_add(rs->again_ev, &tv);
	if (p && dns_records_using(rs, p) == 0 && rs->idle)
		rs->idle(rs->arg, p);
}

static void again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_records *rs = arg;
	struct record *r, *next;

	(void)fd;
	(void)what;
	rs->again_s = rs->again_s * 2 > 3600 ? 3600 : rs->again_s * 2;
	for (r = rs->list; r; r = next) {
		next = r->next;
		if (r->state != R_ORPHAN || !r->again || !(r->prov = rs->find(rs->arg, r->prov_name)))
			continue;
		r->again = 0;
		log_info(r->cert_name, "dns-01: removing TXT %s at %s again", r->value, r->fqdn);
		start_remove(r);
	}
}

static void removed(void *arg, enum acme_err_class err, const char *msg)
{
	struct record *r = arg;

	r->op = NULL;
	kick(r->rs);                    /* an add of the same TXT waiting for this one goes */
	if (err != ACME_ERR_NONE) {
		log_warn(r->cert_name, "dns-01: could not remove TXT %s at %s: %s; trying again in %d s", r->value,
			 r->fqdn, msg, r->rs->again_s);
		orphan(r);
		return;
	}
	if (!r->rs->again_ev || !evtimer_pending(r->rs->again_ev, NULL))
		r->rs->again_s = 60;    /* nothing failing: the next failure starts over */
	log_debug(r->cert_name, "dns-01: removed TXT %s at %s", r->value, r->fqdn);
	unlink_record(r);
}

static void start_remove(struct record *r)
{
	struct dns_change_req rq = { .add = 0, .zone = r->zone, .fqdn = r->fqdn, .value = r->value,
				     .identifier = r->identifier, .cert_name = r->cert_name };
	struct record *succ = successor(r);

	if (succ) {
		/* the same TXT is wanted again: the newer record withdraws it in its time */
		log_info(r->cert_name, "dns-01: TXT %s at %s stays, published again through dns provider %s",
			 r->value, r->fqdn, succ->prov_name);
		succ->stands_for = 1;
		unlink_record(r);
		return;
	}
	r->state = R_REMOVING;
	if (!r->prov->ops->withdraws) {
		unlink_record(r);
		return;
	}
	if (!(r->op = r->prov->ops->change(r->prov, &rq, removed, r)))
		orphan(r);              /* logged by the provider */
}

static void added(void *arg, enum acme_err_class err, const char *msg)
{
	struct record *r = arg;

	r->op = NULL;
	if (err != ACME_ERR_NONE) {
		r->failed = 1;
		/* a refused UPDATE did nothing; an exec hook may have done half of it, and
		 * an answer lost or unreadable may hide a change made: withdrawn then */
		r->maybe_added = err != ACME_ERR_CERT || strcmp(r->prov->ops->type, "exec") == 0 || r->stands_for;
		notify(r, err, msg);
		if (!r->refs)
			forget_failed(r);
		return;
	}
	r->state = R_LIVE;
	log_debug(r->cert_name, "dns-01: published TXT %s at %s through dns provider %s", r->value, r->fqdn,
		  r->prov_name);
	if (!r->refs) {
		start_remove(r);        /* nobody wants it any more */
		return;
	}
	notify(r, ACME_ERR_NONE, NULL);
}

static void start_add(struct record *r)
{
	struct dns_change_req rq = { .add = 1, .zone = r->zone, .fqdn = r->fqdn, .value = r->value,
				     .identifier = r->identifier, .cert_name = r->cert_name };

	if (!r->refs) {
		drop_unadded(r);
		return;
	}
	if (behind_removal(r))
		return;                 /* still R_SAVING: kicked when that removal ends */
	r->state = R_ADDING;
	if (!(r->op = r->prov->ops->change(r->prov, &rq, added, r))) {
		r->failed = 1;
		r->maybe_added = r->stands_for;         /* nothing sent; the TXT it took over is there */
		notify(r, ACME_ERR_CERT, "the DNS provider cannot publish it (see the log)");
		if (!r->refs)
			forget_failed(r);
	}
}

static struct record *record_new(struct dns_records *rs, struct dns_prov *p, const char *prov_name, const char *zone,
				 const char *fqdn, const char *value, const char *identifier, const char *cert_name)
{
	struct record *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->rs = rs;
	r->prov = p;
	if (!(r->prov_name = strdup(prov_name)) || (zone && !(r->zone = strdup(zone))) || !(r->fqdn = strdup(fqdn)) ||
	    !(r->value = strdup(value)) || (identifier && !(r->identifier = strdup(identifier))) ||
	    (cert_name && !(r->cert_name = strdup(cert_name)))) {
		record_free(r);
		return NULL;
	}
	r->next = rs->list;
	rs->list = r;
	return r;
}

struct dns_record_ref *dns_records_publish(struct dns_records *rs, const struct dns_publish *pub, dns_record_fn cb,
					   void *arg)
{
	struct dns_record_ref *f = calloc(1, sizeof(*f));
	struct record *r;

	if (!f)
		return NULL;
	for (r = rs->list; r; r = r->next)
		if (r->prov == pub->prov && !r->failed && r->state <= R_LIVE && !strcmp(r->fqdn, pub->fqdn) &&
		    !strcmp(r->value, pub->value))
			break;
	if (!r) {
		r = record_new(rs, pub->prov, pub->prov->name, pub->zone, pub->fqdn, pub->value, pub->identifier,
			       pub->cert_name);
		if (!r) {
			free(f);
			return NULL;
		}
		r->state = R_SAVING;
		changed(rs);
		r->gen = rs->gen;
	}
	f->rec = r;
	f->cb = cb;
	f->arg = arg;
	f->next = r->refs;
	r->refs = f;
	if (r->state == R_LIVE)
		kick(rs);               /* shared: told from the loop like the others */
	else if (r->state == R_SAVING && rs->loaded && r->gen <= rs->saved_gen && !rs->save_req)
		kick(rs);
	return f;
}

void dns_records_release(struct dns_record_ref *f)
{
	struct record *r;

	if (!f)
		return;
	r = f->rec;
	for (struct dns_record_ref **pp = &r->refs; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	free(f);
	/* never freed here (a callback may be walking it): from the loop */
	if (!r->refs)
		kick(r->rs);
}

size_t dns_records_using(const struct dns_records *rs, const struct dns_prov *p)
{
	size_t n = 0;

	for (const struct record *r = rs->list; r; r = r->next)
		n += r->prov == p;
	return n;
}

int dns_records_retry_pending(const struct dns_records *rs)
{
	return evtimer_pending(rs->again_ev, NULL) != 0;
}

size_t dns_records_busy(const struct dns_records *rs)
{
	size_t n = 0;

	for (const struct record *r = rs->list; r; r = r->next)
		n += r->state != R_ORPHAN;
	return n + (rs->save_req != NULL);
}

size_t dns_records_count(const struct dns_records *rs)
{
	size_t n = 0;

	for (const struct record *r = rs->list; r; r = r->next)
		n++;
	return n;
}

/* An orphan whose provider is configured again: remove it. */
void dns_records_retry(struct dns_records *rs)
{
	struct record *r, *next, *succ;

	for (r = rs->list; r; r = next) {
		next = r->next;
		if (r->state != R_ORPHAN)
			continue;
		if ((succ = successor(r))) {
			succ->stands_for = 1;   /* the record published again withdraws it */
			unlink_record(r);
			continue;
		}
		if (!(r->prov = rs->find(rs->arg, r->prov_name))) {
			log_warn(NULL, "dns-01: TXT %s at %s was published by an earlier run through dns provider %s, "
				 "which is not configured now; remove it by hand", r->value, r->fqdn, r->prov_name);
			continue;
		}
		log_info(NULL, "dns-01: removing TXT %s at %s, left by an earlier run", r->value, r->fqdn);
		r->again = 0;
		start_remove(r);
	}
}

/* Records published before the earlier run's were read: saved (with those) now, then added. */
static void what_waited(struct dns_records *rs)
{
	for (struct record *r = rs->list; r; r = r->next)
		if (r->state == R_SAVING) {
			changed(rs);
			r->gen = rs->gen;
		}
	kick(rs);
}

static void loaded(void *arg, int rc, const char *data, size_t len)
{
	struct dns_records *rs = arg;
	json_t *root = NULL, *v;
	size_t i;

	rs->load_req = NULL;
	rs->loaded = 1;
	if (rc == 0 && !(root = json_loadb(data, len, 0, NULL)))
		log_warn(NULL, "dns-01: the record of published DNS records in state_dir is damaged; ignored");
	json_array_foreach(json_object_get(root, "records"), i, v) {
		const char *prov = json_string_value(json_object_get(v, "provider"));
		const char *fqdn = json_string_value(json_object_get(v, "fqdn"));
		const char *value = json_string_value(json_object_get(v, "value"));
		struct record *r;

		if (!prov || !fqdn || !value)
			continue;
		r = record_new(rs, NULL, prov, json_string_value(json_object_get(v, "zone")), fqdn, value,
			       json_string_value(json_object_get(v, "identifier")), NULL);
		if (r)
			r->state = R_ORPHAN;
	}
	json_decref(root);
	dns_records_retry(rs);
	what_waited(rs);
}

void dns_records_load(struct dns_records *rs)
{
	if (rs->db && (rs->load_req = db_get(rs->db, DB_DNS, DB_NAME, loaded, rs)))
		return;
	rs->loaded = 1;                 /* nothing to read (dry runs), or it cannot be (logged) */
	what_waited(rs);
}

struct dns_records *dns_records_new(struct event_base *base, struct db *db, dns_records_find_fn find,
				    dns_records_idle_fn idle, void *arg)
{
	struct dns_records *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	rs->base = base;
	rs->db = db;
	rs->find = find;
	rs->idle = idle;
	rs->arg = arg;
	rs->again_s = 60;
	if (!(rs->kick_ev = evtimer_new(base, kick_cb, rs)) || !(rs->again_ev = evtimer_new(base, again_cb, rs))) {
		if (rs->kick_ev)
			event_free(rs->kick_ev);
		free(rs);
		return NULL;
	}
	return rs;
}

void dns_records_free(struct dns_records *rs)
{
	struct record *r, *next;

	if (!rs)
		return;
	if (rs->db) {
		db_cancel(rs->db, rs->load_req);
		db_cancel(rs->db, rs->save_req);
	}
	for (r = rs->list; r; r = next) {
		next = r->next;
		if (r->op && r->prov)
			r->prov->ops->cancel(r->prov, r->op);
		while (r->refs) {
			struct dns_record_ref *f = r->refs;

			r->refs = f->next;
			f->rec = NULL;
			free(f);
		}
		record_free(r);
	}
	event_free(rs->kick_ev);
	event_free(rs->again_ev);
	free(rs);
}
