/* test_dns_rfc2136.c - unit tests for dns_rfc2136.c against a real knotd whose ACL lets the key update two names only: batches, a refused batch resent change by change, order kept, cancel, bad TSIG, no server, free with changes pending. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include "testloop.h"

#include "config.h"
#include "dns.h"
#include "dns_provider.h"
#include "log.h"
#include "testutil.h"

#define SAFETY_S 30
#define KNOTD "/usr/sbin/knotd"
#define KNOTC "/usr/sbin/knotc"
#define KEY "acmed-key"
#define SECRET "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"          /* "secretsecretsecretsecret" */
#define WRONG_SECRET "d3Jvbmd3cm9uZ3dyb25nd3Jvbmc="
#define ZONE "example.test"
#define YES "_acme-challenge.yes.example.test."           /* the ACL lets the key update these two */
#define ALSO "_acme-challenge.also.example.test."
#define NO "_acme-challenge.no.example.test."             /* and no other name */

static struct event_base *base;
static struct dns_client *client;
static char dir[64];
static char log_path[128];
static int saved_stderr = -1;

static struct knot {
	pid_t pid;
	int port;
	struct sockaddr_storage ss;
	socklen_t len;
	int have_knotc;
} knot;

/* ---- small helpers ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static socklen_t addr_of(int port, struct sockaddr_storage *ss)
{
	char s[64];
	socklen_t len;

	snprintf(s, sizeof(s), "127.0.0.1:%d", port);
	assert_int_equal(dns_parse_server(s, 53, ss, &len), 0);
	return len;
}

/* A port of 127.0.0.1 free for TCP and UDP when asked (nothing listens on it after). */
static int free_port(void)
{
	for (int i = 0; i < 50; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);
		int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0), ok;

		assert_true(t >= 0 && u >= 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(t, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(t, (struct sockaddr *)&sin, &sl), 0);
		ok = bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(t);
		close(u);
		if (ok)
			return ntohs(sin.sin_port);
	}
	fail_msg("no free port on 127.0.0.1");
	return -1;
}

/* ---- waiting on the loop (bounded) ---- */

static void run_until(int (*pred)(void *), void *a)
{
	testloop_run_until(base, pred, a, SAFETY_S);
}

static int flag_set(void *a)
{
	return *(int *)a != 0;
}

/* Runs the loop until a timer of ms fires: everything due before it ran. */
static void run_for_ms(long ms)
{
	int fired = 0;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *ev = evtimer_new(base, testloop_safety_cb, &fired);

	evtimer_add(ev, &tv);
	run_until(flag_set, &fired);
	event_free(ev);
}

static unsigned long updates_sent(void)
{
	unsigned long n;

	dns_client_counts(client, NULL, &n);
	return n;
}

static unsigned long updates_want;

static int updates_reached(void *a)
{
	(void)a;
	return updates_sent() >= updates_want;
}

/* Until the client has sent n UPDATEs in all: the n-th is in flight (its answer
 * cannot have been read in the loop turn that sent it). */
static void run_until_sent(unsigned long n)
{
	updates_want = n;
	run_until(updates_reached, NULL);
	assert_int_equal(updates_sent(), n);
}

/* ---- what the provider's callbacks saw ---- */

struct got {
	int calls, seq, msg_null;
	enum acme_err_class err;
	char msg[1024];
	/* what the callback does */
	struct dns_prov **free_prov;    /* dns_prov_free(*free_prov) */
};

static int seq;

static void on_change(void *arg, enum acme_err_class err, const char *message)
{
	struct got *g = arg;

	g->calls++;
	g->seq = ++seq;
	g->err = err;
	g->msg_null = message == NULL;
	snprintf(g->msg, sizeof(g->msg), "%s", message ? message : "");
	if (g->free_prov) {
		dns_prov_free(*g->free_prov);
		*g->free_prov = NULL;
	}
}

static int got_called(void *a)
{
	return ((struct got *)a)->calls > 0;
}

