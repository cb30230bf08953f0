/* test_deploy_bus.c - unit tests for deploy.c's unit reloads and batches, against a private dbus-daemon with a dbusmock systemd; the deployer's timers on a fake clock. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>
#include <systemd/sd-bus.h>

#include "deploy.h"
#include "deploytest.h"
#include "log.h"

struct bus {
	pid_t daemon, mock;
	char addr[300];
};

static struct bus mainbus;
static int have_dbus;

/* argv with stdout and stderr appended to log and, when fd3 >= 0, fd3 as its fd 3. */
static pid_t spawn(char *const argv[], const char *log, int fd3)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (fd3 >= 0)
			dup2(fd3, 3);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_ok(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

static void bus_stop(struct bus *b)
{
	if (b->mock > 0) {
		kill(b->mock, SIGTERM);
		waitpid(b->mock, NULL, 0);
	}
	if (b->daemon > 0) {
		kill(b->daemon, SIGTERM);
		waitpid(b->daemon, NULL, 0);
	}
	b->mock = b->daemon = 0;
}

static int on_owner_changed(sd_bus_message *m, void *arg, sd_bus_error *ret_error)
{
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
	    strcmp(name, *(const char **)arg) == 0 && *new_owner)
		*(const char **)arg = NULL;
	return 0;
}

/* Wait until name has an owner on the bus at addr: its NameOwnerChanged, or
 * NameHasOwner for one that came first. 0, or -1 after SAFETY_S real seconds. */
static int wait_for_name(const char *addr, const char *name)
{
	const char *waiting = name;
	sd_bus *bus = NULL;
	sd_bus_message *reply = NULL;
	int has = 0, r, left = SAFETY_S * 10;

	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, addr) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0 ||
	    sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				"org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed,
				&waiting) < 0 ||
	    sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", name) < 0 ||
	    sd_bus_message_read(reply, "b", &has) < 0) {
		sd_bus_message_unref(reply);
		sd_bus_flush_close_unref(bus);
		return -1;
	}
	sd_bus_message_unref(reply);
	while (!has && waiting && left > 0) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r == 0 && sd_bus_wait(bus, 100000) == 0)   /* real 100 ms: the clock is fake */
			left--;
	}
	sd_bus_flush_close_unref(bus);
	return has || !waiting ? 0 : -1;
}

/* A private bus (socket tmpdir/NAME); with_mock: dbusmock's systemd on it. */
static int bus_start(struct bus *b, const char *name, int with_mock)
{
	char conf[300], sock[256], params[600], logf[300];
	FILE *f;
	const char *data = getenv("ACMED_TEST_DATA");
	char tmpl[300];

	memset(b, 0, sizeof(*b));
	snprintf(sock, sizeof(sock), "%s/%s", tmpdir, name);
	snprintf(conf, sizeof(conf), "%s.conf", sock);
	snprintf(logf, sizeof(logf), "%s.log", sock);
	snprintf(b->addr, sizeof(b->addr), "unix:path=%s", sock);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig><type>session</type><listen>%s</listen><auth>EXTERNAL</auth>\n"
		"<policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>"
		"<allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n", b->addr);
	fclose(f);
	{
		char arg[320], line[400];
		char *argv[] = { (char *)"dbus-daemon", arg, (char *)"--nofork",
				 (char *)"--print-address=3", NULL };
		int p[2];
		ssize_t n;

		snprintf(arg, sizeof(arg), "--config-file=%s", conf);
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		b->daemon = spawn(argv, logf, p[1]);
		close(p[1]);
		/* it prints its address once it listens (EOF: it failed) */
		{
			struct pollfd pf = { .fd = p[0], .events = POLLIN };

			n = poll(&pf, 1, SAFETY_S * 1000) == 1 ? read(p[0], line, sizeof(line) - 1) : -1;
		}
		close(p[0]);
		if (n <= 0)
			return -1;
	}
	if (!with_mock)
		return 0;
	snprintf(tmpl, sizeof(tmpl), "%s/systemd_mock.py", data ? data : "tests/unit/data");
	snprintf(params, sizeof(params),
		 "{\"results\": {\"bad.service\": \"failed\", \"tmo.service\": \"timeout\", "
		 "\"hang.service\": \"hang\"}, \"early\": [\"early.service\"], "
		 "\"delays\": {\"slow.service\": 400}, \"marker_dir\": \"%s\"}", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", b->addr, 1);
	{
		char *argv[] = { (char *)"/usr/bin/python3", (char *)"-m", (char *)"dbusmock",
				 (char *)"--template", tmpl, (char *)"-p", params, NULL };

		b->mock = spawn(argv, logf, -1);
	}
	/* the mock takes the name when its objects are there (calls queue until its loop runs) */
	if (wait_for_name(b->addr, "org.freedesktop.systemd1") < 0)
		return -1;
	return sh_ok("busctl --address=%s call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
		     "org.freedesktop.DBus.Mock ClearCalls >/dev/null", b->addr) ? 0 : -1;
}

