/* test_store_clean.c - what a crash leaves behind is found and removed at start-up, and nothing else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"
#include "testutil.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/acmed-test-clean-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(dir);
	return 0;
}

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int exists(const char *name)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void link_to(const char *target, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(symlink(target, p), 0);
}

static void mkd(const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void test_state_dir_leftovers(void **state)
{
	(void)state;
	put(".web.json.tmp-4242-7", "{\"half\":");
	put(".account.key.tmp-1-0", "-----BEGIN PRIVATE KEY-----");
	put("web.json", "{}");
	put(".hidden", "mine");
	put("notes.tmp-12-3", "not ours: no leading dot");
	put(".web.json.tmp-12", "not ours: no second number");
	put(".web.json.tmp-ab-3", "not ours: not a pid");
	mkd(".dir.tmp-1-2");                    /* a directory: never ours */
	assert_int_equal(store_clean_leftovers(dir, 0), 2);
	assert_false(exists(".web.json.tmp-4242-7"));
	assert_false(exists(".account.key.tmp-1-0"));
	assert_true(exists("web.json"));
	assert_true(exists(".hidden"));
	assert_true(exists("notes.tmp-12-3"));
	assert_true(exists(".web.json.tmp-12"));
	assert_true(exists(".web.json.tmp-ab-3"));
	assert_true(exists(".dir.tmp-1-2"));
	/* Nothing left: nothing removed; a missing directory is not an error. */
	assert_int_equal(store_clean_leftovers(dir, 0), 0);
	assert_int_equal(store_clean_leftovers("/nonexistent-acmed-test/dir", 0), 0);
}

static void test_output_dir_leftovers(void **state)
{
	(void)state;
	mkd(".gen-1");
	mkd(".gen-2");
	mkd(".gen-3");                          /* written after current, never published */
	put(".gen-3/privkey.pem", "-----BEGIN PRIVATE KEY-----");
	link_to(".gen-2", "current");
	link_to(".gen-3", "current.tmp-999");   /* the swap a crash interrupted */
	link_to("current/privkey.pem", "privkey.pem");
	link_to("current/cert.pem", "cert.pem.tmp-999");
	link_to("elsewhere", "other.tmp-999");  /* not one of acmed's names */
	put(".privkey.pem.tmp-999-1", "x");
	assert_int_equal(store_clean_leftovers(dir, 1), 4);
	assert_false(exists(".gen-3"));
	assert_false(exists("current.tmp-999"));
	assert_false(exists("cert.pem.tmp-999"));
	assert_false(exists(".privkey.pem.tmp-999-1"));
	/* What is in use, and the previous generation, stay. */
	assert_true(exists(".gen-1"));
	assert_true(exists(".gen-2"));
	assert_true(exists("current"));
	assert_true(exists("privkey.pem"));
	assert_true(exists("other.tmp-999"));
	/* Not an output_dir: generations and links are left alone. */
	mkd(".gen-9");
	link_to(".gen-9", "current.tmp-5");
	assert_int_equal(store_clean_leftovers(dir, 0), 0);
	assert_true(exists(".gen-9"));
}

static void test_output_dir_without_current(void **state)
{
	(void)state;
	/* A crash during the very first install: every generation is unpublished. */
	mkd(".gen-1");
	put(".gen-1/privkey.pem", "-----BEGIN PRIVATE KEY-----");
	assert_int_equal(store_clean_leftovers(dir, 1), 1);
	assert_false(exists(".gen-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_dir_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_dir_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_dir_without_current, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
