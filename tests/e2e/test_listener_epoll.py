"""
End-to-end tests of the epoll listener (`thread_pool_size`) with ONE event
thread: a request that blocks (a database connection that a peer accepts
but never answers, held for libpq's connect_timeout) runs on an offload
worker, so KV reads, token lookups and sys/health on other connections are
answered at once meanwhile; the blocked request still gets its own answer.
Without the offload every one of them would wait the full 3 s.
"""
import socket
import threading
import time
import unittest

from harness import Server

CONNECT_TIMEOUT = 3


class StallPeer:
    """Accepts TCP connections and never sends a byte (a hung database)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.t.join()
        for c in self.held:
            c.close()
        self.sock.close()


class EpollOffloadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = StallPeer()
        cls.s = Server(thread_pool=1).start()
        cls.s.init_unseal()
        for path, body in (("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}),
                           ("sys/mounts/database", {"type": "database"}),
                           ("sys/audit/file", {"type": "file",
                                               "options": {"file_path": cls.s.dir + "/audit.log"}})):
            r = cls.s.post(path, body)
            assert r.status in (200, 204), (path, r)
        r = cls.s.post("secret/data/app", {"data": {"password": "p1"}})
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        cls.peer.close()

    def test_blocked_request_does_not_stall_the_event_thread(self):
        out = {}

        def hang():
            t0 = time.monotonic()
            out["r"] = self.s.post("database/config/hung", {
                "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:%d/db"
                                  "?sslmode=disable&connect_timeout=%d"
                                  % (self.peer.port, CONNECT_TIMEOUT),
                "username": "u", "password": "pw", "allowed_roles": ["*"]})
            out["s"] = time.monotonic() - t0

        t = threading.Thread(target=hang)
        t.start()
        deadline = time.monotonic() + 5
        while not self.peer.held and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(self.peer.held, "the database call never reached the peer")
        # the core is now blocked in libpq's connect; every other client is
        # still served, inline (kv, lookup-self) or by another worker (health)
        for _ in range(3):
            for path, want in (("secret/data/app", 200), ("auth/token/lookup-self", 200),
                               ("sys/health", 200), ("secret/data/missing", 404)):
                t0 = time.monotonic()
                r = self.s.get(path)
                took = time.monotonic() - t0
                self.assertEqual(r.status, want, (path, r))
                self.assertLess(took, 1.0, "%s took %.2f s behind a blocked request" % (path, took))
        self.assertEqual(self.s.get("secret/data/app").json()["data"]["data"]["password"], "p1")
        self.assertTrue(t.is_alive(), "the database call should still be blocked")
        t.join(30)
        # the blocked request got its own answer, an error naming the connection
        self.assertGreaterEqual(out["s"], CONNECT_TIMEOUT - 0.5)
        self.assertIn(out["r"].status, (400, 500), out["r"])
        self.assertTrue(out["r"].json()["errors"], out["r"])

    def audit_lines(self):
        with open(self.s.dir + "/audit.log", "rb") as f:
            return sum(1 for _ in f)

    def test_use_limited_token_and_wrapped_read(self):
        """Reads that write (a token's use count, a response wrapping token)
        leave the event thread and run once: each read is counted, and
        audited, exactly once."""
        r = self.s.put("sys/policies/acl/reader",
                       {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
        self.assertIn(r.status, (200, 204), r)
        r = self.s.post("auth/token/create", {"policies": ["reader"], "num_uses": 2})
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        before = self.audit_lines()
        for _ in range(2):
            r = self.s.get("secret/data/app", token=tok)
            self.assertEqual(r.status, 200, r)
        # two reads: a request and a response entry each, none twice
        self.assertEqual(self.audit_lines() - before, 4)
        self.assertEqual(self.s.get("secret/data/app", token=tok).status, 403)
        r = self.s.get("secret/data/app", headers={"X-Vault-Wrap-TTL": "60"})
        self.assertEqual(r.status, 200, r)
        wrap = r.json()["wrap_info"]["token"]
        r = self.s.post("sys/wrapping/unwrap", token=wrap)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["data"]["password"], "p1")

    def test_concurrent_writes_and_reads_all_answered(self):
        """Offloaded writes and inline reads interleave on one event thread
        with nothing lost: every acknowledged version is readable."""
        errors = []

        def writer(n):
            for i in range(20):
                r = self.s.post("secret/data/w%d" % n, {"data": {"v": i}})
                if r.status != 200:
                    errors.append(r)

        def reader():
            for _ in range(60):
                r = self.s.get("secret/data/app")
                if r.status != 200:
                    errors.append(r)

        ts = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        ts += [threading.Thread(target=reader) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        for n in range(4):
            j = self.s.get("secret/data/w%d" % n).json()
            self.assertEqual(j["data"]["data"]["v"], 19)
            self.assertEqual(j["data"]["metadata"]["version"], 20)


if __name__ == "__main__":
    unittest.main()