/* ReloadOrRestartUnit calls for unit received by the mock (mode must be "replace"). */
static int count_reloads_on(const struct bus *b, const char *unit)
{
	char cmd[512], buf[65536];
	size_t n;
	FILE *p;
	json_t *root, *data;
	json_error_t err;
	int count = 0;
	size_t i;
	json_t *call;

	snprintf(cmd, sizeof(cmd), "busctl --address=%s --json=short call org.freedesktop.systemd1 "
		 "/org/freedesktop/systemd1 org.freedesktop.DBus.Mock GetCalls", b->addr);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	root = json_loads(buf, 0, &err);
	assert_non_null(root);
	data = json_array_get(json_object_get(root, "data"), 0);
	assert_true(json_is_array(data));
	json_array_foreach(data, i, call) {
		const char *method = json_string_value(json_array_get(call, 1));
		json_t *args = json_array_get(call, 2);

		if (!method || strcmp(method, unit ? "ReloadOrRestartUnit" : "Subscribe") != 0)
			continue;
		if (!unit) {
			count++;
			continue;
		}
		if (strcmp(json_string_value(json_object_get(json_array_get(args, 0), "data")), unit))
			continue;
		assert_string_equal(json_string_value(json_object_get(json_array_get(args, 1), "data")),
				    "replace");
		count++;
	}
	json_decref(root);
	return count;
}

static int count_reloads(const char *unit)
{
	return count_reloads_on(&mainbus, unit);
}

struct asked {
	const struct bus *bus;
	const char *unit;
};

/* The mock has received the ReloadOrRestartUnit call (checked on each tick). */
static int unit_asked(void *c, const void *arg)
{
	const struct asked *a = arg;

	return count_reloads_on(a->bus, a->unit) > 0;
}

static int bus_group_setup(void **state)
{
	tmpdir_make("deploy-bus");
	have_dbus = sh_ok("command -v dbus-daemon >/dev/null && command -v busctl >/dev/null && "
			  "/usr/bin/python3 -c 'import dbusmock' 2>/dev/null");
	if (!have_dbus)
		return 0;
	if (bus_start(&mainbus, "bus", 1) < 0) {
		bus_stop(&mainbus);
		fprintf(stderr, "cannot start dbus-daemon + dbusmock, see %s/bus.log\n", tmpdir);
		return -1;
	}
	return 0;
}

static int bus_group_teardown(void **state)
{
	bus_stop(&mainbus);
	unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	tmpdir_remove();
	return 0;
}

static int bus_test_setup(void **state)
{
	if (!have_dbus)
		return 0;
	setenv("DBUS_SYSTEM_BUS_ADDRESS", mainbus.addr, 1);
	assert_true(sh_ok("busctl --address=%s call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
			  "org.freedesktop.DBus.Mock ClearCalls", mainbus.addr));
	return 0;
}

#define NEED_DBUS() do { \
	if (!have_dbus) { \
		print_message("dbus-daemon, busctl or python3-dbusmock missing: skipped\n"); \
		skip(); \
	} \
} while (0)

