"""
test_storage_postgresql.py - storage "postgresql" against a real PostgreSQL 15
(pg_peer.py: initdb + pg_ctl in a temp dir, scram passwords over TCP):

  * the crash harness (test_crash_consistency.py's, unchanged): Coffer on
    PostgreSQL is SIGKILLed under a concurrent write load COFFER_CRASH_KILLS
    times (default 20), restarted and unsealed; every acknowledged write is
    there with exactly its value.
  * Vault's schema and key layout, as an operator sees them with psql, and
    values stored encrypted (the barrier's ciphertext, never the secret).
  * PostgreSQL restarted under a write load: requests fail with a 5xx naming
    PostgreSQL while it is down, succeed again once it is back, and every
    acknowledged write is readable afterwards.
  * PostgreSQL unreachable at start, and a wrong password: 5xx naming the
    cause (never the password), recovery without restarting Coffer.
  * two Coffer nodes on the advisory lock: kill -9 of the active under a
    write load sent to the standby; the time from the kill to the first
    acknowledged write on the new active is measured (target <= 1 s) and no
    acknowledged write is lost; the lock row deleted behind the active's
    back makes it step down.
  * `ha_storage "postgresql"` with the data in etcd: the lock lives in
    PostgreSQL, the data in etcd, and failover works the same.
"""
import http.client
import os
import threading
import time
import unittest

from harness import Server, free_port
from pg_peer import PgPeer
from test_crash_consistency import CrashConsistencyBase

PASSWORD = "pg-Stor4ge-pass"


class Pg(PgPeer):
    """PgPeer plus a login role and database for Coffer."""

    def start(self):
        super().start()
        self.admin("CREATE ROLE vault LOGIN PASSWORD '%s'" % PASSWORD)
        self.admin("CREATE DATABASE coffer OWNER vault")
        return self

    @property
    def url(self):
        return "postgres://vault:%s@127.0.0.1:%d/coffer?sslmode=disable" % (PASSWORD, self.port)

    def sql(self, q):
        return self.admin(q, db="coffer")


def stanza(url, ha=False, extra=""):
    return ('storage "postgresql" {\n  connection_url = "%s"\n%s%s}\n'
            % (url, '  ha_enabled = "true"\n' if ha else "", extra))


