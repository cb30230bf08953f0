/* dns.h - DNS on the event loop: queries and TSIG-signed UPDATEs (RFC 1035, 2136, 8945); dns.c sends and receives, dns_wire.c (the one user of ldns) builds and parses. */
#ifndef ACMED_DNS_H
#define ACMED_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

/* Record types acmed asks for. */
enum {
	DNS_T_A = 1,
	DNS_T_NS = 2,
	DNS_T_CNAME = 5,
	DNS_T_SOA = 6,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
};

/* rcodes acmed names (RFC 1035, 2136, 8945). */
enum {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_YXDOMAIN = 6,
	DNS_RCODE_YXRRSET = 7,
	DNS_RCODE_NXRRSET = 8,
	DNS_RCODE_NOTAUTH = 9,
	DNS_RCODE_NOTZONE = 10,
};

/* TSIG errors (RFC 8945 5.3). */
enum {
	DNS_TSIG_BADSIG = 16,
	DNS_TSIG_BADKEY = 17,
	DNS_TSIG_BADTIME = 18,
	DNS_TSIG_BADTRUNC = 22,
};

/* How an exchange ended. */
enum dns_status {
	DNS_ANSWERED,           /* the server answered (rcode says how); for an UPDATE, its TSIG verified */
	DNS_NO_ANSWER,          /* nothing after every try (timeouts, connection refused, unreachable) */
	DNS_BAD_ANSWER,         /* an answer that cannot be used: malformed, or its TSIG does not verify */
};

/* One resource record, in text: name absolute and lower case with the final dot
 * ("_acme-challenge.example.org."); data for A/AAAA the address, for NS/CNAME the
 * target name (absolute, lower case), for SOA the zone's primary name server
 * (MNAME), for TXT the character-strings concatenated (unescaped bytes, NUL-free:
 * a record whose strings hold a NUL is left out), other types "" . Only class IN
 * records, at most 64 per section. Name bytes that are not printable ASCII, '.'
 * inside a label and '\\' are written \DDD (the form dns_name_canonical reads). */
struct dns_rr {
	char *name;
	uint16_t type;
	uint32_t ttl;
	char *data;
};

struct dns_result {
	enum dns_status status;
	int rcode;                      /* DNS_ANSWERED: the (extended) rcode; also set for an
					 * answer refused for its TSIG (DNS_BAD_ANSWER) */
	int tsig_error;                 /* the TSIG error the server reported (DNS_TSIG_*), else 0 */
	int authoritative;              /* AA bit */
	const struct dns_rr *answer;    /* answer section, in order */
	size_t nanswer;
	const struct dns_rr *authority; /* authority section (the SOA of a negative answer) */
	size_t nauthority;
	/* One line for the log, naming the server, e.g. "127.0.0.1:53 answered REFUSED",
	 * "127.0.0.1:53 answered NOTAUTH (TSIG BADKEY)", "no answer from 127.0.0.1:53 (3 tries
	 * over UDP, 6 s)", "127.0.0.1:53: connection refused", "127.0.0.1:53: TCP connection
	 * refused", "127.0.0.1:53: the answer's TSIG does not verify", "127.0.0.1:53 answered
	 * NOTAUTH without a TSIG". */
	const char *message;
};

/* r and everything it points to is valid during the call only. Always called
 * from its own event on the loop, never from inside dns_query/dns_update; the
 * callback may start new requests and may free other requests (or the client).
 * The request is gone once its callback returns: dns_cancel() on it from inside
 * the callback does nothing, after it is a use after free. */
typedef void (*dns_done_fn)(const struct dns_result *r, void *arg);

#define DNS_TSIG_SECRET_MAX 256        /* bytes of a TSIG secret, decoded */

/* A TSIG key (RFC 8945). secret_b64: the key as base64, as in a BIND or knot
 * key file; algorithm: "hmac-sha256", "hmac-sha384", "hmac-sha512" or "hmac-sha1". */
