/* acme_internal.h - private to acme.c and acme_account.c: the CA and call structures and the calls between them. */
#ifndef ACMED_ACME_INTERNAL_H
#define ACMED_ACME_INTERNAL_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "config.h"

#include "acme.h"
#include "acme_obj.h"

#define NONCE_POOL_MAX 64

struct http_req;

enum call_state { CALL_IDLE, CALL_WAITING, CALL_NONCE_WAIT, CALL_SENT, CALL_DELAY };

/* Why a call could not go on, kept until the call's own timer delivers it. */
struct call_failure {
	int set;
	int relayed;                    /* copied from the request the call waited on */
	int missing_resource;
	char *url;
	long status;
	enum acme_err_class err;
	int64_t retry_after;
	struct acme_problem problem;
	char *text;
};

struct acme_call {
	struct acme_ca *ca;
	char *resource;           /* directory resource name, or NULL */
	char *url;                /* resolved URL */
	char *payload;            /* NULL for POST-as-GET */
	int use_jwk;              /* newAccount: sign with the JWK, not the kid */
	int is_get;               /* unauthenticated GET of resource + "/" + suffix */
	char *suffix;
	int internal;             /* the account registration */
	const struct crypto_key *sign_key;  /* use_jwk: signs instead of the account key (a
					     * rollover's next key, acme_keychange.c) */
	acme_reply_fn cb;
	void *arg;
	enum call_state state;
	char *nonce;              /* assigned nonce, when any */
	char *signed_kid;         /* the account URL it was last signed with */
	int bad_nonce_tries, transport_tries, reregistered;
	struct http_req *req;
	struct event *timer;
	struct call_failure fail;
	TAILQ_ENTRY(acme_call) all_link;
	TAILQ_ENTRY(acme_call) wait_link;  /* in waiting or nonce_wait */
};
TAILQ_HEAD(call_list, acme_call);

enum dir_state { DIR_NONE, DIR_LOADING, DIR_OK };
/* ACCT_LOADING: key and record being read from the store; ACCT_BROKEN: the
 * key cannot be had (acct_error says why): every signed call fails. */
enum acct_state { ACCT_NONE, ACCT_LOADING, ACCT_REGISTERING, ACCT_OK, ACCT_BROKEN };

struct acme_ca {
	struct acme_client client;    /* first: the interface orders and the scheduler use */
	struct event_base *base;
	char *name, *directory_url;
	struct db *db;                /* the account key and record */
	struct acme_account_load *acct_load;
	char *acct_error;
	struct config_strv contact;
	struct http_client *http;
	struct acme_directory directory;  /* loaded when dir_state is DIR_OK */
	enum dir_state dir_state;
	struct http_req *dir_req;
	struct crypto_key *key;
	char *kid;
	enum acct_state acct_state;
	struct config_strv acct_contact;  /* what the CA has, when acct_contact_known */
	int acct_contact_known;
	struct acme_call *contact_call;   /* the account update in flight */
	struct config_strv contact_sent;  /* what it sends */
	char *eab_kid;                    /* External Account Binding, or NULL */
	unsigned char *eab_key;           /* its MAC key (a secret) */
	size_t eab_key_len;
	const char *eab_alg;
	void (*idle_cb)(void *arg);       /* acme_ca_on_idle */
	void *idle_arg;
	char *nonces[NONCE_POOL_MAX];
	size_t nnonces;
	unsigned nonce_fetching;
	unsigned nsent;
	long poll_hint_ms[2];         /* see acme_ca_poll_hint_ms */
	struct call_list all;         /* every live call */
	struct call_list waiting;     /* waiting for the directory or the account */
	struct call_list nonce_wait;  /* waiting for a nonce */
	struct acme_keychange *keychange; /* account rollover / deactivation under way */
	struct {                          /* one asked for while the account was being read */
		acme_ca_done_fn cb;
		void *arg;
		int deactivate;
	} change_wait;
};

/* acme.c: the newAccount request (signed with the JWK) for acme_account.c. */
struct acme_call *acme_ca_call_new_account(struct acme_ca *ca, const char *payload, acme_reply_fn cb,
					   void *arg);

/* acme.c: a request signed by key with its JWK (newAccount lookups with a key
 * that is not the account's yet). */
struct acme_call *acme_ca_call_with_key(struct acme_ca *ca, const char *resource, const char *payload,
					const struct crypto_key *key, acme_reply_fn cb, void *arg);

/* acme_keychange.c: keyChange's payload, made when its URL is known, just
 * before it is signed: 0, or -1 with why. 0 for any other call. */
int acme_keychange_apply(struct acme_ca *ca, struct acme_call *call, char *why, size_t whylen);
/* The account is read: a next key a rollover left (cut off before it knew the
 * CA's answer) is the account's key or not, as the CA says; then ready(ca). */
void acme_keychange_resume(struct acme_ca *ca, void (*ready)(struct acme_ca *ca));
void acme_keychange_free(struct acme_ca *ca);
/* The account is read: a rollover or deactivation asked for meanwhile starts. */
void acme_keychange_account_ready(struct acme_ca *ca);

/* acme_profile.c: a newOrder whose "profile" the CA's directory does not list:
 * -1 with why (the CA's profiles named); 0 for any other call. */
int acme_profile_check(const struct acme_ca *ca, const struct acme_call *call, char *why, size_t whylen);

/* acme_fail.c */
#define ERR_TEXT_MAX 1024
struct http_response;
void acme_fail_clear(struct call_failure *f);
/* Fill f from an HTTP response that is not what we wanted (what: a note
 * appended to the message, or NULL). */
void acme_fail_from_response(struct call_failure *f, const struct http_response *r, const char *what);
void acme_fail_local(struct call_failure *f, const char *url, const char *text);
void acme_fail_copy(struct call_failure *dst, const struct call_failure *src);
/* Deep copy of src (NULL: dst left empty); dst is overwritten, not cleared. */
void acme_problem_copy(struct acme_problem *dst, const struct acme_problem *src);

/* acme.c */
/* Fail every call waiting for the directory or the account with a copy of f
 * (only_account: leave the newAccount call itself alone). */
void acme_ca_fail_waiting(struct acme_ca *ca, const struct call_failure *f, int only_account);
/* Let every call waiting for the directory or the account go on. */
void acme_ca_kick_waiting(struct acme_ca *ca);
/* acme.c's own signed POST of payload to url (kid-signed, once the account
 * is registered), outside any order; NULL when it cannot start. */
struct acme_call *acme_ca_call_signed(struct acme_ca *ca, const char *url, const char *payload,
				      acme_reply_fn cb, void *arg);

#include "acme_account.h"

#endif
