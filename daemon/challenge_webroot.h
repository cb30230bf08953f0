/* challenge_webroot.h - the http-01 solver for a web server that owns port 80: token files in its webroot. */
#ifndef ACMED_CHALLENGE_WEBROOT_H
#define ACMED_CHALLENGE_WEBROOT_H

#include "challenge.h"

struct worker;

/* One per certificate with `webroot:`: present() writes
 * dir/.well-known/acme-challenge/<token> (mode 0644, directories made 0755)
 * on io's thread and says ready once it is in place; cleanup() removes it.
 * Tokens that are not base64url are refused (never a path outside dir).
 * NULL on allocation failure. */
struct challenge *challenge_webroot_new(struct worker *io, const char *dir);

#endif
