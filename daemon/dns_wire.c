/* dns_wire.c - DNS messages with ldns (the only file that includes it): queries and UPDATEs built, TSIG (RFC 8945) signed and checked, answers parsed as hostile input. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "crypto.h"
#include "dns.h"
#include "dns_internal.h"

/* ---- names ---- */

int dns_wire_name(const char *s, uint8_t wire[DNS_NAME_WIRE_MAX], size_t *len)
{
	size_t n = 1, lab = 0, llen = 0;

	if (!s || !*s)
		return -EINVAL;
	wire[0] = 0;
	if (strcmp(s, ".") == 0) {
		*len = 1;
		return 0;
	}
	for (const char *p = s; *p; p++) {
		unsigned c = (unsigned char)*p;

		if (c == '.') {
			if (llen == 0 || n >= DNS_NAME_WIRE_MAX)
				return -EINVAL;         /* an empty label, or too long */
			wire[lab] = (uint8_t)llen;
			lab = n;
			wire[n++] = 0;
			llen = 0;
			continue;
		}
		if (c == '\\') {                        /* \DDD or \X */
			if (p[1] >= '0' && p[1] <= '9') {
				if (!(p[2] >= '0' && p[2] <= '9' && p[3] >= '0' && p[3] <= '9'))
					return -EINVAL;
				c = (unsigned)(p[1] - '0') * 100 + (unsigned)(p[2] - '0') * 10 +
				    (unsigned)(p[3] - '0');
				if (c > 255)
					return -EINVAL;
				p += 3;
			} else if (p[1] > 0x20 && p[1] < 0x7f) {
				c = (unsigned char)*++p;
			} else {
				return -EINVAL;
			}
		} else if (c <= 0x20 || c >= 0x7f) {
			return -EINVAL;
		}
		if (llen == 63 || n >= DNS_NAME_WIRE_MAX)
			return -EINVAL;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		wire[n++] = (uint8_t)c;
		llen++;
	}
	if (llen) {
		if (n >= DNS_NAME_WIRE_MAX)
			return -EINVAL;
		wire[lab] = (uint8_t)llen;
		wire[n++] = 0;
	}
	*len = n;
	return 0;
}

