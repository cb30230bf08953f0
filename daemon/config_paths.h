/* config_paths.h - where certificates' files go: one directory reached two ways, or one inside state_dir's private parts. */
#ifndef ACMED_CONFIG_PATHS_H
#define ACMED_CONFIG_PATHS_H

#include <stddef.h>

/* The path as the file system sees it: symbolic links resolved in the part
 * that exists, the rest appended ("/srv/www -> /var/www" and "/var/www/x"
 * resolve alike). malloc'd; NULL on ENOMEM. */
char *config_paths_resolve(const char *path);

/* Among dirs[0..n): two that are one directory (same resolved path, or same
 * device and inode where they exist): 1 with *a < *b set. 0 when none. */
int config_paths_same(const char *const *dirs, size_t n, size_t *a, size_t *b);

/* 1 when dir is state_dir itself, its live/ parent of all output
 * directories, or inside accounts/, certs/ or cas/ (the keys and state acmed
 * keeps for itself); *part names which. */
int config_paths_private(const char *dir, const char *state_dir, const char **part);

#endif
