/* fakesolver.h - a scripted http-01 solver for order and scheduler tests: records what it presents, fails on demand. */
#ifndef ACMED_TEST_FAKESOLVER_H
#define ACMED_TEST_FAKESOLVER_H

#include <stddef.h>
#include <event2/event.h>

#include "challenge.h"

struct answer_rec {
	char token[64];
	char keyauth[256];
	int live;
};

struct fake_solver {
	struct challenge c;
	struct event_base *base;
	int wildcards;                  /* supports "*." names */
	enum acme_err_class fail;       /* ready() with this error instead */
	struct answer_rec rec[256];
	size_t nrec;
	size_t presented, cleaned;
};

void fake_solver_init(struct fake_solver *s, struct event_base *base);
/* A fakeca_check_fn: valid when the solver has the token live with its key authorization. */
int fake_solver_check(void *arg, const char *identifier, const char *token);
/* Answers presented and not withdrawn. */
size_t fake_solver_live(const struct fake_solver *s);

#endif