int dns_wire_name_text(const uint8_t *w, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	if (len == 0 || len > DNS_NAME_WIRE_MAX || size < 2)
		return -EINVAL;
	if (w[0] == 0) {
		if (len != 1)
			return -EINVAL;
		strcpy(out, ".");
		return 0;
	}
	while (i < len && w[i] != 0) {
		size_t l = w[i++];

		if (l > 63 || i + l >= len)
			return -EINVAL;
		for (size_t j = 0; j < l; j++, i++) {
			unsigned c = w[i];

			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			if (o + 5 >= size)
				return -EINVAL;
			if (c <= 0x20 || c >= 0x7f || c == '.' || c == '\\')
				o += (size_t)snprintf(out + o, size - o, "\\%03u", c);
			else
				out[o++] = (char)c;
		}
		if (o + 2 >= size)
			return -EINVAL;
		out[o++] = '.';
	}
	if (i + 1 != len)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

char *dns_name_canonical(const char *name)
{
	uint8_t w[DNS_NAME_WIRE_MAX];
	size_t n;
	char buf[1024];

	if (dns_wire_name(name, w, &n) < 0 || dns_wire_name_text(w, n, buf, sizeof(buf)) < 0)
		return NULL;
	return strdup(buf);
}


/* Wire names compared case-insensitively (label lengths, < 64, are never letters). */
static int name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++) {
		uint8_t x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t *wr16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *wr(uint8_t *p, const void *d, size_t n)
{
	memcpy(p, d, n);
	return p + n;
}

/* ---- TSIG (RFC 8945) ----
 * ldns 1.8.3's ldns_pkt_tsig_sign() knows hmac-sha384 as "hmac-shac384." (a typo in
 * ldns_digest_function): it cannot sign with it. The MACs are made here (by crypto.c,
 * OpenSSL's owner) for the four algorithms alike; ldns builds and parses the messages around them. */

static const struct {
	const char *name, *digest;
	size_t mac_len;
} tsig_algs[] = {
	{ "hmac-sha1", "SHA1", 20 },
	{ "hmac-sha256", "SHA256", 32 },
	{ "hmac-sha384", "SHA384", 48 },
	{ "hmac-sha512", "SHA512", 64 },
};

static int tsig_alg_find(const char *a)
{
	size_t n = a ? strlen(a) : 0;

	if (n && a[n - 1] == '.')
		n--;
	for (size_t i = 0; i < sizeof(tsig_algs) / sizeof(tsig_algs[0]); i++)
		if (strlen(tsig_algs[i].name) == n && strncasecmp(a, tsig_algs[i].name, n) == 0)
			return (int)i;
	return -1;
}

int dns_tsig_algorithm_known(const char *algorithm)
{
	return tsig_alg_find(algorithm) >= 0;
}

int dns_tsig_key_set(struct dns_tsig_key *k, const struct dns_tsig *t)
{
	int i;

	memset(k, 0, sizeof(*k));
	if (!t || !t->name || !t->secret_b64 || (i = tsig_alg_find(t->algorithm)) < 0 ||
	    dns_wire_name(t->name, k->name, &k->name_len) < 0 ||
	    dns_wire_name(tsig_algs[i].name, k->alg, &k->alg_len) < 0)
		return -EINVAL;
	k->digest = tsig_algs[i].digest;
	k->mac_len = tsig_algs[i].mac_len;
	if (crypto_b64_decode(t->secret_b64, strlen(t->secret_b64), k->secret, sizeof(k->secret),
			      &k->secret_len) < 0) {
		crypto_wipe(k, sizeof(*k));
		return -EINVAL;
	}
	return 0;
}

void dns_tsig_key_clear(struct dns_tsig_key *k)
{
	if (k)
		crypto_wipe(k, sizeof(*k));
}

/* The MAC (crypto.c owns OpenSSL) of the pieces, k->mac_len bytes. */
static int hmac(const struct dns_tsig_key *k, const struct crypto_part *parts, size_t nparts, uint8_t *out)
{
	size_t len = 0;

	return crypto_hmac_parts(k->digest, k->secret, k->secret_len, parts, nparts, out, &len) == 0 &&
	       len == k->mac_len ? 0 : -EIO;
}

/* The TSIG variables (RFC 8945 4.3.3) but the Other Data: at most 2*255 + 20 bytes. */
static size_t tsig_vars(uint8_t *v, const struct dns_tsig_key *k, uint64_t t, unsigned fudge,
			unsigned err, unsigned olen)
{
	uint8_t *p = wr(v, k->name, k->name_len);

	p = wr16(p, LDNS_RR_CLASS_ANY);
	p = wr16(wr16(p, 0), 0);                        /* TTL */
	p = wr(p, k->alg, k->alg_len);
	p = wr16(p, (unsigned)(t >> 32) & 0xffff);
	p = wr16(wr16(p, (unsigned)(t >> 16) & 0xffff), (unsigned)t & 0xffff);
	p = wr16(wr16(wr16(p, fudge), err), olen);
	return (size_t)(p - v);
}

/* ---- building ---- */

static int pkt_wire(ldns_pkt *p, uint16_t id, uint8_t **out, size_t *outlen)
{
	ldns_status st;

	ldns_pkt_set_id(p, id);
	st = ldns_pkt2wire(out, p, outlen);
	ldns_pkt_free(p);
	if (st != LDNS_STATUS_OK)
		return st == LDNS_STATUS_MEM_ERR ? -ENOMEM : -EINVAL;
	return 0;
}

int dns_wire_query(uint16_t id, const uint8_t *qname, size_t qlen, uint16_t qtype, int rd,
		   uint8_t **out, size_t *outlen)
{
	ldns_rdf *owner = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, qlen, qname);
	ldns_pkt *p;

	if (!owner)
		return -ENOMEM;
	p = ldns_pkt_query_new(owner, (ldns_rr_type)qtype, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0);
	if (!p)
		return -ENOMEM;
	ldns_pkt_set_edns_udp_size(p, 1232);
	return pkt_wire(p, id, out, outlen);
}

