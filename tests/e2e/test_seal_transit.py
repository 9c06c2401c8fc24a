"""
test_seal_transit.py - the transit seal against a second Coffer running the
transit engine: init -> restart unsealed with no key typed; the seal token
renewed in the background (a 6 s token outlives many TTLs); a revoked token
keeps the server sealed with a clear error (no crash) until SIGHUP re-reads
a new token from the configuration; a transit key that cannot decrypt
(another key's ciphertext) is refused.
"""
import os
import signal
import time
import unittest

from harness import Server
from seal_util import unsealed, wait_for

POLICY = '''
path "transit/encrypt/autounseal" { capabilities = ["update"] }
path "transit/decrypt/autounseal" { capabilities = ["update"] }
'''


class TransitSeal(unittest.TestCase):
    def setUp(self):
        self.remote = Server(dev=True).start()
        r = self.remote
        self.assertEqual(r.post("sys/mounts/transit", {"type": "transit"}).status, 204)
        self.assertIn(r.post("transit/keys/autounseal", {}).status, (200, 204))
        self.assertEqual(r.put("sys/policies/acl/autounseal", {"policy": POLICY}).status, 204)
        self.servers = [r]

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def token(self, ttl="1h"):
        r = self.remote.post("auth/token/create", {"policies": ["autounseal"], "ttl": ttl,
                                                   "no_parent": True, "renewable": True})
        self.assertEqual(r.status, 200, r)
        return r.json()["auth"]["client_token"]

    def stanza(self, token):
        return ('seal "transit" {\n  address = "http://%s"\n  token = "%s"\n  key_name = "autounseal"\n'
                '  mount_path = "transit/"\n}\n' % (self.remote.addr, token))

    def server(self, token):
        s = Server(extra_config=self.stanza(token))
        self.servers.append(s)
        return s

    def set_token(self, s, token):
        with open(s.config_path) as f:
            txt = f.read()
        start = txt.index('token = "') + len('token = "')
        end = txt.index('"', start)
        with open(s.config_path, "w") as f:
            f.write(txt[:start] + token + txt[end:])

    def test_init_restart_and_token_renewal(self):
        tok = self.token(ttl="6s")
        s = self.server(tok).start()
        st = s.get("sys/seal-status", token="").json()
        self.assertEqual((st["type"], st["recovery_seal"]), ("transit", True))
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        s.root_token = r.json()["root_token"]
        self.assertTrue(unsealed(s))
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/x", {"v": "1"}).status, 204)
        # the seal token outlives its 6 s TTL: the seal renews it
        time.sleep(9)
        look = self.remote.post("auth/token/lookup", {"token": tok})
        self.assertEqual(look.status, 200, look)
        self.assertGreater(look.json()["data"]["ttl"], 0)
        # restart: unsealed by the transit server, no key typed
        s.stop()
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: unsealed(s), timeout=15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "1")

    def test_revoked_token_stays_sealed_until_sighup(self):
        tok = self.token()
        s = self.server(tok).start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        s.stop()
        self.assertEqual(self.remote.post("auth/token/revoke", {"token": tok}).status, 204)
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: "auto-unseal failed" in s.log(), timeout=15), s.log())
        self.assertIn("403", s.log())
        self.assertIn("revoked", s.log())
        self.assertNotIn(tok, s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertEqual(s.get("sys/health", token="").status, 503)
        self.assertIsNone(s.proc.poll())
        # a new token in the config + SIGHUP: the retry loop unseals
        self.set_token(s, self.token())
        s.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: unsealed(s), timeout=30), s.log())
        self.assertIn("transit seal: token re-read", s.log())

    def test_other_key_refused(self):
        tok = self.token()
        s = self.server(tok).start()
        self.assertEqual(s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1},
                               token="").status, 200)
        s.stop()
        # the transit key is rotated and its old versions disallowed
        self.remote.post("transit/keys/autounseal/rotate", {})
        r = self.remote.post("transit/keys/autounseal/config", {"min_decryption_version": 2})
        self.assertIn(r.status, (200, 204), r)
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: "auto-unseal failed" in s.log(), timeout=15), s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(s.proc.poll())


if __name__ == "__main__":
    unittest.main()
