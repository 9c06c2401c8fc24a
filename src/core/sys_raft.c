/*
 * sys_raft.c - the sys/storage/raft endpoints over the raft storage
 * backend (physical/raft.h):
 *   GET  sys/storage/raft/configuration      {config: {servers[], index}}
 *   POST sys/storage/raft/remove-peer        {server_id}
 *   POST sys/storage/raft/join               {leader_api_addr, leader_ca_cert,
 *                                             non_voter, retry}  (sealed node)
 *   POST sys/storage/raft/bootstrap/challenge {server_id, cluster_addr} (leader)
 *   POST sys/storage/raft/bootstrap/answer    {server_id, answer}       (leader)
 *   GET  sys/storage/raft/snapshot            the gzipped tar (snaparchive.h)
 *   POST sys/storage/raft/snapshot[-force]    restore from one
 *
 * JOIN HANDSHAKE. The joiner (uninitialized, pristine raft) asks the
 * leader's bootstrap/challenge with its node id and cluster address. The
 * leader draws 32 random bytes, keeps them for 10 minutes, answers them
 * encrypted under a key derived from the root key (so only a holder of the
 * unseal keys can read them) and adds the joiner as a NON-VOTER: it
 * receives the log - ciphertext under the barrier, as anyone reading the
 * storage sees it - but takes no part in quorum or elections. The joiner
 * starts raft without bootstrapping; the operator unseals it with the
 * cluster's keys (its storage now holds the cluster's seal configuration
 * and keyring). Once unsealed, the joiner decrypts the challenge with the
 * root key and posts it to bootstrap/answer; the leader compares in
 * constant time and promotes it to voter (unless non_voter was asked).
 * Vault releases the log only after the answer; here the log flows first
 * so the ordinary unseal works unchanged, and the vote waits for the proof.
 *
 * SNAPSHOTS. Save dumps the FSM (consistent: applies wait meanwhile),
 * writes meta.json + SHA256SUMS and seals SHA256SUMS with a key derived
 * from the root key. Restore checks everything before touching storage:
 * gzip/tar framing, both checksums, and the sealed sums (which must open
 * with this cluster's keys and equal SHA256SUMS, unless snapshot-force);
 * then it streams state.bin through the raft log into a staging store that
 * one commit entry swaps in on every node (physical_raft_load), and steps
 * the active node down so it reloads mounts, policies and keys. Both
 * directions are buffered in memory: the HTTP layer has no streaming bodies.
 */
#include "core/sys_raft.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/barrier.h"
#include "core/core_int.h"
#include "core/state.h"
#include "physical/raft.h"
#include "util/aead.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/snaparchive.h"
#include "util/tmpfd.h"

#include <stdatomic.h>

#define CHALLENGE_LEN 32
#define CHALLENGE_TTL 600
#define MAX_PENDING 16

const struct field_def sys_raft_fields[] = {
	{"server_id", FT_STRING, NULL, "the raft node id", false},
	{"cluster_addr", FT_STRING, NULL, "the joiner's cluster address", false},
	{"answer", FT_STRING, NULL, "the decrypted challenge, base64", false},
	{"raft_public_key", FT_STRING, NULL, "the joiner's raft TLS public key (PEM)", false},
	{"non_voter", FT_BOOL, "false", "join as a non-voter", false},
	{"dr_operation_token", FT_STRING, NULL, "", false},
	{0},
};

/* background threads (the joiner's answer, retry_join) stop when the server
 * does: sys_raft_stop sets `stopping` and waits for `live` to drain */
static atomic_bool stopping;
static atomic_int live;

static struct core *C(struct logical_request *req)
{
	return req->backend;
}

static struct physical *raft_of(struct core *c, struct verr *err)
{
	if (!physical_is_raft(c->phys)) {
		verr_set(err, VERR_INVALID, "raft storage is not in use: this needs storage \"raft\"");
		return NULL;
	}
	return c->phys;
}

static const char *field_str(struct logical_request *req, const char *name)
{
	json_t *v = json_object_get(req->fields ? req->fields : req->data, name);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

static bool field_true(const json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	return json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true"));
}

static char *b64(const uint8_t *d, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);
	if (o)
		EVP_EncodeBlock((unsigned char *)o, d, (int)n);
	return o;
}

/* base64 decode (standard, padded); *out malloc'd. -1 when malformed. */
static int unb64(const char *s, uint8_t **out, size_t *n)
{
	size_t l = strlen(s);
	if (!l || l % 4)
		return -1;
	uint8_t *o = malloc(l / 4 * 3 + 1);
	if (!o)
		return -1;
	int r = EVP_DecodeBlock(o, (const unsigned char *)s, (int)l);
	if (r < 0) {
		free(o);
		return -1;
	}
	size_t len = (size_t)r;
	if (s[l - 1] == '=')
		len--;
	if (s[l - 2] == '=')
		len--;
	*out = o;
	*n = len;
	return 0;
}

