/* replay.c - main() for a fuzz target outside libFuzzer: runs LLVMFuzzerTestOneInput over every file of the given directories. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_target.h"

/* Weak: most targets have no LLVMFuzzerInitialize (then this is NULL). */
#pragma weak LLVMFuzzerInitialize

static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			unsigned char *nb = realloc(buf, cap ? cap * 2 : 4096);

			if (!nb) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* Exactly len bytes, as libFuzzer passes them: ASan sees any read past the input. */
	{
		unsigned char *exact = malloc(len ? len : 1);

		if (!exact) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, len);
		free(buf);
		printf("replay: %s (%zu bytes)\n", path, len);
		fflush(stdout);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	(*count)++;
	return 0;
}

/* Every regular file of dir, in name order; a missing or empty directory is an error. */
static int replay_dir(const char *dir, size_t *count)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), rc = 0;
	size_t before = *count;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (names[i]->d_name[0] == '.' || rc < 0)
			goto next;
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= (int)sizeof(path)) {
			fprintf(stderr, "replay: %s/%s: path too long\n", dir, names[i]->d_name);
			rc = -1;
			goto next;
		}
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			goto next;
		rc = replay_file(path, count);
next:
		free(names[i]);
	}
	free(names);
	if (rc == 0 && *count == before) {
		fprintf(stderr, "replay: %s holds no input\n", dir);
		return -1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR...  (corpus directories to replay)\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize) {
		int fargc = argc;
		char **fargv = argv;

		LLVMFuzzerInitialize(&fargc, &fargv);
	}
	for (int i = 1; i < argc; i++)
		if (replay_dir(argv[i], &count) < 0)
			return 1;
	printf("replay: %zu inputs, no crash\n", count);
	return 0;
}