struct dns_tsig {
	const char *name;
	const char *algorithm;
	const char *secret_b64;
};

/* One change of an UPDATE: add exactly this TXT record, or delete exactly this
 * TXT record (RFC 2136 2.5.4: class NONE, other TXT records at the name stay). */
struct dns_change {
	int add;                        /* 1 add, 0 delete */
	const char *name;               /* absolute, with or without the final dot */
	const char *txt;                /* one character-string, at most 255 bytes */
	uint32_t ttl;                   /* for an add */
};

struct dns_client;
struct dns_req;

struct dns_client *dns_client_new(struct event_base *base);
/* Pending requests are dropped without their callbacks. NULL ok. */
void dns_client_free(struct dns_client *c);
/* Per try (default 2000 ms) and tries over UDP (default 3); a TCP exchange gets
 * try_ms * tries in all. */
void dns_client_set_timeouts(struct dns_client *c, long try_ms, int tries);
/* Messages sent since dns_client_new: queries (each UDP try and each TCP
 * exchange counts one) and UPDATEs. For the benchmark and the tests. */
void dns_client_counts(const struct dns_client *c, unsigned long *queries, unsigned long *updates);

/* "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353": an IP
 * address (no name), the port defaulting to default_port. 0 or -EINVAL. */
int dns_parse_server(const char *s, int default_port, struct sockaddr_storage *ss, socklen_t *len);
/* "192.0.2.53:53", "[2001:db8::53]:53" into buf. */
const char *dns_server_str(const struct sockaddr *sa, char *buf, size_t size);

/* Ask server for (name, type), class IN, over UDP with EDNS0 (retried over
 * TCP when the answer is truncated), recursion desired or not. The answer
 * must come from the server's address and port and match the ID and the
 * question. NULL on immediate failure (out of memory, a name that is not a
 * domain name), logged by the caller; then cb is never called. */
struct dns_req *dns_query(struct dns_client *c, const struct sockaddr *server, socklen_t len,
			  const char *name, uint16_t type, int recursion, dns_done_fn cb, void *arg);

/* Send one UPDATE for zone (RFC 2136) over TCP, signed with tsig (NULL: unsigned),
 * carrying the changes in order (1 to 4096 of them). NULL at once (errno EINVAL) for
 * an unknown algorithm, a secret that is not base64, a bad name or a TXT over 255
 * bytes. DNS_ANSWERED means the server's answer came
 * back (with a TSIG that verifies when tsig is set, except for an answer the
 * server could not sign: BADKEY/BADSIG, reported in tsig_error). */
struct dns_req *dns_update(struct dns_client *c, const struct sockaddr *server, socklen_t len,
			   const char *zone, const struct dns_tsig *tsig, const struct dns_change *changes,
			   size_t nchanges, dns_done_fn cb, void *arg);

/* Abandon a request: no callback after this. NULL ok. */
void dns_cancel(struct dns_req *r);

/* "NOERROR", "REFUSED", "NOTAUTH"... or "RCODE17". */
const char *dns_rcode_str(int rcode);
/* "BADSIG", "BADKEY", "BADTIME"... or "TSIG error 19". */
const char *dns_tsig_error_str(int err);
/* 1 when the algorithm is one acmed signs with. */
int dns_tsig_algorithm_known(const char *algorithm);
/* A name in the canonical form dns_rr uses: lower case, final dot. NULL when
 * it is not a domain name (empty label, a label over 63 bytes, over 253). */
char *dns_name_canonical(const char *name);

/* For the fuzz target and the unit tests: parse a wire-format message as an
 * answer to (id, name, type) would be; 0 and *out filled (dns_reply_free), or
 * -EBADMSG (malformed, or not that answer), -EINVAL (name is not a domain name),
 * -ENOMEM. Its message names the server "server". */
struct dns_reply;
int dns_reply_parse(const uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t type,
		    struct dns_reply **out);
const struct dns_result *dns_reply_result(const struct dns_reply *r);
void dns_reply_free(struct dns_reply *r);

#endif