/* A key for `purpose` derived from the root key (secmem, 32 bytes). */
static int derived_key(struct core *c, const char *purpose, uint8_t **out, struct verr *err)
{
	uint8_t *root = NULL;
	size_t rl = 0;
	int rc = barrier_root_key(c->barrier, &root, &rl, err);
	if (rc)
		return rc;
	uint8_t *k = secmem_alloc(32);
	unsigned int kl = 32;
	if (!k || !HMAC(EVP_sha256(), root, (int)rl, (const unsigned char *)purpose,
			strlen(purpose), k, &kl)) {
		secmem_free(root, rl);
		secmem_free(k, 32);
		return verr_set(err, VERR_INTERNAL, "key derivation failed");
	}
	secmem_free(root, rl);
	*out = k;
	return 0;
}

/* ---- configuration, remove-peer ---------------------------------------------- */

int sys_raft_configuration(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	struct physical *p = raft_of(C(req), err);
	if (!p)
		return VERR_INVALID;
	json_t *cfg = NULL;
	int rc = physical_raft_configuration(p, &cfg, err);
	if (rc)
		return rc;
	resp->data = json_pack("{s:o}", "config", cfg);
	return resp->data ? 0 : VERR_INTERNAL;
}

int sys_raft_remove_peer(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct physical *p = raft_of(C(req), err);
	if (!p)
		return VERR_INVALID;
	const char *id = field_str(req, "server_id");
	if (!id)
		return verr_set(err, VERR_INVALID, "missing server_id");
	int rc = physical_raft_remove_peer(p, id, err);
	if (!rc)
		log_info("raft", "removed raft peer %s", id);
	return rc;
}

/* ---- autopilot ------------------------------------------------------------------- */

const struct field_def sys_raft_autopilot_fields[] = {
	{"cleanup_dead_servers", FT_BOOL, NULL, "remove dead servers (stored; not acted on)", false},
	{"last_contact_threshold", FT_DURATION, NULL, "a server not heard from this long is unhealthy", false},
	{"dead_server_last_contact_threshold", FT_DURATION, NULL, "", false},
	{"max_trailing_logs", FT_INT, NULL, "a server this far behind is unhealthy", false},
	{"min_quorum", FT_INT, NULL, "", false},
	{"server_stabilization_time", FT_DURATION, NULL, "", false},
	{"disable_upgrade_migration", FT_BOOL, NULL, "", false},
	{0},
};

#define AUTOPILOT_KEY "core/raft/autopilot"

/* the stored configuration over Vault's defaults (caller owns) */
static json_t *autopilot_config(struct core *c)
{
	json_t *cfg = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:b}", "cleanup_dead_servers", 0,
				"last_contact_threshold", (json_int_t)10,
				"dead_server_last_contact_threshold", (json_int_t)86400,
				"max_trailing_logs", (json_int_t)1000, "min_quorum", (json_int_t)0,
				"server_stabilization_time", (json_int_t)10,
				"disable_upgrade_migration", 0);
	uint8_t *v = NULL;
	size_t vl = 0;
	if (cfg && !physical_get(c->bphys, AUTOPILOT_KEY, &v, &vl, NULL) && v) {
		json_t *stored = json_loadb((const char *)v, vl, 0, NULL);
		if (json_is_object(stored))
			json_object_update(cfg, stored);
		json_decref(stored);
	}
	free(v);
	return cfg;
}

static json_t *with_duration_strings(json_t *cfg)
{
	static const char *const durs[] = {"last_contact_threshold",
					   "dead_server_last_contact_threshold",
					   "server_stabilization_time"};
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		char b[32];
		snprintf(b, sizeof(b), "%llds",
			 (long long)json_integer_value(json_object_get(cfg, durs[i])));
		json_object_set_new(cfg, durs[i], json_string(b));
	}
	return cfg;
}

int sys_raft_autopilot_config(struct logical_request *req, struct logical_response *resp,
			      struct verr *err)
{
	struct core *c = C(req);
	if (!raft_of(c, err))
		return VERR_INVALID;
	json_t *cfg = autopilot_config(c);
	if (!cfg)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (req->op == LOP_READ) {
		resp->data = with_duration_strings(cfg);
		return 0;
	}
	const char *k;
	json_t *v;
	json_object_foreach(req->fields, k, v) {
		if (json_object_get(cfg, k) && !json_is_null(v))
			json_object_set(cfg, k, v);
	}
	if (json_integer_value(json_object_get(cfg, "last_contact_threshold")) <= 0 ||
	    json_integer_value(json_object_get(cfg, "max_trailing_logs")) < 0) {
		json_decref(cfg);
		return verr_set(err, VERR_INVALID,
				"last_contact_threshold must be positive and max_trailing_logs >= 0");
	}
	char *text = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	if (!text)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = physical_put(c->bphys, AUTOPILOT_KEY, (const uint8_t *)text, strlen(text), err);
	free(text);
	return rc;
}