static void test_shared_unit_once(void **state)
{
	char body[768];
	const char *argv[] = { NULL, NULL };
	const char *u1[] = { "slow.service", "nginx.service", NULL }, *u2[] = { "nginx.service", NULL };
	struct tcert t1, t2;
	struct ctx c;

	NEED_DBUS();
	/* The hook runs before any unit is reloaded (it may copy files a service
	 * reads): when it runs, systemd has not been asked for anything. */
	snprintf(body, sizeof(body), "calls=$(busctl --address=%s --json=short call "
		 "org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.DBus.Mock "
		 "GetCalls) || exit 6\ncase \"$calls\" in *ReloadOrRestartUnit*) exit 7;; esac",
		 mainbus.addr);
	argv[0] = script("before.sh", body);
	tcert_init(&t1, "web", u1, argv);
	tcert_init(&t2, "api", u2, NULL);
	ctx_init(&c);
	deploy_set_batch_window_ms(c.d, 300);
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	advance(c.base, 200);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);   /* extends the window */
	advance(c.base, 299);
	assert_int_equal(c.nres, 0);                    /* still collecting */
	assert_int_equal(count_reloads(NULL), 0);       /* not even connected */
	advance(c.base, 1);                                 /* 300 ms after the last one */
	run(&c);
	assert_int_equal(c.nres, 2);
	assert_true(result_of(&c, "web")->ok);
	assert_true(result_of(&c, "api")->ok);
	assert_int_equal(count_reloads("nginx.service"), 1);
	assert_int_equal(count_reloads("slow.service"), 1);
	assert_int_equal(count_reloads(NULL), 1);       /* Subscribe */
	ctx_done(&c);
}

/* A window kept open by a steady trickle still closes 60 s after it opened. */
static void test_batch_window_cap(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	static struct tcert t[48];
	struct ctx c;
	char env[300], name[16];
	size_t n = 0;

	snprintf(env, sizeof(env), "unix:path=%s/no-such-bus", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", env, 1);     /* every batch fails at once: no bus needed */
	ctx_init(&c);
	deploy_set_batch_window_ms(c.d, 2000);
	for (int64_t at = 0; at < 60000; at += 1500) { /* one every 1.5 s: never 2 s of quiet */
		snprintf(name, sizeof(name), "c%zu", n);
		tcert_init(&t[n], name, u, NULL);
		assert_int_equal(deploy_certificate(c.d, &t[n].c), 0);
		n++;
		advance(c.base, at + 1500 < 60000 ? 1500 : 60000 - at - 1);
		assert_int_equal(c.nres, 0);
	}
	advance(c.base, 1);                                 /* 60 s after the first */
	run(&c);
	assert_int_equal(c.nres, n);                    /* all of them, in one batch */
	for (size_t i = 0; i < n; i++)
		assert_non_null(strstr(c.res[i].error, "cannot reach systemd on the system bus"));
	ctx_done(&c);
}

static void test_distinct_units(void **state)
{
	const char *ua[] = { "nginx.service", "a.service", "a.service", NULL };
	const char *ub[] = { "b.service", NULL };
	const char *uc[] = { "nginx.service", "b.service", NULL };
	struct tcert ta, tb, tc;
	struct ctx c;
	char *log;

	NEED_DBUS();
	tcert_init(&ta, "A", ua, NULL);
	tcert_init(&tb, "B", ub, NULL);
	tcert_init(&tc, "C", uc, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tb.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tc.c), 0);
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);    /* again: same job */
	advance(c.base, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 3);
	assert_true(result_of(&c, "A")->ok);
	assert_true(result_of(&c, "B")->ok);
	assert_true(result_of(&c, "C")->ok);
	assert_int_equal(count_reloads("nginx.service"), 1);
	assert_int_equal(count_reloads("a.service"), 1);
	assert_int_equal(count_reloads("b.service"), 1);
	assert_int_equal(count_substr(log, "reloaded nginx.service (for A, C)\n"), 1);
	assert_int_equal(count_substr(log, "reloaded b.service (for B, C)\n"), 1);
	free(log);
	ctx_done(&c);
}

