/* fuzz_acme_obj.c - libFuzzer target: directory, order and authorization objects from a hostile CA. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_target.h"
#include "acme_obj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_order_obj o;
	struct acme_authz_obj a;
	struct acme_directory d;

	if (acme_order_parse((const char *)data, size, &o) == 0)
		for (size_t i = 0; i < o.nauthz; i++)
			(void)o.authorizations[i];
	acme_order_obj_clear(&o);
	if (acme_authz_parse((const char *)data, size, &a) == 0) {
		(void)acme_authz_challenge(&a, "http-01");
		(void)acme_authz_failed_challenge(&a);
	}
	acme_authz_obj_clear(&a);
	if (acme_directory_parse((const char *)data, size, &d) == 0)
		(void)acme_directory_url(&d, "renewalInfo");
	acme_directory_clear(&d);
	return 0;
}
