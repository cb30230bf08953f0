/* ident.c - ACME identifiers: which type a configured name is (dns, or ip per RFC 8738) and an address in its one written form. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"

int ident_ip_bytes(const char *s, unsigned char out[16])
{
	if (!s || !*s)
		return 0;
	if (strchr(s, ':'))
		return inet_pton(AF_INET6, s, out) == 1 ? 16 : 0;
	/* inet_pton takes dotted decimal only: no octal, hex or short forms */
	return inet_pton(AF_INET, s, out) == 1 ? 4 : 0;
}

const char *ident_type(const char *name)
{
	unsigned char b[16];

	return ident_ip_bytes(name, b) ? "ip" : "dns";
}

int ident_ip_format(const unsigned char *bytes, size_t len, char *buf, size_t buflen)
{
	if ((len != 4 && len != 16) ||
	    !inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, buf, (socklen_t)buflen))
		return -EINVAL;
	return 0;
}

char *ident_ip_canonical(const char *s)
{
	unsigned char b[16];
	char buf[INET6_ADDRSTRLEN];
	int n = ident_ip_bytes(s, b);

	if (!n || ident_ip_format(b, (size_t)n, buf, sizeof(buf)) < 0)
		return NULL;
	return strdup(buf);
}