int sys_raft_autopilot_state(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	struct core *c = C(req);
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	json_t *st = NULL;
	int rc = physical_raft_autopilot_state(p, &st, err);
	if (rc)
		return rc;
	json_t *cfg = autopilot_config(c);
	json_int_t thr_ms = json_integer_value(json_object_get(cfg, "last_contact_threshold")) * 1000;
	json_int_t max_lag = json_integer_value(json_object_get(cfg, "max_trailing_logs"));
	json_decref(cfg);
	json_int_t commit = json_integer_value(json_object_get(st, "commit_index"));
	json_t *servers = json_object(), *voters = json_array();
	const char *leader = "";
	int nvoters = 0, healthy_voters = 0;
	bool all_healthy = true;
	size_t i;
	json_t *sv;
	json_array_foreach(json_object_get(st, "servers"), i, sv) {
		const char *id = json_string_value(json_object_get(sv, "node_id"));
		bool is_leader = json_is_true(json_object_get(sv, "leader"));
		bool voter = json_is_true(json_object_get(sv, "voter"));
		json_int_t ago = json_integer_value(json_object_get(sv, "last_contact_ms"));
		json_int_t idx = json_integer_value(json_object_get(sv, "last_index"));
		bool healthy = ago < thr_ms && idx + max_lag >= commit;
		if (is_leader)
			leader = id;
		if (voter) {
			nvoters++;
			healthy_voters += healthy;
			json_array_append_new(voters, json_string(id));
		}
		all_healthy &= healthy;
		char lc[32];
		snprintf(lc, sizeof(lc), "%.3fs", (double)ago / 1000.0);
		json_object_set_new(
			servers, id,
			json_pack("{s:s, s:s, s:O, s:s, s:s, s:O, s:I, s:b, s:s, s:s, s:s}", "id", id,
				  "name", id, "address", json_object_get(sv, "address"), "node_status",
				  healthy ? "alive" : "failed", "last_contact", lc, "last_term",
				  json_object_get(sv, "last_term"), "last_index", idx, "healthy",
				  healthy, "status", is_leader ? "leader" : voter ? "voter" : "non-voter",
				  "node_type", voter ? "voter" : "read-replica", "version",
				  COFFER_VERSION));
	}
	int quorum = nvoters / 2 + 1;
	int tolerance = healthy_voters - quorum > 0 ? healthy_voters - quorum : 0;
	resp->data = json_pack("{s:b, s:i, s:i, s:s, s:o, s:o}", "healthy", all_healthy,
			       "failure_tolerance", tolerance, "optimistic_failure_tolerance",
			       nvoters - quorum, "leader", leader, "voters", voters, "servers",
			       servers);
	json_decref(st);
	return resp->data ? 0 : VERR_INTERNAL;
}

/* ---- the raft CA below the barrier ------------------------------------------- */

#define RAFT_TLS_KEY "raft/tls"

int sys_raft_tls_settle(struct core *c, struct verr *err)
{
	struct physical *p = c->phys;
	if (!physical_is_raft(p))
		return 0;
	struct storage_view v;
	storage_view_init(&v, c->bphys, "core/");
	json_t *j = NULL;
	int rc = view_get_json(&v, RAFT_TLS_KEY, &j, err);
	if (rc)
		return rc;
	const char *cert = json_string_value(json_object_get(j, "cert"));
	const char *key = json_string_value(json_object_get(j, "key"));
	if (cert && key) {
		/* every active node signs joiners with the stored CA */
		rc = physical_raft_tls_set_ca(p, cert, key, err);
		json_decref(j);
		return rc;
	}
	json_decref(j);
	/* the bootstrap node's first activation: move its CA below the barrier */
	char *cp = NULL, *kp = NULL;
	size_t kl = 0;
	struct verr e = {0};
	if (physical_raft_tls_ca(p, &cp, &kp, &kl, &e)) {
		log_warn("raft", "no raft CA below the barrier nor on this node: joiners cannot "
				 "be signed here");
		return 0;
	}
	j = json_pack("{s:s,s:s}", "cert", cp, "key", kp);
	rc = j ? view_put_json(&v, RAFT_TLS_KEY, j, err)
	       : verr_set(err, VERR_INTERNAL, "out of memory");
	if (j) { /* the key's copy inside the JSON */
		json_t *kv = json_object_get(j, "key");
		if (kv)
			secmem_wipe((void *)json_string_value(kv), json_string_length(kv));
	}
	json_decref(j);
	if (!rc)
		rc = physical_raft_tls_set_ca(p, cp, kp, err);
	if (!rc)
		log_info("raft", "stored the raft CA below the barrier (core/raft/tls)");
	free(cp);
	secmem_free(kp, kl + 1);
	return rc;
}

void sys_raft_tls_forget(struct core *c)
{
	if (physical_is_raft(c->phys))
		physical_raft_tls_drop_ca(c->phys);
}

/* ---- the join handshake: leader side ----------------------------------------- */

struct pending {
	char id[128];
	char addr[256];
	uint8_t challenge[CHALLENGE_LEN];
	time_t at;
};

static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pending pendings[MAX_PENDING];

/* A raft certificate for an id that is already a voter would let its holder
 * speak for that voter: only a new id, or a non-voter that has not answered
 * its challenge yet (a retried join), gets one. */
static int check_not_voter(struct physical *p, const char *id, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = physical_raft_configuration(p, &cfg, err);
	if (rc)
		return rc;
	json_t *sv;
	size_t i;
	json_array_foreach(json_object_get(cfg, "servers"), i, sv) {
		const char *nid = json_string_value(json_object_get(sv, "node_id"));
		if (nid && !strcmp(nid, id) && json_is_true(json_object_get(sv, "voter")))
			rc = verr_set(err, VERR_INVALID,
				      "server_id %s is already a voter of this cluster; remove it "
				      "(remove-peer) before it joins again",
				      id);
	}
	json_decref(cfg);
	return rc;
}

