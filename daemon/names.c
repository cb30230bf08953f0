/* names.c - sets of names (a certificate's domains): comparison independent of order. */
#include <string.h>

#include "names.h"

int names_same_set(const char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		size_t k;
		for (k = 0; k < nb && strcmp(a[i], b[k]) != 0; k++)
			;
		if (k == nb)
			return 0;
	}
	return 1;
}
