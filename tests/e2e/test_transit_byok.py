"""
test_transit_byok.py - transit BYOK (Bring Your Own Key) through the real
binary, with the client side done exactly as Vault's BYOK documentation
describes it, by Python's `cryptography`: fetch transit/wrapping_key, make
an ephemeral AES-256 key, RSA-OAEP-wrap it with the wrapping key, AES-KWP
(RFC 5649) wrap the target key with it, send base64(both) to
keys/:name/import. Then prove the imported key is the same key: data
encrypted locally with AES-GCM in Vault's vault:v1: layout decrypts via
transit/decrypt, and transit signatures verify with the locally held public
keys (RSA-PSS, ECDSA P-256, Ed25519). import_version adds versions; bad
input is a 400 with a message naming the problem; the wrapping key and
imported keys survive a restart and are not stored in the clear.

hvac 0.11 (Debian's python3-hvac) has no import call, so this speaks HTTP.
"""
import base64
import os
import unittest

from harness import Server

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
except ImportError:  # pragma: no cover - deps.sh installs python3-cryptography
    AESGCM = None


def b64(data):
    return base64.b64encode(data).decode()


def unb64(s):
    return base64.b64decode(s)


HASHES = {"SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256,
          "SHA384": hashes.SHA384, "SHA512": hashes.SHA512} if AESGCM else {}


def pkcs8(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def wrap(wrapping_pem, target, hash_name="SHA256", eph=None):
    """Vault's documented BYOK client side: OAEP(eph) || KWP(eph, target)."""
    pub = serialization.load_pem_public_key(wrapping_pem.encode())
    eph = eph if eph is not None else os.urandom(32)
    h = HASHES[hash_name]
    wrapped_eph = pub.encrypt(eph, padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None))
    return b64(wrapped_eph + aes_key_wrap_with_padding(eph, target))


def local_vault_ct(key, plaintext, version=1):
    """AES-GCM in Vault's layout: vault:vN:base64(nonce | ciphertext | tag)."""
    nonce = os.urandom(12)
    return "vault:v%d:%s" % (version, b64(nonce + AESGCM(key).encrypt(nonce, plaintext, None)))