int sys_raft_challenge(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct core *c = C(req);
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	const char *id = field_str(req, "server_id");
	const char *addr = field_str(req, "cluster_addr");
	if (!id || strlen(id) > 120)
		return verr_set(err, VERR_INVALID, "missing or too long server_id");
	if (!addr || strlen(addr) > 250)
		return verr_set(err, VERR_INVALID, "missing cluster_addr (the joiner's host:port)");
	const char *pub = field_str(req, "raft_public_key");
	if (!pub || !*pub)
		return verr_set(err, VERR_INVALID,
				"missing raft_public_key (the joiner's raft TLS public key, PEM)");
	int rc = check_not_voter(p, id, err);
	if (rc)
		return rc;
	char *node_cert = NULL, *ca_cert = NULL;
	if ((rc = physical_raft_tls_sign(p, id, pub, &node_cert, &ca_cert, err)))
		return rc;
	uint8_t ch[CHALLENGE_LEN];
	rc = rand_bytes(ch, sizeof(ch), err);
	if (rc) {
		free(node_cert);
		free(ca_cert);
		return rc;
	}
	uint8_t *key = NULL;
	if (!rc)
		rc = derived_key(c, "coffer raft bootstrap challenge", &key, err);
	uint8_t *blob = NULL;
	size_t bl = 0;
	if (!rc)
		rc = aead_blob_seal(&blob, &bl, key, id, ch, sizeof(ch), err);
	if (key)
		secmem_free(key, 32);
	if (rc) {
		secmem_wipe(ch, sizeof(ch));
		free(node_cert);
		free(ca_cert);
		return rc;
	}
	/* remember it (replacing an older one for the same id, or the oldest) */
	pthread_mutex_lock(&pending_mu);
	struct pending *slot = &pendings[0];
	for (int i = 0; i < MAX_PENDING; i++) {
		if (!strcmp(pendings[i].id, id)) {
			slot = &pendings[i];
			break;
		}
		if (pendings[i].at < slot->at)
			slot = &pendings[i];
	}
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
	memcpy(slot->challenge, ch, sizeof(ch));
	slot->at = time(NULL);
	pthread_mutex_unlock(&pending_mu);
	secmem_wipe(ch, sizeof(ch));
	/* the log flows now; the vote waits for the answer */
	rc = physical_raft_add_peer(p, id, addr, false, err);
	if (rc) {
		free(blob);
		free(node_cert);
		free(ca_cert);
		return rc;
	}
	log_info("raft", "node %s (%s) joins as a non-voter until it answers the challenge", id,
		 addr);
	char *enc = b64(blob, bl);
	free(blob);
	resp->data = enc ? json_pack("{s:s, s:{s:s, s:s}}", "challenge", enc, "raft_tls",
				     "node_cert", node_cert, "ca_cert", ca_cert)
			 : NULL;
	free(enc);
	free(node_cert);
	free(ca_cert);
	resp->data_at_top = false;
	return resp->data ? 0 : VERR_INTERNAL;
}

int sys_raft_answer(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct core *c = C(req);
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	const char *id = field_str(req, "server_id");
	const char *ans = field_str(req, "answer");
	if (!id || !ans)
		return verr_set(err, VERR_INVALID, "server_id and answer are required");
	uint8_t *a = NULL;
	size_t al = 0;
	if (unb64(ans, &a, &al))
		return verr_set(err, VERR_INVALID, "answer must be base64");
	bool ok = false;
	char addr[256] = {0};
	pthread_mutex_lock(&pending_mu);
	for (int i = 0; i < MAX_PENDING; i++) {
		struct pending *pd = &pendings[i];
		if (strcmp(pd->id, id) || time(NULL) - pd->at > CHALLENGE_TTL)
			continue;
		ok = al == CHALLENGE_LEN && !CRYPTO_memcmp(a, pd->challenge, CHALLENGE_LEN);
		if (ok)
			snprintf(addr, sizeof(addr), "%s", pd->addr);
	}
	pthread_mutex_unlock(&pending_mu);
	if (!ok) {
		OPENSSL_cleanse(a, al);
		free(a);
		return verr_set(err, VERR_DENIED, "the challenge answer is wrong or expired");
	}
	bool nv = req->fields && json_is_true(json_object_get(req->fields, "non_voter"));
	int rc = nv ? 0 : physical_raft_add_peer(p, id, addr, true, err);
	/* used up once the promotion happened (a failed one may be retried) */
	pthread_mutex_lock(&pending_mu);
	for (int i = 0; i < MAX_PENDING && !rc; i++)
		if (!strcmp(pendings[i].id, id) &&
		    !CRYPTO_memcmp(a, pendings[i].challenge, CHALLENGE_LEN))
			OPENSSL_cleanse(&pendings[i], sizeof(pendings[i]));
	pthread_mutex_unlock(&pending_mu);
	OPENSSL_cleanse(a, al);
	free(a);
	if (rc)
		return rc;
	log_info("raft", "node %s answered the challenge%s", id, nv ? "" : ": now a voter");
	json_t *cfg = NULL;
	if (!physical_raft_configuration(p, &cfg, NULL))
		resp->data = json_pack("{s:O}", "peers", json_object_get(cfg, "servers"));
	json_decref(cfg);
	return 0;
}

