/* account_cmd.h - `acmed account show [CA]`: the accounts as state_dir keeps them. */
#ifndef ACMED_ACCOUNT_CMD_H
#define ACMED_ACCOUNT_CMD_H

#include "config.h"

/* Every CA's account, or ca_name's (2 when there is no such CA); secrets never printed. */
int account_cmd_show(const struct config *cfg, const char *ca_name);

#endif