@unittest.skipIf(AESGCM is None, "python3-cryptography is not installed")
class TransitByokTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()
        cls.tok = cls.s.root_token
        r = cls.s.post("sys/mounts/transit", {"type": "transit"}, token=cls.tok)
        assert r.status in (200, 204), r
        r = cls.s.get("transit/wrapping_key", token=cls.tok)
        assert r.status == 200, r
        cls.wrapping_pem = r.json()["data"]["public_key"]

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def post(self, path, body):
        return self.s.post("transit/" + path, body, token=self.tok)

    def read(self, path):
        r = self.s.get("transit/" + path, token=self.tok)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]

    def import_key(self, name, target, key_type, status=204, **kw):
        h = kw.pop("hash", "SHA256")
        body = {"type": key_type, "ciphertext": wrap(self.wrapping_pem, target, h), "hash_function": h}
        body.update(kw)
        r = self.post("keys/%s/import" % name, body)
        self.assertEqual(r.status, status, r)
        return r

    def decrypt(self, name, ct):
        r = self.post("decrypt/" + name, {"ciphertext": ct})
        self.assertEqual(r.status, 200, r)
        return unb64(r.json()["data"]["plaintext"])

    def sign(self, name, data, **kw):
        body = {"input": b64(data)}
        body.update(kw)
        r = self.post("sign/" + name, body)
        self.assertEqual(r.status, 200, r)
        sig = r.json()["data"]["signature"]
        self.assertTrue(sig.startswith("vault:v"))
        return unb64(sig.split(":", 2)[2])

    def error(self, r, status=400):
        self.assertEqual(r.status, status, r)
        return " ".join(r.json()["errors"])

    # -- the wrapping key --

    def test_wrapping_key_is_rsa4096_and_stable(self):
        pub = serialization.load_pem_public_key(self.wrapping_pem.encode())
        self.assertIsInstance(pub, rsa.RSAPublicKey)
        self.assertEqual(pub.key_size, 4096)
        self.assertEqual(self.read("wrapping_key")["public_key"], self.wrapping_pem)
        # another mount has its own wrapping key
        self.assertIn(self.s.post("sys/mounts/transit2", {"type": "transit"}, token=self.tok).status, (200, 204))
        other = self.s.get("transit2/wrapping_key", token=self.tok).json()["data"]["public_key"]
        self.assertNotEqual(other, self.wrapping_pem)

    # -- symmetric: the same key --

    def test_aes256_import_decrypts_local_ciphertext(self):
        key = os.urandom(32)
        self.import_key("aes", key, "aes256-gcm96")
        d = self.read("keys/aes")
        self.assertTrue(d["imported_key"])
        self.assertFalse(d["imported_key_allow_rotation"])
        self.assertEqual(d["type"], "aes256-gcm96")
        self.assertEqual(d["latest_version"], 1)
        # encrypted here, decrypted by the server: the key is ours
        self.assertEqual(self.decrypt("aes", local_vault_ct(key, b"made by the client")), b"made by the client")
        # and the other way round
        r = self.post("encrypt/aes", {"plaintext": b64(b"made by the server")})
        raw = unb64(r.json()["data"]["ciphertext"][len("vault:v1:"):])
        self.assertEqual(AESGCM(key).decrypt(raw[:12], raw[12:], None), b"made by the server")
        # rotation is refused without allow_rotation (Vault's text)
        msg = self.error(self.post("keys/aes/rotate", {}))
        self.assertIn("imported key aes does not allow rotation within Vault", msg)

    def test_import_version_then_both_versions_decrypt(self):
        k1, k2 = os.urandom(32), os.urandom(32)
        self.import_key("iv", k1, "aes256-gcm96", hash="SHA512")
        r = self.post("keys/iv/import_version", {"ciphertext": wrap(self.wrapping_pem, k2, "SHA384"),
                                                 "hash_function": "SHA384"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.read("keys/iv")["latest_version"], 2)
        self.assertEqual(self.decrypt("iv", local_vault_ct(k1, b"one", 1)), b"one")
        self.assertEqual(self.decrypt("iv", local_vault_ct(k2, b"two", 2)), b"two")
        # a v2 ciphertext made with the v1 key does not open
        r = self.post("decrypt/iv", {"ciphertext": local_vault_ct(k1, b"x", 2)})
        self.assertEqual(r.status, 400, r)
        # new encryptions use the imported v2
        ct = self.post("encrypt/iv", {"plaintext": b64(b"latest")}).json()["data"]["ciphertext"]
        self.assertTrue(ct.startswith("vault:v2:"))
        raw = unb64(ct[len("vault:v2:"):])
        self.assertEqual(AESGCM(k2).decrypt(raw[:12], raw[12:], None), b"latest")

    def test_allow_rotation_then_no_more_import_version(self):
        key = os.urandom(16)
        self.import_key("rot", key, "aes128-gcm96", allow_rotation=True)
        self.assertTrue(self.read("keys/rot")["imported_key_allow_rotation"])
        self.assertEqual(self.post("keys/rot/rotate", {}).status, 200)
        d = self.read("keys/rot")
        self.assertEqual(d["latest_version"], 2)
        self.assertEqual(self.decrypt("rot", local_vault_ct(key, b"old", 1)), b"old")
        # rotated within the server: Vault refuses further imports
        r = self.post("keys/rot/import_version", {"ciphertext": wrap(self.wrapping_pem, os.urandom(16))})
        self.assertIn("can only be used with an imported key", self.error(r))

    def test_hmac_import(self):
        key = os.urandom(48)
        self.import_key("mac", key, "hmac")
        self.assertEqual(self.read("keys/mac")["key_size"], 48)
        import hashlib
        import hmac
        r = self.post("hmac/mac", {"input": b64(b"msg")})
        want = "vault:v1:" + b64(hmac.new(key, b"msg", hashlib.sha256).digest())
        self.assertEqual(r.json()["data"]["hmac"], want)

    # -- asymmetric: signatures verify with the locally held public key --

    def test_rsa2048_import_signs_for_local_public_key(self):
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.import_key("rsa", pkcs8(priv), "rsa-2048")
        d = self.read("keys/rsa")
        served = serialization.load_pem_public_key(d["keys"]["1"]["public_key"].encode())
        self.assertEqual(served.public_numbers(), priv.public_key().public_numbers())
        sig = self.sign("rsa", b"rsa document", signature_algorithm="pss")
        priv.public_key().verify(sig, b"rsa document",
                                 padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                                 hashes.SHA256())
        sig = self.sign("rsa", b"rsa document", signature_algorithm="pkcs1v15")
        priv.public_key().verify(sig, b"rsa document", padding.PKCS1v15(), hashes.SHA256())
        # RSA-OAEP encryption by the client decrypts on the server
        ct = priv.public_key().encrypt(b"for rsa", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                                algorithm=hashes.SHA256(), label=None))
        self.assertEqual(self.decrypt("rsa", "vault:v1:" + b64(ct)), b"for rsa")

    def test_ecdsa_p256_import_signs_for_local_public_key(self):
        priv = ec.generate_private_key(ec.SECP256R1())
        self.import_key("ec", pkcs8(priv), "ecdsa-p256")
        sig = self.sign("ec", b"ec document")
        priv.public_key().verify(sig, b"ec document", ec.ECDSA(hashes.SHA256()))
        with self.assertRaises(InvalidSignature):
            priv.public_key().verify(sig, b"another document", ec.ECDSA(hashes.SHA256()))

    def test_ed25519_import_signs_for_local_public_key(self):
        priv = ed25519.Ed25519PrivateKey.generate()
        self.import_key("ed", pkcs8(priv), "ed25519")
        raw_pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.assertEqual(self.read("keys/ed")["keys"]["1"]["public_key"], b64(raw_pub))
        sig = self.sign("ed", b"ed document")
        priv.public_key().verify(sig, b"ed document")
        # import_version with a second Ed25519 key: both versions verify
        priv2 = ed25519.Ed25519PrivateKey.generate()
        r = self.post("keys/ed/import_version", {"ciphertext": wrap(self.wrapping_pem, pkcs8(priv2))})
        self.assertEqual(r.status, 204, r)
        priv2.public_key().verify(self.sign("ed", b"v2"), b"v2")
        r = self.post("verify/ed", {"input": b64(b"ed document"), "signature": "vault:v1:" + b64(sig)})
        self.assertTrue(r.json()["data"]["valid"])

    # -- bad input: 400 naming the problem, server keeps serving --

    def test_bad_input(self):
        w = self.wrapping_pem
        raw = bytearray(unb64(wrap(w, os.urandom(32))))
        raw[-1] ^= 1  # one bit of the KWP layer
        tampered = b64(bytes(raw))
        cases = [
            ({"type": "aes256-gcm96", "ciphertext": wrap(w, os.urandom(31))},
             "invalid key size 31 bytes for key type aes256-gcm96"),
            ({"type": "aes128-gcm96", "ciphertext": wrap(w, os.urandom(32))},
             "invalid key size 32 bytes for key type aes128-gcm96"),
            ({"type": "aes256-gcm96", "ciphertext": wrap(w, os.urandom(32)), "hash_function": "MD5"},
             "unknown hash function: MD5"),
            ({"type": "aes256-gcm96", "ciphertext": "not base64!"}, "base64"),
            ({"type": "aes256-gcm96", "ciphertext": b64(os.urandom(100))}, "provided ciphertext is too short"),
            # wrapped with SHA1 but declared SHA256: the OAEP layer fails
            ({"type": "aes256-gcm96", "ciphertext": wrap(w, os.urandom(32), "SHA1")}, "ephemeral AES key"),
            ({"type": "aes256-gcm96", "ciphertext": tampered}, "AES-KWP integrity check failed"),
            ({"type": "aes256-gcm96", "ciphertext": b64(unb64(wrap(w, os.urandom(32)))[:-3])},
             "not a whole number of 8-byte blocks"),
            ({"type": "rsa-2048", "ciphertext": wrap(w, pkcs8(ec.generate_private_key(ec.SECP256R1())))},
             "invalid key type: expected rsa-2048"),
            ({"type": "ecdsa-p256", "ciphertext": wrap(w, pkcs8(ec.generate_private_key(ec.SECP384R1())))},
             "invalid curve: expected P-256, got P-384"),
            ({"type": "ed25519", "ciphertext": wrap(w, os.urandom(32))}, "error parsing asymmetric key"),
            ({"type": "aes512-gcm", "ciphertext": wrap(w, os.urandom(32))}, "unknown key type: aes512-gcm"),
            ({"type": "aes256-gcm96"}, "ciphertext xor public_key"),
            ({"type": "aes256-gcm96", "ciphertext": wrap(w, os.urandom(32)), "convergent_encryption": True},
             "import cannot be used on keys with convergent encryption enabled"),
            ({"type": "aes256-gcm96", "ciphertext": wrap(w, os.urandom(32)), "auto_rotate_period": "2h"},
             "allow_rotation must be set to true if auto-rotation is enabled"),
        ]
        for body, want in cases:
            with self.subTest(want=want):
                msg = self.error(self.post("keys/bad/import", body))
                self.assertIn(want, msg)
        # nothing was created by the failed imports
        self.assertEqual(self.s.get("transit/keys/bad", token=self.tok).status, 404)
        # an existing key: refused, and it is unchanged
        key = os.urandom(32)
        self.import_key("taken", key, "aes256-gcm96")
        msg = self.error(self.post("keys/taken/import", {"type": "aes256-gcm96",
                                                          "ciphertext": wrap(w, os.urandom(32))}))
        self.assertIn("the import path cannot be used with an existing key", msg)
        self.assertEqual(self.decrypt("taken", local_vault_ct(key, b"same")), b"same")
        # import_version on a key that was generated here, or on none
        self.assertEqual(self.post("keys/native", {}).status, 200)
        msg = self.error(self.post("keys/native/import_version", {"ciphertext": wrap(w, os.urandom(32))}))
        self.assertIn("the import_version endpoint can only be used with an imported key", msg)
        msg = self.error(self.post("keys/nobody/import_version", {"ciphertext": wrap(w, os.urandom(32))}))
        self.assertIn("no key found with name nobody", msg)
        msg = self.error(self.post("keys/taken/import_version", {"ciphertext": wrap(w, os.urandom(16))}))
        self.assertIn("invalid key size 16 bytes for key type aes256-gcm96", msg)
        self.assertEqual(self.read("keys/taken")["latest_version"], 1)
        # still serving
        self.assertEqual(self.s.get("sys/health").status, 200)

    # -- at rest --

    def test_restart_keeps_wrapping_key_and_imports_not_in_clear(self):
        s = Server().start()
        try:
            s.init_unseal()
            s.post("sys/mounts/transit", {"type": "transit"}, token=s.root_token)
            pem = s.get("transit/wrapping_key", token=s.root_token).json()["data"]["public_key"]
            key = os.urandom(32)
            r = s.post("transit/keys/k/import", {"ciphertext": wrap(pem, key)}, token=s.root_token)
            self.assertEqual(r.status, 204, r)
            s.stop()
            s.start()
            s.unseal()
            self.assertEqual(s.get("transit/wrapping_key", token=s.root_token).json()["data"]["public_key"], pem)
            r = s.post("transit/decrypt/k", {"ciphertext": local_vault_ct(key, b"after restart")},
                       token=s.root_token)
            self.assertEqual(unb64(r.json()["data"]["plaintext"]), b"after restart")
            # a second import after the restart unwraps with the reloaded key
            r = s.post("transit/keys/k2/import", {"ciphertext": wrap(pem, os.urandom(32))}, token=s.root_token)
            self.assertEqual(r.status, 204, r)
            for root, _, files in os.walk(os.path.join(s.dir, "data")):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        blob = fh.read()
                    self.assertNotIn(key, blob)
                    self.assertNotIn(b64(key).encode(), blob)
                    self.assertNotIn(b"PRIVATE KEY", blob)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
