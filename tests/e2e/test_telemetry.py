"""
test_telemetry.py - GET /v1/sys/metrics as a Prometheus server and Vault's
dashboards see it, on the real binary:

  * a token is needed (403 without), one whose policy reads sys/metrics is
    enough, another policy is refused; the default format is Vault's JSON
    (Gauges/Counters/Samples).
  * ?format=prometheus is the text format 0.0.4: promtool check metrics
    accepts it (apart from the naming lints Vault's own names trigger) and
    prometheus_client parses it; Vault's names are there after real
    traffic (hvac: kv v2, userpass logins, an audit device): handle_request,
    handle_login_request, route_<op>_<mount>, barrier_*, file_* storage
    latency, token_creation, policy_get_policy, audit_log_request/response,
    expire_num_leases, core_unsealed/active, runtime_* of the process; the
    latencies are Vault's summaries under Vault's names (quantile 0.5, 0.9,
    0.99, _sum in ms, _count) and histograms under <name>_seconds with
    cumulative le buckets whose +Inf equals _count.
  * an OpenMetrics Accept header gets application/openmetrics-text that
    prometheus_client's strict OpenMetrics parser accepts.
  * prometheus_retention_time = 0: 400 "prometheus is not enabled", JSON
    still works.
  * a listener with unauthenticated_metrics_access serves without a token,
    even while sealed.
  * HA (two nodes on a real etcd): each node reports ITS OWN metrics -
    core_active 1 on the active, 0 on the standby - both with a token (the
    standby asks the active only whether the token may read) and without.
"""
import json
import os
import shutil
import subprocess
import time
import unittest

import hvac
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as om_families

from harness import Server, free_port

TELEMETRY = 'telemetry {\n  prometheus_retention_time = "30s"\n  disable_hostname = true\n}\n'
PROMTOOL = shutil.which("promtool")
# lints promtool applies to any exporter; Vault's own names trigger these
# (its counters have no _total, its latencies are in ms, its gauge is
# vault_token_count): not format errors
VAULT_NAMING_LINTS = ("counter metrics should have \"_total\" suffix",
                      "non-base units", "use base unit",
                      "non-histogram and non-summary metrics should not have \"_count\" suffix")


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams, name, labels=None, suffix=""):
    f = fams.get(name)
    if not f:
        return None
    for s in f.samples:
        # the Python client names a counter's sample <name>_total
        if s.name in (name + suffix, name + "_total") and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
            return s.value
    return None


