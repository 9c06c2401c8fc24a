/*
 * consul.c - storage "consul" (and ha_storage "consul"): Consul's HTTP API
 * over libcurl (util/curl_dl.h), with a session-based HA lock and service
 * registration, as Vault's consul backend is configured.
 *
 * Stanza (Vault's): address (host:port, or a URL; default 127.0.0.1:8500
 * or $CONSUL_HTTP_ADDR), scheme (http|https), path (default "vault/"),
 * token (or $CONSUL_HTTP_TOKEN), tls_ca_file, tls_cert_file, tls_key_file,
 * tls_skip_verify, session_ttl (15s), lock_wait_time (15s), max_parallel
 * (128), consistency_mode (default|strong), disable_registration, service
 * ("vault"), service_tags, service_address, check_timeout (5s); Coffer
 * adds lock_delay (1s), lock_check_ttl (session_ttl; 0 = no check),
 * request_timeout (10s) and max_entry_size.
 *
 * DESIGN
 * Layout: a Coffer key K is the Consul key <path>K (Vault's layout).
 * Reads: GET /v1/kv/<key>?raw (404 = absent; ?consistent in strong mode).
 * Lists: GET /v1/kv/<prefix>?keys&separator=/. Consul's HTTP router cleans
 * request paths (an empty, "." or ".." segment is answered with a redirect),
 * so keys whose path it would rewrite are read and listed through /v1/txn
 * (get-or-empty / get-tree), where the key travels in the JSON body.
 * Writes: every put, delete and transaction is one PUT /v1/txn (atomic,
 * at most CONSUL_TXN_MAX ops, txn_max_req_len bytes).
 *
 * HA lock: <path>core/lock, acquired with PUT ?acquire=<session> where the
 * session has TTL session_ttl, lock-delay lock_delay and behavior release.
 * The holder renews the session every TTL/3 (the core's renew call), and a
 * monitor thread watches the lock key with blocking queries (?index=, wait
 * lock_wait_time): the session renewal answering 404, or the key losing
 * our Session, is a loss and runs the lost callback once. Fencing: from
 * acquire until release every write carries a leading "check-session" op on
 * the lock key, so once the session is gone no write is acknowledged. The
 * guard also covers the *other* consul instances of this process that talk
 * to the same Consul (storage "consul" + ha_storage "consul" on different
 * paths, the production guide's layout): their writes carry the lock
 * holder's check-session too. Release unlocks with ?release= before it
 * destroys the session, so a graceful hand-over skips the lock-delay.
 *
 * Failover: Consul treats a session TTL as a lower bound and invalidates an
 * unrenewed session only after 2 x TTL. So (unless lock_check_ttl = 0) the
 * session is also bound to a node TTL check of its own (registered with
 * PUT /v1/agent/check/register, named in the session's NodeChecks and, for
 * Consul < 1.7, Checks): the node passes it wherever it renews the session
 * (holder every TTL/3, standby at its acquire attempts), and once it lapses
 * the check turns critical and Consul invalidates the session at once. A
 * killed holder thus loses the lock lock_check_ttl after its last renewal,
 * then lock_delay runs. The check ID derives from api_addr, so a restarted
 * node reuses (and revives) the check a killed one left critical.
 *
 * Service registration (unless disable_registration): the HA instance, at
 * its first acquire attempt (the lock value names the node's api_addr),
 * registers <service>:<host>:<port> with tag active|standby (+ service_tags)
 * and a TTL check (check_timeout) that a thread passes every TTL/3; tags
 * follow the lock; deregistered on close.
 *
 * Threads: any thread may call any method. `mu` guards the handle pool, the
 * in-flight count (max_parallel) and the lock/registration state; the
 * monitor and registration threads are started and joined by the owner.
 */
#include "physical/physical.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/b64.h"
#include "util/buf.h"
#include "util/curl_dl.h"
#include "util/duration.h"
#include "util/log.h"

#define CONSUL_TXN_MAX                                                         \
  64 /* Consul's maxTxnOps (older servers; newer allow 128) */
#define CONSUL_TXN_MAX_LEN 524288 /* Consul's default txn_max_req_len */
#define CONSUL_DEFAULT_ENTRY                                                   \
  368640 /* 360 KiB: base64 + JSON fits the txn limit */
#define CONSUL_MAX_INSTANCES 16
#define CONSUL_SID_LEN 64

struct consul;

struct consul_ha {
  struct physical_ha base; /* must be first */
  struct consul *c;
};

struct consul {
  struct physical base; /* must be first */
  char *url;            /* "http://127.0.0.1:8500" */
  char *prefix;         /* "vault/" */
  char *lock_key;       /* prefix + "core/lock" */
  char *token;          /* NULL: none; wiped on close */
  char *ca_file, *cert_file, *key_file;
  bool skip_verify, strong, registration;
  long timeout_ms, ttl_s, wait_s, delay_s, check_s;
  long lock_check_s; /* TTL of the check the session is bound to (0 none) */
  long eff_ttl_s;    /* min(session_ttl, lock_check_ttl): when Consul may
                        drop the lock after the holder's last renewal */
  char *service, *service_address;
  bool service_address_set;
  char **tags;
  size_t ntags;

  pthread_mutex_t mu;
  pthread_cond_t cond; /* in-flight slots, callbacks done, thread wake-ups */
  CURL **idle;
  size_t nidle, inflight, max_parallel;

  /* HA state, under mu */
  struct consul_ha *ha;
  char sid[CONSUL_SID_LEN]; /* our session ("" none) */
  int64_t sid_renewed_ms;
  bool held;                  /* lost() not yet called */
  char guard[CONSUL_SID_LEN]; /* session every write checks ("" none) */
  physical_ha_lost_fn lost;
  void *lost_ctx;
  int cb_busy;
  int64_t last_renew_ms;
  uint64_t lock_modify;
  pthread_t mon;
  bool mon_running;
  atomic_bool mon_stop;

  /* the lock session's health check, under mu */
  char *lock_check_id; /* NULL until the first acquire attempt */
  bool lock_check_reg; /* registered with the agent */
  int64_t lock_check_ms; /* last successful register / pass */

  /* registration, under mu */
  pthread_t reg;
  bool reg_running, reg_stop, reg_dirty;
  char *svc_id, *svc_host;
  int svc_port;
  atomic_bool reg_abort;
};

static const struct physical_ops consul_ops;

/* Every open instance, so a write can carry the check-session guard of the
 * lock held by another instance on the same Consul. */
static pthread_mutex_t g_inst_mu = PTHREAD_MUTEX_INITIALIZER;
static struct consul *g_inst[CONSUL_MAX_INSTANCES];

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- HTTP ---- */

struct resp {
  long status;
  struct buf body;
  uint64_t index; /* X-Consul-Index, 0 if absent */
};

static void resp_free(struct resp *r) { buf_free(&r->body); }

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  struct buf *b = ud;
  buf_add(b, p, sz * n);
  return b->failed ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  struct resp *r = ud;
  size_t len = sz * n;
  static const char name[] = "x-consul-index:";
  if (len > sizeof(name) - 1 && !strncasecmp(p, name, sizeof(name) - 1)) {
    char tmp[32];
    size_t vl = len - (sizeof(name) - 1);
    if (vl >= sizeof(tmp))
      vl = sizeof(tmp) - 1;
    memcpy(tmp, p + sizeof(name) - 1, vl);
    tmp[vl] = '\0';
    r->index = strtoull(tmp, NULL, 10);
  }
  return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  atomic_bool *abort = ud;
  return abort && atomic_load(abort) ? 1 : 0;
}

/* Take a handle; `bg` requests (monitor, registration) do not count
 * against max_parallel. */
static CURL *handle_get(struct consul *c, bool bg) {
  CURL *h = NULL;
  pthread_mutex_lock(&c->mu);
  if (!bg) {
    while (c->inflight >= c->max_parallel)
      pthread_cond_wait(&c->cond, &c->mu);
    c->inflight++;
  }
  if (c->nidle)
    h = c->idle[--c->nidle];
  pthread_mutex_unlock(&c->mu);
  if (!h)
    h = curl_easy_init();
  else
    curl_easy_reset(h); /* keeps the live connection */
  if (!h && !bg) {
    pthread_mutex_lock(&c->mu);
    c->inflight--;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
  }
  return h;
}

