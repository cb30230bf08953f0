/* fuzz_control.c - libFuzzer target: request lines on the control socket, split and parsed as the daemon does. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "control.h"

/* What the daemon checks of a parsed request before acting on it. */
static void check(int rc, const struct control_request *r, const char *err)
{
	json_t *answer;

	if (rc == 0) {
		if (r->cmd == CONTROL_CMD_RENEW) {
			if (r->all == (r->nnames > 0))
				abort();        /* names or all, never both or neither */
			for (size_t i = 0; i < r->nnames; i++)
				if (!r->names[i] || strlen(r->names[i]) > CONTROL_MAX_LINE)
					abort();
		} else if (r->cmd != CONTROL_CMD_STATUS && r->cmd != CONTROL_CMD_RELOAD_WAIT) {
			abort();
		}
		return;
	}
	if (rc == -ENOMEM)
		return;
	/* The error goes back to the client as JSON: printable, never empty. */
	if (!err[0])
		abort();
	for (const char *p = err; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			abort();
	answer = json_pack("{s:b, s:s}", "ok", 0, "error", err);
	if (!answer)
		abort();
	json_decref(answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	/* One request per line (LF, an optional CR before it), as on the socket. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		struct control_request r;
		char err[256];
		int rc;

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0 && len <= CONTROL_MAX_LINE) {
			rc = control_request_parse(p, len, &r, err, sizeof(err));
			check(rc, &r, err);
			control_request_clear(&r);
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}
