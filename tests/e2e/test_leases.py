"""
End-to-end tests of leases and the expiration manager (issue 4) against the
real binary: token leases expire on time and disappear, sys/leases/* shapes
and errors, revoke-prefix exactness, and deadlines that survive kill -9 +
restart + unseal. (Secret leases from an engine are covered by the unit
tests: no engine in the tree issues leases yet.)
"""
import time
import unittest

from harness import Server


class LeasesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def leases(self, prefix):
        r = self.s.list("sys/leases/lookup/" + prefix)
        if r.status == 404:
            return set()
        self.assertEqual(r.status, 200, r)
        return set(r.json()["data"]["keys"])

    def create(self, ttl, path="auth/token/create", **kw):
        """Create a token; return its auth block and its lease id (the
        creation path + the token's salted hash, found by listing)."""
        prefix = path + "/"
        before = self.leases(prefix)
        body = {"ttl": ttl, "policies": ["default"]}
        body.update(kw)
        r = self.s.post(path, body)
        self.assertEqual(r.status, 200, r)
        new = self.leases(prefix) - before
        self.assertEqual(len(new), 1, new)
        return r.json()["auth"], prefix + new.pop()

    def test_token_ttl_expires_and_lease_is_gone(self):
        s = self.s
        auth, lease = self.create("2s")
        tok = auth["client_token"]
        r = s.put("sys/leases/lookup", {"lease_id": lease})
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["id"], lease)
        self.assertTrue(d["renewable"])
        self.assertIsNone(d["last_renewal"])
        self.assertLessEqual(d["ttl"], 2)
        self.assertEqual(s.get("auth/token/lookup-self", token=tok).status, 200)
        time.sleep(3.2)
        # the manager revoked it: the lease is gone without anyone looking the token up
        r = s.put("sys/leases/lookup", {"lease_id": lease})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"], ["invalid lease"])
        self.assertEqual(s.get("auth/token/lookup-self", token=tok).status, 403)
        r = s.post("auth/token/lookup-accessor", {"accessor": auth["accessor"]})
        self.assertNotEqual(r.status, 200, r)

    def test_endpoint_shapes_and_errors(self):
        s = self.s
        r = s.put("sys/leases/lookup", {"lease_id": "auth/token/create/nope"})
        self.assertEqual((r.status, r.json()["errors"]), (400, ["invalid lease"]))
        r = s.put("sys/leases/lookup", {})
        self.assertEqual(r.status, 400, r)
        r = s.put("sys/leases/renew", {"lease_id": "secret/nope/1"})
        self.assertEqual((r.status, r.json()["errors"]), (400, ["lease not found"]))
        auth, lease = self.create("1h")
        r = s.put("sys/leases/renew", {"lease_id": lease, "increment": 60})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"], ["tokens cannot be renewed through this endpoint"])
        r = s.list("sys/leases/lookup/no/such/prefix/")
        self.assertEqual(r.status, 404, r)
        r = s.get("sys/leases/count", query={"type": "irrevocable"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["lease_count"], 0)
        r = s.put("sys/leases/tidy")
        self.assertEqual(r.status, 202, r)
        # a token without sudo cannot list or revoke-prefix
        pol = 'path "sys/leases/*" { capabilities = ["update", "list"] }'
        self.assertIn(s.put("sys/policy/leasepol", {"policy": pol}).status, (200, 204))
        weak = self.create("1h", policies=["leasepol"])[0]["client_token"]
        self.assertEqual(s.list("sys/leases/lookup/auth/token/create/", token=weak).status, 403)
        self.assertEqual(s.put("sys/leases/revoke-prefix/auth/token/create", token=weak).status, 403)
        self.assertEqual(s.put("sys/leases/lookup", {"lease_id": lease}, token=weak).status, 200)
        # revoke (sync default) removes the lease and the token
        r = s.put("sys/leases/revoke", {"lease_id": lease})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(s.put("sys/leases/lookup", {"lease_id": lease}).status, 400)
        self.assertEqual(s.get("auth/token/lookup-self", token=auth["client_token"]).status, 403)

    def test_renew_via_token_store_moves_the_lease_and_caps(self):
        s = self.s
        auth, lease = self.create("5s", explicit_max_ttl="8s")
        before = s.put("sys/leases/lookup", {"lease_id": lease}).json()["data"]
        time.sleep(1.1)
        r = s.put("auth/token/renew-self", {"increment": "1h"}, token=auth["client_token"])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["warnings"], r)  # capped by explicit_max_ttl
        self.assertTrue(any("capped" in w for w in r.json()["warnings"]))
        after = s.put("sys/leases/lookup", {"lease_id": lease}).json()["data"]
        self.assertIsNotNone(after["last_renewal"])
        self.assertGreater(after["expire_time"], before["expire_time"])
        self.assertLessEqual(after["ttl"], 8)

    def test_revoke_prefix_is_exact(self):
        s = self.s
        # tokens created under two different role paths share a prefix string
        self.assertIn(s.post("auth/token/roles/ci", {"allowed_policies": ["default"]}).status, (200, 204))
        self.assertIn(s.post("auth/token/roles/cix", {"allowed_policies": ["default"]}).status, (200, 204))
        a, la = self.create("1h", path="auth/token/create/ci")
        b, lb = self.create("1h", path="auth/token/create/cix")
        r = s.put("sys/leases/revoke-prefix/auth/token/create/ci")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(s.put("sys/leases/lookup", {"lease_id": la}).status, 400)
        self.assertEqual(s.put("sys/leases/lookup", {"lease_id": lb}).status, 200)
        self.assertEqual(s.get("auth/token/lookup-self", token=a["client_token"]).status, 403)
        self.assertEqual(s.get("auth/token/lookup-self", token=b["client_token"]).status, 200)


class LeasesRestartTest(unittest.TestCase):
    def test_deadline_survives_kill9_restart_unseal(self):
        s = Server().start().init_unseal()
        try:
            created = time.time()
            short = s.post("auth/token/create", {"ttl": "5s", "policies": ["default"]}).json()["auth"]
            long_ = s.post("auth/token/create", {"ttl": "1h", "policies": ["default"]}).json()["auth"]
            keys = s.list("sys/leases/lookup/auth/token/create/").json()["data"]["keys"]
            self.assertEqual(len(keys), 2)
            s.kill9()
            s.start()
            t_unseal = time.time()
            s.unseal(s.keys[:1])
            # served right away; the lease is readable from storage
            r = s.list("sys/leases/lookup/auth/token/create/")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.json()["data"]["keys"]), 2)
            self.assertLess(time.time() - t_unseal, 2)
            # expires ~5 s after creation, not 5 s after the restart
            gone = None
            while time.time() - created < 12:
                ks = s.list("sys/leases/lookup/auth/token/create/")
                if ks.status == 200 and len(ks.json()["data"]["keys"]) == 1:
                    gone = time.time() - created
                    break
                time.sleep(0.1)
            self.assertIsNotNone(gone, "the 5s lease never expired")
            self.assertLess(gone, 7.5)
            self.assertGreaterEqual(gone, 4.0)
            self.assertEqual(s.get("auth/token/lookup-self", token=short["client_token"]).status, 403)
            self.assertEqual(s.get("auth/token/lookup-self", token=long_["client_token"]).status, 200)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
