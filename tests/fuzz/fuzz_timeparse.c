/* fuzz_timeparse.c - libFuzzer target for the Retry-After and RFC 3339 parsers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "timeparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t out, t;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	/* Results always land inside the clamp, whatever "now" is. */
	if (timeparse_retry_after(s, 1735787045, 1, 86400, &out) == 0 && (out < 1 || out > 86400))
		__builtin_trap();
	if (timeparse_retry_after(s, INT64_MIN, 0, INT64_MAX, &out) == 0 && out < 0)
		__builtin_trap();
	if (timeparse_retry_after(s, INT64_MAX, 5, 5, &out) == 0 && out != 5)
		__builtin_trap();

	/* Years 0000..9999 with offsets under a day. */
	if (timeparse_rfc3339(s, &t) == 0 &&
	    (t < -62167219200LL - 86400 || t > 253402300799LL + 86400))
		__builtin_trap();

	free(s);
	return 0;
}
