"""
test_transit.py - the transit secrets engine driven through the real binary:
hvac's client.secrets.transit.* calls, raw HTTP for Vault's error messages
and batch status codes, the `coffer` CLI, signatures checked by the openssl
command line from the exported public keys, HMACs checked with Python's
hmac, AES-GCM ciphertexts opened (and made) with the Python `cryptography`
package from the exported key (Vault's byte layout and its HKDF derivation),
backup in one server and restore in another, and keys surviving a restart.
"""
import base64
import hashlib
import hmac as pyhmac
import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, Server

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover - deps.sh installs python3-hvac
    hvac = None

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:  # pragma: no cover
    AESGCM = None


def b64(data):
    return base64.b64encode(data).decode()


def unb64(s):
    return base64.b64decode(s)


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class TransitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(dev=True).start()
        cls.c = hvac.Client(url="http://%s" % cls.s.addr, token="root", timeout=60)
        cls.c.sys.enable_secrets_engine("transit", path="transit")
        cls.tmp = tempfile.mkdtemp(prefix="transit-e2e-")

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp])

    @property
    def t(self):
        return self.c.secrets.transit

    def post(self, path, body):
        return self.s.post(path, body, token="root")

    def openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), cwd=self.tmp, capture_output=True)
        return p.returncode, p.stdout + p.stderr

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    # -- hvac --

    def test_hvac_encrypt_decrypt_rotate_rewrap(self):
        t = self.t
        t.create_key("hv")
        ct = t.encrypt_data("hv", b64(b"attack at dawn"))["data"]["ciphertext"]
        self.assertTrue(ct.startswith("vault:v1:"))
        self.assertEqual(unb64(t.decrypt_data("hv", ct)["data"]["plaintext"]), b"attack at dawn")
        t.rotate_key("hv")
        self.assertEqual(t.read_key("hv")["data"]["latest_version"], 2)
        re = t.rewrap_data("hv", ct)["data"]["ciphertext"]
        self.assertTrue(re.startswith("vault:v2:"))
        self.assertEqual(unb64(t.decrypt_data("hv", re)["data"]["plaintext"]), b"attack at dawn")
        # min_decryption_version blocks the old ciphertext, not the new one
        t.update_key_configuration("hv", min_decryption_version=2)
        with self.assertRaises(hexc.InvalidRequest) as cm:
            t.decrypt_data("hv", ct)
        self.assertIn("disallowed by policy (too old)", str(cm.exception))
        t.decrypt_data("hv", re)
        self.assertIn("hv", t.list_keys()["data"]["keys"])
        # batch through hvac, in order
        items = [{"plaintext": b64(("item %d" % i).encode())} for i in range(20)]
        res = t.encrypt_data("hv", plaintext="", batch_input=items)["data"]["batch_results"]
        dec = t.decrypt_data("hv", ciphertext="", batch_input=[{"ciphertext": r["ciphertext"]} for r in res])
        self.assertEqual([unb64(r["plaintext"]) for r in dec["data"]["batch_results"]],
                         [("item %d" % i).encode() for i in range(20)])
        # deletion gate
        with self.assertRaises(hexc.InvalidRequest) as cm:
            t.delete_key("hv")
        self.assertIn("deletion is not allowed for this key", str(cm.exception))
        t.update_key_configuration("hv", deletion_allowed=True)
        t.delete_key("hv")
        with self.assertRaises(hexc.InvalidPath):
            t.read_key("hv")

    def test_hvac_upsert_datakey_random_hash(self):
        t = self.t
        ct = t.encrypt_data("ups", b64(b"x"))["data"]["ciphertext"]  # creates the key
        self.assertEqual(t.read_key("ups")["data"]["type"], "aes256-gcm96")
        self.assertEqual(unb64(t.decrypt_data("ups", ct)["data"]["plaintext"]), b"x")
        dk = t.generate_data_key("ups", key_type="plaintext", bits=256)["data"]
        self.assertEqual(len(unb64(dk["plaintext"])), 32)
        self.assertEqual(t.decrypt_data("ups", dk["ciphertext"])["data"]["plaintext"], dk["plaintext"])
        rnd = t.generate_random_bytes(n_bytes=20, output_format="hex")["data"]["random_bytes"]
        self.assertEqual(len(bytes.fromhex(rnd)), 20)
        s = t.hash_data(b64(b"abc"), algorithm="sha2-512", output_format="hex")["data"]["sum"]
        self.assertEqual(s, hashlib.sha512(b"abc").hexdigest())

    def test_hmac_matches_python(self):
        t = self.t
        t.create_key("mac", exportable=True)
        msg = b"the message"
        got = t.generate_hmac("mac", b64(msg), algorithm="sha2-256")["data"]["hmac"]
        key = unb64(self.c.secrets.transit.export_key("mac", "hmac-key", version="latest")["data"]["keys"]["1"])
        want = "vault:v1:" + b64(pyhmac.new(key, msg, hashlib.sha256).digest())
        self.assertEqual(got, want)
        self.assertTrue(t.verify_signed_data("mac", b64(msg), hmac=got)["data"]["valid"])
        self.assertFalse(t.verify_signed_data("mac", b64(b"other"), hmac=got)["data"]["valid"])

    # -- Vault's byte layout and derivation, from outside --

    @unittest.skipIf(AESGCM is None, "python3-cryptography is not installed")
    def test_aes_gcm_layout_and_hkdf_derivation(self):
        t = self.t
        t.create_key("lay", exportable=True)
        key = unb64(t.export_key("lay", "encryption-key")["data"]["keys"]["1"])
        ct = t.encrypt_data("lay", b64(b"layout"))["data"]["ciphertext"]
        raw = unb64(ct.split(":", 2)[2])
        self.assertEqual(AESGCM(key).decrypt(raw[:12], raw[12:], None), b"layout")
        # a ciphertext made outside (as Vault would) decrypts in coffer
        nonce = os.urandom(12)
        outside = "vault:v1:" + b64(nonce + AESGCM(key).encrypt(nonce, b"from outside", None))
        self.assertEqual(unb64(t.decrypt_data("lay", outside)["data"]["plaintext"]), b"from outside")
        # derived keys: HKDF-SHA256(key, salt empty, info = context)
        t.create_key("der", derived=True, exportable=True)
        base = unb64(t.export_key("der", "encryption-key")["data"]["keys"]["1"])
        ctx = b"tenant-7"
        dk = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ctx).derive(base)
        nonce = os.urandom(12)
        outside = "vault:v1:" + b64(nonce + AESGCM(dk).encrypt(nonce, b"derived", None))
        r = t.decrypt_data("der", outside, context=b64(ctx))
        self.assertEqual(unb64(r["data"]["plaintext"]), b"derived")
        # convergent: the nonce is HMAC-SHA256(derived[32:64], plaintext)[:12]
        t.create_key("conv", derived=True, convergent_encryption=True, exportable=True)
        base = unb64(t.export_key("conv", "encryption-key")["data"]["keys"]["1"])
        both = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=ctx).derive(base)
        nonce = pyhmac.new(both[32:], b"same", hashlib.sha256).digest()[:12]
        want = "vault:v1:" + b64(nonce + AESGCM(both[:32]).encrypt(nonce, b"same", None))
        a = t.encrypt_data("conv", b64(b"same"), context=b64(ctx))["data"]["ciphertext"]
        b = t.encrypt_data("conv", b64(b"same"), context=b64(ctx))["data"]["ciphertext"]
        self.assertEqual(a, b)
        self.assertEqual(a, want)

    # -- signatures checked by openssl --

    def sign_and_check(self, name, key_type, hash_alg, verify_args, **sign_kw):
        t = self.t
        t.create_key(name, key_type=key_type)
        data = b"signed by coffer " + key_type.encode()
        kw = dict(sign_kw)
        if hash_alg:
            kw["hash_algorithm"] = hash_alg
        sig = t.sign_data(name, b64(data), **kw)["data"]["signature"]
        self.assertTrue(t.verify_signed_data(name, b64(data), signature=sig, **kw)["data"]["valid"])
        # hvac has no "public-key" export type: raw HTTP
        pub = self.s.get("transit/export/public-key/%s/1" % name, token="root").json()["data"]["keys"]["1"]
        read_pub = t.read_key(name)["data"]["keys"]["1"]["public_key"]
        self.assertEqual(pub, read_pub)
        if key_type == "ed25519":  # raw 32 bytes -> SPKI PEM
            der = bytes.fromhex("302a300506032b6570032100") + unb64(pub)
            pub = "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % b64(der)
        pf = self.write(name + ".pub", pub)
        df = self.write(name + ".dat", data)
        sf = self.write(name + ".sig", unb64(sig.split(":", 2)[2]))
        rc, out = self.openssl(*[a.format(pub=pf, dat=df, sig=sf) for a in verify_args])
        self.assertEqual(rc, 0, out)
        # and a different message does not verify
        self.write(name + ".dat", data + b"!")
        rc, out = self.openssl(*[a.format(pub=pf, dat=df, sig=sf) for a in verify_args])
        self.assertNotEqual(rc, 0, out)

    def test_openssl_verifies_ecdsa(self):
        self.sign_and_check("ec256", "ecdsa-p256", "sha2-256",
                            ["dgst", "-sha256", "-verify", "{pub}", "-signature", "{sig}", "{dat}"])
        self.sign_and_check("ec384", "ecdsa-p384", "sha2-384",
                            ["dgst", "-sha384", "-verify", "{pub}", "-signature", "{sig}", "{dat}"])
        self.sign_and_check("ec521", "ecdsa-p521", "sha2-512",
                            ["dgst", "-sha512", "-verify", "{pub}", "-signature", "{sig}", "{dat}"])

    def test_openssl_verifies_ed25519(self):
        self.sign_and_check("ed", "ed25519", None,
                            ["pkeyutl", "-verify", "-pubin", "-inkey", "{pub}", "-rawin",
                             "-in", "{dat}", "-sigfile", "{sig}"])

    def test_openssl_verifies_rsa(self):
        self.sign_and_check("rsapss", "rsa-2048", "sha2-256",
                            ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                             "-sigopt", "rsa_pss_saltlen:-2", "-verify", "{pub}",
                             "-signature", "{sig}", "{dat}"])
        self.sign_and_check("rsa15", "rsa-3072", "sha2-512",
                            ["dgst", "-sha512", "-verify", "{pub}", "-signature", "{sig}", "{dat}"],
                            signature_algorithm="pkcs1v15")

    @unittest.skipIf(AESGCM is None, "python3-cryptography is not installed")
    def test_concurrent_first_use_of_cached_keys(self):
        """Eight connections at once on a version nobody has used yet: the
        signing key is parsed and cached under that race, the per-thread
        scratch and nonce pools serve every connection, and every answer is
        right (signatures checked with the exported public key, ciphertexts
        opened with the exported AES key)."""
        import threading
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        self.assertIn(self.post("transit/keys/race-ec", {"type": "ecdsa-p256"}).status, (200, 204))
        self.assertIn(self.post("transit/keys/race-ec/rotate", {}).status, (200, 204))
        self.assertIn(self.post("transit/keys/race-aes", {"exportable": True}).status, (200, 204))
        results, errors = [], []

        def worker(n):
            try:
                for i in range(10):
                    msg = ("worker %d message %d" % (n, i)).encode()
                    r = self.post("transit/sign/race-ec", {"input": b64(msg)})
                    self.assertEqual(r.status, 200, r)
                    sig = r.json()["data"]["signature"]
                    pt = os.urandom(1024 + n * 997 + i)  # sizes around and past 1 KiB
                    r = self.post("transit/encrypt/race-aes", {"plaintext": b64(pt)})
                    self.assertEqual(r.status, 200, r)
                    ct = r.json()["data"]["ciphertext"]
                    r = self.post("transit/decrypt/race-aes", {"ciphertext": ct})
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(unb64(r.json()["data"]["plaintext"]), pt)
                    results.append((msg, sig, pt, ct))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 80)
        pub = load_pem_public_key(self.t.read_key("race-ec")["data"]["keys"]["2"]["public_key"].encode())
        key = unb64(self.t.export_key("race-aes", "encryption-key")["data"]["keys"]["1"])
        nonces = set()
        for msg, sig, pt, ct in results:
            self.assertTrue(sig.startswith("vault:v2:"), sig)
            try:
                pub.verify(unb64(sig.split(":", 2)[2]), msg, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                self.fail("signature of %r does not verify" % msg)
            raw = unb64(ct.split(":", 2)[2])
            nonces.add(raw[:12])
            self.assertEqual(AESGCM(key).decrypt(raw[:12], raw[12:], None), pt)
        self.assertEqual(len(nonces), 80)  # every nonce fresh

    # -- raw HTTP: Vault's messages and batch status codes --

    def test_bad_input_messages(self):
        self.post("transit/keys/bad", {})
        cases = [
            ("transit/decrypt/bad", {"ciphertext": "nope"}, "invalid ciphertext: no prefix"),
            ("transit/decrypt/bad", {"ciphertext": "vault:v7:AAAA"}, "invalid ciphertext: version is too new"),
            ("transit/encrypt/bad", {"plaintext": "@@@"}, "illegal base64 data at input byte 0"),
            ("transit/encrypt/bad", {"plaintext": "", "key_version": 5},
             "requested version for encryption is higher than the latest key version"),
            ("transit/decrypt/none", {"ciphertext": "vault:v1:AAAA"}, "encryption key not found"),
            ("transit/sign/bad", {"input": "AAAA"}, "key type aes256-gcm96 does not support signing"),
            ("transit/keys/bad2", {"type": "des"}, "unknown key type des"),
            ("transit/encrypt/bad", {"batch_input": []}, "missing batch input to process"),
            ("transit/random/999999", {}, "'bytes' should be less than 131072"),
        ]
        for path, body, msg in cases:
            r = self.post(path, body)
            self.assertEqual(r.status, 400, (path, r))
            self.assertEqual(r.json()["errors"], [msg], path)
        r = self.post("transit/encrypt/bad", {"batch_input": [{"plaintext": "%"} for _ in range(100001)]})
        self.assertEqual(r.status, 400)
        self.assertIn("the maximum is 100000", r.json()["errors"][0])

    def test_batch_status_codes(self):
        ok = {"plaintext": b64(b"ok")}
        bad = {"plaintext": "!!", "reference": "second"}
        r = self.post("transit/encrypt/bs", {"batch_input": [ok, bad, ok]})
        self.assertEqual(r.status, 400)
        res = r.json()["data"]["batch_results"]
        self.assertEqual(len(res), 3)
        self.assertIn("ciphertext", res[0])
        self.assertEqual(res[1]["reference"], "second")
        self.assertIn("illegal base64", res[1]["error"])
        self.assertIn("ciphertext", res[2])
        r = self.post("transit/encrypt/bs", {"batch_input": [ok, bad], "partial_failure_response_code": 207})
        self.assertEqual(r.status, 207)
        r = self.post("transit/encrypt/bs", {"batch_input": [ok, ok]})
        self.assertEqual(r.status, 200)

    # -- the CLI --

    def test_cli_write_read(self):
        env = dict(os.environ, VAULT_ADDR="http://%s" % self.s.addr, VAULT_TOKEN="root")

        def cli(*args):
            p = subprocess.run([BIN] + list(args), env=env, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.decode()

        out = json.loads(cli("write", "-format=json", "transit/encrypt/clik", "plaintext=" + b64(b"via cli")))
        ct = out["data"]["ciphertext"]
        out = json.loads(cli("write", "-format=json", "transit/decrypt/clik", "ciphertext=" + ct))
        self.assertEqual(unb64(out["data"]["plaintext"]), b"via cli")
        table = cli("read", "transit/keys/clik")
        self.assertIn("aes256-gcm96", table)
        self.assertIn("clik", cli("list", "transit/keys"))


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class TransitBackupRestartTest(unittest.TestCase):
    def test_backup_restore_across_servers_and_restart(self):
        a = Server().start()
        b = Server().start()
        try:
            for s in (a, b):
                s.init_unseal()
                s.post("sys/mounts/transit", {"type": "transit"}, token=s.root_token)
            ca = hvac.Client(url="http://%s" % a.addr, token=a.root_token, timeout=60).secrets.transit
            cb = hvac.Client(url="http://%s" % b.addr, token=b.root_token, timeout=60).secrets.transit
            ca.create_key("moving", exportable=True, allow_plaintext_backup=True)
            c1 = ca.encrypt_data("moving", b64(b"version one"))["data"]["ciphertext"]
            ca.rotate_key("moving")
            c2 = ca.encrypt_data("moving", b64(b"version two"))["data"]["ciphertext"]
            ca.create_key("signer", key_type="ecdsa-p256", exportable=True, allow_plaintext_backup=True)
            sig = ca.sign_data("signer", b64(b"doc"))["data"]["signature"]
            backup = ca.backup_key("moving")["data"]["backup"]
            cb.restore_key(backup)
            cb.restore_key(ca.backup_key("signer")["data"]["backup"])
            self.assertEqual(unb64(cb.decrypt_data("moving", c1)["data"]["plaintext"]), b"version one")
            self.assertEqual(unb64(cb.decrypt_data("moving", c2)["data"]["plaintext"]), b"version two")
            self.assertTrue(cb.verify_signed_data("signer", b64(b"doc"), signature=sig)["data"]["valid"])
            with self.assertRaises(hexc.InvalidRequest):
                cb.restore_key(backup)  # exists
            cb.restore_key(backup, name="renamed")
            self.assertEqual(unb64(cb.decrypt_data("renamed", c2)["data"]["plaintext"]), b"version two")
            # keys survive a restart (stored below the barrier)
            b.stop()
            b.start()
            b.unseal()
            cb = hvac.Client(url="http://%s" % b.addr, token=b.root_token, timeout=60).secrets.transit
            self.assertEqual(unb64(cb.decrypt_data("moving", c1)["data"]["plaintext"]), b"version one")
            # the key material is not stored in the clear
            key = base64.b64decode(cb.export_key("moving", "encryption-key")["data"]["keys"]["1"])
            for root, _, files in os.walk(os.path.join(b.dir, "data")):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        blob = fh.read()
                    self.assertNotIn(key, blob)
                    self.assertNotIn(base64.b64encode(key), blob)
        finally:
            a.cleanup()
            b.cleanup()


if __name__ == "__main__":
    unittest.main()
