/* certbot_conf.h - certbot's renewal/<name>.conf (the configobj INI dialect it writes), read for `acmed import certbot`. */
#ifndef ACMED_CERTBOT_CONF_H
#define ACMED_CERTBOT_CONF_H

#include <stddef.h>

/* One "key = value" line. section is "" at the top, then the section names
 * joined by '/' ("renewalparams", "renewalparams/webroot_map"). A value with
 * a comma is a list (a trailing comma makes a list of one: certbot writes
 * "webroot_path = /var/www/html,"); quotes ('...' or "...") are removed. */
struct certbot_conf_entry {
	char *section;
	char *key;
	char **values;          /* nvalues strings (a scalar: exactly one) */
	size_t nvalues;
	int is_list;
	unsigned line;
};

struct certbot_conf {
	struct certbot_conf_entry *e;
	size_t n;
};

#define CERTBOT_CONF_MAX (1u << 20)     /* bytes of a file */
#define CERTBOT_CONF_ENTRIES 4096

/* 0, or -EINVAL with "line N: why" in err (the entries so far are freed), -ENOMEM. */
int certbot_conf_parse(const char *text, size_t len, struct certbot_conf *out, char *err,
		       size_t errlen);
/* The last entry for section/key (configobj: a later one wins), or NULL. */
const struct certbot_conf_entry *certbot_conf_get(const struct certbot_conf *c, const char *section,
						  const char *key);
/* The value of a scalar entry, or NULL when absent or a list. */
const char *certbot_conf_str(const struct certbot_conf *c, const char *section, const char *key);
void certbot_conf_clear(struct certbot_conf *c);

#endif
