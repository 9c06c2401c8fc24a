"""
test_ha_consul.py - storage "consul" and ha_storage "consul" with real Coffer
nodes against the local Consul HTTP peer (tests/peers/consul_peer.py; no
Consul binary can be installed here):

  * the production guide's configuration (shared/seed: storage "consul" +
    ha_storage "consul" on vault/ and vault-ha/, a TLS listener,
    cluster_addr / api_addr), addresses substituted, starts, initialises,
    unseals and becomes active; data lands under vault/, the lock under
    vault-ha/; hvac works against it.
  * two nodes: kill -9 of the active under a write load sent to the standby:
    the lock session is bound to a TTL check the holder passes, so Consul
    invalidates it when the check lapses (session_ttl after the last pass,
    not 2 x TTL); the standby takes over within TTL + lock-delay + 0.5 s and
    no acknowledged write is lost.
  * a paused active (SIGSTOP) whose check lapses, taking its session: the other
    node becomes active, and the paused one steps down when it wakes up.
  * ha_storage "consul" with storage "file" on one node.
  * bad input: an unreachable Consul at start (warned, retried, no crash;
    works once Consul is up), a wrong token (start-up refused, naming the
    permission problem).
"""
import http.client
import json
import os
import signal
import sys
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "peers"))

from consul_peer import ConsulPeer  # noqa: E402
from harness import Server, free_port, make_cert  # noqa: E402

TTL = 2  # session_ttl (and so lock_check_ttl) for the failover tests
LOCK_DELAY = 1  # the backend's default lock_delay


