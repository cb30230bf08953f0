/* names.h - sets of names (a certificate's domains): comparison independent of order. */
#ifndef ACMED_NAMES_H
#define ACMED_NAMES_H

#include <stddef.h>

/* 1 when a[0..na) and b[0..nb) hold the same names (exact, any order; each
 * list without duplicates, as the config and certificates give them). */
int names_same_set(const char *const *a, size_t na, const char *const *b, size_t nb);

#endif