static void handle_put(struct consul *c, CURL *h, bool bg, bool keep) {
  pthread_mutex_lock(&c->mu);
  if (!bg) {
    c->inflight--;
    pthread_cond_broadcast(&c->cond);
  }
  if (keep && c->nidle < c->max_parallel) {
    c->idle[c->nidle++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  if (h)
    curl_easy_cleanup(h);
}

/* A short, single-line excerpt of an answer body for an error message. */
static void excerpt(const struct resp *r, char *out, size_t cap) {
  size_t n = r->body.len < cap - 1 ? r->body.len : cap - 1;
  for (size_t i = 0; i < n; i++) {
    char ch = r->body.p[i];
    out[i] = ch == '\r' || ch == '\n' || (unsigned char)ch < 0x20 ? ' ' : ch;
  }
  out[n] = '\0';
  while (n && out[n - 1] == ' ')
    out[--n] = '\0';
}

/*
 * One request. method "GET"/"PUT"/"DELETE"; path starts with "/v1/" and
 * carries the query. 0 with r->status for 200, 404 and 409 (the callers
 * interpret them); otherwise an error: VERR_UNAVAILABLE for transport
 * failures and 5xx, VERR_DENIED for 403 (a token problem), VERR_TOO_LARGE
 * for 413, VERR_INTERNAL for the rest, each naming Consul's answer.
 */
static int http_do(struct consul *c, const char *method, const char *path,
                   const void *body, size_t blen, long timeout_ms, bool bg,
                   atomic_bool *abort, struct resp *r, struct verr *err) {
  memset(r, 0, sizeof(*r));
  CURL *h = handle_get(c, bg);
  if (!h)
    return verr_set(err, VERR_UNAVAILABLE, "consul: libcurl is not available");
  struct buf url = {0};
  buf_str(&url, c->url);
  buf_str(&url, path);
  if (url.failed) {
    buf_free(&url);
    handle_put(c, h, bg, true);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  char *tokh = NULL;
  if (c->token) {
    size_t tl = strlen(c->token) + sizeof("X-Consul-Token: ");
    tokh = malloc(tl);
    if (tokh) {
      snprintf(tokh, tl, "X-Consul-Token: %s", c->token);
      hdr = curl_slist_append(hdr, tokh);
    }
  }
  char cerr[CURL_ERROR_SIZE];
  cerr[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url.p);
  if (!strcmp(method, "GET")) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "PUT") || body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)(body ? blen : 0));
    }
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   timeout_ms < 3000 ? timeout_ms : 3000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  if (abort) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, abort);
  }
  if (c->ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (c->cert_file)
    curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
  if (c->key_file)
    curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
  if (c->skip_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode cc = curl_easy_perform(h);
  curl_slist_free_all(hdr);
  if (tokh) {
    explicit_bzero(tokh, strlen(tokh));
    free(tokh);
  }
  buf_free(&url);
  if (cc != CURLE_OK) {
    handle_put(c, h, bg, false);
    resp_free(r);
    return verr_set(err, VERR_UNAVAILABLE, "consul %s: %s", c->url,
                    cerr[0] ? cerr : curl_easy_strerror(cc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  handle_put(c, h, bg, true);
  if (r->body.failed) {
    resp_free(r);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  if (r->status == 200 || r->status == 404 || r->status == 409)
    return 0;
  char ex[200];
  excerpt(r, ex, sizeof(ex));
  int code = r->status >= 500   ? VERR_UNAVAILABLE
             : r->status == 403 ? VERR_DENIED
             : r->status == 413 ? VERR_TOO_LARGE
                                : VERR_INTERNAL;
  if (r->status == 403)
    verr_set(err, code,
             "consul %s: permission denied (HTTP 403: %s): check the storage "
             "stanza's "
             "token and its ACL policy",
             c->url, ex[0] ? ex : "no detail");
  else
    verr_set(err, code, "consul %s: HTTP %ld: %s", c->url, r->status,
             ex[0] ? ex : "no detail");
  resp_free(r);
  return code;
}

static int call(struct consul *c, const char *method, const char *path,
                const void *body, size_t blen, struct resp *r,
                struct verr *err) {
  return http_do(c, method, path, body, blen, c->timeout_ms, false, NULL, r,
                 err);
}

/* ---- keys ---- */

static int check_key(const char *key, struct verr *err) {
  if (!key || !*key || strlen(key) > PHYSICAL_MAX_KEY)
    return verr_set(err, VERR_INVALID, "key is empty or longer than %d bytes",
                    PHYSICAL_MAX_KEY);
  return 0;
}

static char *full_key(const struct consul *c, const char *key) {
  size_t n = strlen(c->prefix) + strlen(key) + 1;
  char *o = malloc(n);
  if (o)
    snprintf(o, n, "%s%s", c->prefix, key);
  return o;
}

/* Would Consul's HTTP router (Go's path cleaning) rewrite /v1/kv/<k>? An
 * empty, "." or ".." segment anywhere but a trailing slash does. */
static bool path_is_clean(const char *k) {
  const char *s = k;
  for (;;) {
    const char *slash = strchr(s, '/');
    size_t l = slash ? (size_t)(slash - s) : strlen(s);
    if (!slash)
      return !((l == 1 && s[0] == '.') ||
               (l == 2 && s[0] == '.' && s[1] == '.'));
    if (l == 0 || (l == 1 && s[0] == '.') ||
        (l == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    s = slash + 1;
  }
}

/* "/v1/kv/" + percent-encoded key + query (query may be NULL). */
static char *kv_path(const char *fk, const char *query) {
  static const char hexd[] = "0123456789ABCDEF";
  struct buf b = {0};
  buf_str(&b, "/v1/kv/");
  for (const unsigned char *p = (const unsigned char *)fk; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~' || *p == '/') {
      buf_char(&b, (char)*p);
    } else {
      buf_char(&b, '%');
      buf_char(&b, hexd[*p >> 4]);
      buf_char(&b, hexd[*p & 15]);
    }
  }
  if (query) {
    buf_char(&b, '?');
    buf_str(&b, query);
  }
  if (b.failed) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b, NULL);
}

static void add_consistent(const struct consul *c, char *q, size_t cap,
                           const char *base) {
  snprintf(q, cap, "%s%s%s", base, c->strong && *base ? "&" : "",
           c->strong ? "consistent" : "");
}

/* ---- transactions ---- */

static json_t *kv_op(const char *verb, const char *key) {
  return json_pack("{s:{s:s,s:s}}", "KV", "Verb", verb, "Key", key);
}

/* Collect the check-session guards of every instance on the same Consul
 * that holds (or has just lost and not yet released) the lock. */
static size_t add_guards(struct consul *c, json_t *ops, struct consul **owners,
                         size_t cap) {
  size_t n = 0;
  pthread_mutex_lock(&g_inst_mu);
  for (size_t i = 0; i < CONSUL_MAX_INSTANCES && n < cap; i++) {
    struct consul *x = g_inst[i];
    if (!x || strcmp(x->url, c->url))
      continue;
    pthread_mutex_lock(&x->mu);
    if (x->guard[0]) {
      json_t *g = json_pack("{s:{s:s,s:s,s:s}}", "KV", "Verb", "check-session",
                            "Key", x->lock_key, "Session", x->guard);
      if (g && !json_array_append_new(ops, g))
        owners[n++] = x;
    }
    pthread_mutex_unlock(&x->mu);
  }
  pthread_mutex_unlock(&g_inst_mu);
  return n;
}

static void fire_lost(struct consul *c, const char *why);

/* Tell the owner of a failed guard that its lock is gone (it may be
 * another instance: looked up again under the registry lock). */
static void guard_failed(struct consul *owner, const char *why) {
  pthread_mutex_lock(&g_inst_mu);
  for (size_t i = 0; i < CONSUL_MAX_INSTANCES; i++)
    if (g_inst[i] == owner)
      fire_lost(owner, why);
  pthread_mutex_unlock(&g_inst_mu);
}

/* Send ops (a JSON array, borrowed) as one transaction, behind the guards.
 * *res (optional) gets the parsed answer of a committed transaction. */
static int txn_send(struct consul *c, json_t *ops, bool write, json_t **res,
                    struct verr *err) {
  if (res)
    *res = NULL;
  struct consul *owners[CONSUL_MAX_INSTANCES];
  json_t *all = json_array();
  size_t ng =
      write && all ? add_guards(c, all, owners, CONSUL_MAX_INSTANCES) : 0;
  if (!all || json_array_extend(all, ops)) {
    json_decref(all);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  if (json_array_size(all) > CONSUL_TXN_MAX) {
    json_decref(all);
    return verr_set(
        err, VERR_TOO_LARGE,
        "consul: transaction of %zu operations (with %zu lock guards) exceeds "
        "Consul's limit of %d",
        json_array_size(ops), ng, CONSUL_TXN_MAX);
  }
  char *body = json_dumps(all, JSON_COMPACT);
  json_decref(all);
  if (!body)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  size_t blen = strlen(body);
  if (blen > CONSUL_TXN_MAX_LEN) {
    free(body);
    return verr_set(err, VERR_TOO_LARGE,
                    "consul: transaction of %zu bytes exceeds Consul's "
                    "txn_max_req_len (%d)",
                    blen, CONSUL_TXN_MAX_LEN);
  }
  struct resp r;
  int rc = call(c, "PUT", "/v1/txn", body, blen, &r, err);
  free(body);
  if (rc)
    return rc;
  json_t *j = r.body.len ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
  long status = r.status;
  resp_free(&r);
  if (status == 200) {
    if (res)
      *res = j;
    else
      json_decref(j);
    return 0;
  }
  /* 409: rolled back; Errors name the failed op */
  json_t *errs = json_object_get(j, "Errors");
  size_t i;
  json_t *e;
  const char *what = NULL;
  size_t guard_fail = SIZE_MAX;
  json_array_foreach(errs, i, e) {
    json_int_t oi = json_integer_value(json_object_get(e, "OpIndex"));
    if (!what)
      what = json_string_value(json_object_get(e, "What"));
    if (oi >= 0 && (size_t)oi < ng && guard_fail == SIZE_MAX)
      guard_fail = (size_t)oi;
  }
  if (guard_fail != SIZE_MAX) {
    guard_failed(owners[guard_fail], "the lock's session is no longer valid");
    rc = verr_set(err, VERR_UNAVAILABLE,
                  "consul: this node no longer holds the HA lock; the write "
                  "was not applied");
  } else if (status == 404) {
    rc = verr_set(err, VERR_INTERNAL,
                  "consul %s: /v1/txn not found (Consul too old?)", c->url);
  } else {
    rc = verr_set(err, VERR_INTERNAL, "consul: transaction rolled back: %s",
                  what ? what : "no detail");
  }
  json_decref(j);
  return rc;
}

/* ---- storage ---- */

static int txn_get(struct consul *c, const char *fk, uint8_t **out, size_t *len,
                   struct verr *err) {
  json_t *ops = json_array();
  json_t *op = kv_op("get-or-empty", fk);
  if (!ops || !op || json_array_append_new(ops, op)) {
    json_decref(ops);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  json_t *res = NULL;
  int rc = txn_send(c, ops, false, &res, err);
  json_decref(ops);
  if (rc)
    return rc;
  json_t *kv =
      json_object_get(json_array_get(json_object_get(res, "Results"), 0), "KV");
  /* get-or-empty answers a missing key with an entry that has no
   * indexes; a stored key always has CreateIndex > 0 */
  if (json_is_object(kv) &&
      json_integer_value(json_object_get(kv, "CreateIndex")) > 0) {
    const char *v = json_string_value(json_object_get(kv, "Value"));
    struct verr e2 = {0};
    if (b64_decode(out, len, v ? v : "", false, &e2))
      rc = verr_set(err, VERR_INTERNAL,
                    "consul: the value of a key is not base64");
  }
  json_decref(res);
  return rc;
}

static int consul_get(struct physical *p, const char *key, uint8_t **out,
                      size_t *len, struct verr *err) {
  struct consul *c = (struct consul *)p;
  *out = NULL;
  *len = 0;
  int rc = check_key(key, err);
  if (rc)
    return rc;
  char *fk = full_key(c, key);
  if (!fk)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  if (!path_is_clean(fk)) {
    rc = txn_get(c, fk, out, len, err);
    free(fk);
    return rc;
  }
  char q[32];
  add_consistent(c, q, sizeof(q), "raw");
  char *path = kv_path(fk, q);
  free(fk);
  if (!path)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  rc = call(c, "GET", path, NULL, 0, &r, err);
  free(path);
  if (rc)
    return rc;
  if (r.status == 200) {
    *out = malloc(r.body.len ? r.body.len : 1);
    if (!*out) {
      resp_free(&r);
      return verr_set(err, VERR_INTERNAL, "out of memory");
    }
    if (r.body.len)
      memcpy(*out, r.body.p, r.body.len);
    *len = r.body.len;
  } else if (r.status != 404) {
    rc = verr_set(err, VERR_INTERNAL,
                  "consul %s: unexpected HTTP %ld reading a key", c->url,
                  r.status);
  }
  resp_free(&r);
  return rc;
}

static json_t *op_put(const char *fk, const uint8_t *val, size_t len) {
  char *v = b64_encode(val ? val : (const uint8_t *)"", len, false);
  json_t *o = v ? json_pack("{s:{s:s,s:s,s:s}}", "KV", "Verb", "set", "Key", fk,
                            "Value", v)
                : NULL;
  free(v);
  return o;
}

static int write_one(struct consul *c, const char *key, const uint8_t *val,
                     size_t len, bool put, struct verr *err) {
  char *fk = full_key(c, key);
  json_t *op = fk ? (put ? op_put(fk, val, len) : kv_op("delete", fk)) : NULL;
  free(fk);
  json_t *ops = op ? json_array() : NULL;
  if (!ops || json_array_append_new(ops, op)) {
    json_decref(ops);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  int rc = txn_send(c, ops, true, NULL, err);
  json_decref(ops);
  return rc;
}

static int consul_put(struct physical *p, const char *key, const uint8_t *val,
                      size_t len, struct verr *err) {
  int rc = check_key(key, err);
  if (rc)
    return rc;
  if (len > p->max_entry_size)
    return verr_set(
        err, VERR_TOO_LARGE,
        "value of %zu bytes exceeds the consul backend's max_entry_size (%zu)",
        len, p->max_entry_size);
  return write_one((struct consul *)p, key, val, len, true, err);
}

static int consul_del(struct physical *p, const char *key, struct verr *err) {
  int rc = check_key(key, err);
  if (rc)
    return rc;
  return write_one((struct consul *)p, key, NULL, 0, false, err);
}

static int consul_txn(struct physical *p, const struct physical_txn_op *ops,
                      size_t n, struct verr *err) {
  struct consul *c = (struct consul *)p;
  if (n > CONSUL_TXN_MAX - 2)
    return verr_set(
        err, VERR_TOO_LARGE,
        "transaction of %zu operations exceeds Consul's limit of %d", n,
        CONSUL_TXN_MAX - 2);
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    int rc = check_key(ops[i].key, err);
    if (!rc && ops[i].kind == PHYSICAL_TXN_PUT &&
        ops[i].len > p->max_entry_size)
      rc = verr_set(
          err, VERR_TOO_LARGE,
          "value of %zu bytes exceeds the consul backend's max_entry_size",
          ops[i].len);
    if (rc) {
      json_decref(arr);
      return rc;
    }
    char *fk = full_key(c, ops[i].key);
    json_t *o = !fk ? NULL
                : ops[i].kind == PHYSICAL_TXN_PUT
                    ? op_put(fk, ops[i].val, ops[i].len)
                    : kv_op("delete", fk);
    free(fk);
    if (!o || json_array_append_new(arr, o)) {
      json_decref(arr);
      arr = NULL;
    }
  }
  if (!arr)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  int rc = txn_send(c, arr, true, NULL, err);
  json_decref(arr);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list through get-tree (a prefix Consul's router would rewrite) */
static int list_txn(struct consul *c, const char *fp, const char *prefix,
                    char ***out, size_t *n, struct verr *err) {
  json_t *ops = json_array();
  json_t *op = kv_op("get-tree", fp);
  if (!ops || !op || json_array_append_new(ops, op)) {
    json_decref(ops);
    return verr_set(err, VERR_INTERNAL, "out of memory");
  }
  json_t *res = NULL;
  int rc = txn_send(c, ops, false, &res, err);
  json_decref(ops);
  if (rc)
    return rc;
  json_t *results = json_object_get(res, "Results");
  size_t cnt = json_array_size(results), nk = 0, pl = strlen(c->prefix);
  char **keys = calloc(cnt ? cnt : 1, sizeof(*keys));
  size_t i;
  json_t *it;
  json_array_foreach(results, i, it) {
    const char *k =
        json_string_value(json_object_get(json_object_get(it, "KV"), "Key"));
    if (keys && k && !strncmp(k, c->prefix, pl) && (keys[nk] = strdup(k + pl)))
      nk++;
  }
  json_decref(res);
  if (!keys)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  qsort(keys, nk, sizeof(*keys), cmp_str);
  rc = physical__children(keys, nk, prefix, out, n);
  physical_list_free(keys, nk);
  return rc ? verr_set(err, VERR_INTERNAL, "out of memory") : 0;
}

static int consul_list(struct physical *p, const char *prefix, char ***out,
                       size_t *n, struct verr *err) {
  struct consul *c = (struct consul *)p;
  *out = NULL;
  *n = 0;
  char *fp = full_key(c, prefix ? prefix : "");
  if (!fp)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  if (!path_is_clean(fp)) {
    int rc = list_txn(c, fp, prefix ? prefix : "", out, n, err);
    free(fp);
    return rc;
  }
  char q[48];
  add_consistent(c, q, sizeof(q), "keys&separator=/");
  char *path = kv_path(fp, q);
  size_t fpl = strlen(fp);
  free(fp);
  if (!path)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  int rc = call(c, "GET", path, NULL, 0, &r, err);
  free(path);
  if (rc)
    return rc;
  if (r.status == 404) {
    resp_free(&r);
    *out = calloc(1, sizeof(char *));
    return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
  }
  json_t *j =
      r.status == 200 ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
  resp_free(&r);
  if (!json_is_array(j)) {
    json_decref(j);
    return verr_set(err, VERR_INTERNAL,
                    "consul %s: unexpected answer to a key listing", c->url);
  }
  size_t cnt = json_array_size(j), ni = 0;
  char **items = calloc(cnt ? cnt : 1, sizeof(*items));
  size_t i;
  json_t *it;
  json_array_foreach(j, i, it) {
    const char *k = json_string_value(it);
    /* the prefix itself (a key "folder/") is not a child */
    if (!items || !k || strlen(k) <= fpl)
      continue;
    if (!(items[ni] = strdup(k + fpl))) {
      physical_list_free(items, ni);
      items = NULL;
      break;
    }
    ni++;
  }
  json_decref(j);
  if (!items)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  qsort(items, ni, sizeof(*items), cmp_str);
  /* de-duplicate (a key "a/" and a folder "a/" look the same) */
  size_t w = 0;
  for (size_t k = 0; k < ni; k++) {
    if (w && !strcmp(items[w - 1], items[k])) {
      free(items[k]);
      continue;
    }
    items[w++] = items[k];
  }
  *out = items;
  *n = w;
  return 0;
}

/* ---- HA lock ---- */

static void fire_lost(struct consul *c, const char *why) {
  physical_ha_lost_fn fn = NULL;
  void *ctx = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->held) {
    c->held = false;
    c->reg_dirty = true;
    fn = c->lost;
    ctx = c->lost_ctx;
    c->cb_busy++;
  }
  pthread_mutex_unlock(&c->mu);
  if (!fn)
    return;
  log_warn("storage", "consul: HA lock lost (%s)", why);
  fn(ctx);
  pthread_mutex_lock(&c->mu);
  c->cb_busy--;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
}

/* The lock key's Session ("" when unlocked) and ModifyIndex; *exists false
 * when the key is absent. value (optional) gets the decoded value. */
static int lock_read(struct consul *c, const char *query, long timeout_ms,
                     bool bg, atomic_bool *abort, bool *exists, char *session,
                     size_t scap, uint64_t *modify, uint64_t *index,
                     char **value, struct verr *err) {
  *exists = false;
  session[0] = '\0';
  if (value)
    *value = NULL;
  char q[96];
  add_consistent(c, q, sizeof(q), query ? query : "");
  char *path = kv_path(c->lock_key, q[0] ? q : NULL);
  if (!path)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  int rc = http_do(c, "GET", path, NULL, 0, timeout_ms, bg, abort, &r, err);
  free(path);
  if (rc)
    return rc;
  if (index)
    *index = r.index;
  if (r.status == 404) {
    resp_free(&r);
    return 0;
  }
  json_t *j = json_loadb(r.body.p, r.body.len, 0, NULL);
  resp_free(&r);
  json_t *e = json_array_get(j, 0);
  if (!json_is_object(e)) {
    json_decref(j);
    return verr_set(err, VERR_INTERNAL,
                    "consul %s: unexpected answer reading the lock key",
                    c->url);
  }
  *exists = true;
  const char *s = json_string_value(json_object_get(e, "Session"));
  snprintf(session, scap, "%s", s ? s : "");
  if (modify)
    *modify = (uint64_t)json_integer_value(json_object_get(e, "ModifyIndex"));
  if (value) {
    const char *v = json_string_value(json_object_get(e, "Value"));
    size_t vl = 0;
    struct verr e2 = {0};
    if (b64_decode((uint8_t **)value, &vl, v ? v : "", false, &e2)) {
      json_decref(j);
      return verr_set(err, VERR_INTERNAL,
                      "consul: the lock value is not base64");
    }
    (void)vl; /* b64_decode NUL-terminates: a string */
  }
  json_decref(j);
  return 0;
}

static void *monitor_main(void *arg) {
  struct consul *c = arg;
  pthread_mutex_lock(&c->mu);
  uint64_t idx = c->lock_modify;
  char sid[CONSUL_SID_LEN];
  snprintf(sid, sizeof(sid), "%s", c->guard);
  pthread_mutex_unlock(&c->mu);
  char q[64];
  while (!atomic_load(&c->mon_stop)) {
    snprintf(q, sizeof(q), "index=%llu&wait=%lds", (unsigned long long)idx,
             c->wait_s);
    bool exists = false;
    char cur[CONSUL_SID_LEN];
    uint64_t index = 0;
    struct verr err = {0};
    int rc = lock_read(c, q, (c->wait_s + c->wait_s / 16 + 5) * 1000, true,
                       &c->mon_stop, &exists, cur, sizeof(cur), NULL, &index,
                       NULL, &err);
    if (atomic_load(&c->mon_stop))
      break;
    if (rc) {
      /* Consul unreachable: renewal decides when the lock is
       * gone; try again in a second */
      for (int i = 0; i < 10 && !atomic_load(&c->mon_stop); i++) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    if (!exists) {
      fire_lost(c, "the lock key was deleted");
      break;
    }
    if (strcmp(cur, sid)) {
      fire_lost(c, cur[0]
                       ? "the lock is held by another session"
                       : "the session was invalidated and the lock released");
      break;
    }
    /* an index that went backwards resets the wait (Consul's rule) */
    idx = index > idx ? index : (index < idx ? 0 : idx);
  }
  return NULL;
}

/* The lock value's api_addr (a JSON object's "api_addr", or the value
 * itself) as host and port; false when it names no host. */
static bool api_host_port(const char *value, char *host, size_t cap,
                          int *port) {
  json_t *j = value && value[0] == '{' ? json_loads(value, 0, NULL) : NULL;
  const char *api = json_string_value(json_object_get(j, "api_addr"));
  if (!api)
    api = value && value[0] != '{' ? value : "";
  /* scheme://host:port[/...] -> host, port */
  const char *hp = strstr(api, "://");
  hp = hp ? hp + 3 : api;
  host[0] = '\0';
  *port = strncmp(api, "https", 5) ? 80 : 443;
  const char *end = hp + strcspn(hp, "/");
  const char *colon = NULL;
  if (*hp == '[') {
    const char *rb = strchr(hp, ']');
    if (rb && rb < end) {
      snprintf(host, cap, "%.*s", (int)(rb - hp - 1), hp + 1);
      colon = rb[1] == ':' ? rb + 1 : NULL;
    }
  } else {
    colon = memchr(hp, ':', (size_t)(end - hp));
    snprintf(host, cap, "%.*s", (int)((colon ? colon : end) - hp), hp);
  }
  if (colon) {
    long pv = strtol(colon + 1, NULL, 10);
    if (pv > 0 && pv < 65536)
      *port = (int)pv;
  }
  json_decref(j);
  return host[0] != '\0';
}

/* ---- the lock session's health check ---- */

/* Named after the node's api_addr, so a node restarted after kill -9 takes
 * over the check it left critical instead of piling up dead ones; without
 * an api_addr (tests, odd values) the name is unique to this instance. */
static int lock_check_name(struct consul *c, const char *value,
                           struct verr *err) {
  pthread_mutex_lock(&c->mu);
  bool named = c->lock_check_id != NULL;
  pthread_mutex_unlock(&c->mu);
  if (named || !c->lock_check_s)
    return 0;
  static atomic_int seq;
  char host[256], id[512];
  int port = 0;
  if (api_host_port(value, host, sizeof(host), &port))
    snprintf(id, sizeof(id), "%s:%s:%d:ha-lock-check", c->service, host, port);
  else
    snprintf(id, sizeof(id), "%s:pid%ld-%d:ha-lock-check", c->service,
             (long)getpid(), atomic_fetch_add(&seq, 1));
  /* a check ID travels in a URL path: keep it to safe characters */
  for (char *q = id; *q; q++)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
          (*q >= '0' && *q <= '9') || strchr(":.-_", *q)))
      *q = '_';
  char *dup = strdup(id);
  if (!dup)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  pthread_mutex_lock(&c->mu);
  if (!c->lock_check_id)
    c->lock_check_id = dup;
  else
    free(dup);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static int lock_check_register(struct consul *c, const char *id,
                               struct verr *err) {
  char ttl[32];
  snprintf(ttl, sizeof(ttl), "%lds", c->lock_check_s);
  json_t *j = json_pack(
      "{s:s,s:s,s:s,s:s,s:s}", "ID", id, "Name", "Coffer HA lock session",
      "Notes",
      "Passed by the Coffer node while it renews its HA lock session; when "
      "it lapses Consul invalidates the session and the lock is released",
      "TTL", ttl, "Status", "passing");
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!body)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  int rc = call(c, "PUT", "/v1/agent/check/register", body, strlen(body), &r,
                err);
  free(body);
  if (rc)
    return rc;
  long st = r.status;
  resp_free(&r);
  if (st != 200)
    return verr_set(err, VERR_INTERNAL,
                    "consul %s: registering the HA lock check: HTTP %ld",
                    c->url, st);
  return 0;
}

/* Keep the check passing: registered if the agent does not have it, passed
 * when `force` (the holder) or half its TTL has gone by (a standby). */
static int lock_check_keep(struct consul *c, bool force, struct verr *err) {
  if (!c->lock_check_s)
    return 0;
  char id[512];
  pthread_mutex_lock(&c->mu);
  snprintf(id, sizeof(id), "%s", c->lock_check_id ? c->lock_check_id : "");
  bool reg = c->lock_check_reg;
  bool due = force || mono_ms() - c->lock_check_ms >= c->lock_check_s * 500;
  pthread_mutex_unlock(&c->mu);
  if (!id[0] || (reg && !due))
    return 0;
  int64_t t0 = mono_ms();
  int rc = 0;
  if (reg) {
    char path[600];
    snprintf(path, sizeof(path), "/v1/agent/check/pass/%s", id);
    struct resp r;
    rc = call(c, "PUT", path, "", 0, &r, err);
    if (rc)
      return rc;
    reg = r.status != 404; /* the agent forgot it: register again */
    resp_free(&r);
  }
  if (!reg && (rc = lock_check_register(c, id, err)))
    return rc;
  pthread_mutex_lock(&c->mu);
  c->lock_check_reg = true;
  c->lock_check_ms = t0;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static void lock_check_deregister(struct consul *c) {
  pthread_mutex_lock(&c->mu);
  char *id = c->lock_check_reg ? c->lock_check_id : NULL;
  c->lock_check_reg = false;
  pthread_mutex_unlock(&c->mu);
  if (!id)
    return;
  char path[600];
  snprintf(path, sizeof(path), "/v1/agent/check/deregister/%s", id);
  struct resp r;
  struct verr err = {0};
  if (http_do(c, "PUT", path, "", 0, 2000, false, NULL, &r, &err) == 0)
    resp_free(&r);
  else
    log_warn("storage", "consul: deregistering the HA lock check: %s",
             err.msg);
}

static int session_create(struct consul *c, struct verr *err) {
  char ttl[32], delay[32], check[512];
  snprintf(ttl, sizeof(ttl), "%lds", c->ttl_s);
  snprintf(delay, sizeof(delay), "%lds", c->delay_s);
  pthread_mutex_lock(&c->mu);
  snprintf(check, sizeof(check), "%s",
           c->lock_check_reg && c->lock_check_id ? c->lock_check_id : "");
  pthread_mutex_unlock(&c->mu);
  json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "Name", "Vault Lock", "TTL", ttl,
                        "LockDelay", delay, "Behavior", "release");
  if (j && check[0]) {
    /* NodeChecks for Consul >= 1.7, Checks (deprecated) for older servers;
     * serfHealth kept, as Consul recommends when overriding the list */
    json_object_set_new(j, "NodeChecks",
                        json_pack("[s,s]", "serfHealth", check));
    json_object_set_new(j, "Checks", json_pack("[s,s]", "serfHealth", check));
  }
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!body)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  int rc = call(c, "PUT", "/v1/session/create", body, strlen(body), &r, err);
  free(body);
  if (rc) {
    /* the check lapsed or the agent lost it: register it again next time */
    if (check[0] && strstr(err->msg, "heck")) {
      pthread_mutex_lock(&c->mu);
      c->lock_check_reg = false;
      pthread_mutex_unlock(&c->mu);
    }
    return rc;
  }
  j = r.status == 200 ? json_loadb(r.body.p, r.body.len, 0, NULL) : NULL;
  resp_free(&r);
  const char *id = json_string_value(json_object_get(j, "ID"));
  if (!id || !*id || strlen(id) >= CONSUL_SID_LEN) {
    json_decref(j);
    return verr_set(err, VERR_INTERNAL,
                    "consul %s: session create returned no ID", c->url);
  }
  pthread_mutex_lock(&c->mu);
  snprintf(c->sid, sizeof(c->sid), "%s", id);
  c->sid_renewed_ms = mono_ms();
  pthread_mutex_unlock(&c->mu);
  json_decref(j);
  return 0;
}

/* 0 renewed, 1 the session is gone (404), <0 error */
static int session_renew(struct consul *c, const char *sid, struct verr *err) {
  char path[128];
  snprintf(path, sizeof(path), "/v1/session/renew/%s", sid);
  struct resp r;
  int rc = call(c, "PUT", path, "", 0, &r, err);
  if (rc)
    return rc;
  long st = r.status;
  resp_free(&r);
  return st == 404 ? 1 : 0;
}

static void session_destroy(struct consul *c, const char *sid) {
  char path[128];
  snprintf(path, sizeof(path), "/v1/session/destroy/%s", sid);
  struct resp r;
  struct verr err = {0};
  if (call(c, "PUT", path, "", 0, &r, &err) == 0)
    resp_free(&r);
  else
    log_warn("storage", "consul: destroying the lock session: %s", err.msg);
}

/* A session a standby can acquire with: created once, renewed when half its
 * TTL has passed (re-created when Consul has invalidated it). */
static int ensure_session(struct consul *c, char *sid, struct verr *err) {
  int crc = lock_check_keep(c, false, err);
  if (crc)
    return crc;
  pthread_mutex_lock(&c->mu);
  snprintf(sid, CONSUL_SID_LEN, "%s", c->sid);
  bool stale = mono_ms() - c->sid_renewed_ms >= c->ttl_s * 500;
  pthread_mutex_unlock(&c->mu);
  if (sid[0] && stale) {
    int g = session_renew(c, sid, err);
    if (g < 0)
      return g;
    pthread_mutex_lock(&c->mu);
    if (g == 1)
      c->sid[0] = '\0';
    else
      c->sid_renewed_ms = mono_ms();
    pthread_mutex_unlock(&c->mu);
    if (g == 1)
      sid[0] = '\0';
  }
  if (!sid[0]) {
    int rc = session_create(c, err);
    if (rc)
      return rc;
    pthread_mutex_lock(&c->mu);
    snprintf(sid, CONSUL_SID_LEN, "%s", c->sid);
    pthread_mutex_unlock(&c->mu);
  }
  return 0;
}

static void reg_start(struct consul *c, const char *value);

static int ha_acquire(struct physical_ha *h, const char *value,
                      physical_ha_lost_fn lost, void *ctx, struct verr *err) {
  struct consul *c = ((struct consul_ha *)h)->c;
  if (c->registration)
    reg_start(c, value);
  int rc = lock_check_name(c, value, err);
  if (rc)
    return rc;
  char sid[CONSUL_SID_LEN];
  rc = ensure_session(c, sid, err);
  if (rc)
    return rc;
  char q[128];
  snprintf(q, sizeof(q), "acquire=%s", sid);
  char *path = kv_path(c->lock_key, q);
  if (!path)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  const char *v = value ? value : "";
  rc = call(c, "PUT", path, v, strlen(v), &r, err);
  free(path);
  if (rc) {
    /* e.g. 500 "invalid session": start over with a new one */
    pthread_mutex_lock(&c->mu);
    if (!strcmp(c->sid, sid) && strstr(err->msg, "session"))
      c->sid[0] = '\0';
    pthread_mutex_unlock(&c->mu);
    return rc;
  }
  bool won = r.status == 200 && r.body.len >= 4 && !memcmp(r.body.p, "true", 4);
  resp_free(&r);
  if (!won)
    return 0;
  bool exists = false;
  char cur[CONSUL_SID_LEN];
  uint64_t modify = 0;
  rc = lock_read(c, NULL, c->timeout_ms, false, NULL, &exists, cur, sizeof(cur),
                 &modify, NULL, NULL, err);
  if (rc || !exists || strcmp(cur, sid)) {
    if (!rc)
      rc = verr_set(err, VERR_UNAVAILABLE,
                    "consul: the lock changed right after acquire");
    return rc;
  }
  pthread_mutex_lock(&c->mu);
  c->held = true;
  c->reg_dirty = true;
  snprintf(c->guard, sizeof(c->guard), "%s", sid);
  c->lost = lost;
  c->lost_ctx = ctx;
  c->last_renew_ms = mono_ms();
  c->lock_modify = modify;
  atomic_store(&c->mon_stop, false);
  c->mon_running = pthread_create(&c->mon, NULL, monitor_main, c) == 0;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  if (!c->mon_running)
    log_warn("storage",
             "consul: cannot start the lock monitor; renewal alone watches it");
  log_info("storage", "consul: HA lock acquired");
  return 1;
}

static int ha_renew(struct physical_ha *h, struct verr *err) {
  struct consul *c = ((struct consul_ha *)h)->c;
  char sid[CONSUL_SID_LEN];
  pthread_mutex_lock(&c->mu);
  bool held = c->held;
  snprintf(sid, sizeof(sid), "%s", c->guard);
  int64_t since = mono_ms() - c->last_renew_ms;
  pthread_mutex_unlock(&c->mu);
  if (!held)
    return verr_set(err, VERR_UNAVAILABLE, "consul: the HA lock is not held");
  /* Consul may invalidate the session once its TTL (or its check's) has
   * passed without a renewal: from then on this node cannot count on it */
  if (since >= c->eff_ttl_s * 1000) {
    fire_lost(c, "session not renewed within its TTL");
    return verr_set(err, VERR_UNAVAILABLE, "consul: HA lock session expired");
  }
  int64_t t0 = mono_ms();
  int g = lock_check_keep(c, true, err);
  if (g < 0)
    return g;
  g = session_renew(c, sid, err);
  if (g < 0)
    return g;
  if (g == 1) {
    fire_lost(c, "the session was invalidated");
    return verr_set(err, VERR_UNAVAILABLE,
                    "consul: HA lock session was invalidated");
  }
  bool exists = false;
  char cur[CONSUL_SID_LEN];
  int rc = lock_read(c, NULL, c->timeout_ms, false, NULL, &exists, cur,
                     sizeof(cur), NULL, NULL, NULL, err);
  if (rc)
    return rc;
  if (!exists || strcmp(cur, sid)) {
    fire_lost(c, "the lock key is no longer held by this node's session");
    return verr_set(err, VERR_UNAVAILABLE, "consul: HA lock is no longer ours");
  }
  pthread_mutex_lock(&c->mu);
  c->last_renew_ms = t0;
  c->sid_renewed_ms = t0;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

static void monitor_stop(struct consul *c) {
  pthread_mutex_lock(&c->mu);
  bool running = c->mon_running;
  c->mon_running = false;
  pthread_mutex_unlock(&c->mu);
  if (running) {
    atomic_store(&c->mon_stop, true);
    pthread_join(c->mon, NULL);
  }
}

static void ha_release(struct physical_ha *h) {
  struct consul *c = ((struct consul_ha *)h)->c;
  pthread_mutex_lock(&c->mu);
  c->held = false; /* no lost() from here on */
  c->reg_dirty = true;
  while (c->cb_busy)
    pthread_cond_wait(&c->cond, &c->mu);
  char sid[CONSUL_SID_LEN], guard[CONSUL_SID_LEN];
  snprintf(sid, sizeof(sid), "%s", c->sid);
  snprintf(guard, sizeof(guard), "%s", c->guard);
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  monitor_stop(c);
  if (guard[0]) {
    /* unlock first: an explicit release skips the lock-delay that
     * destroying a session holding the lock would impose */
    char q[128];
    snprintf(q, sizeof(q), "release=%s", guard);
    char *path = kv_path(c->lock_key, q);
    struct resp r;
    struct verr err = {0};
    if (path && call(c, "PUT", path, "", 0, &r, &err) == 0)
      resp_free(&r);
    else if (path)
      log_warn("storage", "consul: releasing the HA lock: %s", err.msg);
    free(path);
  }
  if (sid[0])
    session_destroy(c, sid);
  pthread_mutex_lock(&c->mu);
  c->guard[0] = '\0';
  if (!strcmp(c->sid, sid))
    c->sid[0] = '\0';
  pthread_mutex_unlock(&c->mu);
}

static int ha_holder(struct physical_ha *h, char **value, struct verr *err) {
  struct consul *c = ((struct consul_ha *)h)->c;
  *value = NULL;
  bool exists = false;
  char cur[CONSUL_SID_LEN];
  char *v = NULL;
  int rc = lock_read(c, NULL, c->timeout_ms, false, NULL, &exists, cur,
                     sizeof(cur), NULL, NULL, &v, err);
  if (rc)
    return rc;
  if (exists && cur[0])
    *value = v; /* transferred */
  else
    free(v);
  return 0;
}

static const struct physical_ha_ops consul_ha_ops = {
    .version = PHYSICAL_HA_VERSION,
    .name = "consul",
    .acquire = ha_acquire,
    .renew = ha_renew,
    .release = ha_release,
    .holder = ha_holder,
};

static struct physical_ha *consul_ha(struct physical *p) {
  struct consul *c = (struct consul *)p;
  return c->ha ? &c->ha->base : NULL;
}

/* ---- service registration ---- */

static int reg_register(struct consul *c, bool active, struct verr *err) {
  json_t *tags = json_array();
  json_array_append_new(tags, json_string(active ? "active" : "standby"));
  for (size_t i = 0; i < c->ntags; i++)
    json_array_append_new(tags, json_string(c->tags[i]));
  char check_id[512], ttl[32];
  snprintf(check_id, sizeof(check_id), "%s:vault-sealed-check", c->svc_id);
  snprintf(ttl, sizeof(ttl), "%lds", c->check_s);
  json_t *j = json_pack(
      "{s:s,s:s,s:o,s:i,s:{s:s,s:s,s:s,s:s,s:s}}", "ID", c->svc_id, "Name",
      c->service, "Tags", tags, "Port", c->svc_port, "Check", "CheckID",
      check_id, "Name", "Vault Sealed Status", "Notes",
      "Vault service is healthy when Vault is in an unsealed status and can "
      "become an active Vault server",
      "TTL", ttl, "Status", "passing");
  if (j && (c->service_address_set ? c->service_address != NULL
                                   : c->svc_host != NULL))
    json_object_set_new(
        j, "Address",
        json_string(c->service_address_set ? c->service_address : c->svc_host));
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!body)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  struct resp r;
  int rc = http_do(c, "PUT", "/v1/agent/service/register", body, strlen(body),
                   c->timeout_ms, true, &c->reg_abort, &r, err);
  free(body);
  if (!rc) {
    if (r.status != 200)
      rc = verr_set(err, VERR_INTERNAL,
                    "consul: service registration: HTTP %ld", r.status);
    resp_free(&r);
  }
  return rc;
}

/* 0 passed, 1 the agent does not know the check (register again) */
static int reg_pass(struct consul *c, struct verr *err) {
  char path[700];
  snprintf(path, sizeof(path),
           "/v1/agent/check/pass/%s:vault-sealed-check?note=Vault%%20Unsealed",
           c->svc_id);
  struct resp r;
  int rc = http_do(c, "PUT", path, "", 0, c->timeout_ms, true, &c->reg_abort,
                   &r, err);
  if (rc)
    return rc;
  long st = r.status;
  resp_free(&r);
  return st == 404 ? 1 : 0;
}

static void *reg_main(void *arg) {
  struct consul *c = arg;
  bool registered = false;
  int64_t period = c->check_s * 1000 / 3;
  if (period < 200)
    period = 200;
  pthread_mutex_lock(&c->mu);
  while (!c->reg_stop) {
    bool dirty = c->reg_dirty || !registered;
    bool active = c->held;
    c->reg_dirty = false;
    pthread_mutex_unlock(&c->mu);
    struct verr err = {0};
    if (dirty) {
      if (reg_register(c, active, &err) == 0)
        registered = true;
      else
        log_warn("storage", "consul: service registration failed: %s", err.msg);
    }
    if (registered) {
      int g = reg_pass(c, &err);
      if (g == 1)
        registered = false;
      else if (g < 0)
        log_warn("storage", "consul: health check update failed: %s", err.msg);
    }
    pthread_mutex_lock(&c->mu);
    if (c->reg_stop || c->reg_dirty)
      continue;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += period / 1000;
    ts.tv_nsec += (period % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cond, &c->mu, &ts);
  }
  pthread_mutex_unlock(&c->mu);
  if (registered) {
    char path[600];
    snprintf(path, sizeof(path), "/v1/agent/service/deregister/%s", c->svc_id);
    struct resp r;
    struct verr err = {0};
    atomic_store(&c->reg_abort, false);
    if (http_do(c, "PUT", path, "", 0, 2000, true, NULL, &r, &err) == 0)
      resp_free(&r);
    else
      log_warn("storage", "consul: service deregistration failed: %s", err.msg);
  }
  return NULL;
}

/* Start registering at the first acquire: the lock value names api_addr. */
static void reg_start(struct consul *c, const char *value) {
  pthread_mutex_lock(&c->mu);
  bool started = c->reg_running || c->svc_id;
  pthread_mutex_unlock(&c->mu);
  if (started)
    return;
  char host[256];
  int port = 0;
  api_host_port(value, host, sizeof(host), &port);
  size_t idl = strlen(c->service) + strlen(host) + 16;
  char *id = malloc(idl);
  if (!id)
    return;
  snprintf(id, idl, "%s:%s:%d", c->service, host, port);
  pthread_mutex_lock(&c->mu);
  c->svc_id = id;
  c->svc_host = host[0] ? strdup(host) : NULL;
  c->svc_port = port;
  c->reg_stop = false;
  c->reg_dirty = true;
  atomic_store(&c->reg_abort, false);
  c->reg_running = pthread_create(&c->reg, NULL, reg_main, c) == 0;
  pthread_mutex_unlock(&c->mu);
}

/* ---- open / close ---- */

static void consul_close(struct physical *p) {
  struct consul *c = (struct consul *)p;
  if (!c)
    return;
  pthread_mutex_lock(&g_inst_mu);
  for (size_t i = 0; i < CONSUL_MAX_INSTANCES; i++)
    if (g_inst[i] == c)
      g_inst[i] = NULL;
  pthread_mutex_unlock(&g_inst_mu);
  if (c->ha && (c->held || c->guard[0] || c->sid[0]))
    ha_release(&c->ha->base);
  monitor_stop(c);
  lock_check_deregister(c);
  pthread_mutex_lock(&c->mu);
  bool reg = c->reg_running;
  c->reg_running = false;
  c->reg_stop = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  if (reg) {
    atomic_store(&c->reg_abort, true);
    pthread_join(c->reg, NULL);
  }
  for (size_t i = 0; i < c->nidle; i++)
    curl_easy_cleanup(c->idle[i]);
  free(c->idle);
  free(c->url);
  free(c->prefix);
  free(c->lock_key);
  if (c->token) {
    explicit_bzero(c->token, strlen(c->token));
    free(c->token);
  }
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->service);
  free(c->service_address);
  for (size_t i = 0; i < c->ntags; i++)
    free(c->tags[i]);
  free(c->tags);
  free(c->svc_id);
  free(c->svc_host);
  free(c->lock_check_id);
  free(c->ha);
  pthread_cond_destroy(&c->cond);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static const char *opt_str(const json_t *conf, const char *k) {
  const json_t *v = conf ? json_object_get(conf, k) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int opt_bool(const json_t *conf, const char *k, bool *out,
                    struct verr *err) {
  const json_t *v = conf ? json_object_get(conf, k) : NULL;
  if (!v)
    return 0;
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (s && (!strcmp(s, "true") || !strcmp(s, "1"))) {
    *out = true;
    return 0;
  }
  if (s && (!strcmp(s, "false") || !strcmp(s, "0") || !*s)) {
    *out = false;
    return 0;
  }
  return verr_set(err, VERR_INVALID,
                  "storage \"consul\": %s: expected a boolean", k);
}

static int opt_secs(const json_t *conf, const char *k, long def, long min,
                    long max, long *out, struct verr *err) {
  int64_t secs;
  int rc = physical__opt_seconds(conf, "consul", k, def, min, max, &secs, err);
  if (!rc)
    *out = (long)secs;
  return rc;
}

static int opt_long(const json_t *conf, const char *k, long def, long min,
                    long max, long *out, struct verr *err) {
  const json_t *v = conf ? json_object_get(conf, k) : NULL;
  *out = def;
  if (!v)
    return 0;
  long long x = -1;
  if (json_is_integer(v)) {
    x = json_integer_value(v);
  } else if (json_is_string(v)) {
    char *end = NULL;
    errno = 0;
    x = strtoll(json_string_value(v), &end, 10);
    if (errno || !end || *end || end == json_string_value(v))
      x = min - 1;
  }
  if (x < min || x > max)
    return verr_set(
        err, VERR_INVALID,
        "storage \"consul\": %s: expected a number between %ld and %ld", k, min,
        max);
  *out = (long)x;
  return 0;
}

static char *dup_opt(const json_t *conf, const char *k, bool *oom) {
  const char *s = opt_str(conf, k);
  if (!s || !*s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = true;
  return d;
}

static int parse_tags(struct consul *c, const char *s, struct verr *err) {
  if (!s || !*s)
    return 0;
  char *list = strdup(s), *save = NULL;
  if (!list)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  for (char *t = strtok_r(list, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ')
      t++;
    size_t l = strlen(t);
    while (l && t[l - 1] == ' ')
      t[--l] = '\0';
    if (!l)
      continue;
    char **nt = realloc(c->tags, (c->ntags + 1) * sizeof(*nt));
    if (!nt || !(nt[c->ntags] = strdup(t))) {
      if (nt)
        c->tags = nt;
      free(list);
      return verr_set(err, VERR_INTERNAL, "out of memory");
    }
    c->tags = nt;
    c->ntags++;
  }
  free(list);
  return 0;
}

static int build_url(struct consul *c, const json_t *conf, struct verr *err) {
  const char *addr = opt_str(conf, "address");
  if (!addr || !*addr)
    addr = getenv("CONSUL_HTTP_ADDR");
  if (!addr || !*addr)
    addr = "127.0.0.1:8500";
  const char *scheme = opt_str(conf, "scheme");
  const char *sep = strstr(addr, "://");
  char sch[8] = "http";
  if (sep) {
    size_t l = (size_t)(sep - addr);
    if (l >= sizeof(sch))
      l = sizeof(sch) - 1;
    memcpy(sch, addr, l);
    sch[l] = '\0';
    addr = sep + 3;
  } else if (scheme && *scheme) {
    snprintf(sch, sizeof(sch), "%s", scheme);
  }
  if (strcmp(sch, "http") && strcmp(sch, "https"))
    return verr_set(
        err, VERR_INVALID,
        "storage \"consul\": scheme \"%s\" is not supported (http or https)",
        sch);
  size_t al = strlen(addr);
  while (al && addr[al - 1] == '/')
    al--;
  if (!al || memchr(addr, '/', al) || memchr(addr, ' ', al))
    return verr_set(err, VERR_INVALID,
                    "storage \"consul\": address \"%s\" must be host:port "
                    "(e.g. 127.0.0.1:8500)",
                    addr);
  size_t ul = al + strlen(sch) + 4;
  c->url = malloc(ul);
  if (!c->url)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  snprintf(c->url, ul, "%s://%.*s", sch, (int)al, addr);
  return 0;
}

/* Reach Consul now: a wrong token fails start-up; an unreachable Consul is
 * retried a few times, then start-up goes on (it may come up later, and
 * until then requests fail with 503 naming it). */
static int probe(struct consul *c, struct verr *err) {
  int64_t backoff = 250;
  for (int attempt = 1; attempt <= 4; attempt++) {
    uint8_t *v = NULL;
    size_t vl = 0;
    struct verr e = {0};
    int rc = consul_get(&c->base, "core/seal-config", &v, &vl, &e);
    free(v);
    if (rc == 0)
      return 0;
    if (rc == VERR_DENIED) {
      verr_set(err, rc, "%s", e.msg);
      return rc;
    }
    log_warn("storage", "consul not reachable yet (attempt %d of 4): %s",
             attempt, e.msg);
    if (attempt < 4) {
      struct timespec ts = {backoff / 1000, (long)(backoff % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      backoff *= 2;
    }
  }
  log_warn(
      "storage",
      "consul at %s: starting anyway; storage requests fail until it answers",
      c->url);
  return 0;
}

int physical_consul_new(struct physical **out, const json_t *conf,
                        struct verr *err) {
  *out = NULL;
  if (!curl_dl_load())
    return verr_set(
        err, VERR_UNAVAILABLE,
        "storage \"consul\": libcurl (libcurl.so.4) could not be loaded");
  struct consul *c = calloc(1, sizeof(*c));
  if (!c)
    return verr_set(err, VERR_INTERNAL, "out of memory");
  c->base.ops = &consul_ops;
  c->base.durable = 1; /* Consul acknowledges after its raft commit */
  c->base.max_entry_size = CONSUL_DEFAULT_ENTRY;
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cond, &ca);
  pthread_condattr_destroy(&ca);
  bool oom = false;
  int rc = build_url(c, conf, err);
  if (rc)
    goto out;
  const char *path = opt_str(conf, "path");
  if (!path || !*path)
    path = "vault/";
  while (*path == '/')
    path++; /* Vault trims a leading slash */
  size_t pl = strlen(path);
  if (!pl) {
    rc = verr_set(err, VERR_INVALID,
                  "storage \"consul\": path must not be \"/\"");
    goto out;
  }
  c->prefix = malloc(pl + 2);
  c->lock_key = malloc(pl + 2 + sizeof("core/lock"));
  if (!c->prefix || !c->lock_key) {
    rc = verr_set(err, VERR_INTERNAL, "out of memory");
    goto out;
  }
  snprintf(c->prefix, pl + 2, "%s%s", path, path[pl - 1] == '/' ? "" : "/");
  snprintf(c->lock_key, pl + 2 + sizeof("core/lock"), "%score/lock", c->prefix);
  c->token = dup_opt(conf, "token", &oom);
  if (!c->token && !oom && getenv("CONSUL_HTTP_TOKEN") &&
      *getenv("CONSUL_HTTP_TOKEN") &&
      !(c->token = strdup(getenv("CONSUL_HTTP_TOKEN"))))
    oom = true;
  c->ca_file = dup_opt(conf, "tls_ca_file", &oom);
  c->cert_file = dup_opt(conf, "tls_cert_file", &oom);
  c->key_file = dup_opt(conf, "tls_key_file", &oom);
  c->service = dup_opt(conf, "service", &oom);
  if (!c->service && !oom && !(c->service = strdup("vault")))
    oom = true;
  const json_t *sa = json_object_get(conf, "service_address");
  if (json_is_string(sa)) {
    c->service_address_set = true;
    if (*json_string_value(sa) &&
        !(c->service_address = strdup(json_string_value(sa))))
      oom = true;
  }
  if (oom) {
    rc = verr_set(err, VERR_INTERNAL, "out of memory");
    goto out;
  }
  if (!!c->cert_file != !!c->key_file) {
    rc = verr_set(err, VERR_INVALID,
                  "storage \"consul\": tls_cert_file and tls_key_file must be "
                  "set together");
    goto out;
  }
  bool disable_reg = false;
  long mp = 0, mes = 0;
  if ((rc = opt_bool(conf, "tls_skip_verify", &c->skip_verify, err)) ||
      (rc = opt_bool(conf, "disable_registration", &disable_reg, err)) ||
      (rc = opt_secs(conf, "session_ttl", 15, 1, 86400, &c->ttl_s, err)) ||
      (rc = opt_secs(conf, "lock_wait_time", 15, 1, 600, &c->wait_s, err)) ||
      (rc = opt_secs(conf, "lock_delay", 1, 0, 60, &c->delay_s, err)) ||
      (rc = opt_secs(conf, "lock_check_ttl", c->ttl_s, 0, 86400,
                     &c->lock_check_s, err)) ||
      (rc = opt_secs(conf, "check_timeout", 5, 1, 3600, &c->check_s, err)) ||
      (rc = opt_secs(conf, "request_timeout", 10, 1, 600, &c->timeout_ms,
                     err)) ||
      (rc = opt_long(conf, "max_parallel", 128, 1, 4096, &mp, err)) ||
      (rc = opt_long(conf, "max_entry_size", CONSUL_DEFAULT_ENTRY, 1024,
                     CONSUL_DEFAULT_ENTRY, &mes, err)) ||
      (rc = parse_tags(c, opt_str(conf, "service_tags"), err)))
    goto out;
  c->timeout_ms *= 1000;
  c->registration = !disable_reg;
  c->max_parallel = (size_t)mp;
  c->base.max_entry_size = (size_t)mes;
  const char *cm = opt_str(conf, "consistency_mode");
  if (cm && *cm && strcmp(cm, "default") && strcmp(cm, "strong")) {
    rc = verr_set(err, VERR_INVALID,
                  "storage \"consul\": consistency_mode \"%s\" is not "
                  "supported (default or "
                  "strong)",
                  cm);
    goto out;
  }
  c->strong = cm && !strcmp(cm, "strong");
  c->idle = calloc(c->max_parallel, sizeof(*c->idle));
  c->ha = calloc(1, sizeof(*c->ha));
  if (!c->idle || !c->ha) {
    rc = verr_set(err, VERR_INTERNAL, "out of memory");
    goto out;
  }
  /* Consul's backend always offers HA (Vault's does too) */
  c->ha->base.ops = &consul_ha_ops;
  c->eff_ttl_s = c->lock_check_s && c->lock_check_s < c->ttl_s
                    ? c->lock_check_s
                    : c->ttl_s;
  c->ha->base.renew_interval_ms = (int)(c->eff_ttl_s * 1000 / 3);
  c->ha->base.retry_interval_ms =
      c->eff_ttl_s >= 10 ? 1000 : (int)(c->eff_ttl_s * 100);
  c->ha->c = c;
  if ((rc = probe(c, err)))
    goto out;
  pthread_mutex_lock(&g_inst_mu);
  bool slot = false;
  for (size_t i = 0; i < CONSUL_MAX_INSTANCES && !slot; i++)
    if (!g_inst[i]) {
      g_inst[i] = c;
      slot = true;
    }
  pthread_mutex_unlock(&g_inst_mu);
  if (!slot)
    log_warn("storage",
             "consul: more than %d instances; this one's writes carry only "
             "its own lock guard",
             CONSUL_MAX_INSTANCES);
out:
  if (rc) {
    consul_close(&c->base);
    return rc;
  }
  *out = &c->base;
  return 0;
}

static const struct physical_ops consul_ops = {
    .version = PHYSICAL_OPS_VERSION,
    .name = "consul",
    .get = consul_get,
    .put = consul_put,
    .del = consul_del,
    .list = consul_list,
    .close = consul_close,
    .txn = consul_txn,
    .ha = consul_ha,
};
