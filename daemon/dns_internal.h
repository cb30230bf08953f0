/* dns_internal.h - between dns.c (sockets, retries) and dns_wire.c (messages with ldns, TSIG); nothing else includes it. */
#ifndef ACMED_DNS_INTERNAL_H
#define ACMED_DNS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dns.h"

#define DNS_NAME_WIRE_MAX 255           /* a name in wire form, root label included */
#define DNS_RR_KEEP 64                  /* RRs kept per section of an answer */
#define DNS_TSIG_FUDGE 300
#define DNS_TSIG_MAC_MAX 64             /* hmac-sha512 */

/* A TSIG key ready to sign with: names in canonical wire form, the secret decoded. */
struct dns_tsig_key {
	uint8_t name[DNS_NAME_WIRE_MAX];
	size_t name_len;
	uint8_t alg[DNS_NAME_WIRE_MAX];
	size_t alg_len;
	const char *digest;             /* OpenSSL's name: "SHA256"... */
	size_t mac_len;
	uint8_t secret[DNS_TSIG_SECRET_MAX];
	size_t secret_len;
};

/* What an answer must match. key NULL: unsigned exchange (a TSIG in the answer is ignored). */
struct dns_expect {
	uint16_t id;
	int opcode;                     /* 0 QUERY, 5 UPDATE */
	const uint8_t *qname;           /* wire form; for an UPDATE the zone */
	size_t qname_len;
	uint16_t qtype;                 /* for an UPDATE: DNS_T_SOA */
	const struct dns_tsig_key *key;
	const uint8_t *req_mac;         /* the request's MAC, when key is set */
	size_t req_mac_len;
	const char *server;             /* for the messages */
};

struct dns_reply {
	struct dns_result res;
	struct dns_rr rr[2 * DNS_RR_KEEP];      /* answer section, then authority */
	int tc;
	char msg[384];
};

/* Text name to canonical wire form (lower case); \DDD and \X escapes. 0 or -EINVAL. */
int dns_wire_name(const char *text, uint8_t wire[DNS_NAME_WIRE_MAX], size_t *len);
/* Wire form (uncompressed) to canonical text with the final dot; bytes that are
 * not printable, '.', '\\' as \DDD. 0 or -EINVAL (malformed). size >= 1024 always fits. */
int dns_wire_name_text(const uint8_t *wire, size_t len, char *out, size_t size);

int dns_tsig_key_set(struct dns_tsig_key *k, const struct dns_tsig *t);
void dns_tsig_key_clear(struct dns_tsig_key *k);

/* A query (EDNS0, UDP size 1232); *out malloc'd. 0 or -errno. */
int dns_wire_query(uint16_t id, const uint8_t *qname, size_t qlen, uint16_t qtype, int rd,
		   uint8_t **out, size_t *outlen);
/* An UPDATE of zone, signed with key at time now when key is set (its MAC in
 * mac/maclen, DNS_TSIG_MAC_MAX bytes). *out malloc'd. 0 or -errno. */
int dns_wire_update(uint16_t id, const uint8_t *zone, size_t zlen, const struct dns_change *ch,
		    size_t n, const struct dns_tsig_key *key, int64_t now, uint8_t **out,
		    size_t *outlen, uint8_t *mac, size_t *maclen);

/* Why an answer was not taken (dns_wire_reply's -EBADMSG). */
enum dns_reject {
	DNS_REJECT_OTHER_ID = 1,        /* not an answer to this message: ignore it */
	DNS_REJECT_MALFORMED,           /* the right ID, but it cannot be parsed */
	DNS_REJECT_QUESTION,            /* the right ID, another question or opcode */
};

/* Parse buf as the answer e expects. 0 and *out (status DNS_ANSWERED, or
 * DNS_BAD_ANSWER when its TSIG is missing or wrong), or -EBADMSG and *why, or
 * -ENOMEM. */
int dns_wire_reply(const uint8_t *buf, size_t len, const struct dns_expect *e, int64_t now,
		   struct dns_reply **out, enum dns_reject *why);
const char *dns_reject_str(enum dns_reject why);

#endif