/* ---- the join handshake: joiner side ------------------------------------------- */

struct http_buf {
	char *b;
	size_t n;
};

static size_t http_write(char *p, size_t sz, size_t nm, void *ctx)
{
	struct http_buf *hb = ctx;
	size_t n = sz * nm;
	if (hb->n + n > (1u << 20))
		return 0;
	char *nb = realloc(hb->b, hb->n + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + hb->n, p, n);
	hb->b = nb;
	hb->n += n;
	hb->b[hb->n] = 0;
	return n;
}

/* POST body to leader/v1/path; *out: the parsed JSON answer */
static int leader_post(const char *leader, const char *ca_pem, const char *path, json_t *body,
		       json_t **out, struct verr *err)
{
	*out = NULL;
	char url[1024];
	size_t ll = strlen(leader);
	snprintf(url, sizeof(url), "%.*s/v1/%s", (int)(ll && leader[ll - 1] == '/' ? ll - 1 : ll),
		 leader, path);
	char *req = json_dumps(body, JSON_COMPACT);
	CURL *h = curl_easy_init();
	if (!req || !h) {
		free(req);
		if (h)
			curl_easy_cleanup(h);
		return verr_set(err, VERR_INTERNAL, "cannot start an HTTP request (libcurl)");
	}
	struct http_buf hb = {0};
	char errbuf[CURL_ERROR_SIZE] = {0};
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	struct curl_blob blob;
	if (ca_pem) {
		blob = (struct curl_blob){(void *)ca_pem, strlen(ca_pem), CURL_BLOB_COPY};
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &hb);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(req);
	int rc = 0;
	if (cc != CURLE_OK) {
		rc = verr_set(err, VERR_UNAVAILABLE, "cannot reach the leader at %s: %s", leader,
			      errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (status >= 300) {
		json_t *j = hb.b ? json_loads(hb.b, 0, NULL) : NULL;
		json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
		rc = verr_set(err, status == 403 ? VERR_DENIED : VERR_INVALID,
			      "the leader refused (%ld): %s", status,
			      json_is_string(e0) ? json_string_value(e0) : "no reason given");
		json_decref(j);
	} else if (!(*out = hb.b ? json_loads(hb.b, 0, NULL) : json_object())) {
		rc = verr_set(err, VERR_UNAVAILABLE, "the leader's answer is not JSON");
	}
	free(hb.b);
	return rc;
}

struct joiner {
	struct core *c;
	char *leader, *ca, *id;
	uint8_t *challenge;
	size_t challenge_len;
	bool non_voter;
};

static void joiner_free(struct joiner *j)
{
	if (!j)
		return;
	free(j->leader);
	free(j->ca);
	free(j->id);
	free(j->challenge);
	free(j);
}

/* Waits for the operator to unseal this node, then answers the challenge
 * (retrying while the leader is unreachable). */
static void *joiner_main(void *arg)
{
	struct joiner *j = arg;
	while (!atomic_load(&stopping) && state_get(j->c) == CORE_SEALED)
		usleep(100000);
	for (int attempt = 0; attempt < 100 && !atomic_load(&stopping); attempt++) {
		struct verr err = {0};
		uint8_t *key = NULL, *pt = NULL;
		size_t pl = 0;
		int rc = derived_key(j->c, "coffer raft bootstrap challenge", &key, &err);
		if (!rc) {
			rc = aead_blob_open(&pt, &pl, key, j->id, j->challenge, j->challenge_len,
					    &err);
			secmem_free(key, 32);
		}
		if (rc) {
			log_error("raft", "cannot answer the join challenge: %s", err.msg);
			break;
		}
		char *ans = b64(pt, pl);
		secmem_free(pt, pl);
		json_t *body = json_pack("{s:s, s:s, s:b}", "server_id", j->id, "answer",
					 ans ? ans : "", "non_voter", j->non_voter);
		if (ans)
			OPENSSL_cleanse(ans, strlen(ans));
		free(ans);
		json_t *out = NULL;
		rc = leader_post(j->leader, j->ca, "sys/storage/raft/bootstrap/answer", body, &out,
				 &err);
		json_decref(body);
		json_decref(out);
		if (!rc) {
			log_info("raft", "join challenge answered: this node is a full member");
			break;
		}
		log_warn("raft", "answering the join challenge: %s", err.msg);
		if (rc == VERR_DENIED)
			break;
		for (int i = 0; i < 30 && !atomic_load(&stopping); i++)
			usleep(100000);
	}
	joiner_free(j);
	atomic_fetch_sub(&live, 1);
	return NULL;
}

int sys_raft_join(struct core *c, const json_t *data, json_t **out, struct verr *err)
{
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	json_t *la = json_object_get(data, "leader_api_addr");
	if (!json_is_string(la) || !*json_string_value(la))
		return verr_set(err, VERR_INVALID, "leader_api_addr is required");
	const char *leader = json_string_value(la);
	if (strncmp(leader, "http://", 7) && strncmp(leader, "https://", 8))
		return verr_set(err, VERR_INVALID,
				"leader_api_addr must be an http:// or https:// URL");
	if (c->o.api_addr && !strcmp(c->o.api_addr, leader))
		return verr_set(err, VERR_INVALID, "a node cannot join itself");
	json_t *ca = json_object_get(data, "leader_ca_cert");
	bool inited = false;
	int rc = barrier_initialized(c->barrier, &inited, err);
	if (rc)
		return rc;
	struct physical_raft_status st;
	if ((rc = physical_raft_status(p, &st, err)))
		return rc;
	if (inited || !st.pristine)
		return verr_set(err, VERR_INVALID,
				"this node already holds data (initialized or part of a raft "
				"cluster); only a new node can join");
	/* our raft TLS key: the leader signs it; the leader adds us at our raft
	 * address */
	char *pub = NULL;
	if ((rc = physical_raft_tls_keygen(p, &pub, err)))
		return rc;
	json_t *body = json_pack("{s:s, s:s, s:s}", "server_id", st.node_id, "cluster_addr",
				 st.addr, "raft_public_key", pub);
	free(pub);
	json_t *ans = NULL;
	const char *ca_pem = json_is_string(ca) && *json_string_value(ca) ? json_string_value(ca)
									   : NULL;
	bool retry = field_true(data, "retry");
	for (int attempt = 0;; attempt++) {
		rc = leader_post(leader, ca_pem, "sys/storage/raft/bootstrap/challenge", body, &ans,
				 err);
		if (!rc || !retry || rc != VERR_UNAVAILABLE || attempt >= 10)
			break;
		sleep(2);
	}
	json_decref(body);
	if (rc)
		return rc;
	json_t *chv = json_object_get(json_object_get(ans, "data"), "challenge");
	json_t *tls = json_object_get(json_object_get(ans, "data"), "raft_tls");
	const char *ncert = json_string_value(json_object_get(tls, "node_cert"));
	const char *cacert = json_string_value(json_object_get(tls, "ca_cert"));
	struct joiner *j = calloc(1, sizeof(*j));
	if (!j || !json_is_string(chv) ||
	    unb64(json_string_value(chv), &j->challenge, &j->challenge_len)) {
		json_decref(ans);
		joiner_free(j);
		return verr_set(err, VERR_UNAVAILABLE, "the leader's challenge is malformed");
	}
	if (!ncert || !cacert) {
		json_decref(ans);
		joiner_free(j);
		return verr_set(err, VERR_UNAVAILABLE,
				"the leader sent no raft TLS certificate (raft_tls)");
	}
	/* stored before raft starts: raft speaks only mutual TLS */
	rc = physical_raft_tls_install(p, ncert, cacert, err);
	json_decref(ans);
	if (rc) {
		joiner_free(j);
		return rc;
	}
	j->c = c;
	j->leader = strdup(leader);
	j->ca = ca_pem ? strdup(ca_pem) : NULL;
	j->id = strdup(st.node_id);
	j->non_voter = field_true(data, "non_voter");
	if ((rc = physical_raft_join_start(p, err))) {
		joiner_free(j);
		return rc;
	}
	pthread_t th;
	atomic_fetch_add(&live, 1);
	if (pthread_create(&th, NULL, joiner_main, j)) {
		atomic_fetch_sub(&live, 1);
		joiner_free(j);
		return verr_set(err, VERR_INTERNAL, "cannot start the join thread");
	}
	pthread_detach(th);
	log_info("raft", "joined the cluster of %s; unseal this node with the cluster's keys",
		 leader);
	*out = json_pack("{s:b}", "joined", 1);
	return *out ? 0 : VERR_INTERNAL;
}

/* ---- retry_join ---------------------------------------------------------------- */

struct retry_join {
	struct core *c;
	json_t *targets; /* array of {leader_api_addr, leader_ca_cert} */
};

static void *retry_join_main(void *arg)
{
	struct retry_join *rj = arg;
	struct physical_raft_status st;
	for (unsigned round = 0; !atomic_load(&stopping); round++) {
		if (physical_raft_status(rj->c->phys, &st, NULL) || !st.pristine)
			break; /* joined (or bootstrapped by an init) */
		size_t i;
		json_t *t;
		bool done = false;
		json_array_foreach(rj->targets, i, t) {
			struct verr err = {0};
			json_t *out = NULL;
			if (!sys_raft_join(rj->c, t, &out, &err)) {
				json_decref(out);
				done = true;
				break;
			}
			if (round % 15 == 0)
				log_warn("raft", "retry_join %s: %s",
					 json_string_value(json_object_get(t, "leader_api_addr")),
					 err.msg);
		}
		if (done)
			break;
		for (int k = 0; k < 20 && !atomic_load(&stopping); k++)
			usleep(100000);
	}
	json_decref(rj->targets);
	free(rj);
	atomic_fetch_sub(&live, 1);
	return NULL;
}

/* a file's contents (NUL-terminated) or NULL */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *b = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = cap > (1u << 20) ? NULL : realloc(b, cap);
			if (!nb) {
				free(b);
				fclose(f);
				return NULL;
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, 4096, f);
		n += r;
		if (r < 4096)
			break;
	}
	fclose(f);
	b[n] = 0;
	return b;
}

