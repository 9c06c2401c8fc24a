"""
test_secret_hygiene.py - secrets stay secret: tests, not promises.

  * A scenario at log_level trace touches every kind of secret the server
    handles (unseal keys hex and base64, root token, created tokens incl. a
    caller-chosen id, wrong tokens, KV and cubbyhole values, passwords when
    an auth method with passwords is available); afterwards none of them
    appears anywhere in the server's output.
  * Key material is mlock'd: VmLck in /proc/PID/status is non-zero once
    unsealed (and while unseal key shares are held), zero again after seal
    (every locked key buffer freed, and secmem_free wipes before unmapping);
    zero throughout with disable_mlock = true.
  * The server process is not dumpable: run as an unprivileged user, its
    /proc/PID files belong to root (the kernel's mark of a non-dumpable
    process), the same user cannot read /proc/PID/environ (what a debugger
    attach would need), and RLIMIT_CORE is 0. With COFFER_ENABLE_CORE_DUMPS=1
    the same checks flip, which shows they measure something.

Constant-time comparison of tokens, keys and HMACs is audited by
scripts/lint.sh (ct rule) and listed in docs/SECURITY.md.
"""
import os
import secrets
import subprocess
import time
import unittest

from harness import BIN, VALGRIND, Server

NOBODY = 65534


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None


def built_with_asan():
    """ASan intercepts mlock/munlock as no-ops, so VmLck says nothing there."""
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def vmlck_kb(pid):
    return int(status_field(pid, "VmLck").split()[0])


class SecretsNotLogged(unittest.TestCase):
    def setUp(self):
        self.srv = Server(storage="file", log_level="trace")
        self.srv.start()

    def tearDown(self):
        self.srv.cleanup()

    def test_no_secret_in_trace_log(self):
        s = self.srv
        used = []  # (what, secret)
        j = s.init(shares=5, threshold=3)
        used += [("unseal key", k) for k in j["keys"]] + [("unseal key b64", k) for k in j["keys_base64"]]
        used.append(("root token", j["root_token"]))
        s.unseal(s.keys[:3])

        # a wrong key share and a partial unseal after a seal
        self.assertEqual(s.put("sys/seal", {}).status, 204)
        wrong = secrets.token_hex(32)
        used.append(("wrong unseal key", wrong))
        s.put("sys/unseal", {"key": wrong}, token="")
        s.put("sys/unseal", {"reset": True}, token="")
        s.unseal(s.keys[2:5])

        # tokens: generated, caller-chosen, orphan, looked up / renewed / revoked by value
        custom = "CustomSecretId" + secrets.token_hex(8)
        r = s.post("auth/token/create", {"id": custom, "policies": ["default"], "ttl": "1h"})
        self.assertEqual(r.status, 200, r)
        used.append(("custom token id", custom))
        toks = []
        for i in range(3):
            r = s.post("auth/token/create", {"policies": ["default"], "meta": {"n": str(i)}, "ttl": "1h"})
            self.assertEqual(r.status, 200, r)
            toks.append(r.json()["auth"]["client_token"])
        used += [("token", t) for t in toks]
        r = s.post("auth/token/create-orphan", {"policies": ["default"]})
        self.assertEqual(r.status, 200, r)
        used.append(("orphan token", r.json()["auth"]["client_token"]))
        self.assertEqual(s.post("auth/token/lookup", {"token": toks[1]}).status, 200)
        self.assertEqual(s.post("auth/token/renew", {"token": toks[1]}).status, 200)
        self.assertEqual(s.post("auth/token/renew-self", {}, token=toks[2]).status, 200)
        self.assertIn(s.post("auth/token/revoke", {"token": toks[2]}).status, (200, 204))
        bogus = "s." + secrets.token_urlsafe(18)
        used.append(("wrong token", bogus))
        self.assertEqual(s.get("sys/mounts", token=bogus).status, 403)
        self.assertEqual(s.post("auth/token/lookup", {"token": bogus}).status, 403)
        self.assertEqual(s.get("auth/token/lookup-self", token=toks[2]).status, 403)  # revoked

        # secret values: KV v2, KV v1 (also as a rejected write), cubbyhole
        self.assertIn(s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status, (200, 204))
        self.assertIn(s.post("sys/mounts/kv1", {"type": "kv"}).status, (200, 204))
        for i in range(3):
            v = "kv2-value-" + secrets.token_hex(12)
            used.append(("kv2 value", v))
            self.assertEqual(s.put("secret/data/app%d" % i, {"data": {"password": v}}).status, 200)
            self.assertEqual(s.get("secret/data/app%d" % i).json()["data"]["data"]["password"], v)
        v = "kv1-value-" + secrets.token_hex(12)
        used.append(("kv1 value", v))
        self.assertIn(s.put("kv1/db", {"password": v}).status, (200, 204))
        self.assertEqual(s.get("kv1/db").json()["data"]["password"], v)
        v = "denied-value-" + secrets.token_hex(12)
        used.append(("denied write value", v))
        self.assertEqual(s.put("secret/data/x", {"data": {"k": v}}, token=toks[1]).status, 403)
        v = "bad-json-value-" + secrets.token_hex(12)
        used.append(("value in a malformed body", v))
        self.assertEqual(s.request("PUT", "secret/data/x", raw=('{"data":{"k":"%s"}' % v).encode()).status, 400)
        v = "cubby-value-" + secrets.token_hex(12)
        used.append(("cubbyhole value", v))
        self.assertIn(s.put("cubbyhole/mine", {"v": v}, token=toks[0]).status, (200, 204))
        self.assertEqual(s.get("cubbyhole/mine", token=toks[0]).json()["data"]["v"], v)

        # passwords, when a password auth method is built in
        if s.post("sys/auth/userpass", {"type": "userpass"}).status in (200, 204):
            pw = "pw-" + secrets.token_hex(12)
            used.append(("password", pw))
            self.assertIn(s.post("auth/userpass/users/alice", {"password": pw, "policies": "default"}).status,
                          (200, 204))
            r = s.post("auth/userpass/login/alice", {"password": pw}, token="")
            self.assertEqual(r.status, 200, r)
            used.append(("login token", r.json()["auth"]["client_token"]))
            wrong_pw = "wrongpw-" + secrets.token_hex(12)
            used.append(("wrong password", wrong_pw))
            self.assertIn(s.post("auth/userpass/login/alice", {"password": wrong_pw}, token="").status,
                          (400, 403))

        self.assertEqual(s.put("sys/seal", {}).status, 204)
        s.stop()
        log = s.log()
        self.assertIn("[debug]", log, "trace logging was not on")
        for what, secret in used:
            self.assertNotIn(secret, log, "%s found in the server log" % what)
            self.assertNotIn(secret[:16], log, "a prefix of a %s found in the server log" % what)


