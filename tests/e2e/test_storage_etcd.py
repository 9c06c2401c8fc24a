"""
test_storage_etcd.py - storage "etcd" under faults, against real etcd:

  * the crash harness (test_crash_consistency.py's, unchanged): Coffer on
    etcd is SIGKILLed under a concurrent write load COFFER_CRASH_KILLS times
    (default 20), restarted and unsealed; every acknowledged write is there
    with exactly its value.
  * a 3-member etcd cluster whose leader is killed (-9) under a Coffer write
    load: Coffer (given all three client URLs) keeps serving, requests fail
    at most briefly with a 5xx during the election, and every acknowledged
    write is readable afterwards.
  * an unreachable etcd at start: the server starts, requests get 5xx
    naming the endpoint, and it recovers once etcd comes up.
"""
import threading
import time
import unittest

from etcd_service import Etcd, EtcdCluster
from harness import Server
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
    def test_etcd_leader_killed_under_load(self):
        cl = EtcdCluster().start()
        self.addCleanup(cl.stop)
        s = Server(storage='storage "etcd" {\n  address = "%s"\n  request_timeout = "3s"\n}'
                   % ",".join(cl.urls))
        self.addCleanup(s.cleanup)
        s.start()
        s.init_unseal()
        self.assertIn(s.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        acked, failed, stop = [], [], threading.Event()

        def writer(tid):
            i = 0
            while not stop.is_set():
                key = "kv/e%d-%d" % (tid, i)
                try:
                    r = s.put(key, {"v": key})
                    (acked if r.status in (200, 204) else failed).append((key, r.status, time.time()))
                except OSError:
                    failed.append((key, 0, time.time()))
                i += 1
        ts = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        victim = cl.leader()
        self.assertIsNotNone(victim)
        killed = time.time()
        victim.proc.kill()
        victim.proc.wait()
        time.sleep(4.0)
        stop.set()
        for t in ts:
            t.join()
        after = [a for a in acked if a[2] > killed + 3.0]
        print("\netcd leader kill: %d acknowledged, %d failed (statuses %s), %d acknowledged "
              "more than 3 s after the kill" % (len(acked), len(failed),
                                                sorted({f[1] for f in failed}), len(after)))
        self.assertTrue(after, "Coffer did not recover after the etcd leader was killed")
        self.assertTrue(all(f[1] == 0 or f[1] >= 500 for f in failed), failed[:5])
        missing = [k for k, _, _ in acked if s.get(k).status != 200]
        self.assertEqual(missing, [])

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