def wait_until(pred, timeout=15.0, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class CrashConsistencyPostgres(CrashConsistencyBase, unittest.TestCase):
    backend_name = "postgresql"

    def setUpBackend(self):
        self.pg = Pg().start()

    def tearDownBackend(self):
        self.pg.cleanup()

    def storage_stanza(self, dirpath):
        return stanza(self.pg.url)


class PostgresStorage(unittest.TestCase):
    def setUp(self):
        self.pg = Pg().start()
        self.addCleanup(self.pg.cleanup)

    def server(self, url=None, **kw):
        s = Server(storage=stanza(url or self.pg.url), **kw)
        self.addCleanup(s.cleanup)
        return s

    def test_vault_schema_visible_via_psql(self):
        s = self.server()
        s.start()
        s.init_unseal()
        self.assertIn(s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status,
                      (200, 204))
        import hvac
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        c.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "plain-Secret-9"},
                                                mount_point="secret")
        self.assertEqual(c.secrets.kv.v2.read_secret_version(path="app/db", mount_point="secret")
                         ["data"]["data"]["password"], "plain-Secret-9")
        self.assertEqual(c.secrets.kv.v2.list_secrets(path="", mount_point="secret")["data"]["keys"],
                         ["app/"])
        # the table an operator knows from Vault's docs
        cols = self.pg.sql("SELECT column_name, data_type, coalesce(collation_name, '-') FROM "
                           "information_schema.columns WHERE table_name = 'vault_kv_store' "
                           "ORDER BY ordinal_position")
        self.assertEqual(cols.splitlines(), ["parent_path|text|C", "path|text|C", "key|text|C",
                                             "value|bytea|-"])
        self.assertEqual(self.pg.sql("SELECT pg_get_indexdef('pkey'::regclass)"),
                         "CREATE UNIQUE INDEX pkey ON public.vault_kv_store USING btree (path, key)")
        self.assertEqual(self.pg.sql("SELECT pg_get_indexdef('parent_path_idx'::regclass)"),
                         "CREATE INDEX parent_path_idx ON public.vault_kv_store USING btree "
                         "(parent_path)")
        # Vault's key layout: core/seal-config is ("/", "/core/", "seal-config")
        self.assertEqual(self.pg.sql("SELECT parent_path, path FROM vault_kv_store WHERE key = "
                                     "'seal-config'"), "/|/core/")
        for row in self.pg.sql("SELECT parent_path, path, key FROM vault_kv_store").splitlines():
            parent, path, key = row.split("|")
            self.assertTrue(path.startswith(parent) and path.endswith("/"), row)
        # no value holds the secret in the clear; psql's \d as the role works
        d = self.pg.admin("SELECT count(*) FROM vault_kv_store WHERE position('plain-Secret-9' "
                          "in encode(value, 'escape')) > 0", db="coffer")
        self.assertEqual(d, "0")
        rc, out, _ = self.pg.psql_as("vault", PASSWORD, "\\d vault_kv_store", db="coffer")
        self.assertEqual(rc, 0)
        self.assertIn("parent_path|text|C|not null|", out.splitlines())
        self.assertIn("value|bytea|||", out.splitlines())

    def test_postgresql_restarted_under_load(self):
        s = self.server()
        s.start()
        s.init_unseal()
        self.assertIn(s.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        acked, failed, stop = [], [], threading.Event()
        lock = threading.Lock()

        def writer(tid):
            i = 0
            while not stop.is_set():
                key = "kv/r%d-%d" % (tid, i)
                try:
                    r = s.put(key, {"v": key})
                    with lock:
                        if r.status in (200, 204):
                            acked.append((key, time.time()))
                        else:
                            failed.append((key, r.status, r.body[:200], time.time()))
                except (OSError, http.client.HTTPException):
                    failed.append((key, 0, b"", time.time()))
                i += 1
                time.sleep(0.005)
        ts = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        down_at = time.time()
        self.pg.stop()
        time.sleep(2.0)
        during = len(failed)
        self.pg.start_again()
        up_at = time.time()
        time.sleep(3.0)
        stop.set()
        for t in ts:
            t.join()
        after = [a for a in acked if a[1] > up_at]
        first_after = min(a[1] for a in after) - up_at if after else None
        print("\npostgresql restart: %d acknowledged, %d failed while down (statuses %s), "
              "first acknowledged write %.2f s after it was back" %
              (len(acked), during, sorted({f[1] for f in failed}),
               first_after if first_after is not None else -1))
        self.assertGreater(during, 0, "no request failed while PostgreSQL was down")
        self.assertTrue(all(f[1] >= 500 for f in failed), failed[:3])
        self.assertTrue(any(b"postgresql" in f[2] for f in failed), failed[:3])
        self.assertTrue(after, "Coffer did not recover after PostgreSQL came back")
        self.assertFalse([f for f in failed if f[3] > up_at + 1.0],
                         "requests still failing 1 s after PostgreSQL was back")
        missing = [k for k, _ in acked if s.get(k).status != 200]
        self.assertEqual(missing, [], "acknowledged writes lost")
        self.assertGreater(len([a for a in acked if a[1] < down_at]), 10)

    def test_unreachable_at_start_and_wrong_password(self):
        self.pg.stop()
        s = self.server()
        s.start()
        r = s.get("sys/seal-status", token="")
        self.assertGreaterEqual(r.status, 500)
        msg = r.json()["errors"][0]
        self.assertIn("postgresql", msg)
        self.assertNotIn(PASSWORD, msg)
        self.pg.start_again()
        self.assertTrue(wait_until(lambda: s.get("sys/seal-status", token="").status == 200))
        s.init_unseal()
        self.assertEqual(s.get("sys/health", token="").status, 200)
        self.assertNotIn(PASSWORD, s.log())

        bad = self.pg.url.replace(PASSWORD, "Not-The-Pass-1")
        w = self.server(url=bad)
        w.start()
        r = w.get("sys/seal-status", token="")
        self.assertGreaterEqual(r.status, 500)
        msg = r.json()["errors"][0]
        self.assertIn("password authentication failed", msg)
        self.assertNotIn("Not-The-Pass-1", msg + w.log())


def ha_node(pg, etcd=None):
    cport = free_port()
    if etcd:
        storage = ('storage "etcd" {\n  address = "%s"\n  path = "/split/"\n}\n'
                   'ha_storage "postgresql" {\n  connection_url = "%s"\n  ha_enabled = "true"\n}'
                   % (etcd.url, pg.url))
    else:
        storage = stanza(pg.url, ha=True)
    s = Server(storage=storage)
    with open(s.config_path, "a") as f:
        f.write('api_addr = "http://%s"\ncluster_addr = "https://127.0.0.1:%d"\n' % (s.addr, cport))
    return s


def leader(s):
    try:
        r = s.get("sys/leader", token="")
        return r.json() if r.status == 200 else None
    except OSError:
        return None


class HAPostgres(unittest.TestCase):
    etcd = None
    split = False

    def setUp(self):
        self.pg = Pg().start()
        self.addCleanup(self.pg.cleanup)
        if self.split:
            from etcd_service import Etcd
            self.etcd = Etcd().start()
            self.addCleanup(self.etcd.stop)
        self.a, self.b = ha_node(self.pg, self.etcd), ha_node(self.pg, self.etcd)
        for s in (self.a, self.b):
            self.addCleanup(s.cleanup)
            s.start()
        self.a.init(shares=1, threshold=1)
        self.b.keys, self.b.root_token = self.a.keys, self.a.root_token
        self.a.unseal()
        self.assertTrue(wait_until(lambda: (leader(self.a) or {}).get("is_self")), "a never became active")
        self.b.unseal()
        self.assertTrue(wait_until(lambda: (leader(self.b) or {}).get("leader_address")),
                        "b never saw the active node")

    def test_failover_after_kill9_under_load(self):
        a, b = self.a, self.b
        self.assertEqual(leader(b)["leader_address"], "http://" + a.addr)
        self.assertEqual(b.get("sys/health", token="").status, 429)
        # the lock row names the active node
        self.assertIn(a.addr, self.pg.sql("SELECT ha_value FROM vault_ha_locks WHERE ha_key = 'core/lock'"))
        self.assertIn(b.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        acked, stop, killed_at, first_after_kill = [], threading.Event(), [], []

        def writer(tid):
            i = 0
            while not stop.is_set():
                key = "kv/w%d-%d" % (tid, i)
                started = time.time()
                try:
                    r = b.put(key, {"v": str(i)})
                    if r.status in (200, 204):
                        acked.append(key)
                        if killed_at and started > killed_at[0] and not first_after_kill:
                            first_after_kill.append(time.time())
                except (OSError, http.client.HTTPException):
                    pass
                i += 1
        ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        before = len(acked)
        killed_at.append(time.time())
        a.kill9()
        self.assertTrue(wait_until(lambda: (leader(b) or {}).get("is_self"), timeout=10),
                        "b did not take over")
        became = time.time() - killed_at[0]
        self.assertTrue(wait_until(lambda: first_after_kill, timeout=10))
        time.sleep(0.5)
        stop.set()
        for t in ts:
            t.join()
        failover = first_after_kill[0] - killed_at[0]
        print("\npostgresql advisory-lock failover: b active %.2f s and first acknowledged write "
              "%.2f s after kill -9 of a (target <= 1 s); %d writes acknowledged (%d before the kill)"
              % (became, failover, len(acked), before))
        self.assertGreater(before, 10)
        self.assertLess(failover, 3.0)
        missing = [k for k in acked if b.get(k).status != 200]
        self.assertEqual(missing, [], "acknowledged writes lost in the failover")
        self.assertIn(b.addr, self.pg.sql("SELECT ha_value FROM vault_ha_locks"))

    def test_lock_row_deleted_makes_the_active_step_down(self):
        a, b = self.a, self.b
        self.assertIn(a.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        old = self.pg.sql("SELECT ha_identity FROM vault_ha_locks")
        self.pg.sql("DELETE FROM vault_ha_locks")
        self.assertTrue(wait_until(lambda: "lock row deleted" in a.log(), timeout=5),
                        "a did not notice its lock row was deleted")
        # someone is active again (b, or a after its hold-off), with a new row
        self.assertTrue(wait_until(lambda: self.pg.sql("SELECT count(*) FROM vault_ha_locks") == "1"
                                   and (leader(a) or {}).get("leader_address"), timeout=10))
        self.assertNotEqual(self.pg.sql("SELECT ha_identity FROM vault_ha_locks"), old)
        self.assertTrue(wait_until(lambda: a.put("kv/after", {"v": "1"}).status in (200, 204), timeout=10))
        self.assertEqual(b.get("kv/after").json()["data"]["v"], "1")


class HAStoragePostgresLockEtcdData(HAPostgres):
    """storage "etcd" for the data, ha_storage "postgresql" for the lock."""
    split = True
    test_lock_row_deleted_makes_the_active_step_down = None

    def test_lock_and_data_live_apart(self):
        self.assertIn(self.a.post("sys/mounts/kv", {"type": "kv"}).status, (200, 204))
        self.assertEqual(self.b.put("kv/x", {"v": "1"}).status, 204)
        self.assertEqual(self.pg.sql("SELECT count(*) FROM vault_kv_store"), "0")
        self.assertIn(self.a.addr, self.pg.sql("SELECT ha_value FROM vault_ha_locks"))
        import base64, json, urllib.request
        body = json.dumps({"key": base64.b64encode(b"/split/core/lock").decode()}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.etcd.url + "/v3/kv/range", data=body)) as r:
            self.assertNotIn("kvs", json.loads(r.read()))
        body = json.dumps({"key": base64.b64encode(b"/split/core/seal-config").decode()}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.etcd.url + "/v3/kv/range", data=body)) as r:
            self.assertIn("kvs", json.loads(r.read()))


if __name__ == "__main__":
    unittest.main()
