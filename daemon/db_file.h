/* db_file.h - the embedded store: records as files under state_dir, written atomically on the I/O worker. */
#ifndef ACMED_DB_FILE_H
#define ACMED_DB_FILE_H

#include "db.h"

struct worker;

/* Records live where acmed has always kept them:
 *   accounts/<ca>/account.key (0600)  accounts/<ca>/account.json
 *   certs/<name>.json  certs/<name>.order-key.pem (0600)  certs/<name>.issued.pem (0600)
 *   cas/<ca>.json
 * Directories are created 0700. Every call runs on io, in order. NULL on ENOMEM. */
struct db *db_file_new(const char *state_dir, struct worker *io);
/* The file of a record, malloc'd; NULL for a name that is not a plain file
 * name (empty, ".", "..", a slash) or on ENOMEM. For the command-line tools
 * that read state_dir without a daemon. */
char *db_file_path(const char *state_dir, enum db_kind kind, const char *name);

#endif
