/* scheduler_ca.c - one queue per CA: max_parallel at a time, most urgent first, outages probed one order at a time, the ceiling on new orders. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "policy.h"
#include "scheduler_internal.h"
#include "state.h"
#include "timeparse.h"

/* The outage durably; the order times only atomically (a power cut may lose
 * the last ones, a write per order must stay cheap). */
static void ca_save(struct ca_slot *slot, int durable)
{
	const char *name = acme_client_name(slot->ca);
	size_t len = 0;
	char *text = state_ca_encode(name, &slot->st, &len);

	if (!text || !db_put(slot->s->db, DB_CA, name, text, len, durable ? DB_DURABLE : 0, NULL, NULL))
		log_error(NULL, "CA %s: cannot save its state (out of memory)", name);
	free(text);
}


/* ---------- outages ---------- */

void sched_slot_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ca_slot *slot = arg;
	int64_t now = clock_now();

	/* The timer says the probe's time has come, even when the wall clock reads
	 * a second less (libevent's cached time, a slewed clock): dispatch would
	 * otherwise wait for it, and nothing would wake it again. */
	if (slot->st.down_since && slot->st.next_probe > now)
		slot->st.next_probe = now;
	sched_ca_dispatch(slot);
}

static void slot_give_up_parked(struct ca_slot *slot, const char *why)
{
	struct sched *s = slot->s;
	struct job *j;

	while ((j = TAILQ_FIRST(&slot->queue))) {
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		s->give_up(j);
	}
	log_error(NULL, "CA %s: %s; giving up for this run", acme_client_name(slot->ca), why);
}

void sched_ca_mark_down(struct ca_slot *slot, int64_t retry_after, const char *message)
{
	struct sched *s = slot->s;
	char when[32];
	int64_t wait;
	struct timeval tv;
	int was_up = slot->st.down_since == 0;

	if (was_up) {
		slot->st.down_since = clock_now();
		slot->st.probe_failures = 0;
	}
	slot->st.probe_failures++;
	wait = policy_probe_delay(clock_now() - slot->st.down_since, retry_after,
				 crypto_random_u64());
	slot->st.next_probe = clock_now() + wait;
	free(slot->st.last_error);
	slot->st.last_error = strdup(message);
	ca_save(slot, 1);
	if (was_up) {
		struct sched_event ev = { .kind = SCHED_EV_CA_DOWN, .ca = acme_client_name(slot->ca),
					  .err = ACME_ERR_UNAVAILABLE, .message = message };
		sched_emit(s, &ev);
	}
	if (was_up)
		log_event(LOG_LVL_ERROR, NULL, LOG_ID_CA_DOWN,
			  "CA %s unavailable (%s); %u certificate%s waiting; next probe at %s",
			  acme_client_name(slot->ca), message, slot->nqueued + slot->running,
			  slot->nqueued + slot->running == 1 ? "" : "s",
			  timeparse_format(slot->st.next_probe, when, sizeof(when)));
	else
		log_info(NULL, "CA %s still unavailable (%s); %u waiting; next probe at %s",
			 acme_client_name(slot->ca), message, slot->nqueued + slot->running,
			 timeparse_format(slot->st.next_probe, when, sizeof(when)));
	if (s->once && slot->st.next_probe > s->deadline) {
		slot_give_up_parked(slot, "still unavailable when --timeout runs out");
		return;
	}
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = 0;
	evtimer_add(slot->probe_timer, &tv);
}

void sched_ca_mark_up(struct ca_slot *slot)
{
	if (slot->st.down_since == 0)
		return;
	log_event(LOG_LVL_INFO, NULL, LOG_ID_CA_UP, "CA %s is back; resuming %u certificate%s",
		  acme_client_name(slot->ca),
		 slot->nqueued, slot->nqueued == 1 ? "" : "s");
	state_ca_up(&slot->st);
	ca_save(slot, 1);
	evtimer_del(slot->probe_timer);
	struct sched_event ev = { .kind = SCHED_EV_CA_UP, .ca = acme_client_name(slot->ca) };
	sched_emit(slot->s, &ev);
}



/* Closest to expiry first; a certificate without one is most urgent. */
void sched_ca_enqueue(struct ca_slot *slot, struct job *j)
{
	struct job *it;

	TAILQ_FOREACH(it, &slot->queue, qlink)
		if (j->not_after < it->not_after)
			break;
	if (it)
		TAILQ_INSERT_BEFORE(it, j, qlink);
	else
		TAILQ_INSERT_TAIL(&slot->queue, j, qlink);
	slot->nqueued++;
	j->state = JOB_QUEUED;
	sched_ca_dispatch(slot);
}

