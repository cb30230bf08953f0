/* ari.c - ACME Renewal Information (RFC 9773): pure helpers for the scheduler, no I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ari.h"
#include "crypto.h"
#include "timeparse.h"

#define ARI_TIME_MIN         946684800LL      /* 2000-01-01T00:00:00Z */
#define ARI_TIME_MAX         253402300799LL   /* 9999-12-31T23:59:59Z */
#define ARI_EXPLANATION_MAX  2048

int ari_cert_id_info(const struct crypto_cert_info *info, char **out)
{
	char *aki = NULL, *serial = NULL, *id = NULL;
	int rc = -ENOMEM;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!info || !info->aki || info->aki_len == 0 || !info->serial || info->serial_len == 0)
		return -EINVAL;
	aki = crypto_b64url_encode(info->aki, info->aki_len);
	serial = crypto_b64url_encode(info->serial, info->serial_len);
	if (aki && serial && asprintf(&id, "%s.%s", aki, serial) >= 0) {
		*out = id;
		rc = 0;
	}
	free(aki);
	free(serial);
	return rc;
}

int ari_cert_id(const char *cert_pem, size_t len, char **out)
{
	struct crypto_cert_info info;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cert_pem)
		return -EINVAL;
	rc = crypto_cert_info_pem(cert_pem, len, &info);
	if (rc < 0)
		return rc;
	rc = ari_cert_id_info(&info, out);
	crypto_cert_info_clear(&info);
	return rc;
}

char *ari_url(const char *renewal_info_base, const char *cert_id)
{
	size_t bl;
	char *url;

	if (!renewal_info_base || !cert_id || !*cert_id)
		return NULL;
	bl = strlen(renewal_info_base);
	while (bl > 0 && renewal_info_base[bl - 1] == '/')
		bl--;
	if (bl == 0 || bl > INT32_MAX)
		return NULL;
	if (asprintf(&url, "%.*s/%s", (int)bl, renewal_info_base, cert_id) < 0)
		return NULL;
	return url;
}

static int ari_time(json_t *win, const char *key, int64_t *out)
{
	const char *s = json_string_value(json_object_get(win, key));
	int64_t t;

	if (!s || timeparse_rfc3339(s, &t) < 0)
		return -EINVAL;
	if (t < ARI_TIME_MIN || t > ARI_TIME_MAX)
		return -EINVAL;
	*out = t;
	return 0;
}

/* A URL worth logging: printable ASCII only, so it cannot forge log lines. */
static int ari_loggable(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
			return 0;
	return n > 0 && n <= ARI_EXPLANATION_MAX;
}

int ari_parse(const char *body, size_t len, struct ari_window *out)
{
	json_t *root, *win;
	json_error_t jerr;
	const char *expl;
	int64_t start, end;
	int rc = -EINVAL;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!body || len == 0 || len > ARI_BODY_MAX)
		return -EINVAL;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root))
		goto out;
	win = json_object_get(root, "suggestedWindow");
	if (!json_is_object(win))
		goto out;
	if (ari_time(win, "start", &start) < 0 || ari_time(win, "end", &end) < 0)
		goto out;
	/* RFC 9773 4.2: end equal to or before start makes the object invalid. */
	if (end <= start)
		goto out;
	expl = json_string_value(json_object_get(root, "explanationURL"));
	if (expl && ari_loggable(expl)) {
		out->explanation_url = strdup(expl);
		if (!out->explanation_url) {
			rc = -ENOMEM;
			goto out;
		}
	}
	out->start = start;
	out->end = end;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void ari_window_clear(struct ari_window *w)
{
	if (!w)
		return;
	free(w->explanation_url);
	memset(w, 0, sizeof(*w));
}

int64_t ari_choose(const struct ari_window *w, int64_t now, uint64_t rnd)
{
	uint64_t span;
	int64_t t;

	if (!w || w->end <= w->start)
		return now;
	/* end > start, so the difference fits in 64 unsigned bits; the modulo bias
	 * is at most span / 2^64, nothing for windows of days. */
	span = (uint64_t)w->end - (uint64_t)w->start;
	t = (int64_t)((uint64_t)w->start + rnd % span);
	return t < now ? now : t;
}

int64_t ari_next_check(int64_t now, int64_t retry_after, int error)
{
	int64_t wait, t;

	if (error || retry_after < 0)
		wait = ARI_POLL_DEFAULT_S;
	else if (retry_after < ARI_RETRY_MIN_S)
		wait = ARI_RETRY_MIN_S;
	else if (retry_after > ARI_RETRY_MAX_S)
		wait = ARI_RETRY_MAX_S;
	else
		wait = retry_after;
	if (__builtin_add_overflow(now, wait, &t))
		return INT64_MAX;
	return t;
}
