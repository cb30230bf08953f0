/* fuzz_ari.c - libFuzzer target for the renewalInfo (RFC 9773) response parser and window choice. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_target.h"
#include "ari.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ari_window w;
	uint64_t rnd = 0;
	int64_t t;

	if (ari_parse((const char *)data, size, &w) != 0) {
		if (w.start || w.end || w.explanation_url)
			__builtin_trap();
		return 0;
	}
	/* A window that parsed is well-formed and inside years 2000..9999. */
	if (w.end <= w.start || w.start < 946684800LL || w.end > 253402300799LL)
		__builtin_trap();
	if (w.explanation_url) {
		size_t n = strlen(w.explanation_url);

		if (n == 0 || n > 2048)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if (w.explanation_url[i] < 0x21 || w.explanation_url[i] > 0x7e)
				__builtin_trap();
	}
	memcpy(&rnd, data, size < sizeof(rnd) ? size : sizeof(rnd));
	t = ari_choose(&w, 0, rnd);
	if (t < w.start || t >= w.end)
		__builtin_trap();
	if (ari_choose(&w, w.end, rnd) != w.end)
		__builtin_trap();
	ari_window_clear(&w);
	return 0;
}