static void wait_got(struct got *g)
{
	run_until(got_called, g);
	assert_int_equal(g->calls, 1);
}

static struct dns_prov_op *change(struct dns_prov *p, int add, const char *fqdn, const char *value, struct got *g)
{
	const struct dns_change_req rq = { .add = add, .fqdn = fqdn, .value = value, .identifier = "x",
					   .cert_name = "cert" };
	struct dns_prov_op *op;

	memset(g, 0, sizeof(*g));
	op = p->ops->change(p, &rq, on_change, g);
	assert_non_null(op);
	return op;
}

static void assert_ok(const struct got *g)
{
	assert_int_equal(g->calls, 1);
	assert_int_equal(g->err, ACME_ERR_NONE);
	assert_true(g->msg_null);
}

static void assert_msg_has(const struct got *g, const char *needle)
{
	if (!strstr(g->msg, needle))
		fail_msg("message \"%s\" does not contain \"%s\"", g->msg, needle);
}

/* The provider, as dns_prov_new makes it from a dns_providers entry. */
static struct dns_prov *provider(const char *server, const char *secret, const char *zone)
{
	char name[] = "knot", key[] = KEY, alg[] = "hmac-sha256", sec[128], srv[64], zn[64];
	struct config_dns_provider cfg = { .name = name, .type = CONFIG_DNS_RFC2136, .server = srv,
					   .tsig_key = key, .tsig_algorithm = alg, .tsig_secret = sec,
					   .zone = zone ? zn : NULL, .ttl = 60 };
	struct dns_prov *p;

	snprintf(sec, sizeof(sec), "%s", secret);
	snprintf(srv, sizeof(srv), "%s", server);
	snprintf(zn, sizeof(zn), "%s", zone ? zone : "");
	p = dns_prov_new(base, client, &cfg, dir);
	assert_non_null(p);
	assert_string_equal(p->ops->type, "rfc2136");
	assert_true(p->ops->withdraws);
	assert_string_equal(p->name, "knot");
	return p;
}

static struct dns_prov *knot_provider(const char *secret)
{
	char server[64];

	snprintf(server, sizeof(server), "127.0.0.1:%d", knot.port);
	return provider(server, secret, ZONE);
}

/* ---- knotd ---- */

struct answer {
	int calls;
	enum dns_status status;
	int rcode;
	size_t n;
	char data[16][64];
	uint32_t ttl[16];
};

static void on_answer(const struct dns_result *r, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->status = r->status;
	a->rcode = r->rcode;
	a->n = 0;
	for (size_t i = 0; i < r->nanswer && a->n < 16; i++)
		if (r->answer[i].type == DNS_T_TXT) {
			snprintf(a->data[a->n], sizeof(a->data[a->n]), "%s", r->answer[i].data);
			a->ttl[a->n++] = r->answer[i].ttl;
		}
}

static int answered(void *a)
{
	return ((struct answer *)a)->calls > 0;
}

static void query(const char *name, uint16_t type, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	assert_non_null(dns_query(client, (struct sockaddr *)&knot.ss, knot.len, name, type, 0, on_answer, a));
	run_until(answered, a);
}

/* The TXT values knot serves at name, sorted, joined with ','; "" for none.
 * Each with the provider's TTL (60). */
