"""
test_hvac.py - the Python `hvac` library (Debian python3-hvac) driving the
real coffer binary: what our users' scripts do every day, through the
client's own methods (never raw HTTP), so any shape, status code or header
that hvac does not understand fails here.

Auth methods (userpass, approle, kubernetes) and audit devices are tested
only when the server under test has them: the probe is the server's own
answer to enabling one, never a flag in this file.
"""
import os
import sys
import tempfile
import time
import unittest
import warnings

from harness import Server

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover - deps.sh installs python3-hvac
    hvac = None


def client(server, token=None):
    return hvac.Client(url="http://%s" % server.addr, token=token, timeout=30)


def server_has_auth(c, kind):
    """Enable `kind` at its default path; False if the server lacks the plugin."""
    try:
        c.sys.enable_auth_method(kind)
        return True
    except hexc.InvalidRequest as e:
        if any("plugin not found" in m or "unknown" in m or "not supported" in m
               for m in (e.errors or [str(e)])):
            return False
        raise


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class HvacLifecycleTest(unittest.TestCase):
    """init/unseal/seal/rekey on a fresh file-storage server, all through hvac."""

    def setUp(self):
        self.s = Server().start()
        self.c = client(self.s)

    def tearDown(self):
        self.s.cleanup()

    def test_init_unseal_seal(self):
        c = self.c
        self.assertFalse(c.sys.is_initialized())
        st = c.sys.read_init_status()
        self.assertEqual(st, {"initialized": False})
        health = c.sys.read_health_status(method="GET")
        # uninitialised: 501 with a JSON body (hvac returns the Response)
        self.assertEqual(health.status_code, 501)
        self.assertFalse(health.json()["initialized"])

        r = c.sys.initialize(secret_shares=5, secret_threshold=3)
        self.assertEqual(len(r["keys"]), 5)
        self.assertEqual(len(r["keys_base64"]), 5)
        self.assertTrue(r["root_token"])
        self.assertTrue(c.sys.is_initialized())
        with self.assertRaises(hexc.InvalidRequest) as cm:
            c.sys.initialize(secret_shares=1, secret_threshold=1)
        self.assertIn("already initialized", " ".join(cm.exception.errors))

        self.assertTrue(c.sys.is_sealed())
        ss = c.sys.read_seal_status()
        self.assertEqual((ss["t"], ss["n"], ss["progress"], ss["type"]), (3, 5, 0, "shamir"))
        # unseal one key at a time, then the rest with submit_unseal_keys
        c.sys.submit_unseal_key(r["keys"][0])
        st = c.sys.read_seal_status()
        self.assertEqual(st["progress"], 1)
        self.assertTrue(st["sealed"])
        st = c.sys.submit_unseal_key(reset=True)
        self.assertEqual(st["progress"], 0)
        st = c.sys.submit_unseal_keys(r["keys"][1:4])
        self.assertFalse(st["sealed"])
        self.assertFalse(c.sys.is_sealed())

        c.token = r["root_token"]
        self.assertTrue(c.is_authenticated())
        h = c.sys.read_health_status(method="GET")
        self.assertEqual((h["initialized"], h["sealed"], h["standby"]), (True, False, False))
        self.assertIn("version", h)
        self.assertIn("server_time_utc", h)
        # HEAD works too (load balancers use it)
        self.assertEqual(c.sys.read_health_status(method="HEAD").status_code, 200)

        c.sys.seal()
        self.assertTrue(c.sys.is_sealed())
        with self.assertRaises(hexc.VaultDown):
            c.secrets.kv.v1.read_secret("x", mount_point="secret")
        h = c.sys.read_health_status(method="GET")
        self.assertEqual(h.status_code, 503)
        # sealedcode override as a monitoring probe would use it
        h = c.sys.read_health_status(method="GET", sealed_code=200)
        self.assertEqual(h["sealed"], True)
        c.sys.submit_unseal_keys(r["keys"][2:5])
        self.assertFalse(c.sys.is_sealed())

    def test_rekey_rotate_key_status(self):
        c = self.c
        r = c.sys.initialize(secret_shares=3, secret_threshold=2)
        c.sys.submit_unseal_keys(r["keys"][:2])
        c.token = r["root_token"]

        ks = c.sys.get_encryption_key_status()
        term = ks["data"]["term"] if "data" in ks else ks["term"]
        self.assertGreaterEqual(term, 1)
        self.assertIn("install_time", ks)
        c.sys.rotate_encryption_key()
        ks2 = c.sys.get_encryption_key_status()
        self.assertEqual(ks2["term"], term + 1)

        prog = c.sys.read_rekey_progress()
        self.assertFalse(prog["started"])
        st = c.sys.start_rekey(secret_shares=4, secret_threshold=2)
        self.assertTrue(st["started"])
        self.assertEqual((st["n"], st["t"], st["required"]), (4, 2, 2))
        nonce = st["nonce"]
        self.assertTrue(nonce)
        done = c.sys.rekey_multi(r["keys"][:2], nonce=nonce)
        self.assertTrue(done["complete"])
        self.assertEqual(len(done["keys"]), 4)
        self.assertEqual(len(done["keys_base64"]), 4)
        # the old keys are gone, the new ones unseal
        c.sys.seal()
        with self.assertRaises(hexc.InvalidRequest):
            c.sys.submit_unseal_keys(r["keys"][:2])
        c.sys.submit_unseal_key(reset=True)
        st = c.sys.submit_unseal_keys(done["keys"][1:3])
        self.assertFalse(st["sealed"])
        # a rekey can be cancelled
        c.sys.start_rekey(secret_shares=1, secret_threshold=1)
        c.sys.cancel_rekey()
        self.assertFalse(c.sys.read_rekey_progress()["started"])

    def test_persistence_across_restart(self):
        c = self.c
        r = c.sys.initialize(secret_shares=1, secret_threshold=1)
        c.sys.submit_unseal_key(r["keys"][0])
        c.token = r["root_token"]
        c.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
        c.secrets.kv.v2.create_or_update_secret("app/db", {"password": "p1"}, mount_point="kv")
        self.s.stop()
        self.s.start()
        self.assertTrue(c.sys.is_sealed())
        c.sys.submit_unseal_key(r["keys"][0])
        got = c.secrets.kv.v2.read_secret_version("app/db", mount_point="kv")
        self.assertEqual(got["data"]["data"], {"password": "p1"})


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class HvacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()
        cls.c = client(cls.s, cls.s.root_token)
        cls.c.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        cls.c.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    # ---- sys ----
    def test_mounts(self):
        c = self.c
        c.sys.enable_secrets_engine("kv", path="team-a", description="team A",
                                    config={"default_lease_ttl": "1h", "max_lease_ttl": "24h"},
                                    options={"version": "2"})
        mounts = c.sys.list_mounted_secrets_engines()
        self.assertIn("team-a/", mounts["data"])
        self.assertIn("team-a/", mounts)  # old clients read the top level
        m = mounts["data"]["team-a/"]
        self.assertEqual(m["type"], "kv")
        self.assertEqual(m["description"], "team A")
        self.assertEqual(m["options"], {"version": "2"})
        self.assertEqual(m["config"]["default_lease_ttl"], 3600)
        self.assertIn("cubbyhole/", mounts["data"])
        self.assertIn("sys/", mounts["data"])
        self.assertEqual(c.sys.retrieve_mount_option("team-a", "version"), "2")

        cfg = c.sys.read_mount_configuration("team-a")
        self.assertEqual(cfg["data"]["default_lease_ttl"], 3600)
        self.assertEqual(cfg["data"]["max_lease_ttl"], 86400)
        c.sys.tune_mount_configuration("team-a", default_lease_ttl="2h",
                                       description="team A secrets")
        cfg = c.sys.read_mount_configuration("team-a")
        self.assertEqual(cfg["data"]["default_lease_ttl"], 7200)
        self.assertEqual(cfg["data"]["description"], "team A secrets")

        c.sys.move_backend("team-a", "team-b")
        mounts = c.sys.list_mounted_secrets_engines()["data"]
        self.assertNotIn("team-a/", mounts)
        self.assertIn("team-b/", mounts)
        c.sys.disable_secrets_engine("team-b")
        self.assertNotIn("team-b/", c.sys.list_mounted_secrets_engines()["data"])

        with self.assertRaises(hexc.InvalidRequest) as cm:
            c.sys.enable_secrets_engine("kv", path="secret")
        self.assertTrue(cm.exception.errors)
        with self.assertRaises(hexc.InvalidRequest):
            c.sys.enable_secrets_engine("no-such-engine", path="nope")

    def test_auth_mounts(self):
        c = self.c
        methods = c.sys.list_auth_methods()
        self.assertIn("token/", methods["data"])
        self.assertEqual(methods["data"]["token/"]["type"], "token")
        tune = c.sys.read_auth_method_tuning("token")
        self.assertIn("default_lease_ttl", tune["data"])
        self.assertEqual(tune["data"]["token_type"], "default-service")
        # token auth cannot be disabled
        with self.assertRaises((hexc.InvalidRequest, hexc.Forbidden)):
            c.sys.disable_auth_method("token")

    def test_policies(self):
        c = self.c
        rules = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'
        c.sys.create_or_update_policy("app-read", rules)
        self.assertIn("app-read", c.sys.list_policies()["data"]["policies"])
        self.assertIn("app-read", c.sys.list_policies()["policies"])
        got = c.sys.read_policy("app-read")
        self.assertEqual(got["data"]["rules"], rules)
        self.assertEqual(got["rules"], rules)
        self.assertEqual(c.get_policy("app-read"), rules)
        # dict policies are sent as JSON (hvac's pretty_print path)
        c.sys.create_or_update_policy(
            "json-pol", {"path": {"secret/data/json/*": {"capabilities": ["read"]}}})
        self.assertIn("secret/data/json/", c.sys.read_policy("json-pol")["data"]["rules"])
        c.sys.delete_policy("json-pol")
        self.assertNotIn("json-pol", c.sys.list_policies()["data"]["policies"])
        self.assertIsNone(c.get_policy("json-pol"))
        with self.assertRaises(hexc.InvalidPath):
            c.sys.read_policy("json-pol")
        with self.assertRaises(hexc.InvalidRequest):
            c.sys.create_or_update_policy("broken", 'path "x" { capabilities = [')
        with self.assertRaises(hexc.InvalidRequest):
            c.sys.delete_policy("root")

    def test_capabilities(self):
        c = self.c
        c.sys.create_or_update_policy(
            "caps", 'path "secret/data/caps/*" { capabilities = ["read", "update"] }')
        tok = c.auth.token.create(policies=["caps"], ttl="1h")["auth"]
        r = c.sys.get_capabilities(["secret/data/caps/x", "secret/data/other"])
        self.assertEqual(r["capabilities"], ["root"])
        r = c.sys.get_capabilities(["secret/data/caps/x"], token=tok["client_token"])
        self.assertEqual(sorted(r["secret/data/caps/x"]), ["read", "update"])
        r = c.sys.get_capabilities(["secret/data/other"], accessor=tok["accessor"])
        self.assertEqual(r["secret/data/other"], ["deny"])
        c2 = client(self.s, tok["client_token"])
        r = c2.sys.get_capabilities(["secret/data/caps/y", "secret/data/other"])
        self.assertEqual(sorted(r["data"]["secret/data/caps/y"]), ["read", "update"])
        self.assertEqual(r["data"]["secret/data/other"], ["deny"])

    def test_leader_and_generic_sys(self):
        c = self.c
        leader = c.sys.read_leader_status()
        self.assertIn("ha_enabled", leader)
        self.assertFalse(leader["ha_enabled"])
        self.assertTrue(c.sys.is_initialized())
        self.assertFalse(c.sys.is_sealed())

    # ---- tokens ----
    def test_tokens(self):
        # hvac 0.11 flags its v1 helpers (create_token, renew_self_token...)
        # as deprecated; scripts still call them, so they are exercised here.
        # hvac forces "always" on its own warnings: record them instead.
        with warnings.catch_warnings(record=True):
            self._tokens()

    def _tokens(self):
        c = self.c
        c.sys.create_or_update_policy("tok-pol", 'path "secret/data/t/*" { capabilities = ["read"] }\n'
                                      'path "auth/token/create" { capabilities = ["update"] }')
        created = c.auth.token.create(policies=["tok-pol"], ttl="1h", meta={"team": "a"},
                                      display_name="ci", renewable=True)
        auth = created["auth"]
        self.assertIsNone(created["data"])
        self.assertEqual(auth["policies"], ["default", "tok-pol"])
        self.assertEqual(auth["token_policies"], ["default", "tok-pol"])
        self.assertEqual(auth["metadata"], {"team": "a"})
        self.assertEqual(auth["lease_duration"], 3600)
        self.assertTrue(auth["renewable"])
        self.assertEqual(auth["token_type"], "service")
        self.assertFalse(auth["orphan"])
        tok, acc = auth["client_token"], auth["accessor"]

        me = client(self.s, tok)
        self.assertTrue(me.is_authenticated())
        info = me.auth.token.lookup_self()["data"]
        self.assertEqual(info["id"], tok)
        self.assertEqual(info["accessor"], acc)
        self.assertEqual(info["display_name"], "token-ci")
        self.assertEqual(info["meta"], {"team": "a"})
        self.assertEqual(info["policies"], ["default", "tok-pol"])
        self.assertLessEqual(info["ttl"], 3600)
        self.assertEqual(info["creation_ttl"], 3600)
        self.assertFalse(info["orphan"])
        self.assertEqual(me.lookup_token()["data"]["id"], tok)

        by_acc = c.auth.token.lookup_accessor(acc)["data"]
        self.assertEqual(by_acc["id"], "")
        self.assertEqual(by_acc["display_name"], "token-ci")
        self.assertEqual(c.auth.token.lookup(tok)["data"]["accessor"], acc)
        self.assertEqual(c.lookup_token(acc, accessor=True)["data"]["accessor"], acc)

        ren = me.auth.token.renew_self(increment="30m")["auth"]
        self.assertEqual(ren["client_token"], tok)
        self.assertLessEqual(ren["lease_duration"], 1800)
        self.assertGreater(ren["lease_duration"], 0)
        ren = c.auth.token.renew(tok, increment=600)["auth"]
        self.assertEqual(ren["lease_duration"], 600)
        self.assertEqual(me.renew_self_token()["auth"]["client_token"], tok)

        # children die with their parent; orphans survive
        child = me.auth.token.create(policies=["tok-pol"], ttl="10m")["auth"]["client_token"]
        # create-orphan needs no sudo, only a policy on the path
        c.sys.create_or_update_policy("orphan-maker",
                                      'path "auth/token/create-orphan" { capabilities = ["update"] }')
        maker = client(self.s, c.auth.token.create(policies=["orphan-maker", "tok-pol"],
                                                   ttl="1h")["auth"]["client_token"])
        orphan = maker.write("auth/token/create-orphan", policies=["tok-pol"], ttl="10m")
        self.assertTrue(orphan["auth"]["orphan"])
        orphan = orphan["auth"]["client_token"]
        self.assertTrue(c.auth.token.lookup(orphan)["data"]["orphan"])
        # no_parent without sudo is refused (Vault: 400, not 403)
        with self.assertRaises(hexc.InvalidRequest):
            me.auth.token.create(policies=["tok-pol"], ttl="10m", no_parent=True)
        c.auth.token.revoke(tok)
        self.assertFalse(me.is_authenticated())
        self.assertFalse(client(self.s, child).is_authenticated())
        self.assertTrue(client(self.s, orphan).is_authenticated())
        c.auth.token.revoke_accessor(c.auth.token.lookup(orphan)["data"]["accessor"])
        self.assertFalse(client(self.s, orphan).is_authenticated())

        # v1-style helpers
        t2 = c.create_token(policies=["tok-pol"], lease="1h", orphan=True)["auth"]
        self.assertTrue(t2["orphan"])
        c.revoke_token(t2["client_token"])
        self.assertFalse(client(self.s, t2["client_token"]).is_authenticated())
        t3 = client(self.s, c.auth.token.create(ttl="1h")["auth"]["client_token"])
        t3.auth.token.revoke_self()
        self.assertFalse(t3.is_authenticated())

        accessors = c.auth.token.list_accessors()["data"]["keys"]
        self.assertIn(c.auth.token.lookup_self()["data"]["accessor"], accessors)

    def test_token_errors(self):
        bad = client(self.s, "s.notarealtoken00000000000")
        self.assertFalse(bad.is_authenticated())
        with self.assertRaises(hexc.Forbidden) as cm:
            bad.secrets.kv.v2.read_secret_version("x")
        self.assertIn("permission denied", cm.exception.errors)
        with self.assertRaises(hexc.Forbidden):
            client(self.s, None).sys.list_mounted_secrets_engines()
        with self.assertRaises(hexc.InvalidRequest):
            self.c.auth.token.create(policies=["x"], ttl="not-a-duration")
        self.assertFalse(client(self.s, None).is_authenticated())

    # ---- KV v2 ----
    def test_kv2_lifecycle(self):
        kv = self.c.secrets.kv.v2
        w = kv.create_or_update_secret("app/db", {"user": "u", "password": "p1"}, cas=0)
        self.assertEqual(w["data"]["version"], 1)
        self.assertEqual(w["data"]["deletion_time"], "")
        self.assertFalse(w["data"]["destroyed"])
        with self.assertRaises(hexc.InvalidRequest) as cm:
            kv.create_or_update_secret("app/db", {"password": "x"}, cas=0)
        self.assertIn("check-and-set", " ".join(cm.exception.errors))
        w = kv.create_or_update_secret("app/db", {"user": "u", "password": "p2"}, cas=1)
        self.assertEqual(w["data"]["version"], 2)

        r = kv.read_secret_version("app/db")
        self.assertEqual(r["data"]["data"], {"user": "u", "password": "p2"})
        self.assertEqual(r["data"]["metadata"]["version"], 2)
        self.assertIsNone(r["lease_id"] or None)
        r = kv.read_secret_version("app/db", version=1)
        self.assertEqual(r["data"]["data"]["password"], "p1")
        self.assertEqual(kv.read_secret("app/db")["data"]["data"]["password"], "p2")

        p = kv.patch("app/db", {"password": "p3", "port": 5432})
        self.assertEqual(p["data"]["version"], 3)
        r = kv.read_secret_version("app/db")
        self.assertEqual(r["data"]["data"], {"user": "u", "password": "p3", "port": 5432})

        kv.create_or_update_secret("app/cache", {"k": "v"})
        kv.create_or_update_secret("app/nested/deep", {"k": "v"})
        keys = kv.list_secrets("app")["data"]["keys"]
        self.assertEqual(sorted(keys), ["cache", "db", "nested/"])
        self.assertEqual(kv.list_secrets("app/")["data"]["keys"], sorted(keys))
        with self.assertRaises(hexc.InvalidPath):
            kv.list_secrets("no-such-folder")

        kv.delete_latest_version_of_secret("app/db")
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret_version("app/db")
        meta = kv.read_secret_metadata("app/db")["data"]
        self.assertNotEqual(meta["versions"]["3"]["deletion_time"], "")
        kv.undelete_secret_versions("app/db", [3])
        self.assertEqual(kv.read_secret_version("app/db")["data"]["data"]["password"], "p3")
        kv.delete_secret_versions("app/db", [1])
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret_version("app/db", version=1)
        kv.destroy_secret_versions("app/db", [2])
        meta = kv.read_secret_metadata("app/db")["data"]
        self.assertTrue(meta["versions"]["2"]["destroyed"])
        self.assertEqual(meta["current_version"], 3)
        self.assertEqual(meta["oldest_version"], 0)
        for k in ("created_time", "updated_time", "max_versions", "cas_required",
                  "delete_version_after", "custom_metadata"):
            self.assertIn(k, meta)

        kv.update_metadata("app/db", max_versions=5, cas_required=True)
        # hvac 0.11 has no custom_metadata argument: newer scripts write it directly
        self.c.write("secret/metadata/app/db", custom_metadata={"owner": "team-a"})
        meta = kv.read_secret_metadata("app/db")["data"]
        self.assertEqual(meta["max_versions"], 5)
        self.assertTrue(meta["cas_required"])
        self.assertEqual(meta["custom_metadata"], {"owner": "team-a"})
        with self.assertRaises(hexc.InvalidRequest):
            kv.create_or_update_secret("app/db", {"password": "nocas"})
        kv.create_or_update_secret("app/db", {"password": "p4"}, cas=3)

        kv.delete_metadata_and_all_versions("app/db")
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret_metadata("app/db")
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret_version("app/db")

    def test_kv2_configuration(self):
        kv = self.c.secrets.kv.v2
        self.c.sys.enable_secrets_engine("kv", path="cfg-kv", options={"version": "2"})
        kv.configure(max_versions=3, cas_required=False, mount_point="cfg-kv")
        cfg = kv.read_configuration(mount_point="cfg-kv")["data"]
        self.assertEqual(cfg["max_versions"], 3)
        self.assertFalse(cfg["cas_required"])
        self.assertIn("delete_version_after", cfg)
        for i in range(5):
            kv.create_or_update_secret("rot", {"i": i}, mount_point="cfg-kv")
        meta = kv.read_secret_metadata("rot", mount_point="cfg-kv")["data"]
        self.assertEqual(meta["current_version"], 5)
        self.assertEqual(sorted(meta["versions"]), ["3", "4", "5"])
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret_version("rot", version=1, mount_point="cfg-kv")

    # ---- KV v1 ----
    def test_kv1(self):
        kv = self.c.secrets.kv.v1
        kv.create_or_update_secret("svc/api", {"key": "abc", "n": 3}, mount_point="kv1")
        r = kv.read_secret("svc/api", mount_point="kv1")
        self.assertEqual(r["data"], {"key": "abc", "n": 3})
        self.assertEqual(r["lease_duration"], 2764800)  # 768h, Vault's default for kv v1
        kv.create_or_update_secret("svc/web", {"k": "v"}, method="PUT", mount_point="kv1")
        self.assertEqual(sorted(kv.list_secrets("svc", mount_point="kv1")["data"]["keys"]),
                         ["api", "web"])
        self.assertEqual(kv.list_secrets("", mount_point="kv1")["data"]["keys"], ["svc/"])
        kv.delete_secret("svc/api", mount_point="kv1")
        with self.assertRaises(hexc.InvalidPath):
            kv.read_secret("svc/api", mount_point="kv1")
        # the generic kv wrapper follows the default version
        self.c.secrets.kv.default_kv_version = "1"
        self.assertEqual(self.c.secrets.kv.read_secret("svc/web", mount_point="kv1")["data"],
                         {"k": "v"})

    # ---- cubbyhole ----
    def test_cubbyhole(self):
        c = self.c
        a = client(self.s, c.auth.token.create(ttl="1h")["auth"]["client_token"])
        b = client(self.s, c.auth.token.create(ttl="1h")["auth"]["client_token"])
        a.write("cubbyhole/note", value="for a only")
        self.assertEqual(a.read("cubbyhole/note")["data"], {"value": "for a only"})
        self.assertIsNone(b.read("cubbyhole/note"))
        self.assertEqual(a.list("cubbyhole")["data"]["keys"], ["note"])
        self.assertIsNone(b.list("cubbyhole"))
        a.delete("cubbyhole/note")
        self.assertIsNone(a.read("cubbyhole/note"))

    # ---- generic read/write/list/delete ----
    def test_generic(self):
        c = self.c
        r = c.write("kv1/gen/a", foo="bar", n=1)
        self.assertEqual(r.status_code, 204)  # hvac hands back the bare Response
        self.assertEqual(c.read("kv1/gen/a")["data"], {"foo": "bar", "n": 1})
        self.assertEqual(c.list("kv1/gen")["data"]["keys"], ["a"])
        self.assertIsNone(c.read("kv1/gen/missing"))
        self.assertIsNone(c.list("kv1/nothing-here"))
        c.delete("kv1/gen/a")
        self.assertIsNone(c.read("kv1/gen/a"))
        # kv v2 through the generic API
        w = c.write("secret/data/gen/b", data={"x": "y"})
        self.assertEqual(w["data"]["version"], 1)
        self.assertEqual(c.read("secret/data/gen/b")["data"]["data"], {"x": "y"})
        self.assertEqual(c.list("secret/metadata/gen")["data"]["keys"], ["b"])
        # sys paths through the generic API
        self.assertIn("secret/", c.read("sys/mounts")["data"])
        tok = c.write("auth/token/create", policies=["default"], ttl="5m")
        self.assertTrue(tok["auth"]["client_token"])

    # ---- errors ----
    def test_errors(self):
        c = self.c
        c.sys.create_or_update_policy("ro", 'path "secret/data/ro/*" { capabilities = ["read"] }')
        ro = client(self.s, c.auth.token.create(policies=["ro"], ttl="1h")["auth"]["client_token"])
        c.secrets.kv.v2.create_or_update_secret("ro/x", {"a": "b"})
        self.assertEqual(ro.secrets.kv.v2.read_secret_version("ro/x")["data"]["data"], {"a": "b"})
        with self.assertRaises(hexc.Forbidden) as cm:
            ro.secrets.kv.v2.create_or_update_secret("ro/x", {"a": "c"})
        self.assertEqual(cm.exception.errors, ["permission denied"])
        with self.assertRaises(hexc.Forbidden):
            ro.sys.list_mounted_secrets_engines()
        with self.assertRaises(hexc.InvalidPath):
            c.secrets.kv.v2.read_secret_version("does/not/exist")
        with self.assertRaises(hexc.InvalidPath):
            c.adapter.get("/v1/no-such-mount/x")
        with self.assertRaises(hexc.InvalidRequest):
            c.write("secret/data/bad", data="not-an-object")
        with self.assertRaises(hexc.InvalidRequest):
            c.sys.enable_secrets_engine("kv", path="sys/evil")
        # a wrap request is answered with a wrapping token, never in the clear
        w = c.read("secret/data/ro/x", wrap_ttl="5m")
        self.assertIsNone(w["data"])
        self.assertEqual(c.sys.unwrap(w["wrap_info"]["token"])["data"]["data"], {"a": "b"})
        with self.assertRaises(hexc.InvalidRequest):
            c.read("secret/data/ro/x", wrap_ttl="soon")

    # ---- auth methods and audit, when the server has them ----
    def test_userpass(self):
        c = self.c
        if not server_has_auth(c, "userpass"):
            self.skipTest("server has no userpass auth method")
        c.sys.create_or_update_policy("up", 'path "secret/data/up/*" { capabilities = ["read"] }')
        c.auth.userpass.create_or_update_user("alice", "s3cret-pw", policies=["up"])
        self.assertIn("alice", c.auth.userpass.list_user()["data"]["keys"])
        u = client(self.s)
        login = u.auth.userpass.login("alice", "s3cret-pw")
        self.assertTrue(u.token)
        self.assertEqual(u.token, login["auth"]["client_token"])
        self.assertIn("up", login["auth"]["policies"])
        self.assertTrue(u.is_authenticated())
        with self.assertRaises(hexc.InvalidRequest):
            client(self.s).auth.userpass.login("alice", "wrong")
        c.auth.userpass.delete_user("alice")

    def test_approle(self):
        c = self.c
        if not server_has_auth(c, "approle"):
            self.skipTest("server has no approle auth method")
        c.auth.approle.create_or_update_approle("ci", token_policies=["default"],
                                                token_ttl="10m")
        role_id = c.auth.approle.read_role_id("ci")["data"]["role_id"]
        secret = c.auth.approle.generate_secret_id("ci")["data"]
        self.assertTrue(secret["secret_id"])
        self.assertTrue(secret["secret_id_accessor"])
        a = client(self.s)
        login = a.auth.approle.login(role_id, secret["secret_id"])
        self.assertEqual(login["auth"]["lease_duration"], 600)
        self.assertTrue(a.is_authenticated())
        with self.assertRaises(hexc.InvalidRequest):
            client(self.s).auth.approle.login(role_id, "bad-secret-id")

    def test_kubernetes_config(self):
        c = self.c
        if not server_has_auth(c, "kubernetes"):
            self.skipTest("server has no kubernetes auth method")
        c.auth.kubernetes.configure("https://127.0.0.1:6443")
        cfg = c.auth.kubernetes.read_config()  # hvac returns the data block
        self.assertEqual(cfg["kubernetes_host"], "https://127.0.0.1:6443")
        c.auth.kubernetes.create_role("app", bound_service_account_names=["app"],
                                      bound_service_account_namespaces=["default"],
                                      policies=["default"])
        role = c.auth.kubernetes.read_role("app")
        self.assertEqual(role["bound_service_account_names"], ["app"])
        self.assertIn("app", c.auth.kubernetes.list_roles()["keys"])
        # a JWT that is not one is refused before any TokenReview
        with self.assertRaises((hexc.InvalidRequest, hexc.Forbidden)):
            client(self.s).auth.kubernetes.login("app", "not-a-jwt")
        c.auth.kubernetes.delete_role("app")

    def test_audit(self):
        c = self.c
        path = os.path.join(self.s.dir, "audit.log")
        try:
            c.sys.enable_audit_device("file", options={"file_path": path})
        except hexc.InvalidRequest as e:
            if any("unknown" in m or "not found" in m or "not supported" in m
                   for m in e.errors):
                self.skipTest("server has no file audit device")
            raise
        except hexc.InvalidPath:
            self.skipTest("server has no sys/audit")
        self.assertIn("file/", c.sys.list_enabled_audit_devices()["data"])
        c.secrets.kv.v2.create_or_update_secret("audited", {"a": "b"})
        with open(path) as f:
            self.assertIn("secret/data/audited", f.read())
        c.sys.disable_audit_device("file")


if __name__ == "__main__":
    unittest.main()