/* One UPDATE RR: "name ttl IN TXT txt" or "name 0 NONE TXT txt" (RFC 2136 2.5.1, 2.5.4). */
static ldns_rr *change_rr(const struct dns_change *ch)
{
	uint8_t w[DNS_NAME_WIRE_MAX], s[256];
	size_t wl, tl = ch->txt ? strlen(ch->txt) : 256;
	ldns_rr *rr;
	ldns_rdf *owner, *txt;

	if (tl > 255 || !ch->name || dns_wire_name(ch->name, w, &wl) < 0)
		return NULL;
	s[0] = (uint8_t)tl;
	memcpy(s + 1, ch->txt, tl);
	rr = ldns_rr_new();
	owner = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, wl, w);
	txt = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, tl + 1, s);
	if (!rr || !owner || !txt || !ldns_rr_push_rdf(rr, txt)) {
		ldns_rr_free(rr);
		ldns_rdf_deep_free(owner);
		ldns_rdf_deep_free(txt);
		return NULL;
	}
	ldns_rr_set_owner(rr, owner);
	ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
	ldns_rr_set_class(rr, ch->add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
	ldns_rr_set_ttl(rr, ch->add ? ch->ttl : 0);
	return rr;
}

/* Appends the TSIG RR to the message in *out (its ID already set). */
static int tsig_sign(uint8_t **out, size_t *outlen, const struct dns_tsig_key *k, int64_t now,
		     uint8_t *mac, size_t *maclen)
{
	uint8_t vars[2 * DNS_NAME_WIRE_MAX + 32], *m = *out, *n, *p, *rdlen;
	size_t len = *outlen, vl = tsig_vars(vars, k, (uint64_t)now, DNS_TSIG_FUDGE, 0, 0);
	struct crypto_part parts[] = { { m, len }, { vars, vl } };

	if (len + k->name_len + k->alg_len + 26 + k->mac_len > 65535 || rd16(m + 10) == 0xffff)
		return -EMSGSIZE;
	if (hmac(k, parts, 2, mac) < 0)
		return -EIO;
	*maclen = k->mac_len;
	n = realloc(m, len + k->name_len + k->alg_len + 26 + k->mac_len);
	if (!n)
		return -ENOMEM;
	*out = n;
	p = wr(n + len, k->name, k->name_len);
	p = wr16(wr16(p, LDNS_RR_TYPE_TSIG), LDNS_RR_CLASS_ANY);
	p = wr16(wr16(p, 0), 0);
	rdlen = p;
	p = wr(p + 2, k->alg, k->alg_len);
	p = wr16(p, (unsigned)((uint64_t)now >> 32) & 0xffff);
	p = wr16(wr16(p, (unsigned)((uint64_t)now >> 16) & 0xffff), (unsigned)now & 0xffff);
	p = wr16(wr16(p, DNS_TSIG_FUDGE), (unsigned)k->mac_len);
	p = wr(p, mac, k->mac_len);
	p = wr16(wr16(wr16(p, rd16(n)), 0), 0);         /* original ID, error, other len */
	wr16(rdlen, (unsigned)(p - rdlen - 2));
	wr16(n + 10, rd16(n + 10) + 1u);                /* ARCOUNT */
	*outlen = (size_t)(p - n);
	return 0;
}

