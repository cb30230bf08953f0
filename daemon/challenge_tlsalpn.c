/* challenge_tlsalpn.c - the tls-alpn-01 solver (RFC 8737, RFC 8738 6): a TLS responder that completes a handshake only for a ClientHello offering acme-tls/1 and naming a live identifier, with that identifier's acmeIdentifier certificate; its own OpenSSL code. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509v3.h>

#include "challenge_http.h"
#include "challenge_tlsalpn.h"
#include "ident.h"
#include "log.h"

#define ALPN_ACME "acme-tls/1"
#define TLSALPN_CONNS_MAX 64            /* handshakes at once; more are closed at accept */
#define TLSALPN_PEER_MAX 8              /* of them from one address (an IPv6 /64) */
#define TLSALPN_HANDSHAKE_S 10          /* a whole handshake, however it trickles in */
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

struct tlsalpn_conn;

struct tlsalpn {
	struct challenge c;
	struct event_base *base;
	SSL_CTX *ctx;
	EVP_PKEY *key;                  /* of every validation certificate: made once */
	struct evconnlistener **ls;
	size_t nls;
	struct challenge_answer *answers;
	struct tlsalpn_conn *conns;
	unsigned nconns;
	struct event *resume_ev;        /* accepting again after an accept error */
};

struct challenge_answer {
	struct tlsalpn *s;
	struct challenge_answer *next;
	char *sni;                      /* the name the validator sends: the identifier, or its reverse name */
	X509 *cert;
	struct event *ready_ev;
	challenge_ready_fn ready;
	challenge_seen_fn seen;
	void *arg;
};

struct tlsalpn_conn {
	struct tlsalpn *s;
	struct tlsalpn_conn *next;
	SSL *ssl;
	int fd;
	struct event *ev;
	struct challenge_answer *answer;        /* the one the ClientHello asked for */
	unsigned char peer[8];                  /* IPv4 address, or an IPv6 /64 */
	struct timeval deadline;                /* monotonic: the handshake ends by then */
};

/* ---------- the validation certificate ---------- */

