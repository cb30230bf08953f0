/* ident.h - ACME identifiers: a configured name is a DNS name (RFC 8555) or an IP address (RFC 8738). */
#ifndef ACMED_IDENT_H
#define ACMED_IDENT_H

#include <stddef.h>

/* An IPv4 or IPv6 address in s (no port, no brackets, no zone): its 4 or 16
 * bytes in out, returns 4 or 16; 0 when s is not one. */
int ident_ip_bytes(const char *s, unsigned char out[16]);
/* "ip" for an address, else "dns": the identifier type sent in newOrder. */
const char *ident_type(const char *name);
/* The one written form of an address (RFC 5952 for IPv6, dotted decimal for
 * IPv4), malloc'd; NULL when s is not an address (or no memory). */
char *ident_ip_canonical(const char *s);
/* The written form of 4 or 16 address bytes into buf (at least 46 bytes). 0 or -EINVAL. */
int ident_ip_format(const unsigned char *bytes, size_t len, char *buf, size_t buflen);

#endif
