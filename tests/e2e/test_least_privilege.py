"""
test_least_privilege.py - the production guide's application policy works
through the CLI (issue 12, item 4).

A token holding only `path "kv/data/myapp/*" { capabilities = ["read"] }` must
be able to run `coffer kv get kv/myapp/config`: the CLI first asks
sys/internal/ui/mounts/kv/myapp/config which KV version the mount is, and
Vault answers that preflight whenever the token holds any capability on a
path under the mount. And sys/internal/ui/mounts without a path lists only
the mounts the token can use.
"""
import json
import os
import subprocess
import unittest

from harness import BIN, Server

APP_POLICY = """
path "kv/data/myapp/*" {
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
"""


class LeastPrivilegeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()
        s = cls.s
        assert s.post("sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}).status == 204
        assert s.post("sys/mounts/other", {"type": "kv"}).status == 204
        assert s.put("kv/data/myapp/config", {"data": {"password": "s3cr3t"}}).status == 200
        assert s.put("kv/data/elsewhere/x", {"data": {"k": "v"}}).status == 200
        assert s.put("sys/policies/acl/myapp", {"policy": APP_POLICY}).status == 204
        r = s.post("auth/token/create", {"policies": ["myapp"], "no_default_policy": True})
        cls.app_token = r.json()["auth"]["client_token"]

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def cli(self, *args, token=None):
        env = dict(os.environ, VAULT_ADDR="http://" + self.s.addr, VAULT_TOKEN=token or self.app_token)
        env.pop("VAULT_FORMAT", None)
        return subprocess.run([BIN] + list(args), env=env, capture_output=True, text=True, timeout=30)

    def test_kv_get_with_the_guide_policy(self):
        r = self.cli("kv", "get", "-format=json", "kv/myapp/config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["data"]["data"], {"password": "s3cr3t"})
        r = self.cli("kv", "get", "-field=password", "kv/myapp/config")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "s3cr3t"), r.stderr)

    def test_policy_still_holds_elsewhere(self):
        # the preflight answers, the read itself is still refused
        r = self.cli("kv", "get", "kv/elsewhere/x")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("403", r.stderr)
        self.assertEqual(self.s.get("kv/data/elsewhere/x", token=self.app_token).status, 403)
        # a mount the token has nothing under: the preflight itself is refused
        r = self.s.get("sys/internal/ui/mounts/other/x", token=self.app_token)
        self.assertEqual(r.status, 403, r)

    def test_preflight_answers_for_the_mount(self):
        r = self.s.get("sys/internal/ui/mounts/kv/myapp/config", token=self.app_token)
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual((d["path"], d["type"], d["options"]["version"]), ("kv/", "kv", "2"))

    def test_mount_listing_is_filtered(self):
        r = self.s.get("sys/internal/ui/mounts", token=self.app_token)
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        # kv/ (kv/data/myapp/*) and sys/ (sys/capabilities-self); not other/
        self.assertEqual(sorted(d["secret"]), ["kv/", "sys/"])
        self.assertEqual(d["auth"], {})
        # root sees every mount
        d = self.s.get("sys/internal/ui/mounts").json()["data"]
        self.assertTrue({"kv/", "other/", "sys/", "cubbyhole/"} <= set(d["secret"]))
        self.assertIn("token/", d["auth"])
        # without a token: only mounts tuned listing_visibility=unauth
        r = self.s.get("sys/internal/ui/mounts", token="")
        self.assertEqual((r.status, r.json()["data"]["secret"]), (200, {}))
        self.assertEqual(self.s.post("sys/mounts/other/tune", {"listing_visibility": "unauth"}).status, 204)
        r = self.s.get("sys/internal/ui/mounts", token="")
        self.assertEqual(sorted(r.json()["data"]["secret"]), ["other/"])


if __name__ == "__main__":
    unittest.main()
