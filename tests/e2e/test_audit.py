#!/usr/bin/env python3
"""tests/e2e/test_audit.py - audit devices against the real binary.

File device entries (request + response, HMAC'd tokens and data, audit-hash
matches), failed requests logged, fail closed (a device that cannot write ->
500 and the request is not executed), two devices with one failing, socket
device whose peer is gone or never reads (bounded by write_timeout), option
safety (prefix, executable mode), SIGHUP log rotation, and the tamper-evident
chain with `coffer audit verify` (edited, deleted, swapped lines; restart).
Stdlib only: COFFER_BIN=build/coffer /usr/bin/python3 tests/e2e/test_audit.py
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Server  # noqa: E402


def read_entries(path):
    with open(path) as f:
        return [json.loads(l) for l in f.read().splitlines() if l.strip()]


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Peer:
    """A TCP peer for the socket device. mode 'read' drains connections,
    'stuck' accepts and never reads (and keeps its receive buffer small)."""

    def __init__(self, mode="read", port=0):
        self.mode = mode
        self.lines = []
        self.conns = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        while not self.closed:
            if self.mode == "stuck":
                time.sleep(0.05)
                continue
            try:
                d = c.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line)

    def close(self):
        self.closed = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
        except OSError:
            pass
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.ls.close()


class AuditTest(unittest.TestCase):
    dev = True
    extra_config = ""

    def setUp(self):
        self.srv = Server(dev=self.dev, extra_config=self.extra_config)
        self.srv.start()
        if self.dev:  # dev mode unseals and creates the root token just after
            self.assertTrue(wait_for(  # the listener starts
                lambda: self.srv.get("auth/token/lookup-self").status == 200))
        else:
            self.srv.init_unseal()
            self.assertEqual(self.srv.post("sys/mounts/secret", {"type": "kv"}).status, 204)
        self.addCleanup(self.srv.cleanup)
        self.tmp = os.path.join(self.srv.dir, "audit")
        os.makedirs(self.tmp, exist_ok=True)

    def enable(self, path, typ, **opts):
        return self.srv.put("sys/audit/" + path, {"type": typ, "options": opts})

    def cli(self, *args, token=None):
        env = dict(os.environ, VAULT_ADDR="http://" + self.srv.addr,
                   VAULT_TOKEN=token or self.srv.root_token, HOME=self.srv.dir)
        p = subprocess.run([BIN] + list(args), env=env, capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def kv_put(self, key, data):
        return self.srv.put("secret/data/" + key, {"data": data})


class TestFileDevice(AuditTest):
    def test_entries_hmac_and_audit_hash(self):
        logp = os.path.join(self.tmp, "audit.log")
        r = self.enable("file", "file", file_path=logp)
        self.assertEqual(r.status, 204, r)
        r = self.srv.get("sys/audit")
        self.assertEqual(r.status, 200, r)
        dev = r.json()["data"]["file/"]
        self.assertEqual(dev["type"], "file")
        self.assertEqual(dev["options"]["file_path"], logp)
        self.assertEqual(dev["path"], "file/")
        self.assertIs(dev["local"], False)
        self.assertEqual(os.stat(logp).st_mode & 0o777, 0o600)

        secret = "correct-horse-battery-staple"
        self.assertEqual(self.kv_put("app", {"password": secret}).status, 200)
        r = self.srv.get("secret/data/app")
        self.assertEqual(r.json()["data"]["data"]["password"], secret)
        with open(logp) as f:
            text = f.read()
        self.assertNotIn(secret, text)
        self.assertNotIn('"client_token":"%s"' % self.srv.root_token, text)
        ents = read_entries(logp)
        writes = [e for e in ents if e["request"]["path"] == "secret/data/app"]
        self.assertEqual([e["type"] for e in writes], ["request", "response"] * 2)
        req, resp = writes[0], writes[1]
        self.assertEqual(req["request"]["id"], resp["request"]["id"])
        self.assertEqual(req["request"]["operation"], "create")
        self.assertEqual(req["request"]["mount_type"], "kv")
        self.assertEqual(req["request"]["namespace"], {"id": "root"})
        self.assertEqual(req["request"]["remote_address"], "127.0.0.1")
        self.assertIsInstance(req["request"]["remote_port"], int)
        self.assertEqual(req["auth"]["policies"], ["root"])
        self.assertEqual(req["auth"]["display_name"], "root")
        self.assertEqual(req["auth"]["token_type"], "service")
        self.assertTrue(req["auth"]["client_token"].startswith("hmac-sha256:"))
        self.assertTrue(req["auth"]["accessor"].startswith("hmac-sha256:"))
        self.assertTrue(req["request"]["client_token_accessor"].startswith("hmac-sha256:"))
        self.assertIn("time", req)
        self.assertIn("response", resp)
        self.assertNotIn("response", req)
        # audit-hash gives the values found in the log
        h = self.srv.put("sys/audit-hash/file", {"input": secret})
        self.assertEqual(h.status, 200, h)
        self.assertEqual(req["request"]["data"]["data"]["password"], h.json()["data"]["hash"])
        self.assertEqual(h.json()["hash"], h.json()["data"]["hash"])
        th = self.srv.put("sys/audit-hash/file", {"input": self.srv.root_token}).json()["hash"]
        self.assertEqual(req["auth"]["client_token"], th)
        self.assertEqual(req["request"]["client_token"], th)
        # the read's response data is HMAC'd too
        read_resp = writes[3]
        self.assertEqual(read_resp["response"]["data"]["data"]["password"],
                         h.json()["data"]["hash"])

    def test_read_entries_written_together(self):
        """A read that changes nothing (kv, token lookup) has its request and
        response entries written together: under concurrent reads each
        request line is followed at once by its own response line, with the
        next seq and a later time. A use-limited token's read is still
        logged before it runs (request and response in order)."""
        logp = os.path.join(self.tmp, "audit.log")
        self.assertEqual(self.enable("file", "file", file_path=logp).status, 204)
        self.assertEqual(self.kv_put("app", {"password": "pw-pair"}).status, 200)
        errors = []

        def reader():
            for _ in range(15):
                for path in ("secret/data/app", "auth/token/lookup-self"):
                    r = self.srv.get(path)
                    if r.status != 200:
                        errors.append((path, r.status))
        threads = [threading.Thread(target=reader) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        ents = read_entries(logp)
        reads = 0
        for i, e in enumerate(ents):
            if e["type"] != "request" or e["request"]["operation"] != "read":
                continue
            reads += 1
            nxt = ents[i + 1]
            self.assertEqual(nxt["type"], "response", e["request"]["path"])
            self.assertEqual(nxt["request"]["id"], e["request"]["id"])
            self.assertEqual(nxt["seq"], e["seq"] + 1)
            self.assertLessEqual(e["time"], nxt["time"])
            self.assertNotIn("response", e)
        self.assertEqual(reads, 6 * 15 * 2)
        # a token with uses left: its use is counted, both entries logged
        r = self.srv.post("auth/token/create", {"num_uses": 3, "policies": ["default"]})
        self.assertEqual(r.status, 200, r)
        limited = r.json()["auth"]["client_token"]
        self.assertEqual(self.srv.get("auth/token/lookup-self", token=limited).status, 200)
        r = self.srv.get("auth/token/lookup-self", token=limited)
        self.assertEqual(r.json()["data"]["num_uses"], 1)
        th = self.srv.put("sys/audit-hash/file", {"input": limited}).json()["hash"]
        mine = [e for e in read_entries(logp) if e["auth"].get("client_token") == th]
        self.assertEqual([e["type"] for e in mine], ["request", "response"] * 2)

    def test_failed_request_logged(self):
        logp = os.path.join(self.tmp, "audit.log")
        self.assertEqual(self.enable("file", "file", file_path=logp).status, 204)
        r = self.srv.get("secret/data/x", token="s.notavalidtoken000000000")
        self.assertEqual(r.status, 403)
        r = self.srv.put("sys/mounts/bad", {"type": "nosuchengine"})
        self.assertEqual(r.status, 400)
        ents = read_entries(logp)
        denied = [e for e in ents if e["request"]["path"] == "secret/data/x"]
        self.assertEqual([e["type"] for e in denied], ["request", "response"])
        self.assertEqual(denied[0]["error"], "permission denied")
        self.assertTrue(denied[0]["auth"]["client_token"].startswith("hmac-sha256:"))
        bad = [e for e in ents if e["request"]["path"] == "sys/mounts/bad"]
        self.assertEqual(len(bad), 2)
        self.assertIn("error", bad[1])

    def test_token_create_logged_with_token_hmac(self):
        logp = os.path.join(self.tmp, "audit.log")
        self.assertEqual(self.enable("file", "file", file_path=logp).status, 204)
        r = self.srv.post("auth/token/create", {"policies": ["default"]})
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        acc = r.json()["auth"]["accessor"]
        with open(logp) as f:
            text = f.read()
        self.assertNotIn(tok, text)
        self.assertNotIn(acc, text)
        ents = [e for e in read_entries(logp) if e["request"]["path"] == "auth/token/create"]
        auth = ents[1]["response"]["auth"]
        th = self.srv.put("sys/audit-hash/file", {"input": tok}).json()["hash"]
        self.assertEqual(auth["client_token"], th)
        # the new token's own requests carry the same HMAC
        self.assertEqual(self.srv.get("auth/token/lookup-self", token=tok).status, 200)
        last = read_entries(logp)[-1]
        self.assertEqual(last["auth"]["client_token"], th)

    def test_log_raw_hmac_accessor_elide(self):
        raw = os.path.join(self.tmp, "raw.log")
        acc = os.path.join(self.tmp, "acc.log")
        self.assertEqual(self.enable("raw", "file", file_path=raw, log_raw="true").status, 204)
        self.assertEqual(self.enable("acc", "file", file_path=acc, hmac_accessor="false",
                                     elide_list_responses="true").status, 204)
        self.assertEqual(self.kv_put("a", {"v": "plainvalue"}).status, 200)
        self.assertEqual(self.kv_put("b", {"v": "x"}).status, 200)
        self.assertEqual(self.srv.list("secret/metadata/").status, 200)
        with open(raw) as f:
            self.assertIn("plainvalue", f.read())
        e = [x for x in read_entries(acc) if x["request"]["path"] == "secret/data/a"][0]
        self.assertFalse(e["auth"]["accessor"].startswith("hmac-sha256:"))
        self.assertTrue(e["auth"]["client_token"].startswith("hmac-sha256:"))
        lst = [x for x in read_entries(acc)
               if x["type"] == "response" and x["request"]["operation"] == "list"][0]
        self.assertEqual(lst["response"]["data"]["keys"], 2)

    def test_jsonx_format(self):
        logp = os.path.join(self.tmp, "audit.xml")
        self.assertEqual(self.enable("x", "file", file_path=logp, format="jsonx").status, 204)
        self.assertEqual(self.srv.get("sys/mounts").status, 200)
        with open(logp) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        self.assertTrue(lines[-1].startswith('<?xml version="1.0" encoding="UTF-8"?><json:object'))
        self.assertIn('<json:string name="type">response</json:string>', lines[-1])

    def test_option_safety_and_errors(self):
        logp = os.path.join(self.tmp, "audit.log")
        r = self.enable("p", "file", file_path=logp, prefix="X:")
        self.assertEqual(r.status, 400, r)
        self.assertIn("allow_audit_log_prefixing", r.json()["errors"][0])
        r = self.enable("m", "file", file_path=logp, mode="0755")
        self.assertEqual(r.status, 400, r)
        self.assertIn("executable", r.json()["errors"][0])
        self.assertFalse(os.path.exists(logp))
        self.assertEqual(self.enable("t", "nosuchtype").status, 400)
        self.assertEqual(self.enable("f", "file").status, 400)  # no file_path
        self.assertEqual(self.enable("s", "socket", address="127.0.0.1:1").status, 400)
        self.assertEqual(self.enable("m", "file", file_path=logp, mode="0640").status, 204)
        self.assertEqual(os.stat(logp).st_mode & 0o777, 0o640)
        self.assertEqual(self.enable("m", "file", file_path=logp).status, 400)  # in use
        self.assertEqual(self.srv.get("sys/audit").json()["data"].keys(), {"m/"})
        self.assertEqual(self.srv.delete("sys/audit/m").status, 204)
        self.assertEqual(self.srv.delete("sys/audit/m").status, 204)
        self.assertEqual(self.srv.get("sys/audit").json()["data"], {})

    def test_sudo_required(self):
        pol = 'path "sys/audit*" { capabilities = ["create","read","update","delete","list"] }'
        self.assertEqual(self.srv.put("sys/policies/acl/aud", {"policy": pol}).status, 204)
        tok = self.srv.post("auth/token/create", {"policies": ["aud"]}).json()["auth"]["client_token"]
        self.assertEqual(self.srv.get("sys/audit", token=tok).status, 403)
        self.assertEqual(self.srv.put("sys/audit/f", {"type": "file", "options": {
            "file_path": "discard"}}, token=tok).status, 403)
        pol2 = 'path "sys/audit*" { capabilities = ["create","read","update","delete","list","sudo"] }'
        self.assertEqual(self.srv.put("sys/policies/acl/aud", {"policy": pol2}).status, 204)
        self.assertEqual(self.srv.put("sys/audit/f", {"type": "file", "options": {
            "file_path": "discard"}}, token=tok).status, 204)
        self.assertEqual(self.srv.get("sys/audit/f/chain-key", token=tok).status, 200)


class TestFailClosed(AuditTest):
    def test_unwritable_file_refuses_and_does_not_execute(self):
        d = os.path.join(self.tmp, "logs")
        logp = os.path.join(d, "audit.log")
        self.assertEqual(self.enable("file", "file", file_path=logp).status, 204)
        self.assertEqual(self.kv_put("k", {"v": "1"}).status, 200)
        # the directory disappears and a file takes its place: reopen fails
        shutil.rmtree(d)
        with open(d, "w") as f:
            f.write("not a directory")
        os.kill(self.srv.proc.pid, signal.SIGHUP)
        time.sleep(0.3)
        r = self.kv_put("blocked", {"v": "2"})
        self.assertEqual(r.status, 500, r)
        self.assertEqual(self.srv.get("secret/data/k").status, 500)
        # repair: the next write reopens the file by itself
        os.remove(d)
        os.makedirs(d)
        self.assertTrue(wait_for(lambda: self.srv.get("secret/data/k").status == 200))
        self.assertEqual(self.srv.get("secret/data/blocked").status, 404)

    def test_dev_full_alone_fails_closed(self):
        self.assertIn(self.enable("full", "file", file_path="/dev/full").status, (204, 500))
        mode = os.stat("/dev/full").st_mode & 0o777
        r = self.kv_put("k", {"v": "1"})
        self.assertEqual(r.status, 500, r)
        self.assertEqual(os.stat("/dev/full").st_mode & 0o777, mode, "device mode untouched")

    def test_two_devices_one_failing(self):
        logp = os.path.join(self.tmp, "good.log")
        self.assertEqual(self.enable("good", "file", file_path=logp).status, 204)
        self.assertEqual(self.enable("full", "file", file_path="/dev/full").status, 204)
        self.assertEqual(self.kv_put("k", {"v": "1"}).status, 200)
        self.assertEqual(self.srv.get("secret/data/k").status, 200)
        self.assertTrue(any(e["request"]["path"] == "secret/data/k" for e in read_entries(logp)))
        # the failing one alone is not enough (the disable itself runs, but its
        # response can no longer be recorded)
        self.assertIn(self.srv.delete("sys/audit/good").status, (204, 500))
        self.assertNotIn("good/", self.srv.get("sys/audit").json() or {})
        self.assertEqual(self.srv.get("secret/data/k").status, 500)


class TestSocketDevice(AuditTest):
    def test_socket_entries_and_peer_gone(self):
        peer = Peer("read")
        self.addCleanup(peer.close)
        r = self.enable("sock", "socket", address="127.0.0.1:%d" % peer.port,
                        socket_type="tcp", write_timeout="1s")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.kv_put("k", {"v": "1"}).status, 200)
        self.assertTrue(wait_for(lambda: any(b"secret/data/k" in l for l in peer.lines)))
        port = peer.port
        peer.close()
        time.sleep(0.1)
        t0 = time.time()
        r = self.kv_put("gone", {"v": "2"})
        self.assertEqual(r.status, 500, r)
        self.assertLess(time.time() - t0, 3)
        # the peer comes back on the same port: the device reconnects
        peer2 = Peer("read", port=port)
        self.addCleanup(peer2.close)
        self.assertTrue(wait_for(lambda: self.srv.get("secret/data/gone").status == 404))
        self.assertTrue(wait_for(lambda: bool(peer2.lines)))

    def test_socket_peer_never_reads_is_bounded(self):
        peer = Peer("stuck")
        self.addCleanup(peer.close)
        r = self.enable("sock", "socket", address="127.0.0.1:%d" % peer.port,
                        write_timeout="1s")
        self.assertEqual(r.status, 204, r)
        big = {"k%05d" % i: "v" * 40 for i in range(4000)}  # ~400 KB per entry
        failed_at = None
        for i in range(40):
            t0 = time.time()
            r = self.kv_put("big%d" % i, big)
            took = time.time() - t0
            self.assertLess(took, 4.0, "request %d took %.1fs" % (i, took))
            if r.status == 500:
                failed_at = i
                break
            self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(failed_at, "the peer's buffers never filled")
        # other requests are bounded too while the peer is stuck
        t0 = time.time()
        self.assertIn(self.srv.get("sys/mounts").status, (200, 500))
        self.assertLess(time.time() - t0, 4.0)
        # the peer starts reading: the device reconnects and recovers (a
        # timed-out write drops its connection: the peer may hold half a line)
        peer.mode = "read"
        self.assertTrue(wait_for(lambda: self.srv.get("sys/mounts").status == 200, 10))


class TestPrefixAllowed(AuditTest):
    dev = False
    extra_config = "allow_audit_log_prefixing = true\n"

    def test_prefix(self):
        logp = os.path.join(self.tmp, "audit.log")
        self.assertEqual(self.enable("file", "file", file_path=logp, prefix="COFFER ").status, 204)
        self.assertEqual(self.srv.get("sys/mounts").status, 200)
        with open(logp) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines and all(l.startswith('COFFER {"time":') for l in lines))
        keyf = os.path.join(self.tmp, "key")
        with open(keyf, "w") as f:
            f.write(self.srv.get("sys/audit/file/chain-key").json()["data"]["key"])
        rc, out, err = self.cli("audit", "verify", "-key-file=" + keyf, logp)
        self.assertEqual(rc, 0, err)


class TestChain(AuditTest):
    dev = False

    def setUp(self):
        super().setUp()
        self.logp = os.path.join(self.tmp, "audit.log")
        # the seed guide's command, through the CLI
        rc, out, err = self.cli("audit", "enable", "file", "file_path=" + self.logp)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.cli("audit", "enable", "-path=file_json", "file",
                                "file_path=" + self.logp + ".json", "log_raw=false", "format=json")
        self.assertEqual(rc, 0, err)
        self.keyf = os.path.join(self.tmp, "chain.key")
        with open(self.keyf, "w") as f:
            f.write(self.srv.get("sys/audit/file/chain-key").json()["data"]["key"])
        for i in range(4):
            self.assertEqual(self.srv.put("secret/k%d" % i, {"v": str(i)}).status in (200, 204), True)

    def verify(self, path, *extra):
        return self.cli("audit", "verify", "-key-file=" + self.keyf, path, *extra)

    def tampered(self, lines):
        p = self.logp + ".bad"
        with open(p, "w") as f:
            f.writelines(lines)
        return p

    def test_verify_ok_and_tampering(self):
        rc, out, err = self.cli("audit", "verify", "-path=file", self.logp)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^ok, \d+ entries\n$")
        rc, out, err = self.cli("audit", "verify", "-path=file_json", self.logp + ".json")
        self.assertEqual(rc, 0, err)
        with open(self.logp) as f:
            lines = f.readlines()
        self.assertGreaterEqual(len(lines), 8)
        seqs = [json.loads(l)["seq"] for l in lines]
        self.assertEqual(seqs, list(range(1, len(lines) + 1)))
        # edited
        ed = list(lines)
        ed[4] = ed[4].replace('"operation":"', '"operation":"x', 1)
        rc, _, err = self.verify(self.tampered(ed))
        self.assertEqual(rc, 2)
        self.assertIn("line 5: altered", err)
        # deleted
        de = lines[:3] + lines[5:]
        rc, _, err = self.verify(self.tampered(de))
        self.assertEqual(rc, 2)
        self.assertIn("line 4: removed: 2 entries", err)
        # swapped
        sw = list(lines)
        sw[2], sw[3] = sw[3], sw[2]
        rc, _, err = self.verify(self.tampered(sw))
        self.assertEqual(rc, 2)
        self.assertIn("line 3: reordered", err)

    def test_sighup_rotation(self):
        rotated = self.logp + ".1"
        os.rename(self.logp, rotated)
        self.assertEqual(self.srv.get("sys/mounts").status, 200)  # still the old file
        os.kill(self.srv.proc.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.exists(self.logp)))
        self.assertEqual(self.srv.get("sys/mounts").status, 200)
        ents = read_entries(self.logp)
        self.assertTrue(any(e["request"]["path"] == "sys/mounts" for e in ents))
        self.assertFalse(any(e["request"]["path"] == "sys/mounts" for e in ents[:0]))
        for p in (rotated, self.logp):
            rc, out, err = self.verify(p)
            self.assertEqual(rc, 0, (p, err))
        # seq goes on across files
        self.assertEqual(ents[0]["seq"], read_entries(rotated)[-1]["seq"] + 1)
        # a SIGHUP without rotation continues the same chain
        os.kill(self.srv.proc.pid, signal.SIGHUP)
        time.sleep(0.2)
        self.assertEqual(self.srv.get("sys/mounts").status, 200)
        rc, out, err = self.verify(self.logp)
        self.assertEqual(rc, 0, err)

    def test_chain_and_devices_survive_restart(self):
        n_before = len(read_entries(self.logp))
        self.srv.stop()
        self.srv.start()
        self.srv.unseal()
        r = self.srv.get("sys/audit")
        self.assertEqual(set(r.json()["data"].keys()), {"file/", "file_json/"})
        self.assertEqual(self.srv.put("secret/after", {"v": "1"}).status in (200, 204), True)
        ents = read_entries(self.logp)
        self.assertGreater(len(ents), n_before)
        self.assertEqual([e["seq"] for e in ents], list(range(1, len(ents) + 1)))
        rc, out, err = self.verify(self.logp)
        self.assertEqual(rc, 0, err)
        # same key after restart
        with open(self.keyf) as f:
            self.assertEqual(self.srv.get("sys/audit/file/chain-key").json()["data"]["key"],
                             f.read())


if __name__ == "__main__":
    unittest.main()