/* A job back at the head of the queue (its CA did not answer). */
void sched_ca_park(struct ca_slot *slot, struct job *j)
{
	TAILQ_INSERT_HEAD(&slot->queue, j, qlink);
	slot->nqueued++;
	j->state = JOB_QUEUED;
}

/* ---------- the ceiling on new orders (policy.h) ---------- */

void sched_slot_ceiling_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_ca_dispatch(arg);
}

static int slot_orders_limit(const struct ca_slot *slot)
{
	return slot->s->cfg->cas[slot->index].orders_per_hour;
}

/* The first queued job that resumes an order (no new order needed). */
static struct job *slot_first_resume(struct ca_slot *slot)
{
	struct job *j;

	TAILQ_FOREACH(j, &slot->queue, qlink)
		if (j->st.order_url)
			return j;
	return NULL;
}

/* 1 when no new order may start now: the queued jobs that need one wait
 * (said once per episode), and a timer dispatches again when one may. */
static int slot_at_ceiling(struct ca_slot *slot)
{
	struct sched *s = slot->s;
	int64_t now = clock_now(), at = policy_orders_next_free(&slot->st.orders, now,
								 slot_orders_limit(slot));
	struct timeval tv = { 0, 0 };
	char when[32];

	slot->ceiling_until = at;
	if (!at) {
		slot->ceiling_said = 0;
		return 0;
	}
	if (!slot->ceiling_said) {
		slot->ceiling_said = 1;
		log_warn(NULL, "CA %s: %zu new orders in the last hour, the ceiling (orders_per_hour: %d); "
			 "%u certificate%s wait%s; next new order at %s", acme_client_name(slot->ca),
			 slot->st.orders.n, slot_orders_limit(slot), slot->nqueued,
			 slot->nqueued == 1 ? "" : "s", slot->nqueued == 1 ? "s" : "",
			 timeparse_format(at, when, sizeof(when)));
	}
	if (s->once && at > s->deadline) {
		struct job *j, *next;
		for (j = TAILQ_FIRST(&slot->queue); j; j = next) {
			next = TAILQ_NEXT(j, qlink);
			if (j->st.order_url)
				continue;
			TAILQ_REMOVE(&slot->queue, j, qlink);
			slot->nqueued--;
			log_error(j->cert->name, "not ordered: CA %s reached its ceiling of %d new orders "
				  "an hour, and the next one may start only after --timeout; giving up "
				  "for this run", acme_client_name(slot->ca), slot_orders_limit(slot));
			s->give_up(j);
		}
		return 1;
	}
	tv.tv_sec = (time_t)(at - now);
	evtimer_add(slot->ceiling_timer, &tv);
	return 1;
}

/* A new order is about to start: counted (and kept in state_dir) for the ceiling. */
static void slot_count_order(struct ca_slot *slot)
{
	if (policy_orders_add(&slot->st.orders, clock_now()) == 0)
		ca_save(slot, 0);
}

/* The next job to start: the most urgent, unless it needs a new order and
 * the ceiling is reached (then the first that resumes one, if any). Taken
 * off the queue, its new order counted. */
static struct job *slot_take(struct ca_slot *slot)
{
	struct job *j = TAILQ_FIRST(&slot->queue);

	if (j && !j->st.order_url && slot_at_ceiling(slot))
		j = slot_first_resume(slot);
	if (!j)
		return NULL;
	TAILQ_REMOVE(&slot->queue, j, qlink);
	slot->nqueued--;
	if (!j->st.order_url)
		slot_count_order(slot);
	return j;
}

void sched_ca_dispatch(struct ca_slot *slot)
{
	struct sched *s = slot->s;
	struct job *j;

	if (slot->st.down_since) {
		/* One probe at a time, when its time has come. */
		if (slot->probe || slot->st.next_probe > clock_now() || !(j = slot_take(slot)))
			return;
		slot->probe = j;
		log_info(j->cert->name, "probing CA %s", acme_client_name(slot->ca));
		s->start(slot, j);
		return;
	}
	while (slot->running < slot->max_parallel && (j = slot_take(slot))) {
		s->start(slot, j);
		if (slot->st.down_since)
			return;
	}
}

