/* deploy.h - after a new certificate: run exec hooks, then reload systemd units over D-Bus (batched). */
#ifndef ACMED_DEPLOY_H
#define ACMED_DEPLOY_H

#include <event2/event.h>

#include "config.h"

struct deploy;

/* All batches and hooks finished (called once each time the deployer becomes idle). */
typedef void (*deploy_idle_fn)(void *arg);
/* Per certificate, once its units and its hook are done. error is NULL when ok,
 * otherwise a one-line reason (already logged); valid during the call only. */
typedef void (*deploy_result_fn)(const char *cert_name, int ok, const char *error, void *arg);

/*
 * Every callback is delivered from its own event on base, never from inside
 * deploy_certificate(). result_cb may call deploy_certificate() and even
 * deploy_free() (further results are then dropped). idle_cb may do the same.
 *
 * Hooks run through exec.c (see exec.h: reaped on base through a pidfd or
 * SIGCHLD, with waitpid on their own pids only, so nobody else in the process
 * may reap with waitpid(-1, ...) or set SIGCHLD to SIG_IGN).
 */
struct deploy *deploy_new(struct event_base *base, deploy_result_fn result_cb, void *arg);
/* Kills running hooks (SIGKILL to their process groups, reaped at once), drops
 * the bus connection; no callbacks. */
void deploy_free(struct deploy *d);

/* A new certificate for cert was installed: run its exec hook (a hook that
 * copies files for a service must be done before that service reloads), then
 * reload its units, batched with the other certificates of the batch window
 * once all their hooks ended (a failed hook still reloads the units: they may
 * read output_dir itself). Copies what it needs from cert. A second call for the same certificate
 * name while it still waits in the batch window replaces the first (one
 * result). 0 or -ENOMEM. */
int deploy_certificate(struct deploy *d, const struct config_cert *cert);
/* Non-zero while anything is pending: batch window, unit jobs, hooks, results. */
int deploy_busy(const struct deploy *d);
void deploy_set_idle_cb(struct deploy *d, deploy_idle_fn cb, void *arg);

/* Certificates with units are collected for ms (default 2000) after the last
 * deploy_certificate, at most 60 s after the first one of the batch; then their
 * hooks run, and each unit is reloaded once. */
void deploy_set_batch_window_ms(struct deploy *d, long ms);
/* A hook running longer gets SIGTERM, then SIGKILL 5 s later (default 60000). */
void deploy_set_exec_timeout_ms(struct deploy *d, long ms);
/* How long to wait for systemd's answer and job per unit (default 90000). */
void deploy_set_unit_timeout_ms(struct deploy *d, long ms);
/* 0: reap hooks through SIGCHLD even when pidfds work (tests); default 1. */
void deploy_set_use_pidfd(struct deploy *d, int on);

#endif
