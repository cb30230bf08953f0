/* challenge_http01.c - the http-01 solver (challenge.h) on top of the listener of challenge_http.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "challenge_http.h"
#include "challenge_http01.h"
#include "log.h"

struct http01 {
	struct challenge c;
	struct event_base *base;
	challenge_http01_listener_fn listener;
	void *listener_arg;
	struct challenge_http *h;       /* once opened */
};

struct challenge_answer {
	struct http01 *s;
	char *token;
	struct event *ready_ev;         /* says "ready" from a fresh loop iteration */
	challenge_ready_fn ready;
	challenge_seen_fn seen;
	void *arg;
};

static int http01_supports(struct challenge *c, const char *id_type, const char *identifier,
			   int wildcard)
{
	(void)c;
	(void)identifier;
	/* RFC 8555 8.3 and RFC 8738: names and addresses, never a wildcard. */
	return !wildcard && (strcmp(id_type, "dns") == 0 || strcmp(id_type, "ip") == 0);
}

static void http01_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct challenge_answer *a = arg;

	(void)fd;
	(void)what;
	/* Served from memory: in place as soon as it is added. */
	a->ready(a->arg, ACME_ERR_NONE, NULL);
}

static void http01_served(void *arg)
{
	struct challenge_answer *a = arg;

	if (a->seen)
		a->seen(a->arg);
}

static void answer_free(struct challenge_answer *a)
{
	if (a->ready_ev)
		event_free(a->ready_ev);
	free(a->token);
	free(a);
}

static int http01_present(struct challenge *c, const struct challenge_request *rq,
			  struct challenge_answer **out)
{
	struct http01 *s = c->impl;
	struct challenge_answer *a;
	struct timeval zero = { 0, 0 };

	*out = NULL;
	if (!s->h && s->listener)
		s->h = s->listener(s->listener_arg);
	if (!s->h) {
		log_error(rq->cert_name, "no http-01 listener to answer for %s", rq->identifier);
		return -ENOTCONN;
	}
	a = calloc(1, sizeof(*a));
	if (!a || !(a->token = strdup(rq->token)) ||
	    !(a->ready_ev = evtimer_new(s->base, http01_ready_cb, a))) {
		log_error(rq->cert_name, "out of memory");
		if (a)
			answer_free(a);
		return -ENOMEM;
	}
	a->s = s;
	a->ready = rq->ready;
	a->seen = rq->seen;
	a->arg = rq->arg;
	if (challenge_http_add(s->h, rq->token, rq->key_authorization) < 0) {
		log_error(rq->cert_name, "cannot serve the http-01 token for %s", rq->identifier);
		answer_free(a);
		return -ENOMEM;
	}
	challenge_http_on_served(s->h, rq->token, http01_served, a);
	log_debug(rq->cert_name, "serving the http-01 token for %s", rq->identifier);
	evtimer_add(a->ready_ev, &zero);
	*out = a;
	return 0;
}

static void http01_cleanup(struct challenge *c, struct challenge_answer *a)
{
	struct http01 *s = c->impl;

	if (s->h)
		challenge_http_remove(s->h, a->token);
	answer_free(a);
}

static void http01_free(struct challenge *c)
{
	free(c->impl);
}

static const struct challenge_type http01_type = {
	.name = "http-01",
	.supports = http01_supports,
	.present = http01_present,
	.cleanup = http01_cleanup,
	.free = http01_free,
};

struct challenge *challenge_http01_new(struct event_base *base,
				       challenge_http01_listener_fn listener, void *arg)
{
	struct http01 *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->c.type = &http01_type;
	s->c.impl = s;
	s->base = base;
	s->listener = listener;
	s->listener_arg = arg;
	return &s->c;
}
