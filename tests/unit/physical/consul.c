/*
 * Unit tests for storage "consul" (src/physical/consul.c) against the local
 * Consul HTTP peer tests/peers/consul_peer.py (started by this test on a free
 * loopback port, stopped by PID): the shared storage semantics (odd keys go
 * through /v1/txn), the HA lock (one holder, holder value, release hands over
 * at once, an expired session hands over after TTL x 2 + lock-delay), loss
 * noticed by the lock monitor without any write, fencing with check-session
 * (also across the storage and ha_storage instances of one process), service
 * registration, ACL tokens, an unreachable Consul and configuration errors.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "physical/semantics.h"
#include "util/buf.h"
#include "util/log.h"

static pid_t g_peer = -1, g_acl_peer = -1;
static char g_addr[64], g_acl_addr[64];
static int g_seq;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* python3 tests/peers/consul_peer.py, found next to this file */
static pid_t start_peer(const char *token, char *addr, size_t cap) {
  char script[1024], pf[64];
  snprintf(script, sizeof(script), "%s", __FILE__);
  char *cut = strstr(script, "/unit/physical/consul.c");
  assert_non_null(cut);
  snprintf(cut, sizeof(script) - (size_t)(cut - script),
           "/peers/consul_peer.py");
  snprintf(pf, sizeof(pf), "/tmp/coffer-consul-port-%d-%d", getpid(),
           token ? 1 : 0);
  unlink(pf);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    if (token)
      execlp("python3", "python3", script, "--port-file", pf,
             "--session-ttl-min", "1s", "--token", token, (char *)NULL);
    else
      execlp("python3", "python3", script, "--port-file", pf,
             "--session-ttl-min", "1s", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    FILE *f = fopen(pf, "r");
    int port = 0;
    if (f) {
      if (fscanf(f, "%d", &port) != 1)
        port = 0;
      fclose(f);
    }
    if (port > 0) {
      unlink(pf);
      snprintf(addr, cap, "127.0.0.1:%d", port);
      return pid;
    }
    sleep_ms(50);
  }
  fail_msg("the consul peer did not start");
  return -1;
}

static int start_peers(void **state) {
  (void)state;
  g_peer = start_peer(NULL, g_addr, sizeof(g_addr));
  g_acl_peer = start_peer("s3cr3t-acl-token", g_acl_addr, sizeof(g_acl_addr));
  return 0;
}

static int stop_peers(void **state) {
  (void)state;
  pid_t pids[] = {g_peer, g_acl_peer};
  for (size_t i = 0; i < 2; i++)
    if (pids[i] > 0) {
      kill(pids[i], SIGTERM);
      waitpid(pids[i], NULL, 0);
    }
  return 0;
}

static json_t *conf_for(const char *path, const char *ttl) {
  json_t *c = json_pack("{s:s,s:s,s:s,s:s}", "address", g_addr, "path", path,
                        "disable_registration", "true", "lock_delay", "1s");
  if (ttl)
    json_object_set_new(c, "session_ttl", json_string(ttl));
  return c;
}

static struct physical *open_conf(json_t *c) {
  struct physical *p = NULL;
  struct verr err = {0};
  int rc = physical_consul_new(&p, c, &err);
  json_decref(c);
  if (rc)
    fail_msg("consul open: %s", err.msg);
  return p;
}

static struct physical *open_path(const char *path, const char *ttl) {
  return open_conf(conf_for(path, ttl));
}

/* a session bound to no check of ours: Consul's plain 2 x TTL expiry */
static struct physical *open_nocheck(const char *path, const char *ttl) {
  json_t *c = conf_for(path, ttl);
  json_object_set_new(c, "lock_check_ttl", json_string("0"));
  return open_conf(c);
}

/* a GET straight to the peer, for what only Consul itself can tell */
static json_t *peer_get(const char *path) {
  char url[256];
  snprintf(url, sizeof(url), "http://%s%s", g_addr, path);
  CURL *h = curl_easy_init();
  struct buf b = {0};
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite);
  FILE *mem = tmpfile();
  curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
  CURLcode cc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  assert_int_equal(cc, CURLE_OK);
  rewind(mem);
  assert_int_equal(buf_read_stream(&b, mem, 1 << 20), 0);
  fclose(mem);
  json_t *j = json_loadb(b.p ? b.p : "", b.len, 0, NULL);
  buf_free(&b);
  return j;
}

static int sem_setup(void **state) {
  char path[64];
  snprintf(path, sizeof(path), "sem%d/", ++g_seq);
  *state = open_path(path, NULL);
  return 0;
}