static const char *served(const char *name, char *buf, size_t size)
{
	struct answer a;
	char *v[16];

	query(name, DNS_T_TXT, &a);
	assert_int_equal(a.status, DNS_ANSWERED);
	assert_true(a.rcode == DNS_RCODE_NOERROR || a.rcode == DNS_RCODE_NXDOMAIN);
	for (size_t i = 0; i < a.n; i++) {
		v[i] = a.data[i];
		assert_int_equal(a.ttl[i], 60);
	}
	for (size_t i = 1; i < a.n; i++)
		for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			char *x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	buf[0] = '\0';
	for (size_t i = 0; i < a.n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", v[i]);
	return buf;
}

#define assert_served(name, want) \
	do { \
		char buf_[512]; \
		assert_string_equal(served((name), buf_, sizeof(buf_)), (want)); \
	} while (0)

/* What knot decided for each UPDATE it received, in order, from its debug log:
 * D (ACL denied the key: a name it may not update), A (allowed), S (allowed
 * by the ACL, then its TSIG failed with BADSIG). knot writes each line before
 * it answers. */
static const char *knot_verdicts(char *buf, size_t size)
{
	char path[128], *text, *line, *save = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/knot.log", dir);
	text = slurp(path);
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line && n + 1 < size; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "ACL, denied, action update"))
			buf[n++] = 'D';
		else if (strstr(line, "ACL, allowed, action update"))
			buf[n++] = 'A';
		else if (strstr(line, "verification failed 'BADSIG'") && n > 0 && buf[n - 1] == 'A')
			buf[n - 1] = 'S';
	}
	buf[n] = '\0';
	free(text);
	return buf;
}

#define assert_verdicts(want) \
	do { \
		char buf_[256]; \
		assert_string_equal(knot_verdicts(buf_, sizeof(buf_)), (want)); \
	} while (0)

/* UPDATEs knot received (mod-stats server-operation[update], by knotc), or -1
 * without knotc. */
static long knot_update_count(void)
{
	char cmd[256], line[256];
	long n = 0;
	FILE *f;

	if (!knot.have_knotc)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s -s '%s/knot.sock' stats mod-stats.server-operation 2>&1", KNOTC, dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " mod-stats.server-operation[update] = %ld", &n) == 1)
			break;
	while (fgets(line, sizeof(line), f))
		;
	assert_int_equal(pclose(f), 0);
	return n;
}

/* knot counts an accepted UPDATE in the thread that received it, which may still be
 * at it when the thread that applied the UPDATE has answered: a few looks, bounded. */
static void assert_knot_got(long n)
{
	long got = knot_update_count();

	for (int i = 0; got >= 0 && got < n && i < 100; i++) {
		run_for_ms(10);
		got = knot_update_count();
	}
	if (got >= 0)
		assert_int_equal(got, n);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/acmed-test-rfc2136.XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* acmed's log (its debug lines name each UPDATE's size) into a file */
	snprintf(log_path, sizeof(log_path), "%s/stderr.log", dir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
	log_init(1);
	base = event_base_new();
	assert_non_null(base);
	client = dns_client_new(base);
	assert_non_null(client);
	seq = 0;
	memset(&knot, 0, sizeof(knot));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128], *log;
	int st;

	(void)state;
	if (knot.pid > 0) {
		kill(knot.pid, SIGTERM);
		assert_int_equal(waitpid(knot.pid, &st, 0), knot.pid);
		knot.pid = 0;
	}
	dns_client_free(client);
	client = NULL;
	event_base_free(base);
	base = NULL;
	fflush(stderr);
	log = slurp(log_path);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
	log_init(0);
	if (log)
		fputs(log, stderr);
	free(log);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* acmed's log so far. */
static int acmed_logged(const char *needle)
{
	int found;

	fflush(stderr);
	found = file_has(log_path, needle);
	assert_true(found >= 0);
	return found;
}

