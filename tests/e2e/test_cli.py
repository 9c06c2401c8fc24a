#!/usr/bin/env python3
"""tests/e2e/test_cli.py - the `coffer` client end to end.

Starts the real server in dev mode on a free loopback port and drives the real
CLI binary through every command group's happy path and error paths: no
server, bad token (403), missing paths (404), bad flags, JSON output equal to
the API response, the token helper round trip (HOME in a temp dir) and the seed
runbook's lines. Stdlib only; run with /usr/bin/python3:

    COFFER_BIN=build/coffer /usr/bin/python3 tests/e2e/test_cli.py

Tests that need an engine the server may not have yet skip themselves based on
the server's own answer (e.g. 400/404 when enabling the engine).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "coffer"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """The dev server, started once for the whole module."""

    proc = None
    addr = None
    log = None
    logpath = None

    @classmethod
    def start(cls):
        if cls.proc:
            return
        port = free_port()
        cls.addr = "http://127.0.0.1:%d" % port
        cls.tmp = tempfile.mkdtemp(prefix="coffer-e2e-cli-")
        cls.logpath = os.path.join(cls.tmp, "server.log")
        cls.log = open(cls.logpath, "wb")
        cls.proc = subprocess.Popen(
            [BIN, "server", "-dev", "-dev-root-token-id=root",
             "-dev-listen-address=127.0.0.1:%d" % port],
            stdout=cls.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if cls.proc.poll() is not None:
                raise RuntimeError("server exited with %s: %s" % (cls.proc.returncode, cls.output()))
            try:
                status, _ = api("GET", "sys/health")
                if status in (200, 429, 473, 501, 503):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not answer on %s: %s" % (cls.addr, cls.output()))

    @classmethod
    def output(cls):
        try:
            with open(cls.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @classmethod
    def stop(cls):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        if cls.log:
            cls.log.close()
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        cls.proc = None


def api(method, path, body=None, token="root"):
    """Raw HTTP call to the server: (status, parsed JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(Server.addr + "/v1/" + path, data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def setUpModule():
    Server.start()


def tearDownModule():
    Server.stop()


class CLITest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="coffer-e2e-home-")
        self.addCleanup(shutil.rmtree, self.home, True)

    def run_cli(self, *args, token="root", env=None, stdin=None, addr=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        e["HOME"] = self.home
        e["VAULT_ADDR"] = addr or Server.addr
        if token is not None:
            e["VAULT_TOKEN"] = token
        if env:
            e.update(env)
        p = subprocess.run([BIN] + list(args), input=stdin.encode() if stdin is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, timeout=60)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def ok(self, *args, **kw):
        rc, out, err = self.run_cli(*args, **kw)
        self.assertEqual(rc, 0, "coffer %s -> %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out

    def fails(self, code, *args, **kw):
        rc, out, err = self.run_cli(*args, **kw)
        self.assertEqual(rc, code, "coffer %s -> %d (want %d)\nstdout: %s\nstderr: %s"
                         % (" ".join(args), rc, code, out, err))
        return out, err

    def table(self, out):
        """Key/Value table rows as a dict (values stripped)."""
        rows = {}
        for line in out.splitlines()[2:]:
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            if len(parts) == 2:
                rows[parts[0]] = parts[1]
        return rows

    def mount(self, path, type_, options=None):
        """Enable an engine for a test, or skip when the server has no such engine."""
        body = {"type": type_}
        if options:
            body["options"] = options
        status, resp = api("POST", "sys/mounts/" + path, body)
        if status >= 400:
            self.skipTest("server cannot mount %s (%d: %s)" % (type_, status, resp))
        self.addCleanup(api, "DELETE", "sys/mounts/" + path)

    def kv2(self):
        status, resp = api("GET", "sys/internal/ui/mounts/secret")
        if status != 200 or ((resp or {}).get("data") or {}).get("options", {}).get("version") != "2":
            self.skipTest("no KV v2 mount at secret/ (%d)" % status)


class TestBasics(CLITest):
    def test_version(self):
        for arg in ("version", "-version", "-v", "--version"):
            self.assertEqual(self.ok(arg), "Coffer v0.1.0\n")

    def test_help_and_suggestions(self):
        out = self.ok("-h")
        self.assertIn("Usage: coffer <command>", out)
        out = self.ok("read", "-h")
        self.assertIn("Usage: coffer read", out)
        self.assertIn("$ coffer read", out)
        _, err = self.fails(127, "raed", "secret/foo")
        self.assertIn('Did you mean "read"?', err)
        _, err = self.fails(1, "kv", "pt", "secret/foo")
        self.assertIn('Did you mean "kv put"?', err)

    def test_bad_flag_is_a_local_error(self):
        _, err = self.fails(1, "read", "-bogus", "secret/foo")
        self.assertIn("flag provided but not defined: -bogus", err)
        _, err = self.fails(1, "read")
        self.assertIn("Not enough arguments", err)
        _, err = self.fails(1, "read", "-format=xml", "secret/foo")
        self.assertIn("Invalid output format", err)

    def test_no_server(self):
        dead = "http://127.0.0.1:%d" % free_port()
        self.fails(1, "status", addr=dead)
        _, err = self.fails(2, "read", "secret/foo", addr=dead)
        self.assertIn("Error reading secret/foo", err)

    def test_bad_token_is_403(self):
        _, err = self.fails(2, "read", "sys/mounts", token="not-a-token")
        self.assertIn("Code: 403", err)
        self.assertIn("permission denied", err)
        self.assertIn("URL: GET %s/v1/sys/mounts" % Server.addr, err)

    def test_status(self):
        out = self.ok("status")
        rows = self.table(out)
        self.assertEqual(rows.get("Sealed"), "false")
        self.assertEqual(rows.get("Initialized"), "true")
        out = self.ok("status", "-format=json")
        mine = json.loads(out)
        status, theirs = api("GET", "sys/seal-status")
        for k in ("sealed", "initialized", "t", "n", "type"):
            self.assertEqual(mine.get(k), theirs.get(k), k)
        self.assertEqual(self.ok("status", "-field=sealed"), "false")


class TestGenericPaths(CLITest):
    def test_write_read_list_delete_v1(self):
        self.mount("clikv1", "kv", {"version": "1"})
        cert = os.path.join(self.home, "ca.crt")
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n")
        out = self.ok("write", "clikv1/foo", "a=b", "cert=@" + cert, "url=postgresql://{{username}}@x/db?sslmode=disable")
        self.assertEqual(out, "Success! Data written to: clikv1/foo\n")
        rows = self.table(self.ok("read", "clikv1/foo"))
        self.assertEqual(rows["a"], "b")
        self.assertEqual(rows["url"], "postgresql://{{username}}@x/db?sslmode=disable")
        mine = json.loads(self.ok("read", "-format=json", "clikv1/foo"))
        status, theirs = api("GET", "clikv1/foo")
        self.assertEqual(status, 200)
        self.assertEqual(mine["data"], theirs["data"])
        self.assertEqual(mine["data"]["cert"], "-----BEGIN CERTIFICATE-----\nMIIB\n")
        self.assertEqual(self.ok("read", "-field=a", "clikv1/foo"), "b")
        self.ok("write", "clikv1/sub/bar", "x=y")
        self.assertEqual(self.ok("list", "clikv1/"), "Keys\n----\nfoo\nsub/\n")
        self.assertEqual(json.loads(self.ok("list", "-format=json", "clikv1")), sorted(["foo", "sub/"]))
        out = self.ok("delete", "clikv1/foo")
        self.assertIn("Success! Data deleted (if it existed) at: clikv1/foo", out)
        _, err = self.fails(2, "read", "clikv1/foo")
        self.assertIn("No value found at clikv1/foo", err)
        self.fails(2, "list", "clikv1/nothing-here/")

    def test_write_from_stdin(self):
        self.mount("clikv1s", "kv", {"version": "1"})
        self.ok("write", "clikv1s/json", "-", stdin='{"k1":"v1","k2":"v2"}')
        self.ok("write", "clikv1s/val", "secret=-", stdin="from-stdin")
        status, resp = api("GET", "clikv1s/json")
        self.assertEqual(resp["data"], {"k1": "v1", "k2": "v2"})
        status, resp = api("GET", "clikv1s/val")
        self.assertEqual(resp["data"]["secret"], "from-stdin")
        _, err = self.fails(1, "write", "clikv1s/x")
        self.assertIn("Must supply data or use -force", err)
        _, err = self.fails(1, "write", "clikv1s/x", "novalue")
        self.assertIn("key=value", err)

    def test_flags_after_path_are_data_with_warning(self):
        self.mount("clikv1w", "kv", {"version": "1"})
        rc, out, err = self.run_cli("write", "clikv1w/x", "-force")
        self.assertIn("will not be parsed as flags", err)

    def test_patch_error_shows_server_message(self):
        self.mount("clikv1p", "kv", {"version": "1"})
        self.ok("write", "clikv1p/foo", "a=b")
        rc, out, err = self.run_cli("patch", "clikv1p/foo", "a=c")
        if rc != 0:
            self.assertEqual(rc, 2)
            self.assertIn("Error writing data to clikv1p/foo", err)
            self.assertIn("Code: ", err)


class TestKV(CLITest):
    def test_kv_v2_round_trip(self):
        self.kv2()
        out = self.ok("kv", "put", "secret/clifoo", "a=b")
        # "=" padding as Vault computes it from the path length (18 -> 3 each side)
        self.assertIn("=== Secret Path ===\nsecret/data/clifoo\n\n", out)
        self.assertIn("Metadata", out)
        self.assertRegex(out, r"\nversion\s+1\n")
        out = self.ok("kv", "put", "-mount=secret", "clifoo", "a=c", "d=e")
        self.assertRegex(out, r"\nversion\s+2\n")
        out = self.ok("kv", "get", "secret/clifoo")
        self.assertIn("=== Secret Path ===", out)
        self.assertIn("======= Metadata =======", out)
        self.assertRegex(out, r"\n=+ Data =+\nKey ")
        self.assertRegex(out, r"\na\s+c\n")
        self.assertEqual(self.ok("kv", "get", "-version=1", "-field=a", "secret/clifoo"), "b")
        mine = json.loads(self.ok("kv", "get", "-format=json", "secret/clifoo"))
        status, theirs = api("GET", "secret/data/clifoo")
        self.assertEqual(mine["data"], theirs["data"])
        self.ok("kv", "patch", "secret/clifoo", "f=g")
        self.assertEqual(self.ok("kv", "get", "-field=f", "secret/clifoo"), "g")
        self.assertEqual(self.ok("kv", "get", "-field=a", "secret/clifoo"), "c")
        self.assertIn("clifoo", self.ok("kv", "list", "secret/"))
        out = self.ok("kv", "metadata", "get", "secret/clifoo")
        self.assertIn("== Metadata Path ==", out)
        self.assertIn("Version 1", out)
        _, err = self.fails(2, "kv", "put", "-cas=1", "secret/clifoo", "a=z")
        self.assertIn("Code:", err)
        self.ok("kv", "delete", "secret/clifoo")
        self.ok("kv", "undelete", "-versions=3", "secret/clifoo")
        self.ok("kv", "destroy", "-versions=1", "secret/clifoo")
        _, err = self.fails(1, "kv", "destroy", "secret/clifoo")
        self.assertIn("-versions", err)
        self.ok("kv", "metadata", "put", "-max-versions=5", "secret/clifoo")
        self.ok("kv", "metadata", "delete", "secret/clifoo")
        self.fails(2, "kv", "get", "secret/clifoo")

    def test_kv_v1(self):
        self.mount("clikvone", "kv", {"version": "1"})
        out = self.ok("kv", "put", "clikvone/foo", "a=b")
        self.assertEqual(out, "Success! Data written to: clikvone/foo\n")
        out = self.ok("kv", "get", "clikvone/foo")
        self.assertNotIn("Secret Path", out)
        self.assertRegex(out, r"\na\s+b\n")
        self.assertEqual(self.ok("kv", "get", "-mount=clikvone", "-field=a", "foo"), "b")
        _, err = self.fails(2, "kv", "undelete", "-versions=1", "clikvone/foo")
        self.assertIn("version 2", err)


class TestMountsPoliciesTokens(CLITest):
    def test_secrets_lifecycle(self):
        out = self.ok("secrets", "enable", "-path=clisecrets", "-description=test mount", "-version=2", "kv")
        self.assertIn("Success! Enabled the kv secrets engine at: clisecrets/", out)
        self.addCleanup(api, "DELETE", "sys/mounts/clisecrets")
        out = self.ok("secrets", "list")
        self.assertRegex(out, r"\nclisecrets/\s+kv\s+\S+\s+test mount\n")
        self.assertTrue(out.startswith("Path "))
        mine = json.loads(self.ok("secrets", "list", "-format=json"))
        status, theirs = api("GET", "sys/mounts")
        theirs_map = theirs.get("data") or {k: v for k, v in theirs.items()
                                             if isinstance(v, dict) and "type" in v}
        self.assertEqual(set(mine), set(theirs_map))
        self.assertIn("clisecrets/", mine)
        self.ok("secrets", "tune", "-max-lease-ttl=2h", "clisecrets")
        self.ok("secrets", "list", "-detailed")
        _, err = self.fails(2, "secrets", "enable", "-path=clisecrets", "kv")
        self.assertIn("Code: ", err)
        self.assertIn("Success! Disabled", self.ok("secrets", "disable", "clisecrets/"))
        self.fails(1, "secrets", "enable")

    def test_policy(self):
        pol = 'path "secret/*" {\n  capabilities = ["read", "list"]\n}\n'
        path = os.path.join(self.home, "p.hcl")
        with open(path, "w") as f:
            f.write(pol)
        self.assertEqual(self.ok("policy", "write", "cli-reader", path), "Success! Uploaded policy: cli-reader\n")
        self.ok("policy", "write", "cli-reader2", "-", stdin=pol)
        self.assertEqual(self.ok("policy", "read", "cli-reader").strip(), pol.strip())
        names = self.ok("policy", "list").split()
        self.assertIn("cli-reader", names)
        self.assertIn("default", names)
        self.ok("policy", "delete", "cli-reader")
        self.ok("policy", "delete", "cli-reader2")
        self.fails(2, "policy", "read", "cli-reader")

    def test_tokens(self):
        tok = self.ok("token", "create", "-policy=default", "-ttl=1h", "-display-name=cli", "-field=token")
        self.assertTrue(tok and "\n" not in tok, tok)
        created = json.loads(self.ok("token", "create", "-format=json", "-policy=default", "-metadata=team=a"))
        self.assertIn("client_token", created["auth"])
        rows = self.table(self.ok("token", "lookup", tok))
        self.assertIn("policies", rows)
        self.assertIn("default", rows["policies"])
        acc = json.loads(self.ok("token", "lookup", "-format=json", tok))["data"]["accessor"]
        self.ok("token", "lookup", "-accessor", acc)
        self.ok("token", "renew", "-increment=30m", tok)
        caps = self.ok("token", "capabilities", "sys/mounts").strip()
        self.assertEqual(caps, "root")
        self.assertEqual(self.ok("token", "revoke", tok), "Success! Revoked token (if it existed)\n")
        self.fails(2, "token", "lookup", tok)
        self.fails(2, "read", "sys/mounts", token=tok)

    def test_token_helper_round_trip(self):
        out = self.ok("login", "root", token=None)
        self.assertIn("Success! You are now authenticated.", out)
        with open(os.path.join(self.home, ".vault-token")) as f:
            self.assertEqual(f.read().strip(), "root")
        self.assertEqual(os.stat(os.path.join(self.home, ".vault-token")).st_mode & 0o777, 0o600)
        self.assertEqual(self.ok("print", "token", token=None), "root\n")
        self.ok("token", "lookup", token=None)
        _, err = self.fails(2, "login", "bogus-token", token=None)
        self.assertIn("Code: 403", err)
        self.ok("login", "-no-store", "root", token=None)

    def test_userpass_login(self):
        status, resp = api("POST", "sys/auth/cliup", {"type": "userpass"})
        if status >= 400:
            self.skipTest("no userpass auth method (%d)" % status)
        self.addCleanup(api, "DELETE", "sys/auth/cliup")
        self.ok("write", "auth/cliup/users/alice", "password=pw", "policies=default")
        out = self.ok("login", "-method=userpass", "-path=cliup", "username=alice", "password=pw", token=None)
        self.assertIn("token_policies", out)
        with open(os.path.join(self.home, ".vault-token")) as f:
            stored = f.read().strip()
        self.assertNotEqual(stored, "root")
        self.assertIn("alice", self.ok("token", "lookup", token=None))
        tok = self.ok("login", "-token-only", "-method=userpass", "-path=cliup", "username=alice", token=None, stdin="pw\n")
        self.assertTrue(tok)
        _, err = self.fails(2, "login", "-method=userpass", "-path=cliup", "username=alice", "password=wrong", token=None)
        self.assertIn("Code:", err)

    def test_auth_enable_list_disable(self):
        rc, out, err = self.run_cli("auth", "enable", "-path=cliapprole", "approle")
        if rc != 0:
            self.assertEqual(rc, 2)
            self.assertIn("Code:", err)
            self.skipTest("no approle auth method: " + err.strip().splitlines()[-1])
        self.assertIn("Success! Enabled approle auth method at: cliapprole/", out)
        self.assertIn("cliapprole/", self.ok("auth", "list"))
        self.ok("auth", "tune", "-default-lease-ttl=1h", "cliapprole")
        self.ok("auth", "disable", "cliapprole")

    def test_leases_error_paths(self):
        self.fails(1, "lease", "revoke", "-force", "x/y")
        _, err = self.fails(2, "lease", "lookup", "nonexistent/lease/id")
        self.assertIn("Code:", err)


class TestAudit(CLITest):
    def test_audit_enable_list_verify(self):
        logp = os.path.join(self.home, "audit.log")
        rc, out, err = self.run_cli("audit", "enable", "-path=clifile", "file", "file_path=" + logp)
        if rc != 0:
            self.assertEqual(rc, 2)
            self.assertIn("Code:", err)
            self.skipTest("server has no file audit device: " + err.strip().splitlines()[-1])
        self.addCleanup(api, "DELETE", "sys/audit/clifile")
        self.assertEqual(out, "Success! Enabled the file audit device at: clifile/\n")
        out = self.ok("audit", "list")
        self.assertRegex(out, r"\nclifile/\s+file")
        self.ok("audit", "list", "-detailed")
        self.ok("read", "sys/mounts")
        status, resp = api("GET", "sys/audit/clifile/chain-key")
        if status != 200:
            self.skipTest("no chain-key endpoint yet (%d)" % status)
        out = self.ok("audit", "verify", "-path=clifile", logp)
        self.assertRegex(out, r"^ok, \d+ entries\n$")
        keyf = os.path.join(self.home, "chain.key")
        with open(keyf, "w") as f:
            f.write(resp["data"]["key"])
        with open(logp) as f:
            lines = f.read().splitlines(True)
        if len(lines) >= 3:
            lines[1], lines[2] = lines[2], lines[1]
            with open(logp + ".bad", "w") as f:
                f.writelines(lines)
            _, err = self.fails(2, "audit", "verify", "-key-file=" + keyf, logp + ".bad")
            self.assertIn("line 2:", err)
        self.ok("audit", "disable", "clifile")


class TestRunbook(CLITest):
    """The seed guide's runbook lines, verbatim with `coffer`. Engines built by
    later issues may answer with an error; then the CLI must have sent the
    request and printed the server's error clearly (exit 2)."""

    def check(self, *args, **kw):
        rc, out, err = self.run_cli(*args, **kw)
        self.assertIn(rc, (0, 2), "%s: %s %s" % (args, out, err))
        if rc == 2:
            self.assertIn("Error", err)
            self.assertTrue("Code: " in err or "No value" in err, err)
        return rc

    def test_runbook(self):
        jwt = os.path.join(self.home, "jwt")
        ca = os.path.join(self.home, "ca.crt")
        with open(jwt, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.e30.sig")
        with open(ca, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        with open(jwt) as f:
            jwt_text = f.read()
        self.check("auth", "enable", "kubernetes")
        self.check("write", "auth/kubernetes/config", "token_reviewer_jwt=" + jwt_text,
                   "kubernetes_host=https://127.0.0.1:6443", "kubernetes_ca_cert=@" + ca)
        self.check("secrets", "enable", "database")
        self.check("write", "database/config/postgresql", "plugin_name=postgresql-database-plugin",
                   "connection_url=postgresql://{{username}}:{{password}}@127.0.0.1:5432/mydb?sslmode=disable",
                   "allowed_roles=readonly,readwrite", "username=vault", "password=vaultpassword")
        self.check("write", "database/roles/readonly", "db_name=postgresql",
                   "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}';",
                   "default_ttl=1h", "max_ttl=24h")
        a1 = os.path.join(self.home, "audit.log")
        a2 = os.path.join(self.home, "audit.json")
        if self.check("audit", "enable", "file", "file_path=" + a1) == 0:
            self.addCleanup(api, "DELETE", "sys/audit/file")
        if self.check("audit", "enable", "-path=file_json", "file", "file_path=" + a2,
                      "log_raw=false", "format=json") == 0:
            self.addCleanup(api, "DELETE", "sys/audit/file_json")
            status, resp = api("GET", "sys/audit")
            entry = (resp.get("data") or resp).get("file_json/")
            self.assertEqual(entry["type"], "file")
            self.assertEqual(entry["options"].get("format"), "json")
            self.assertEqual(entry["options"].get("log_raw"), "false")
        snap = os.path.join(self.home, "backup.snap")
        if self.check("operator", "raft", "snapshot", "save", snap) == 0:
            self.assertTrue(os.path.getsize(snap) > 0)
        else:
            self.assertFalse(os.path.exists(snap), "no partial snapshot file on error")
        api("DELETE", "sys/auth/kubernetes")
        api("DELETE", "sys/mounts/database")


class TestZZOperator(CLITest):
    """Runs last: it rotates keys and seals/unseals the dev server."""

    def test_key_status_and_rotate(self):
        rc, out, err = self.run_cli("operator", "key-status")
        if rc != 0:
            self.assertEqual(rc, 2)
            self.skipTest("no sys/key-status: " + err.strip().splitlines()[-1])
        term = int(self.table(out)["Key Term"])
        out = self.ok("operator", "rotate")
        self.assertIn("Success! Rotated key", out)
        self.assertEqual(int(self.table(out.split("\n\n", 1)[1])["Key Term"]), term + 1)

    def test_init_on_initialized_server_is_an_error(self):
        _, err = self.fails(2, "operator", "init", "-key-shares=1", "-key-threshold=1")
        self.assertIn("Code: ", err)
        self.assertEqual(self.ok("operator", "init", "-status"), "Vault is initialized\n")

    def test_zz_seal_unseal(self):
        m = re.search(r"Unseal Key:\s*(\S+)", Server.output())
        if not m:
            self.skipTest("dev server printed no unseal key")
        self.assertEqual(self.ok("operator", "seal"), "Success! Vault is sealed.\n")
        out, _ = self.fails(2, "status")
        self.assertEqual(self.table(out).get("Sealed"), "true")
        _, err = self.fails(2, "read", "sys/mounts")
        self.assertIn("Code: 503", err)
        self.ok("operator", "unseal", "-reset")
        out = self.ok("operator", "unseal", stdin=m.group(1) + "\n")
        self.assertEqual(self.table(out).get("Sealed"), "false")
        self.ok("status")


if __name__ == "__main__":
    unittest.main(verbosity=2)