static int sem_teardown(void **state) {
  physical_close(*state);
  return 0;
}

static atomic_int g_lost;
static void on_lost(void *ctx) {
  (void)ctx;
  atomic_fetch_add(&g_lost, 1);
}

static bool wait_lost(int want, int ms) {
  for (int i = 0; i < ms / 10 && atomic_load(&g_lost) < want; i++)
    sleep_ms(10);
  return atomic_load(&g_lost) >= want;
}

static void
test_physical_consul__ha_lock_one_holder_and_handover(void **state) {
  (void)state;
  struct physical *a = open_nocheck("ha1/", "1s"),
                  *b = open_nocheck("ha1/", "1s");
  struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
  assert_non_null(ha);
  assert_non_null(hb);
  struct verr err = {0};
  atomic_store(&g_lost, 0);
  assert_int_equal(
      physical_ha_acquire(ha, "{\"node\":\"a\"}", on_lost, NULL, &err), 1);
  assert_int_equal(
      physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 0);
  char *v = NULL;
  assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
  assert_string_equal(v, "{\"node\":\"a\"}");
  free(v);
  assert_int_equal(physical_ha_renew(ha, &err), 0);
  sem_put(a, "data/x", "1");
  /* an explicit release hands over at once: no lock-delay */
  physical_ha_release(ha);
  assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
  assert_null(v);
  assert_int_equal(
      physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 1);
  assert_int_equal(atomic_load(&g_lost), 0);
  /* b stops renewing (a paused process): Consul invalidates its session
   * after TTL x 2, then the lock-delay (1s) runs, then a gets the lock */
  int64_t t0 = now_ms();
  int got = 0;
  for (int i = 0; i < 80 && got != 1; i++) {
    sleep_ms(100);
    got = physical_ha_acquire(ha, "{\"node\":\"a\"}", on_lost, NULL, &err);
  }
  int64_t took = now_ms() - t0;
  assert_int_equal(got, 1);
  assert_true(took >= 2000); /* not before the session's 2 x TTL */
  assert_true(took <= 4500); /* 2 x TTL + lock-delay + a retry */
  /* b's monitor saw its lock go (no renewal or write needed) */
  assert_true(wait_lost(1, 1000));
  /* and b, back from its pause, can neither renew nor write */
  assert_int_not_equal(physical_ha_renew(hb, &err), 0);
  assert_int_equal(physical_put(b, "data/x", (const uint8_t *)"stale", 5, &err),
                   VERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "no longer holds the HA lock"));
  assert_int_equal(atomic_load(&g_lost), 1); /* once */
  sem_expect(a, "data/x", "1");
  physical_ha_release(hb);
  physical_ha_release(ha);
  physical_close(a);
  physical_close(b);
}

static void
test_physical_consul__monitor_and_fencing_after_lock_key_deleted(void **state) {
  (void)state;
  struct physical *a = open_path("ha2/", "5s");
  struct physical *other = open_path("ha2/", NULL);
  struct physical_ha *ha = physical_ha(a);
  struct verr err = {0};
  atomic_store(&g_lost, 0);
  assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
  sem_put(a, "k", "before");
  /* an operator removes the lock key: the blocking-query monitor tells
   * the holder at once, long before its next renewal */
  assert_int_equal(physical_delete(other, "core/lock", &err), 0);
  assert_true(wait_lost(1, 1500));
  int rc = physical_put(a, "k", (const uint8_t *)"after", 5, &err);
  assert_int_equal(rc, VERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "no longer holds the HA lock"));
  struct physical_txn_op ops[] = {
      {PHYSICAL_TXN_PUT, "t", (const uint8_t *)"x", 1}};
  assert_int_equal(physical_txn(a, ops, 1, &err), VERR_UNAVAILABLE);
  assert_int_equal(physical_delete(a, "k", &err), VERR_UNAVAILABLE);
  sem_expect(other, "k", "before");
  sem_expect(other, "t", NULL);
  assert_int_equal(atomic_load(&g_lost), 1);
  /* after release (step-down done) the node is a plain client again */
  physical_ha_release(ha);
  sem_put(a, "k", "later");
  physical_close(a);
  physical_close(other);
}

/* storage "consul" + ha_storage "consul" on other paths (the production
 * guide's layout): data writes carry the HA instance's guard */
