/* config_file.h - private to config.c and config_file.c: reading configuration files, expanding include patterns. */
#ifndef ACMED_CONFIG_FILE_H
#define ACMED_CONFIG_FILE_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_FILE_MAX (16 * 1024 * 1024)     /* 10 000 certificates in block style: ~3 MiB */
#define CONFIG_FILE_MAX_TEXT "16 MiB"

/* "NAME: SIZE, more than the 16 MiB a configuration may have" into err; -EFBIG. */
int config_too_large(const char *name, uint64_t size, char *err, size_t errlen);
/* The whole of a regular file of at most CONFIG_FILE_MAX bytes (a FIFO is
 * refused at once, never waited on), malloc'd into *buf. 0, or a negative
 * errno with "PATH: why" in err. */
int config_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);
/* The files matching pattern (absolute), sorted; none is not an error.
 * 0, -ENOMEM or -EIO (a directory could not be read). */
int config_include_glob(const char *pattern, char ***paths, size_t *n);
void config_include_paths_free(char **paths, size_t n);

#endif
