/* fuzz_problem.c - libFuzzer target: ACME problem documents from a hostile CA. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_target.h"
#include "acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_problem p;

	if (acme_problem_parse((const char *)data, size, &p) == 0)
		(void)acme_classify(400, p.name);
	acme_problem_clear(&p);
	return 0;
}
