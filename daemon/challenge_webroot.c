/* challenge_webroot.c - the http-01 solver (challenge.h) for a web server that owns port 80: token files in its webroot, written and removed off the loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "challenge_webroot.h"
#include "log.h"
#include "store.h"
#include "worker.h"

#define WELL_KNOWN "/.well-known/acme-challenge"
#define TOKEN_MAX 256

struct webroot {
	struct challenge c;
	struct worker *io;
	char *dir;                      /* the web server's document root */
};

struct challenge_answer {
	struct webroot *w;
	char *token;
	struct worker_job *job;         /* the write, until it is done */
	challenge_ready_fn ready;
	void *arg;
};

/* What the worker thread touches: its own copies. */
struct webroot_file {
	char *root;                     /* <webroot> */
	char *dir;                      /* <webroot>/.well-known/acme-challenge */
	char *path;                     /* dir/<token> */
	char *content;                  /* the key authorization, or NULL to remove */
	int err;                        /* errno of the failed step */
	const char *step;               /* what failed, with dir or path */
	const char *what;
	struct challenge_answer *a;     /* the write's answer */
};

static void file_free(void *arg)
{
	struct webroot_file *f = arg;

	if (!f)
		return;
	free(f->root);
	free(f->dir);
	free(f->path);
	free(f->content);
	free(f);
}

/* The token names a file: only the base64url alphabet RFC 8555 8.3 allows,
 * so a CA (or anyone between) cannot make acmed write elsewhere. */
static int token_ok(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= TOKEN_MAX &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* Worker thread: the token file in place (0644: the web server reads it),
 * whole or not at all. */
static int file_write(void *arg)
{
	struct webroot_file *f = arg;
	struct stat st;
	int rc;

	/* The web server's root must be there: made by acmed, nobody would serve it. */
	if (stat(f->root, &st) < 0) {
		f->step = "webroot";
		f->what = f->root;
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		f->step = "webroot";
		f->what = f->root;
		return -ENOTDIR;
	}
	if ((rc = store_mkdir_p(f->dir, 0755)) < 0) {
		f->step = "cannot make the directory";
		f->what = f->dir;
		return rc;
	}
	rc = store_write_replace(f->path, f->content, strlen(f->content), 0644);
	if (rc < 0) {
		f->step = "cannot write";
		f->what = f->path;
	}
	return rc;
}

/* Worker thread: gone (already gone is fine). */
static int file_remove(void *arg)
{
	struct webroot_file *f = arg;

	if (unlink(f->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static void file_written(void *arg, int rc)
{
	struct webroot_file *f = arg;
	struct challenge_answer *a = f->a;
	char msg[600];

	a->job = NULL;
	if (rc < 0)
		snprintf(msg, sizeof(msg), "%s %s: %s", f->step ? f->step : "cannot write",
			 f->what ? f->what : f->path, strerror(-rc));
	file_free(f);
	/* a may be cleaned up from inside ready: not touched after it. */
	if (rc < 0)
		a->ready(a->arg, ACME_ERR_LOCAL, msg);
	else
		a->ready(a->arg, ACME_ERR_NONE, NULL);
}

static void file_removed(void *arg, int rc)
{
	struct webroot_file *f = arg;

	if (rc < 0)
		log_warn(NULL, "webroot: cannot remove %s: %s", f->path, strerror(-rc));
	file_free(f);
}

static struct webroot_file *file_new(const struct webroot *w, const char *token, const char *content)
{
	struct webroot_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->root = strdup(w->dir);
	if (asprintf(&f->dir, "%s" WELL_KNOWN, w->dir) < 0)
		f->dir = NULL;
	if (f->dir && asprintf(&f->path, "%s/%s", f->dir, token) < 0)
		f->path = NULL;
	f->content = content ? strdup(content) : NULL;
	if (!f->root || !f->dir || !f->path || (content && !f->content)) {
		file_free(f);
		return NULL;
	}
	return f;
}

static int webroot_supports(struct challenge *c, const char *id_type, const char *identifier,
			    int wildcard)
{
	(void)c;
	(void)identifier;
	return !wildcard && (strcmp(id_type, "dns") == 0 || strcmp(id_type, "ip") == 0);
}

static int webroot_present(struct challenge *c, const struct challenge_request *rq,
			   struct challenge_answer **out)
{
	struct webroot *w = c->impl;
	struct challenge_answer *a;
	struct webroot_file *f;

	*out = NULL;
	if (!token_ok(rq->token)) {
		log_error(rq->cert_name, "the CA's http-01 token for %s is not a file name (base64url "
			  "only); not writing it into %s", rq->identifier, w->dir);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	f = file_new(w, rq->token, rq->key_authorization);
	if (!a || !f || !(a->token = strdup(rq->token))) {
		log_error(rq->cert_name, "out of memory");
		file_free(f);
		free(a);
		return -ENOMEM;
	}
	a->w = w;
	a->ready = rq->ready;
	a->arg = rq->arg;
	f->a = a;
	log_debug(rq->cert_name, "writing the http-01 token for %s to %s", rq->identifier, f->path);
	a->job = worker_submit(w->io, file_write, file_written, file_free, f);
	if (!a->job) {
		log_error(rq->cert_name, "cannot queue the http-01 token file for %s", rq->identifier);
		file_free(f);
		free(a->token);
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

static void webroot_cleanup(struct challenge *c, struct challenge_answer *a)
{
	struct webroot *w = c->impl;
	struct webroot_file *f = file_new(w, a->token, NULL);

	/* A write not run yet never runs; one running ends before the removal
	 * (one thread, jobs in order): the file never stays behind. */
	worker_cancel(a->job);
	if (!f || !worker_submit(w->io, file_remove, file_removed, file_free, f)) {
		log_error(NULL, "webroot: cannot remove the http-01 token %s from %s" WELL_KNOWN
			  " (out of memory)", a->token, w->dir);
		file_free(f);
	}
	free(a->token);
	free(a);
}

static void webroot_free(struct challenge *c)
{
	struct webroot *w = c->impl;

	free(w->dir);
	free(w);
}

static const struct challenge_type webroot_type = {
	.name = "http-01",
	.supports = webroot_supports,
	.present = webroot_present,
	.cleanup = webroot_cleanup,
	.free = webroot_free,
};

struct challenge *challenge_webroot_new(struct worker *io, const char *dir)
{
	struct webroot *w = calloc(1, sizeof(*w));

	if (!w || !(w->dir = strdup(dir))) {
		free(w);
		return NULL;
	}
	w->c.type = &webroot_type;
	w->c.impl = w;
	w->io = io;
	return &w->c;
}
