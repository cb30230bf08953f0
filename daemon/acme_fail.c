/* acme_fail.c - why an ACME call failed, kept until the call reports it: from an HTTP answer, a local error, or a copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_internal.h"
#include "clock.h"
#include "http.h"
#include "timeparse.h"

void acme_fail_clear(struct call_failure *f)
{
	free(f->url);
	free(f->text);
	acme_problem_clear(&f->problem);
	memset(f, 0, sizeof(*f));
}

/* Fill f from an HTTP response that is not what we wanted. */
void acme_fail_from_response(struct call_failure *f, const struct http_response *r,
			       const char *what)
{
	char text[ERR_TEXT_MAX];
	const char *pname;

	acme_fail_clear(f);
	f->set = 1;
	f->url = strdup(r->url ? r->url : "");
	f->status = r->status;
	f->retry_after = -1;
	if (r->retry_after) {
		int64_t s;
		if (timeparse_retry_after(r->retry_after, clock_now(), 1, 86400, &s) == 0)
			f->retry_after = s;
	}
	if (r->status == 0) {
		f->err = ACME_ERR_UNAVAILABLE;
		snprintf(text, sizeof(text), "%s %s: %s", r->method, r->url,
			 r->error_text ? r->error_text : strerror(-r->error));
	} else {
		acme_problem_parse(r->body, r->body_len, &f->problem);
		pname = f->problem.name;
		f->err = acme_classify(r->status, pname);
		if (f->err == ACME_ERR_NONE)
			f->err = ACME_ERR_INPUT;
		snprintf(text, sizeof(text), "%s %s: HTTP %ld%s%s%s%s%s%s", r->method, r->url,
			 r->status, f->problem.type ? " " : "",
			 f->problem.type ? f->problem.type : "",
			 f->problem.detail ? ": " : "",
			 f->problem.detail ? f->problem.detail : "",
			 what ? " " : "", what ? what : "");
	}
	f->text = strdup(text);
}

void acme_fail_local(struct call_failure *f, const char *url, const char *text)
{
	acme_fail_clear(f);
	f->set = 1;
	f->url = strdup(url ? url : "");
	f->err = ACME_ERR_LOCAL;
	f->retry_after = -1;
	f->text = strdup(text);
}

void acme_problem_copy(struct acme_problem *dst, const struct acme_problem *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return;
	if (src->type) {
		dst->type = strdup(src->type);
		if (src->name && dst->type)
			dst->name = dst->type + (src->name - src->type);
	}
	if (src->detail)
		dst->detail = strdup(src->detail);
}

void acme_fail_copy(struct call_failure *dst, const struct call_failure *src)
{
	acme_fail_clear(dst);
	dst->set = 1;
	dst->relayed = 1;
	dst->url = strdup(src->url ? src->url : "");
	dst->status = src->status;
	dst->err = src->err;
	dst->retry_after = src->retry_after;
	dst->text = strdup(src->text ? src->text : "");
	acme_problem_copy(&dst->problem, &src->problem);
}

