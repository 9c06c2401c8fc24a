"""
End-to-end tests of the access core (issue 3): mounts, policies and ACL
(including the seed guide's policy and bypass attempts), the token tree,
KV v1/v2 lifecycles and cubbyhole isolation.
"""
import http.client
import json
import socket
import unittest

from harness import Server

SEED_POLICY = '''path "kv/data/myapp/*" {
capabilities = ["read"]
}
path "database/creds/myapp-role" {
capabilities = ["read"]
}
path "pki/issue/myapp-role" {
capabilities = ["create", "update"]
}
path "sys/capabilities-self" {
capabilities = ["create", "update"]
}
'''


class AccessCoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def token(self, policies, **kw):
        body = {"policies": policies}
        body.update(kw)
        r = self.s.post("auth/token/create", body)
        self.assertEqual(r.status, 200, r)
        return r.json()["auth"]["client_token"]

    # ---- mounts ----
    def test_mounts(self):
        s = self.s
        r = s.post("sys/mounts/m1", {"type": "kv-v2", "description": "d"})
        self.assertEqual(r.status, 204, r)
        m = s.get("sys/mounts").json()["data"]["m1/"]
        self.assertEqual(m["type"], "kv")
        self.assertEqual(m["options"]["version"], "2")
        self.assertTrue(m["accessor"].startswith("kv_"))
        r = s.get("sys/internal/ui/mounts/m1/some/secret")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["path"], "m1/")
        self.assertEqual(r.json()["data"]["options"]["version"], "2")
        for bad in ["sys/x", "auth/x", "m1/child", "cubbyhole/x"]:
            r = s.post("sys/mounts/" + bad, {"type": "kv"})
            self.assertEqual(r.status, 400, (bad, r))
            self.assertTrue(r.json()["errors"][0], bad)
        # unclean paths are redirected to their clean form (as Vault's mux
        # does) and never mounted as written
        for bad in ["a/../b", "a//b", "a/./b"]:
            r = s.post("sys/mounts/" + bad, {"type": "kv"})
            self.assertIn(r.status, (301, 400), (bad, r))
        self.assertNotIn("a/../b/", s.get("sys/mounts").json()["data"])
        r = s.post("sys/mounts/m1x", {"type": "nonexistent"})
        self.assertEqual(r.status, 400)
        # tune
        r = s.post("sys/mounts/m1/tune", {"default_lease_ttl": "1h", "max_lease_ttl": "2h"})
        self.assertEqual(r.status, 204, r)
        t = s.get("sys/mounts/m1/tune").json()["data"]
        self.assertEqual((t["default_lease_ttl"], t["max_lease_ttl"]), (3600, 7200))
        # remount keeps data
        s.post("m1/data/x", {"data": {"k": "v"}})
        r = s.post("sys/remount", {"from": "m1", "to": "m2"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.get("m2/data/x").json()["data"]["data"]["k"], "v")
        # disable deletes exactly that mount's data
        s.post("sys/mounts/m3", {"type": "kv"})
        s.put("m3/keep", {"a": "b"})
        self.assertEqual(s.delete("sys/mounts/m2").status, 204)
        self.assertEqual(s.get("m2/data/x").status, 404)
        self.assertEqual(s.get("m3/keep").json()["data"]["a"], "b")
        s.post("sys/mounts/m2", {"type": "kv-v2"})
        self.assertEqual(s.get("m2/data/x").status, 404)

    def test_kv_v1_to_v2_upgrade(self):
        s = self.s
        s.post("sys/mounts/up", {"type": "kv"})
        s.put("up/a", {"v": "1"})
        s.put("up/dir/b", {"v": "2"})
        r = s.post("sys/mounts/up/tune", {"options": {"version": "2"}})
        self.assertEqual(r.status, 204, r)
        r = s.get("up/data/a")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["data"]["v"], "1")
        self.assertEqual(s.get("up/data/dir/b").json()["data"]["data"]["v"], "2")

    # ---- policies ----
    def test_seed_policy(self):
        s = self.s
        r = s.put("sys/policies/acl/myapp", {"policy": SEED_POLICY})
        self.assertEqual(r.status, 204, r)
        r = s.get("sys/policies/acl/myapp")
        self.assertEqual(r.json()["data"]["policy"], SEED_POLICY)
        s.post("sys/mounts/kv", {"type": "kv-v2"})
        s.post("kv/data/myapp/config", {"data": {"db": "x"}})
        s.post("kv/data/other/config", {"data": {"db": "y"}})
        t = self.token(["myapp"])
        self.assertEqual(s.get("kv/data/myapp/config", token=t).status, 200)
        self.assertEqual(s.get("kv/data/other/config", token=t).status, 403)
        self.assertEqual(s.post("kv/data/myapp/config", {"data": {"a": "b"}}, token=t).status, 403)
        self.assertEqual(s.get("kv/metadata/myapp/config", token=t).status, 403)
        self.assertEqual(s.get("sys/mounts", token=t).status, 403)
        r = s.post("sys/capabilities-self", {"paths": ["kv/data/myapp/config", "pki/issue/myapp-role",
                                                       "kv/data/other", "database/creds/myapp-role"]}, token=t)
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["kv/data/myapp/config"], ["read"])
        self.assertEqual(sorted(d["pki/issue/myapp-role"]), ["create", "update"])
        self.assertEqual(d["kv/data/other"], ["deny"])
        self.assertEqual(d["database/creds/myapp-role"], ["read"])
        # root token capabilities
        r = s.post("sys/capabilities-self", {"path": "anything"})
        self.assertEqual(r.json()["capabilities"], ["root"])

    def test_policy_bypass_attempts(self):
        s = self.s
        s.put("sys/policies/acl/narrow", {"policy": 'path "kv2/data/pub/*" { capabilities = ["read"] }'})
        s.post("sys/mounts/kv2", {"type": "kv-v2"})
        s.post("kv2/data/secret", {"data": {"top": "secret"}})
        s.post("kv2/data/pub/x", {"data": {"ok": "1"}})
        t = self.token(["narrow"])
        self.assertEqual(s.get("kv2/data/pub/x", token=t).status, 200)
        attempts = ["kv2/data/pub/../secret", "kv2/data/pub/./../secret", "kv2//data/secret",
                    "kv2/data/pub/%2e%2e/secret", "kv2/data/pub%2f..%2fsecret", "KV2/data/secret",
                    "kv2/data/secret/", "kv2/data/pub/..%2fsecret", "kv2/data/secret%00",
                    "kv2/data/" + "a/" * 3000 + "secret"]
        for a in attempts:
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            c.putrequest("GET", "/v1/" + a, skip_accept_encoding=True)
            c.putheader("X-Vault-Token", t)
            c.endheaders()
            r = c.getresponse()
            body = r.read()
            c.close()
            self.assertIn(r.status, (301, 400, 403, 404, 414), (a[:80], r.status, body[:200]))
            if r.status == 301:
                # the redirect target is the clean path, which the ACL then judges
                loc = r.getheader("Location")
                self.assertNotIn("..", loc)
                self.assertNotIn("//", loc.replace("://", ""))
            self.assertNotIn(b"secret\"", body.replace(b"\"errors\"", b""), a[:80])
            self.assertNotIn(b"top", body, a[:80])

    def test_policy_crud_builtins(self):
        s = self.s
        self.assertEqual(s.delete("sys/policies/acl/default").status, 400)
        self.assertEqual(s.delete("sys/policy/root").status, 400)
        self.assertEqual(s.put("sys/policy/root", {"policy": 'path "*" { capabilities = ["read"] }'}).status, 400)
        r = s.put("sys/policy/legacy", {"rules": 'path "a/*" { capabilities = ["list"] }'})
        self.assertEqual(r.status, 204, r)
        self.assertIn("legacy", s.get("sys/policy").json()["policies"])
        self.assertIn("legacy", s.list("sys/policies/acl").json()["data"]["keys"])
        self.assertEqual(s.get("sys/policy/legacy").json()["rules"], 'path "a/*" { capabilities = ["list"] }')
        r = s.put("sys/policies/acl/bad", {"policy": 'path "a" { capabilities = ["reed"] }'})
        self.assertEqual(r.status, 400)
        r = s.put("sys/policies/acl/json", {"policy": json.dumps({"path": {"j/*": {"capabilities": ["read"]}}})})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(s.delete("sys/policies/acl/json").status, 204)
        self.assertEqual(s.get("sys/policies/acl/json").status, 404)

    # ---- tokens ----
    def test_token_tree(self):
        s = self.s
        s.put("sys/policies/acl/p1", {"policy": 'path "auth/token/create" { capabilities = ["update"] }\n'
                                                'path "sys/mounts" { capabilities = ["read"] }'})
        parent = self.token(["p1"])
        r = s.post("auth/token/create", {"policies": ["p1"]}, token=parent)
        self.assertEqual(r.status, 200, r)
        child = r.json()["auth"]["client_token"]
        orphan = self.token(["p1"], no_parent=True)
        r = s.post("auth/token/create", {"policies": ["p1", "root"]}, token=parent)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(s.get("sys/mounts", token=child).status, 200)
        self.assertEqual(s.post("auth/token/revoke", {"token": parent}).status, 204)
        self.assertEqual(s.get("sys/mounts", token=parent).status, 403)
        self.assertEqual(s.get("sys/mounts", token=child).status, 403)
        self.assertEqual(s.get("sys/mounts", token=orphan).status, 200)

    def test_token_num_uses_and_lookup(self):
        s = self.s
        s.put("sys/policies/acl/reader", {"policy": 'path "sys/mounts" { capabilities = ["read"] }'})
        t = self.token(["reader"], num_uses=2)
        self.assertEqual(s.get("sys/mounts", token=t).status, 200)
        self.assertEqual(s.get("sys/mounts", token=t).status, 200)
        self.assertEqual(s.get("sys/mounts", token=t).status, 403)
        t2 = self.token(["reader"], ttl="1h", display_name="ci", meta={"team": "a"})
        r = s.get("auth/token/lookup-self", token=t2)
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["id"], t2)
        self.assertEqual(d["policies"], ["default", "reader"])
        self.assertEqual(d["display_name"], "token-ci")
        self.assertEqual(d["meta"], {"team": "a"})
        self.assertTrue(0 < d["ttl"] <= 3600)
        r = s.post("auth/token/lookup-accessor", {"accessor": d["accessor"]})
        self.assertEqual(r.json()["data"]["id"], "")
        self.assertEqual(s.post("auth/token/revoke-accessor", {"accessor": d["accessor"]}).status, 204)
        self.assertEqual(s.get("auth/token/lookup-self", token=t2).status, 403)

    # ---- KV v2 ----
    def test_kv_v2_lifecycle(self):
        s = self.s
        s.post("sys/mounts/v2", {"type": "kv-v2"})
        r = s.post("v2/data/app", {"data": {"a": "1"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["version"], 1)
        s.post("v2/data/app", {"data": {"a": "2"}, "options": {"cas": 1}})
        r = s.post("v2/data/app", {"data": {"a": "3"}, "options": {"cas": 1}})
        self.assertEqual(r.status, 400)
        self.assertIn("check-and-set", r.json()["errors"][0])
        self.assertEqual(s.get("v2/data/app", query={"version": "1"}).json()["data"]["data"]["a"], "1")
        r = s.request("PATCH", "v2/data/app", body={"data": {"b": "x"}},
                      headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.get("v2/data/app").json()["data"]["data"], {"a": "2", "b": "x"})
        self.assertEqual(s.delete("v2/data/app").status, 204)
        r = s.get("v2/data/app")
        self.assertEqual(r.status, 404)
        self.assertNotEqual(r.json()["data"]["metadata"]["deletion_time"], "")
        self.assertEqual(s.post("v2/undelete/app", {"versions": [3]}).status, 204)
        self.assertEqual(s.get("v2/data/app").status, 200)
        self.assertEqual(s.put("v2/destroy/app", {"versions": [1]}).status, 204)
        md = s.get("v2/metadata/app").json()["data"]
        self.assertTrue(md["versions"]["1"]["destroyed"])
        self.assertEqual(md["current_version"], 3)
        s.post("v2/metadata/app", {"max_versions": 2})
        s.post("v2/data/app", {"data": {"a": "4"}})
        md = s.get("v2/metadata/app").json()["data"]
        self.assertEqual(md["oldest_version"], 3)
        self.assertEqual(s.list("v2/metadata").json()["data"]["keys"], ["app"])
        self.assertEqual(s.delete("v2/metadata/app").status, 204)
        self.assertEqual(s.get("v2/metadata/app").status, 404)

    # ---- cubbyhole ----
    def test_cubbyhole_isolation(self):
        s = self.s
        t1 = self.token(["default"])
        t2 = self.token(["default"])
        self.assertEqual(s.put("cubbyhole/x", {"v": "mine"}, token=t1).status, 204)
        self.assertEqual(s.get("cubbyhole/x", token=t1).json()["data"]["v"], "mine")
        self.assertEqual(s.get("cubbyhole/x", token=t2).status, 404)
        self.assertEqual(s.get("cubbyhole/x").status, 404)  # root cannot see it either
        s.post("auth/token/revoke", {"token": t1})
        self.assertEqual(s.get("cubbyhole/x", token=t1).status, 403)


if __name__ == "__main__":
    unittest.main()
