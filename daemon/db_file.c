/* db_file.c - the embedded store: records as files under state_dir, written atomically on the I/O worker. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "db_file.h"
#include "log.h"
#include "store.h"
#include "worker.h"

#define DB_FILE_MAX (16u << 20)
#define DB_FILE_PAD 512

struct db_file {
	struct db db;
	char *state_dir;
	struct worker *io;
};

enum op { OP_GET, OP_PUT, OP_DEL };

struct db_req {
	struct worker_job *job;
	enum op op;
	char *path;
	unsigned flags;
	char *data;             /* put: what to write; get: what was read */
	size_t len;
	int json;               /* put: a JSON record, padded (DB_FILE_PAD) */
	db_got_fn got;
	db_done_fn done;
	void *arg;
};

static const struct {
	const char *dir;        /* under state_dir; "accounts" takes the name as a directory */
	const char *suffix;
	mode_t mode;
} layout[DB_NKINDS] = {
	[DB_ACCOUNT_KEY] = { "accounts", "/account.key", 0600 },
	[DB_ACCOUNT] = { "accounts", "/account.json", 0600 },
	[DB_JOB] = { "certs", ".json", 0600 },
	[DB_ORDER_KEY] = { "certs", ".order-key.pem", 0600 },
	[DB_CA] = { "cas", ".json", 0600 },
	[DB_ISSUED] = { "certs", ".issued.pem", 0600 },
	[DB_ACCOUNT_KEY_NEXT] = { "accounts", "/account.key.next", 0600 },
	[DB_DNS] = { "dns", ".json", 0600 },
};

char *db_file_path(const char *state_dir, enum db_kind kind, const char *name)
{
	char *path = NULL;

	if ((unsigned)kind >= DB_NKINDS || !name || !*name || strchr(name, '/') ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return NULL;
	if (asprintf(&path, "%s/%s/%s%s", state_dir, layout[kind].dir, name, layout[kind].suffix) < 0)
		return NULL;
	return path;
}

static void req_free(struct db_req *r)
{
	if (r->flags & DB_SECRET)
		crypto_free_secret(r->data, r->len);
	else
		free(r->data);
	free(r->path);
	free(r);
}

/* ---------- on the worker thread: only what the request holds ---------- */

static int parent_ready(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) || !(slash = strrchr(dir, '/')))
		return -ENAMETOOLONG;
	*slash = '\0';
	return store_mkdir_p(dir, 0700);
}

static int run(void *arg)
{
	struct db_req *r = arg;
	int rc;

	switch (r->op) {
	case OP_GET:
		return store_read_file(r->path, &r->data, &r->len, DB_FILE_MAX);
	case OP_PUT:
		rc = parent_ready(r->path);
		if (rc < 0)
			return rc;
		rc = (r->flags & DB_DURABLE) ? store_write_atomic(r->path, r->data, r->len, 0600) :
					       store_write_replace(r->path, r->data, r->len, 0600);
		/* A full disk must not make acmed forget its failures and backoff
		 * (a restart would then order at once): JSON records, written
		 * with room to spare, are overwritten where they are. */
		if ((rc == -ENOSPC || rc == -EDQUOT) && r->json &&
		    store_write_in_place(r->path, r->data, r->len, ' ') == 0)
			rc = 0;
		return rc;
	case OP_DEL:
		return unlink(r->path) < 0 && errno != ENOENT ? -errno : 0;
	}
	return -EINVAL;
}

/* ---------- on the loop ---------- */

static void deliver(void *arg, int rc)
{
	struct db_req *r = arg;

	if (rc < 0 && rc != -ENOENT)
		log_error(NULL, "cannot %s %s: %s", r->op == OP_GET ? "read" : r->op == OP_PUT ?
			  "write" : "remove", r->path, strerror(-rc));
	if (r->op == OP_GET && r->got)
		r->got(r->arg, rc, rc == 0 ? r->data : NULL, rc == 0 ? r->len : 0);
	else if (r->op != OP_GET && r->done)
		r->done(r->arg, rc);
	req_free(r);
}

static void drop(void *arg)
{
	req_free(arg);
}

static struct db_req *submit(struct db_file *f, enum op op, enum db_kind kind, const char *name,
			     struct db_req *r)
{
	if (!r)
		goto fail;
	r->op = op;
	r->path = db_file_path(f->state_dir, kind, name);
	if (!r->path) {
		log_error(name, "cannot keep a record named \"%s\" in %s", name ? name : "",
			  f->state_dir);
		req_free(r);
		return NULL;
	}
	r->job = worker_submit(f->io, run, deliver, drop, r);
	if (!r->job) {
		req_free(r);
		return NULL;
	}
	return r;
fail:
	log_error(name, "out of memory");
	return NULL;
}

static struct db_req *file_get(struct db *db, enum db_kind kind, const char *name, db_got_fn cb,
			       void *arg)
{
	struct db_req *r = calloc(1, sizeof(*r));

	if (r) {
		r->got = cb;
		r->arg = arg;
		r->flags = kind == DB_ACCOUNT_KEY || kind == DB_ORDER_KEY || kind == DB_ISSUED ||
			   kind == DB_ACCOUNT_KEY_NEXT ?
			   DB_SECRET : 0;
	}
	return submit((struct db_file *)db, OP_GET, kind, name, r);
}

static struct db_req *file_put(struct db *db, enum db_kind kind, const char *name,
			       const void *data, size_t len, unsigned flags, db_done_fn cb, void *arg)
{
	struct db_req *r = calloc(1, sizeof(*r));

	if (r) {
		/* JSON records end in spaces up to a multiple of DB_FILE_PAD, so a
		 * later one a little longer still fits in place (a full disk). */
		size_t size = len;

		r->json = kind == DB_JOB || kind == DB_CA || kind == DB_ACCOUNT;
		if (r->json)
			size = (len / DB_FILE_PAD + 1) * DB_FILE_PAD;
		r->done = cb;
		r->arg = arg;
		r->flags = flags;
		r->len = size;
		r->data = malloc(size ? size : 1);
		if (!r->data) {
			free(r);
			r = NULL;
		} else {
			memcpy(r->data, data, len);
			memset(r->data + len, ' ', size - len);
			if (r->json && size > len)
				r->data[size - 1] = '\n';
		}
	}
	return submit((struct db_file *)db, OP_PUT, kind, name, r);
}

static struct db_req *file_del(struct db *db, enum db_kind kind, const char *name, db_done_fn cb,
			       void *arg)
{
	struct db_req *r = calloc(1, sizeof(*r));

	if (r) {
		r->done = cb;
		r->arg = arg;
	}
	return submit((struct db_file *)db, OP_DEL, kind, name, r);
}

static void file_cancel(struct db *db, struct db_req *r)
{
	(void)db;
	worker_cancel(r->job);
}

static void file_free(struct db *db)
{
	struct db_file *f = (struct db_file *)db;

	free(f->state_dir);
	free(f);
}

static const struct db_ops file_ops = {
	.get = file_get, .put = file_put, .del = file_del, .cancel = file_cancel, .free = file_free,
};

struct db *db_file_new(const char *state_dir, struct worker *io)
{
	struct db_file *f = calloc(1, sizeof(*f));

	if (!f || !(f->state_dir = strdup(state_dir))) {
		free(f);
		return NULL;
	}
	f->db.ops = &file_ops;
	f->io = io;
	return &f->db;
}
