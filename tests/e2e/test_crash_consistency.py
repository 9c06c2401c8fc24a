"""
test_crash_consistency.py - SIGKILL the server under a concurrent write load,
restart it, unseal, and check that every acknowledged write survived intact.

The load (WORKERS threads, each on its own connections) mixes KV v2 puts of
fresh keys, KV v2 overwrites of one counter key per worker, token creates and
policy writes. Every value is derived from its name, so anything read back
can be checked byte for byte. After each kill:
  * the server must start and unseal (every time);
  * every write acknowledged with a 2xx, in this round or any earlier one, is
    present with exactly the value written (a sample of earlier rounds each
    time, all of them at the end);
  * a counter key holds the last acknowledged value or one that was in
    flight when the server died, never an older one;
  * everything the server lists (KV metadata, ACL policies) reads back
    intact: a write that was in flight may be absent, never half-written.

Reuse for another storage backend: subclass CrashConsistencyBase with
`storage_stanza(self, dirpath)` returning the config text (see
CrashConsistencyFile); `setUpBackend`/`tearDownBackend` may start a service.
KILLS (default 20, env COFFER_CRASH_KILLS) rounds per backend.
"""
import concurrent.futures
import hashlib
import json
import os
import random
import threading
import time
import unittest
import http.client

from harness import Server

KILLS = int(os.environ.get("COFFER_CRASH_KILLS", "20"))
WORKERS = 4


def blob(name, n=0):
    """The value written for `name` (the n-th write of it): checkable exactly."""
    h = hashlib.sha256(("%s#%d" % (name, n)).encode()).hexdigest()
    return {"name": name, "n": str(n), "blob": h * (1 + len(name) % 5)}


def policy_text(name):
    return 'path "secret/%s/*" {\n  capabilities = ["read", "list"]\n}\n' % name