int dns_wire_update(uint16_t id, const uint8_t *zone, size_t zlen, const struct dns_change *ch,
		    size_t nch, const struct dns_tsig_key *key, int64_t now, uint8_t **out,
		    size_t *outlen, uint8_t *mac, size_t *maclen)
{
	ldns_rr_list *up = ldns_rr_list_new();
	ldns_rdf *zrdf = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, zlen, zone);
	ldns_pkt *p = NULL;
	int rc = -EINVAL;

	*out = NULL;
	*maclen = 0;
	if (!up || !zrdf) {
		rc = -ENOMEM;
		goto out;
	}
	if (nch == 0 || nch > 4096)
		goto out;
	for (size_t i = 0; i < nch; i++) {
		ldns_rr *rr = change_rr(&ch[i]);

		if (!rr)
			goto out;
		if (!ldns_rr_list_push_rr(up, rr)) {
			ldns_rr_free(rr);
			rc = -ENOMEM;
			goto out;
		}
	}
	p = ldns_update_pkt_new(zrdf, LDNS_RR_CLASS_IN, NULL, up, NULL);
	zrdf = NULL;                    /* the packet's now, or freed */
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	ldns_pkt_set_rd(p, false);      /* ldns sets RD; a Z bit in an UPDATE */
	rc = pkt_wire(p, id, out, outlen);
	if (rc == 0 && *outlen > 65535)
		rc = -EMSGSIZE;
	if (rc == 0 && key)
		rc = tsig_sign(out, outlen, key, now, mac, maclen);
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
out:
	ldns_rr_list_deep_free(up);
	ldns_rdf_deep_free(zrdf);
	return rc;
}

/* ---- answers ---- */

/* Skips a name (compressed or not, pointers not followed). 0 or -1. */
static int skip_name(const uint8_t *b, size_t len, size_t *pos)
{
	size_t p = *pos;

	for (int labels = 0; labels < 128 && p < len; labels++) {
		uint8_t l = b[p];

		if ((l & 0xc0) == 0xc0) {
			if (p + 2 > len)
				return -1;
			*pos = p + 2;
			return 0;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0) {
			*pos = p + 1;
			return 0;
		}
		p += 1u + l;
	}
	return -1;
}

/* The layout of the whole message, before ldns sees it: every count backed by its
 * bytes, at most one OPT (additional section), a TSIG only as the last RR, and then
 * nothing after it. *tsig_off: where that TSIG starts, else 0. 0 or -1. */
static int walk(const uint8_t *b, size_t len, size_t *tsig_off)
{
	size_t pos = 12;
	int opt = 0;

	*tsig_off = 0;
	for (int s = 0; s < 4; s++) {
		unsigned count = rd16(b + 4 + 2 * s);

		for (unsigned i = 0; i < count; i++) {
			size_t start = pos;
			uint16_t type;

			if (skip_name(b, len, &pos) < 0 || pos + (s ? 10 : 4) > len)
				return -1;
			type = rd16(b + pos);
			if (s == 0) {
				pos += 4;
				continue;
			}
			pos += 10u + rd16(b + pos + 8);
			if (pos > len)
				return -1;
			if (type == LDNS_RR_TYPE_TSIG) {
				if (s != 3 || i + 1 != count)
					return -1;
				*tsig_off = start;
			}
			if (type == LDNS_RR_TYPE_OPT && (s != 3 || opt++))
				return -1;
		}
	}
	return *tsig_off && pos != len ? -1 : 0;
}

static int rdf_name_text(const ldns_rdf *d, char *buf, size_t size)
{
	if (!d || ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME)
		return -EINVAL;
	return dns_wire_name_text(ldns_rdf_data(d), ldns_rdf_size(d), buf, size);
}

/* A TXT's character-strings concatenated (malloc'd), or NULL: malformed, a NUL in them, no memory. */
static char *txt_data(const ldns_rr *rr)
{
	size_t total = 0, o = 0;
	char *data;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *s = ldns_rr_rdf(rr, i);
		const uint8_t *p = ldns_rdf_data(s);
		size_t n = ldns_rdf_size(s);

		if (ldns_rdf_get_type(s) != LDNS_RDF_TYPE_STR || n == 0 || (size_t)p[0] + 1 != n ||
		    memchr(p + 1, 0, n - 1))
			return NULL;
		total += n - 1;
	}
	data = malloc(total + 1);
	for (size_t i = 0; data && i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *s = ldns_rr_rdf(rr, i);

		memcpy(data + o, ldns_rdf_data(s) + 1, ldns_rdf_size(s) - 1);
		o += ldns_rdf_size(s) - 1;
	}
	if (data)
		data[o] = '\0';
	return data;
}

