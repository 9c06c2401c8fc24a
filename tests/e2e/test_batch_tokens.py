"""
test_batch_tokens.py - batch tokens (type=batch) against the real binary:
Vault's b. format, nothing stored (no accessor, no new storage entry), not
renewable or revocable, no cubbyhole, no children, stop working with their
parent or at their TTL, refused when altered, still valid after a restart
(the key lives below the barrier); token roles with token_type batch /
default-batch and Vault's role checks; an auth method issuing batch tokens;
and the same through hvac.

    COFFER_BIN=$PWD/build/coffer /usr/bin/python3 tests/e2e/run.py test_batch_tokens.py
"""
import time
import unittest

from harness import Server

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover - deps.sh installs python3-hvac
    hvac = None

READER = 'path "secret/*" { capabilities = ["read", "create", "update"] }\n'
CREATOR = ('path "auth/token/create" { capabilities = ["update"] }\n'
           'path "auth/token/create-orphan" { capabilities = ["update"] }\n')


class BatchTokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()
        s = cls.s
        assert s.post("sys/mounts/secret", {"type": "kv"}).status == 204
        assert s.post("secret/app", {"k": "v"}).status == 204
        assert s.put("sys/policy/reader", {"policy": READER}).status == 204
        assert s.put("sys/policy/creator", {"policy": CREATOR}).status == 204

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def batch(self, body=None, token=None, path="auth/token/create"):
        b = {"type": "batch", "policies": ["reader"], "ttl": "1h"}
        b.update(body or {})
        r = self.s.post(path, b, token=token)
        self.assertEqual(r.status, 200, r)
        return r.json()["auth"]

    def accessors(self):
        return len(self.s.list("auth/token/accessors").json()["data"]["keys"])

    def test_shape_and_nothing_stored(self):
        s = self.s
        before = self.accessors()
        a = self.batch()
        self.assertTrue(a["client_token"].startswith("b."), a)
        self.assertEqual(a["token_type"], "batch")
        self.assertEqual(a["accessor"], "")
        self.assertFalse(a["renewable"])
        self.assertEqual(a["lease_duration"], 3600)
        self.assertEqual(self.accessors(), before)  # no accessor, no entry
        tok = a["client_token"]
        d = s.get("auth/token/lookup-self", token=tok).json()["data"]
        self.assertEqual((d["type"], d["accessor"], d["renewable"]), ("batch", "", False))
        self.assertEqual(sorted(d["policies"]), ["default", "reader"])
        self.assertFalse(d["orphan"])  # created by the root token, not orphan
        self.assertLessEqual(d["ttl"], 3600)
        # it works for what its policy allows, and only that
        self.assertEqual(s.get("secret/app", token=tok).json()["data"], {"k": "v"})
        self.assertEqual(s.get("sys/policy", token=tok).status, 403)

    def test_what_batch_tokens_cannot_do(self):
        s = self.s
        tok = self.batch({"policies": ["reader", "creator"]})["client_token"]
        r = s.post("auth/token/renew-self", token=tok)
        self.assertEqual((r.status, r.json()["errors"]), (400, ["batch tokens cannot be renewed"]))
        r = s.post("auth/token/revoke-self", token=tok)
        self.assertEqual((r.status, r.json()["errors"]), (400, ["batch tokens cannot be revoked"]))
        r = s.post("auth/token/revoke", {"token": tok})
        self.assertEqual((r.status, r.json()["errors"]), (400, ["batch tokens cannot be revoked"]))
        r = s.post("auth/token/create", {"policies": ["reader"]}, token=tok)
        self.assertEqual((r.status, r.json()["errors"]), (400, ["batch tokens cannot create more tokens"]))
        r = s.post("auth/token/create-orphan", {"policies": ["reader"]}, token=tok)
        self.assertEqual(r.status, 400, r)
        r = s.get("cubbyhole/x", token=tok)
        self.assertEqual(r.status, 400, r)
        self.assertIn("service", r.json()["errors"][0])
        # still valid after all that
        self.assertEqual(s.get("auth/token/lookup-self", token=tok).status, 200)
        # creation-time refusals, Vault's messages
        for body, msg in (({"policies": ["root"]}, "batch tokens cannot be root tokens"),
                          ({"num_uses": 2}, 'batch tokens cannot have "num_uses" set'),
                          ({"period": "1h"}, 'batch tokens cannot have "period" set'),
                          ({"explicit_max_ttl": "2h"}, 'batch tokens cannot have "explicit_max_ttl" set')):
            b = {"type": "batch", "policies": ["reader"]}
            b.update(body)
            r = s.post("auth/token/create", b)
            self.assertEqual((r.status, r.json()["errors"]), (400, [msg]), body)

    def test_altered_or_foreign_token_refused(self):
        s = self.s
        tok = self.batch()["client_token"]
        body = tok[2:]
        flipped = body[:40] + ("A" if body[40] != "A" else "B") + body[41:]
        for bad in ("b." + flipped, tok[:-3], "b." + body[::-1], "b.", "b.!!!!"):
            self.assertEqual(s.get("auth/token/lookup-self", token=bad).status, 403, bad)

    def test_stops_with_parent_orphan_lives_on(self):
        s = self.s
        parent = s.post("auth/token/create", {"policies": ["creator", "reader"]}).json()["auth"]["client_token"]
        child = self.batch(token=parent)["client_token"]
        orphan = self.batch(token=parent, path="auth/token/create-orphan")["client_token"]
        self.assertTrue(s.get("auth/token/lookup-self", token=orphan).json()["data"]["orphan"])
        self.assertEqual(s.get("secret/app", token=child).status, 200)
        self.assertEqual(s.post("auth/token/revoke", {"token": parent}).status, 204)
        self.assertEqual(s.get("secret/app", token=child).status, 403)
        self.assertEqual(s.get("secret/app", token=orphan).status, 200)

    def test_expires_at_its_ttl(self):
        s = self.s
        tok = self.batch({"ttl": "2s"})["client_token"]
        self.assertEqual(s.get("secret/app", token=tok).status, 200)
        time.sleep(3.1)
        self.assertEqual(s.get("secret/app", token=tok).status, 403)

    def test_roles(self):
        s = self.s
        r = s.post("auth/token/roles/b1", {"token_type": "batch"})
        self.assertEqual((r.status, r.json()["errors"]), (400, [
            "'token_type' cannot be 'batch' when role is set to generate non-orphan tokens"]))
        r = s.post("auth/token/roles/b1", {"token_type": "batch", "orphan": True})
        self.assertEqual(r.json()["errors"], [
            "'token_type' cannot be 'batch' when role is set to generate renewable tokens"])
        r = s.post("auth/token/roles/b1", {"token_type": "batch", "orphan": True, "renewable": False,
                                           "allowed_policies": ["reader"]})
        self.assertEqual(r.status, 204, r)
        a = s.post("auth/token/create/b1", {}).json()["auth"]
        self.assertEqual((a["token_type"], a["orphan"]), ("batch", True))
        # default-batch: batch unless the caller asks for service
        self.assertEqual(s.post("auth/token/roles/db", {"token_type": "default-batch",
                                                        "allowed_policies": ["reader"]}).status, 204)
        self.assertEqual(s.get("auth/token/roles/db").json()["data"]["token_type"], "default-batch")
        a = s.post("auth/token/create/db", {}).json()["auth"]
        self.assertEqual(a["token_type"], "batch")
        a = s.post("auth/token/create/db", {"type": "service"}).json()["auth"]
        self.assertEqual(a["token_type"], "service")
        self.assertEqual(len(a["accessor"]), 24)

    def test_auth_method_issues_batch_tokens(self):
        s = self.s
        self.assertEqual(s.post("sys/auth/userpass", {"type": "userpass"}).status, 204)
        r = s.post("auth/userpass/users/bob", {"password": "pw", "token_policies": "reader",
                                                "token_type": "batch"})
        self.assertEqual(r.status, 204, r)
        a = s.post("auth/userpass/login/bob", {"password": "pw"}, token="").json()["auth"]
        self.assertTrue(a["client_token"].startswith("b."))
        self.assertEqual((a["token_type"], a["renewable"], a["orphan"]), ("batch", False, True))
        self.assertEqual(s.get("secret/app", token=a["client_token"]).status, 200)
        self.assertEqual(s.get("auth/userpass/users/bob").json()["data"]["token_type"], "batch")

    def test_valid_after_restart(self):
        s = Server().start()
        try:
            s.init_unseal()
            tok = s.post("auth/token/create", {"type": "batch", "ttl": "1h", "no_parent": True,
                                               "policies": ["default"]}).json()["auth"]["client_token"]
            s.stop()
            s.start()
            self.assertEqual(s.get("auth/token/lookup-self", token=tok).status, 503)  # sealed
            s.unseal()
            r = s.get("auth/token/lookup-self", token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["type"], "batch")
        finally:
            s.cleanup()


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class HvacBatchTokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def test_hvac_batch_token(self):
        c = hvac.Client(url="http://%s" % self.s.addr, token=self.s.root_token, timeout=30)
        a = c.auth.token.create(type="batch", policies=["default"], ttl="30m", renewable=False)["auth"]
        self.assertEqual(a["token_type"], "batch")
        b = hvac.Client(url="http://%s" % self.s.addr, token=a["client_token"], timeout=30)
        self.assertTrue(b.is_authenticated())
        self.assertEqual(b.auth.token.lookup_self()["data"]["type"], "batch")
        with self.assertRaises(hexc.InvalidRequest) as cm:
            b.auth.token.renew_self()
        self.assertIn("batch tokens cannot be renewed", cm.exception.errors)
        # a wrapped batch token: no accessor to report
        w = c.auth.token.create(type="batch", policies=["default"], wrap_ttl="1m")["wrap_info"]
        self.assertNotIn("wrapped_accessor", w)
        self.assertEqual(c.sys.unwrap(w["token"])["auth"]["token_type"], "batch")


if __name__ == "__main__":
    unittest.main()