class Ledger:
    """What the clients were told (acked) and what they had sent (attempted)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kv = {}            # key -> blob (acked)
        self.counter = {}       # worker -> last acked n
        self.counter_sent = {}  # worker -> highest n sent this round
        self.tokens = {}        # token -> meta (acked)
        self.policies = {}      # name -> text (acked)
        self.acked_total = 0
        self.round_acked = []   # (kind, key) acked in the current round


class CrashConsistencyBase:
    """Mixin: the crash harness. Subclasses also inherit unittest.TestCase."""

    def storage_stanza(self, dirpath):
        raise NotImplementedError

    def setUpBackend(self):
        pass

    def tearDownBackend(self):
        pass

    def setUp(self):
        self.setUpBackend()
        self.srv = Server(storage="file")
        with open(self.srv.config_path) as f:
            cfg = f.read()
        start = cfg.index('storage "file"')
        end = cfg.index("}\n", start) + 2
        with open(self.srv.config_path, "w") as f:
            f.write(cfg[:start] + self.storage_stanza(self.srv.dir) + cfg[end:])
        self.srv.start()
        self.srv.init_unseal(shares=3, threshold=2)
        r = self.srv.post("sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        self.assertIn(r.status, (200, 204), r)
        self.rng = random.Random(int(os.environ.get("COFFER_CRASH_SEED", str(int(time.time())))))
        self.ledger = Ledger()

    def tearDown(self):
        try:
            self.srv.cleanup()
        finally:
            self.tearDownBackend()

    # -- the load --
    def worker(self, wid, rnd, stop):
        L = self.ledger
        i = 0
        while not stop.is_set():
            i += 1
            op = (i + wid) % 4
            try:
                if op == 0:
                    key = "w%d-r%d-%d" % (wid, rnd, i)
                    r = self.srv.put("kv/data/" + key, {"data": blob(key)})
                    if 200 <= r.status < 300:
                        with L.lock:
                            L.kv[key] = blob(key)
                            L.round_acked.append(("kv", key))
                            L.acked_total += 1
                elif op == 1:
                    with L.lock:
                        n = L.counter_sent.get(wid, L.counter.get(wid, 0)) + 1
                        L.counter_sent[wid] = n
                    r = self.srv.put("kv/data/counter-%d" % wid, {"data": blob("counter-%d" % wid, n)})
                    if 200 <= r.status < 300:
                        with L.lock:
                            L.counter[wid] = max(n, L.counter.get(wid, 0))
                            L.acked_total += 1
                elif op == 2:
                    meta = {"w": str(wid), "r": str(rnd), "i": str(i)}
                    r = self.srv.post("auth/token/create", {"policies": ["default"], "meta": meta,
                                                            "ttl": "24h"})
                    if 200 <= r.status < 300:
                        tok = r.json()["auth"]["client_token"]
                        with L.lock:
                            L.tokens[tok] = meta
                            L.round_acked.append(("token", tok))
                            L.acked_total += 1
                else:
                    name = "p-w%d-r%d-%d" % (wid, rnd, i)
                    r = self.srv.put("sys/policies/acl/" + name, {"policy": policy_text(name)})
                    if 200 <= r.status < 300:
                        with L.lock:
                            L.policies[name] = policy_text(name)
                            L.round_acked.append(("policy", name))
                            L.acked_total += 1
                if r.status >= 300:
                    # only a dying server may refuse; anything else is a bug
                    if self.srv.proc.poll() is None and not stop.is_set():
                        self.errors.append("round %d: %s -> %r" % (rnd, op, r))
            except (OSError, http.client.HTTPException, ValueError):
                if self.srv.proc.poll() is None and not stop.is_set():
                    time.sleep(0.01)  # transient (connection limit); retry
                else:
                    return

    # -- checks --
    def check_kv(self, key):
        r = self.srv.get("kv/data/" + key)
        self.assertEqual(r.status, 200, "acked kv write %s lost: %r" % (key, r))
        self.assertEqual(r.json()["data"]["data"], self.ledger.kv[key], key)

    def check_token(self, tok):
        r = self.srv.get("auth/token/lookup-self", token=tok)
        self.assertEqual(r.status, 200, "acked token lost: %r" % r)
        d = r.json()["data"]
        self.assertEqual(d["meta"], self.ledger.tokens[tok])
        self.assertIn("default", d["policies"])

    def check_policy(self, name):
        r = self.srv.get("sys/policies/acl/" + name)
        self.assertEqual(r.status, 200, "acked policy %s lost: %r" % (name, r))
        self.assertEqual(r.json()["data"]["policy"], self.ledger.policies[name])

    def check_counters(self):
        L = self.ledger
        for wid in range(WORKERS):
            r = self.srv.get("kv/data/counter-%d" % wid)
            acked = L.counter.get(wid, 0)
            if acked == 0 and r.status == 404:
                continue
            self.assertEqual(r.status, 200, r)
            got = r.json()["data"]["data"]
            n = int(got["n"])
            self.assertGreaterEqual(n, acked, "counter-%d went back from %d to %d" % (wid, acked, n))
            self.assertLessEqual(n, L.counter_sent.get(wid, 0))
            self.assertEqual(got, blob("counter-%d" % wid, n), "counter-%d half-written" % wid)
            L.counter[wid] = n  # a write in flight that landed is now the floor
            L.counter_sent[wid] = n

    def check_listed(self):
        """Every acked name is listed; a listed name we have not seen land yet
        (a write in flight at the kill) must read back intact."""
        L = self.ledger
        r = self.srv.list("kv/metadata/")
        self.assertEqual(r.status, 200, r)
        listed = set(r.json()["data"]["keys"])
        missing = set(L.kv) - listed
        self.assertFalse(missing, "acked kv keys not listed: %s" % sorted(missing)[:5])
        for key in sorted(listed - set(L.kv)):
            if key.startswith("counter-"):
                continue
            g = self.srv.get("kv/data/" + key)
            self.assertEqual(g.status, 200, "listed key %s unreadable: %r" % (key, g))
            self.assertEqual(g.json()["data"]["data"], blob(key), "kv %s half-written" % key)
            L.kv[key] = blob(key)  # landed: must stay from now on
        r = self.srv.list("sys/policies/acl")
        self.assertEqual(r.status, 200, r)
        listed = set(n for n in r.json()["data"]["keys"] if n.startswith("p-"))
        missing = set(L.policies) - listed
        self.assertFalse(missing, "acked policies not listed: %s" % sorted(missing)[:5])
        for name in sorted(listed - set(L.policies)):
            g = self.srv.get("sys/policies/acl/" + name)
            self.assertEqual(g.status, 200, "listed policy %s unreadable: %r" % (name, g))
            self.assertEqual(g.json()["data"]["policy"], policy_text(name), name)
            L.policies[name] = policy_text(name)

    def verify(self, rnd, everything=False):
        L = self.ledger
        items = list(L.round_acked)
        older = [("kv", k) for k in L.kv] + [("token", t) for t in L.tokens] + \
                [("policy", p) for p in L.policies]
        items += older if everything else self.rng.sample(older, min(40, len(older)))
        checks = {"kv": self.check_kv, "token": self.check_token, "policy": self.check_policy}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for f in [pool.submit(checks[kind], key) for kind, key in items]:
                f.result()  # re-raises the first failed check
        self.check_counters()
        self.check_listed()

    def test_sigkill_under_write_load(self):
        self.errors = []
        survived = 0
        for rnd in range(1, KILLS + 1):
            self.ledger.round_acked = []
            stop = threading.Event()
            ts = [threading.Thread(target=self.worker, args=(w, rnd, stop)) for w in range(WORKERS)]
            for t in ts:
                t.start()
            time.sleep(self.rng.uniform(0.05, 0.6))
            self.srv.kill9()
            stop.set()
            for t in ts:
                t.join(30)
            # restart on the same directory: it must come up every time
            self.srv.start()
            self.srv.unseal(self.srv.keys[:2])
            survived += 1
            self.verify(rnd)
        self.verify(KILLS, everything=True)
        self.assertEqual(self.errors, [])
        self.assertGreater(self.ledger.acked_total, KILLS * 5, "the load barely ran")
        print("\ncrash-consistency[%s]: %d kills survived, %d acked writes verified"
              % (self.backend_name, survived, self.ledger.acked_total))


class CrashConsistencyFile(CrashConsistencyBase, unittest.TestCase):
    backend_name = "file"

    def storage_stanza(self, dirpath):
        return 'storage "file" {\n  path = "%s"\n}\n' % os.path.join(dirpath, "data")


if __name__ == "__main__":
    unittest.main()