static void test_failed_unit(void **state)
{
	const char *ua[] = { "bad.service", "nginx.service", NULL }, *ub[] = { "bad.service", NULL };
	const char *uc[] = { "nginx.service", NULL }, *ud[] = { "tmo.service", NULL };
	const char *ue[] = { "missing-thing.service", NULL };
	struct tcert ta, tb, tc, td, te;
	struct ctx c;
	char *log;

	NEED_DBUS();
	tcert_init(&ta, "A", ua, NULL);
	tcert_init(&tb, "B", ub, NULL);
	tcert_init(&tc, "C", uc, NULL);
	tcert_init(&td, "D", ud, NULL);
	tcert_init(&te, "E", ue, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &ta.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tb.c), 0);
	assert_int_equal(deploy_certificate(c.d, &tc.c), 0);
	assert_int_equal(deploy_certificate(c.d, &td.c), 0);
	assert_int_equal(deploy_certificate(c.d, &te.c), 0);
	advance(c.base, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 5);
	assert_false(result_of(&c, "A")->ok);
	assert_string_equal(result_of(&c, "A")->error,
			    "reload of bad.service (for A, B) failed: job result \"failed\"");
	assert_false(result_of(&c, "B")->ok);
	assert_string_equal(result_of(&c, "B")->error, result_of(&c, "A")->error);
	assert_true(result_of(&c, "C")->ok);
	assert_false(result_of(&c, "D")->ok);
	assert_non_null(strstr(result_of(&c, "D")->error, "job result \"timeout\""));
	assert_false(result_of(&c, "E")->ok);
	assert_non_null(strstr(result_of(&c, "E")->error, "missing-thing.service not found"));
	assert_int_equal(count_substr(log, "error: reload of bad.service (for A, B) failed"), 1);
	assert_int_equal(count_reloads("bad.service"), 1);
	assert_int_equal(count_reloads("nginx.service"), 1);
	free(log);
	ctx_done(&c);
}

static void test_signal_before_reply(void **state)
{
	const char *u[] = { "early.service", NULL };
	struct tcert t;
	struct ctx c;

	NEED_DBUS();
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(c.base, 100);
	run(&c);                /* the unit timeout cannot fire: the clock stands still */
	assert_int_equal(c.nres, 1);
	assert_true(c.res[0].ok);               /* matched */
	assert_int_equal(count_reloads("early.service"), 1);
	ctx_done(&c);
}

static void test_unit_timeout(void **state)
{
	const char *u[] = { "hang.service", NULL };
	const char *argv[] = { NULL, NULL };
	struct tcert t;
	struct ctx c;

	NEED_DBUS();
	argv[0] = script("ran.sh", "touch \"$0.ran\"");
	tcert_init(&t, "web", u, argv);
	ctx_init(&c);
	struct asked hang = { &mainbus, "hang.service" };

	deploy_set_unit_timeout_ms(c.d, 400);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(c.base, 100);
	wait_until(c.base, unit_asked, &c, &hang);              /* systemd has the call */
	assert_int_equal(access(tpath("ran.sh.ran"), F_OK), 0);  /* the hook ran first */
	advance(c.base, 399);
	assert_int_equal(c.nres, 0);
	advance(c.base, 1);
	run(&c);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_string_equal(c.res[0].error,
			    "reload of hang.service (for web) timed out after 400 ms waiting for systemd");
	assert_int_equal(count_reloads("hang.service"), 1);
	ctx_done(&c);
}

static void test_next_batch_reloads_again(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	struct tcert t1, t2;
	struct ctx c;
	size_t one = 1;

	NEED_DBUS();
	tcert_init(&t1, "web", u, NULL);
	tcert_init(&t2, "api", u, NULL);
	ctx_init(&c);
	c.again = &t2;          /* a certificate renewed after the first batch started */
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	advance(c.base, 100);
	wait_until(c.base, has_results, &c, &one);              /* the first batch, and api deployed */
	advance(c.base, 100);                               /* api's own batch */
	run(&c);
	assert_int_equal(c.nres, 2);
	assert_true(result_of(&c, "web")->ok);
	assert_true(result_of(&c, "api")->ok);
	assert_int_equal(count_reloads("nginx.service"), 2);
	assert_int_equal(count_reloads(NULL), 2);       /* a connection per batch */
	ctx_done(&c);
}

