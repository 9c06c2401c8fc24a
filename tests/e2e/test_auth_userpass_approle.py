"""
End-to-end tests of the userpass and approle auth methods (issue 4) against
the real binary: user and role lifecycles, logins and the auth block's exact
shape, policies on the issued tokens, uniform login failures, secret ID use
counts, TTLs and CIDR bindings (a second loopback source address, 127.0.0.2,
plays the "other network"), concurrency, restart, and the hvac client.
"""
import concurrent.futures
import http.client
import json
import statistics
import time
import unittest

from harness import Server

POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }\n'

AUTH_KEYS = {
    "client_token": str, "accessor": str, "policies": list, "token_policies": list,
    "metadata": dict, "lease_duration": int, "renewable": bool, "entity_id": str,
    "token_type": str, "orphan": bool, "mfa_requirement": type(None), "num_uses": int,
}


def request_from(server, source_ip, method, path, body=None, token=None):
    """One request whose TCP connection comes from source_ip (127.0.0.x)."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30,
                                   source_address=(source_ip, 0))
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Vault-Token"] = token
    try:
        c.request(method, "/v1/" + path, body=json.dumps(body) if body is not None else None,
                  headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


class AuthMethodsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()
        s = cls.s
        assert s.post("sys/auth/userpass", {"type": "userpass"}).status == 204
        assert s.post("sys/auth/approle", {"type": "approle"}).status == 204
        assert s.post("sys/mounts/secret", {"type": "kv-v2"}).status == 204
        assert s.put("sys/policy/app-read", {"policy": POLICY}).status in (200, 204)
        assert s.post("secret/data/app/db", {"data": {"pw": "s3"}}).status == 200
        assert s.post("secret/data/other/x", {"data": {"k": "v"}}).status == 200

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def assert_auth_block(self, auth):
        self.assertEqual(set(auth), set(AUTH_KEYS), auth)
        for k, t in AUTH_KEYS.items():
            self.assertIsInstance(auth[k], t, (k, auth[k]))
        self.assertTrue(auth["client_token"].startswith("s."))
        self.assertEqual(auth["token_type"], "service")
        self.assertTrue(auth["renewable"])
        self.assertTrue(auth["orphan"])

    def assert_policy_applies(self, token):
        r = self.s.get("secret/data/app/db", token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["data"], {"pw": "s3"})
        r = self.s.get("secret/data/other/x", token=token)
        self.assertEqual(r.status, 403, r)

    def up_login(self, name, pw):
        return self.s.post("auth/userpass/login/" + name, {"password": pw}, token="")

    # ---- userpass ----
    def test_userpass_lifecycle(self):
        s = self.s
        r = s.post("auth/userpass/users/Alice",
                   {"password": "correct horse", "token_policies": "app-read", "token_ttl": "1h",
                    "token_max_ttl": "2h"})
        self.assertEqual(r.status, 204, r)
        r = s.get("auth/userpass/users/alice")
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertNotIn("password", d)
        self.assertEqual(d["token_policies"], ["app-read"])
        self.assertEqual((d["token_ttl"], d["token_max_ttl"]), (3600, 7200))
        for k in ("token_explicit_max_ttl", "token_period", "token_num_uses",
                  "token_no_default_policy", "token_bound_cidrs", "token_type"):
            self.assertIn(k, d)
        self.assertIn("alice", s.list("auth/userpass/users").json()["data"]["keys"])

        r = self.up_login("ALICE", "correct horse")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertIsNone(body["data"])
        auth = body["auth"]
        self.assert_auth_block(auth)
        self.assertEqual(auth["policies"], ["app-read", "default"])
        self.assertEqual(auth["token_policies"], ["app-read", "default"])
        self.assertEqual(auth["metadata"], {"username": "alice"})
        self.assertEqual(auth["lease_duration"], 3600)
        self.assert_policy_applies(auth["client_token"])
        look = s.get("auth/token/lookup-self", token=auth["client_token"]).json()["data"]
        self.assertEqual(look["display_name"], "userpass-alice")
        self.assertEqual(look["path"], "auth/userpass/login/ALICE")
        r = s.post("auth/token/renew-self", {"increment": "30m"}, token=auth["client_token"])
        self.assertEqual(r.status, 200, r)

        # password and policies sub-paths
        self.assertEqual(s.post("auth/userpass/users/alice/password",
                                {"password": "new pw"}).status, 204)
        self.assertEqual(self.up_login("alice", "correct horse").status, 400)
        self.assertEqual(self.up_login("alice", "new pw").status, 200)
        self.assertEqual(s.post("auth/userpass/users/alice/policies",
                                {"token_policies": ["p2", "app-read"]}).status, 204)
        auth = self.up_login("alice", "new pw").json()["auth"]
        self.assertEqual(auth["policies"], ["app-read", "default", "p2"])
        r = s.post("auth/userpass/users/nobody/password", {"password": "x"})
        self.assertEqual(r.status, 400, r)

        # delete
        self.assertEqual(s.delete("auth/userpass/users/alice").status, 204)
        self.assertEqual(s.get("auth/userpass/users/alice").status, 404)
        r = self.up_login("alice", "new pw")
        self.assertEqual((r.status, r.json()["errors"]), (400, ["invalid username or password"]))

    def test_display_name_comes_from_the_mount_path(self):
        """As Vault: the mount path without auth/, '/' as '-', then the
        user ('auth/corp/people/' + 'bob' = 'corp-people-bob'), not the
        method's type."""
        s = self.s
        self.assertEqual(s.post("sys/auth/corp/people", {"type": "userpass"}).status, 204)
        r = s.post("auth/corp/people/users/bob", {"password": "pw-bob-123", "policies": "app-read"})
        self.assertIn(r.status, (200, 204), r)
        r = s.post("auth/corp/people/login/bob", {"password": "pw-bob-123"}, token="")
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        look = s.get("auth/token/lookup-self", token=tok).json()["data"]
        self.assertEqual(look["display_name"], "corp-people-bob")
        self.assertEqual(look["path"], "auth/corp/people/login/bob")

    def test_userpass_create_needs_password_and_legacy_policies(self):
        s = self.s
        r = s.post("auth/userpass/users/nopw", {"token_policies": "x"})
        self.assertEqual(r.status, 400, r)
        r = s.post("auth/userpass/users/legacy", {"password": "pw", "policies": "app-read"})
        self.assertEqual(r.status, 204, r)
        d = s.get("auth/userpass/users/legacy").json()["data"]
        self.assertEqual(d["policies"], ["app-read"])
        self.assertEqual(d["token_policies"], ["app-read"])
        auth = self.up_login("legacy", "pw").json()["auth"]
        # no token_ttl: the system default lease (768h), as in Vault
        self.assertEqual(auth["lease_duration"], 768 * 3600)
        r = s.post("auth/userpass/users/-bad", {"password": "pw"})
        self.assertEqual(r.status, 400, r)
        r = s.post("auth/userpass/users/ttls", {"password": "pw", "token_ttl": "2h",
                                                 "token_max_ttl": "1h"})
        self.assertEqual(r.status, 400, r)

    def test_userpass_failures_are_uniform(self):
        s = self.s
        self.assertEqual(s.post("auth/userpass/users/carol", {"password": "pw-carol"}).status, 204)
        wrong, unknown = [], []
        for _ in range(5):
            t = time.monotonic()
            r1 = self.up_login("carol", "not-it")
            wrong.append(time.monotonic() - t)
            t = time.monotonic()
            r2 = self.up_login("no-such-user", "not-it")
            unknown.append(time.monotonic() - t)
            self.assertEqual(r1.status, 400)
            self.assertEqual(r2.status, 400)
            self.assertEqual(r1.json(), r2.json())
            self.assertEqual(r1.json(), {"errors": ["invalid username or password"]})
        # both run the KDF (~70 ms; skipping it would answer in ~1 ms): the
        # medians are of the same order even on a loaded machine
        mw, mu = statistics.median(wrong), statistics.median(unknown)
        self.assertLess(mw / mu, 8, (wrong, unknown))
        self.assertLess(mu / mw, 8, (wrong, unknown))
        r = s.post("auth/userpass/login/carol", {}, token="")
        self.assertEqual(r.status, 400, r)

    def test_userpass_token_bound_cidrs(self):
        s = self.s
        s.post("auth/userpass/users/far", {"password": "pw", "token_bound_cidrs": "10.0.0.0/8"})
        r = self.up_login("far", "pw")
        self.assertEqual(r.status, 403, r)
        s.post("auth/userpass/users/near", {"password": "pw", "token_policies": "app-read",
                                            "token_bound_cidrs": ["127.0.0.1/32"]})
        r = self.up_login("near", "pw")
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        st, _ = request_from(s, "127.0.0.1", "GET", "secret/data/app/db", token=tok)
        self.assertEqual(st, 200)
        st, _ = request_from(s, "127.0.0.2", "GET", "secret/data/app/db", token=tok)
        self.assertEqual(st, 403)
        st, _ = request_from(s, "127.0.0.2", "POST", "auth/userpass/login/near", {"password": "pw"})
        self.assertEqual(st, 403)
        r = s.post("auth/userpass/users/badcidr", {"password": "pw", "token_bound_cidrs": "10.0.0.0/99"})
        self.assertEqual(r.status, 400, r)

    def test_userpass_concurrent_logins(self):
        # (that the KDF runs outside any global lock is asserted
        # deterministically in tests/unit/auth/userpass.c; wall-clock ratios
        # are too noisy on a shared machine)
        s = self.s
        s.post("auth/userpass/users/par", {"password": "pw"})
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            codes = list(ex.map(lambda i: self.up_login("par", "pw" if i % 2 else "bad").status,
                                range(12)))
        self.assertEqual(sorted(codes), [200] * 6 + [400] * 6)

    # ---- approle ----
    def make_role(self, name, **fields):
        r = self.s.post("auth/approle/role/" + name, fields)
        self.assertEqual(r.status, 204, r)
        r = self.s.get("auth/approle/role/%s/role-id" % name)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]["role_id"]

    def secret(self, name, **fields):
        r = self.s.post("auth/approle/role/%s/secret-id" % name, fields)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]

    def ar_login(self, role_id, secret_id):
        body = {"role_id": role_id}
        if secret_id is not None:
            body["secret_id"] = secret_id
        return self.s.post("auth/approle/login", body, token="")

    def test_approle_lifecycle(self):
        s = self.s
        rid = self.make_role("Web", token_policies=["app-read"], token_ttl="20m",
                             token_max_ttl="30m", secret_id_ttl="10m", secret_id_num_uses=10)
        d = s.get("auth/approle/role/web").json()["data"]
        self.assertEqual(d["bind_secret_id"], True)
        self.assertEqual((d["secret_id_ttl"], d["secret_id_num_uses"]), (600, 10))
        self.assertEqual((d["token_ttl"], d["token_max_ttl"]), (1200, 1800))
        self.assertEqual(d["token_policies"], ["app-read"])
        self.assertIn("web", s.list("auth/approle/role").json()["data"]["keys"])

        sec = self.secret("web", metadata=json.dumps({"team": "blue"}), num_uses=5)
        self.assertEqual(set(sec), {"secret_id", "secret_id_accessor", "secret_id_ttl",
                                    "secret_id_num_uses"})
        self.assertEqual((sec["secret_id_ttl"], sec["secret_id_num_uses"]), (600, 5))
        keys = s.list("auth/approle/role/web/secret-id").json()["data"]["keys"]
        self.assertEqual(keys, [sec["secret_id_accessor"]])
        look = s.post("auth/approle/role/web/secret-id/lookup",
                      {"secret_id": sec["secret_id"]}).json()["data"]
        self.assertEqual(look["metadata"], {"team": "blue"})
        self.assertEqual(look["secret_id_num_uses"], 5)
        self.assertNotEqual(look["expiration_time"], "0001-01-01T00:00:00Z")
        look2 = s.post("auth/approle/role/web/secret-id-accessor/lookup",
                       {"secret_id_accessor": sec["secret_id_accessor"]}).json()["data"]
        self.assertEqual(look2["secret_id_accessor"], sec["secret_id_accessor"])
        r = s.post("auth/approle/role/web/secret-id-accessor/lookup",
                   {"secret_id_accessor": "00000000-0000-0000-0000-000000000000"})
        self.assertEqual(r.status, 404, r)

        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual(r.status, 200, r)
        auth = r.json()["auth"]
        self.assert_auth_block(auth)
        self.assertEqual(auth["metadata"], {"team": "blue", "role_name": "web"})
        self.assertEqual(auth["token_policies"], ["app-read", "default"])
        self.assertEqual(auth["lease_duration"], 1200)
        self.assert_policy_applies(auth["client_token"])
        look = s.post("auth/approle/role/web/secret-id/lookup",
                      {"secret_id": sec["secret_id"]}).json()["data"]
        self.assertEqual(look["secret_id_num_uses"], 4)

        # wrong secret, wrong role id, missing secret: no oracle
        for r in (self.ar_login(rid, "nope"), self.ar_login("nope", sec["secret_id"])):
            self.assertEqual((r.status, r.json()["errors"]), (400, ["invalid role or secret ID"]))
        self.assertEqual(self.ar_login(rid, None).status, 400)

        # custom role id; the old one stops working
        self.assertEqual(s.post("auth/approle/role/web/role-id", {"role_id": "web-rid"}).status, 204)
        self.assertEqual(self.ar_login(rid, sec["secret_id"]).status, 400)
        self.assertEqual(self.ar_login("web-rid", sec["secret_id"]).status, 200)
        self.make_role("other")
        r = s.post("auth/approle/role/other/role-id", {"role_id": "web-rid"})
        self.assertEqual(r.status, 400, r)

        # destroy by secret and by accessor
        self.assertEqual(s.post("auth/approle/role/web/secret-id/destroy",
                                {"secret_id": sec["secret_id"]}).status, 204)
        self.assertEqual(self.ar_login("web-rid", sec["secret_id"]).status, 400)
        sec2 = self.secret("web")
        self.assertEqual(s.post("auth/approle/role/web/secret-id-accessor/destroy",
                                {"secret_id_accessor": sec2["secret_id_accessor"]}).status, 204)
        self.assertEqual(self.ar_login("web-rid", sec2["secret_id"]).status, 400)

        # custom secret id
        r = s.post("auth/approle/role/web/custom-secret-id", {"secret_id": "my-own-secret"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["secret_id"], "my-own-secret")
        self.assertEqual(self.ar_login("web-rid", "my-own-secret").status, 200)

        # limits from the role
        r = s.post("auth/approle/role/web/secret-id", {"num_uses": 11})
        self.assertEqual(r.status, 400, r)
        r = s.post("auth/approle/role/web/secret-id", {"ttl": "1h"})
        self.assertEqual(r.status, 400, r)

        # delete the role: its secrets die with it
        sec3 = self.secret("web")
        self.assertEqual(s.delete("auth/approle/role/web").status, 204)
        self.assertEqual(s.get("auth/approle/role/web").status, 404)
        self.assertEqual(self.ar_login("web-rid", sec3["secret_id"]).status, 400)
        r = s.post("auth/approle/role/web/secret-id", {})
        self.assertEqual(r.status, 400, r)

    def test_approle_num_uses_and_ttl(self):
        rid = self.make_role("once", secret_id_num_uses=1, token_policies="app-read")
        sec = self.secret("once")
        self.assertEqual(self.ar_login(rid, sec["secret_id"]).status, 200)
        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual((r.status, r.json()["errors"]), (400, ["invalid role or secret ID"]))
        r = self.s.list("auth/approle/role/once/secret-id")
        self.assertEqual(r.status, 404, r)

        rid = self.make_role("short")
        sec = self.secret("short", ttl=1)
        time.sleep(2.1)
        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual((r.status, r.json()["errors"]), (400, ["invalid role or secret ID"]))
        sec = self.secret("short", ttl=1)
        time.sleep(2.1)
        r = self.s.post("auth/approle/tidy/secret-id", {})
        self.assertIn(r.status, (200, 202), r)
        r = self.s.post("auth/approle/role/short/secret-id-accessor/lookup",
                        {"secret_id_accessor": sec["secret_id_accessor"]})
        self.assertEqual(r.status, 404, r)

    def test_approle_concurrent_last_use(self):
        rid = self.make_role("race", secret_id_num_uses=1)
        for _ in range(3):
            sec = self.secret("race")
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                codes = list(ex.map(lambda _: self.ar_login(rid, sec["secret_id"]).status,
                                    range(8)))
            self.assertEqual(sorted(codes), [200] + [400] * 7)

    def test_approle_cidrs(self):
        s = self.s
        rid = self.make_role("far", secret_id_bound_cidrs="10.0.0.0/8")
        sec = self.secret("far")
        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual(r.status, 400, r)
        self.assertIn("unauthorized", r.json()["errors"][0])

        rid = self.make_role("near", secret_id_bound_cidrs=["127.0.0.1/32"],
                             token_policies="app-read")
        sec = self.secret("near")
        st, _ = request_from(s, "127.0.0.2", "POST", "auth/approle/login",
                             {"role_id": rid, "secret_id": sec["secret_id"]})
        self.assertEqual(st, 400)
        self.assertEqual(self.ar_login(rid, sec["secret_id"]).status, 200)
        # secret-id cidr_list must lie inside the role's blocks
        r = s.post("auth/approle/role/near/secret-id", {"cidr_list": "10.0.0.0/8"})
        self.assertEqual(r.status, 400, r)

        # per-secret cidr_list
        rid = self.make_role("persecret")
        sec = self.secret("persecret", cidr_list="127.0.0.2/32")
        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual(r.status, 400, r)
        st, body = request_from(s, "127.0.0.2", "POST", "auth/approle/login",
                                {"role_id": rid, "secret_id": sec["secret_id"]})
        self.assertEqual(st, 200, body)

        # token_bound_cidrs on the role: tokens only work from there
        rid = self.make_role("tokbound", token_bound_cidrs="127.0.0.1/32",
                             token_policies="app-read")
        sec = self.secret("tokbound")
        r = self.ar_login(rid, sec["secret_id"])
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        st, _ = request_from(s, "127.0.0.1", "GET", "secret/data/app/db", token=tok)
        self.assertEqual(st, 200)
        st, _ = request_from(s, "127.0.0.2", "GET", "secret/data/app/db", token=tok)
        self.assertEqual(st, 403)

        # bind_secret_id=false needs another constraint, then role_id suffices
        r = s.post("auth/approle/role/nosecret", {"bind_secret_id": False})
        self.assertEqual(r.status, 400, r)
        rid = self.make_role("nosecret", bind_secret_id=False,
                             secret_id_bound_cidrs="127.0.0.0/8")
        self.assertEqual(self.ar_login(rid, None).status, 200)

    def test_token_ttl_and_num_uses(self):
        rid = self.make_role("limited", token_ttl=1, token_num_uses=2, token_policies="app-read")
        sec = self.secret("limited")
        auth = self.ar_login(rid, sec["secret_id"]).json()["auth"]
        self.assertEqual((auth["lease_duration"], auth["num_uses"]), (1, 2))
        time.sleep(2.1)
        self.assertEqual(self.s.get("secret/data/app/db", token=auth["client_token"]).status, 403)


class RestartTest(unittest.TestCase):
    def test_logins_survive_restart(self):
        s = Server().start().init_unseal()
        try:
            s.post("sys/auth/userpass", {"type": "userpass"})
            s.post("sys/auth/approle", {"type": "approle"})
            s.post("auth/userpass/users/dana", {"password": "pw"})
            s.post("auth/approle/role/svc", {})
            rid = s.get("auth/approle/role/svc/role-id").json()["data"]["role_id"]
            sid = s.post("auth/approle/role/svc/secret-id", {}).json()["data"]["secret_id"]
            s.stop()
            s.start()
            s.unseal()
            r = s.post("auth/userpass/login/dana", {"password": "pw"}, token="")
            self.assertEqual(r.status, 200, r)
            r = s.post("auth/approle/login", {"role_id": rid, "secret_id": sid}, token="")
            self.assertEqual(r.status, 200, r)
            # the secret ID is not stored in the clear anywhere on disk
            import os
            for root, _, files in os.walk(os.path.join(s.dir, "data")):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        self.assertNotIn(sid.encode(), fh.read())
        finally:
            s.cleanup()


try:
    import hvac  # Debian python3-hvac
except ImportError:  # pragma: no cover
    hvac = None


@unittest.skipIf(hvac is None, "hvac not installed")
class HvacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()
        cls.url = "http://127.0.0.1:%d" % cls.s.port

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def test_hvac_userpass_and_approle(self):
        c = hvac.Client(url=self.url, token=self.s.root_token)
        c.sys.enable_auth_method("userpass")
        c.sys.enable_auth_method("approle")
        c.sys.create_or_update_policy("app-read", POLICY)
        c.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        c.secrets.kv.v2.create_or_update_secret("app/db", secret={"pw": "s3"}, mount_point="secret")

        c.auth.userpass.create_or_update_user("erin", password="pw-erin", policies=["app-read"])
        self.assertIn("erin", c.auth.userpass.list_user()["data"]["keys"])
        self.assertEqual(c.auth.userpass.read_user("erin")["data"]["token_policies"], ["app-read"])
        u = hvac.Client(url=self.url)
        resp = u.auth.userpass.login("erin", "pw-erin")
        self.assertIn("app-read", resp["auth"]["policies"])
        self.assertTrue(u.is_authenticated())
        got = u.secrets.kv.v2.read_secret_version("app/db", mount_point="secret")
        self.assertEqual(got["data"]["data"], {"pw": "s3"})
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            hvac.Client(url=self.url).auth.userpass.login("erin", "wrong")

        c.auth.approle.create_or_update_approle("ci", token_policies=["app-read"],
                                                token_ttl="15m", secret_id_num_uses=3,
                                                enable_local_secret_ids=False)
        self.assertEqual(c.auth.approle.read_role("ci")["data"]["token_ttl"], 900)
        self.assertIn("ci", c.auth.approle.list_roles()["data"]["keys"])
        rid = c.auth.approle.read_role_id("ci")["data"]["role_id"]
        sec = c.auth.approle.generate_secret_id("ci", metadata={"job": "42"})["data"]
        self.assertEqual(sec["secret_id_num_uses"], 3)
        self.assertEqual(c.auth.approle.read_secret_id("ci", sec["secret_id"])["data"]["metadata"],
                         {"job": "42"})
        self.assertEqual(c.auth.approle.list_secret_id_accessors("ci")["data"]["keys"],
                         [sec["secret_id_accessor"]])
        a = hvac.Client(url=self.url)
        resp = a.auth.approle.login(rid, sec["secret_id"])
        self.assertEqual(resp["auth"]["lease_duration"], 900)
        self.assertEqual(resp["auth"]["metadata"], {"job": "42", "role_name": "ci"})
        got = a.secrets.kv.v2.read_secret_version("app/db", mount_point="secret")
        self.assertEqual(got["data"]["data"], {"pw": "s3"})
        c.auth.approle.update_role_id("ci", "ci-role-id")
        self.assertEqual(c.auth.approle.read_role_id("ci")["data"]["role_id"], "ci-role-id")
        cs = c.auth.approle.create_custom_secret_id("ci", "custom-sid")["data"]
        self.assertEqual(cs["secret_id"], "custom-sid")
        hvac.Client(url=self.url).auth.approle.login("ci-role-id", "custom-sid")
        c.auth.approle.destroy_secret_id("ci", "custom-sid")
        acc = c.auth.approle.read_secret_id_accessor("ci", sec["secret_id_accessor"])["data"]
        self.assertEqual(acc["secret_id_num_uses"], 2)
        c.auth.approle.destroy_secret_id_accessor("ci", sec["secret_id_accessor"])
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            hvac.Client(url=self.url).auth.approle.login("ci-role-id", sec["secret_id"])
        c.auth.approle.delete_role("ci")
        c.auth.userpass.delete_user("erin")


if __name__ == "__main__":
    unittest.main()