static void
test_physical_consul__data_writes_fenced_by_ha_storage_lock(void **state) {
  (void)state;
  struct physical *data = open_path("gdata/", NULL);
  struct physical *hap = open_path("gha/", "5s");
  struct physical *other = open_path("gha/", NULL);
  struct verr err = {0};
  atomic_store(&g_lost, 0);
  assert_int_equal(
      physical_ha_acquire(physical_ha(hap), "n1", on_lost, NULL, &err), 1);
  sem_put(data, "x", "1");
  /* kill the session behind the holder's back and write at once, before
   * any monitor could react: the write itself is refused */
  json_t *s = peer_get("/v1/session/list");
  assert_true(json_array_size(s) >= 1);
  size_t i;
  json_t *it;
  json_array_foreach(s, i, it) {
    char url[256];
    snprintf(url, sizeof(url), "http://%s/v1/session/destroy/%s", g_addr,
             json_string_value(json_object_get(it, "ID")));
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    fclose(devnull);
  }
  json_decref(s);
  assert_int_equal(physical_put(data, "x", (const uint8_t *)"2", 1, &err),
                   VERR_UNAVAILABLE);
  sem_expect(data, "x", "1");
  assert_true(wait_lost(1, 1500));
  assert_int_equal(atomic_load(&g_lost), 1);
  physical_ha_release(physical_ha(hap));
  physical_close(other);
  physical_close(hap);
  physical_close(data);
}

/* A PUT straight to the peer (an operator or the agent acting). */
static void peer_put(const char *path) {
  char url[512];
  snprintf(url, sizeof(url), "http://%s%s", g_addr, path);
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
  assert_int_equal(curl_easy_perform(h), CURLE_OK);
  curl_easy_cleanup(h);
  fclose(devnull);
}

/* The session names our check: once the holder stops passing it, Consul
 * invalidates the session at the check's TTL (not 2 x the session TTL). */
static void
test_physical_consul__check_bound_session_fails_over_at_check_ttl(void **state) {
  (void)state;
  json_t *ca = conf_for("hc1/", "10s"), *cb = conf_for("hc1/", "10s");
  json_object_set_new(ca, "lock_check_ttl", json_string("1s"));
  json_object_set_new(cb, "lock_check_ttl", json_string("1s"));
  struct physical *a = open_conf(ca), *b = open_conf(cb);
  struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
  /* the holder renews every check TTL / 3, not every session TTL / 3 */
  assert_int_equal(ha->renew_interval_ms, 333);
  struct verr err = {0};
  atomic_store(&g_lost, 0);
  const char *va = "{\"api_addr\":\"http://127.0.0.1:18201\"}";
  const char *vb = "{\"api_addr\":\"http://127.0.0.1:18202\"}";
  assert_int_equal(physical_ha_acquire(ha, va, on_lost, NULL, &err), 1);
  assert_int_equal(physical_ha_acquire(hb, vb, on_lost, NULL, &err), 0);
  /* Consul has the check, passing, and a's session is bound to it */
  const char *cid = "vault:127.0.0.1:18201:ha-lock-check";
  json_t *checks = peer_get("/v1/agent/checks");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(checks, cid), "Status")),
      "passing");
  json_decref(checks);
  json_t *ss = peer_get("/v1/session/list");
  int bound = 0;
  size_t i, k;
  json_t *it, *c;
  json_array_foreach(ss, i, it) {
    json_array_foreach(json_object_get(it, "NodeChecks"), k, c) {
      if (!strcmp(json_string_value(c), cid))
        bound++;
    }
  }
  json_decref(ss);
  assert_int_equal(bound, 1);
  /* renewals keep it alive well past the check TTL */
  for (int n = 0; n < 6; n++) {
    sleep_ms(300);
    assert_int_equal(physical_ha_renew(ha, &err), 0);
  }
  assert_int_equal(atomic_load(&g_lost), 0);
  /* a stops (a paused or killed process): the check lapses after 1 s and
   * takes the session with it; then the 1 s lock-delay; far less than the
   * session's 2 x 10 s */
  int64_t t0 = now_ms();
  int got = 0;
  for (int n = 0; n < 100 && got != 1; n++) {
    sleep_ms(50);
    got = physical_ha_acquire(hb, vb, on_lost, NULL, &err);
  }
  int64_t took = now_ms() - t0;
  assert_int_equal(got, 1);
  assert_true(took >= 1800); /* check TTL + lock-delay, less a renewal gap */
  assert_true(took <= 2600); /* + the peer's reaper and a retry */
  assert_true(wait_lost(1, 1000)); /* a's monitor saw it */
  checks = peer_get("/v1/agent/checks");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(checks, cid), "Status")),
      "critical");
  json_decref(checks);
  assert_int_not_equal(physical_ha_renew(ha, &err), 0);
  assert_int_equal(physical_put(a, "x", (const uint8_t *)"stale", 5, &err),
                   VERR_UNAVAILABLE);
  physical_ha_release(ha);
  /* the check failing (an operator, a dead agent) invalidates b's
   * session at once too */
  char path[256];
  snprintf(path, sizeof(path), "/v1/agent/check/fail/%s",
           "vault:127.0.0.1:18202:ha-lock-check");
  peer_put(path);
  assert_true(wait_lost(2, 1000));
  assert_int_not_equal(physical_ha_renew(hb, &err), 0);
  physical_ha_release(hb);
  /* a, back, revives its check and can hold the lock again (after the
   * lock-delay b's invalidation started) */
  got = 0;
  for (int n = 0; n < 40 && got != 1; n++) {
    sleep_ms(100);
    got = physical_ha_acquire(ha, va, on_lost, NULL, &err);
  }
  assert_int_equal(got, 1);
  physical_ha_release(ha);
  physical_close(a);
  physical_close(b);
  /* closing deregisters the checks */
  checks = peer_get("/v1/agent/checks");
  assert_null(json_object_get(checks, cid));
  json_decref(checks);
}