static int acmed_logged_count(const char *needle)
{
	char *s, *at;
	int n = 0;

	fflush(stderr);
	s = slurp(log_path);
	assert_non_null(s);
	for (at = s; (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(s);
	return n;
}

struct poll_state {
	struct answer a;
	int attempts, ready, asked;
	struct event *ev;
};

/* An SOA query to knot every 50 ms until it answers for the zone (at most 200). */
static void knot_poll(evutil_socket_t fd, short what, void *arg)
{
	struct poll_state *p = arg;
	struct timeval tv = { 0, 50000 };

	if (p->asked && p->a.calls && p->a.status == DNS_ANSWERED && p->a.rcode == DNS_RCODE_NOERROR) {
		p->ready = 1;
		return;
	}
	if (!p->asked || p->a.calls) {
		if (++p->attempts > 200) {
			p->ready = -1;
			return;
		}
		memset(&p->a, 0, sizeof(p->a));
		assert_non_null(dns_query(client, (struct sockaddr *)&knot.ss, knot.len, ZONE, DNS_T_SOA, 0,
					  on_answer, &p->a));
		p->asked = 1;
	}
	evtimer_add(p->ev, &tv);
}

static int poll_done(void *a)
{
	return ((struct poll_state *)a)->ready != 0;
}

/* knotd serving example.test; its ACL lets KEY update YES and ALSO, nothing else. */
static int knot_setup(void **state)
{
	char conf[4096], path[256], logfile[256];
	struct poll_state p = { 0 };
	struct timeval now = { 0, 0 };
	int logfd;

	setup(state);
	if (access(KNOTD, X_OK) != 0)
		return 0;
	knot.have_knotc = access(KNOTC, X_OK) == 0;
	dns_client_set_timeouts(client, 100, 1);
	knot.port = free_port();
	knot.len = addr_of(knot.port, &knot.ss);
	snprintf(path, sizeof(path), "%s/example.test.zone", dir);
	write_file(path, "$ORIGIN example.test.\n$TTL 300\n"
			 "@ SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
			 "@ NS ns1\nns1 A 127.0.0.1\n");
	snprintf(conf, sizeof(conf),
		 "server:\n    rundir: \"%s\"\n    listen: 127.0.0.1@%d\n"
		 "control:\n    listen: \"%s/knot.sock\"\n"
		 "log:\n  - target: \"%s/knot.log\"\n    any: debug\n"
		 "database:\n    storage: \"%s\"\n"
		 "mod-stats:\n  - id: counters\n    server-operation: on\n"
		 "key:\n  - id: " KEY "\n    algorithm: hmac-sha256\n    secret: " SECRET "\n"
		 "acl:\n  - id: update_acl\n    key: " KEY "\n    action: update\n"
		 "    update-owner: name\n    update-owner-match: equal\n"
		 "    update-owner-name: [" YES ", " ALSO "]\n"
		 "template:\n  - id: default\n    storage: \"%s\"\n    zonefile-sync: -1\n"
		 "    global-module: mod-stats/counters\n"
		 "zone:\n  - domain: " ZONE "\n    file: example.test.zone\n    acl: update_acl\n",
		 dir, knot.port, dir, dir, dir, dir);
	snprintf(path, sizeof(path), "%s/knot.conf", dir);
	write_file(path, conf);
	snprintf(logfile, sizeof(logfile), "%s/knotd.out", dir);
	logfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(logfd >= 0);
	knot.pid = fork();
	assert_true(knot.pid >= 0);
	if (knot.pid == 0) {
		dup2(logfd, 1);
		dup2(logfd, 2);
		execl(KNOTD, "knotd", "-c", path, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	p.ev = evtimer_new(base, knot_poll, &p);
	evtimer_add(p.ev, &now);
	run_until(poll_done, &p);
	event_free(p.ev);
	if (p.ready != 1) {
		snprintf(conf, sizeof(conf), "cat '%s' '%s/knot.log' >&2", logfile, dir);
		if (system(conf) != 0)
			fprintf(stderr, "(no knotd log)\n");
		fail_msg("knotd never answered on 127.0.0.1:%d", knot.port);
	}
	dns_client_set_timeouts(client, 2000, 3);
	return 0;
}

#define NEED_KNOT() \
	do { \
		if (knot.pid <= 0) \
			skip(); \
	} while (0)

/* ---- 1. a batch refused whole, then each change alone ---- */

static void test_refused_batch_split(void **state)
{
	struct dns_prov *p;
	struct got y, a, n, d;
	char want[256];

	(void)state;
	NEED_KNOT();
	p = knot_provider(SECRET);
	/* one loop turn: one batch */
	change(p, 1, YES, "token-yes", &y);
	change(p, 1, ALSO, "token-also", &a);
	change(p, 1, NO, "token-no", &n);
	assert_int_equal(updates_sent(), 0);    /* never from inside change() */
	run_until_sent(1);
	/* asked while the batch is in flight: after every change of it, resent ones too
	 * (had it overtaken the add, token-yes would stay) */
	change(p, 0, YES, "token-yes", &d);
	run_until(got_called, &d);
	/* yes and also made, in order; no refused alone, after them */
	assert_ok(&y);
	assert_ok(&a);
	assert_int_equal(n.calls, 1);
	assert_int_equal(y.seq, 1);
	assert_int_equal(a.seq, 2);
	assert_int_equal(n.seq, 3);
	assert_int_equal(n.err, ACME_ERR_CERT);
	snprintf(want, sizeof(want), "DNS UPDATE of zone " ZONE " refused by 127.0.0.1:%d: NOTAUTH (TSIG BADKEY)",
		 knot.port);
	assert_msg_has(&n, want);
	assert_msg_has(&n, "dns provider knot");
	assert_ok(&d);
	assert_int_equal(d.seq, 4);
	/* the three together first (refused whole: knot's ACL denied it), then each alone,
	 * then what waited */
	assert_int_equal(updates_sent(), 5);
	assert_knot_got(5);
	assert_verdicts("DAADA");
	assert_true(acmed_logged("one UPDATE of zone " ZONE " to 127.0.0.1:"));
	assert_true(acmed_logged(" with 3 changes"));
	assert_true(acmed_logged("(3 changes together): sending them one by one"));
	assert_int_equal(acmed_logged_count(" with 1 change\n"), 4);
	assert_served(YES, "");
	assert_served(ALSO, "token-also");
	{
		struct answer ans;

		query(NO, DNS_T_TXT, &ans);
		assert_int_equal(ans.rcode, DNS_RCODE_NXDOMAIN);
		assert_int_equal(ans.n, 0);
	}
	/* a later batch of allowed names only is not split */
	change(p, 1, YES, "token-2", &y);
	change(p, 0, ALSO, "token-also", &a);
	run_until(got_called, &a);
	assert_ok(&y);
	assert_ok(&a);
	assert_true(y.seq < a.seq);
	assert_int_equal(updates_sent(), 6);
	assert_knot_got(6);
	assert_verdicts("DAADAA");
	assert_served(YES, "token-2");
	assert_served(ALSO, "");
	dns_prov_free(p);
}

/* ---- 2. order kept within a batch; values at one name apart ---- */

static void test_order_and_values(void **state)
{
	struct dns_prov *p;
	struct got g[5], x, z;

	(void)state;
	NEED_KNOT();
	p = knot_provider(SECRET);
	/* add v1, delete v1, add v1; add v2, delete v2: in order, v1 stays and v2 does not
	 * (deletes moved last would lose v1, moved first would keep v2) */
	change(p, 1, YES, "v1", &g[0]);
	change(p, 0, YES, "v1", &g[1]);
	change(p, 1, YES, "v1", &g[2]);
	change(p, 1, YES, "v2", &g[3]);
	change(p, 0, YES, "v2", &g[4]);
	run_until(got_called, &g[4]);
	for (int i = 0; i < 5; i++) {
		assert_ok(&g[i]);
		assert_int_equal(g[i].seq, i + 1);
	}
	assert_int_equal(updates_sent(), 1);
	assert_knot_got(1);
	assert_verdicts("A");
	assert_true(acmed_logged(" with 5 changes"));
	assert_served(YES, "v1");
	/* two values at one name, each deleted alone: the other stays */
	change(p, 1, ALSO, "first", &x);
	change(p, 1, ALSO, "second", &z);
	run_until(got_called, &z);
	assert_ok(&x);
	assert_ok(&z);
	assert_served(ALSO, "first,second");
	change(p, 0, ALSO, "first", &x);
	wait_got(&x);
	assert_ok(&x);
	assert_served(ALSO, "second");
	change(p, 0, ALSO, "second", &z);
	wait_got(&z);
	assert_ok(&z);
	assert_served(ALSO, "");
	/* deleting a record that is not there is no error (RFC 2136 2.5.4) */
	change(p, 0, ALSO, "never", &x);
	wait_got(&x);
	assert_ok(&x);
	assert_served(YES, "v1");
	assert_int_equal(updates_sent(), 5);
	assert_knot_got(5);
	assert_verdicts("AAAAA");
	dns_prov_free(p);
}

/* ---- 3. cancel: no callback, the change still made in its place ---- */

static void test_cancel(void **state)
{
	struct dns_prov *p;
	struct dns_prov_op *op;
	struct got c, m, d;

	(void)state;
	NEED_KNOT();
	p = knot_provider(SECRET);
	/* cancelled before it is sent: still made */
	op = change(p, 1, YES, "c1", &c);
	p->ops->cancel(p, op);
	change(p, 1, ALSO, "m1", &m);
	wait_got(&m);
	assert_ok(&m);
	assert_int_equal(c.calls, 0);
	assert_int_equal(updates_sent(), 1);
	assert_served(YES, "c1");
	assert_served(ALSO, "m1");
	/* cancelled, then deleted in the same turn: the delete comes after it */
	op = change(p, 1, YES, "c2", &c);
	p->ops->cancel(p, op);
	change(p, 0, YES, "c2", &d);
	wait_got(&d);
	assert_ok(&d);
	assert_int_equal(c.calls, 0);
	assert_int_equal(updates_sent(), 2);
	assert_served(YES, "c1");
	/* cancelled before it is sent, deleted while it is in flight: after it still */
	op = change(p, 1, YES, "c3", &c);
	p->ops->cancel(p, op);
	run_until_sent(3);
	change(p, 0, YES, "c3", &d);
	wait_got(&d);
	assert_ok(&d);
	assert_int_equal(c.calls, 0);
	assert_int_equal(updates_sent(), 4);
	assert_served(YES, "c1");
	/* cancelled while in flight: made, no callback */
	op = change(p, 1, YES, "c4", &c);
	run_until_sent(5);
	p->ops->cancel(p, op);
	change(p, 1, ALSO, "m2", &m);
	wait_got(&m);
	assert_ok(&m);
	assert_int_equal(c.calls, 0);
	assert_int_equal(updates_sent(), 6);
	assert_knot_got(6);
	assert_verdicts("AAAAAA");
	assert_served(YES, "c1,c4");
	assert_served(ALSO, "m1,m2");
	dns_prov_free(p);
}

/* ---- 4. a wrong TSIG secret: each change fails, alone too ---- */

static void test_wrong_secret(void **state)
{
	struct dns_prov *p;
	struct got g[3];
	char want[256];

	(void)state;
	NEED_KNOT();
	p = knot_provider(WRONG_SECRET);
	change(p, 1, YES, "s1", &g[0]);
	change(p, 1, ALSO, "s2", &g[1]);
	change(p, 0, YES, "s3", &g[2]);
	run_until(got_called, &g[2]);
	snprintf(want, sizeof(want), "DNS UPDATE of zone " ZONE " refused by 127.0.0.1:%d: NOTAUTH (TSIG BADSIG): "
		 "check tsig_key, tsig_algorithm and tsig_secret_file of dns provider knot", knot.port);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].seq, i + 1);
		assert_int_equal(g[i].err, ACME_ERR_CERT);
		assert_msg_has(&g[i], want);
	}
	/* the batch refused, then each change alone, refused as well */
	assert_int_equal(updates_sent(), 4);
	assert_knot_got(4);
	assert_verdicts("SSSS");
	assert_true(acmed_logged("(3 changes together): sending them one by one"));
	assert_served(YES, "");
	assert_served(ALSO, "");
	dns_prov_free(p);
}

/* ---- 5. no server: no answer, within the client's tries; nothing resent ---- */

static void test_no_server(void **state)
{
	struct dns_prov *p;
	struct got g[3];
	char server[64], want[256];
	int port, fd;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	(void)state;
	dns_client_set_timeouts(client, 100, 2);
	/* a closed port: connection refused */
	port = free_port();
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	p = provider(server, SECRET, ZONE);
	change(p, 1, YES, "u1", &g[0]);
	change(p, 1, ALSO, "u2", &g[1]);
	change(p, 0, YES, "u3", &g[2]);
	run_until(got_called, &g[2]);
	snprintf(want, sizeof(want), "DNS UPDATE of zone " ZONE ": 127.0.0.1:%d: TCP connection refused", port);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].seq, i + 1);
		assert_int_equal(g[i].err, ACME_ERR_UNAVAILABLE);
		assert_string_equal(g[i].msg, want);
	}
	assert_int_equal(updates_sent(), 1);    /* not split: nobody refused anything */
	dns_prov_free(p);
	/* a server that takes the connection and never answers: the client's deadline
	 * (tries x try: 200 ms), then nothing resent */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	p = provider(server, SECRET, ZONE);
	change(p, 1, YES, "t1", &g[0]);
	change(p, 1, ALSO, "t2", &g[1]);
	run_until(got_called, &g[1]);
	snprintf(want, sizeof(want), "DNS UPDATE of zone " ZONE ": no answer from 127.0.0.1:%d over TCP (200 ms)",
		 port);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].seq, 3 + i + 1);
		assert_int_equal(g[i].err, ACME_ERR_UNAVAILABLE);
		assert_string_equal(g[i].msg, want);
	}
	assert_int_equal(updates_sent(), 2);
	dns_prov_free(p);
	close(fd);
}

