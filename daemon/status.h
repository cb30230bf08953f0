/* status.h - what `acmed status` shows: STATUS as JSON (from the scheduler or from disk) and as a table. */
#ifndef ACMED_STATUS_H
#define ACMED_STATUS_H

#include <stdio.h>
#include <jansson.h>

#include "config.h"

struct sched;

/*
 * STATUS (field names are a contract; scripts and tests read them):
 * {"daemon": true|false, "generated_at": RFC3339,
 *  "cas": [{"name", "state": "up"|"down", "next_probe": RFC3339|null, "waiting": N, "running": N}],
 *  "certificates": [{"name", "ca", "domains": [...], "key_type", "output_dir",
 *     "not_before": RFC3339|null, "not_after": RFC3339|null, "days_left": N|null,
 *     "issuer": the certificate's issuer CN|null, "issued_by": the directory URL of
 *              the CA that issued it (recorded by acmed)|null, "test_ca": true|false,
 *     "state": sched_phase_name() from the daemon; from disk "valid" | "missing" |
 *              "expired" | "mismatch" | "backoff",
 *     "next_action": "renew"|"retry"|"order"|"none", "next_at": RFC3339|null,
 *     "failures": N, "last_error": "..."|null, "last_error_at": RFC3339|null,
 *     "order_url": "..."|null,
 *     "ari": {"window_start", "window_end", "chosen"} | null,
 *     "waiting_for_ca_until": RFC3339|null,
 *     "deploy_pending": true while the new certificate's units/hook are not done,
 *     "deploy_error": why the last deploy failed (until one succeeds)|null}]}
 * Times are UTC, "YYYY-MM-DDTHH:MM:SSZ". days_left is floor((not_after - now) / 1 day).
 * waiting_for_ca_until: the CA asked acmed to wait (rateLimited, its Retry-After)
 * and nothing is sent for the certificate before then; next_at is that time too.
 * The table's NEXT then says "waiting for the CA until TIME".
 */

/* From the running daemon (sched_job_info / sched_ca_info). New reference or NULL. */
json_t *status_from_sched(const struct config *cfg, const struct sched *s);
/* Without a daemon: certificates in the output directories and state_dir. */
json_t *status_from_disk(const struct config *cfg);
/* The same, as of now (unix seconds); for tests. */
json_t *status_from_disk_at(const struct config *cfg, int64_t now);

/* `status --check`: one line in the monitoring-plugin convention on out, and
 * its exit code: OK; WARNING: a certificate failing (backoff, CA down), not
 * deployed, not matching the config, or not issued yet; CRITICAL: one without
 * a certificate after a failure, expired, or expiring within 7 days. */
enum { STATUS_CHECK_OK, STATUS_CHECK_WARNING, STATUS_CHECK_CRITICAL, STATUS_CHECK_UNKNOWN };
int status_check(FILE *out, const json_t *status);

/* 1: a certificate from a CA nobody trusts (issued_by a known staging
 * directory, or an issuer CN saying staging, Fake LE, Pebble or test). */
int status_test_ca(const char *issued_by, const char *issuer);

/* Aligned table: NAME DOMAINS "NOT AFTER" DAYS ISSUER STATE NEXT "LAST ERROR", then one
 * line per CA. Width: the terminal's, else $COLUMNS, else 120. */
void status_print_table(FILE *out, const json_t *status);
void status_print_table_width(FILE *out, const json_t *status, unsigned width);

/* "2025-01-02T03:04:05Z" into buf (at least 21 bytes). */
const char *status_rfc3339(int64_t t, char *buf, size_t len);

#endif