int sys_raft_retry_join_start(struct core *c, const json_t *storage_opts, struct verr *err)
{
	json_t *rj = json_object_get(storage_opts, "retry_join");
	if (!rj || !physical_is_raft(c->phys))
		return 0;
	json_t *list = json_is_array(rj) ? json_copy(rj) : json_pack("[O]", rj);
	json_t *targets = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t) {
		const char *la = json_string_value(json_object_get(t, "leader_api_addr"));
		if (!la) {
			json_decref(list);
			json_decref(targets);
			return verr_set(err, VERR_INVALID,
					"storage \"raft\": retry_join needs leader_api_addr "
					"(auto_join is not supported)");
		}
		json_t *o = json_pack("{s:s}", "leader_api_addr", la);
		const char *caf = json_string_value(json_object_get(t, "leader_ca_cert_file"));
		if (caf) {
			char *pem = slurp(caf);
			if (!pem) {
				json_decref(o);
				json_decref(list);
				json_decref(targets);
				return verr_set(err, VERR_INVALID,
						"storage \"raft\": cannot read leader_ca_cert_file %s",
						caf);
			}
			json_object_set_new(o, "leader_ca_cert", json_string(pem));
			free(pem);
		}
		json_array_append_new(targets, o);
	}
	json_decref(list);
	struct retry_join *r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(targets);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	r->c = c;
	r->targets = targets;
	pthread_t th;
	atomic_fetch_add(&live, 1);
	if (pthread_create(&th, NULL, retry_join_main, r)) {
		atomic_fetch_sub(&live, 1);
		json_decref(targets);
		free(r);
		return verr_set(err, VERR_INTERNAL, "cannot start the retry_join thread");
	}
	pthread_detach(th);
	return 0;
}

