/* test_challenge_tlsalpn.c - the tls-alpn-01 responder: the acmeIdentifier certificate for a live answer, nothing for any other ClientHello, and the hostile inputs of its parsers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "challenge_tlsalpn.h"

struct client {
	int port;
	const char *sni;
	const char *alpn;       /* one protocol, or NULL */
	int done_fd;            /* written once the handshake ended, either way */
	X509 *cert;             /* what the server presented, NULL when the handshake failed */
	char selected[32];
};

static void *client_run(void *arg)
{
	struct client *c = arg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned char protos[32];

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		SSL_set_fd(ssl, fd);
		if (c->sni)
			SSL_set_tlsext_host_name(ssl, c->sni);
		if (c->alpn) {
			protos[0] = (unsigned char)strlen(c->alpn);
			memcpy(protos + 1, c->alpn, protos[0]);
			SSL_set_alpn_protos(ssl, protos, protos[0] + 1u);
		}
		if (SSL_connect(ssl) == 1) {
			const unsigned char *sel;
			unsigned int len;

			c->cert = SSL_get1_peer_certificate(ssl);
			SSL_get0_alpn_selected(ssl, &sel, &len);
			snprintf(c->selected, sizeof(c->selected), "%.*s", (int)len, sel);
		}
	}
	close(fd);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	assert_int_equal(write(c->done_fd, "x", 1), 1);
	return NULL;
}

static int gave_up;

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	if (what & EV_TIMEOUT)
		gave_up = 1;            /* a failure bound only: nothing waits for time */
	event_base_loopbreak(arg);
}

/* The loop runs here (the responder answers) until the thread doing one
 * blocking handshake says it is done. */
static void handshake(struct event_base *base, struct client *c)
{
	struct timeval bound = { 60, 0 };
	struct event *ev;
	pthread_t t;
	int p[2];
	char b;

	assert_int_equal(pipe(p), 0);
	c->done_fd = p[1];
	ev = event_new(base, p[0], EV_READ, stop_loop, base);
	event_add(ev, &bound);
	assert_int_equal(pthread_create(&t, NULL, client_run, c), 0);
	event_base_dispatch(base);
	pthread_join(t, NULL);
	assert_false(gave_up);
	assert_int_equal(read(p[0], &b, 1), 1);
	event_free(ev);
	close(p[0]);
	close(p[1]);
}

/* The loop runs until cond holds (each turn waits for an event, never for time). */
static void run_until(struct event_base *base, const int *cond)
{
	struct timeval bound = { 60, 0 };
	struct event *ev = evtimer_new(base, stop_loop, base);

	evtimer_add(ev, &bound);
	while (!*cond && !gave_up)
		event_base_loop(base, EVLOOP_ONCE);
	assert_false(gave_up);
	event_free(ev);
}

static int ready_calls, seen_calls;

static void on_ready(void *arg, enum acme_err_class err, const char *message)
{
	(void)arg;
	(void)message;
	assert_int_equal(err, ACME_ERR_NONE);
	ready_calls++;
}

