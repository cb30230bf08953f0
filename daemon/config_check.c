/* config_check.c - validators of config values: listen addresses, ACME directory URL, contact, domain names, unit names. */
#include <errno.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_check.h"
#include "ident.h"
#include "config_yaml.h"

/* Port of "1".."65535": 0 or -1. */
static int parse_port(const char *s)
{
	size_t len = strlen(s);
	long v;

	if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
		return -1;
	v = strtol(s, NULL, 10);
	return v >= 1 && v <= 65535 ? 0 : -1;
}

/* host or [v6] followed by end or :port; *v6 tells whether it was an IPv6 literal. */
static int parse_hostport(const char *s, size_t len, bool port_required, char *host, size_t hostsz,
			  bool *v6)
{
	const char *end = s + len, *h = s, *he, *rest;
	unsigned char addr[16];
	char port[8];

	*v6 = false;
	if (len && s[0] == '[') {
		he = memchr(s, ']', len);
		if (!he)
			return -1;
		h = s + 1;
		rest = he + 1;
		*v6 = true;
	} else {
		he = memchr(s, ':', len);
		rest = he ? he : end;
		he = rest;
	}
	if (he == h || (size_t)(he - h) >= hostsz)
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	if (*v6 ? inet_pton(AF_INET6, host, addr) != 1 :
	    strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(host))
		return -1;
	if (rest == end)
		return port_required ? -1 : 0;
	if (*rest != ':' || (size_t)(end - rest) > sizeof(port))
		return -1;
	memcpy(port, rest + 1, (size_t)(end - rest - 1));
	port[end - rest - 1] = '\0';
	return parse_port(port);
}

int config_check_listen(const struct config_yaml_msg *m, const struct node *v)
{
	char host[64];
	bool v6;

	if (parse_hostport(v->s, strlen(v->s), true, host, sizeof(host), &v6))
		return config_yaml_err(m, v, "listen: expected \"host:port\" like \"0.0.0.0:80\" or \"[::]:80\" "
			       "(port 1..65535), got %s", Q(v->s));
	return 0;
}

int config_check_directory(const struct config_yaml_msg *m, const char *key, const struct node *v)
{
	const char *s = v->s, *auth;
	char host[256];
	size_t alen;
	bool https = !strncasecmp(s, "https://", 8), v6;
	unsigned char a[16];

	if (!https && strncasecmp(s, "http://", 7))
		return config_yaml_err(m, v, "%s: expected an https:// URL, got %s", key, Q(s));
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return config_yaml_err(m, v, "%s: expected a URL without spaces or non-ASCII characters, got %s",
				       key, Q(s));
	auth = s + (https ? 8 : 7);
	alen = strcspn(auth, "/?#");
	if (memchr(auth, '@', alen))
		return config_yaml_err(m, v, "%s: user names or passwords in the URL are not supported, got %s", key, Q(s));
	if (parse_hostport(auth, alen, false, host, sizeof(host), &v6))
		return config_yaml_err(m, v, "%s: expected a URL with a valid host and port, got %s", key, Q(s));
	if (!https && !(v6 ? (inet_pton(AF_INET6, host, a) == 1 && !memcmp(a, &in6addr_loopback, 16)) :
			(!strcasecmp(host, "localhost") || (inet_pton(AF_INET, host, a) == 1 && a[0] == 127))))
		return config_yaml_err(m, v, "%s: expected an https:// URL (http:// is only allowed for "
			       "127.0.0.0/8, [::1] and localhost), got %s", key, Q(s));
	return 0;
}

int config_check_contact(const struct config_yaml_msg *m, const struct node *v)
{
	if (strncasecmp(v->s, "mailto:", 7) || !strchr(v->s + 7, '@') || v->s[7] == '@' ||
	    strchr(v->s, ' '))
		return config_yaml_err(m, v, "contact: expected a \"mailto:user@example.org\" address, got %s", Q(v->s));
	return 0;
}

/* Lower-cases s in place and checks it is a DNS name we can validate with http-01. */
int config_check_domain(const struct config_yaml_msg *m, const struct node *v, char **sp)
{
	char *s = *sp, *ip;
	size_t len = strlen(s), label = 0;
	const char *lbl = s;

	/* An IP address (RFC 8738): kept in its one written form, so the same
	 * address twice, or the certificate's IP SAN, compares equal. */
	if (strchr(s, ':') || strspn(s, "0123456789.") == len) {
		ip = ident_ip_canonical(s);
		if (ip) {
			free(*sp);
			*sp = ip;
			return 0;
		}
		if (strchr(s, ':'))
			return config_yaml_err(m, v, "domains: %s: expected a DNS name or an IP address (IPv6 "
					       "without brackets, port or zone)", Q(s));
	}

	for (char *p = s; *p; p++) {
		if ((unsigned char)*p >= 0x80)
			return config_yaml_err(m, v, "domains: %s: expected an ASCII name; write internationalised "
				       "names in their xn-- (punycode) form", Q(s));
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	/* A wildcard: "*." and a name (which challenge may validate it is the
	 * certificate's business: config_get_challenge). */
	if (!strncmp(s, "*.", 2)) {
		lbl = s += 2;
		len -= 2;
		if (strchr(s, '*'))
			return config_yaml_err(m, v, "domains: %s: a wildcard is \"*.\" then a name, with no other "
					       "'*'", Q(s - 2));
	}
	if (len > 253)
		return config_yaml_err(m, v, "domains: name too long (%zu characters, max 253)", len);
	if (len && s[len - 1] == '.')
		return config_yaml_err(m, v, "domains: %s: expected a name without a trailing dot", Q(s));
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || *lbl == '-' || p[-1] == '-')
				return config_yaml_err(m, v, "domains: %s: expected labels of 1 to 63 letters, digits "
					       "or '-', not starting or ending with '-'", Q(s));
			if (*p == '\0')
				break;
			lbl = p + 1;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return config_yaml_err(m, v, "domains: %s: expected a DNS name (letters, digits, '-' and '.'), "
				       "got the character '%c'", Q(s), *p);
		label++;
	}
	if (strspn(lbl, "0123456789") == strlen(lbl))
		return config_yaml_err(m, v, "domains: %s: expected a DNS name or an IP address (IPv4 as four "
				       "decimal numbers)", Q(s));
	return 0;
}

int config_check_unit(const struct config_yaml_msg *m, const struct node *v, char **out)
{
	static const char *const types[] = { "service", "socket", "target", "mount", "automount",
		"swap", "path", "timer", "slice", "scope", "device" };
	const char *s = v->s, *dot = strrchr(s, '.');
	size_t len = strlen(s);
	bool ok = len > 0 && s[0] != '.' && len <= 255 - strlen(".service") &&
		strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.\\@-") == len;
	char *full;

	for (size_t i = 0; ok && dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot + 1, types[i]))
			return 0;
	if (!ok)
		return config_yaml_err(m, v, "reload: expected a systemd unit name like \"nginx.service\", "
				       "got %s", Q(s));
	/* As systemctl does: a name without a unit type is a service
	 * ("nginx", "php8.2-fpm"). */
	if (asprintf(&full, "%s.service", s) < 0)
		return -ENOMEM;
	free(*out);
	*out = full;
	return 0;
}
