/* scheduler_fallback.c - `ca: [a, b, ...]`: which CA of a certificate's list an order goes to, and the move to the next when one cannot issue it. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "scheduler_internal.h"

/* rateLimited with a Retry-After longer than this (or none): the next CA of
 * the list rather than the wait. */
#define SCHED_FALLBACK_RATELIMIT_S 900

struct ca_slot *sched_job_slot(const struct job *j)
{
	return j->s->slots[config_cert_ca_at(j->cert, j->ca_at)];
}

struct ca_slot *sched_job_issuer_slot(const struct job *j)
{
	return j->s->slots[config_cert_ca_at(j->cert, j->issuer_at)];
}

const char *sched_job_ca_name(const struct job *j)
{
	return j->s->cfg->cas[config_cert_ca_at(j->cert, j->ca_at)].name;
}

/* A CA that is down and whose probe is not due, or is being made by
 * another order: an order queued there would only wait. */
static int slot_waits(const struct ca_slot *slot)
{
	return slot->st.down_since && (slot->probe || slot->st.next_probe > clock_now());
}

static int has_next(const struct job *j)
{
	return j->ca_at + 1 < config_cert_nca(j->cert);
}

/* To the next CA of the list: the order made at this one (if any) is its own. */
static void move_on(struct job *j)
{
	if (j->st.order_url) {
		sched_job_forget_order(j);
		sched_job_save(j);
	}
	j->ca_at++;
}

void sched_job_enqueue(struct job *j)
{
	/* Past the CAs that are down: the first of the list takes the order when
	 * it is up, or when its probe is due (this order is the probe, and a
	 * failure of it moves on at once). */
	struct ca_slot *slot;

	while (has_next(j) && slot_waits(sched_job_slot(j))) {
		const char *from = sched_job_ca_name(j);

		move_on(j);
		log_info(j->cert->name, "CA %s is unavailable; ordering at CA %s", from, sched_job_ca_name(j));
	}
	slot = sched_job_slot(j);
	/* --once: the last CA of the list is down past --timeout: said and given up now */
	if (j->s->once && config_cert_nca(j->cert) > 1 && slot->st.down_since &&
	    slot->st.next_probe > j->s->deadline) {
		log_error(j->cert->name, "every CA of its list is unavailable (CA %s until its probe at "
			  "%lld, past --timeout); giving up for this run", sched_job_ca_name(j),
			  (long long)slot->st.next_probe);
		j->s->give_up(j);
		return;
	}
	sched_ca_enqueue(slot, j);
}

int sched_job_falls_back(const struct job *j, const struct order_result *res)
{
	/* a challenge we could not put in place (DNS): the next CA would fail the
	 * same, and the order is kept to be finished */
	if (res->ok || !has_next(j) || res->resumable)
		return 0;
	switch (res->err) {
	case ACME_ERR_UNAVAILABLE:
	case ACME_ERR_CERT:
	case ACME_ERR_INPUT:
		return 1;
	case ACME_ERR_RATELIMIT:
		return res->retry_after < 0 || res->retry_after > SCHED_FALLBACK_RATELIMIT_S;
	default:
		return 0;
	}
}

void sched_job_fall_back(struct job *j, const struct order_result *res)
{
	const char *from = sched_job_ca_name(j);

	free(j->st.last_error);
	j->st.last_error = strdup(res->message);
	free(j->st.last_error_class);
	j->st.last_error_class = strdup(acme_err_class_name(res->err));
	j->st.last_error_at = clock_now();
	move_on(j);
	sched_job_save(j);
	log_warn(j->cert->name, "CA %s: %s (%s); ordering at CA %s now", from, res->message,
		 acme_err_class_name(res->err), sched_job_ca_name(j));
}

void sched_job_ca_restart(struct job *j)
{
	if (j->ca_at == 0)
		return;
	if (j->st.order_url) {          /* a rate-limited order at a later CA: not the first's */
		sched_job_forget_order(j);
		sched_job_save(j);
	}
	j->ca_at = 0;
}

void sched_ca_reroute(struct ca_slot *slot)
{
	struct job *j, *next;

	for (j = TAILQ_FIRST(&slot->queue); j; j = next) {
		next = TAILQ_NEXT(j, qlink);
		if (!has_next(j) || sched_job_slot(j) != slot)
			continue;
		TAILQ_REMOVE(&slot->queue, j, qlink);
		slot->nqueued--;
		move_on(j);
		log_info(j->cert->name, "CA %s is unavailable; ordering at CA %s",
			 slot->s->cfg->cas[slot->index].name, sched_job_ca_name(j));
		sched_job_enqueue(j);
	}
}

/* Where a CA's name and directory are in the job's list; -1 when not. */
static int pos_of(const struct job *j, const char *name, const char *directory)
{
	const struct config *cfg = j->s->cfg;

	for (size_t at = 0; at < config_cert_nca(j->cert); at++) {
		const struct config_ca *ca = &cfg->cas[config_cert_ca_at(j->cert, at)];
		if ((!name || strcmp(ca->name, name) == 0) && (!directory || strcmp(ca->directory, directory) == 0))
			return (int)at;
	}
	return -1;
}

int sched_job_order_pos(const struct job *j)
{
	if (!j->st.order_directory)
		return 0;
	return pos_of(j, j->st.order_ca, j->st.order_directory);
}

int sched_job_dir_pos(const struct job *j, const char *directory)
{
	return pos_of(j, NULL, directory);
}
