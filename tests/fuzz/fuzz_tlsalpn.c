/* fuzz_tlsalpn.c - libFuzzer target for the tls-alpn-01 responder's ClientHello parsers (ALPN list, SNI host_name). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "challenge_tlsalpn.h"
#include "fuzz_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];

	/* Never reads past size; a name found is printable, lower-case, NUL-terminated, shorter than buf. */
	(void)tlsalpn_offers_acme(data, size);
	if (tlsalpn_sni(data, size, name, sizeof(name)) == 0) {
		size_t n = strlen(name);
		if (n == 0 || n >= sizeof(name))
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if (name[i] <= 0x20 || name[i] >= 0x7f || (name[i] >= 'A' && name[i] <= 'Z'))
				__builtin_trap();
	}
	if (tlsalpn_sni(data, size, name, 4) == 0 && strlen(name) >= 4)
		__builtin_trap();
	return 0;
}
