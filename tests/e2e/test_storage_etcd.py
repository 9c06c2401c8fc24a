"""
test_storage_etcd.py - storage "etcd" under faults, against real etcd:

  * the crash harness (test_crash_consistency.py's, unchanged): Coffer on
    etcd is SIGKILLed under a concurrent write load COFFER_CRASH_KILLS times
    (default 20), restarted and unsealed; every acknowledged write is there
    with exactly its value.
  * a 3-member etcd cluster whose leader is killed (-9) under a Coffer write
    load, with and without ha_enabled: Coffer (given all three client URLs)
    keeps serving, requests fail at most briefly with a 5xx during the
    election, every key reads back as its last acknowledged value, and with
    HA the node keeps its lock (etcd's new leader extends the leases).
  * the lock holder's read cache: 1 Range + 1 Txn in etcd per KV v2 write
    of a new secret, 2 + 1 with disable_cache = true or without HA.
  * an unreachable etcd at start: the server starts, requests get 5xx
    naming the endpoint, and it recovers once etcd comes up.
"""
import threading
import time
import unittest

from etcd_service import Etcd, EtcdCluster, etcd_calls
from harness import Server, free_port
from test_crash_consistency import CrashConsistencyBase


class CrashConsistencyEtcd(CrashConsistencyBase, unittest.TestCase):
    backend_name = "etcd"

    def setUpBackend(self):
        self.etcd = Etcd().start()

    def tearDownBackend(self):
        self.etcd.stop()

    def storage_stanza(self, dirpath):
        return 'storage "etcd" {\n  address = "%s"\n  path = "/crash/"\n}\n' % self.etcd.url