static void on_seen(void *arg)
{
	(void)arg;
	seen_calls++;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* The acmeIdentifier extension's value: critical, OCTET STRING of SHA-256(keyauth). */
static void assert_acme_identifier(X509 *x, const char *keyauth)
{
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	int at = X509_get_ext_by_OBJ(x, oid, -1);
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *v;
	unsigned char digest[32];

	assert_true(at >= 0);
	ext = X509_get_ext(x, at);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
	v = X509_EXTENSION_get_data(ext);
	assert_int_equal(ASN1_STRING_length(v), 34);
	assert_memory_equal(ASN1_STRING_get0_data(v), "\x04\x20", 2);
	EVP_Digest(keyauth, strlen(keyauth), digest, NULL, EVP_sha256(), NULL);
	assert_memory_equal(ASN1_STRING_get0_data(v) + 2, digest, 32);
	ASN1_OBJECT_free(oid);
}

static void test_live_answer_only(void **state)
{
	struct event_base *base = event_base_new();
	int port = free_port();
	char addr[32];
	const char *addrs[1] = { addr };
	struct challenge *c;
	struct challenge_answer *a = NULL, *b = NULL;
	struct challenge_request rq = { .cert_name = "t", .id_type = "dns", .identifier = "www.example.org",
					.token = "tok", .key_authorization = "tok.thumb", .ready = on_ready,
					.seen = on_seen };
	struct challenge_request rq6 = rq;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	c = challenge_tlsalpn_new(base, addrs, 1, NULL, 0);
	assert_non_null(c);
	assert_string_equal(challenge_name(c), "tls-alpn-01");
	assert_true(challenge_supports(c, "ip", "192.0.2.1", 0));
	assert_false(challenge_supports(c, "dns", "example.org", 1));
	assert_int_equal(challenge_present(c, &rq, &a), 0);
	rq6.id_type = "ip";
	rq6.identifier = "2001:db8::1";
	rq6.key_authorization = "tok.v6";
	assert_int_equal(challenge_present(c, &rq6, &b), 0);
	for (int i = 0; i < 100 && ready_calls < 2; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(ready_calls, 2);
	{       /* a second answer for a live name (another certificate): refused, not mixed up */
		struct challenge_answer *again = NULL;
		struct challenge_request other = rq;

		other.key_authorization = "tok.other";
		assert_int_equal(challenge_present(c, &other, &again), -EBUSY);
		assert_null(again);
	}

	{       /* the validator: acme-tls/1, the name: the certificate, the protocol */
		struct client cl = { .port = port, .sni = "WWW.example.org", .alpn = "acme-tls/1" };
		GENERAL_NAMES *gens;

		handshake(base, &cl);
		assert_non_null(cl.cert);
		assert_string_equal(cl.selected, "acme-tls/1");
		assert_acme_identifier(cl.cert, "tok.thumb");
		gens = X509_get_ext_d2i(cl.cert, NID_subject_alt_name, NULL, NULL);
		assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
		GENERAL_NAMES_free(gens);
		X509_free(cl.cert);
		/* the server sees the client's Finished after the client is done */
		run_until(base, &seen_calls);
		assert_int_equal(seen_calls, 1);
	}
	{       /* an address is asked for by its reverse name (RFC 8738 6) */
		struct client cl = { .port = port, .alpn = "acme-tls/1",
				     .sni = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" };

		handshake(base, &cl);
		assert_non_null(cl.cert);
		assert_acme_identifier(cl.cert, "tok.v6");
		X509_free(cl.cert);
	}
	/* anything else: no certificate */
	{
		struct client no_alpn = { .port = port, .sni = "www.example.org" };
		struct client h2 = { .port = port, .sni = "www.example.org", .alpn = "h2" };
		struct client other = { .port = port, .sni = "other.example.org", .alpn = "acme-tls/1" };
		struct client no_sni = { .port = port, .alpn = "acme-tls/1" };

		handshake(base, &no_alpn);
		handshake(base, &h2);
		handshake(base, &other);
		handshake(base, &no_sni);
		assert_null(no_alpn.cert);
		assert_null(h2.cert);
		assert_null(other.cert);
		assert_null(no_sni.cert);
	}
	/* withdrawn: nothing for that name any more */
	challenge_cleanup(c, a);
	{
		struct client cl = { .port = port, .sni = "www.example.org", .alpn = "acme-tls/1" };

		handshake(base, &cl);
		assert_null(cl.cert);
	}
	challenge_cleanup(c, b);
	challenge_free(c);
	event_base_free(base);
}

/* systemd's socket (FileDescriptorName=tls-alpn) is used as given: the addresses are ignored. */
static void test_socket_from_systemd(void **state)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	const char *bogus[1] = { "not an address" };
	struct challenge *c;
	struct challenge_answer *a = NULL;
	struct challenge_request rq = { .cert_name = "t", .id_type = "dns", .identifier = "sd.example.org",
					.token = "tok", .key_authorization = "tok.sd", .ready = on_ready };
	struct client cl = { .sni = "sd.example.org", .alpn = "acme-tls/1" };

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	c = challenge_tlsalpn_new(base, bogus, 1, &fd, 1);
	assert_non_null(c);
	assert_int_equal(challenge_present(c, &rq, &a), 0);
	cl.port = port;
	handshake(base, &cl);
	assert_non_null(cl.cert);
	assert_acme_identifier(cl.cert, "tok.sd");
	X509_free(cl.cert);
	challenge_cleanup(c, a);
	challenge_free(c);              /* closes the socket it took over */
	assert_true(fcntl(fd, F_GETFD) < 0);
	event_base_free(base);
}

static void test_parsers_hostile(void **state)
{
	static const unsigned char acme[] = "\x00\x0b\x0a" "acme-tls/1";
	static const unsigned char both[] = "\x00\x0e\x02h2\x0a" "acme-tls/1";
	static const unsigned char h2[] = "\x00\x03\x02h2";
	static const unsigned char overrun[] = "\x00\x0b\x0f" "acme-tls/1";
	static const unsigned char badlist[] = "\x00\x20\x0a" "acme-tls/1";
	static const unsigned char zero[] = "\x00\x01\x00";
	static const unsigned char name[] = "\x00\x0d\x00\x00\x0aWWW.Ex.ORG";
	static const unsigned char ctl[] = "\x00\x08\x00\x00\x05" "a\nb.c";
	static const unsigned char type1[] = "\x00\x08\x01\x00\x05" "a.b.c";
	static const unsigned char longer[] = "\x00\x08\x00\x00\x09" "a.b.c";
	char buf[64];

	(void)state;
	assert_true(tlsalpn_offers_acme(acme, sizeof(acme) - 1));
	assert_true(tlsalpn_offers_acme(both, sizeof(both) - 1));
	assert_false(tlsalpn_offers_acme(h2, sizeof(h2) - 1));
	assert_false(tlsalpn_offers_acme(overrun, sizeof(overrun) - 1));
	assert_false(tlsalpn_offers_acme(badlist, sizeof(badlist) - 1));
	assert_false(tlsalpn_offers_acme(zero, sizeof(zero) - 1));
	assert_false(tlsalpn_offers_acme(acme, 1));
	assert_false(tlsalpn_offers_acme(NULL, 0));
	assert_int_equal(tlsalpn_sni(name, sizeof(name) - 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "www.ex.org");
	assert_int_equal(tlsalpn_sni(name, sizeof(name) - 1, buf, 11), 0);     /* just fits */
	assert_int_equal(tlsalpn_sni(name, sizeof(name) - 1, buf, 10), -1);
	assert_int_equal(tlsalpn_sni(ctl, sizeof(ctl) - 1, buf, sizeof(buf)), -1);
	assert_int_equal(tlsalpn_sni(type1, sizeof(type1) - 1, buf, sizeof(buf)), -1);
	assert_int_equal(tlsalpn_sni(longer, sizeof(longer) - 1, buf, sizeof(buf)), -1);
	assert_int_equal(tlsalpn_sni(name, 4, buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_answer_only),
		cmocka_unit_test(test_socket_from_systemd),
		cmocka_unit_test(test_parsers_hostile),
	};

	signal(SIGPIPE, SIG_IGN);       /* as the daemon: a validator that hangs up is no reason to die */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
