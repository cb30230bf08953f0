/* account_cmd.h - `acmed account show|rollover|deactivate`: the accounts as state_dir keeps them, and changed at the CA. */
#ifndef ACMED_ACCOUNT_CMD_H
#define ACMED_ACCOUNT_CMD_H

#include "acme.h"
#include "config.h"

/* Every CA's account, or ca_name's (2 when there is no such CA); secrets never printed. */
int account_cmd_show(const struct config *cfg, const char *ca_name);
/* action "rollover" (ca_name NULL: every CA's account) or "deactivate": through
 * the running daemon, else here. The exit status. */
int account_cmd_change(const struct config *cfg, const char *action, const char *ca_name);

/* The change on ca (account_change.c; the daemon's control op calls it too):
 * as acme_ca_rollover / acme_ca_deactivate; -EINVAL for another action. */
int account_change_start(struct acme_ca *ca, const char *action, acme_ca_done_fn cb, void *arg, char *err,
			 size_t errlen);

#endif
