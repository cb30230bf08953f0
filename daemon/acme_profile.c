/* acme_profile.c - ACME profiles (draft-ietf-acme-profiles): a newOrder's profile checked against the directory's meta.profiles before it is sent. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "acme_internal.h"

int acme_profile_check(const struct acme_ca *ca, const struct acme_call *call, char *why, size_t whylen)
{
	const struct acme_directory *d = &ca->directory;
	json_t *p;
	const char *profile;
	size_t o;
	int rc = 0;

	if (!call->resource || strcmp(call->resource, "newOrder") != 0 || !call->payload)
		return 0;
	p = json_loads(call->payload, 0, NULL);
	profile = json_string_value(json_object_get(p, "profile"));
	for (size_t i = 0; profile && i < d->nprofiles; i++)
		if (strcmp(d->profiles[i], profile) == 0)
			profile = NULL;
	if (profile && d->nprofiles == 0) {
		snprintf(why, whylen, "CA %s offers no profiles (its directory lists none): remove "
			 "profile: %s from the certificate, or use a CA that has it", ca->name, profile);
		rc = -1;
	} else if (profile) {
		o = (size_t)snprintf(why, whylen, "CA %s has no profile \"%s\"; its profiles: ", ca->name, profile);
		for (size_t i = 0; i < d->nprofiles && o < whylen; i++)
			o += (size_t)snprintf(why + o, whylen - o, "%s%s", i ? ", " : "", d->profiles[i]);
		rc = -1;
	}
	json_decref(p);
	return rc;
}