@unittest.skipIf(built_with_asan(), "ASan turns mlock into a no-op")
class KeyMemory(unittest.TestCase):
    def test_key_material_locked_while_unsealed_and_released_on_seal(self):
        s = Server(storage="file")
        try:
            s.start()
            pid = s.proc.pid
            s.init(shares=3, threshold=2)
            self.assertEqual(vmlck_kb(pid), 0, "nothing to lock before unseal")
            s.unseal(s.keys[:1])
            self.assertGreater(vmlck_kb(pid), 0, "a held unseal key share is not mlock'd")
            s.unseal(s.keys[1:2])
            self.assertGreater(vmlck_kb(pid), 0, "keyring not mlock'd after unseal")
            self.assertEqual(s.put("sys/seal", {}).status, 204)
            self.assertEqual(vmlck_kb(pid), 0, "key buffers still held after seal")
            s.unseal(s.keys[:2])
            self.assertGreater(vmlck_kb(pid), 0)
        finally:
            s.cleanup()

    def test_disable_mlock_locks_nothing(self):
        s = Server(storage="file")
        try:
            with open(s.config_path) as f:
                cfg = f.read().replace("disable_mlock = false", "disable_mlock = true")
            with open(s.config_path, "w") as f:
                f.write(cfg)
            s.start()
            s.init_unseal()
            self.assertEqual(vmlck_kb(s.proc.pid), 0)
        finally:
            s.cleanup()


def scan_memory(pid, needles):
    """{needle: [(region, offset)]} for every writable mapping of pid
    (heap, thread stacks, anonymous mmaps) that holds a needle."""
    found = {}
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else "[anon]"
            if "w" not in parts[1] or "r" not in parts[1] or name.startswith("/") or name == "[vvar]":
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for n in needles:
                i = data.find(n)
                while i >= 0:
                    found.setdefault(n, []).append((name, i))
                    i = data.find(n, i + 1)
    return found


