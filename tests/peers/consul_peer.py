#!/usr/bin/env python3
"""
consul_peer.py - a local Consul HTTP API peer for the tests of storage
"consul" (no Consul binary can be installed here). It implements, from
Consul's API documentation, exactly the endpoints Coffer's backend uses,
with Consul's semantics:

  KV        GET/PUT/DELETE /v1/kv/<key>: entries with CreateIndex,
            ModifyIndex, LockIndex, Flags, Session; base64 values in JSON,
            ?raw, ?recurse, ?keys (+ &separator=), ?cas=0 (create only) and
            ?cas=<index>, ?flags, ?acquire=<session> / ?release=<session>,
            DELETE ?recurse / ?cas; blocking queries (?index=&wait=) with
            X-Consul-Index; kv_max_value_size (413).
  Txn       PUT /v1/txn: atomic (all or nothing); KV verbs set, cas, lock,
            unlock, get, get-or-empty, get-tree, check-index, check-session,
            check-not-exists, delete, delete-tree, delete-cas; 409 with
            Errors [{OpIndex, What}] when rolled back; txn_max_req_len and
            the operation limit (413).
  Sessions  PUT /v1/session/create|renew/<id>|destroy/<id>, GET
            /v1/session/info/<id>, /v1/session/list: TTL between
            session_ttl_min and 24h, invalidated once TTL x 2 has passed
            without a renewal (Consul's SessionTTLMultiplier: the TTL is a
            lower bound), LockDelay (max 60s) applied to the keys a session
            held when it is invalidated or destroyed (not on ?release),
            Behavior release|delete; NodeChecks / Checks (deprecated) /
            ServiceChecks: a session bound to checks is invalidated at once
            when one of them goes critical (a TTL check not updated within
            its TTL, check/fail) or is deregistered.
  Agent     PUT /v1/agent/service/register, /v1/agent/service/deregister/<id>,
            /v1/agent/check/register, /v1/agent/check/deregister/<id>,
            /v1/agent/check/pass|warn|fail/<id>; GET /v1/agent/services,
            /v1/agent/checks; TTL checks go critical when not updated in time.
  Status    GET /v1/status/leader.
  ACL       with --token, every request but /v1/status needs it
            (X-Consul-Token, Authorization: Bearer, or ?token=): none ->
            403 "Permission denied", an unknown one -> 403 "ACL not found".
  Router    Consul's HTTP mux cleans request paths: a path with an empty,
            "." or ".." segment is answered 301 to the cleaned path.

Run:  python3 consul_peer.py [--port N] [--port-file F] [--token T]
                             [--session-ttl-min 10s]
or import ConsulPeer (start()/stop(), .url, .addr) from a test.
"""
import argparse
import base64
import json
import os
import posixpath
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KV_MAX_VALUE = 512 * 1024
TXN_MAX_LEN = 512 * 1024
TXN_MAX_OPS = 128
MAX_LOCK_DELAY = 60.0
TTL_MULTIPLIER = 2
NODE = "coffer-test-node"


