/* config_check.h - private to config.c and config_check.c: validators of config values. */
#ifndef ACMED_CONFIG_CHECK_H
#define ACMED_CONFIG_CHECK_H

struct config_yaml_msg;
struct node;

/* Each checks the scalar node v and returns 0, or -EINVAL with a message
 * "key: expected ..., got ..." written through m at v's line:col. */

/* "host:port" or "[v6]:port", port 1..65535. */
int config_check_listen(const struct config_yaml_msg *m, const struct node *v);
/* An https:// URL (http:// only for 127.0.0.0/8, [::1] and localhost), no user info. */
int config_check_directory(const struct config_yaml_msg *m, const char *key, const struct node *v);
/* "mailto:user@host". */
int config_check_contact(const struct config_yaml_msg *m, const struct node *v);
/* s, the caller's copy of v's text, is lower-cased in place, then checked to be
 * a DNS name that http-01 can validate (no wildcard, no IP address). */
int config_check_domain(const struct config_yaml_msg *m, const struct node *v, char **s);
/* A systemd unit name, e.g. "nginx.service"; without a unit type suffix it is
 * a service, as for systemctl: *s (the caller's malloc'd copy) is replaced by
 * "nginx.service" for "nginx". */
int config_check_unit(const struct config_yaml_msg *m, const struct node *v, char **s);

#endif