/* ---- changes the provider cannot start ---- */

static void test_cannot_start(void **state)
{
	char name[] = "bad", srv[] = "ns.example.test";
	struct config_dns_provider cfg = { .name = name, .type = CONFIG_DNS_RFC2136, .server = srv, .ttl = 60 };
	const struct dns_change_req rq = { .add = 1, .fqdn = YES, .value = "v" };
	struct dns_prov *p;
	struct got g = { 0 };
	int before = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);

	(void)state;
	/* a server that is not an IP address */
	assert_null(dns_prov_new(base, client, &cfg, dir));
	assert_true(acmed_logged("dns provider bad: server ns.example.test is not an IP address"));
	/* no zone configured nor given: NULL, no callback ever */
	p = provider("127.0.0.1:53", SECRET, NULL);
	assert_null(p->ops->change(p, &rq, on_change, &g));
	assert_true(acmed_logged("dns provider knot: no zone"));
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
	dns_prov_free(p);
	assert_int_equal(g.calls, 0);
	assert_int_equal(updates_sent(), 0);
}

/* ---- 6. free with changes queued and one in flight ---- */

static void test_free_pending(void **state)
{
	const struct dns_change_req other = { .add = 1, .zone = "other.test.", .fqdn = "_acme-challenge.other.test.",
					      .value = "o1" };
	struct dns_prov *p;
	struct got g[4];
	int before;

	(void)state;
	NEED_KNOT();
	before = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
	p = knot_provider(SECRET);
	change(p, 1, YES, "f1", &g[0]);
	run_until_sent(1);                      /* f1 in flight */
	change(p, 1, ALSO, "f2", &g[1]);        /* waiting behind it */
	change(p, 0, YES, "f1", &g[2]);
	memset(&g[3], 0, sizeof(g[3]));          /* another zone: its gather timer running */
	assert_non_null(p->ops->change(p, &other, on_change, &g[3]));
	dns_prov_free(p);
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
	/* past any gather delay and the answer knot may have sent: no callback */
	run_for_ms(200);
	for (int i = 0; i < 4; i++)
		assert_int_equal(g[i].calls, 0);
	assert_int_equal(updates_sent(), 1);
	assert_served(ALSO, "");                /* the waiting ones were never sent */
	{
		long n = knot_update_count();

		assert_true(n <= 1);
	}
	/* a provider freed before its first UPDATE left: nothing sent */
	p = knot_provider(SECRET);
	change(p, 1, ALSO, "f3", &g[0]);
	dns_prov_free(p);
	run_for_ms(100);
	assert_int_equal(g[0].calls, 0);
	assert_int_equal(updates_sent(), 1);
	assert_served(ALSO, "");
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
}

