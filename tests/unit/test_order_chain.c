/* test_order_chain.c - the alternate chains a CA offers, read from Link headers, with hostile values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "order_chain.h"

static void expect_urls(const char *const *links, const char *want)
{
	char **urls = NULL, got[2048] = "";
	size_t n = 0;

	assert_int_equal(order_chain_alternates(links, &urls, &n), 0);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", urls[i]);
	if (strcmp(got, want) != 0)
		fail_msg("got \"%s\", want \"%s\"", got, want);
	order_chain_urls_free(urls, n);
}

static void test_alternates(void **state)
{
	const char *const real[] = {
		"<https://ca.example/directory>;rel=\"index\"",
		"<https://ca.example/cert/abc/1>;rel=\"alternate\"",
		"<https://ca.example/cert/abc/2>; rel=alternate",
		" <https://ca.example/cert/abc/3> ; REL = \"up Alternate\"",
		NULL };
	const char *const hostile[] = {
		"<http://ca.example/cert/1>;rel=\"alternate\"",          /* not https */
		"<https://ca.example/cert/2;rel=\"alternate\"",          /* no '>' */
		"https://ca.example/cert/3;rel=\"alternate\"",           /* no '<' */
		"<https://ca.example/cert/4>;rel=\"alternates\"",        /* another rel */
		"<https://ca.example/cert/5>;relx=\"alternate\"",
		"<https://ca example/6>;rel=\"alternate\"",              /* a space in the URL */
		"<https://>;rel=\"alternate\"",
		"<https://ca.example/7>",
		"",
		";rel=\"alternate\"",
		NULL };
	const char *many[12];

	(void)state;
	expect_urls(real, "https://ca.example/cert/abc/1 https://ca.example/cert/abc/2 https://ca.example/cert/abc/3");
	expect_urls(hostile, "");
	expect_urls(NULL, "");
	for (int i = 0; i < 11; i++)
		many[i] = "<https://ca.example/c>;rel=\"alternate\"";
	many[11] = NULL;
	expect_urls(many, "https://ca.example/c https://ca.example/c https://ca.example/c https://ca.example/c "
		    "https://ca.example/c https://ca.example/c https://ca.example/c https://ca.example/c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alternates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
