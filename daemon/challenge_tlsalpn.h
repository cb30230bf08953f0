/* challenge_tlsalpn.h - the tls-alpn-01 solver (RFC 8737): acmed's own TLS responder for acme-tls/1. */
#ifndef ACMED_CHALLENGE_TLSALPN_H
#define ACMED_CHALLENGE_TLSALPN_H

#include <stddef.h>
#include <event2/event.h>

#include "challenge.h"

/* Listen on fds (systemd's sockets named tls-alpn; taken over) or, when
 * none, on every "host:port" of addrs (tls_alpn_listen). Only a ClientHello
 * offering ALPN acme-tls/1 for an identifier with a live answer completes a
 * handshake; any other gets a fatal alert and nothing else. NULL on failure
 * (logged). */
struct challenge *challenge_tlsalpn_new(struct event_base *base, const char *const *addrs, size_t naddrs,
					const int *fds, size_t nfds);

/* The ClientHello's parsers (exposed for tests and the fuzz target): 1 when
 * the ALPN extension's body offers acme-tls/1 (RFC 7301 3.1); the SNI
 * extension's host_name (RFC 6066 3), lower-cased, into buf (0, or -1 when
 * malformed or not a printable name). */
int tlsalpn_offers_acme(const unsigned char *p, size_t len);
int tlsalpn_sni(const unsigned char *p, size_t len, char *buf, size_t buflen);

#endif
