/* deploytest.h - what test_deploy.c and test_deploy_bus.c share: certificates built from string lists, a deployer on a loop, its results. */
#ifndef ACMED_DEPLOYTEST_H
#define ACMED_DEPLOYTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "childtest.h"
#include "config.h"
#include "deploy.h"

/* A config_cert built from string lists. */
struct tcert {
	struct config_cert c;
	char name[64], out[128];
	char *dom[3], *units[8], *argv[10];
};

static inline void tcert_init(struct tcert *t, const char *name, const char *const *units,
			      const char *const *argv)
{
	size_t n;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->out, sizeof(t->out), "/srv/certs/%s", name);
	t->dom[0] = (char *)"example.org";
	t->dom[1] = (char *)"www.example.org";
	t->c.name = t->name;
	t->c.output_dir = t->out;
	t->c.domains.v = t->dom;
	t->c.domains.n = 2;
	for (n = 0; units && units[n]; n++)
		t->units[n] = (char *)units[n];
	t->c.reload.v = t->units;
	t->c.reload.n = n;
	for (n = 0; argv && argv[n]; n++)
		t->argv[n] = (char *)argv[n];
	t->c.exec.v = t->argv;
	t->c.exec.n = n;
	t->c.challenge = (char *)"http-01";
}

struct result {
	char *name, *error;
	int ok;
};

/* A deployer on its own loop, and what it reported, in order. */
struct ctx {
	struct event_base *base;
	struct deploy *d;
	struct result res[64];
	size_t nres;
	int idle, free_in_result;
	struct tcert *again;    /* deployed from the first result callback */
};

static inline void on_result(const char *name, int ok, const char *error, void *arg)
{
	struct ctx *c = arg;

	assert_true(c->nres < 64);
	assert_true(ok ? error == NULL : error != NULL);
	c->res[c->nres].name = strdup(name);
	c->res[c->nres].error = error ? strdup(error) : NULL;
	c->res[c->nres].ok = ok;
	c->nres++;
	if (c->free_in_result) {
		deploy_free(c->d);
		c->d = NULL;
	}
	if (c->again) {
		struct tcert *t = c->again;

		c->again = NULL;
		assert_int_equal(deploy_certificate(c->d, &t->c), 0);
	}
}

static inline void on_idle(void *arg)
{
	struct ctx *c = arg;

	c->idle++;
}

static inline void ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	assert_non_null(c->base);
	c->d = deploy_new(c->base, on_result, c);
	assert_non_null(c->d);
	deploy_set_idle_cb(c->d, on_idle, c);
	deploy_set_batch_window_ms(c->d, 100);
}

static inline void ctx_done(struct ctx *c)
{
	deploy_free(c->d);
	for (size_t i = 0; i < c->nres; i++) {
		free(c->res[i].name);
		free(c->res[i].error);
	}
	event_base_free(c->base);
}

/* wait_until() predicates; a is the ctx */
static inline int is_idle(void *a, const void *b)
{
	return ((struct ctx *)a)->idle > 0;
}

static inline int has_results(void *a, const void *b)
{
	return ((struct ctx *)a)->nres >= *(const size_t *)b;
}

/* Until the deployer is idle (every result delivered). */
static inline void run(struct ctx *c)
{
	wait_until(c->base, is_idle, c, NULL);
}

static inline struct result *result_of(struct ctx *c, const char *name)
{
	struct result *r = NULL;

	for (size_t i = 0; i < c->nres; i++)
		if (strcmp(c->res[i].name, name) == 0) {
			assert_null(r);         /* one result per certificate */
			r = &c->res[i];
		}
	assert_non_null(r);
	return r;
}

#endif