void sys_raft_stop(void)
{
	atomic_store(&stopping, true);
	/* each thread notices within 100 ms, or after its current HTTP call */
	for (int i = 0; i < 400 && atomic_load(&live) > 0; i++)
		usleep(100000);
}

int sys_raft_join_unsealed(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return verr_set(err, VERR_INVALID,
			"this node is already initialized and unsealed; only a new node can join");
}

/* ---- snapshots --------------------------------------------------------------- */

/* state.bin goes to an unlinked temporary file as the FSM is dumped,
 * hashed on the way, so a save holds fixed-size buffers only */
#define SINK_BUF (256u << 10)
struct fdsink {
	int fd;
	EVP_MD_CTX *md;
	uint64_t n;
	size_t used;
	uint8_t *buf;
};

static int sink_flush(struct fdsink *k)
{
	const uint8_t *p = k->buf;
	size_t n = k->used;
	while (n) {
		ssize_t w = write(k->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return VERR_INTERNAL;
		p += w;
		n -= (size_t)w;
	}
	k->used = 0;
	return 0;
}

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct fdsink *k = ctx;
	EVP_DigestUpdate(k->md, buf, len);
	k->n += len;
	while (len) {
		size_t c = SINK_BUF - k->used < len ? SINK_BUF - k->used : len;
		memcpy(k->buf + k->used, buf, c);
		k->used += c;
		buf = (const uint8_t *)buf + c;
		len -= c;
		if (k->used == SINK_BUF && sink_flush(k))
			return VERR_INTERNAL;
	}
	return 0;
}

#define SNAP_AAD "coffer raft snapshot SHA256SUMS"

/* the state, dumped to a temporary file: *fd, its length and digest */
static int dump_state(struct physical *p, const char *dir, int *fd, uint64_t *len,
		      char sha[65], uint64_t *nkeys, struct verr *err)
{
	struct fdsink k = {.fd = tmpfd_open(dir, err)};
	if (k.fd < 0)
		return VERR_INTERNAL;
	k.md = EVP_MD_CTX_new();
	k.buf = malloc(SINK_BUF);
	int rc = k.md && k.buf && EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) == 1
			 ? 0
			 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = physical_raft_dump(p, sink_write, &k, nkeys, err);
	if (!rc && sink_flush(&k))
		rc = verr_set(err, VERR_INTERNAL, "writing the snapshot state failed: %s",
			      strerror(errno));
	if (!rc) {
		uint8_t d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		static const char hx[] = "0123456789abcdef";
		EVP_DigestFinal_ex(k.md, d, &dl);
		for (unsigned i = 0; i < 32 && i < dl; i++) {
			sha[2 * i] = hx[d[i] >> 4];
			sha[2 * i + 1] = hx[d[i] & 15];
		}
		sha[64] = 0;
		*len = k.n;
	}
	EVP_MD_CTX_free(k.md);
	free(k.buf);
	if (rc) {
		close(k.fd);
		return rc;
	}
	*fd = k.fd;
	return 0;
}