def promtool_problems(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode()
    lines = [l for l in out.splitlines() if l.strip()]
    return p.returncode, [l for l in lines if not any(x in l for x in VAULT_NAMING_LINTS)]


class Telemetry(unittest.TestCase):
    def start(self, extra=TELEMETRY, **kw):
        s = Server(extra_config=extra, **kw)
        self.addCleanup(s.cleanup)
        s.start()
        return s

    def traffic(self, s):
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        c.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        c.sys.enable_audit_device("file", options={"file_path": os.path.join(s.dir, "audit.log")})
        c.sys.enable_auth_method("userpass")
        c.write("auth/userpass/users/alice", password="pw", policies="default")
        c.secrets.kv.v2.create_or_update_secret(path="app", secret={"k": "v"})
        for _ in range(5):
            c.secrets.kv.v2.read_secret_version(path="app")
        hvac.Client(url="http://" + s.addr).auth.userpass.login("alice", "pw")
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            hvac.Client(url="http://" + s.addr).auth.userpass.login("alice", "wrong")
        return c

    def test_prometheus_text_and_vault_names(self):
        s = self.start()
        s.init_unseal()
        c = self.traffic(s)
        # a token is needed; the default format is Vault's JSON
        self.assertEqual(s.get("sys/metrics", token="").status, 403)
        r = s.get("sys/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        j = r.json()
        for k in ("Timestamp", "Gauges", "Counters", "Samples"):
            self.assertIn(k, j)
        names = {g["Name"] for g in j["Gauges"]}
        self.assertIn("vault.core.unsealed", names)
        self.assertIn("vault.core.handle_request", {x["Name"] for x in j["Samples"]})

        # hvac's own transport, as a script scraping with hvac would
        raw = hvac.Client(url="http://" + s.addr, token=s.root_token, adapter=hvac.adapters.RawAdapter)
        resp = raw.adapter.get("/v1/sys/metrics", params={"format": "prometheus"})
        self.assertEqual(resp.status_code, 200)
        self.assertTrue(resp.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = resp.text
        fams = families(text)
        for name in ("vault_core_handle_request", "vault_core_handle_login_request",
                     "vault_route_read_secret_", "vault_route_create_secret_",
                     "vault_barrier_get", "vault_barrier_put", "vault_barrier_list",
                     "vault_file_get", "vault_file_put",
                     "vault_policy_get_policy", "vault_audit_log_request",
                     "vault_audit_log_response", "vault_core_unseal"):
            # Vault's summary under Vault's name, the histogram under _seconds
            self.assertIn(name, fams, name)
            self.assertEqual(fams[name].type, "summary", name)
            self.assertEqual(fams[name + "_seconds"].type, "histogram", name)
        self.assertEqual(sample(fams, "vault_core_unsealed"), 1)
        self.assertEqual(sample(fams, "vault_core_active"), 1)
        # the alice login's token expires: the one lease (the root token does not)
        self.assertEqual(sample(fams, "vault_expire_num_leases"), 1)
        self.assertEqual(sample(fams, "vault_token_count"), 2)  # root + alice's
        self.assertGreater(sample(fams, "vault_runtime_rss_bytes"), 1 << 20)
        self.assertGreater(sample(fams, "vault_runtime_threads"), 1)
        self.assertGreater(sample(fams, "vault_runtime_open_fds"), 3)
        self.assertGreater(sample(fams, "vault_runtime_cpu_seconds"), 0)
        # the five reads of secret/app, at least
        self.assertGreaterEqual(sample(fams, "vault_route_read_secret_", suffix="_count"), 5)
        # logins per mount, success and failure
        self.assertEqual(sample(fams, "vault_auth_login",
                                {"mount_point": "auth/userpass/", "result": "success"}), 1)
        self.assertEqual(sample(fams, "vault_auth_login",
                                {"mount_point": "auth/userpass/", "result": "failure"}), 1)
        self.assertEqual(sample(fams, "vault_token_creation",
                                {"mount_point": "auth/userpass/", "token_type": "service"}), 1)
        # the queries of Vault's dashboards, verbatim: quantiles over the
        # last 10 s (in ms, plausible for local requests), _sum (ms) and _count
        q = {x.labels["quantile"]: x.value for x in fams["vault_core_handle_request"].samples
             if "quantile" in x.labels}
        self.assertEqual(sorted(q), ["0.5", "0.9", "0.99"])
        self.assertTrue(0 < q["0.5"] <= q["0.9"] <= q["0.99"] < 5000, q)
        n = sample(fams, "vault_core_handle_request", suffix="_count")
        self.assertGreaterEqual(n, 8)
        self.assertGreater(sample(fams, "vault_core_handle_request", suffix="_sum"), 0)
        self.assertGreater(sample(fams, "vault_barrier_get", {"quantile": "0.99"}), 0)
        self.assertGreater(sample(fams, "vault_route_read_secret_", {"quantile": "0.5"}), 0)
        # the histogram: cumulative le buckets in seconds, +Inf is the count
        h = fams["vault_core_handle_request_seconds"]
        buckets = [x.value for x in h.samples if x.name.endswith("_bucket")]
        self.assertEqual(buckets, sorted(buckets))
        inf = [x.value for x in h.samples if x.labels.get("le") == "+Inf"][0]
        self.assertEqual(inf, sample(fams, "vault_core_handle_request_seconds", suffix="_count"))
        self.assertEqual(inf, n)
        ms = sample(fams, "vault_core_handle_request", suffix="_sum")
        secs = sample(fams, "vault_core_handle_request_seconds", suffix="_sum")
        self.assertAlmostEqual(secs * 1000, ms, delta=ms * 0.01 + 0.01)
        self.assertGreaterEqual(sum(len(f.samples) for f in fams.values()), 300)

        if PROMTOOL:
            rc, problems = promtool_problems(text)
            self.assertEqual(problems, [], "promtool: %s" % problems)
        else:
            print("promtool not installed (Debian package prometheus): skipped the promtool check")

        # OpenMetrics by the Accept header, as Prometheus asks for it
        r = s.get("sys/metrics", query={"format": "prometheus"},
                  headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("application/openmetrics-text"))
        om = {f.name: f for f in om_families(r.body.decode())}
        self.assertEqual(om["vault_core_handle_request"].type, "summary")
        self.assertEqual(om["vault_core_handle_request_seconds"].type, "histogram")
        self.assertIn("vault_audit_log_request", om)

        # unknown format
        r = s.get("sys/metrics", query={"format": "xml"})
        self.assertEqual(r.status, 400)
        self.assertIn("unknown format", r.json()["errors"][0])

    def test_token_usage_gauges(self):
        extra = ('telemetry {\n  prometheus_retention_time = "30s"\n  disable_hostname = true\n'
                 '  usage_gauge_period = "2s"\n}\n')
        s = self.start(extra=extra)
        s.init_unseal()
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        for name in ("p1", "p2"):
            c.sys.create_or_update_policy(name, 'path "secret/*" { capabilities = ["read"] }')
        mk = lambda pol, ttl: c.auth.token.create(policies=pol, ttl=ttl)["auth"]["client_token"]
        mk(["p1"], "30m")                      # creation_ttl bucket 1h
        mk(["p1", "p2"], "3h")                 # 1d
        p2 = mk(["p2"], "240h")                # 30d
        c.sys.enable_auth_method("userpass")
        c.write("auth/userpass/users/bob", password="pw", policies="p1")
        hvac.Client(url="http://" + s.addr).auth.userpass.login("bob", "pw")  # 32d: +Inf

        def gauges():
            f = families(s.get("sys/metrics", query={"format": "prometheus"}).body.decode())
            out = {}
            for name, key in (("vault_token_count_by_policy", "policy"),
                              ("vault_token_count_by_auth", "auth_method"),
                              ("vault_token_count_by_ttl", "creation_ttl")):
                out[name] = {x.labels[key]: x.value for x in f[name].samples} if name in f else {}
            return out

        def wait_for(pred):
            deadline = time.time() + 15
            while time.time() < deadline:
                g = gauges()
                if pred(g):
                    return g
                time.sleep(0.5)
            return g

        g = wait_for(lambda g: g["vault_token_count_by_auth"].get("userpass") == 1)
        # root + 3 created + bob's login
        self.assertEqual(g["vault_token_count_by_policy"],
                         {"root": 1, "default": 4, "p1": 3, "p2": 2}, g)
        self.assertEqual(g["vault_token_count_by_auth"], {"token": 4, "userpass": 1}, g)
        self.assertEqual(g["vault_token_count_by_ttl"], {"1h": 1, "1d": 1, "30d": 1, "+Inf": 2}, g)
        # a revoked token leaves the counts at the next walk (p2 falls, not frozen)
        c.auth.token.revoke(p2)
        g = wait_for(lambda g: g["vault_token_count_by_policy"].get("p2") == 1)
        self.assertEqual(g["vault_token_count_by_policy"]["p2"], 1, g)
        self.assertEqual(g["vault_token_count_by_ttl"]["30d"], 0, g)

    def test_policy_controls_access(self):
        s = self.start()
        s.init_unseal()
        self.assertEqual(s.put("sys/policies/acl/metrics",
                               {"policy": 'path "sys/metrics" { capabilities = ["read"] }'}).status, 204)
        self.assertEqual(s.put("sys/policies/acl/other",
                               {"policy": 'path "secret/*" { capabilities = ["read"] }'}).status, 204)
        good = s.post("auth/token/create", {"policies": ["metrics"]}).json()["auth"]["client_token"]
        bad = s.post("auth/token/create", {"policies": ["other"]}).json()["auth"]["client_token"]
        r = s.get("sys/metrics", token=good, query={"format": "prometheus"})
        self.assertEqual(r.status, 200)
        self.assertIn("vault_core_unsealed 1", r.body.decode())
        self.assertEqual(s.get("sys/metrics", token=bad).status, 403)

    def test_retention_zero_disables_prometheus(self):
        s = self.start(extra='telemetry {\n  prometheus_retention_time = 0\n  disable_hostname = true\n}\n')
        s.init_unseal()
        r = s.get("sys/metrics", query={"format": "prometheus"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"], ["prometheus is not enabled"])
        self.assertEqual(s.get("sys/metrics").status, 200)  # JSON still

    def test_unauthenticated_listener_even_sealed(self):
        port = free_port()
        extra = TELEMETRY + ('listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n'
                             '  telemetry {\n    unauthenticated_metrics_access = true\n  }\n}\n' % port)
        s = self.start(extra=extra)
        s2 = Server.__new__(Server)
        s2.__dict__.update(s.__dict__)
        s2.port = port
        s2.wait_ready()  # the listeners start one after the other
        # sealed: the open listener answers, the other one says sealed
        r = s2.get("sys/metrics", token="", query={"format": "prometheus"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("vault_core_unsealed 0", r.body.decode())
        self.assertEqual(s.get("sys/metrics", token="x").status, 503)
        s.init_unseal()
        r = s2.get("sys/metrics", token="", query={"format": "prometheus"})
        self.assertIn("vault_core_unsealed 1", r.body.decode())
        self.assertEqual(s.get("sys/metrics", token="").status, 403)  # the default listener

    def test_each_ha_node_reports_its_own(self):
        from etcd_service import Etcd
        from test_ha_etcd import node, wait_until, leader
        etcd = Etcd().start()
        self.addCleanup(etcd.stop)
        a, b = node(etcd.url), node(etcd.url)
        for s in (a, b):
            with open(s.config_path, "a") as f:
                f.write(TELEMETRY)
            self.addCleanup(s.cleanup)
            s.start()
        a.init(shares=1, threshold=1)
        b.keys, b.root_token = a.keys, a.root_token
        a.unseal()
        self.assertTrue(wait_until(lambda: (leader(a) or {}).get("is_self")))
        b.unseal()
        self.assertTrue(wait_until(lambda: (leader(b) or {}).get("leader_address")))
        # requests through the standby are forwarded (and counted there)
        self.assertEqual(b.get("sys/mounts").status, 200)

        def scrape(s, **kw):
            r = s.get("sys/metrics", query={"format": "prometheus"}, **kw)
            self.assertEqual(r.status, 200, r)
            return families(r.body.decode())

        fa, fb = scrape(a), scrape(b)
        self.assertEqual(sample(fa, "vault_core_active"), 1)
        self.assertEqual(sample(fb, "vault_core_active"), 0)
        self.assertEqual(sample(fb, "vault_core_standby"), 1)
        self.assertEqual(sample(fb, "vault_core_unsealed"), 1)
        self.assertGreaterEqual(sample(fb, "vault_ha_rpc_client_forward", suffix="_count"), 1)
        self.assertIsNone(fa.get("vault_ha_rpc_client_forward"))
        # the standby still checks the token (with the active node)
        self.assertEqual(b.get("sys/metrics", token="s.bogus").status, 403)
        self.assertEqual(b.get("sys/metrics", token="").status, 403)
        self.assertEqual(b.put("sys/policies/acl/other",
                               {"policy": 'path "secret/*" { capabilities = ["read"] }'}).status, 204)
        t = b.post("auth/token/create", {"policies": ["other"]}).json()["auth"]["client_token"]
        self.assertEqual(b.get("sys/metrics", token=t).status, 403)


if __name__ == "__main__":
    unittest.main()
