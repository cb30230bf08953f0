/* lint.h - what check-config says beyond the syntax: settings that parse but would misbehave. */
#ifndef ACMED_LINT_H
#define ACMED_LINT_H

#include <stdio.h>

#include "config.h"

/* Print each warning as "FILE:LINE:COL: warning: ..." to out; returns how
 * many. And each error ("...: error: ..."): a ca_bundle that cannot be read
 * or holds no certificate, an exec program that is not an absolute path to
 * an executable; *errors how many. Reads the live certificates and looks at
 * the files named (no network). */
int lint_config(const struct config *cfg, FILE *out, int *errors);

#endif
