/* scheduler_inspect.c - what a certificate's live files hold: parsed when they changed, else taken from state_dir/live.json. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "clock.h"
#include "ari.h"
#include "crypto.h"
#include "log.h"
#include "order.h"
#include "scheduler_internal.h"
#include "state.h"
#include "store.h"

/* Parse the live files into j->live. NULL when they hold a certificate and
 * its key, else why not. stamp: the files' identity before reading; the
 * result is cached on disk only if the files did not change meanwhile. */
static const char *job_parse_live(struct job *j, const char *stamp)
{
	const struct config_cert *c = j->cert;
	char *key = NULL, *full = NULL, *after = NULL;
	size_t klen = 0, flen = 0;
	struct crypto_cert_info info = {0};
	struct crypto_key *k = NULL;
	const char *why = NULL;
	int rc;

	rc = store_read_live(c->output_dir, &key, &klen, &full, &flen);
	if (rc == -ENOENT)
		return "no certificate yet";
	if (rc < 0)
		return "the certificate files cannot be read";
	if (crypto_key_from_pem(key, klen, &k) < 0)
		k = NULL;
	if (crypto_cert_inspect(full, flen, k, &info) < 0) {
		why = "fullchain.pem is not a certificate";
		goto out;
	}
	if (info.key_matches != 1) {
		why = k ? "privkey.pem does not match the certificate" :
			  "privkey.pem is not a usable private key";
		goto out;
	}
	j->live.not_before = info.not_before;
	j->live.not_after = info.not_after;
	j->live.key_type_known = info.key_type_known;
	j->live.key_type = info.key_type;
	j->live.names.v = info.names;           /* NULL-terminated, taken over */
	j->live.names.n = info.nnames;
	info.names = NULL;
	info.nnames = 0;
	j->live.issuer = info.issuer;
	info.issuer = NULL;
	ari_cert_id_info(&info, &j->live.cert_id);     /* none without an AKI: no ARI then */
	if (store_live_stamp(c->output_dir, &after) == 0 && strcmp(after, stamp) == 0) {
		j->live.stamp = after;
		after = NULL;
		sched_live_changed(j->s);
	}
out:
	free(after);
	crypto_cert_info_clear(&info);
	crypto_key_free(k);
	crypto_free_secret(key, klen);
	free(full);
	return why;
}

/* state_dir/live.json is rewritten a second after the last change: after
 * READY=1 at start-up, once for a burst of renewals. */
void sched_live_changed(struct sched *s)
{
	struct timeval later = { 1, 0 };

	s->live_dirty = 1;
	if (s->live_flush_ev && !evtimer_pending(s->live_flush_ev, NULL))
		evtimer_add(s->live_flush_ev, &later);
}

void sched_live_save(struct sched *s)
{
	const char **names;
	const struct state_live **lives;

	if (!s->live_dirty)
		return;
	s->live_dirty = 0;
	names = calloc(s->njobs + 1, sizeof(*names));
	lives = calloc(s->njobs + 1, sizeof(*lives));
	if (names && lives) {
		for (size_t i = 0; i < s->njobs; i++) {
			names[i] = s->jobs[i]->cert->name;
			lives[i] = &s->jobs[i]->live;
		}
		state_live_save_all(s->cfg->state_dir, names, lives, s->njobs);
	}
	free(names);
	free(lives);
	malloc_trim(0);
}

void sched_live_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sched_live_save(arg);
}

/* Why the live certificate must be replaced, or NULL when it is fine. The
 * files are parsed only when they changed since their last inspection. */
const char *sched_job_inspect(struct job *j)
{
	const struct config_cert *c = j->cert;
	const char *why = NULL;
	char *stamp = NULL;
	int rc;

	j->not_before = j->not_after = 0;
	j->has_cert = 0;
	/* Without key_type in the config: the type of an order in flight, else
	 * of the certificate in use (below), else the default. */
	j->key_type = !c->key_type_set && j->st.order_url ? j->st.order_key_type : c->key_type;
	free(j->cert_id);
	j->cert_id = NULL;
	rc = store_live_stamp(c->output_dir, &stamp);
	if (rc == -ENOENT)
		return "no certificate yet";
	if (rc < 0) {
		log_error(c->name, "%s: cannot look at privkey.pem and fullchain.pem: %s",
			  c->output_dir, strerror(-rc));
		return "the certificate files cannot be read";
	}
	if (!j->live_loaded) {
		state_live_set_get(j->s->live_set, c->name, &j->live);
		j->live_loaded = 1;
	}
	if (!j->live.stamp || strcmp(j->live.stamp, stamp) != 0) {
		if (j->live.stamp)
			sched_live_changed(j->s);      /* the old entry goes */
		state_live_clear(&j->live);
		why = job_parse_live(j, stamp);
	}
	free(stamp);
	if (why) {
		state_live_clear(&j->live);
		return why;
	}
	j->not_before = j->live.not_before;
	j->not_after = j->live.not_after;
	j->cert_id = j->live.cert_id ? strdup(j->live.cert_id) : NULL;
	if (!c->key_type_set && j->live.key_type_known)
		j->key_type = j->live.key_type;
	if (!names_same_set((const char *const *)j->live.names.v, j->live.names.n,
			    (const char *const *)c->domains.v, c->domains.n))
		return "the configured domains changed";
	if (!j->live.key_type_known) {
		snprintf(j->why, sizeof(j->why), "the certificate's key is of a type acmed does not "
			 "make; key_type %s", config_key_type_name(j->key_type));
		return j->why;
	}
	if (j->live.key_type != j->key_type) {
		snprintf(j->why, sizeof(j->why), "the configured key_type %s differs from the "
			 "certificate's key (%s)", config_key_type_name(j->key_type),
			 config_key_type_name(j->live.key_type));
		return j->why;
	}
	if (j->live.not_after <= clock_now())
		return "the certificate has expired";
	j->has_cert = 1;
	return NULL;
}

