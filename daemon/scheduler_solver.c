/* scheduler_solver.c - which challenge solver answers for an identifier of a job: its webroot, or the solver its `challenge:` names. */
#include <string.h>

#include "challenge.h"
#include "scheduler_internal.h"

void sched_set_solvers(struct sched *s, struct challenge *const *solvers, size_t n)
{
	s->solvers = solvers;
	s->nsolvers = n;
}

/* challenge_pick_fn for a job: the solver its `challenge:` names, if it can
 * answer for this identifier. */
struct challenge *sched_job_pick(void *arg, const char *id_type, const char *identifier,
				  int wildcard, const char **why)
{
	struct job *j = arg;
	struct sched *s = j->s;

	/* webroot: the web server that owns port 80 serves the token files. */
	if (j->webroot && strcmp(j->cert->challenge, challenge_name(j->webroot)) == 0) {
		if (challenge_supports(j->webroot, id_type, identifier, wildcard))
			return j->webroot;
		*why = wildcard ? "a wildcard needs a DNS challenge (dns-01 or dns-persist-01)" : "the challenge cannot validate it";
		return NULL;
	}
	for (size_t i = 0; i < s->nsolvers; i++) {
		struct challenge *c = s->solvers[i];

		if (strcmp(challenge_name(c), j->cert->challenge) != 0)
			continue;
		if (challenge_supports(c, id_type, identifier, wildcard))
			return c;
		*why = wildcard ? "a wildcard needs a DNS challenge (dns-01 or dns-persist-01)" : "the challenge cannot validate it";
		return NULL;
	}
	*why = "acmed does not run that challenge type";
	return NULL;
}