static bool has_tag(json_t *svc, const char *tag) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(svc, "Tags"), i,
                     t) if (!strcmp(json_string_value(t), tag)) return true;
  return false;
}

static void test_physical_consul__service_registration(void **state) {
  (void)state;
  json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s}", "address", g_addr, "path",
                        "reg/", "service", "coffer", "service_tags", "prod, eu",
                        "check_timeout", "3s");
  struct physical *p = open_conf(c);
  struct verr err = {0};
  const char *adv = "{\"api_addr\":\"http://"
                    "10.1.2.3:8200\",\"cluster_addr\":\"\",\"node_id\":\"n\"}";
  assert_int_equal(
      physical_ha_acquire(physical_ha(p), adv, on_lost, NULL, &err), 1);
  json_t *svc = NULL;
  for (int i = 0; i < 100; i++) {
    json_t *all = peer_get("/v1/agent/services");
    svc = json_incref(json_object_get(all, "coffer:10.1.2.3:8200"));
    json_decref(all);
    if (svc && has_tag(svc, "active"))
      break;
    json_decref(svc);
    svc = NULL;
    sleep_ms(20);
  }
  assert_non_null(svc);
  assert_string_equal(json_string_value(json_object_get(svc, "Service")),
                      "coffer");
  assert_string_equal(json_string_value(json_object_get(svc, "Address")),
                      "10.1.2.3");
  assert_int_equal(json_integer_value(json_object_get(svc, "Port")), 8200);
  assert_true(has_tag(svc, "prod"));
  assert_true(has_tag(svc, "eu"));
  json_decref(svc);
  /* the TTL check stays passing past its TTL: the backend passes it */
  sleep_ms(3500);
  json_t *checks = peer_get("/v1/agent/checks");
  json_t *chk =
      json_object_get(checks, "coffer:10.1.2.3:8200:vault-sealed-check");
  assert_non_null(chk);
  assert_string_equal(json_string_value(json_object_get(chk, "Status")),
                      "passing");
  json_decref(checks);
  /* standby after release */
  physical_ha_release(physical_ha(p));
  bool standby = false;
  for (int i = 0; i < 100 && !standby; i++) {
    json_t *all = peer_get("/v1/agent/services");
    standby = has_tag(json_object_get(all, "coffer:10.1.2.3:8200"), "standby");
    json_decref(all);
    if (!standby)
      sleep_ms(20);
  }
  assert_true(standby);
  /* deregistered on close */
  physical_close(p);
  json_t *all = peer_get("/v1/agent/services");
  assert_null(json_object_get(all, "coffer:10.1.2.3:8200"));
  json_decref(all);
}

