/* fuzz_dns_reply.c - libFuzzer target for DNS answers: dns_reply_parse (a TXT query's answer) and the TSIG check of an UPDATE's answer (dns_wire_reply with a key). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_target.h"
#include "dns.h"
#include "dns_internal.h"

/* The seeds in corpus/dns_reply/update_* are signed with this key at this time. */
#define FUZZ_NOW 1796128471
static const struct dns_tsig fuzz_key = { "fuzz-key", "hmac-sha256", "ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQh" };

static void check_name(const char *n)
{
	size_t len;

	if (!n || !(len = strlen(n)) || n[len - 1] != '.' || len > 1024)
		__builtin_trap();
	for (size_t i = 0; i < len; i++)
		if (n[i] <= 0x20 || n[i] >= 0x7f || (n[i] >= 'A' && n[i] <= 'Z'))
			__builtin_trap();
}

static void check(const struct dns_result *res)
{
	if (!res->message || res->nanswer > DNS_RR_KEEP || res->nauthority > DNS_RR_KEEP)
		__builtin_trap();
	if (res->status != DNS_ANSWERED && (res->nanswer || res->nauthority))
		__builtin_trap();
	for (size_t i = 0; i < res->nanswer + res->nauthority; i++) {
		const struct dns_rr *rr = i < res->nanswer ? &res->answer[i] :
							      &res->authority[i - res->nanswer];

		check_name(rr->name);
		if (!rr->data)
			__builtin_trap();
		if (rr->type == DNS_T_NS || rr->type == DNS_T_CNAME || rr->type == DNS_T_SOA)
			check_name(rr->data);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	struct dns_reply *r = NULL;
	int rc = dns_reply_parse(data, size, id, "_acme-challenge.example.test", DNS_T_TXT, &r);

	if ((rc == 0) != (r != NULL) || (rc && rc != -EBADMSG && rc != -ENOMEM))
		__builtin_trap();
	if (r) {
		check(dns_reply_result(r));
		if (dns_reply_result(r)->status != DNS_ANSWERED)
			__builtin_trap();       /* no TSIG asked for */
		dns_reply_free(r);
	}
	{
		static struct dns_tsig_key key;
		static int key_ok;
		uint8_t zone[DNS_NAME_WIRE_MAX], mac[32];
		struct dns_expect e = { .id = id, .opcode = 5, .qname = zone, .qtype = DNS_T_SOA,
					.key = &key, .req_mac = mac, .req_mac_len = sizeof(mac),
					.server = "server" };
		enum dns_reject why;

		if (!key_ok && dns_tsig_key_set(&key, &fuzz_key) == 0)
			key_ok = 1;
		memset(mac, 0x42, sizeof(mac));
		if (!key_ok || dns_wire_name("example.test", zone, &e.qname_len) < 0)
			__builtin_trap();
		r = NULL;
		if (dns_wire_reply(data, size, &e, FUZZ_NOW, &r, &why) == 0) {
			check(dns_reply_result(r));
			dns_reply_free(r);
		}
	}
	return 0;
}
