/*
 * cluster.c - the cluster's own TLS identity and the active node's
 * advertisement (cluster.h).
 *
 * The first node to become active generates an ECDSA P-256 key and a
 * self-signed certificate ("coffer-cluster-<cluster id>", 10 years, CA and
 * server/client use) and stores both below the barrier at
 * core/cluster/tls, as Vault keeps its cluster certificates. Every unsealed
 * node (standbys too: a read, never a write) loads them: the active node's
 * cluster listener presents the certificate and accepts only clients that
 * present it back; a standby presents it when it forwards a request and
 * trusts only a server that presents it. Nobody without the barrier key can
 * join the conversation.
 *
 * The key PEM lives in secmem (locked, wiped at seal). `cluster_mu` guards
 * the loaded material and its generation counter.
 */
#include "core/cluster.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core_int.h"
#include "core/state.h"
#include "util/log.h"
#include "util/timefmt.h"
#include "util/secmem.h"
#include "util/x509gen.h"

#define TLS_KEY "cluster/tls"

/* A fresh key and self-signed certificate as PEM (key in clear here: the
 * caller stores it below the barrier and wipes its copy). */
static int generate(const char *cluster_id, char **cert_pem, char **key_pem, size_t *key_len,
		    struct verr *err)
{
	char cn[96];
	snprintf(cn, sizeof(cn), "coffer-cluster-%s", cluster_id && *cluster_id ? cluster_id : "local");
	if (x509gen_ca(cn, "coffer-cluster", 10L * 365, cert_pem, key_pem, key_len))
		return verr_set(err, VERR_INTERNAL, "could not generate the cluster certificate");
	return 0;
}

static void set_material(struct core *c, char *cert, char *key, size_t key_len)
{
	pthread_mutex_lock(&c->cluster_mu);
	free(c->cluster_cert);
	if (c->cluster_key)
		secmem_free(c->cluster_key, c->cluster_key_len + 1);
	c->cluster_cert = cert;
	c->cluster_key = key;
	c->cluster_key_len = key_len;
	c->cluster_gen++;
	pthread_mutex_unlock(&c->cluster_mu);
}

