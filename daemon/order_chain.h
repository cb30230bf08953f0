/* order_chain.h - preferred_chain: among the CA's alternate chains the one whose top certificate is issued by the configured name. */
#ifndef ACMED_ORDER_CHAIN_H
#define ACMED_ORDER_CHAIN_H

#include <stddef.h>

#include "acme_client.h"

struct order_chain;
/* The chain to use (the matching alternate, else the default), valid during
 * the call; note: a line for the log, or NULL. The object frees itself after. */
typedef void (*order_chain_fn)(void *arg, const char *pem, size_t len, const char *note);

/* 1 when the last certificate of pem is issued by name, else 0. */
int order_chain_top_matches(const char *pem, size_t len, const char *name);
/* The URLs of links whose rel is "alternate" (RFC 8288: <URL>; rel="alternate"),
 * https only, at most 8; 0 or -ENOMEM. */
int order_chain_alternates(const char *const *links, char ***urls, size_t *n);
void order_chain_urls_free(char **urls, size_t n);
/* Fetch the alternates (POST-as-GET) one by one until one's top is issued by
 * name; done then, or with the default pem when none is. NULL when there is
 * no alternate to try (or no memory): use the default. */
struct order_chain *order_chain_pick(struct acme_client *ca, const char *cert_name, const char *name,
				     const char *pem, size_t len, const char *const *links,
				     order_chain_fn done, void *arg);
/* Before done: stops, done will not be called. NULL ok. */
void order_chain_cancel(struct order_chain *c);

#endif