def wait_until(pred, timeout=15.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def leader(s):
    try:
        r = s.get("sys/leader", token="")
        return r.json() if r.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None


def consul_keys(peer, prefix):
    try:
        with urllib.request.urlopen("%s/v1/kv/%s?keys" % (peer.url, prefix), timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def ha_node(peer, ttl=TTL):
    cport = free_port()
    storage = ('storage "consul" {\n  address = "%s"\n  path = "coffer/"\n  session_ttl = "%ds"\n'
               '  lock_wait_time = "2s"\n  disable_registration = "true"\n}' % (peer.addr, ttl))
    s = Server(storage=storage)
    with open(s.config_path, "a") as f:
        f.write('api_addr = "http://%s"\ncluster_addr = "https://127.0.0.1:%d"\n' % (s.addr, cport))
    return s


class SeedConfig(unittest.TestCase):
    def test_production_guide_config_starts_and_becomes_active(self):
        peer = ConsulPeer().start()
        self.addCleanup(peer.stop)
        tmp = Server(storage='storage "inmem" {}')
        self.addCleanup(tmp.cleanup)
        cert, key = make_cert(tmp.dir)
        cport = free_port()
        # the seed's stanzas verbatim, with this machine's addresses
        storage = 'storage "consul" {\naddress = "%s"\npath = "vault/"\n}' % peer.addr
        s = Server(storage=storage, tls=(cert, key))
        self.addCleanup(s.cleanup)
        with open(s.config_path, "a") as f:
            f.write('ha_storage "consul" {\naddress = "%s"\npath = "vault-ha/"\n}\n'
                    'cluster_addr = "https://127.0.0.1:%d"\napi_addr = "https://%s"\n'
                    % (peer.addr, cport, s.addr))
        s.start()
        s.init(shares=1, threshold=1)
        s.unseal()
        self.assertTrue(wait_until(lambda: (leader(s) or {}).get("is_self")), s.log())
        la = leader(s)
        self.assertTrue(la["ha_enabled"])
        self.assertEqual(la["leader_address"], "https://" + s.addr)
        self.assertEqual(s.get("sys/health", token="").status, 200)
        self.assertIn(s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status,
                      (200, 204))
        import hvac
        import urllib3
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # self-signed test cert
        c = hvac.Client(url="https://" + s.addr, token=s.root_token, verify=False)
        c.secrets.kv.v2.create_or_update_secret(path="app", secret={"pw": "hunter2"}, mount_point="secret")
        self.assertEqual(c.secrets.kv.v2.read_secret_version(path="app", mount_point="secret")
                         ["data"]["data"]["pw"], "hunter2")
        # data under vault/, the lock (and nothing else) under vault-ha/
        data = consul_keys(peer, "vault/")
        self.assertIn("vault/core/seal-config", data)
        self.assertTrue(any(k.startswith("vault/logical/") for k in data))
        self.assertEqual(consul_keys(peer, "vault-ha/"), ["vault-ha/core/lock"])
        # Vault's service registration, on by default: active, check passing
        with urllib.request.urlopen(peer.url + "/v1/agent/services") as r:
            svcs = json.loads(r.read())
        sid = "vault:127.0.0.1:%d" % s.port
        self.assertIn(sid, svcs)
        self.assertIn("active", svcs[sid]["Tags"])
        with urllib.request.urlopen(peer.url + "/v1/agent/checks") as r:
            self.assertEqual(json.loads(r.read())[sid + ":vault-sealed-check"]["Status"], "passing")
        # a restart comes back unsealable from what Consul holds
        s.stop()
        s.start()
        s.unseal()
        self.assertTrue(wait_until(lambda: (leader(s) or {}).get("is_self")))
        self.assertEqual(c.secrets.kv.v2.read_secret_version(path="app", mount_point="secret")
                         ["data"]["data"]["pw"], "hunter2")
        s.stop()
        with urllib.request.urlopen(peer.url + "/v1/agent/services") as r:
            self.assertNotIn(sid, json.loads(r.read()))  # deregistered on shutdown


class HAConsul(unittest.TestCase):
    def setUp(self):
        self.peer = ConsulPeer(session_ttl_min=1.0).start()
        self.addCleanup(self.peer.stop)
        self.a, self.b = ha_node(self.peer), ha_node(self.peer)
        for s in (self.a, self.b):
            self.addCleanup(s.cleanup)
            s.start()
        self.a.init(shares=1, threshold=1)
        self.b.keys, self.b.root_token = self.a.keys, self.a.root_token
        self.a.unseal()
        self.assertTrue(wait_until(lambda: (leader(self.a) or {}).get("is_self")), self.a.log())
        self.b.unseal()
        self.assertTrue(wait_until(lambda: (leader(self.b) or {}).get("leader_address")))

    def test_failover_under_load_loses_no_acknowledged_write(self):
        a, b = self.a, self.b
        self.assertIn(b.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        acked, stop, killed_at, first_after = [], threading.Event(), [], []

        def writer(tid):
            i = 0
            while not stop.is_set():
                key = "kv/w%d-%d" % (tid, i)
                started = time.time()
                try:
                    r = b.put(key, {"v": str(i)})
                    if r.status in (200, 204):
                        acked.append(key)
                        if killed_at and started > killed_at[0] and not first_after:
                            first_after.append(time.time())
                except (OSError, http.client.HTTPException):
                    pass
                i += 1

        ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        # the active's lock session is bound to its own passing TTL check
        with urllib.request.urlopen(self.peer.url + "/v1/session/list") as r:
            sessions = json.loads(r.read())
        with urllib.request.urlopen(self.peer.url + "/v1/agent/checks") as r:
            checks = json.loads(r.read())
        cid = "vault:%s:%d:ha-lock-check" % (a.addr.split(":")[0], a.port)
        self.assertEqual(checks[cid]["Status"], "passing")
        self.assertTrue(any(cid in (s.get("NodeChecks") or []) for s in sessions), sessions)
        before = len(acked)
        killed_at.append(time.time())
        a.kill9()
        self.assertTrue(wait_until(lambda: (leader(b) or {}).get("is_self"), timeout=TTL * 2 + 10),
                        "b did not take over")
        self.assertTrue(wait_until(lambda: first_after, timeout=10))
        time.sleep(1.0)
        stop.set()
        for t in ts:
            t.join()
        failover = first_after[0] - killed_at[0]
        print("\nconsul failover: first acknowledged write %.2f s after kill -9 (session_ttl = "
              "lock_check_ttl %d s, lock-delay %d s); %d writes acknowledged (%d before)"
              % (failover, TTL, LOCK_DELAY, len(acked), before))
        self.assertGreater(before, 10)
        # the check lapses at most TTL after the last pass (passed every
        # TTL/3), the session goes with it, then the lock-delay
        self.assertLessEqual(failover, TTL + LOCK_DELAY + 0.5)
        # Consul's own 2 x TTL expiry would not be reached before TTL * 2
        self.assertLess(failover, 2 * TTL + LOCK_DELAY)
        missing = [k for k in acked if b.get(k).status != 200]
        self.assertEqual(missing, [], "acknowledged writes lost in the failover")
        with urllib.request.urlopen(self.peer.url + "/v1/agent/checks") as r:
            self.assertEqual(json.loads(r.read())[cid]["Status"], "critical")

    def test_paused_active_loses_its_session_and_steps_down(self):
        a, b = self.a, self.b
        self.assertIn(a.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        self.assertEqual(a.put("kv/before", {"v": "1"}).status, 204)
        a.proc.send_signal(signal.SIGSTOP)
        try:
            # the paused node's check lapses after TTL: Consul invalidates
            # its session then
            self.assertTrue(wait_until(lambda: (leader(b) or {}).get("is_self"), timeout=TTL * 2 + 10),
                            "b did not take over from the paused node")
        finally:
            a.proc.send_signal(signal.SIGCONT)
        # a wakes up, learns its lock is gone and steps down
        self.assertTrue(wait_until(lambda: (leader(a) or {}).get("is_self") is False
                                   and (leader(a) or {}).get("leader_address") == "http://" + b.addr,
                                   timeout=15), a.log()[-3000:])
        self.assertIn("HA lock lost", a.log())
        # writes sent to a are forwarded to b and land
        self.assertEqual(a.put("kv/after", {"v": "2"}).status, 204)
        self.assertEqual(b.get("kv/after").json()["data"]["v"], "2")
        self.assertEqual(b.get("kv/before").json()["data"]["v"], "1")


class HAStorageOnly(unittest.TestCase):
    def test_file_data_with_consul_lock(self):
        peer = ConsulPeer().start()
        self.addCleanup(peer.stop)
        s = Server(storage="file")
        self.addCleanup(s.cleanup)
        with open(s.config_path, "a") as f:
            f.write('ha_storage "consul" {\n  address = "%s"\n  path = "coffer-ha/"\n'
                    '  disable_registration = "true"\n}\napi_addr = "http://%s"\n'
                    'cluster_addr = "https://127.0.0.1:%d"\n' % (peer.addr, s.addr, free_port()))
        s.start()
        s.init_unseal()
        self.assertTrue(wait_until(lambda: (leader(s) or {}).get("is_self")), s.log())
        self.assertIn(s.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        self.assertEqual(s.put("kv/x", {"v": "1"}).status, 204)
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "1")
        # the lock is in Consul, the data on disk, nothing else in Consul
        self.assertEqual(consul_keys(peer, ""), ["coffer-ha/core/lock"])
        self.assertTrue(os.path.isdir(os.path.join(s.dir, "data")))


class BadInput(unittest.TestCase):
    def test_unreachable_consul_at_start_then_recovers(self):
        port = free_port()
        storage = ('storage "consul" {\n  address = "127.0.0.1:%d"\n  path = "late/"\n'
                   '  request_timeout = "2s"\n  disable_registration = "true"\n}' % port)
        s = Server(storage=storage)
        self.addCleanup(s.cleanup)
        s.start(wait=False)
        s.wait_ready(timeout=30)
        log = s.log()
        self.assertIn("consul not reachable yet", log)
        self.assertIn("127.0.0.1:%d" % port, log)
        self.assertIsNone(s.proc.poll())
        r = s.put("sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        self.assertGreaterEqual(r.status, 500)
        self.assertIn("127.0.0.1:%d" % port, r.body.decode())
        # Consul comes up: the same server works without a restart
        peer = ConsulPeer(port=port).start()
        self.addCleanup(peer.stop)
        s.init_unseal()
        self.assertTrue(wait_until(lambda: (leader(s) or {}).get("is_self")), s.log())
        self.assertIsNone(s.proc.poll())

    def test_wrong_token_refuses_to_start(self):
        peer = ConsulPeer(token="the-real-token").start()
        self.addCleanup(peer.stop)
        storage = ('storage "consul" {\n  address = "%s"\n  token = "not-the-token"\n}' % peer.addr)
        s = Server(storage=storage)
        self.addCleanup(s.cleanup)
        s.start(wait=False)
        rc = s.proc.wait(30)
        self.assertNotEqual(rc, 0)
        log = s.log()
        self.assertIn("permission denied", log)
        self.assertIn("token", log)
        self.assertNotIn("not-the-token", log)


if __name__ == "__main__":
    unittest.main()