@unittest.skipUnless(os.geteuid() == 0, "reads /proc/PID/mem of a non-dumpable process")
@unittest.skipIf(VALGRIND, "valgrind's own heap holds copies")
@unittest.skipIf(built_with_asan(), "sanitizers own the allocator: the scrubbing free is off")
class NothingLeftInMemory(unittest.TestCase):
    """After sys/seal, the values this test used - KV secrets, the root
    token, created tokens, an AppRole secret_id, unseal keys - are nowhere
    in the process's memory (freed heap included)."""

    def test_no_secret_in_memory_after_seal(self):
        s = Server(storage="file")
        try:
            s.start()
            used = []
            j = s.init(shares=1, threshold=1)
            used += [("unseal key", j["keys"][0]), ("unseal key b64", j["keys_base64"][0]),
                     ("root token", j["root_token"])]
            s.unseal()
            self.assertIn(s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status,
                          (200, 204))
            self.assertIn(s.post("sys/mounts/kv1", {"type": "kv"}).status, (200, 204))
            for i in range(4):
                v = "kv2-value-" + secrets.token_hex(12)
                used.append(("kv2 value", v))
                self.assertEqual(s.put("secret/data/app%d" % i, {"data": {"password": v}}).status, 200)
                self.assertEqual(s.get("secret/data/app%d" % i).json()["data"]["data"]["password"], v)
            v = "kv1-value-" + secrets.token_hex(12)
            used.append(("kv1 value", v))
            self.assertIn(s.put("kv1/db", {"password": v}).status, (200, 204))
            self.assertEqual(s.get("kv1/db").json()["data"]["password"], v)
            r = s.post("auth/token/create", {"policies": ["default"], "ttl": "1h"})
            tok = r.json()["auth"]["client_token"]
            used.append(("created token", tok))
            self.assertEqual(s.get("auth/token/lookup-self", token=tok).status, 200)
            self.assertIn(s.post("sys/auth/approle", {"type": "approle"}).status, (200, 204))
            self.assertIn(s.post("auth/approle/role/app", {"token_policies": "default"}).status, (200, 204))
            role_id = s.get("auth/approle/role/app/role-id").json()["data"]["role_id"]
            sid = s.post("auth/approle/role/app/secret-id", {}).json()["data"]["secret_id"]
            used.append(("approle secret_id", sid))
            r = s.post("auth/approle/login", {"role_id": role_id, "secret_id": sid}, token="")
            self.assertEqual(r.status, 200, r)
            used.append(("approle login token", r.json()["auth"]["client_token"]))
            self.assertEqual(s.put("sys/seal", {}).status, 204)
            time.sleep(0.3)  # connections closed, workers idle
            needles = {sec.encode(): what for what, sec in used}
            found = scan_memory(s.proc.pid, list(needles))
            report = ["%s: %d copies (%s)" % (needles[n], len(w), ", ".join("%s+%#x" % x for x in w[:4]))
                      for n, w in found.items()]
            self.assertEqual(report, [], "secrets left in process memory after seal")
        finally:
            s.cleanup()


@unittest.skipUnless(os.geteuid() == 0, "needs root to start the server as another user")
class NotDumpable(unittest.TestCase):
    def start_as_nobody(self, env=None):
        s = Server(dev=True, env=env, wrap=["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                                            "--clear-groups"])
        s.start()
        self.addCleanup(s.cleanup)
        self.assertEqual(status_field(s.proc.pid, "Uid").split()[0], str(NOBODY))
        return s

    def environ_readable_by_owner(self, pid):
        r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                            "cat", "/proc/%d/environ" % pid], capture_output=True)
        return r.returncode == 0

    def core_limit(self, pid):
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max core file size"):
                    return line.split()[4]
        return None

    def test_server_is_not_dumpable(self):
        s = self.start_as_nobody()
        pid = s.proc.pid
        self.assertEqual(s.get("sys/health").status, 200)
        self.assertEqual(os.stat("/proc/%d/environ" % pid).st_uid, 0, "process is dumpable")
        self.assertFalse(self.environ_readable_by_owner(pid), "its own user can read the server's memory-backed files")
        self.assertEqual(self.core_limit(pid), "0")

    def test_core_dumps_can_be_enabled_explicitly(self):
        s = self.start_as_nobody(env={"COFFER_ENABLE_CORE_DUMPS": "1"})
        pid = s.proc.pid
        self.assertEqual(os.stat("/proc/%d/environ" % pid).st_uid, NOBODY)
        self.assertTrue(self.environ_readable_by_owner(pid))


if __name__ == "__main__":
    unittest.main()