static void test_physical_consul__acl_token(void **state) {
  (void)state;
  struct physical *p = NULL;
  struct verr err = {0};
  json_t *c = json_pack("{s:s,s:s}", "address", g_acl_addr,
                        "disable_registration", "true");
  assert_int_equal(physical_consul_new(&p, c, &err), VERR_DENIED);
  assert_non_null(strstr(err.msg, "permission denied"));
  assert_non_null(strstr(err.msg, "token"));
  json_object_set_new(c, "token", json_string("wrong-token"));
  assert_int_equal(physical_consul_new(&p, c, &err), VERR_DENIED);
  assert_null(strstr(err.msg, "wrong-token")); /* never echo a credential */
  json_object_set_new(c, "token", json_string("s3cr3t-acl-token"));
  assert_int_equal(physical_consul_new(&p, c, &err), 0);
  sem_put(p, "acl/x", "1");
  sem_expect(p, "acl/x", "1");
  physical_close(p);
  /* CONSUL_HTTP_TOKEN and CONSUL_HTTP_ADDR when the stanza has neither */
  json_decref(c);
  c = json_pack("{s:s}", "disable_registration", "true");
  setenv("CONSUL_HTTP_TOKEN", "s3cr3t-acl-token", 1);
  setenv("CONSUL_HTTP_ADDR", g_acl_addr, 1);
  assert_int_equal(physical_consul_new(&p, c, &err), 0);
  sem_expect(p, "acl/x", "1");
  physical_close(p);
  unsetenv("CONSUL_HTTP_TOKEN");
  unsetenv("CONSUL_HTTP_ADDR");
  json_decref(c);
}

static void
test_physical_consul__strong_consistency_and_scheme_url(void **state) {
  (void)state;
  char url[96];
  snprintf(url, sizeof(url), "http://%s", g_addr);
  json_t *c =
      json_pack("{s:s,s:s,s:s,s:s}", "address", url, "path", "/strong",
                "consistency_mode", "strong", "disable_registration", "true");
  struct physical *p = open_conf(c);
  struct physical *q =
      open_path("strong/", NULL); /* leading '/' trimmed, '/' added */
  sem_put(p, "a/b", "1");
  sem_expect(q, "a/b", "1");
  sem_expect_list(p, "a/", (const char *const[]){"b", NULL});
  physical_close(p);
  physical_close(q);
}

static void test_physical_consul__unreachable_and_config_errors(void **state) {
  (void)state;
  struct physical *p = NULL;
  struct verr err = {0};
  const char *bad[][2] = {
      {"consistency_mode", "eventual"},  {"scheme", "ftp"},
      {"session_ttl", "soon"},           {"max_entry_size", "99999999"},
      {"tls_cert_file", "/x"},           {"max_parallel", "0"},
      {"disable_registration", "maybe"}, {"address", "127.0.0.1:8500/v1"},
      {"lock_check_ttl", "later"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *c = json_pack("{s:s}", "address", g_addr);
    json_object_set_new(c, bad[i][0], json_string(bad[i][1]));
    assert_int_equal(physical_consul_new(&p, c, &err), VERR_INVALID);
    assert_non_null(strstr(err.msg, "consul"));
    json_decref(c);
    assert_null(p);
  }
  /* an unreachable Consul: opening retries, then goes on (it may come up
   * later); requests fail 5xx-class naming the address */
  json_t *c =
      json_pack("{s:s,s:s,s:s}", "address", "127.0.0.1:1", "request_timeout",
                "1s", "disable_registration", "true");
  int64_t t0 = now_ms();
  assert_int_equal(physical_consul_new(&p, c, &err), 0);
  assert_true(now_ms() - t0 >= 1500); /* retried with back-off */
  json_decref(c);
  uint8_t *v = NULL;
  size_t l = 0;
  assert_int_equal(physical_get(p, "x", &v, &l, &err), VERR_UNAVAILABLE);
  assert_non_null(strstr(err.msg, "127.0.0.1:1"));
  assert_int_equal(physical_put(p, "x", (const uint8_t *)"1", 1, &err),
                   VERR_UNAVAILABLE);
  struct physical_ha *h = physical_ha(p);
  assert_true(physical_ha_acquire(h, "n", on_lost, NULL, &err) < 0);
  physical_close(p);
}

int main(void) {
  log_set_level(LOG_OFF);
  const struct CMUnitTest tests[] = {
      SEMANTICS_TESTS(sem_setup, sem_teardown),
      cmocka_unit_test(test_physical_consul__ha_lock_one_holder_and_handover),
      cmocka_unit_test(
          test_physical_consul__monitor_and_fencing_after_lock_key_deleted),
      cmocka_unit_test(
          test_physical_consul__data_writes_fenced_by_ha_storage_lock),
      cmocka_unit_test(
          test_physical_consul__check_bound_session_fails_over_at_check_ttl),
      cmocka_unit_test(test_physical_consul__service_registration),
      cmocka_unit_test(test_physical_consul__acl_token),
      cmocka_unit_test(test_physical_consul__strong_consistency_and_scheme_url),
      cmocka_unit_test(test_physical_consul__unreachable_and_config_errors),
  };
  return cmocka_run_group_tests(tests, start_peers, stop_peers);
}
