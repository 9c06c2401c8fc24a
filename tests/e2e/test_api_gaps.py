"""
test_api_gaps.py - small parts of Vault's API that clients trip on:
sys/audit-hash on a missing device (Vault's "unknown audit backend"), and
sys/auth/PATH/tune with default_lease_ttl / max_lease_ttl the way Vault
takes them (above the server's max is accepted and tokens stay capped by
it; default above the mount's max and max below its default are 400s).

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


if __name__ == "__main__":
    unittest.main()
