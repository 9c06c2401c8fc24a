"""
test_wrapping.py - response wrapping against the real binary: X-Vault-Wrap-TTL
on reads, writes, logins, token creation and approle secret-ids; the
sys/wrapping/{wrap,unwrap,lookup,rewrap} endpoints (single use, Vault's 400
for a used token); policy min/max_wrapping_ttl; expiry (the token and its
cubbyhole go); the audit log (wrap_info HMAC'd, the unwrapped secret never
in clear); the CLI (-wrap-ttl, coffer unwrap); and hvac's own calls
(create_token(wrap_ttl=), sys.unwrap, the adapter's wrap_ttl=).

    COFFER_BIN=$PWD/build/coffer /usr/bin/python3 tests/e2e/run.py test_wrapping.py
"""
import json
import os
import subprocess
import threading
import time
import unittest

from harness import BIN, Server

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover - deps.sh installs python3-hvac
    hvac = None

INVALID = "wrapping token is not valid or does not exist"


def wrap_hdr(ttl):
    return {"X-Vault-Wrap-TTL": str(ttl)}


class WrappingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()
        s = cls.s
        r = s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        assert r.status == 204, r
        r = s.post("secret/data/app", {"data": {"password": "hunter2-secret"}})
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def wrapped(self, method, path, body=None, ttl="5m", token=None):
        r = self.s.request(method, path, body=body, token=token, headers=wrap_hdr(ttl))
        self.assertEqual(r.status, 200, r)
        j = r.json()
        wi = j["wrap_info"]
        # the client sees wrap_info and nothing else
        self.assertIsNone(j["data"])
        self.assertIsNone(j["auth"])
        self.assertEqual(j["lease_id"], "")
        return wi

    # -- the contract --
    def test_wrapped_read_unwraps_once(self):
        s = self.s
        wi = self.wrapped("GET", "secret/data/app", ttl="300")
        self.assertTrue(wi["token"].startswith("s."), wi)
        self.assertEqual(len(wi["accessor"]), 24)
        self.assertEqual(wi["ttl"], 300)
        self.assertEqual(wi["creation_path"], "secret/data/app")
        self.assertRegex(wi["creation_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertNotIn("wrapped_accessor", wi)
        self.assertNotIn(b"hunter2", s.request("GET", "secret/data/app", headers=wrap_hdr(60)).body)

        # lookup is unauthenticated and does not use the token up
        for _ in range(2):
            r = s.post("sys/wrapping/lookup", {"token": wi["token"]}, token="")
            self.assertEqual(r.status, 200, r)
            d = r.json()["data"]
            self.assertEqual(d["creation_ttl"], 300)
            self.assertEqual(d["creation_path"], "secret/data/app")
            self.assertEqual(d["creation_time"], wi["creation_time"])
        # token lookup shows a response-wrapping token with one use
        r = s.post("auth/token/lookup", {"token": wi["token"]})
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["policies"], ["response-wrapping"])
        self.assertEqual(d["num_uses"], 1)
        self.assertTrue(d["orphan"])
        self.assertFalse(d["renewable"])
        self.assertLessEqual(d["ttl"], 300)

        # the wrapping token as the client token
        r = s.post("sys/wrapping/unwrap", token=wi["token"])
        self.assertEqual(r.status, 200, r)
        inner = r.json()
        self.assertEqual(inner["data"]["data"], {"password": "hunter2-secret"})
        self.assertEqual(inner["data"]["metadata"]["version"], 1)
        self.assertEqual(inner["mount_type"], "kv")
        self.assertTrue(inner["request_id"])
        # once only: header, body and lookup all refuse it now
        r = s.post("sys/wrapping/unwrap", token=wi["token"])
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/unwrap", {"token": wi["token"]})
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/lookup", {"token": wi["token"]}, token="")
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        # and it is gone from the token store
        r = s.post("auth/token/lookup-accessor", {"accessor": wi["accessor"]})
        self.assertNotEqual(r.status, 200, r)

    def test_non_wrapping_tokens_refused(self):
        s = self.s
        r = s.post("auth/token/create", {"policies": ["default"]})
        tok = r.json()["auth"]["client_token"]
        r = s.post("sys/wrapping/unwrap", {"token": tok})
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/unwrap", {"token": "s.notarealtokenatall12345"})
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/unwrap", token=tok)  # its own token, not a wrapping one
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/lookup", {}, token="")
        self.assertEqual(r.status, 400, r)

    def test_bad_wrap_ttl_header(self):
        r = self.s.request("GET", "secret/data/app", headers=wrap_hdr("soon"))
        self.assertEqual(r.status, 400, r)
        self.assertIn("soon", r.json()["errors"][0])
        r = self.s.request("GET", "secret/data/app", headers=wrap_hdr("-10"))
        self.assertEqual((r.status, r.json()["errors"]), (400, ["requested wrap ttl cannot be negative"]))

    def test_wrap_rewrap_third_party(self):
        s = self.s
        r = s.post("sys/wrapping/wrap", {"a": "b"})
        self.assertEqual((r.status, r.json()["errors"]), (400, ["must specify a wrapping TTL"]))
        wi = self.wrapped("POST", "sys/wrapping/wrap", {"k1": "v1", "n": 3}, ttl="90s")
        self.assertEqual((wi["ttl"], wi["creation_path"]), (90, "sys/wrapping/wrap"))
        r = s.post("sys/wrapping/rewrap", {"token": wi["token"]})
        self.assertEqual(r.status, 200, r)
        wi2 = r.json()["wrap_info"]
        self.assertNotEqual(wi2["token"], wi["token"])
        self.assertEqual((wi2["ttl"], wi2["creation_path"]), (90, "sys/wrapping/wrap"))
        # the old token is spent
        r = s.post("sys/wrapping/unwrap", {"token": wi["token"]})
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        # a third party (the root token) unwraps the new one from the body
        r = s.post("sys/wrapping/unwrap", {"token": wi2["token"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"], {"k1": "v1", "n": 3})
        r = s.post("sys/wrapping/unwrap", {"token": wi2["token"]})
        self.assertEqual(r.status, 400, r)

    def test_concurrent_unwraps_one_wins(self):
        s = self.s
        wi = self.wrapped("POST", "sys/wrapping/wrap", {"race": "x"}, ttl="60")
        results = []

        def go(i):
            body = {"token": wi["token"]} if i % 2 else None
            tok = None if i % 2 else wi["token"]
            r = s.request("POST", "sys/wrapping/unwrap", body=body or {}, token=tok)
            results.append(r.status)

        ts = [threading.Thread(target=go, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(results), [200] + [400] * 7, results)

    def test_wrapped_token_create_and_accessor(self):
        s = self.s
        wi = self.wrapped("POST", "auth/token/create", {"policies": ["default"], "ttl": "1h"})
        self.assertEqual(wi["creation_path"], "auth/token/create")
        self.assertEqual(len(wi["wrapped_accessor"]), 24)
        # the wrapped token already exists: its accessor resolves
        r = s.post("auth/token/lookup-accessor", {"accessor": wi["wrapped_accessor"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["policies"], ["default"])
        r = s.post("sys/wrapping/unwrap", token=wi["token"])
        self.assertEqual(r.status, 200, r)
        auth = r.json()["auth"]
        self.assertEqual(auth["accessor"], wi["wrapped_accessor"])
        r = s.get("auth/token/lookup-self", token=auth["client_token"])
        self.assertEqual(r.status, 200, r)

    def test_wrapped_login(self):
        s = self.s
        self.assertEqual(s.post("sys/auth/userpass", {"type": "userpass"}).status, 204)
        self.assertEqual(s.post("auth/userpass/users/alice", {"password": "pw-alice",
                                                               "token_policies": "default"}).status, 204)
        wi = self.wrapped("POST", "auth/userpass/login/alice", {"password": "pw-alice"}, token="")
        self.assertEqual(wi["creation_path"], "auth/userpass/login/alice")
        self.assertTrue(wi["wrapped_accessor"])
        r = s.post("sys/wrapping/unwrap", token=wi["token"])
        auth = r.json()["auth"]
        self.assertEqual(auth["accessor"], wi["wrapped_accessor"])
        self.assertIn("default", auth["policies"])
        self.assertEqual(s.get("auth/token/lookup-self", token=auth["client_token"]).status, 200)

    def test_policy_wrapping_ttl_bounds(self):
        s = self.s
        pol = ('path "secret/data/app" {\n  capabilities = ["read"]\n'
               '  min_wrapping_ttl = "10s"\n  max_wrapping_ttl = "60s"\n}\n')
        self.assertEqual(s.put("sys/policy/wrapped-only", {"policy": pol}).status, 204)
        tok = s.post("auth/token/create", {"policies": ["wrapped-only"]}).json()["auth"]["client_token"]
        # unwrapped, too short, too long: denied; in range: wrapped
        self.assertEqual(s.get("secret/data/app", token=tok).status, 403)
        r = s.request("GET", "secret/data/app", token=tok, headers=wrap_hdr("5s"))
        self.assertEqual(r.status, 403, r)
        r = s.request("GET", "secret/data/app", token=tok, headers=wrap_hdr("2m"))
        self.assertEqual(r.status, 403, r)
        wi = self.wrapped("GET", "secret/data/app", ttl="30s", token=tok)
        self.assertEqual(wi["ttl"], 30)
        # the holder of the default policy may unwrap a token it was handed
        r = s.post("sys/wrapping/unwrap", {"token": wi["token"]}, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"]["data"]["password"], "hunter2-secret")

    def test_expired_wrapping_token_is_revoked(self):
        s = self.s
        wi = self.wrapped("POST", "sys/wrapping/wrap", {"short": "lived"}, ttl="2s")
        self.assertEqual(s.post("sys/wrapping/lookup", {"token": wi["token"]}, token="").status, 200)
        deadline = time.time() + 15
        while time.time() < deadline:
            r = s.post("sys/wrapping/lookup", {"token": wi["token"]}, token="")
            if r.status != 200:
                break
            time.sleep(0.25)
        self.assertEqual((r.status, r.json()["errors"]), (400, [INVALID]))
        r = s.post("sys/wrapping/unwrap", {"token": wi["token"]})
        self.assertEqual(r.status, 400, r)
        # revoked by the expiration manager, not just refused at lookup
        r = s.post("auth/token/lookup-accessor", {"accessor": wi["accessor"]})
        self.assertNotEqual(r.status, 200, r)

    def test_audit_logs_wrap_info_hashed(self):
        s = self.s
        log = os.path.join(s.dir, "audit.log")
        r = s.put("sys/audit/wrapfile", {"type": "file", "options": {"file_path": log}})
        self.assertEqual(r.status, 204, r)
        try:
            wi = self.wrapped("GET", "secret/data/app", ttl="60")
            r = s.post("sys/wrapping/unwrap", token=wi["token"])
            self.assertEqual(r.status, 200, r)
        finally:
            s.delete("sys/audit/wrapfile")
        text = open(log).read()
        self.assertNotIn(wi["token"], text)
        self.assertNotIn("hunter2-secret", text)
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        wrapped = [e for e in entries if e["type"] == "response" and e["request"]["path"] == "secret/data/app"]
        self.assertEqual(len(wrapped), 1)
        w = wrapped[0]["response"]["wrap_info"]
        self.assertTrue(w["token"].startswith("hmac-sha256:"), w)
        self.assertTrue(w["accessor"].startswith("hmac-sha256:"), w)
        self.assertEqual((w["ttl"], w["creation_path"]), (60, "secret/data/app"))
        self.assertNotIn("data", wrapped[0]["response"])
        unwrap = [e for e in entries if e["type"] == "response" and e["request"]["path"] == "sys/wrapping/unwrap"]
        self.assertEqual(len(unwrap), 1)
        pw = unwrap[0]["response"]["data"]["data"]["password"]
        self.assertTrue(pw.startswith("hmac-sha256:"), unwrap[0])

    # -- the CLI --
    def cli(self, *args, token=None, env=None):
        e = dict(os.environ, VAULT_ADDR="http://%s" % self.s.addr,
                 VAULT_TOKEN=token if token is not None else self.s.root_token, HOME=self.s.dir)
        if env:
            e.update(env)
        p = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_cli_wrap_ttl_and_unwrap(self):
        rc, out, err = self.cli("kv", "get", "-wrap-ttl=2m", "-format=json", "secret/app")
        self.assertEqual(rc, 0, err)
        wi = json.loads(out)["wrap_info"]
        self.assertEqual(wi["ttl"], 120)
        self.assertEqual(wi["creation_path"], "secret/data/app")
        rc, out, err = self.cli("token", "lookup", "-format=json", wi["token"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["data"]["policies"], ["response-wrapping"])
        rc, out, err = self.cli("unwrap", "-format=json", wi["token"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["data"]["data"]["password"], "hunter2-secret")
        rc, out, err = self.cli("unwrap", wi["token"])
        self.assertNotEqual(rc, 0)
        self.assertIn(INVALID, err)

        # table output of a wrapped write, then unwrap with the wrapping
        # token as VAULT_TOKEN and no argument
        rc, out, err = self.cli("write", "-wrap-ttl=60s", "sys/wrapping/wrap", "zip=zap")
        self.assertEqual(rc, 0, err)
        self.assertIn("wrapping_token:", out)
        tok = [l.split()[1] for l in out.splitlines() if l.startswith("wrapping_token:")][0]
        rc, out, err = self.cli("unwrap", token=tok)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"zip\s+zap")
        # VAULT_WRAP_TTL works as the flag does
        rc, out, err = self.cli("token", "create", "-policy=default", "-format=json",
                                env={"VAULT_WRAP_TTL": "45s"})
        self.assertEqual(rc, 0, err)
        wi = json.loads(out)["wrap_info"]
        self.assertEqual(wi["ttl"], 45)
        self.assertTrue(wi["wrapped_accessor"])


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class HvacWrappingTest(unittest.TestCase):
    """The same flows through hvac's own calls."""

    @classmethod
    def setUpClass(cls):
        cls.s = Server().start()
        cls.s.init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def client(self, token=None):
        return hvac.Client(url="http://%s" % self.s.addr,
                           token=self.s.root_token if token is None else token, timeout=30)

    def test_create_token_wrapped_and_unwrap(self):
        c = self.client()
        r = c.auth.token.create(policies=["default"], ttl="30m", wrap_ttl="10m")
        wi = r["wrap_info"]
        self.assertEqual(wi["ttl"], 600)
        self.assertIsNone(r["auth"])
        # the legacy create_token too
        r2 = c.create_token(policies=["default"], wrap_ttl="1m")
        self.assertEqual(r2["wrap_info"]["ttl"], 60)
        # a third party unwraps with hvac's sys.unwrap(token)
        out = c.sys.unwrap(wi["token"])
        tok = out["auth"]["client_token"]
        self.assertEqual(out["auth"]["accessor"], wi["wrapped_accessor"])
        self.assertTrue(self.client(tok).is_authenticated())
        with self.assertRaises(hexc.InvalidRequest) as cm:
            c.sys.unwrap(wi["token"])
        self.assertIn(INVALID, cm.exception.errors)
        # the wrapping token as hvac's own token: unwrap() with no argument
        out = self.client(r2["wrap_info"]["token"]).sys.unwrap()
        self.assertIn("default", out["auth"]["policies"])

    def test_sys_wrap_via_adapter(self):
        c = self.client()
        r = c.adapter.post("/v1/sys/wrapping/wrap", json={"payload": "p1"}, wrap_ttl="120")
        self.assertEqual(r["wrap_info"]["creation_path"], "sys/wrapping/wrap")
        self.assertEqual(c.sys.unwrap(r["wrap_info"]["token"])["data"], {"payload": "p1"})

    def test_approle_secret_id_secure_introduction(self):
        c = self.client()
        c.sys.enable_auth_method("approle")
        c.auth.approle.create_or_update_approle("app", token_policies=["default"])
        role_id = c.auth.approle.read_role_id("app")["data"]["role_id"]
        # the orchestrator fetches a wrapped secret_id (hvac 0.11's
        # generate_secret_id has no wrap_ttl: the adapter sends the header)
        r = c.adapter.post("/v1/auth/approle/role/app/secret-id", json={}, wrap_ttl="5m")
        wi = r["wrap_info"]
        self.assertEqual(wi["creation_path"], "auth/approle/role/app/secret-id")
        self.assertNotIn("wrapped_accessor", wi)  # a secret_id is data, not a token
        # the app unwraps once with the wrapping token as its token
        app = self.client(wi["token"])
        sid = app.sys.unwrap()["data"]["secret_id"]
        login = self.client("").auth.approle.login(role_id, sid)
        self.assertTrue(login["auth"]["client_token"])
        # an interceptor who got the token too late learns it was used
        with self.assertRaises(hexc.InvalidRequest):
            self.client(wi["token"]).sys.unwrap()


if __name__ == "__main__":
    unittest.main()
