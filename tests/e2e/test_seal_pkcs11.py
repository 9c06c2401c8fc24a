"""
test_seal_pkcs11.py - the pkcs11 seal with a real SoftHSM2 token made in a
temp directory (softhsm2-util; the AES key made by pkcs11-tool from opensc,
or by the seal itself with generate_key): init -> restart unsealed with no
key typed; a wrong PIN keeps the server sealed with CKR_PIN_INCORRECT in the
log (no crash); another token's key cannot open the wrapped root key; the
token absent at start (empty token directory) -> sealed and retried;
RSA-OAEP (CKM_RSA_PKCS_OAEP, SHA-256/MGF1-SHA256) with a key pair the seal
generates or pkcs11-tool made: init -> restart unsealed, a wrong key_label
or a too-small key keeps it sealed, an AES-GCM envelope is refused.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Server
from seal_util import unsealed, wait_for

MODULE = next((p for p in ("/usr/lib/softhsm/libsofthsm2.so",
                           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so") if os.path.exists(p)), None)


@unittest.skipIf(MODULE is None or shutil.which("softhsm2-util") is None, "softhsm2 missing (scripts/deps.sh)")
class Pkcs11Seal(unittest.TestCase):
    def setUp(self):
        self.hsm = tempfile.mkdtemp(prefix="softhsm-")
        os.mkdir(os.path.join(self.hsm, "tokens"))
        self.conf = os.path.join(self.hsm, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n" % self.hsm)
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "coffer-hsm", "--so-pin", "1234",
                        "--pin", "4321"], env=self.env, check=True, capture_output=True)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        shutil.rmtree(self.hsm, ignore_errors=True)

    def keygen(self, label):
        if shutil.which("pkcs11-tool") is None:
            self.skipTest("opensc missing")
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "coffer-hsm", "--login", "--pin", "4321",
                        "--keygen", "--key-type", "AES:32", "--label", label, "--id", "01"],
                       env=self.env, check=True, capture_output=True)

    def server(self, pin="4321", key_label="coffer-aes", generate=False, mechanism="CKM_AES_GCM", extra=""):
        st = ('seal "pkcs11" {\n  lib = "%s"\n  token_label = "coffer-hsm"\n  pin = "%s"\n  key_label = "%s"\n'
              '  mechanism = "%s"\n%s%s}\n' % (MODULE, pin, key_label, mechanism,
                                            '  generate_key = "true"\n' if generate else "", extra))
        s = Server(extra_config=st, env={"SOFTHSM2_CONF": self.conf})
        self.servers.append(s)
        return s

    def set_pin(self, s, pin):
        with open(s.config_path) as f:
            txt = f.read()
        a = txt.index('pin = "') + len('pin = "')
        with open(s.config_path, "w") as f:
            f.write(txt[:a] + pin + txt[txt.index('"', a):])

    def restart(self, s):
        s.stop()
        open(s.log_path, "w").close()
        s.start()
        return s

    def test_init_restart_unsealed_and_wrong_pin(self):
        self.keygen("coffer-aes")
        s = self.server().start()
        self.assertEqual(s.get("sys/seal-status", token="").json()["type"], "pkcs11")
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        s.root_token = r.json()["root_token"]
        self.assertTrue(unsealed(s))
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/x", {"v": "hsm"}).status, 204)
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "hsm")
        # wrong PIN: sealed, clear error, no crash, PIN not logged
        self.set_pin(s, "badpin-xq")
        self.restart(s)
        self.assertTrue(wait_for(lambda: "CKR_PIN_INCORRECT" in s.log(), 15), s.log())
        self.assertNotIn("badpin-xq", s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(s.proc.poll())

    def test_generate_key_and_other_key_refused(self):
        s = self.server(key_label="generated", generate=True).start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertIn("generated AES-256 key", s.log())
        s.stop()
        # point the server at a different key on the same token
        self.keygen("other")
        with open(s.config_path) as f:
            txt = f.read().replace('key_label = "generated"', 'key_label = "other"').replace(
                '  generate_key = "true"\n', "")
        with open(s.config_path, "w") as f:
            f.write(txt)
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: "invalid key" in s.log(), 15), s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(s.proc.poll())

    def rsa_keygen(self, label, bits, kid):
        if shutil.which("pkcs11-tool") is None:
            self.skipTest("opensc missing")
        subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "coffer-hsm", "--login", "--pin", "4321",
                        "--keypairgen", "--key-type", "rsa:%d" % bits, "--label", label, "--id", kid],
                       env=self.env, check=True, capture_output=True)

    def relabel(self, s, old, new):
        with open(s.config_path) as f:
            txt = f.read()
        with open(s.config_path, "w") as f:
            f.write(txt.replace(old, new))

    # SoftHSM2 2.6 implements OAEP with SHA-1 only ("hashAlg must be
    # CKM_SHA_1"): the default SHA-256 is refused by the module, and says so
    def test_rsa_oaep_sha256_refused_by_softhsm_26_with_a_clear_error(self):
        s = self.server(key_label="coffer-rsa", generate=True, mechanism="CKM_RSA_PKCS_OAEP").start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertNotEqual(r.status, 200)
        self.assertIn("RSA-OAEP with sha256 encryption failed: CKR_ARGUMENTS_BAD", r.body.decode())
        self.assertIn("rsa_oaep_hash", r.body.decode())
        self.assertIsNone(s.proc.poll())

    def test_rsa_oaep_generated_init_restart_wrong_label(self):
        s = self.server(key_label="coffer-rsa", generate=True, mechanism="CKM_RSA_PKCS_OAEP",
                        extra='  rsa_oaep_hash = "sha1"\n').start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r.body.decode() + s.log())
        s.root_token = r.json()["root_token"]
        self.assertIn('generated RSA-2048 key pair "coffer-rsa"', s.log())
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/x", {"v": "rsa"}).status, 204)
        blob = __import__("seal_util").file_get(os.path.join(s.dir, "data"), "core/pkcs11-root")
        env = __import__("json").loads(blob)
        self.assertEqual(env["mechanism"], "CKM_RSA_PKCS_OAEP")
        self.assertEqual(len(__import__("base64").b64decode(env["wrapped_key"])), 256)
        self.assertNotIn("iv", env)
        self.assertEqual(env["oaep_hash"], "sha1")
        # the pair is on the token: a private key that is sensitive and never leaves it
        out = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", "coffer-hsm", "--login", "--pin",
                              "4321", "--list-objects"], env=self.env, capture_output=True, text=True).stdout
        self.assertIn("Private Key Object; RSA", out)
        self.assertIn("sensitive", out)
        self.assertNotIn("extractable", out.split("Private Key Object")[1].split("Object;")[0].replace(
            "never extractable", ""))
        # restart without generate_key: unsealed by the token's private key
        self.relabel(s, '  generate_key = "true"\n', "")
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "rsa")
        # a wrong key_label: fails closed, stays sealed, no crash
        self.relabel(s, 'key_label = "coffer-rsa"', 'key_label = "no-such-rsa"')
        self.restart(s)
        self.assertTrue(wait_for(lambda: 'no RSA key pair labelled "no-such-rsa"' in s.log(), 15), s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(s.proc.poll())
        # another RSA pair on the token cannot open the wrapped data key
        self.rsa_keygen("other-rsa", 2048, "07")
        self.relabel(s, 'key_label = "no-such-rsa"', 'key_label = "other-rsa"')
        self.restart(s)
        self.assertTrue(wait_for(lambda: "invalid key" in s.log(), 15), s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        # the AES-GCM mechanism on an RSA-OAEP envelope: refused, named
        self.keygen("coffer-aes")
        self.relabel(s, 'key_label = "other-rsa"', 'key_label = "coffer-aes"')
        self.relabel(s, 'mechanism = "CKM_RSA_PKCS_OAEP"', 'mechanism = "CKM_AES_GCM"')
        self.restart(s)
        self.assertTrue(wait_for(lambda: "was wrapped with CKM_RSA_PKCS_OAEP" in s.log(), 15), s.log())
        self.assertIsNone(s.proc.poll())

    def test_rsa_oaep_existing_pair_by_number_and_small_key_refused(self):
        self.rsa_keygen("small-rsa", 1024, "02")
        self.rsa_keygen("made-rsa", 3072, "03")
        s = self.server(key_label="small-rsa", mechanism="0x0009", extra='  rsa_oaep_hash = "sha1"\n').start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertNotEqual(r.status, 200)
        self.assertIn("has 1024 bits; at least 2048", r.body.decode() + s.log())
        self.relabel(s, 'key_label = "small-rsa"', 'key_label = "made-rsa"')
        self.restart(s)
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r.body.decode())
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())

    def test_token_absent_then_present(self):
        self.keygen("coffer-aes")
        s = self.server().start()
        self.assertEqual(s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="").status, 200)
        s.stop()
        tokens = os.path.join(self.hsm, "tokens")
        aside = os.path.join(self.hsm, "aside")
        os.rename(tokens, aside)
        os.mkdir(tokens)
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: 'no token labelled "coffer-hsm"' in s.log(), 15), s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        os.rmdir(tokens)
        os.rename(aside, tokens)
        # SoftHSM reads its token directory at C_Initialize: a restart picks it up
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())


if __name__ == "__main__":
    unittest.main()