class EtcdFaults(unittest.TestCase):
    def active_server(self, storage):
        """A Coffer on `storage`, initialised, unsealed and active (with HA:
        holding the lock and set up)."""
        s = Server(storage=storage)
        self.addCleanup(s.cleanup)
        with open(s.config_path, "a") as f:
            f.write('api_addr = "http://%s"\ncluster_addr = "https://127.0.0.1:%d"\n'
                    % (s.addr, free_port()))
        s.start()
        s.init_unseal()
        deadline = time.time() + 20
        while time.time() < deadline and s.get("sys/health", token="").status != 200:
            time.sleep(0.1)
        return s

    def leader_killed_under_load(self, ha):
        cl = EtcdCluster().start()
        self.addCleanup(cl.stop)
        storage = 'storage "etcd" {\n  address = "%s"\n  request_timeout = "3s"\n' % ",".join(cl.urls)
        if ha:
            storage += '  ha_enabled = "true"\n  lock_timeout = "10s"\n'
        s = self.active_server(storage + "}")
        self.assertIn(s.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        acked, failed, stop = {}, [], threading.Event()
        killed, n_acked = [], [0]

        def writer(tid):
            i = 0
            while not stop.is_set():
                # each writer rewrites a few keys, so reads of a key this
                # node wrote (served from the holder's cache with HA) are
                # checked against the last acknowledged value
                key = "kv/e%d-%d" % (tid, i % 5)
                val = "%d-%d" % (tid, i)
                try:
                    r = s.put(key, {"v": val})
                    if r.status in (200, 204):
                        acked[key] = (val, time.time())
                        n_acked[0] += 1
                    else:
                        failed.append((key, r.status, time.time()))
                        # an unacknowledged write may or may not have
                        # been applied: the key's value is unknown now
                        acked.pop(key, None)
                except OSError:
                    failed.append((key, 0, time.time()))
                    acked.pop(key, None)
                i += 1
        ts = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
        for t in ts:
            t.start()
        try:
            time.sleep(1.0)
            victim = cl.leader()
            self.assertIsNotNone(victim)
            n_before = len(failed)
            killed.append(time.time())
            victim.proc.kill()
            victim.proc.wait()
            # the survivors elect a leader (etcd's election timeout is 1 s);
            # then writes are acknowledged again
            deadline = time.time() + 20
            while time.time() < deadline and not any(
                    t > killed[0] + 2.0 for _, t in list(acked.values())):
                time.sleep(0.1)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in ts:
                t.join()
        after = [k for k, (_, t) in acked.items() if t > killed[0] + 2.0]
        statuses = sorted({f[1] for f in failed})
        print("\netcd leader kill (ha_enabled = %s): %d writes acknowledged, %d failed "
              "(statuses %s, %d before the kill), %d of %d keys last acknowledged more than 2 s "
              "after the kill" % (ha, n_acked[0], len(failed), statuses, n_before, len(after),
                                  len(acked)))
        self.assertTrue(after, "Coffer did not recover after the etcd leader was killed")
        self.assertTrue(all(f[1] == 0 or f[1] >= 500 for f in failed), failed[:5])
        # every key reads back as its last acknowledged value (with HA
        # through the holder's cache, which the election must not fool)
        wrong = [(k, v) for k, (v, _) in acked.items()
                 if s.get(k).status != 200 or s.get(k).json()["data"]["v"] != v]
        self.assertEqual(wrong, [])
        if ha:
            self.assertEqual(s.get("sys/health", token="").status, 200, "no longer active")
            self.assertNotIn("HA lock lost", s.log())

    def test_etcd_leader_killed_under_load(self):
        self.leader_killed_under_load(ha=False)

    def test_etcd_leader_killed_under_load_ha(self):
        """The same with the HA lock held: the lease survives etcd's
        election, the node stays active, and its read cache stays exact
        through writes whose outcome the election left unknown."""
        self.leader_killed_under_load(ha=True)

    def test_holder_cache_saves_a_range_per_write(self):
        """A KV v2 write of a new secret costs the lock holder 1 Range + 1
        Txn in etcd (its read cache answers the second metadata read); with
        Vault's top-level disable_cache = true, or without HA, 2 + 1."""
        e = Etcd().start()
        self.addCleanup(e.stop)
        per = {}
        for name, ha, extra in (("cache", True, ""), ("disable_cache", True, "disable_cache = true\n"),
                                ("no HA", False, "")):
            storage = ('storage "etcd" {\n  address = "%s"\n  path = "/%s/"\n  ha_enabled = "%s"\n}\n%s'
                       % (e.url, name.replace(" ", ""), "true" if ha else "false", extra))
            s = self.active_server(storage)
            self.assertIn(s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status,
                          (200, 204))
            time.sleep(0.5)  # the mount's own writes settle
            c0 = etcd_calls(e.url)
            n = 50
            for i in range(n):
                self.assertEqual(s.put("secret/data/n%d" % i, {"data": {"v": str(i)}}).status, 200)
            c1 = etcd_calls(e.url)
            per[name] = {m: (c1.get(m, 0) - c0.get(m, 0)) / n for m in ("Range", "Txn")}
            # and what was written reads back (the cache's answer)
            self.assertEqual(s.get("secret/data/n7").json()["data"]["data"]["v"], "7")
            s.stop()
        print("\netcd calls per KV v2 write of a new secret: %s" % per)
        # background calls (renewals every TTL/3) add a little
        self.assertLess(per["cache"]["Range"], 1.3)
        self.assertGreater(per["disable_cache"]["Range"], 1.9)
        self.assertGreater(per["no HA"]["Range"], 1.9)
        for p in per.values():
            self.assertAlmostEqual(p["Txn"], 1.0, delta=0.1)

    def test_unreachable_etcd_at_start(self):
        e = Etcd()
        s = Server(storage='storage "etcd" {\n  address = "%s"\n  request_timeout = "1s"\n}' % e.url)
        self.addCleanup(s.cleanup)
        self.addCleanup(e.stop)
        s.start()
        r = s.get("sys/seal-status", token="")
        self.assertGreaterEqual(r.status, 500)
        self.assertIn("127.0.0.1:%d" % e.cport, r.json()["errors"][0])
        e.start()
        deadline = time.time() + 10
        while time.time() < deadline and s.get("sys/seal-status", token="").status != 200:
            time.sleep(0.1)
        self.assertEqual(s.get("sys/seal-status", token="").status, 200)
        s.init_unseal()
        self.assertEqual(s.get("sys/health", token="").status, 200)


if __name__ == "__main__":
    unittest.main()
