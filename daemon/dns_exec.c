/* dns_exec.c - the exec DNS provider: lego's contract, COMMAND present|cleanup FQDN VALUE (argv, no shell), one run at a time in the order asked, with a timeout, output to the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_provider.h"
#include "dns_queue.h"
#include "exec.h"
#include "log.h"

struct dnsexec {
	struct dns_prov p;
	struct event_base *base;
	struct dns_prov_op *head, **tail;
	struct dns_prov_op *running;
	struct exec *ex;
	struct event *start_ev;
};

static void run_next(evutil_socket_t fd, short what, void *arg);

static void kick(struct dnsexec *x)
{
	struct timeval zero = { 0, 0 };

	if (!x->running && x->head && !evtimer_pending(x->start_ev, NULL))
		evtimer_add(x->start_ev, &zero);
}

static void finished(struct exec *e, const struct exec_result *r, void *arg)
{
	struct dnsexec *x = arg;
	struct dns_prov_op *op = x->running;
	enum acme_err_class err = r->ok ? ACME_ERR_NONE :
				  r->end == EXEC_TIMED_OUT ? ACME_ERR_UNAVAILABLE :
				  r->end == EXEC_SPAWN_FAILED || r->end == EXEC_LOST ? ACME_ERR_LOCAL : ACME_ERR_CERT;
	char msg[600];

	exec_free(e);
	x->ex = NULL;
	x->running = NULL;
	snprintf(msg, sizeof(msg), "dns provider %s: %s %s %s: %s", x->p.name, op->add ? "present" : "cleanup",
		 op->fqdn, op->value, r->message);
	if (!r->ok)
		log_debug(op->cert_name, "%s", msg);    /* said once, by whoever asked (the order, the removal) */
	kick(x);
	if (!op->canceled)
		op->done(op->arg, err, r->ok ? NULL : msg);
	dns_queue_op_free(op);
}

static void run_next(evutil_socket_t fd, short what, void *arg)
{
	struct dnsexec *x = arg;
	struct dns_prov_op *op = x->head;
	const struct config_strv *cmd = &x->p.cfg.command;
	const char *argv[cmd->n + 4];
	struct exec_opts o = { .argv = argv, .label = x->p.name, .timeout_ms = x->p.cfg.timeout * 1000 };

	(void)fd;
	(void)what;
	if (x->running || !op)
		return;
	if (!(x->head = op->next))
		x->tail = &x->head;
	op->next = NULL;
	for (size_t i = 0; i < cmd->n; i++)
		argv[i] = cmd->v[i];
	argv[cmd->n] = op->add ? "present" : "cleanup";
	argv[cmd->n + 1] = op->fqdn;
	argv[cmd->n + 2] = op->value;
	argv[cmd->n + 3] = NULL;
	o.log_cert = op->cert_name;
	x->running = op;
	if (exec_start(x->base, &o, finished, x, &x->ex) < 0) {
		x->running = NULL;
		log_error(op->cert_name, "dns provider %s: cannot start %s (out of memory)", x->p.name, cmd->v[0]);
		kick(x);        /* before the callback: it may free this provider */
		if (!op->canceled)
			op->done(op->arg, ACME_ERR_LOCAL, "cannot start the DNS hook (out of memory)");
		dns_queue_op_free(op);
	}
}

static struct dns_prov_op *exec_change(struct dns_prov *p, const struct dns_change_req *rq, dns_prov_done_fn done,
				       void *arg)
{
	struct dnsexec *x = (struct dnsexec *)p;
	struct dns_prov_op *op = dns_queue_op_new(p, rq, done, arg);

	if (!op)
		return NULL;
	*x->tail = op;
	x->tail = &op->next;
	kick(x);
	return op;
}

static void exec_cancel_op(struct dns_prov *p, struct dns_prov_op *op)
{
	(void)p;
	op->canceled = 1;       /* runs anyway, in its turn: a cleanup must not overtake it */
}

static void exec_prov_free(struct dns_prov *p)
{
	struct dnsexec *x = (struct dnsexec *)p;
	struct dns_prov_op *op, *next;

	exec_free(x->ex);
	if (x->running)
		dns_queue_op_free(x->running);
	for (op = x->head; op; op = next) {
		next = op->next;
		dns_queue_op_free(op);
	}
	event_free(x->start_ev);
	free(x);
}

static const struct dns_prov_ops exec_ops = {
	.type = "exec",
	.withdraws = 1,
	.change = exec_change,
	.cancel = exec_cancel_op,
	.free = exec_prov_free,
};

struct dns_prov *dns_exec_new(struct event_base *base)
{
	struct dnsexec *x = calloc(1, sizeof(*x));

	if (!x || !(x->start_ev = evtimer_new(base, run_next, x))) {
		free(x);
		return NULL;
	}
	x->p.ops = &exec_ops;
	x->base = base;
	x->tail = &x->head;
	return &x->p;
}
