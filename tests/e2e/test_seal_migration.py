"""
test_seal_migration.py - seal migration end to end, one data directory
through every step: Shamir -> awskms (`unseal -migrate` with the old unseal
keys, which become the recovery keys; interrupted once by KMS being down and
resumed), awskms -> transit (auto -> auto, `disabled = "true"` on the old
stanza, the recovery keys authorise it), transit -> Shamir (the recovery
keys become the unseal keys). The secret written at the start is read after
every step and every restart.
"""
import os
import shutil
import tempfile
import unittest

from harness import BIN, Server
from seal_util import awskms_stanza, kms_env, start_kms, unsealed, wait_for

POLICY = '''
path "transit/encrypt/autounseal" { capabilities = ["update"] }
path "transit/decrypt/autounseal" { capabilities = ["update"] }
'''


class SealMigration(unittest.TestCase):
    def setUp(self):
        self.kdir = tempfile.mkdtemp(prefix="kms-peer-")
        self.kms, _ = start_kms(self.kdir)
        self.remote = Server(dev=True).start()
        self.remote.post("sys/mounts/transit", {"type": "transit"})
        self.remote.post("transit/keys/autounseal", {})
        self.remote.put("sys/policies/acl/autounseal", {"policy": POLICY})
        self.ttoken = self.remote.post("auth/token/create", {"policies": ["autounseal"]}).json()["auth"]["client_token"]
        self.s = Server(env=kms_env(self.kms))
        with open(self.s.config_path) as f:
            self.base = f.read()

    def tearDown(self):
        self.s.cleanup()
        self.remote.cleanup()
        self.kms.stop()
        shutil.rmtree(self.kdir, ignore_errors=True)

    def transit(self, disabled=False):
        return ('seal "transit" {\n  address = "http://%s"\n  token = "%s"\n  key_name = "autounseal"\n%s}\n'
                % (self.remote.addr, self.ttoken, '  disabled = "true"\n' if disabled else ""))

    def reconfigure(self, seals):
        self.s.stop()
        with open(self.s.config_path, "w") as f:
            f.write(self.base + seals)
        open(self.s.log_path, "w").close()
        self.s.start()

    def status(self):
        return self.s.get("sys/seal-status", token="").json()

    def migrate(self, keys):
        r = None
        for k in keys:
            r = self.s.put("sys/unseal", {"key": k, "migrate": True}, token="")
        return r

    def check_secret(self):
        r = self.s.get("kv/app")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["pw"], "s3cret")

    def test_shamir_to_awskms_to_transit_to_shamir(self):
        s = self.s.start()
        s.init(3, 2)
        s.unseal(s.keys[:2])
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/app", {"pw": "s3cret"}).status, 204)
        keys = s.keys

        # ---- Shamir -> awskms, first with KMS down: fails, stays resumable
        port = self.kms.port
        self.kms.stop()
        self.reconfigure(awskms_stanza(self.kms))
        st = self.status()
        self.assertTrue(st["sealed"])
        self.assertTrue(st["migration"])
        self.assertEqual((st["type"], st["t"], st["n"]), ("awskms", 2, 3))
        self.assertTrue(wait_for(lambda: "seal migration from shamir to awskms is pending" in s.log(), 10), s.log())
        r = s.put("sys/unseal", {"key": keys[0]}, token="")
        self.assertEqual(r.status, 400)
        self.assertIn("migrate", r.body.decode())
        r = self.migrate(keys[:2])
        self.assertGreaterEqual(r.status, 500, r)
        self.assertIn("could not reach", r.body.decode())
        self.assertTrue(self.status()["sealed"])
        self.assertTrue(self.status()["migration"])
        self.kms.port = port
        self.kms.start()
        r = self.migrate(keys[1:3])
        self.assertEqual(r.status, 200, r)
        st = r.json()
        self.assertFalse(st["sealed"])
        self.assertFalse(st["migration"])
        self.assertTrue(st["recovery_seal"])
        self.check_secret()
        # restart: auto-unsealed; the old unseal keys are now recovery keys
        self.reconfigure(awskms_stanza(self.kms))
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.check_secret()
        a = s.put("sys/generate-root/attempt", {}, token="").json()
        s.put("sys/generate-root/update", {"key": keys[0], "nonce": a["nonce"]}, token="")
        r = s.put("sys/generate-root/update", {"key": keys[2], "nonce": a["nonce"]}, token="").json()
        self.assertTrue(r["complete"])

        # ---- awskms -> transit (auto -> auto) with the recovery keys
        self.reconfigure(awskms_stanza(self.kms, extra='  disabled = "true"\n') + self.transit())
        st = self.status()
        self.assertTrue(st["sealed"] and st["migration"])
        self.assertEqual(st["type"], "transit")
        r = self.migrate(["00" * 32, keys[0]])  # a wrong key: refused, nothing changes
        self.assertEqual(r.status, 400, r)
        self.assertTrue(self.status()["migration"])
        r = self.migrate(keys[:2])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["sealed"])
        self.check_secret()
        self.reconfigure(self.transit())
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(self.status()["type"], "transit")
        self.check_secret()

        # ---- transit -> Shamir: the recovery keys become the unseal keys
        self.reconfigure(self.transit(disabled=True))
        st = self.status()
        self.assertTrue(st["sealed"] and st["migration"])
        self.assertEqual((st["type"], st["recovery_seal"]), ("shamir", False))
        r = self.migrate(keys[:2])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["sealed"])
        self.reconfigure("")
        st = self.status()
        self.assertTrue(st["sealed"])
        self.assertFalse(st["migration"])
        self.assertEqual((st["type"], st["t"], st["n"]), ("shamir", 2, 3))
        s.unseal(keys[1:3])
        self.check_secret()


if __name__ == "__main__":
    unittest.main()
