/* fuzz_certbot_conf.c - libFuzzer target for the certbot renewal conf reader (`acmed import certbot`). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "certbot_conf.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct certbot_conf c;
	char err[128];

	if (certbot_conf_parse((const char *)data, size, &c, err, sizeof(err)) == 0) {
		/* Every entry is whole: a scalar has one value, strings end inside their buffers. */
		for (size_t i = 0; i < c.n; i++) {
			if (!c.e[i].section || !c.e[i].key || !*c.e[i].key || c.e[i].line == 0)
				__builtin_trap();
			if (!c.e[i].is_list && c.e[i].nvalues != 1)
				__builtin_trap();
			for (size_t v = 0; v < c.e[i].nvalues; v++)
				if (strlen(c.e[i].values[v]) > size)
					__builtin_trap();
			if (certbot_conf_get(&c, c.e[i].section, c.e[i].key) == NULL)
				__builtin_trap();
		}
		certbot_conf_clear(&c);
	} else if (c.n != 0 || c.e != NULL || !err[0]) {
		__builtin_trap();       /* a failure frees what it read and says why */
	}
	return 0;
}