/* One RR as struct dns_rr: 1 kept, 0 left out (not IN, malformed, a TXT with a NUL), -ENOMEM. */
static int rr_convert(const ldns_rr *rr, struct dns_rr *out)
{
	char name[1024], data[1024] = "";
	uint16_t type = (uint16_t)ldns_rr_get_type(rr);
	const ldns_rdf *d = ldns_rr_rd_count(rr) ? ldns_rr_rdf(rr, 0) : NULL;

	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
	    rdf_name_text(ldns_rr_owner(rr), name, sizeof(name)) < 0)
		return 0;
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (ldns_rr_rd_count(rr) != 1 || ldns_rdf_size(d) != (type == DNS_T_A ? 4u : 16u) ||
		    !inet_ntop(type == DNS_T_A ? AF_INET : AF_INET6, ldns_rdf_data(d), data, sizeof(data)))
			return 0;
		break;
	case DNS_T_NS:
	case DNS_T_CNAME:
	case DNS_T_SOA:
		if (rdf_name_text(d, data, sizeof(data)) < 0)
			return 0;
		break;
	default:
		break;
	}
	if (type == DNS_T_TXT) {
		out->data = txt_data(rr);
		if (!out->data)
			return 0;       /* malformed or a NUL (out of memory: left out too) */
	} else {
		out->data = strdup(data);
	}
	out->name = strdup(name);
	out->type = type;
	out->ttl = ldns_rr_ttl(rr);
	if (!out->name || !out->data) {
		free(out->name);
		free(out->data);
		return -ENOMEM;
	}
	return 1;
}

/* Up to DNS_RR_KEEP RRs of list into rr[*n...]. */
static int section(const ldns_rr_list *list, struct dns_rr *rr, size_t *n)
{
	size_t kept = 0;

	for (size_t i = 0; list && i < ldns_rr_list_rr_count(list) && kept < DNS_RR_KEEP; i++) {
		int rc = rr_convert(ldns_rr_list_rr(list, i), &rr[*n]);

		if (rc < 0)
			return rc;
		kept += (size_t)rc;
		*n += (size_t)rc;
	}
	return 0;
}

/* The answer's TSIG against e->key: DNS_ANSWERED (*tsig_error set), or
 * DNS_BAD_ANSWER with the reason in why. */