/* RFC 8738 6: an address is named by its reverse DNS name in the SNI. */
static char *reverse_name(const char *identifier)
{
	unsigned char b[16];
	int n = ident_ip_bytes(identifier, b);
	char *out, *p;

	if (n == 0)
		return strdup(identifier);
	out = malloc(n == 4 ? 32 : 80);
	if (!out)
		return NULL;
	p = out;
	if (n == 4) {
		sprintf(out, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return out;
	}
	for (int i = 15; i >= 0; i--)
		p += sprintf(p, "%x.%x.", b[i] & 0xf, b[i] >> 4);
	strcpy(p, "ip6.arpa");
	return out;
}

/* Self-signed, the identifier as its only SAN, the critical acmeIdentifier
 * extension holding SHA-256(key authorization) (RFC 8737 3). */
static X509 *validation_cert(EVP_PKEY *key, const char *identifier, const char *key_authorization)
{
	unsigned char digest[32], inner_der[34], ip[16], serial[16];
	int iplen = ident_ip_bytes(identifier, ip);
	X509 *x = X509_new();
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *name = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	ASN1_OCTET_STRING *ext_value = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
	X509_EXTENSION *ext = NULL;
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x || !gens || !g || !name || !ext_value || !oid ||
	    EVP_Digest(key_authorization, strlen(key_authorization), digest, NULL, EVP_sha256(), NULL) != 1 ||
	    RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	/* extnValue: the DER of Authorization ::= OCTET STRING (SIZE (32)) */
	inner_der[0] = 0x04;
	inner_der[1] = 32;
	memcpy(inner_der + 2, digest, 32);
	if (!ASN1_OCTET_STRING_set(ext_value, inner_der, sizeof(inner_der)) ||
	    !(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, ext_value)))
		goto out;
	if (!(iplen ? ASN1_OCTET_STRING_set(name, ip, iplen) :
		      ASN1_STRING_set(name, identifier, (int)strlen(identifier))))
		goto out;
	GENERAL_NAME_set0_value(g, iplen ? GEN_IPADD : GEN_DNS, name);
	name = NULL;
	if (!sk_GENERAL_NAME_push(gens, g))
		goto out;
	g = NULL;
	if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					(const unsigned char *)"acmed tls-alpn-01", -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
	    !X509_add_ext(x, ext, -1) || X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	BN_free(bn);
	X509_EXTENSION_free(ext);
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(ext_value);
	ASN1_STRING_free(name);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ---------- the ClientHello: acme-tls/1 and a live name, or nothing ---------- */

int tlsalpn_offers_acme(const unsigned char *p, size_t len)
{
	size_t list;

	if (!p || len < 2)
		return 0;
	list = (size_t)p[0] << 8 | p[1];
	if (list != len - 2)
		return 0;
	for (p += 2; list > 0;) {
		size_t n = p[0];
		if (n == 0 || n + 1 > list)
			return 0;
		if (n == strlen(ALPN_ACME) && memcmp(p + 1, ALPN_ACME, n) == 0)
			return 1;
		p += n + 1;
		list -= n + 1;
	}
	return 0;
}

int tlsalpn_sni(const unsigned char *p, size_t len, char *buf, size_t buflen)
{
	size_t n;

	if (!p || len < 5 || ((size_t)p[0] << 8 | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
		return -1;
	n = (size_t)p[3] << 8 | p[4];
	if (n == 0 || n + 5 > len || n >= buflen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[5 + i];
		if (ch <= 0x20 || ch >= 0x7f)
			return -1;
		buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
	}
	buf[n] = '\0';
	return 0;
}

static int client_hello(SSL *ssl, int *alert, void *arg)
{
	struct tlsalpn_conn *k = SSL_get_app_data(ssl);
	struct challenge_answer *a;
	char sni[256];

	const unsigned char *alpn = NULL, *name = NULL;
	size_t alpn_len = 0, name_len = 0;

	(void)arg;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &alpn, &alpn_len) ||
	    !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &name, &name_len) ||
	    !tlsalpn_offers_acme(alpn, alpn_len) || tlsalpn_sni(name, name_len, sni, sizeof(sni)) < 0) {
		*alert = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	for (a = k->s->answers; a && strcmp(a->sni, sni) != 0; a = a->next)
		;
	if (!a || SSL_use_certificate(ssl, a->cert) != 1 || SSL_use_PrivateKey(ssl, k->s->key) != 1) {
		*alert = a ? SSL_AD_INTERNAL_ERROR : SSL_AD_UNRECOGNIZED_NAME;
		return SSL_CLIENT_HELLO_ERROR;
	}
	k->answer = a;
	return SSL_CLIENT_HELLO_SUCCESS;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	static const unsigned char acme[] = "\x0a" ALPN_ACME;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, acme, sizeof(acme) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* ---------- connections ---------- */

static void conn_free(struct tlsalpn_conn *k)
{
	struct tlsalpn_conn **pp;

	for (pp = &k->s->conns; *pp && *pp != k; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = k->next;
	k->s->nconns--;
	if (k->ev)
		event_free(k->ev);
	SSL_free(k->ssl);
	close(k->fd);
	free(k);
}

static void conn_step(evutil_socket_t fd, short what, void *arg)
{
	struct tlsalpn_conn *k = arg;
	struct timeval now, tv;
	int r, e;

	(void)fd;
	event_base_gettimeofday_cached(k->s->base, &now);
	if ((what & EV_TIMEOUT) || !evutil_timercmp(&now, &k->deadline, <)) {
		conn_free(k);
		return;
	}
	evutil_timersub(&k->deadline, &now, &tv);
	r = SSL_do_handshake(k->ssl);
	if (r == 1) {
		/* RFC 8737 3: the validator closes once the handshake is done. */
		if (k->answer && k->answer->seen)
			k->answer->seen(k->answer->arg);
		SSL_shutdown(k->ssl);
		conn_free(k);
		return;
	}
	e = SSL_get_error(k->ssl, r);
	ERR_clear_error();
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
		conn_free(k);
		return;
	}
	event_del(k->ev);
	event_assign(k->ev, k->s->base, k->fd, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, conn_step, k);
	event_add(k->ev, &tv);
}

/* Where a connection comes from, as the per-peer limit counts it. */
static void peer_of(const struct sockaddr *sa, unsigned char out[8])
{
	memset(out, 0, 8);
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		memcpy(out, memcmp(a, mapped, 12) == 0 ? a + 12 : a, memcmp(a, mapped, 12) == 0 ? 4 : 8);
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct tlsalpn *s = arg;
	struct tlsalpn_conn *k, *it;
	struct timeval limit = { TLSALPN_HANDSHAKE_S, 0 };
	unsigned char peer[8];
	unsigned same = 0;

	(void)l;
	(void)salen;
	peer_of(sa, peer);
	for (it = s->conns; it; it = it->next)
		same += memcmp(it->peer, peer, sizeof(peer)) == 0;
	/* One host cannot hold every slot: a validator comes from many addresses. */
	if (s->nconns >= TLSALPN_CONNS_MAX || same >= TLSALPN_PEER_MAX || !(k = calloc(1, sizeof(*k)))) {
		close(fd);
		return;
	}
	k->s = s;
	k->fd = fd;
	memcpy(k->peer, peer, sizeof(peer));
	event_base_gettimeofday_cached(s->base, &k->deadline);
	evutil_timeradd(&k->deadline, &limit, &k->deadline);
	k->ssl = SSL_new(s->ctx);
	k->ev = event_new(s->base, fd, EV_READ, conn_step, k);
	k->next = s->conns;
	s->conns = k;
	s->nconns++;
	if (!k->ssl || !k->ev || SSL_set_fd(k->ssl, fd) != 1) {
		conn_free(k);
		return;
	}
	SSL_set_app_data(k->ssl, k);
	SSL_set_accept_state(k->ssl);
	conn_step(fd, EV_READ, k);
}

/* ---------- the solver ---------- */

static int tlsalpn_supports(struct challenge *c, const char *id_type, const char *identifier, int wildcard)
{
	(void)c;
	(void)identifier;
	/* RFC 8737 3 and RFC 8738 6: names and addresses, never a wildcard. */
	return !wildcard && (strcmp(id_type, "dns") == 0 || strcmp(id_type, "ip") == 0);
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct challenge_answer *a = arg;

	(void)fd;
	(void)what;
	a->ready(a->arg, ACME_ERR_NONE, NULL);      /* served from memory: in place at once */
}

static void answer_free(struct challenge_answer *a)
{
	if (a->ready_ev)
		event_free(a->ready_ev);
	X509_free(a->cert);
	free(a->sni);
	free(a);
}

static int tlsalpn_present(struct challenge *c, const struct challenge_request *rq, struct challenge_answer **out)
{
	struct tlsalpn *s = c->impl;
	struct challenge_answer *a = calloc(1, sizeof(*a));
	struct timeval zero = { 0, 0 };

	*out = NULL;
	if (a && (a->sni = reverse_name(rq->identifier))) {
		struct challenge_answer *it;

		/* A handshake names the identifier only: two answers for it at
		 * once (two certificates sharing a name) cannot both be served. */
		for (it = s->answers; it && strcmp(it->sni, a->sni) != 0; it = it->next)
			;
		if (it) {
			log_error(rq->cert_name, "tls-alpn-01: %s is being validated for another certificate "
				  "right now; this order tries again later", rq->identifier);
			answer_free(a);
			return -EBUSY;
		}
	}
	if (!a || !a->sni ||
	    !(a->cert = validation_cert(s->key, rq->identifier, rq->key_authorization)) ||
	    !(a->ready_ev = evtimer_new(s->base, ready_cb, a))) {
		log_error(rq->cert_name, "tls-alpn-01: cannot make the validation certificate for %s",
			  rq->identifier);
		if (a)
			answer_free(a);
		return -ENOMEM;
	}
	a->s = s;
	a->ready = rq->ready;
	a->seen = rq->seen;
	a->arg = rq->arg;
	a->next = s->answers;
	s->answers = a;
	evtimer_add(a->ready_ev, &zero);
	*out = a;
	return 0;
}

static void tlsalpn_cleanup(struct challenge *c, struct challenge_answer *a)
{
	struct tlsalpn *s = c->impl;
	struct challenge_answer **pp;
	struct tlsalpn_conn *k;

	for (pp = &s->answers; *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	for (k = s->conns; k; k = k->next)      /* a handshake under way keeps its certificate (SSL refs it) */
		if (k->answer == a)
			k->answer = NULL;
	answer_free(a);
}

static void tlsalpn_free(struct challenge *c)
{
	struct tlsalpn *s = c->impl;

	while (s->conns)
		conn_free(s->conns);
	while (s->answers)
		tlsalpn_cleanup(c, s->answers);
	for (size_t i = 0; i < s->nls; i++)
		evconnlistener_free(s->ls[i]);
	free(s->ls);
	if (s->resume_ev)
		event_free(s->resume_ev);
	SSL_CTX_free(s->ctx);
	EVP_PKEY_free(s->key);
	free(s);
}

static const struct challenge_type tlsalpn_type = {
	.name = "tls-alpn-01",
	.supports = tlsalpn_supports,
	.present = tlsalpn_present,
	.cleanup = tlsalpn_cleanup,
	.free = tlsalpn_free,
};

/* accept() failed (EMFILE, ENFILE, ENOMEM): listening again in a second,
 * rather than spinning on a socket that stays readable. */
static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct tlsalpn *s = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < s->nls; i++)
		evconnlistener_enable(s->ls[i]);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct tlsalpn *s = arg;
	struct timeval second = { 1, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	if (e == EAGAIN || e == EINTR || e == ECONNABORTED)
		return;
	log_warn(NULL, "tls-alpn-01: accept: %s; listening again in a second", strerror(e));
	for (size_t i = 0; i < s->nls; i++)
		evconnlistener_disable(s->ls[i]);
	(void)l;
	if (s->resume_ev)
		evtimer_add(s->resume_ev, &second);
}

static int add_fd(struct tlsalpn *s, int fd)
{
	struct evconnlistener **ls = realloc(s->ls, (s->nls + 1) * sizeof(*ls));

	if (!ls) {
		close(fd);
		return -ENOMEM;
	}
	s->ls = ls;
	evutil_make_socket_nonblocking(fd);
	s->ls[s->nls] = evconnlistener_new(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
					   -1, fd);
	if (!s->ls[s->nls]) {
		close(fd);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(s->ls[s->nls], on_accept_error);
	s->nls++;
	return 0;
}

struct challenge *challenge_tlsalpn_new(struct event_base *base, const char *const *addrs, size_t naddrs,
					const int *fds, size_t nfds)
{
	struct tlsalpn *s = calloc(1, sizeof(*s));
	int fd;

	if (!s)
		return NULL;
	s->c.type = &tlsalpn_type;
	s->c.impl = s;
	s->base = base;
	s->key = EVP_EC_gen("P-256");
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (!s->key || !s->ctx || !SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION)) {
		log_error(NULL, "tls-alpn-01: cannot set up TLS");
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		goto fail;
	}
	s->resume_ev = evtimer_new(base, accept_resume, s);
	SSL_CTX_set_client_hello_cb(s->ctx, client_hello, NULL);
	SSL_CTX_set_alpn_select_cb(s->ctx, alpn_select, NULL);
	SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
	/* systemd's sockets (FileDescriptorName=tls-alpn) replace the addresses */
	for (size_t i = 0; i < nfds; i++) {
		if (add_fd(s, fds[i]) < 0) {
			while (++i < nfds)
				close(fds[i]);  /* taken over: closed, not leaked */
			goto fail;
		}
	}
	for (size_t i = 0; nfds == 0 && i < naddrs; i++)
		if (ch_listen_numeric("tls-alpn-01", addrs[i], &fd) < 0 || add_fd(s, fd) < 0)
			goto fail;
	ERR_clear_error();
	return &s->c;
fail:
	ERR_clear_error();
	tlsalpn_free(&s->c);
	return NULL;
}
