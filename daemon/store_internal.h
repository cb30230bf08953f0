/* store_internal.h - private to store.c and store_clean.c: the output_dir layout. */
#ifndef ACMED_STORE_INTERNAL_H
#define ACMED_STORE_INTERNAL_H

#define STORE_GEN_PREFIX ".gen-"
#define STORE_CURRENT "current"
#define STORE_NFILES 4
/* The four names in output_dir, each a symlink to current/<name>. */
extern const char *const store_names[STORE_NFILES];

/* ".gen-<N>" with N decimal: N, else -1. */
long long store_gen_number(const char *name);
/* rm -r of dfd/name without following symlinks. */
int store_remove_tree(int dfd, const char *name);

#endif
