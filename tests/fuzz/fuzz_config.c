/* fuzz_config.c - libFuzzer target: config_load_buffer on arbitrary bytes must give a config or a located error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_target.h"
#include "config.h"

static void check_strv(const struct config_strv *sv)
{
	if (!sv->v || sv->v[sv->n])
		__builtin_trap();
	for (size_t i = 0; i < sv->n; i++)
		if (!sv->v[i])
			__builtin_trap();
}

/* check-config's every-error mode agrees with loading: the same verdict, and
 * its first line is the error loading reports. */
static void check_every_error(const uint8_t *data, size_t size, int rc, const char *err)
{
	struct config *cfg = NULL;
	char *all = NULL;
	size_t len = 0;
	unsigned n = 0;
	FILE *m = open_memstream(&all, &len);
	int rc2;

	if (!m)
		return;
	rc2 = config_load_buffer_every_error("fuzz/acmed.yaml", (const char *)data, size, &cfg, m, &n);
	fclose(m);
	if ((rc == 0) != (rc2 == 0) || (rc2 == 0 && (n != 0 || !cfg)) || (rc2 != 0 && (n == 0 || cfg)))
		__builtin_trap();
	if (rc2 != 0 && (strncmp(all, err, strlen(err)) != 0 || all[strlen(err)] != '\n'))
		__builtin_trap();
	config_free(cfg);
	free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[1024];
	int rc;

	/* include: would read the machine's files (the unit tests cover it). */
	if (memmem(data, size, "include", 7))
		return 0;
	rc = config_load_buffer("fuzz/acmed.yaml", (const char *)data, size, &cfg, err, sizeof(err));

	check_every_error(data, size, rc, err);

	if (rc) {
		int line = 0, col = 0;
		/* Every error is -EINVAL with FILE:LINE:COL (or "file too large"), and no config. */
		if (rc != -EINVAL || cfg)
			__builtin_trap();
		if (sscanf(err, "fuzz/acmed.yaml:%d:%d: ", &line, &col) != 2 || line < 1 || col < 1)
			if (strncmp(err, "fuzz/acmed.yaml: file too large", 31))
				__builtin_trap();
		return 0;
	}
	if (!cfg || cfg->ncas < 1 || cfg->path[0] != '/' || cfg->state_dir[0] != '/' ||
	    cfg->runtime_dir[0] != '/' || cfg->listen.n < 1)
		__builtin_trap();
	check_strv(&cfg->listen);
	for (size_t i = 0; i < cfg->ncas; i++) {
		const struct config_ca *ca = &cfg->cas[i];
		check_strv(&ca->contact);
		if (!ca->name[0] || strncasecmp(ca->directory, "http", 4) || ca->max_parallel < 1 ||
		    ca->max_parallel > 1000 || (ca->ca_bundle && ca->ca_bundle[0] != '/'))
			__builtin_trap();
	}
	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct config_cert *ct = &cfg->certs[i];
		check_strv(&ct->domains);
		check_strv(&ct->reload);
		check_strv(&ct->exec);
		if (ct->ca >= cfg->ncas || ct->domains.n < 1 || ct->output_dir[0] != '/' ||
		    strchr(ct->name, '/') || ct->renew_before < 0 || !config_key_type_name(ct->key_type) ||
		    strcmp(ct->challenge, "http-01") || config_find_cert(cfg, ct->name) != ct)
			__builtin_trap();
		for (size_t d = 0; d < ct->domains.n; d++)
			if (strspn(ct->domains.v[d], "abcdefghijklmnopqrstuvwxyz0123456789.-") !=
			    strlen(ct->domains.v[d]))
				__builtin_trap();
	}
	config_free(cfg);
	return 0;
}
