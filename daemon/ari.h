/* ari.h - ACME Renewal Information (RFC 9773): CertID, renewalInfo URL and response, window choice, poll time. */
#ifndef ACMED_ARI_H
#define ACMED_ARI_H

#include <stddef.h>
#include <stdint.h>

#define ARI_POLL_DEFAULT_S   (6 * 3600)   /* no Retry-After, or after an error */
#define ARI_RETRY_MIN_S      60
#define ARI_RETRY_MAX_S      86400
#define ARI_BODY_MAX         65536        /* larger renewalInfo bodies are refused */

/* RFC 9773 section 4.1: base64url(AKI keyIdentifier) "." base64url(serial DER
 * content bytes, leading 0x00 kept), for the first certificate of a PEM chain.
 * *out is malloc'd. -EINVAL when the PEM holds no certificate or it has no AKI
 * keyIdentifier, -ENOMEM. Does not log: the caller names the certificate. */
int ari_cert_id(const char *cert_pem, size_t len, char **out);
/* The same from an already inspected certificate. */
struct crypto_cert_info;
int ari_cert_id_info(const struct crypto_cert_info *info, char **out);

/* renewalInfo URL: the directory's renewalInfo + "/" + cert_id (trailing
 * slashes of the base are dropped). malloc'd; NULL on bad arguments or ENOMEM. */
char *ari_url(const char *renewal_info_base, const char *cert_id);

struct ari_window {
	int64_t start, end;             /* unix seconds, end > start */
	char *explanation_url;          /* malloc'd, or NULL */
};

/* Parse a renewalInfo body: {"suggestedWindow": {"start": RFC 3339, "end": RFC 3339},
 * "explanationURL": "..."}. Strict: an object, no duplicate keys, both times present
 * as strings, years 2000..9999, end > start; otherwise -EINVAL and *out zeroed.
 * explanationURL is kept only when it is a string of 1..2048 printable ASCII
 * characters (it gets logged); anything else there is ignored. Other members are
 * ignored. Free the result with ari_window_clear(). */
int ari_parse(const char *body, size_t len, struct ari_window *out);
void ari_window_clear(struct ari_window *w);

/* RFC 9773 section 4.2: a uniformly random instant in [start, end) drawn from rnd;
 * when that instant is already past (the whole window is, or the draw falls in its
 * past part), now. An invalid window (end <= start, NULL) also gives now. */
int64_t ari_choose(const struct ari_window *w, int64_t now, uint64_t rnd);

/* When to fetch renewalInfo again: now + Retry-After (seconds; < 0 when absent)
 * clamped to 1 min..24 h; absent -> 6 h; error != 0 -> 6 h (error backoff wins
 * over Retry-After). Saturates instead of overflowing. */
int64_t ari_next_check(int64_t now, int64_t retry_after, int error);

#endif
