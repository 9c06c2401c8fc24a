"""
test_raft.py - integrated raft storage with three real `coffer server`
processes on loopback: init + unseal of node 1 (it bootstraps the cluster),
join of nodes 2 and 3 (challenge, unseal with the cluster's keys, promotion
to voter), replication, kill -9 of the leader (raft leadership moves and
every committed write is there), remove-peer, snapshot save / restore round
trip, and the refusals: a tampered or truncated snapshot, joining an
initialized node, joining itself, an unreachable leader.
"""
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import unittest

import hvac

from harness import BIN, Server, free_port


def raft_server(node_id, data_root, extra="", storage_extra=""):
    s = Server(storage="inmem")
    cport = free_port()
    s.cluster_addr = "https://127.0.0.1:%d" % cport
    s.node_id = node_id
    s.data = os.path.join(data_root, node_id)
    with open(s.config_path) as f:
        cfg = f.read()
    cfg = cfg.replace('storage "inmem" {}\n',
                      'storage "raft" {\n  path = "%s"\n  node_id = "%s"\n'
                      '  snapshot_threshold = 64\n  trailing_logs = 32\n'
                      '  snapshot_interval = "1s"\n%s}\n'
                      % (s.data, node_id, storage_extra))
    s.raft_port = free_port()
    cfg = cfg.replace('  node_id = "%s"\n' % node_id,
                      '  node_id = "%s"\n  raft_addr = "127.0.0.1:%d"\n' % (node_id, s.raft_port))
    cfg += 'api_addr = "http://%s"\ncluster_addr = "%s"\n' % (s.addr, s.cluster_addr) + extra
    with open(s.config_path, "w") as f:
        f.write(cfg)
    return s


