/* db.h - where acmed keeps what it must not forget (accounts, job state, orders, CA state, issued certificates): an interface whose calls complete later. */
#ifndef ACMED_DB_H
#define ACMED_DB_H

#include <stddef.h>

/* What a record is; a record is (kind, name) -> bytes. name is a
 * certificate's or a CA's name ([A-Za-z0-9._-], never "." or ".."). */
enum db_kind {
	DB_ACCOUNT_KEY,         /* a CA's account key (PEM, a secret) */
	DB_ACCOUNT,             /* a CA's account: directory and URL (JSON) */
	DB_JOB,                 /* a certificate's job state (JSON, state.h) */
	DB_ORDER_KEY,           /* the key of a certificate's order in flight (PEM, a secret) */
	DB_CA,                  /* a CA's outage and order times (JSON, state.h) */
	DB_ISSUED,              /* an issued certificate and its key not installed yet (PEM, a secret) */
	DB_ACCOUNT_KEY_NEXT,    /* a CA's next account key during a key rollover (PEM, a secret) */
	DB_DNS,                 /* dns-01's published TXT records not removed yet (JSON) */
	DB_NKINDS,
};

#define DB_DURABLE 1u           /* on stable storage before done (else only atomic) */
#define DB_SECRET  2u           /* readable by acmed alone; wiped from memory after use */

struct db;
struct db_req;

/* rc 0 with the record (data valid during the call), -ENOENT when there is
 * none, another negative errno when it cannot be read (logged). */
typedef void (*db_got_fn)(void *arg, int rc, const char *data, size_t len);
typedef void (*db_done_fn)(void *arg, int rc);

struct db_ops {
	struct db_req *(*get)(struct db *db, enum db_kind kind, const char *name, db_got_fn cb,
			      void *arg);
	struct db_req *(*put)(struct db *db, enum db_kind kind, const char *name, const void *data,
			      size_t len, unsigned flags, db_done_fn cb, void *arg);
	struct db_req *(*del)(struct db *db, enum db_kind kind, const char *name, db_done_fn cb,
			      void *arg);
	void (*cancel)(struct db *db, struct db_req *req);
	void (*free)(struct db *db);
};

/* A backend: the file store (db_file.c) is the embedded default. Calls are
 * answered in the order they were made (a get after a put sees it), on the
 * loop, never from inside the call. cb may be NULL for put and del (fire
 * and forget: a failure is logged). NULL req: could not start (logged; cb
 * will not run). */
struct db {
	const struct db_ops *ops;
};

static inline struct db_req *db_get(struct db *db, enum db_kind kind, const char *name,
				    db_got_fn cb, void *arg)
{
	return db->ops->get(db, kind, name, cb, arg);
}

static inline struct db_req *db_put(struct db *db, enum db_kind kind, const char *name,
				    const void *data, size_t len, unsigned flags, db_done_fn cb,
				    void *arg)
{
	return db->ops->put(db, kind, name, data, len, flags, cb, arg);
}

static inline struct db_req *db_del(struct db *db, enum db_kind kind, const char *name,
				    db_done_fn cb, void *arg)
{
	return db->ops->del(db, kind, name, cb, arg);
}

/* cb will not run; a write under way still completes. NULL req ok. */
static inline void db_cancel(struct db *db, struct db_req *req)
{
	if (req)
		db->ops->cancel(db, req);
}

static inline void db_free(struct db *db)
{
	if (db)
		db->ops->free(db);
}

#endif