static enum dns_status tsig_check(const ldns_pkt *pkt, const uint8_t *buf, size_t tsig_off,
				  const struct dns_expect *e, int64_t now, int *tsig_error,
				  const char **why)
{
	const struct dns_tsig_key *k = e->key;
	const ldns_rr *t = ldns_pkt_tsig(pkt);
	const ldns_rdf *f[7];
	uint8_t vars[2 * DNS_NAME_WIRE_MAX + 32], hdr[12], rmac[2], mine[DNS_TSIG_MAC_MAX];
	const uint8_t *tm, *mac, *other;
	size_t maclen, olen, vl;
	uint64_t when;
	unsigned fudge;

	*why = NULL;                    /* no TSIG: said with the rcode */
	if (!t || !tsig_off)
		return DNS_BAD_ANSWER;
	*why = "the answer's TSIG is malformed";
	if (ldns_rr_rd_count(t) != 7)
		return DNS_BAD_ANSWER;
	for (int i = 0; i < 7; i++)
		f[i] = ldns_rr_rdf(t, (size_t)i);
	if (ldns_rdf_get_type(f[0]) != LDNS_RDF_TYPE_DNAME || ldns_rdf_size(f[1]) != 6 ||
	    ldns_rdf_size(f[2]) != 2 || ldns_rdf_size(f[3]) < 2 || ldns_rdf_size(f[4]) != 2 ||
	    ldns_rdf_size(f[5]) != 2 || ldns_rdf_size(f[6]) < 2)
		return DNS_BAD_ANSWER;
	mac = ldns_rdf_data(f[3]);
	maclen = rd16(mac);
	other = ldns_rdf_data(f[6]);
	olen = rd16(other);
	if (maclen + 2 != ldns_rdf_size(f[3]) || olen + 2 != ldns_rdf_size(f[6]))
		return DNS_BAD_ANSWER;
	*why = "the answer's TSIG is for another key";
	if (!name_eq(ldns_rdf_data(ldns_rr_owner(t)), ldns_rdf_size(ldns_rr_owner(t)), k->name,
		     k->name_len) ||
	    !name_eq(ldns_rdf_data(f[0]), ldns_rdf_size(f[0]), k->alg, k->alg_len))
		return DNS_BAD_ANSWER;
	*tsig_error = rd16(ldns_rdf_data(f[5]));
	/* BADKEY, BADSIG: the server could not sign (RFC 8945 5.3.2); it refused, so NOTAUTH */
	if (maclen == 0 && ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NOTAUTH &&
	    (*tsig_error == DNS_TSIG_BADKEY || *tsig_error == DNS_TSIG_BADSIG))
		return DNS_ANSWERED;
	*why = "the answer's TSIG is not signed";
	if (maclen == 0)
		return DNS_BAD_ANSWER;
	tm = ldns_rdf_data(f[1]);
	when = (uint64_t)rd16(tm) << 32 | (uint64_t)rd16(tm + 2) << 16 | rd16(tm + 4);
	fudge = rd16(ldns_rdf_data(f[2]));
	memcpy(hdr, buf, 12);
	wr16(wr16(hdr, rd16(ldns_rdf_data(f[4]))) + 8, rd16(buf + 10) - 1u);
	vl = tsig_vars(vars, k, when, fudge, (unsigned)*tsig_error, (unsigned)olen);
	wr16(rmac, (unsigned)e->req_mac_len);
	{
		struct crypto_part parts[] = {
			{ rmac, 2 }, { e->req_mac, e->req_mac_len }, { hdr, 12 },
			{ buf + 12, tsig_off - 12 }, { vars, vl }, { other + 2, olen },
		};

		*why = "the answer's TSIG does not verify";
		if (maclen != k->mac_len || hmac(k, parts, 6, mine) < 0 ||
		    !crypto_memeq(mine, mac + 2, maclen))
			return DNS_BAD_ANSWER;
	}
	*why = "the answer's TSIG time is outside its fudge";
	if (*tsig_error != DNS_TSIG_BADTIME &&
	    (now < 0 || (uint64_t)now + fudge < when || (uint64_t)now > when + fudge))
		return DNS_BAD_ANSWER;
	return DNS_ANSWERED;
}

static int question_ok(const ldns_pkt *pkt, const struct dns_expect *e)
{
	const ldns_rr_list *q = ldns_pkt_question(pkt);
	const ldns_rr *rr;
	const ldns_rdf *o;

	if (ldns_rr_list_rr_count(q) == 0)
		return e->opcode == LDNS_PACKET_UPDATE;  /* an UPDATE's answer may leave it out */
	if (ldns_rr_list_rr_count(q) != 1)
		return 0;
	rr = ldns_rr_list_rr(q, 0);
	o = ldns_rr_owner(rr);
	return o && ldns_rr_get_type(rr) == e->qtype && ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
	       name_eq(ldns_rdf_data(o), ldns_rdf_size(o), e->qname, e->qname_len);
}

const char *dns_reject_str(enum dns_reject why)
{
	switch (why) {
	case DNS_REJECT_OTHER_ID:
		return "an answer to another message";
	case DNS_REJECT_MALFORMED:
		return "a malformed answer";
	case DNS_REJECT_QUESTION:
		return "an answer to another question";
	}
	return "an unusable answer";
}

