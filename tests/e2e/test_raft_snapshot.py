"""
test_raft_snapshot.py - raft snapshots larger than max_request_size, both
ways, on a one-node raft cluster whose listener caps bodies at 1 MiB: the
save streams from a file, the restore is spooled to disk (exempt from the
cap, as in Vault), every key comes back, and a tampered or truncated
snapshot is refused before anything changes. hvac's snapshot calls are
used where it has them.
"""
import gzip
import io
import os
import shutil
import socket
import tarfile
import unittest

import hvac

from test_raft import raft_server, wait

CAP = 1 << 20
NKEYS = 160
VALUE = 24 * 1024  # 160 x 24 KiB random values: ~3.8 MiB of state


def status_for_headers(addr, method, path, length, token, timeout=10):
    """The status a server answers to a request's headers alone (a body over
    the cap is refused before it is read, so sending it would race the
    server's close)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sk:
        h = "%s /v1/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (method, path, addr,
                                                                          length)
        if token:
            h += "X-Vault-Token: %s\r\n" % token
        sk.sendall((h + "\r\n").encode())
        line = sk.makefile("rb").readline().decode()
    return int(line.split()[1])


class RaftSnapshotLarge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(os.environ.get("RAFT_TEST_DIR", "/var/tmp"),
                                "coffer-e2e-raftsnap-%d" % os.getpid())
        os.makedirs(cls.root, exist_ok=True)
        n = raft_server("snap1", cls.root)
        with open(n.config_path) as f:
            cfg = f.read()
        cfg = cfg.replace("  tls_disable = true\n",
                          "  tls_disable = true\n  max_request_size = %d\n" % CAP, 1)
        assert "max_request_size" in cfg
        with open(n.config_path, "w") as f:
            f.write(cfg)
        n.start()
        n.init_unseal(shares=1, threshold=1)
        cls.node = n
        cls.token = n.root_token
        wait(lambda: n.get("sys/leader").json().get("is_self"), what="active")
        cls.client = hvac.Client(url="http://" + n.addr, token=cls.token)
        cls.client.sys.enable_secrets_engine("kv", path="big", options={"version": "1"})
        cls.data = {}
        for i in range(NKEYS):
            v = os.urandom(VALUE // 2).hex()
            cls.data["k%03d" % i] = v
            cls.client.secrets.kv.v1.create_or_update_secret(path="k%03d" % i, secret={"v": v},
                                                             mount_point="big")

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        shutil.rmtree(cls.root, ignore_errors=True)

    def read_all(self):
        out = {}
        for k in self.data:
            r = self.node.get("big/" + k, token=self.token)
            out[k] = r.json()["data"]["v"] if r.status == 200 else None
        return out

    def test_round_trip_over_the_body_cap_and_refusals(self):
        # the cap is in force for ordinary requests
        self.assertEqual(status_for_headers(self.node.addr, "PUT", "big/huge", CAP + 10,
                                            self.token), 413)
        # save (hvac), larger than the cap
        resp = self.client.sys.take_raft_snapshot()
        self.assertEqual(resp.status_code, 200)
        snap = resp.content
        self.assertGreater(len(snap), 3 * CAP)
        with tarfile.open(fileobj=io.BytesIO(snap), mode="r:gz") as t:
            self.assertEqual(t.getnames(),
                             ["meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"])
            self.assertGreater(t.getmember("state.bin").size, NKEYS * VALUE)

        # change things after the backup
        changed = dict(self.data)
        for k in list(self.data)[:20]:
            self.node.put("big/" + k, {"v": "changed"}, token=self.token)
            changed[k] = "changed"
        self.node.delete("big/k150", token=self.token)
        changed["k150"] = None

        # refused, each before anything changes: a flipped byte in state.bin
        # (gzip re-made so that only the checksum can tell), a truncation at
        # several points, a flipped byte in the gzip stream, garbage
        raw = gzip.decompress(snap)
        off = raw.index(b"state.bin") + 512 + len(raw) // 3
        bad = gzip.compress(raw[:off] + bytes([raw[off] ^ 1]) + raw[off + 1:], 1)
        r = self.node.request("POST", "sys/storage/raft/snapshot", raw=bad, token=self.token)
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("state.bin does not match SHA256SUMS", r.json()["errors"][0])
        for cut in (len(snap) // 2, len(snap) - 9, len(snap) - 1):
            r = self.node.request("POST", "sys/storage/raft/snapshot", raw=snap[:cut],
                                  token=self.token)
            self.assertEqual(r.status, 400, (cut, r.body))
            self.assertIn("truncated", r.json()["errors"][0])
        flip = bytearray(snap)
        flip[len(snap) // 2] ^= 0x10
        r = self.node.request("POST", "sys/storage/raft/snapshot", raw=bytes(flip),
                              token=self.token)
        self.assertEqual(r.status, 400, r.body)
        r = self.node.request("POST", "sys/storage/raft/snapshot", raw=snap + b"x",
                              token=self.token)
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("trailing bytes", r.json()["errors"][0])
        r = self.node.request("POST", "sys/storage/raft/snapshot-force", raw=b"\x1f\x8b" + b"0" * 4096,
                              token=self.token)
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(self.read_all(), changed)
        # no token: not spooled, the ordinary cap applies; a bad token: spooled,
        # then refused by the core
        self.assertEqual(status_for_headers(self.node.addr, "POST", "sys/storage/raft/snapshot",
                                            len(snap), ""), 413)
        # with a token the same headers are accepted (the body is awaited)
        with self.assertRaises(socket.timeout):
            status_for_headers(self.node.addr, "POST", "sys/storage/raft/snapshot", len(snap),
                               self.token, timeout=2)
        r = self.node.request("POST", "sys/storage/raft/snapshot", raw=snap, token="s.bogus")
        self.assertEqual(r.status, 403, r.body)
        self.assertEqual(self.read_all(), changed)

        # the real restore (hvac), larger than the cap
        resp = self.client.sys.restore_raft_snapshot(snap)
        self.assertIn(resp.status_code, (200, 204), resp.text)

        def back():
            a = self.node.get("sys/leader").json().get("is_self")
            return a and self.node.get("big/k150", token=self.token).status == 200
        wait(back, timeout=30, what="restored data")
        self.assertEqual(self.read_all(), self.data)
        # no spool file is left behind in the data directory
        left = [f for f in os.listdir(self.node.data) if f.startswith(".coffer-spool")]
        self.assertEqual(left, [])


if __name__ == "__main__":
    unittest.main()
