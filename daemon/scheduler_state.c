/* scheduler_state.c - a job's state kept through the store (db.h): saved in call order, the order in flight forgotten. */
#include <stdlib.h>

#include "db.h"
#include "log.h"
#include "scheduler_internal.h"
#include "state.h"

/* Kept through the store (db.h), durably, in the order of the calls. */
void sched_job_save(struct job *j)
{
	size_t len = 0;
	char *text = state_job_encode(j->cert->name, &j->st, &len);

	if (!text || !db_put(j->s->db, DB_JOB, j->cert->name, text, len, DB_DURABLE, NULL, NULL))
		log_error(j->cert->name, "cannot save its state (out of memory)");
	free(text);
}

void sched_job_forget_order(struct job *j)
{
	if (!j->st.order_url)
		return;
	free(j->st.order_url);
	j->st.order_url = NULL;
	for (size_t i = 0; i < j->st.order_domains.n; i++)
		free(j->st.order_domains.v[i]);
	j->st.order_domains.n = 0;
	if (j->st.order_domains.v)
		j->st.order_domains.v[0] = NULL;
	db_del(j->s->db, DB_ORDER_KEY, j->cert->name, NULL, NULL);
}