int dns_wire_reply(const uint8_t *buf, size_t len, const struct dns_expect *e, int64_t now,
		   struct dns_reply **out, enum dns_reject *why)
{
	ldns_pkt *pkt = NULL;
	struct dns_reply *r;
	size_t tsig_off, n = 0;
	const char *bad = NULL;
	int rc;

	*out = NULL;
	*why = DNS_REJECT_OTHER_ID;
	if (len < 12 || rd16(buf) != e->id || !(buf[2] & 0x80))
		return -EBADMSG;
	*why = DNS_REJECT_QUESTION;
	if (((buf[2] >> 3) & 0xf) != e->opcode)
		return -EBADMSG;
	*why = DNS_REJECT_MALFORMED;
	if (len > 65535 || walk(buf, len, &tsig_off) < 0 ||
	    ldns_wire2pkt(&pkt, buf, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	if (!question_ok(pkt, e)) {
		ldns_pkt_free(pkt);
		*why = DNS_REJECT_QUESTION;
		return -EBADMSG;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ldns_pkt_free(pkt);
		return -ENOMEM;
	}
	r->tc = ldns_pkt_tc(pkt);
	r->res.status = DNS_ANSWERED;
	r->res.rcode = ldns_pkt_edns_extended_rcode(pkt) << 4 | ldns_pkt_get_rcode(pkt);
	r->res.authoritative = ldns_pkt_aa(pkt);
	if (e->key)
		r->res.status = tsig_check(pkt, buf, tsig_off, e, now, &r->res.tsig_error, &bad);
	if (r->res.status == DNS_ANSWERED) {
		rc = section(ldns_pkt_answer(pkt), r->rr, &n);
		r->res.answer = r->rr;
		r->res.nanswer = n;
		if (rc == 0)
			rc = section(ldns_pkt_authority(pkt), r->rr, &n);
		r->res.authority = r->rr + r->res.nanswer;
		r->res.nauthority = n - r->res.nanswer;
		if (rc < 0) {
			ldns_pkt_free(pkt);
			dns_reply_free(r);
			return rc;
		}
	}
	ldns_pkt_free(pkt);
	if (r->res.status != DNS_ANSWERED && !bad)
		snprintf(r->msg, sizeof(r->msg), "%s answered %s without a TSIG", e->server,
			 dns_rcode_str(r->res.rcode));
	else if (r->res.status != DNS_ANSWERED)
		snprintf(r->msg, sizeof(r->msg), "%s: %s", e->server, bad);
	else if (r->res.tsig_error)
		snprintf(r->msg, sizeof(r->msg), "%s answered %s (TSIG %s)", e->server,
			 dns_rcode_str(r->res.rcode), dns_tsig_error_str(r->res.tsig_error));
	else
		snprintf(r->msg, sizeof(r->msg), "%s answered %s", e->server,
			 dns_rcode_str(r->res.rcode));
	r->res.message = r->msg;
	*out = r;
	return 0;
}

int dns_reply_parse(const uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t type,
		    struct dns_reply **out)
{
	uint8_t w[DNS_NAME_WIRE_MAX];
	struct dns_expect e = { .id = id, .qname = w, .qtype = type, .server = "server" };
	enum dns_reject why;
	int rc;

	*out = NULL;
	if (dns_wire_name(name, w, &e.qname_len) < 0)
		return -EINVAL;
	rc = dns_wire_reply(buf, len, &e, 0, out, &why);
	return rc == -ENOMEM ? rc : rc < 0 ? -EBADMSG : 0;
}

const struct dns_result *dns_reply_result(const struct dns_reply *r)
{
	return &r->res;
}

void dns_reply_free(struct dns_reply *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->res.nanswer + r->res.nauthority; i++) {
		free(r->rr[i].name);
		free(r->rr[i].data);
	}
	free(r);
}