int cluster_tls_load(struct core *c, bool create, struct verr *err)
{
	struct storage_view v;
	storage_view_init(&v, c->bphys, "core/");
	json_t *j = NULL;
	int rc = view_get_json(&v, TLS_KEY, &j, err);
	if (rc)
		return rc;
	const char *cert = json_string_value(json_object_get(j, "cert"));
	const char *key = json_string_value(json_object_get(j, "key"));
	if (cert && key) {
		size_t kl = strlen(key);
		char *kc = secmem_alloc(kl + 1), *cc = strdup(cert);
		if (!kc || !cc) {
			free(cc);
			if (kc)
				secmem_free(kc, kl + 1);
			json_decref(j);
			return verr_set(err, VERR_INTERNAL, "out of memory");
		}
		memcpy(kc, key, kl + 1);
		json_decref(j);
		set_material(c, cc, kc, kl);
		return 0;
	}
	json_decref(j);
	if (!create)
		return 0; /* a standby before the first active wrote it */
	char id[40];
	state_cluster_id(c, id);
	char *cp = NULL, *kp = NULL;
	size_t kl = 0;
	rc = generate(id, &cp, &kp, &kl, err);
	if (rc)
		return rc;
	j = json_pack("{s:s,s:s}", "cert", cp, "key", kp);
	rc = j ? view_put_json(&v, TLS_KEY, j, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(j);
	if (rc) {
		free(cp);
		secmem_free(kp, kl + 1);
		return rc;
	}
	log_info("core", "generated the cluster TLS certificate");
	set_material(c, cp, kp, kl);
	return 0;
}

void cluster_tls_clear(struct core *c)
{
	set_material(c, NULL, NULL, 0);
}

int core_cluster_tls(struct core *c, char **cert_pem, char **key_pem, size_t *key_len,
		     uint64_t *gen)
{
	*cert_pem = *key_pem = NULL;
	*key_len = 0;
	pthread_mutex_lock(&c->cluster_mu);
	*gen = c->cluster_gen;
	int rc = -1;
	if (c->cluster_cert && c->cluster_key) {
		*cert_pem = strdup(c->cluster_cert);
		*key_pem = secmem_alloc(c->cluster_key_len + 1);
		if (*cert_pem && *key_pem) {
			memcpy(*key_pem, c->cluster_key, c->cluster_key_len + 1);
			*key_len = c->cluster_key_len;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&c->cluster_mu);
	if (rc) {
		free(*cert_pem);
		if (*key_pem)
			secmem_free(*key_pem, c->cluster_key_len + 1);
		*cert_pem = *key_pem = NULL;
	}
	return rc;
}

/* ---- the advertisement in the HA lock ---- */

char *cluster_advertisement(struct core *c)
{
	json_t *j = json_pack("{s:s,s:s,s:s}", "api_addr", c->o.api_addr ? c->o.api_addr : "",
			      "cluster_addr", c->o.cluster_addr ? c->o.cluster_addr : "", "node_id",
			      c->node_id);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	return s;
}

int cluster_parse_advertisement(const char *value, char **api_addr, char **cluster_addr)
{
	*api_addr = *cluster_addr = NULL;
	if (!value)
		return -1;
	json_t *j = value[0] == '{' ? json_loads(value, 0, NULL) : NULL;
	if (!j) {
		/* a bare address (a backend that stores only the API address) */
		*api_addr = strdup(value);
		*cluster_addr = strdup("");
	} else {
		const char *a = json_string_value(json_object_get(j, "api_addr"));
		const char *ca = json_string_value(json_object_get(j, "cluster_addr"));
		*api_addr = strdup(a ? a : "");
		*cluster_addr = strdup(ca ? ca : "");
		json_decref(j);
	}
	if (!*api_addr || !*cluster_addr) {
		free(*api_addr);
		free(*cluster_addr);
		*api_addr = *cluster_addr = NULL;
		return -1;
	}
	return 0;
}

void core_forward_free(struct core_forward *f)
{
	if (!f)
		return;
	free(f->cluster_addr);
	free(f->api_addr);
	free(f->cert_pem);
	if (f->key_pem)
		secmem_free(f->key_pem, f->key_len + 1);
	memset(f, 0, sizeof(*f));
}

int core_forward_target(struct core *c, struct core_forward *f, struct verr *err)
{
	memset(f, 0, sizeof(*f));
	if (state_get(c) != CORE_STANDBY)
		return verr_set(err, VERR_NOT_FOUND, "not a standby");
	char *value = NULL;
	bool self = false;
	int rc = state_leader_value(c, &value, &self, err);
	if (rc)
		return rc;
	if (!value || !*value || self) {
		free(value);
		return verr_set(err, VERR_NOT_FOUND, "no active node is known");
	}
	rc = cluster_parse_advertisement(value, &f->api_addr, &f->cluster_addr);
	free(value);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!f->cluster_addr[0]) {
		core_forward_free(f);
		return verr_set(err, VERR_NOT_FOUND, "the active node advertises no cluster address");
	}
	uint64_t gen = 0;
	if (core_cluster_tls(c, &f->cert_pem, &f->key_pem, &f->key_len, &gen)) {
		/* the active node may have written it after this node unsealed */
		struct verr e2 = {0};
		pthread_rwlock_rdlock(&c->state_lock);
		if (state_get(c) == CORE_STANDBY)
			cluster_tls_load(c, false, &e2);
		pthread_rwlock_unlock(&c->state_lock);
		if (core_cluster_tls(c, &f->cert_pem, &f->key_pem, &f->key_len, &gen)) {
			core_forward_free(f);
			return verr_set(err, VERR_NOT_FOUND, "no cluster certificate yet");
		}
	}
	return 0;
}

/* ---- heartbeats for sys/ha-status ---- */

#define ECHO_FORGET_MS 30000 /* a standby silent this long is left out */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *self_node(struct core *c)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1))
		host[0] = '\0';
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "node_id", c->node_id, "hostname", host,
			 "api_address", c->o.api_addr ? c->o.api_addr : "", "cluster_address",
			 c->o.cluster_addr ? c->o.cluster_addr : "", "version", COFFER_VERSION);
}

