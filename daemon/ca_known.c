/* ca_known.c - what acmed knows of public ACME CAs without asking them: names, usual lifetimes, staging. */
#include <string.h>
#include <strings.h>

#include "ca_known.h"

#define DAY (24 * 3600)
#define LE_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

/* Lifetimes of the default profile as of 2026 (Let's Encrypt's "classic"
 * goes to 64 days in February 2027 and 45 days in 2028). */
static const struct ca_known known[] = {
	{ "acme-v02.api.letsencrypt.org", "Let's Encrypt", 90 * DAY, 0, LE_STAGING },
	{ "acme-staging-v02.api.letsencrypt.org", "Let's Encrypt staging", 90 * DAY, 1, NULL },
	{ "acme.zerossl.com", "ZeroSSL", 90 * DAY, 0, NULL },
	{ "dv.acme-v02.api.pki.goog", "Google Trust Services", 90 * DAY, 0,
	  "https://dv.acme-v02.test-api.pki.goog/directory" },
	{ "dv.acme-v02.test-api.pki.goog", "Google Trust Services staging", 90 * DAY, 1, NULL },
};

const struct ca_known *ca_known_find(const char *url)
{
	const char *host, *end;
	size_t len;

	if (!url || !(host = strstr(url, "://")))
		return NULL;
	host += 3;
	end = host + strcspn(host, ":/?#");
	len = (size_t)(end - host);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].host) == len && strncasecmp(known[i].host, host, len) == 0)
			return &known[i];
	return NULL;
}
