"""
test_api_gaps.py - small parts of Vault's API that clients trip on:
sys/audit-hash on a missing device (Vault's "unknown audit backend"), and
sys/auth/PATH/tune with default_lease_ttl / max_lease_ttl the way Vault
takes them (above the server's max is accepted and tokens stay capped by
it; default above the mount's max and max below its default are 400s);
sys/tools/random and sys/tools/hash with Vault's defaults, limits and
messages (hashes checked against hashlib).

    COFFER_BIN=$PWD/build/coffer /usr/bin/python3 tests/e2e/run.py test_api_gaps.py
"""
import unittest

from harness import Server


class ApiGapsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def test_audit_hash_missing_device(self):
        r = self.s.post("sys/audit-hash/nosuch", {"input": "x"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"], ['unknown audit backend "nosuch/"'])

    def test_auth_tune_ttls(self):
        s = self.s
        self.assertEqual(s.post("sys/auth/up", {"type": "userpass"}).status, 204)

        def tune(body):
            return s.post("sys/auth/up/tune", body)

        def cfg():
            return s.get("sys/auth/up/tune").json()["data"]

        self.assertEqual(tune({"default_lease_ttl": "72h"}).status, 204)
        self.assertEqual(cfg()["default_lease_ttl"], 72 * 3600)
        # above the server's max (768h): Vault accepts it
        r = tune({"default_lease_ttl": "72000h"})
        self.assertEqual(r.status, 204, r)
        r = tune({"max_lease_ttl": "72000h"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(cfg()["max_lease_ttl"], 72000 * 3600)
        # default above the mount's max, max below its default: 400
        r = tune({"default_lease_ttl": "72001h"})
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.json()["errors"][0])
        r = tune({"max_lease_ttl": "1h"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(tune({"default_lease_ttl": "1h", "max_lease_ttl": "2h"}).status, 204)
        self.assertEqual((cfg()["default_lease_ttl"], cfg()["max_lease_ttl"]), (3600, 7200))
        # a login's token takes the mount's TTLs, capped by the server's max
        self.assertEqual(s.post("auth/up/users/u", {"password": "pw"}).status, 204)
        a = s.post("auth/up/login/u", {"password": "pw"}, token="").json()["auth"]
        self.assertEqual(a["lease_duration"], 3600)
        self.assertEqual(tune({"max_lease_ttl": "72000h", "default_lease_ttl": "72000h"}).status, 204)
        a = s.post("auth/up/login/u", {"password": "pw"}, token="").json()["auth"]
        self.assertEqual(a["lease_duration"], 768 * 3600)

    def test_random(self):
        import base64
        s = self.s
        r = s.post("sys/tools/random", {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(base64.b64decode(r.json()["data"]["random_bytes"])), 32)
        r = s.post("sys/tools/random/16", {"format": "hex"})
        self.assertEqual(len(bytes.fromhex(r.json()["data"]["random_bytes"])), 16)
        r = s.post("sys/tools/random/platform/7", {})
        self.assertEqual(len(base64.b64decode(r.json()["data"]["random_bytes"])), 7)
        a, b = (s.post("sys/tools/random", {}).json()["data"]["random_bytes"] for _ in range(2))
        self.assertNotEqual(a, b)
        for path, body, msg in [
                ("sys/tools/random/0", {}, "'bytes' cannot be less than 1"),
                ("sys/tools/random", {"bytes": 131073}, "'bytes' should be less than 131072"),
                ("sys/tools/random/abc", {}, 'parsing "abc": invalid syntax'),
                ("sys/tools/random/moon/4", {}, 'unsupported entropy source "moon"'),
                ("sys/tools/random", {"format": "b32"}, 'unsupported encoding format "b32"')]:
            r = s.post(path, body)
            self.assertEqual(r.status, 400, (path, r))
            self.assertIn(msg, r.json()["errors"][0])

    def test_hash_matches_hashlib_and_the_default_policy_allows_it(self):
        import base64
        import hashlib
        s = self.s
        data = b"coffer tools \x00\xff"
        inp = base64.b64encode(data).decode()
        for alg, fn in [("sha2-224", hashlib.sha224), ("sha2-256", hashlib.sha256),
                        ("sha2-384", hashlib.sha384), ("sha2-512", hashlib.sha512),
                        ("sha3-256", hashlib.sha3_256), ("sha3-512", hashlib.sha3_512)]:
            r = s.post("sys/tools/hash/" + alg, {"input": inp})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["sum"], fn(data).hexdigest(), alg)
        r = s.post("sys/tools/hash", {"input": inp, "format": "base64"})
        self.assertEqual(base64.b64decode(r.json()["data"]["sum"]), hashlib.sha256(data).digest())
        for body, msg in [({"input": inp, "algorithm": "md5"}, "unsupported algorithm md5"),
                          ({}, "input missing"),
                          ({"input": "!!"}, "unable to decode input as base64"),
                          ({"input": inp, "format": "raw"}, "unsupported encoding format raw")]:
            r = s.post("sys/tools/hash", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(msg, r.json()["errors"][0])
        tok = s.post("auth/token/create", {"policies": ["default"]}).json()["auth"]["client_token"]
        r = s.post("sys/tools/hash", {"input": inp}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.post("sys/tools/random", {}, token=tok).status, 403)


if __name__ == "__main__":
    unittest.main()
