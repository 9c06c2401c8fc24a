"""
test_rekey_verify_pgp.py - sys/rekey with require_verification
(sys/rekey/verify), pgp_keys on sys/init and sys/rekey (each share an
OpenPGP message that the real gpg decrypts), sys/rekey/backup, and the
CLI's `operator rekey -verify / -pgp-keys / -backup-retrieve`.
"""
import base64
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, Server

try:
    import hvac
except ImportError:  # pragma: no cover
    hvac = None

GPG = shutil.which("gpg")


class GpgHome:
    """A throwaway GNUPGHOME with RSA keys made by gpg --batch."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-gpg-")
        os.chmod(self.dir, 0o700)

    def run(self, *args, stdin=None):
        env = dict(os.environ, GNUPGHOME=self.dir)
        p = subprocess.run([GPG, "--batch", "--quiet", "--pinentry-mode", "loopback",
                            "--passphrase", ""] + list(args), env=env, input=stdin,
                           capture_output=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("gpg %s failed: %s" % (args, p.stderr.decode(errors="replace")))
        return p.stdout

    def new_key(self, name):
        spec = ("Key-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\n"
                "Name-Real: %s\nName-Email: %s@example.test\nExpire-Date: 0\n%%no-protection\n"
                "%%commit\n" % (name, name)).encode()
        self.run("--gen-key", stdin=spec)
        pub = self.run("--export", name + "@example.test")
        fpr = None
        out = self.run("--with-colons", "--fingerprint", name + "@example.test").decode()
        for line in out.splitlines():
            if line.startswith("fpr:"):
                fpr = line.split(":")[9].lower()
                break
        return base64.b64encode(pub).decode(), fpr

    def decrypt_b64(self, b64):
        return self.run("--decrypt", stdin=base64.b64decode(b64)).decode().strip()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class RekeyVerifyTest(unittest.TestCase):
    def setUp(self):
        self.s = Server().start()
        self.s.init_unseal(3, 2)

    def tearDown(self):
        self.s.cleanup()

    def test_verify_flow_new_keys_only_after_verification(self):
        s = self.s
        r = s.put("sys/rekey/init", {"secret_shares": 3, "secret_threshold": 2,
                                     "require_verification": True}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["verification_required"])
        nonce = r.json()["nonce"]
        for k in s.keys[:2]:
            r = s.put("sys/rekey/update", {"key": k, "nonce": nonce}, token="")
            self.assertEqual(r.status, 200, r)
        done = r.json()
        self.assertTrue(done["complete"])
        self.assertTrue(done["verification_required"])
        vnonce = done["verification_nonce"]
        self.assertTrue(vnonce)
        new = done["keys"]
        self.assertEqual(len(new), 3)
        # more old shares are refused while verification is pending
        r = s.put("sys/rekey/update", {"key": s.keys[0], "nonce": nonce}, token="")
        self.assertEqual(r.status, 400, r)
        st = s.get("sys/rekey/verify", token="").json()
        self.assertEqual((st["nonce"], st["t"], st["n"], st["progress"], st["started"]),
                         (vnonce, 2, 3, 0, True))
        # not yet in effect: a seal/unseal still needs the old keys...
        # (checked after verification below); a wrong nonce is refused
        r = s.put("sys/rekey/verify", {"key": new[0], "nonce": "wrong"}, token="")
        self.assertEqual(r.status, 400, r)
        self.assertIn("incorrect nonce", r.json()["errors"][0])
        r = s.put("sys/rekey/verify", {"key": new[0], "nonce": vnonce}, token="")
        self.assertEqual(r.json()["progress"], 1)
        # DELETE resets only the verification, with a new nonce
        r = s.delete("sys/rekey/verify", token="")
        self.assertEqual(r.status, 200, r)
        v2 = r.json()["nonce"]
        self.assertNotEqual(v2, vnonce)
        self.assertEqual(r.json()["progress"], 0)
        # the old keys still unseal now (the new ones are not in effect)
        r = s.put("sys/seal", token=s.root_token)
        self.assertEqual(r.status, 204, r)
        self.assertFalse(s.unseal(s.keys[:2])["sealed"])
        # sealing dropped the pending rekey; start over and verify this time
        r = s.put("sys/rekey/init", {"secret_shares": 3, "secret_threshold": 2,
                                     "require_verification": True}, token="")
        nonce = r.json()["nonce"]
        for k in s.keys[1:3]:
            r = s.put("sys/rekey/update", {"key": k, "nonce": nonce}, token="")
        done = r.json()
        new, vnonce = done["keys"], done["verification_nonce"]
        # wrong shares (the old ones) fail verification and reset progress
        s.put("sys/rekey/verify", {"key": s.keys[0], "nonce": vnonce}, token="")
        r = s.put("sys/rekey/verify", {"key": s.keys[1], "nonce": vnonce}, token="")
        self.assertEqual(r.status, 400, r)
        self.assertIn("verification failed", r.json()["errors"][0])
        vnonce = s.get("sys/rekey/verify", token="").json()["nonce"]
        s.put("sys/rekey/verify", {"key": new[2], "nonce": vnonce}, token="")
        r = s.put("sys/rekey/verify", {"key": new[0], "nonce": vnonce}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"nonce": vnonce, "complete": True})
        self.assertFalse(s.get("sys/rekey/init", token="").json()["started"])
        # now the new keys unseal and the old ones do not
        s.put("sys/seal", token=s.root_token)
        r = s.put("sys/unseal", {"key": s.keys[0]}, token="")
        r = s.put("sys/unseal", {"key": s.keys[1]}, token="")
        self.assertEqual(r.status, 400, r)
        self.assertFalse(s.unseal(new[1:3])["sealed"])

    @unittest.skipIf(hvac is None, "python3-hvac is not installed")
    def test_hvac_verify(self):
        s = self.s
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        st = c.sys.start_rekey(secret_shares=2, secret_threshold=2, require_verification=True)
        self.assertTrue(st["verification_required"])
        done = c.sys.rekey_multi(s.keys[:2], nonce=st["nonce"])
        self.assertTrue(done["verification_required"])
        prog = c.sys.read_rekey_verify_progress()
        self.assertEqual(prog["nonce"], done["verification_nonce"])
        c.sys.rekey_verify(done["keys"][0], nonce=prog["nonce"])
        r = c.sys.cancel_rekey_verify()
        self.assertEqual(r.json()["progress"] if hasattr(r, "json") else r["progress"], 0)
        prog = c.sys.read_rekey_verify_progress()
        r = c.sys.rekey_verify_multi(done["keys"], nonce=prog["nonce"])
        self.assertTrue(r["complete"])
        c.sys.seal()
        self.assertFalse(c.sys.submit_unseal_keys(done["keys"])["sealed"])

    def test_cli_verify(self):
        s = self.s
        env = dict(os.environ, VAULT_ADDR="http://" + s.addr, VAULT_TOKEN=s.root_token,
                   HOME=s.dir)

        def cli(*args):
            return subprocess.run([BIN] + list(args), env=env, capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL)

        p = cli("operator", "rekey", "-init", "-verify", "-key-shares=1", "-key-threshold=1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Verification Required", p.stdout)
        p = cli("operator", "rekey", s.keys[0])
        p = cli("operator", "rekey", s.keys[1])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Rekey verification required", p.stdout)
        newkey = [l.split(": ", 1)[1] for l in p.stdout.splitlines() if l.startswith("Key 1:")][0]
        p = cli("operator", "rekey", "-verify", "-status")
        self.assertIn("Verification Nonce", p.stdout)
        p = cli("operator", "rekey", "-verify", newkey)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Rekey verification was successful", p.stdout)
        s.put("sys/seal", token=s.root_token)
        self.assertFalse(s.unseal([newkey])["sealed"])


@unittest.skipIf(GPG is None, "gpg is not installed")
class PgpKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.g = GpgHome()
        cls.k1, cls.f1 = cls.g.new_key("alice")
        cls.k2, cls.f2 = cls.g.new_key("bob")

    @classmethod
    def tearDownClass(cls):
        cls.g.cleanup()

    def setUp(self):
        self.s = Server().start()

    def tearDown(self):
        self.s.cleanup()

    def test_init_with_pgp_keys_gpg_decrypts_and_unseals(self):
        s = self.s
        r = s.put("sys/init", {"secret_shares": 2, "secret_threshold": 2,
                               "pgp_keys": [self.k1, self.k2]}, token="")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        s.root_token = j["root_token"]
        # each share is an OpenPGP message; gpg gives back the hex share
        shares = [self.g.decrypt_b64(b) for b in j["keys_base64"]]
        self.assertEqual(len(shares[0]), 66)  # 33-byte Shamir share in hex
        self.assertEqual(bytes.fromhex(j["keys"][0]), base64.b64decode(j["keys_base64"][0]))
        self.assertFalse(s.unseal(shares)["sealed"])

    def test_cli_init_pgp_keys(self):
        s = self.s
        files = []
        for name, k in (("alice", self.k1), ("bob", self.k2)):
            files.append(os.path.join(s.dir, name + ".b64"))
            with open(files[-1], "w") as f:
                f.write(k + "\n")
        env = dict(os.environ, VAULT_ADDR="http://" + s.addr, HOME=s.dir)
        p = subprocess.run([BIN, "operator", "init", "-key-shares=2", "-key-threshold=2",
                            "-pgp-keys=" + ",".join(files)], env=env, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        enc = [l.split(": ", 1)[1] for l in p.stdout.splitlines() if l.startswith("Unseal Key ")]
        self.assertEqual(len(enc), 2, p.stdout)
        shares = [self.g.decrypt_b64(e) for e in enc]
        self.assertFalse(s.unseal(shares)["sealed"])

    def test_bad_pgp_keys_refused(self):
        s = self.s
        r = s.put("sys/init", {"secret_shares": 2, "secret_threshold": 2,
                               "pgp_keys": [self.k1]}, token="")
        self.assertEqual(r.status, 400, r)
        self.assertIn("incorrect number of PGP keys", r.json()["errors"][0])
        r = s.put("sys/init", {"secret_shares": 1, "secret_threshold": 1,
                               "pgp_keys": [base64.b64encode(b"not a key").decode()]}, token="")
        self.assertEqual(r.status, 400, r)
        self.assertIn("pgp_keys[0]", r.json()["errors"][0])
        self.assertFalse(s.get("sys/init", token="").json()["initialized"])

    def test_rekey_pgp_backup(self):
        s = self.s
        s.init_unseal(1, 1)
        r = s.get("sys/rekey/backup", token=s.root_token)
        self.assertEqual(r.status, 404, r)
        r = s.put("sys/rekey/init", {"secret_shares": 2, "secret_threshold": 2, "backup": True},
                  token="")
        self.assertEqual(r.status, 400, r)
        self.assertIn("without providing PGP keys", r.json()["errors"][0])
        r = s.put("sys/rekey/init", {"secret_shares": 2, "secret_threshold": 2, "backup": True,
                                     "pgp_keys": [self.k1, self.k2]}, token="")
        self.assertEqual(r.status, 200, r)
        st = r.json()
        self.assertEqual(st["pgp_fingerprints"], [self.f1, self.f2])
        self.assertTrue(st["backup"])
        r = s.put("sys/rekey/update", {"key": s.keys[0], "nonce": st["nonce"]}, token="")
        done = r.json()
        self.assertTrue(done["complete"], done)
        self.assertEqual(done["pgp_fingerprints"], [self.f1, self.f2])
        # the backup: fingerprint -> the same encrypted shares
        r = s.get("sys/rekey/backup", token=s.root_token)
        self.assertEqual(r.status, 200, r)
        b = r.json()["data"]
        self.assertEqual(b["nonce"], st["nonce"])
        self.assertEqual(b["keys"][self.f1], [done["keys"][0]])
        self.assertEqual(b["keys_base64"][self.f2], [done["keys_base64"][1]])
        # unauthenticated: refused
        self.assertEqual(s.get("sys/rekey/backup", token="").status, 403)
        shares = [self.g.decrypt_b64(x) for x in done["keys_base64"]]
        s.put("sys/seal", token=s.root_token)
        self.assertFalse(s.unseal(shares)["sealed"])
        r = s.delete("sys/rekey/backup", token=s.root_token)
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(s.get("sys/rekey/backup", token=s.root_token).status, 404)

    @unittest.skipIf(hvac is None, "python3-hvac is not installed")
    def test_hvac_and_cli_pgp(self):
        s = self.s
        s.init_unseal(1, 1)
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        keyfile = os.path.join(s.dir, "alice.b64")
        with open(keyfile, "w") as f:
            f.write(self.k1 + "\n")
        env = dict(os.environ, VAULT_ADDR="http://" + s.addr, VAULT_TOKEN=s.root_token,
                   HOME=s.dir)
        p = subprocess.run([BIN, "operator", "rekey", "-init", "-key-shares=1",
                            "-key-threshold=1", "-pgp-keys=" + keyfile, "-backup"],
                           env=env, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        prog = c.sys.read_rekey_progress()
        self.assertEqual(prog["pgp_fingerprints"], [self.f1])
        done = c.sys.rekey(s.keys[0], nonce=prog["nonce"])
        self.assertTrue(done["complete"])
        back = c.sys.read_backup_keys()
        self.assertIn(self.f1, back["data"]["keys"] if "data" in back else back["keys"])
        share = self.g.decrypt_b64(done["keys_base64"][0])
        c.sys.seal()
        self.assertFalse(c.sys.submit_unseal_key(share)["sealed"])
        p = subprocess.run([BIN, "operator", "rekey", "-backup-retrieve"], env=env,
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(self.f1, p.stdout)


if __name__ == "__main__":
    unittest.main()
