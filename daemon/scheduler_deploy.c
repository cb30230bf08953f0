/* scheduler_deploy.c - a new certificate handed to the deployer (observer event), its failures retried without ordering again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "scheduler_internal.h"
#include "timeparse.h"

/* Hand a freshly installed certificate to the deployer (reload units, exec). */
void sched_job_deploy(struct job *j)
{
	struct sched *s = j->s;

	struct sched_event ev = { .kind = SCHED_EV_INSTALLED, .cert = j->cert,
				  .ca = acme_client_name(sched_job_issuer_slot(j)->ca), .ok = 1,
				  .not_after = j->not_after };

	if (j->cert->reload.n == 0 && j->cert->exec.n == 0) {
		if (j->st.deploy_pending) {
			j->st.deploy_pending = 0;
			sched_job_save(j);
		}
		return;
	}
	if (!j->st.deploy_pending) {
		j->st.deploy_pending = 1;
		sched_job_save(j);
	}
	j->deploying = 1;
	sched_emit(s, &ev);
}

void sched_job_deploy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_job_deploy(arg);
}

void sched_deploy_done(struct sched *s, const char *name, int ok, const char *error)
{
	static const int64_t steps[] = { 60, 600, 6000 };
	char when[32];

	for (size_t i = 0; i < s->njobs; i++) {
		struct job *j = s->jobs[i];
		int64_t wait;
		struct timeval tv;

		struct sched_event ev = { .kind = SCHED_EV_DEPLOY_DONE, .ok = ok, .message = error };

		if (strcmp(j->cert->name, name) != 0 || !j->deploying)
			continue;
		j->deploying = 0;
		ev.cert = j->cert;
		ev.ca = acme_client_name(sched_job_issuer_slot(j)->ca);
		ev.err = ok ? ACME_ERR_NONE : ACME_ERR_LOCAL;
		ev.not_after = j->not_after;
		sched_emit(s, &ev);
		free(j->st.deploy_error);
		j->st.deploy_error = NULL;
		if (ok) {
			j->deploy_failures = 0;
			j->st.deploy_pending = 0;
			sched_job_save(j);
			return;
		}
		/* Kept for status (and status --check) until a deploy succeeds. */
		j->st.deploy_error = strdup(error ? error : "?");
		sched_job_save(j);
		j->deploy_failures++;
		if (s->once) {
			s->deploy_failed++;
			log_event(LOG_LVL_ERROR, name, LOG_ID_DEPLOY_FAILED, "deploying the new "
				  "certificate failed (%s); the next run tries again", error ? error : "?");
			return;
		}
		wait = j->deploy_failures <= 3 ? steps[j->deploy_failures - 1] : DAY;
		log_event(LOG_LVL_ERROR, name, LOG_ID_DEPLOY_FAILED, "deploying the new certificate failed "
			  "(%s); trying again at %s", error ? error : "?", timeparse_format(clock_now() + wait, when, sizeof(when)));
		tv.tv_sec = (time_t)wait;
		tv.tv_usec = 0;
		evtimer_add(j->deploy_timer, &tv);
		return;
	}
}

unsigned sched_deploy_failed_count(const struct sched *s)
{
	return s->deploy_failed;
}
