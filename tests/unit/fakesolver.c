/* fakesolver.c - a scripted http-01 solver for order and scheduler tests: records what it presents, fails on demand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakesolver.h"

struct challenge_answer {
	struct fake_solver *s;
	struct answer_rec *rec;
	struct event *ev;
	struct challenge_request rq;
};

static int fs_supports(struct challenge *c, const char *id_type, const char *identifier, int wildcard)
{
	struct fake_solver *s = c->impl;

	(void)identifier;
	return strcmp(id_type, "dns") == 0 && (!wildcard || s->wildcards);
}

static void fs_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct challenge_answer *a = arg;

	(void)fd;
	(void)what;
	a->rq.ready(a->rq.arg, a->s->fail, a->s->fail ? "the update was refused by ns1.test (REFUSED)" : NULL);
}

static int fs_present(struct challenge *c, const struct challenge_request *rq, struct challenge_answer **out)
{
	struct fake_solver *s = c->impl;
	struct challenge_answer *a = calloc(1, sizeof(*a));
	struct timeval zero = { 0, 0 };

	a->s = s;
	a->rq = *rq;
	/* A slot of its own: a new one while there are, else one withdrawn. */
	if (s->nrec < sizeof(s->rec) / sizeof(s->rec[0])) {
		a->rec = &s->rec[s->nrec++];
	} else {
		for (size_t i = 0; i < s->nrec && !a->rec; i++)
			if (!s->rec[i].live)
				a->rec = &s->rec[i];
		if (!a->rec) {
			free(a);
			return -ENOSPC;
		}
	}
	snprintf(a->rec->token, sizeof(a->rec->token), "%s", rq->token);
	snprintf(a->rec->keyauth, sizeof(a->rec->keyauth), "%s", rq->key_authorization);
	a->rec->live = 1;
	a->ev = evtimer_new(s->base, fs_ready_cb, a);
	evtimer_add(a->ev, &zero);
	s->presented++;
	*out = a;
	return 0;
}

static void fs_cleanup(struct challenge *c, struct challenge_answer *a)
{
	struct fake_solver *s = c->impl;

	a->rec->live = 0;
	s->cleaned++;
	event_free(a->ev);
	free(a);
}

static void fs_free(struct challenge *c)
{
	(void)c;
}

static const struct challenge_type fs_type = {
	.name = "http-01", .supports = fs_supports, .present = fs_present, .cleanup = fs_cleanup,
	.free = fs_free,
};

/* The CA's validator: valid when the solver has the token live with its key authorization. */
int fake_solver_check(void *arg, const char *identifier, const char *token)
{
	struct fake_solver *s = arg;

	(void)identifier;
	for (size_t i = 0; i < s->nrec; i++)
		if (s->rec[i].live && strcmp(s->rec[i].token, token) == 0 &&
		    strncmp(s->rec[i].keyauth, token, strlen(token)) == 0 &&
		    s->rec[i].keyauth[strlen(token)] == '.')
			return 1;
	return 0;
}

size_t fake_solver_live(const struct fake_solver *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nrec; i++)
		n += s->rec[i].live;
	return n;
}


void fake_solver_init(struct fake_solver *s, struct event_base *base)
{
	memset(s, 0, sizeof(*s));
	s->c.type = &fs_type;
	s->c.impl = s;
	s->base = base;
}