char *core_ha_echo_body(struct core *c)
{
	json_t *j = self_node(c);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

int core_ha_echo(struct core *c, const char *body, size_t len, struct verr *err)
{
	if (state_get(c) != CORE_ACTIVE)
		return verr_set(err, VERR_STANDBY, "not the active node");
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *id = json_string_value(json_object_get(j, "node_id"));
	if (!json_is_object(j) || !id || !*id || strlen(id) > 64) {
		json_decref(j);
		return verr_set(err, VERR_INVALID, "malformed echo");
	}
	json_t *n = json_pack("{s:s,s:s,s:s,s:s,s:I}", "hostname",
			      json_string_value(json_object_get(j, "hostname")) ?: "", "api_address",
			      json_string_value(json_object_get(j, "api_address")) ?: "",
			      "cluster_address",
			      json_string_value(json_object_get(j, "cluster_address")) ?: "", "version",
			      json_string_value(json_object_get(j, "version")) ?: "", "last_echo_ms",
			      (json_int_t)wall_ms());
	pthread_mutex_lock(&c->echo_mu);
	if (!c->echoes)
		c->echoes = json_object();
	if (n && c->echoes && json_object_size(c->echoes) < 64)
		json_object_set_new(c->echoes, id, n);
	else if (n && c->echoes && json_object_get(c->echoes, id))
		json_object_set_new(c->echoes, id, n);
	else
		json_decref(n);
	pthread_mutex_unlock(&c->echo_mu);
	json_decref(j);
	return 0;
}

int cluster_ha_status(struct core *c, json_t **out, struct verr *err)
{
	*out = NULL;
	json_t *nodes = json_array(), *me = self_node(c);
	if (!nodes || !me) {
		json_decref(nodes);
		json_decref(me);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	json_object_del(me, "node_id");
	json_object_set_new(me, "active_node", json_true());
	json_object_set_new(me, "last_echo", json_null());
	json_object_set_new(me, "upgrade_version", json_string(""));
	json_object_set_new(me, "redundancy_zone", json_string(""));
	json_array_append_new(nodes, me);
	int64_t now = wall_ms();
	pthread_mutex_lock(&c->echo_mu);
	const char *id;
	json_t *n, *tmp;
	json_object_foreach_safe(c->echoes, tmp, id, n) {
		int64_t last = json_integer_value(json_object_get(n, "last_echo_ms"));
		if (now - last > ECHO_FORGET_MS || !strcmp(id, c->node_id)) {
			json_object_del(c->echoes, id);
			continue;
		}
		char t[TIMEFMT_MAX];
		timefmt_rfc3339(t, last / 1000, (int)(last % 1000) * 1000000, TIMEFMT_NANO);
		json_t *e = json_pack("{s:O,s:O,s:O,s:b,s:s,s:O,s:s,s:s}", "hostname",
				      json_object_get(n, "hostname"), "api_address",
				      json_object_get(n, "api_address"), "cluster_address",
				      json_object_get(n, "cluster_address"), "active_node", 0,
				      "last_echo", t, "version", json_object_get(n, "version"),
				      "upgrade_version", "", "redundancy_zone", "");
		if (e)
			json_array_append_new(nodes, e);
	}
	pthread_mutex_unlock(&c->echo_mu);
	*out = json_pack("{s:o}", "nodes", nodes);
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

void cluster_echoes_clear(struct core *c)
{
	pthread_mutex_lock(&c->echo_mu);
	json_decref(c->echoes);
	c->echoes = NULL;
	pthread_mutex_unlock(&c->echo_mu);
}