static int snapshot_save(struct core *c, struct physical *p, struct logical_response *resp,
			 struct verr *err)
{
	struct physical_raft_status st;
	int rc = physical_raft_status(p, &st, err);
	if (rc)
		return rc;
	const char *dir = physical_raft_dir(p);
	int state_fd = -1, out_fd = -1;
	uint64_t state_len = 0, nkeys = 0;
	char state_sha[65];
	if ((rc = dump_state(p, dir, &state_fd, &state_len, state_sha, &nkeys, err)))
		return rc;
	char cid[40];
	state_cluster_id(c, cid);
	char *meta = NULL;
	json_t *mj = json_pack("{s:i, s:s, s:I, s:I, s:s, s:s, s:I, s:I}", "version", 1, "format",
			       "coffer-raft-state-1", "index", (json_int_t)st.applied_index,
			       "term", (json_int_t)st.term, "node_id", st.node_id, "cluster_id",
			       cid, "keys", (json_int_t)nkeys, "created", (json_int_t)time(NULL));
	meta = mj ? json_dumps(mj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(mj);
	char meta_sha[65];
	if (meta)
		snaparchive_sha_hex(meta_sha, (const uint8_t *)meta, strlen(meta));
	char *sums = meta ? snaparchive_sums_hex(meta_sha, state_sha) : NULL;
	uint8_t *key = NULL, *sealed = NULL;
	size_t sl = 0;
	if (!sums)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && !(rc = derived_key(c, SNAP_AAD, &key, err))) {
		rc = aead_blob_seal(&sealed, &sl, key, SNAP_AAD, (const uint8_t *)sums,
				    strlen(sums), err);
		secmem_free(key, 32);
	}
	if (!rc && (out_fd = tmpfd_open(dir, err)) < 0)
		rc = VERR_INTERNAL;
	if (!rc)
		rc = snaparchive_write(out_fd, meta, state_fd, state_len, sums, sealed, sl, err);
	close(state_fd);
	free(meta);
	free(sums);
	free(sealed);
	off_t al = -1;
	if (!rc && out_fd >= 0)
		al = lseek(out_fd, 0, SEEK_CUR);
	if (!rc && (al < 0 || lseek(out_fd, 0, SEEK_SET) < 0))
		rc = verr_set(err, VERR_INTERNAL, "the snapshot file: %s", strerror(errno));
	if (rc) {
		if (out_fd >= 0)
			close(out_fd);
		return rc;
	}
	resp->raw = true;
	resp->raw_is_fd = true; /* sent from the file as it is read */
	resp->raw_fd = out_fd;
	resp->raw_len = (size_t)al;
	resp->raw_content_type = strdup("application/gzip");
	log_info("raft", "snapshot saved: %llu keys at index %llu, %lld bytes",
		 (unsigned long long)nkeys, (unsigned long long)st.applied_index, (long long)al);
	return 0;
}

static int snapshot_restore(struct core *c, struct physical *p, struct logical_request *req,
			    bool force, struct verr *err)
{
	int fd = req->raw_body_is_fd ? req->raw_body_fd : -1;
	const uint8_t *buf = fd < 0 ? req->raw_body : NULL;
	size_t len = req->raw_body_len;
	if ((fd < 0 && !buf) || !len)
		return verr_set(err, VERR_INVALID, "the request has no snapshot in its body");
	/* pass 1: framing and both checksums, streamed; nothing is touched */
	struct snapcheck a;
	int rc = snaparchive_check(&a, fd, buf, len, err);
	if (rc)
		return rc;
	uint8_t *key = NULL, *pt = NULL;
	size_t pl = 0;
	rc = derived_key(c, SNAP_AAD, &key, err);
	if (!rc) {
		struct verr e2 = {0};
		int orc = aead_blob_open(&pt, &pl, key, SNAP_AAD, a.sealed, a.sealed_len, &e2);
		secmem_free(key, 32);
		bool match = !orc && pl == a.sums_len && !CRYPTO_memcmp(pt, a.sums, pl);
		if (pt)
			secmem_free(pt, pl);
		if (!orc && !match)
			rc = verr_set(err, VERR_INVALID,
				      "the snapshot's SHA256SUMS does not match its sealed copy "
				      "(tampered with)");
		else if (orc && !force)
			rc = verr_set(err, VERR_INVALID,
				      "the snapshot was not made by this cluster (its sealed "
				      "checksums do not open with this cluster's keys); use "
				      "snapshot-force to restore it anyway");
	}
	/* pass 2: state.bin streamed into the staging store; its digest is
	 * checked again at its end, before the commit entry */
	struct snapstate *ss = NULL;
	if (!rc)
		rc = snapstate_open(&ss, &a, fd, buf, len, err);
	snapcheck_free(&a);
	if (rc)
		return rc;
	uint64_t n = 0;
	rc = physical_raft_load(p, snapstate_read, ss, &n, err);
	snapstate_close(ss);
	if (rc)
		return rc;
	log_warn("raft", "snapshot restored (%llu keys)%s; reloading", (unsigned long long)n,
		 force ? " with -force" : "");
	barrier_reload(c->barrier, NULL);
	state_request_reload(c); /* re-read mounts, policies, tokens */
	return 0;
}

int sys_raft_snapshot(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct core *c = C(req);
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	if (req->op == LOP_READ)
		return snapshot_save(c, p, resp, err);
	return snapshot_restore(c, p, req, false, err);
}

int sys_raft_snapshot_force(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	struct core *c = C(req);
	struct physical *p = raft_of(c, err);
	if (!p)
		return VERR_INVALID;
	return snapshot_restore(c, p, req, true, err);
}
