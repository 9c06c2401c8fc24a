"""
test_pki_tidy.py - the PKI engine's housekeeping through the real binary:
config/auto-tidy run for real by the server's periodic hook (the server
setting `periodic_interval = "1s"` instead of the 60 s default), seen from
outside: expired certificates gone from `certs` and `certs/revoked`, the
CRL rebuilt without them (`openssl crl`), `tidy-status` reporting the run
with Vault's fields; and start-up (restart + unseal) that does not read the
stored certificates: mounting and unsealing with 20,000 stored certificates
takes about as long as with none.
"""
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Server


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, input=input)


def dash(serial):
    return serial.replace(":", "-")


class AutoTidyTest(unittest.TestCase):
    def setUp(self):
        self.s = Server(storage="file", extra_config='periodic_interval = "1s"\n').start()
        self.s.init_unseal()
        self.tmp = tempfile.mkdtemp(prefix="pki-tidy-e2e-")

    def tearDown(self):
        self.s.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def post_ok(self, path, body):
        r = self.s.post(path, body)
        self.assertIn(r.status, (200, 204), r)
        return r.json() if r.status == 200 else None

    def issue(self, ttl):
        d = self.post_ok("pki/issue/web", {"common_name": "a.example.com", "ttl": ttl})["data"]
        return d["serial_number"]

    def test_auto_tidy_removes_expired_from_the_periodic_hook(self):
        self.post_ok("sys/mounts/pki", {"type": "pki"})
        self.post_ok("pki/root/generate/internal",
                     {"common_name": "Tidy Root", "ttl": "8760h", "key_type": "ec"})
        self.post_ok("pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                       "key_type": "ec", "not_before_duration": "1s"})
        expired, expired_revoked = self.issue("2s"), self.issue("2s")
        live, live_revoked = self.issue("1h"), self.issue("1h")
        for s in (expired_revoked, live_revoked):
            self.post_ok("pki/revoke", {"serial_number": s})
        listed = self.s.list("pki/certs").json()["data"]["keys"]
        for s in (expired, expired_revoked, live, live_revoked):
            self.assertIn(dash(s), listed)
        # Vault's refusals stay: a safety_buffer under 1s, nothing to tidy
        r = self.s.post("pki/config/auto-tidy", {"enabled": True, "tidy_cert_store": True,
                                                 "safety_buffer": "0s"})
        self.assertEqual(r.status, 400, r)
        t0 = time.time()
        self.post_ok("pki/config/auto-tidy", {"enabled": True, "tidy_cert_store": True,
                                              "tidy_revoked_certs": True, "interval_duration": "5s",
                                              "safety_buffer": "1s"})
        cfg = self.s.get("pki/config/auto-tidy").json()["data"]
        self.assertEqual((cfg["enabled"], cfg["interval_duration"], cfg["safety_buffer"]),
                         (True, 5, 1))
        # no request asks for a tidy from here on: the periodic hook runs it
        # once interval_duration has passed since the mount was loaded
        st = None
        while time.time() - t0 < 30:
            st = self.s.get("pki/tidy-status").json()["data"]
            if st["state"] == "Finished":
                break
            time.sleep(0.25)
        self.assertEqual(st["state"], "Finished", st)
        for k in ("time_started", "time_finished", "cert_store_deleted_count",
                  "revoked_cert_deleted_count", "safety_buffer", "tidy_cert_store",
                  "tidy_revoked_certs", "last_auto_tidy_finished"):
            self.assertIn(k, st)
        self.assertEqual(st["cert_store_deleted_count"], 1, st)
        self.assertEqual(st["revoked_cert_deleted_count"], 1, st)
        self.assertTrue(st["tidy_cert_store"] and st["tidy_revoked_certs"])
        self.assertIsNone(st["error"])
        self.assertGreaterEqual(time.time() - t0, 3.0)  # not before the certificates expired
        listed = self.s.list("pki/certs").json()["data"]["keys"]
        self.assertNotIn(dash(expired), listed)
        self.assertNotIn(dash(expired_revoked), listed)
        self.assertIn(dash(live), listed)
        self.assertIn(dash(live_revoked), listed)
        revoked = self.s.list("pki/certs/revoked").json()["data"]["keys"]
        self.assertEqual(revoked, [dash(live_revoked)])
        # the CRL was rebuilt without the tidied revocation
        crl = self.s.get("pki/crl/pem", token="").body.decode()
        path = os.path.join(self.tmp, "crl.pem")
        with open(path, "w") as f:
            f.write(crl + "\n")
        text = openssl("crl", "-in", path, "-noout", "-text")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(live_revoked.replace(":", "").upper(), text.stdout)
        self.assertNotIn(expired_revoked.replace(":", "").upper(), text.stdout)
        # a disabled auto-tidy does not run again
        self.post_ok("pki/config/auto-tidy", {"enabled": False})
        first = st["time_started"]
        time.sleep(7)
        self.assertEqual(self.s.get("pki/tidy-status").json()["data"]["time_started"], first)
        self.assertIn(self.s.get("sys/health", token="").status, (200,))


class StartupIndependentOfCertsTest(unittest.TestCase):
    """Unsealing mounts the PKI engine, which reads its issuers and keys
    only, never certs/ or revoked/: the time from the unseal request to the
    first answer of the engine is the same with 20,000 stored certificates
    (1,000 of them revoked) as with none, in the same run."""

    N = 20000
    REVOKE = 1000

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def server(self):
        s = Server(storage="file").start()
        s.init_unseal()
        self.servers.append(s)
        for path, body in (("sys/mounts/pki", {"type": "pki"}),
                           ("pki/root/generate/internal",
                            {"common_name": "Root", "ttl": "8760h", "key_type": "ec"}),
                           ("pki/roles/web", {"allowed_domains": "example.com",
                                              "allow_subdomains": True, "key_type": "ec",
                                              "ttl": "72h"})):
            r = s.post(path, body)
            self.assertIn(r.status, (200, 204), r)
        return s

    def fill(self, s, n, revoke):
        serials, errors = [], []

        def worker(count):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            h = {"X-Vault-Token": s.root_token, "Content-Type": "application/json"}
            body = json.dumps({"common_name": "a.example.com"})
            try:
                for _ in range(count):
                    c.request("POST", "/v1/pki/issue/web", body=body, headers=h)
                    r = c.getresponse()
                    data = r.read()
                    if r.status != 200:
                        errors.append((r.status, data[:200]))
                        return
                    serials.append(json.loads(data)["data"]["serial_number"])
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(n // 4,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for sn in serials[:revoke]:
            r = s.post("pki/revoke", {"serial_number": sn})
            self.assertEqual(r.status, 200, r)
        return serials

    def unseal_to_first_answer(self, s):
        """restart, then seconds from the unseal request to pki/cert/ca"""
        s.stop()
        s.start()
        t0 = time.monotonic()
        s.unseal(s.keys[:1])
        while True:
            r = s.get("pki/cert/ca", token="")
            if r.status == 200:
                return time.monotonic() - t0
            self.assertLess(time.monotonic() - t0, 30, r)
            time.sleep(0.001)

    def test_unseal_time_does_not_grow_with_stored_certificates(self):
        empty, full = self.server(), self.server()
        t0 = time.monotonic()
        serials = self.fill(full, self.N, self.REVOKE)
        fill_s = time.monotonic() - t0
        listed = full.list("pki/certs").json()["data"]["keys"]
        self.assertGreaterEqual(len(listed), self.N)  # + the CA's own
        t_empty, t_full = [], []
        for _ in range(5):
            t_empty.append(self.unseal_to_first_answer(empty))
            t_full.append(self.unseal_to_first_answer(full))
        me, mf = statistics.median(t_empty), statistics.median(t_full)
        t1 = time.monotonic()
        self.assertGreaterEqual(len(full.list("pki/certs").json()["data"]["keys"]), self.N)
        list_s = time.monotonic() - t1
        print("\n  unseal -> first PKI answer: 0 certs %.1f ms, %d certs %.1f ms; one LIST of "
              "pki/certs %.1f ms (fill %.1f s, %.0f issue/s over HTTP)"
              % (me * 1e3, len(serials), mf * 1e3, list_s * 1e3, fill_s, len(serials) / fill_s))
        # a generous ratio, with less slack than half of one listing of the
        # certificates (let alone reading them) would add at start-up
        self.assertLess(mf, 3 * me + list_s / 2, (t_empty, t_full, list_s))
        # and the data is all there after the restarts
        self.assertEqual(len(full.list("pki/certs/revoked").json()["data"]["keys"]), self.REVOKE)
        r = full.get("pki/cert/" + serials[-1], token="")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
