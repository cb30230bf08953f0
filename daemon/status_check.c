/* status_check.c - `acmed status --check`: STATUS as a monitoring-plugin verdict (Nagios/Icinga: one line, exit 0-3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "status.h"
#include "timeparse.h"

#define CHECK_CRITICAL_S (7 * 86400)    /* expiring within a week: someone must look now */
#define CHECK_NAMED_MAX 5               /* certificates named on the line per verdict */
#define CHECK_DETAIL_MAX 80             /* characters of one certificate's reason */

struct verdict {
	const char *word;               /* "CRITICAL" */
	size_t count;
	char text[1024];                /* "web expires in 3d, api failing: ..." */
	size_t named;
};

static int64_t field_time(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t t = 0;

	return s && timeparse_rfc3339(s, &t) == 0 ? t : 0;
}

/* Printable ASCII, at most CHECK_DETAIL_MAX characters: the reason may come from a CA. */
static void clean_copy(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < len && i < CHECK_DETAIL_MAX; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f &&
			 src[i] != '|' ? src[i] : '?';
	dst[i] = '\0';
	if (src && src[i] && i == CHECK_DETAIL_MAX && len > CHECK_DETAIL_MAX + 3)
		strcat(dst, "...");
}

static void verdict_add(struct verdict *v, const char *name, const char *fmt, const char *arg)
{
	char reason[CHECK_DETAIL_MAX + 8], what[CHECK_DETAIL_MAX + 64];
	size_t used = strlen(v->text);

	v->count++;
	if (v->named == CHECK_NAMED_MAX) {
		snprintf(v->text + used, sizeof(v->text) - used, ", ...");
		v->named++;
	}
	if (v->named > CHECK_NAMED_MAX)
		return;
	clean_copy(reason, sizeof(reason), arg);
	snprintf(what, sizeof(what), fmt, reason);
	snprintf(v->text + used, sizeof(v->text) - used, "%s%.60s %s", v->named ? ", " : "",
		 name ? name : "?", what);
	v->named++;
}

int status_check(FILE *out, const json_t *status)
{
	const json_t *certs = json_object_get(status, "certificates"), *c;
	int64_t now = field_time(status, "generated_at");
	struct verdict crit = { .word = "CRITICAL" }, warn = { .word = "WARNING" };
	size_t i, ok = 0, n = json_array_size(certs);
	char days[32];
	int rc;

	if (!json_is_array(certs)) {
		fprintf(out, "ACMED UNKNOWN - no certificates in acmed's status\n");
		return STATUS_CHECK_UNKNOWN;
	}
	if (!now)
		now = clock_now();
	json_array_foreach(certs, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *state = json_string_value(json_object_get(c, "state"));
		const char *err = json_string_value(json_object_get(c, "last_error"));
		const char *dep = json_string_value(json_object_get(c, "deploy_error"));
		int64_t na = field_time(c, "not_after");
		long long failures = json_integer_value(json_object_get(c, "failures"));
		int new_one = !na && !failures && !err && state &&
			      (!strcmp(state, "starting") || !strcmp(state, "queued") ||
			       !strcmp(state, "ordering") || !strcmp(state, "missing"));

		if (!na && !new_one) {
			if (err)
				verdict_add(&crit, name, "has no certificate: %s", err);
			else
				verdict_add(&crit, name, "has no certificate%s", "");
		} else if (na && na <= now) {
			verdict_add(&crit, name, "expired%s", "");
		} else if (na && na - now < CHECK_CRITICAL_S) {
			snprintf(days, sizeof(days), "%lld", (long long)((na - now) / 86400));
			verdict_add(&crit, name, "expires in %sd", days);
		} else if (new_one) {
			verdict_add(&warn, name, "not issued yet%s", "");
		} else if (failures > 0 || err) {
			verdict_add(&warn, name, "failing: %s", err ? err : "(no detail)");
		} else if (dep) {
			verdict_add(&warn, name, "not deployed: %s", dep);
		} else if (state && !strcmp(state, "mismatch")) {
			verdict_add(&warn, name, "does not match the configuration%s", "");
		} else {
			ok++;
		}
	}
	if (crit.count)
		rc = STATUS_CHECK_CRITICAL;
	else if (warn.count)
		rc = STATUS_CHECK_WARNING;
	else
		rc = STATUS_CHECK_OK;
	fprintf(out, "ACMED %s - ", rc == STATUS_CHECK_CRITICAL ? "CRITICAL" :
		rc == STATUS_CHECK_WARNING ? "WARNING" : "OK");
	if (crit.count)
		fprintf(out, "%s; ", crit.text);
	if (warn.count)
		fprintf(out, "%s; ", warn.text);
	fprintf(out, "%zu of %zu certificate%s OK | certificates=%zu ok=%zu warning=%zu critical=%zu\n",
		ok, n, n == 1 ? "" : "s", n, ok, warn.count, crit.count);
	return rc;
}
