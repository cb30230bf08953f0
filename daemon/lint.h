/* lint.h - what check-config says beyond the syntax: settings that parse but would misbehave. */
#ifndef ACMED_LINT_H
#define ACMED_LINT_H

#include <stdio.h>

#include "config.h"

/* Print each warning as "FILE:LINE:COL: warning: ..." to out; returns how
 * many. Reads the live certificates (no network). */
int lint_config(const struct config *cfg, FILE *out);

#endif