def cli(node, token, *args, stdin=None):
    env = dict(os.environ, VAULT_ADDR="http://" + node.addr, VAULT_TOKEN=token or "")
    p = subprocess.run([BIN] + list(args), env=env, capture_output=True, timeout=60, input=stdin)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def wait(pred, timeout=15, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def unseal_joined(n, keys):
    """A joined node: wait for the replicated seal configuration, then unseal
    it with the cluster's keys."""
    wait(lambda: n.get("sys/seal-status").json()["initialized"],
         what="replicated seal configuration on " + n.node_id)
    for k in keys[:2]:
        n.put("sys/unseal", {"key": k})
    wait(lambda: not n.get("sys/seal-status").json()["sealed"], what=n.node_id + " unsealed")


def start_cluster(root, share_token=True):
    """Three raft nodes under root: node1 initialised (3 shares, threshold 2)
    and active, the others joined through sys/storage/raft/join and unsealed,
    all three voters. Returns (nodes, root token, unseal keys); with
    share_token the joined nodes use the root token by default too."""
    nodes = [raft_server("node%d" % i, root) for i in (1, 2, 3)]
    for n in nodes:
        n.start()
    n1 = nodes[0]
    n1.init_unseal(shares=3, threshold=2)
    token, keys = n1.root_token, n1.keys
    wait(lambda: n1.get("sys/leader").json().get("is_self"), what="node1 active")
    for n in nodes[1:]:
        r = n.post("sys/storage/raft/join", {"leader_api_addr": "http://" + n1.addr})
        assert r.status == 200, r
        assert r.json()["joined"] is True
        unseal_joined(n, keys)  # the log arrives, then the cluster's keys unseal it
        if share_token:
            n.root_token = token

    def voters():
        r = n1.get("sys/storage/raft/configuration", token=token)
        if r.status != 200:
            return 0
        return sum(1 for s in r.json()["data"]["config"]["servers"] if s["voter"])
    wait(lambda: voters() == 3, timeout=20, what="3 voters")
    return nodes, token, keys


class RaftCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # a real disk, not tmpfs: raft probes O_DIRECT/AIO
        cls.root = os.path.join(os.environ.get("RAFT_TEST_DIR", "/var/tmp"),
                                "coffer-e2e-raft-%d" % os.getpid())
        os.makedirs(cls.root, exist_ok=True)
        cls.nodes, cls.token, cls.keys = start_cluster(cls.root)

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.cleanup()
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def config(cls, node=None):
        for n in ([node] if node else cls.nodes):
            if n.proc is None or n.proc.poll() is not None:
                continue
            r = n.get("sys/storage/raft/configuration", token=cls.token)
            if r.status == 200:
                return r.json()["data"]["config"]
        return None

    @classmethod
    def voters(cls):
        c = cls.config(cls.nodes[0])
        return sum(1 for s in c["servers"] if s["voter"]) if c else 0

    def active(self):
        for n in self.nodes:
            if n.proc is None or n.proc.poll() is not None:
                continue
            try:
                r = n.get("sys/leader")
                # standbys may answer 307 (request forwarding is the core's)
                if r.status == 200 and r.json().get("is_self"):
                    return n
            except OSError:
                pass
        return None

    def test_1_leader_reports_raft_indexes(self):
        # every node answers sys/leader itself, with its own raft indexes
        for n in self.nodes:
            j = n.get("sys/leader").json()
            self.assertTrue(j["ha_enabled"])
            self.assertGreater(j["raft_committed_index"], 0, n.node_id)
            self.assertGreater(j["raft_applied_index"], 0, n.node_id)
            self.assertLessEqual(j["raft_applied_index"], j["raft_committed_index"] + 1)

    def test_1_raft_metrics_per_node(self):
        # sys/metrics (Vault's JSON form) on each node reports its own raft state
        leaders = 0
        for n in self.nodes:
            r = n.get("sys/metrics")
            self.assertEqual(r.status, 200, r)
            # gauges carry the host name unless disable_hostname (as Vault's)
            g = {x["Name"].split(".", 2)[-1] if x["Name"].count(".") > 2 and ".raft" in x["Name"]
                 else x["Name"]: x["Value"] for x in r.json()["Gauges"]}
            self.assertGreater(g["raft_storage.stats.commit_index"], 0, n.node_id)
            self.assertGreater(g["raft_storage.stats.applied_index"], 0, n.node_id)
            leaders += int(g["raft.state.leader"])
        self.assertEqual(leaders, 1)

    def test_1_configuration_shape(self):
        c = self.config(self.nodes[0])
        self.assertGreater(c["index"], 0)
        ids = sorted(s["node_id"] for s in c["servers"])
        self.assertEqual(ids, ["node1", "node2", "node3"])
        leaders = [s for s in c["servers"] if s["leader"]]
        self.assertEqual(len(leaders), 1)
        for s in c["servers"]:
            self.assertEqual(s["protocol_version"], "3")
            self.assertTrue(s["address"].startswith("127.0.0.1:"))
        # the CLI's view
        rc, out, err = cli(self.nodes[0], self.token, "operator", "raft", "list-peers")
        self.assertEqual(rc, 0, err)
        lines = out.strip().splitlines()
        self.assertEqual(lines[0].split(), ["Node", "Address", "State", "Voter"])
        self.assertEqual(sorted(l.split()[0] for l in lines[2:]), ["node1", "node2", "node3"])
        self.assertEqual(sum(1 for l in lines[2:] if l.split()[2] == "leader"), 1)

    def test_1b_standbys_forward_over_raft(self):
        act = wait(self.active, what="active")
        standbys = [n for n in self.nodes if n is not act]
        r = act.post("sys/mounts/fwd", {"type": "kv", "options": {"version": "1"}},
                     token=self.token)
        self.assertEqual(r.status, 204, r.body)
        # a write sent to a standby is forwarded, stored through raft, and
        # readable through the other standby
        r = standbys[0].put("fwd/x", {"v": "via-standby"}, token=self.token)
        self.assertEqual(r.status, 204, r.body)
        r = standbys[1].get("fwd/x", token=self.token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["data"], {"v": "via-standby"})
        # without forwarding: Vault's 307 to the active node
        r = standbys[1].get("fwd/x", token=self.token,
                            headers={"X-Vault-No-Request-Forwarding": "true"})
        self.assertEqual(r.status, 307)
        self.assertTrue(r.headers["location"].startswith("http://" + act.addr))

    def test_2_write_replicates_and_survives_leader_kill(self):
        act = self.active()
        self.assertIsNotNone(act)
        client = hvac.Client(url="http://" + act.addr, token=self.token)
        if "secret/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        for i in range(50):
            client.secrets.kv.v2.create_or_update_secret(path="app/%d" % i,
                                                         secret={"n": str(i)})
        # a follower's storage has it (raw storage is below the barrier:
        # check the replicated index caught up, then read after failover)
        old = act
        old.kill9()
        new = wait(self.active, timeout=20, what="a new active node")
        self.assertIsNot(new, old)
        for i in range(50):
            # through whichever node is active (under sanitizers leadership
            # can move again while the cluster settles)
            got = wait(lambda i=i: hvac.Client(url="http://" + self.active().addr,
                                               token=self.token)
                       .secrets.kv.v2.read_secret_version(path="app/%d" % i),
                       what="app/%d after failover" % i)
            self.assertEqual(got["data"]["data"], {"n": str(i)})
        wait(lambda: hvac.Client(url="http://" + self.active().addr, token=self.token)
             .secrets.kv.v2.create_or_update_secret(path="after", secret={"x": "1"}),
             what="a write after failover")
        # the old leader comes back as a follower and catches up
        old.start()
        for k in self.keys[:2]:
            old.put("sys/unseal", {"key": k})
        wait(lambda: not old.get("sys/seal-status").json()["sealed"], what="old leader unsealed")
        cfg = self.config(self.active())
        me = [s for s in cfg["servers"] if s["node_id"] == old.node_id][0]
        self.assertTrue(me["voter"])

    def test_3_snapshot_round_trip_and_tamper(self):
        act = wait(self.active, what="active")
        client = hvac.Client(url="http://" + act.addr, token=self.token)
        if "secret/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        client.secrets.kv.v2.create_or_update_secret(path="snap/keep", secret={"v": "before"})
        r = act.get("sys/storage/raft/snapshot", token=self.token)
        self.assertEqual(r.status, 200)
        snap = r.body
        with tarfile.open(fileobj=io.BytesIO(snap), mode="r:gz") as t:
            names = t.getnames()
            meta = json.loads(t.extractfile("meta.json").read())
        self.assertEqual(names, ["meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"])
        self.assertGreater(meta["keys"], 5)
        # the CLI saves the same, and inspects it offline
        path = os.path.join(self.root, "backup.snap")
        rc, out, err = cli(act, self.token, "operator", "raft", "snapshot", "save", path)
        self.assertEqual(rc, 0, err)
        rc, out, err = cli(act, "", "operator", "raft", "snapshot", "inspect", "-format=json", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["Keys"], meta["keys"])
        with open(path, "rb") as f:
            good = f.read()
        with open(path, "wb") as f:
            f.write(good[:-100])
        rc, out, err = cli(act, "", "operator", "raft", "snapshot", "inspect", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("truncated", err)
        # change things after the backup
        client.secrets.kv.v2.create_or_update_secret(path="snap/keep", secret={"v": "after"})
        client.secrets.kv.v2.create_or_update_secret(path="snap/new", secret={"v": "x"})
        # tampered: one byte of state.bin flipped (gzip re-made so only the
        # checksum can notice)
        raw = gzip.decompress(snap)
        off = raw.index(b"state.bin") + 512 + 40
        bad = gzip.compress(raw[:off] + bytes([raw[off] ^ 1]) + raw[off + 1:])
        r = act.request("POST", "sys/storage/raft/snapshot", raw=bad, token=self.token)
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("state.bin does not match SHA256SUMS", r.json()["errors"][0])
        r = act.request("POST", "sys/storage/raft/snapshot", raw=snap[: len(snap) // 2],
                        token=self.token)
        self.assertEqual(r.status, 400)
        self.assertIn("truncated", r.json()["errors"][0])
        r = act.request("POST", "sys/storage/raft/snapshot", raw=b"garbage" * 10,
                        token=self.token)
        self.assertEqual(r.status, 400)
        self.assertIn("not a gzip", r.json()["errors"][0])
        # nothing changed
        got = client.secrets.kv.v2.read_secret_version(path="snap/keep")
        self.assertEqual(got["data"]["data"], {"v": "after"})
        # the real restore
        r = act.request("POST", "sys/storage/raft/snapshot", raw=snap, token=self.token)
        self.assertEqual(r.status, 204, r.body)

        def restored():
            a = self.active()
            if not a:
                return None
            c = hvac.Client(url="http://" + a.addr, token=self.token)
            return c.secrets.kv.v2.read_secret_version(path="snap/keep")
        got = wait(restored, timeout=20, what="restored data")
        self.assertEqual(got["data"]["data"], {"v": "before"})
        a = self.active()
        r = a.get("secret/data/snap/new", token=self.token)
        self.assertEqual(r.status, 404)

    def test_4_bad_joins(self):
        # an initialized, unsealed node (right after test_3's restore the
        # active node may still be changing: a 503 then is retried)
        def join_active():
            act = wait(self.active, what="active")
            other = [n for n in self.nodes if n is not act and n.proc.poll() is None][0]
            r = act.post("sys/storage/raft/join", {"leader_api_addr": "http://" + other.addr})
            return r if r.status != 503 else None
        r = wait(join_active, timeout=20, what="a join answer other than 503")
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("already initialized", r.json()["errors"][0])
        # a new node: itself, an unreachable leader, no address
        fresh = raft_server("node9", self.root)
        fresh.start()
        try:
            r = fresh.post("sys/storage/raft/join", {"leader_api_addr": "http://" + fresh.addr})
            self.assertEqual(r.status, 400)
            self.assertIn("cannot join itself", r.json()["errors"][0])
            r = fresh.post("sys/storage/raft/join",
                           {"leader_api_addr": "http://127.0.0.1:%d" % free_port()})
            self.assertIn(r.status, (502, 503))
            self.assertIn("cannot reach the leader", r.json()["errors"][0])
            r = fresh.post("sys/storage/raft/join", {})
            self.assertEqual(r.status, 400)
            self.assertIn("leader_api_addr", r.json()["errors"][0])
        finally:
            fresh.cleanup()

    def test_5_remove_peer(self):
        act = wait(self.active, what="active")
        victim = [n for n in self.nodes if n is not act][0]
        r = act.post("sys/storage/raft/remove-peer", {"server_id": "nope"}, token=self.token)
        self.assertEqual(r.status, 404)
        r = act.post("sys/storage/raft/remove-peer", {"server_id": victim.node_id},
                     token=self.token)
        self.assertEqual(r.status, 204, r.body)
        ids = [s["node_id"] for s in self.config(act)["servers"]]
        self.assertNotIn(victim.node_id, ids)
        self.assertEqual(len(ids), 2)

    def test_6_retry_join_at_start(self):
        act = wait(self.active, what="active")
        n4 = raft_server("node4", self.root, storage_extra=(
            '  retry_join {\n    leader_api_addr = "http://127.0.0.1:%d"\n  }\n'
            '  retry_join {\n    leader_api_addr = "http://%s"\n  }\n' % (free_port(), act.addr)))
        n4.start()
        try:
            # no join call: the node joins by itself, then takes the keys
            wait(lambda: n4.get("sys/seal-status").json()["initialized"], timeout=30,
                 what="node4 joined by retry_join")
            for k in self.keys[:2]:
                n4.put("sys/unseal", {"key": k})
            wait(lambda: any(s["node_id"] == "node4" and s["voter"]
                             for s in self.config(act)["servers"]),
                 timeout=20, what="node4 a voter")
        finally:
            n4.cleanup()

    def test_7_autopilot(self):
        act = wait(self.active, what="active")
        r = act.get("sys/storage/raft/autopilot/configuration", token=self.token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["data"]["last_contact_threshold"], "10s")
        r = act.post("sys/storage/raft/autopilot/configuration",
                     {"last_contact_threshold": "1s", "max_trailing_logs": 500}, token=self.token)
        self.assertEqual(r.status, 204, r.body)
        cfg = act.get("sys/storage/raft/autopilot/configuration", token=self.token).json()["data"]
        self.assertEqual((cfg["last_contact_threshold"], cfg["max_trailing_logs"]), ("1s", 500))
        r = act.post("sys/storage/raft/autopilot/configuration",
                     {"last_contact_threshold": "0s"}, token=self.token)
        self.assertEqual(r.status, 400)
        # node4 (test 6) is a voter that is gone: autopilot reports it
        def state():
            return act.get("sys/storage/raft/autopilot/state", token=self.token).json()["data"]
        st = wait(lambda: (lambda s: s if not s["servers"]["node4"]["healthy"] else None)(state()),
                  what="node4 unhealthy")
        self.assertFalse(st["healthy"])
        self.assertEqual(st["servers"][st["leader"]]["status"], "leader")
        self.assertTrue(st["servers"][st["leader"]]["healthy"])
        self.assertEqual(st["servers"]["node4"]["node_status"], "failed")
        alive = [s for s in st["servers"].values() if s["healthy"] and s["status"] != "non-voter"]
        self.assertEqual(st["failure_tolerance"], max(0, len(alive) - (len(st["voters"]) // 2 + 1)))
        rc, out, err = cli(act, self.token, "operator", "raft", "autopilot", "state")
        self.assertEqual(rc, 0, err)
        self.assertIn("Healthy:                      false", out)
        self.assertIn("node4", out)

    def test_2b_frozen_leader_steps_down(self):
        """SIGSTOP the active node (a partition of everything it serves):
        the others elect a leader and take writes; once it runs again it
        finds a higher term, steps down and catches up."""
        act = wait(self.active, what="active")
        client = hvac.Client(url="http://" + act.addr, token=self.token)
        client.secrets.kv.v2.create_or_update_secret(path="part/before", secret={"v": "1"})
        act.proc.send_signal(signal.SIGSTOP)
        try:
            def other_active():
                a = self.active_except(act)
                return a if a else None
            new = wait(other_active, timeout=30, what="an active node besides the frozen one")
            c2 = hvac.Client(url="http://" + new.addr, token=self.token)
            wait(lambda: c2.secrets.kv.v2.create_or_update_secret(path="part/during",
                                                                   secret={"v": "2"}),
                 what="a write during the partition")
        finally:
            act.proc.send_signal(signal.SIGCONT)
        # the old leader steps down (one leader in the configuration) ...
        def settled():
            r = act.get("sys/leader")
            # a standby answers for itself (or redirects, without HA code)
            if r.status == 200 and r.json().get("is_self"):
                return None
            c = self.config(self.active())
            return c if sum(1 for s in c["servers"] if s["leader"]) == 1 else None
        cfg = wait(settled, timeout=30, what="the old leader a standby")
        leader = [s for s in cfg["servers"] if s["leader"]][0]
        self.assertNotEqual(leader["node_id"], act.node_id)
        # ... and every write is there
        a = wait(self.active, what="active")
        c3 = hvac.Client(url="http://" + a.addr, token=self.token)
        for path, v in (("part/before", "1"), ("part/during", "2")):
            self.assertEqual(c3.secrets.kv.v2.read_secret_version(path=path)["data"]["data"],
                             {"v": v})

    def test_2c_step_down_moves_raft_leadership(self):
        act = wait(self.active, what="active")
        r = act.put("sys/step-down", {}, token=self.token)
        self.assertEqual(r.status, 204, r.body)
        new = wait(lambda: self.active_except(act), timeout=20, what="another active node")
        cfg = wait(lambda: (lambda c: c if [s["node_id"] for s in c["servers"]
                                             if s["leader"]] == [new.node_id] else None)(
            self.config(new)), what="raft leadership on the new active node")
        self.assertEqual(len(cfg["servers"]), 3)

    def test_9_whole_cluster_restart(self):
        """Every node stops (SIGTERM) and starts again: raft state and the
        data come back from disk, a leader is elected, unseal works."""
        act = wait(self.active, what="active")
        client = hvac.Client(url="http://" + act.addr, token=self.token)
        client.secrets.kv.v2.create_or_update_secret(path="restart/k", secret={"v": "kept"})
        members = {s["node_id"] for s in self.config(act)["servers"]}
        live = [n for n in self.nodes if n.node_id in members and n.proc.poll() is None]
        for n in live:
            n.stop()
        for n in live:
            n.start()
        for n in live:
            wait(lambda n=n: n.get("sys/seal-status").json()["initialized"], timeout=30,
                 what=n.node_id + " sees its data after restart")
            for k in self.keys[:2]:
                n.put("sys/unseal", {"key": k})
        a = wait(self.active, timeout=30, what="an active node after the restart")
        got = wait(lambda: hvac.Client(url="http://" + a.addr, token=self.token)
                   .secrets.kv.v2.read_secret_version(path="restart/k"), what="the secret")
        self.assertEqual(got["data"]["data"], {"v": "kept"})

    def active_except(self, skip):
        for n in self.nodes:
            if n is skip or n.proc is None or n.proc.poll() is not None:
                continue
            try:
                r = n.get("sys/leader")
                if r.status == 200 and r.json().get("is_self"):
                    return n
            except OSError:
                pass
        return None


if __name__ == "__main__":
    unittest.main()