/* ---- freed from inside the last callback of a batch (dns_records' idle does: the
 * callback of the last removal drops a provider a reload retired) ---- */

static void test_free_in_callback(void **state)
{
	struct dns_prov *p;
	struct got g[2], later;
	int before;

	(void)state;
	NEED_KNOT();
	before = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
	p = knot_provider(SECRET);
	change(p, 1, YES, "k1", &g[0]);
	change(p, 1, ALSO, "k2", &g[1]);
	g[1].free_prov = &p;
	run_until(got_called, &g[1]);
	assert_ok(&g[0]);
	assert_int_equal(g[1].calls, 1);
	assert_int_equal(g[1].err, ACME_ERR_NONE);
	assert_null(p);
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
	assert_served(YES, "k1");
	assert_served(ALSO, "k2");
	/* the same with a change waiting behind the batch: dropped, never sent */
	p = knot_provider(SECRET);
	change(p, 0, YES, "k1", &g[0]);
	g[0].free_prov = &p;
	run_until_sent(2);
	change(p, 0, ALSO, "k2", &later);
	run_until(got_called, &g[0]);
	assert_null(p);
	run_for_ms(100);
	assert_int_equal(later.calls, 0);
	assert_int_equal(updates_sent(), 2);
	assert_served(YES, "");
	assert_served(ALSO, "k2");
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
	/* freed from the FIRST callback of a batch: the others are not called after it */
	p = knot_provider(SECRET);
	change(p, 1, YES, "k3", &g[0]);
	change(p, 1, ALSO, "k4", &g[1]);
	g[0].free_prov = &p;
	run_until(got_called, &g[0]);
	assert_null(p);
	run_for_ms(100);
	assert_int_equal(g[1].calls, 0);
	assert_served(YES, "k3");       /* both were in the UPDATE: made all the same */
	assert_served(ALSO, "k2,k4");   /* k2: its removal above was dropped with its provider */
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), before);
}