static void test_bus_unreachable(void **state)
{
	const char *u[] = { "nginx.service", "a.service", NULL };
	const char *argv[] = { NULL, NULL };
	struct tcert t1, t2;
	struct ctx c;
	char *log, env[300];

	NEED_DBUS();
	snprintf(env, sizeof(env), "unix:path=%s/no-such-bus", tmpdir);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", env, 1);
	argv[0] = script("ran2.sh", "touch \"$0.ran\"");
	tcert_init(&t1, "web", u, argv);
	tcert_init(&t2, "api", u + 1, NULL);
	ctx_init(&c);
	capture_start();
	assert_int_equal(deploy_certificate(c.d, &t1.c), 0);
	assert_int_equal(deploy_certificate(c.d, &t2.c), 0);
	advance(c.base, 100);                               /* the batch window */
	run(&c);
	log = capture_end();
	assert_int_equal(c.nres, 2);
	assert_false(result_of(&c, "web")->ok);
	assert_non_null(strstr(result_of(&c, "web")->error, "cannot reach systemd on the system bus ("));
	assert_non_null(strstr(result_of(&c, "web")->error, "nginx.service not reloaded"));
	assert_false(result_of(&c, "api")->ok);
	assert_int_equal(count_substr(log, "cannot reach systemd"), 1);         /* logged once */
	assert_int_equal(count_substr(log, "error: cannot reach systemd on the system bus (No such "
				       "file or directory): units nginx.service a.service not reloaded\n"), 1);
	assert_int_equal(access(tpath("ran2.sh.ran"), F_OK), 0);
	assert_int_equal(count_reloads("nginx.service"), 0);
	free(log);
	ctx_done(&c);
}

static void test_no_systemd_on_bus(void **state)
{
	const char *u[] = { "nginx.service", NULL };
	struct tcert t;
	struct ctx c;
	struct bus empty;

	NEED_DBUS();
	assert_int_equal(bus_start(&empty, "empty", 0), 0);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", empty.addr, 1);
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(c.base, 100);                               /* the batch window */
	run(&c);
	bus_stop(&empty);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "systemd did not reload nginx.service (for web): "));
	assert_non_null(strstr(c.res[0].error, "org.freedesktop.systemd1"));
	ctx_done(&c);
}

static void test_bus_lost(void **state)
{
	const char *u[] = { "hang.service", NULL };
	struct tcert t;
	struct ctx c;
	struct bus own;
	struct asked hang = { &own, "hang.service" };

	NEED_DBUS();
	assert_int_equal(bus_start(&own, "own", 1), 0);
	tcert_init(&t, "web", u, NULL);
	ctx_init(&c);
	assert_int_equal(deploy_certificate(c.d, &t.c), 0);
	advance(c.base, 100);
	wait_until(c.base, unit_asked, &c, &hang);              /* the job is in systemd's hands */
	kill(own.daemon, SIGKILL);
	run(&c);                /* the unit timeout cannot fire: the clock stands still */
	bus_stop(&own);
	assert_int_equal(c.nres, 1);
	assert_false(c.res[0].ok);
	assert_non_null(strstr(c.res[0].error, "lost the connection to systemd on the system bus"));
	ctx_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_shared_unit_once, bus_test_setup),
		cmocka_unit_test_setup(test_batch_window_cap, bus_test_setup),
		cmocka_unit_test_setup(test_distinct_units, bus_test_setup),
		cmocka_unit_test_setup(test_failed_unit, bus_test_setup),
		cmocka_unit_test_setup(test_signal_before_reply, bus_test_setup),
		cmocka_unit_test_setup(test_unit_timeout, bus_test_setup),
		cmocka_unit_test_setup(test_next_batch_reloads_again, bus_test_setup),
		cmocka_unit_test_setup(test_bus_unreachable, bus_test_setup),
		cmocka_unit_test_setup(test_no_systemd_on_bus, bus_test_setup),
		cmocka_unit_test_setup(test_bus_lost, bus_test_setup),
	};

	unsetenv("JOURNAL_STREAM");
	log_init(0);
	fakeclock_freeze();     /* the deployer's timers move only when a test says so */
	return cmocka_run_group_tests_name("deploy unit reloads", tests, bus_group_setup,
					   bus_group_teardown);
}