def parse_duration(s):
    """Go's time.ParseDuration for the units Consul clients send; ints are ns."""
    if isinstance(s, (int, float)):
        return float(s) / 1e9
    if s in ("", "0"):
        return 0.0
    total, pos = 0.0, 0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    for m in re.finditer(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", s):
        if m.start() != pos:
            raise ValueError("time: invalid duration %r" % s)
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError("time: invalid duration %r" % s)
    return total


def go_clean(p):
    """Go's path.Clean plus ServeMux's trailing-slash rule."""
    if p == "":
        return "/"
    np = posixpath.normpath(p)
    if np.startswith("//"):
        np = "/" + np.lstrip("/")
    if p.endswith("/") and np != "/":
        np += "/"
    return np


class TxnError(Exception):
    pass


class State:
    def __init__(self, session_ttl_min):
        self.cv = threading.Condition()
        self.index = 10
        self.kv = {}            # key -> entry dict (Value: bytes)
        self.kv_index = 1       # last raft index that touched the KV table
        self.sessions = {}      # id -> session dict (+ "_deadline")
        self.lock_delay = {}    # key -> monotonic time until which acquire fails
        self.services = {}
        self.checks = {}        # id -> check (+ "_deadline" for TTL checks)
        self.session_ttl_min = session_ttl_min

    def bump(self):
        self.index += 1
        return self.index

    # -- sessions --
    def invalidate(self, sid, now=None):
        s = self.sessions.pop(sid, None)
        if not s:
            return
        now = time.monotonic() if now is None else now
        idx = self.bump()
        delay = min(s["_lock_delay"], MAX_LOCK_DELAY)
        for k, e in list(self.kv.items()):
            if e.get("Session") != sid:
                continue
            if s["Behavior"] == "delete":
                del self.kv[k]
            else:
                e = dict(e)
                e.pop("Session", None)
                e["ModifyIndex"] = idx
                self.kv[k] = e
            if delay > 0:
                self.lock_delay[k] = now + delay
            self.kv_index = idx
        self.cv.notify_all()

    def invalidate_check(self, cid, now=None):
        """Consul's contract: a session is invalidated when any of its
        checks goes critical or is deregistered; lock-delay then applies."""
        for sid, s in list(self.sessions.items()):
            if cid in s.get("_checks", ()):
                self.invalidate(sid, now)

    def reap(self):
        now = time.monotonic()
        with self.cv:
            for sid, s in list(self.sessions.items()):
                if s.get("_deadline") and now >= s["_deadline"]:
                    self.invalidate(sid, now)
            for cid, c in self.checks.items():
                if c.get("_deadline") and now >= c["_deadline"] and c["Status"] != "critical":
                    c["Status"] = "critical"
                    c["Output"] = "TTL expired"
                    # a session tied to a check is invalidated as soon as
                    # the check is critical (no TTL grace)
                    self.invalidate_check(cid, now)

    # -- KV primitives (on a dict, so a txn can work on a copy) --
    def _set(self, kv, key, value, flags, idx, session=None, lock=False):
        old = kv.get(key)
        e = dict(old) if old else {"LockIndex": 0, "Key": key, "Flags": 0, "CreateIndex": idx}
        e["Value"] = value
        e["Flags"] = flags
        e["ModifyIndex"] = idx
        if lock:
            if e.get("Session") != session:
                e["LockIndex"] = e.get("LockIndex", 0) + 1
            e["Session"] = session
        kv[key] = e
        return e

    def kv_lock(self, kv, key, value, flags, sid, idx):
        if sid not in self.sessions:
            raise TxnError('invalid session "%s"' % sid)
        e = kv.get(key)
        if e and e.get("Session") and e["Session"] != sid:
            return None
        until = self.lock_delay.get(key)
        if until and time.monotonic() < until and not (e and e.get("Session") == sid):
            return None
        return self._set(kv, key, value, flags, idx, sid, lock=True)

    def kv_unlock(self, kv, key, value, flags, sid, idx):
        e = kv.get(key)
        if not e or e.get("Session") != sid:
            return None
        e = self._set(kv, key, value, flags, idx)
        e.pop("Session", None)
        return e


def entry_json(e, with_value=True):
    o = {"LockIndex": e.get("LockIndex", 0), "Key": e["Key"], "Flags": e.get("Flags", 0),
         "Value": (base64.b64encode(e["Value"]).decode() if with_value and e.get("Value") else None),
         "CreateIndex": e.get("CreateIndex", 0), "ModifyIndex": e.get("ModifyIndex", 0)}
    if e.get("Session"):
        o["Session"] = e["Session"]
    return o


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Consul"

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without NODELAY,
        # Nagle + delayed ACK add 40 ms to every answer
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if os.environ.get("CONSUL_PEER_DEBUG"):
            sys.stderr.write("consul_peer: " + (fmt % args) + "\n")

    @property
    def st(self):
        return self.server.state

    # -- plumbing --
    def reply(self, code, body=b"", ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Consul-Default-Acl-Policy", "deny" if self.server.token else "allow")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def text(self, code, msg):
        self.reply(code, msg + "\n" if msg else "", "text/plain; charset=utf-8")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def dispatch(self):
        raw_path, _, raw_query = self.path.partition("?")
        path = urllib.parse.unquote_to_bytes(raw_path).decode("utf-8", "surrogateescape")
        q = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        self.q = {k: v[0] for k, v in q.items()}
        clean = go_clean(path)
        if clean != path:
            self.body()
            loc = urllib.parse.quote(clean, safe="/") + ("?" + raw_query if raw_query else "")
            return self.reply(301, "", "text/html", {"Location": loc})
        if not path.startswith("/v1/status/") and not self.acl_ok():
            return
        routes = [("/v1/kv/", self.kv), ("/v1/txn", self.txn), ("/v1/session/", self.session),
                  ("/v1/agent/", self.agent), ("/v1/status/leader", self.leader)]
        for prefix, fn in routes:
            if path == prefix or path.startswith(prefix):
                try:
                    return fn(path[len(prefix):])
                except BrokenPipeError:
                    return
        self.body()
        self.text(404, "")

    do_GET = do_PUT = do_DELETE = do_POST = dispatch

    def acl_ok(self):
        want = self.server.token
        if not want:
            return True
        got = self.headers.get("X-Consul-Token") or self.q.get("token")
        auth = self.headers.get("Authorization", "")
        if not got and auth.startswith("Bearer "):
            got = auth[7:].strip()
        if got == want:
            return True
        self.body()
        self.text(403, "ACL not found" if got else "Permission denied")
        return False

    def leader(self, _):
        self.reply(200, json.dumps("127.0.0.1:8300"))

    # -- blocking queries --
    def blocking(self, compute):
        """compute() -> (index, payload) under the state lock; waits while
        index <= ?index, up to ?wait (default 5m, max 10m) + wait/16."""
        st = self.st
        min_index = int(self.q.get("index") or 0)
        wait = parse_duration(self.q["wait"]) if self.q.get("wait") else 300.0
        wait = min(wait, 600.0)
        deadline = time.monotonic() + wait + wait / 16
        with st.cv:
            while True:
                idx, payload = compute()
                if min_index <= 0 or idx > min_index:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                st.cv.wait(min(left, 0.5))
        return max(idx, 1), payload

    # -- KV --
    def kv(self, key):
        st = self.st
        m = self.command
        if m == "GET":
            return self.kv_get(key)
        if not key:
            self.body()
            return self.text(400, "Missing key name")
        if m == "PUT":
            data = self.body()
            if len(data) > KV_MAX_VALUE:
                return self.text(413, "Request body(%d bytes) too large, max size: %d bytes. See "
                                      "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
                                 % (len(data), KV_MAX_VALUE))
            flags = int(self.q.get("flags") or 0)
            with st.cv:
                idx = st.index + 1
                ok = True
                if "acquire" in self.q:
                    sid = self.q["acquire"]
                    if sid not in st.sessions:
                        return self.text(500, 'invalid session "%s"' % sid)
                    ok = st.kv_lock(st.kv, key, data, flags, sid, idx) is not None
                elif "release" in self.q:
                    ok = st.kv_unlock(st.kv, key, data, flags, self.q["release"], idx) is not None
                elif "cas" in self.q:
                    cas = int(self.q["cas"])
                    e = st.kv.get(key)
                    ok = (e is None) if cas == 0 else (e is not None and e["ModifyIndex"] == cas)
                    if ok:
                        st._set(st.kv, key, data, flags, idx)
                else:
                    st._set(st.kv, key, data, flags, idx)
                if ok:
                    st.bump()
                    st.kv_index = idx
                    st.cv.notify_all()
            return self.reply(200, "true" if ok else "false")
        if m == "DELETE":
            self.body()
            with st.cv:
                recurse = "recurse" in self.q
                if "cas" in self.q and not recurse:
                    e = st.kv.get(key)
                    cas = int(self.q["cas"])
                    if e is None or e["ModifyIndex"] != cas:
                        return self.reply(200, "false")
                gone = [k for k in st.kv if (k.startswith(key) if recurse else k == key)]
                idx = st.bump()
                for k in gone:
                    del st.kv[k]
                st.kv_index = idx
                st.cv.notify_all()
            return self.reply(200, "true")
        self.body()
        self.text(405, "method %s not allowed" % m)

    def kv_get(self, key):
        st = self.st
        q = self.q
        if "keys" in q:
            sep = q.get("separator", "")

            def compute():
                out, seen, idx = [], set(), 0
                for k in sorted(st.kv):
                    if not k.startswith(key):
                        continue
                    idx = max(idx, st.kv[k]["ModifyIndex"])
                    if sep:
                        p = k.find(sep, len(key))
                        if p >= 0:
                            k = k[:p + len(sep)]
                    if k not in seen:
                        seen.add(k)
                        out.append(k)
                return (idx or st.kv_index), out
            idx, keys = self.blocking(compute)
            h = {"X-Consul-Index": str(idx), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
            if not keys:
                return self.reply(404, "", "text/plain", h)
            return self.reply(200, json.dumps(keys, ensure_ascii=False, default=str)
                              .encode("utf-8", "surrogateescape"), headers=h)
        if "recurse" in q:
            def compute():
                es = [st.kv[k] for k in sorted(st.kv) if k.startswith(key)]
                idx = max([e["ModifyIndex"] for e in es] or [0])
                return (idx or st.kv_index), [entry_json(e) for e in es]
        else:
            def compute():
                e = st.kv.get(key)
                return (e["ModifyIndex"] if e else st.kv_index), ([entry_json(e)] if e else [])
        idx, entries = self.blocking(compute)
        h = {"X-Consul-Index": str(idx), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
        if not entries:
            return self.reply(404, "", "text/plain", h)
        if "raw" in q and "recurse" not in q:
            v = entries[0]["Value"]
            return self.reply(200, base64.b64decode(v) if v else b"", "text/plain; charset=utf-8", h)
        return self.reply(200, json.dumps(entries, ensure_ascii=False).encode("utf-8", "surrogateescape"),
                          headers=h)

    # -- transactions --
    def txn(self, _):
        if self.command != "PUT":
            self.body()
            return self.text(405, "method %s not allowed" % self.command)
        n = int(self.headers.get("Content-Length") or 0)
        if n > TXN_MAX_LEN:
            self.body()
            return self.text(413, "Request body(%d bytes) too large, max size: %d bytes. See "
                                  "https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len."
                             % (n, TXN_MAX_LEN))
        try:
            ops = json.loads(self.body().decode("utf-8", "surrogateescape"))
            if not isinstance(ops, list):
                raise ValueError("not a list")
        except ValueError as e:
            return self.text(400, "Failed to parse body: %s" % e)
        if len(ops) > TXN_MAX_OPS:
            return self.text(413, "Transaction contains too many operations (%d > %d)"
                             % (len(ops), TXN_MAX_OPS))
        st = self.st
        with st.cv:
            kv = dict(st.kv)  # entries are replaced, never mutated: a shallow copy is a snapshot
            idx = st.index + 1
            results, errors, wrote = [], [], False
            for i, op in enumerate(ops):
                kvop = op.get("KV") if isinstance(op, dict) else None
                if kvop is None:
                    errors.append({"OpIndex": i, "What": "unsupported operation"})
                    break
                try:
                    r, w = self.txn_kv(kv, kvop, idx)
                    wrote = wrote or w
                    results.extend(r)
                except TxnError as e:
                    errors.append({"OpIndex": i, "What": str(e)})
                    break
            if errors:
                return self.reply(409, {"Results": None, "Errors": errors})
            if wrote:
                st.kv = kv
                st.bump()
                st.kv_index = idx
                st.cv.notify_all()
            body = json.dumps({"Results": results or None, "Errors": None}, ensure_ascii=False)
        self.reply(200, body.encode("utf-8", "surrogateescape"),
                   headers={"X-Consul-Index": str(st.index)})

    def txn_kv(self, kv, op, idx):
        st = self.st
        verb = op.get("Verb", "")
        key = op.get("Key", "")
        flags = int(op.get("Flags") or 0)
        sid = op.get("Session") or ""
        index = int(op.get("Index") or 0)
        try:
            value = base64.b64decode(op.get("Value") or "", validate=True)
        except ValueError:
            raise TxnError("illegal base64 data")
        if len(value) > KV_MAX_VALUE:
            raise TxnError("value too large")
        if not key and verb not in ("get-tree", "delete-tree"):
            raise TxnError("Missing key name")
        e = kv.get(key)

        def res(entry, with_value=False):
            return [{"KV": entry_json(entry, with_value)}]
        if verb == "set":
            return res(st._set(kv, key, value, flags, idx)), True
        if verb == "cas":
            if (index == 0 and e is not None) or (index != 0 and (e is None or e["ModifyIndex"] != index)):
                raise TxnError('failed to set key "%s", index is stale' % key)
            return res(st._set(kv, key, value, flags, idx)), True
        if verb == "lock":
            got = st.kv_lock(kv, key, value, flags, sid, idx)
            if got is None:
                raise TxnError('failed to lock key "%s", lock is already held' % key)
            return res(got), True
        if verb == "unlock":
            got = st.kv_unlock(kv, key, value, flags, sid, idx)
            if got is None:
                raise TxnError('failed to unlock key "%s", lock isn\'t held, or is held by another '
                               'session' % key)
            return res(got), True
        if verb == "get":
            if e is None:
                raise TxnError('key "%s" doesn\'t exist' % key)
            return res(e, True), False
        if verb == "get-or-empty":
            return res(e if e is not None else {"Key": key}, True), False
        if verb == "get-tree":
            return [{"KV": entry_json(kv[k], True)} for k in sorted(kv) if k.startswith(key)], False
        if verb == "check-index":
            if e is None:
                raise TxnError('key "%s" doesn\'t exist' % key)
            if e["ModifyIndex"] != index:
                raise TxnError('current modify index %d != %d' % (e["ModifyIndex"], index))
            return res(e), False
        if verb == "check-session":
            if e is None:
                raise TxnError('key "%s" doesn\'t exist' % key)
            if e.get("Session", "") != sid:
                raise TxnError('current session %s != %s' % (e.get("Session", ""), sid))
            return res(e), False
        if verb == "check-not-exists":
            if e is not None:
                raise TxnError('key "%s" exists' % key)
            return [], False
        if verb == "delete":
            kv.pop(key, None)
            return [], True
        if verb == "delete-tree":
            for k in [k for k in kv if k.startswith(key)]:
                del kv[k]
            return [], True
        if verb == "delete-cas":
            if e is None or e["ModifyIndex"] != index:
                raise TxnError('failed to delete key "%s", index is stale' % key)
            del kv[key]
            return [], True
        raise TxnError('unknown KV verb "%s"' % verb)

    # -- sessions --
    def session(self, rest):
        st = self.st
        data = self.body()
        parts = rest.split("/", 1)
        what, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if what == "create":
            if self.command != "PUT":
                return self.text(405, "method %s not allowed" % self.command)
            try:
                req = json.loads(data) if data.strip() else {}
            except ValueError as e:
                return self.text(400, "Request decode failed: %s" % e)
            behavior = req.get("Behavior") or "release"
            if behavior not in ("release", "delete"):
                return self.text(400, "Invalid Behavior setting '%s'" % behavior)
            ttl_s = req.get("TTL") or ""
            ttl = 0.0
            if ttl_s:
                try:
                    ttl = parse_duration(ttl_s)
                except ValueError as e:
                    return self.text(400, "Request decode failed: %s" % e)
                if ttl != 0 and (ttl < st.session_ttl_min or ttl > 86400):
                    return self.text(400, "Invalid Session TTL '%s', must be between [%gs=24h0m0s]"
                                     % (ttl_s, st.session_ttl_min))
            try:
                delay = parse_duration(req["LockDelay"]) if "LockDelay" in req else 15.0
            except ValueError as e:
                return self.text(400, "Request decode failed: %s" % e)
            # NodeChecks (Consul >= 1.7) and the deprecated Checks both name
            # node checks; serfHealth is the default only when neither is
            # given. ServiceChecks: [{"ID": ...}]. Every named check must be
            # registered and not critical.
            try:
                node_checks = []
                for cid in list(req.get("NodeChecks") or []) + list(req.get("Checks") or []):
                    if not isinstance(cid, str):
                        raise ValueError("check IDs must be strings")
                    if cid not in node_checks:
                        node_checks.append(cid)
                if req.get("NodeChecks") is None and req.get("Checks") is None:
                    node_checks = ["serfHealth"]
                svc_checks = []
                for sc in req.get("ServiceChecks") or []:
                    if not isinstance(sc, dict) or not isinstance(sc.get("ID"), str):
                        raise ValueError("ServiceChecks entries need an ID")
                    svc_checks.append({"ID": sc["ID"], "Namespace": sc.get("Namespace", "")})
            except (TypeError, ValueError) as e:
                return self.text(400, "Request decode failed: %s" % e)
            with st.cv:
                for cid in node_checks + [sc["ID"] for sc in svc_checks]:
                    if cid == "serfHealth":
                        continue
                    c = st.checks.get(cid)
                    if c is None:
                        return self.text(500, 'Missing check \'%s\' registration' % cid)
                    if c["Status"] == "critical":
                        return self.text(500, 'Check \'%s\' is in critical state' % cid)
                sid = str(uuid.uuid4())
                idx = st.bump()
                st.sessions[sid] = {
                    "ID": sid, "Name": req.get("Name", ""), "Node": req.get("Node") or NODE,
                    "LockDelay": int(delay * 1e9), "Behavior": behavior, "TTL": ttl_s,
                    "NodeChecks": node_checks, "ServiceChecks": svc_checks or None,
                    "CreateIndex": idx, "ModifyIndex": idx,
                    "_lock_delay": delay, "_ttl": ttl,
                    "_checks": [c for c in node_checks if c != "serfHealth"] +
                               [sc["ID"] for sc in svc_checks],
                    "_deadline": time.monotonic() + ttl * TTL_MULTIPLIER if ttl else None,
                }
            return self.reply(200, {"ID": sid})
        if what == "renew":
            if self.command != "PUT":
                return self.text(405, "method %s not allowed" % self.command)
            with st.cv:
                s = st.sessions.get(arg)
                if not s:
                    return self.text(404, "Session id '%s' not found" % arg)
                if s["_ttl"]:
                    s["_deadline"] = time.monotonic() + s["_ttl"] * TTL_MULTIPLIER
                return self.reply(200, [self.pub(s)])
        if what == "destroy":
            if self.command != "PUT":
                return self.text(405, "method %s not allowed" % self.command)
            with st.cv:
                st.invalidate(arg)
            return self.reply(200, "true")
        if what == "info":
            with st.cv:
                s = st.sessions.get(arg)
                return self.reply(200, [self.pub(s)] if s else [],
                                  headers={"X-Consul-Index": str(st.index)})
        if what == "list":
            with st.cv:
                return self.reply(200, [self.pub(s) for s in st.sessions.values()],
                                  headers={"X-Consul-Index": str(st.index)})
        self.text(404, "")

    @staticmethod
    def pub(s):
        return {k: v for k, v in s.items() if not k.startswith("_")}

    # -- agent --
    def agent(self, rest):
        st = self.st
        data = self.body()
        if rest == "service/register" and self.command == "PUT":
            try:
                svc = json.loads(data)
            except ValueError as e:
                return self.text(400, "Request decode failed: %s" % e)
            name = svc.get("Name")
            if not name:
                return self.text(400, "Missing service name")
            sid = svc.get("ID") or name
            with st.cv:
                st.services[sid] = {"ID": sid, "Service": name, "Tags": svc.get("Tags") or [],
                                    "Address": svc.get("Address", ""), "Port": svc.get("Port", 0),
                                    "Meta": svc.get("Meta") or {}}
                chk = svc.get("Check")
                if chk:
                    cid = chk.get("CheckID") or ("service:" + sid)
                    ttl = parse_duration(chk["TTL"]) if chk.get("TTL") else 0
                    old = st.checks.get(cid, {})
                    st.checks[cid] = {"CheckID": cid, "Name": chk.get("Name", ""),
                                      "Status": chk.get("Status") or old.get("Status", "critical"),
                                      "Notes": chk.get("Notes", ""), "Output": "", "ServiceID": sid,
                                      "ServiceName": name,
                                      "_ttl": ttl, "_deadline": time.monotonic() + ttl if ttl else None}
            return self.reply(200, "")
        m = re.match(r"^service/deregister/(.+)$", rest)
        if m and self.command == "PUT":
            with st.cv:
                if st.services.pop(m.group(1), None) is None:
                    return self.text(404, 'Unknown service ID "%s". Ensure that the service ID is '
                                          'passed, not the service name.' % m.group(1))
                for cid in [c for c, v in st.checks.items() if v.get("ServiceID") == m.group(1)]:
                    del st.checks[cid]
                    st.invalidate_check(cid)
            return self.reply(200, "")
        if rest == "check/register" and self.command == "PUT":
            try:
                chk = json.loads(data)
                if not isinstance(chk, dict):
                    raise ValueError("not an object")
                ttl = parse_duration(chk["TTL"]) if chk.get("TTL") else 0
            except (ValueError, TypeError) as e:
                return self.text(400, "Request decode failed: %s" % e)
            name = chk.get("Name")
            if not name:
                return self.text(400, "Missing check name")
            cid = chk.get("ID") or chk.get("CheckID") or name
            status = chk.get("Status") or "critical"
            if status not in ("passing", "warning", "critical"):
                return self.text(400, "Invalid Check Status: %s" % status)
            with st.cv:
                svc = chk.get("ServiceID") or ""
                if svc and svc not in st.services:
                    return self.text(400, 'ServiceID "%s" does not exist' % svc)
                st.checks[cid] = {"Node": NODE, "CheckID": cid, "Name": name, "Status": status,
                                  "Notes": chk.get("Notes", ""), "Output": "", "ServiceID": svc,
                                  "ServiceName": st.services[svc]["Service"] if svc else "",
                                  "_ttl": ttl, "_deadline": time.monotonic() + ttl if ttl else None}
                if status == "critical":
                    st.invalidate_check(cid)
            return self.reply(200, "")
        m = re.match(r"^check/deregister/(.+)$", rest)
        if m and self.command == "PUT":
            with st.cv:
                if st.checks.pop(m.group(1), None) is not None:
                    st.invalidate_check(m.group(1))
            return self.reply(200, "")
        m = re.match(r"^check/(pass|warn|fail)/(.+)$", rest)
        if m and self.command == "PUT":
            with st.cv:
                c = st.checks.get(m.group(2))
                if c is None:
                    return self.text(404, 'Unknown check ID "%s". Ensure that the check ID is '
                                          'passed, not the check name.' % m.group(2))
                if not c.get("_ttl"):
                    return self.text(500, 'CheckID "%s" does not have associated TTL' % m.group(2))
                c["Status"] = {"pass": "passing", "warn": "warning", "fail": "critical"}[m.group(1)]
                c["Output"] = self.q.get("note", "")
                c["_deadline"] = time.monotonic() + c["_ttl"]
                if c["Status"] == "critical":
                    st.invalidate_check(m.group(2))
            return self.reply(200, "")
        if rest == "services" and self.command == "GET":
            with st.cv:
                return self.reply(200, dict(st.services))
        if rest == "checks" and self.command == "GET":
            with st.cv:
                return self.reply(200, {k: Handler.pub(v) for k, v in st.checks.items()})
        self.text(404, "")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client killed with -9 resets its connections: not an error here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ConsulPeer:
    def __init__(self, port=0, token=None, session_ttl_min=10.0, host="127.0.0.1"):
        self.state = State(session_ttl_min)
        self.httpd = Server((host, port), Handler)
        self.httpd.state = self.state
        self.httpd.token = token
        self.port = self.httpd.server_address[1]
        self.addr = "%s:%d" % (host, self.port)
        self.url = "http://" + self.addr
        self._stop = threading.Event()
        self._threads = []

    def _reaper(self):
        while not self._stop.wait(0.05):
            self.state.reap()

    def start(self):
        for fn in (self.httpd.serve_forever, self._reaper):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token")
    ap.add_argument("--session-ttl-min", default="10s")
    a = ap.parse_args()
    p = ConsulPeer(a.port, a.token, parse_duration(a.session_ttl_min)).start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(p.port))
        os.rename(tmp, a.port_file)
    print("consul peer listening on %s" % p.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