/* A change dns_update() would refuse (a value over 255 bytes, not a name) is refused
 * when asked, and does not take the others of its turn down with it. */
static void test_bad_change_alone(void **state)
{
	char big[300];
	const struct dns_change_req bad_value = { .add = 1, .fqdn = YES, .value = big };
	const struct dns_change_req bad_name = { .add = 1, .fqdn = "a..b.example.test.", .value = "v" };
	struct dns_prov *p;
	struct got g[3];

	(void)state;
	NEED_KNOT();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	p = knot_provider(SECRET);
	change(p, 1, YES, "g1", &g[0]);
	memset(&g[1], 0, sizeof(g[1]));
	assert_null(p->ops->change(p, &bad_value, on_change, &g[1]));
	assert_null(p->ops->change(p, &bad_name, on_change, &g[1]));
	assert_true(acmed_logged("a value over 255 bytes or not a domain name"));
	change(p, 1, ALSO, "g2", &g[2]);
	run_until(got_called, &g[2]);
	assert_ok(&g[0]);
	assert_ok(&g[2]);
	assert_int_equal(g[1].calls, 0);
	assert_served(YES, "g1");
	assert_served(ALSO, "g2");
	dns_prov_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused_batch_split, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_and_values, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cannot_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_pending, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_callback, knot_setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_change_alone, knot_setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("dns_rfc2136", tests, NULL, NULL);
}
