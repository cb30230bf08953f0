/* store.h - files on disk: state_dir layout, atomic writes, key+certificate swapped as a pair. */
#ifndef ACMED_STORE_H
#define ACMED_STORE_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p; new directories get mode; existing ones are left alone. */
int store_mkdir_p(const char *path, mode_t mode);
/* Temp file in the same directory (created with mode, never wider), write,
 * fsync, rename over path, fsync the directory. */
int store_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same, the file given to group gid before a byte is written ((gid_t)-1: none). */
int store_write_atomic_group(const char *path, const void *data, size_t len, mode_t mode, gid_t gid);
/* The same without the fsyncs: readers see the old or the new content, but a
 * crash may lose the update. Only for caches, whose loss costs only work. */
int store_write_replace(const char *path, const void *data, size_t len, mode_t mode);
/* The last resort when the disk is full: overwrite the existing file in
 * place (its blocks are already allocated), data then pad bytes up to its
 * old size, fdatasync'd. Not atomic: only for records that still parse with
 * the padding (JSON and whitespace) and whose loss is worse than a torn
 * write. -ENOSPC when data is longer than the file. */
int store_write_in_place(const char *path, const void *data, size_t len, char pad);
/* Whole file, NUL-terminated; -EFBIG past max bytes; -ENOENT when absent. */
int store_read_file(const char *path, char **data, size_t *len, size_t max);

/* A new certificate and its key, installed in output_dir as privkey.pem
 * (0600), cert.pem, chain.pem, fullchain.pem (0644). The four appear at once:
 * they are written into a fresh generation directory and published by
 * atomically replacing one symlink, so a reader never sees a key beside a
 * certificate that does not match it. */
struct store_bundle {
	const char *key_pem; size_t key_len;
	const char *cert_pem; size_t cert_len;
	const char *chain_pem; size_t chain_len;
	const char *fullchain_pem; size_t fullchain_len;
	int key_group_set;      /* privkey.pem 0640, group key_gid (from creation on) */
	gid_t key_gid;
};
int store_install_bundle(const char *output_dir, const struct store_bundle *b);
/* Read output_dir/privkey.pem and output_dir/fullchain.pem (both or -ENOENT). */
int store_read_live(const char *output_dir, char **key_pem, size_t *key_len,
		    char **fullchain_pem, size_t *fullchain_len);

/* The identity of the live privkey.pem and fullchain.pem (symlinks followed):
 * device, inode, size, mtime and ctime (ns) of each, as one malloc'd string.
 * Any replacement or edit of either file changes it. -ENOENT when absent. */
int store_live_stamp(const char *output_dir, char **stamp);
/* Remove what a crash left in dir: store_write_atomic's temporary files
 * and, when output_dir is set, symlinks being swapped in and generations
 * newer than the one `current` points to (never published). Each removal is
 * logged. Returns how many, or -errno when dir cannot be read (absent: 0). */
int store_clean_leftovers(const char *dir, int output_dir);
/* The gid of group name (getgrnam_r, its buffer grown as needed): 0, -ENOENT
 * when there is none, another -errno when it cannot be looked up. It may ask
 * a network directory: never on the event loop. */
int store_group_gid(const char *name, gid_t *gid);
/* malloc'd "<a>/<b>"; NULL on allocation failure. */
char *store_path(const char *a, const char *b);

#endif
