/* challenge_persist.c - the dns-persist-01 solver: the admin publishes, once, a TXT record naming the CA and acmed's account; acmed says which, and tells the CA to look (no DNS credentials on the host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "challenge_persist.h"
#include "log.h"

struct persist {
	struct challenge c;
	struct event_base *base;
};

struct challenge_answer {
	char *record;                   /* what the CA looks for, as a zone file line */
	char *hint;                     /* said when the CA did not find it */
	struct event *ready_ev;
	challenge_ready_fn ready;
	void *arg;
};

char *challenge_persist_record(const char *identifier, const char *issuer, const char *account_uri,
			       int wildcard)
{
	char *r = NULL;

	if (asprintf(&r, "_validation-persist.%s. IN TXT \"%s; accounturi=%s%s\"", identifier, issuer, account_uri,
		     wildcard ? "; policy=wildcard" : "") < 0)
		return NULL;
	return r;
}

static int persist_supports(struct challenge *c, const char *id_type, const char *identifier, int wildcard)
{
	(void)c;
	(void)identifier;
	(void)wildcard;
	return strcmp(id_type, "dns") == 0;     /* names and wildcards; no addresses (RFC 8738 7) */
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct challenge_answer *a = arg;

	(void)fd;
	(void)what;
	a->ready(a->arg, ACME_ERR_NONE, NULL);  /* the record is the admin's: the CA may look now */
}

static int persist_present(struct challenge *c, const struct challenge_request *rq, struct challenge_answer **out)
{
	struct persist *s = c->impl;
	struct challenge_answer *a = calloc(1, sizeof(*a));
	struct timeval zero = { 0, 0 };

	*out = NULL;
	/* The CA's first issuer domain name: any of them would do, one record is enough. */
	if (a && rq->account_uri && rq->nissuers > 0 &&
	    /* one record serves a wildcard and its base: the base's says policy=wildcard too */
	    (a->record = challenge_persist_record(rq->identifier, rq->issuers[0], rq->account_uri,
						  rq->wildcard || rq->wildcard_too)) &&
	    asprintf(&a->hint, "publish this record (once; it serves every renewal): %s", a->record) < 0)
		a->hint = NULL;
	if (!a || !a->hint || !(a->ready_ev = evtimer_new(s->base, ready_cb, a))) {
		log_error(rq->cert_name, "dns-persist-01 for %s: out of memory", rq->identifier);
		if (a) {
			free(a->record);
			free(a->hint);
			free(a);
		}
		return -1;
	}
	a->ready = rq->ready;
	a->arg = rq->arg;
	log_info(rq->cert_name, "dns-persist-01: the CA looks for %s (published once, it serves every "
		 "renewal)", a->record);
	evtimer_add(a->ready_ev, &zero);
	*out = a;
	return 0;
}

static const char *persist_explain(struct challenge *c, struct challenge_answer *a)
{
	(void)c;
	return a->hint;
}

static void persist_cleanup(struct challenge *c, struct challenge_answer *a)
{
	(void)c;
	/* The record stays: it is the admin's, and the next renewal needs it. */
	event_free(a->ready_ev);
	free(a->record);
	free(a->hint);
	free(a);
}

static void persist_free(struct challenge *c)
{
	free(c->impl);
}

static const struct challenge_type persist_type = {
	.name = "dns-persist-01",
	.tokenless = 1,
	.explain = persist_explain,
	.supports = persist_supports,
	.present = persist_present,
	.cleanup = persist_cleanup,
	.free = persist_free,
};

struct challenge *challenge_persist_new(struct event_base *base)
{
	struct persist *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->c.type = &persist_type;
	s->c.impl = s;
	s->base = base;
	return &s->c;
}
