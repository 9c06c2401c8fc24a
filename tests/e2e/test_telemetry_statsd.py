"""
test_telemetry_statsd.py - the push sinks of telemetry { }, against real
UDP listeners in this process (what statsd and the Datadog agent are):

  * statsd_address: after a few requests Vault's lines arrive - latencies
    `vault.core.handle_request:<ms>|ms` with plausible values, counters
    `|c` with the label values flattened into the key
    (`vault.auth.login.auth/userpass/.success:1|c`), gauges
    `vault.core.unsealed:1|g` - batched in datagrams of at most 1432 bytes.
  * dogstatsd_addr + dogstatsd_tags: the same names, labels as tags after
    the configured ones (`|#env:test,mount_point:auth/userpass/,...`).
  * a bad address stops the server at start with a message naming the key.
"""
import re
import socket
import subprocess
import time
import unittest

import hvac

from harness import BIN, Server

LINE = re.compile(r"^([^:|#\s]+):(-?[0-9]+(?:\.[0-9]+)?)\|(ms|c|g)(?:\|#(.*))?$")


def udp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def collect(sock, seconds, until=None):
    """datagrams received for up to `seconds` (or until until(lines))"""
    grams, lines = [], []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            d, _ = sock.recvfrom(65535)
        except socket.timeout:
            continue
        grams.append(d)
        lines += d.decode().split("\n")
        if until and until(lines):
            break
    return grams, [l for l in lines if l]


def parse(lines):
    out = []
    for l in lines:
        m = LINE.match(l)
        if not m:
            raise AssertionError("not a statsd line: %r" % l)
        tags = m.group(4).split(",") if m.group(4) else []
        out.append((m.group(1), float(m.group(2)), m.group(3), tags))
    return out


class StatsdSinks(unittest.TestCase):
    def test_statsd_and_dogstatsd_lines(self):
        st, dd = udp_listener(), udp_listener()
        self.addCleanup(st.close)
        self.addCleanup(dd.close)
        extra = ('telemetry {\n  disable_hostname = true\n'
                 '  statsd_address = "127.0.0.1:%d"\n  dogstatsd_addr = "127.0.0.1:%d"\n'
                 '  dogstatsd_tags = ["env:test", "dc:one"]\n}\n'
                 % (st.getsockname()[1], dd.getsockname()[1]))
        s = Server(extra_config=extra)
        self.addCleanup(s.cleanup)
        s.start()
        s.init_unseal()
        c = hvac.Client(url="http://" + s.addr, token=s.root_token)
        c.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        c.sys.enable_auth_method("userpass")
        c.write("auth/userpass/users/alice", password="pw", policies="default")
        c.secrets.kv.v2.create_or_update_secret(path="app", secret={"k": "v"})
        for _ in range(20):
            c.secrets.kv.v2.read_secret_version(path="app")
        hvac.Client(url="http://" + s.addr).auth.userpass.login("alice", "pw")

        want = ("vault.core.handle_request", "vault.core.unsealed", "vault.auth.login")

        def have_all(lines):
            return all(any(l.startswith(w) for l in lines) for w in want)

        grams, lines = collect(st, 5, have_all)
        self.assertTrue(grams, "no statsd datagram arrived")
        for g in grams:
            self.assertLessEqual(len(g), 1432)
        m = parse(lines)
        hr = [v for n, v, t, _ in m if n == "vault.core.handle_request" and t == "ms"]
        self.assertGreaterEqual(len(hr), 20, lines[:20])
        self.assertTrue(all(0 < v < 5000 for v in hr), hr)
        reads = [v for n, v, t, _ in m if n == "vault.route.read.secret-" and t == "ms"]
        self.assertGreaterEqual(len(reads), 20)
        self.assertTrue(any(n == "vault.barrier.get" and t == "ms" for n, v, t, _ in m))
        # counters: label values flattened into the key with dots (go-metrics)
        self.assertIn(("vault.auth.login.auth/userpass/.success", 1.0, "c", []), m)
        # gauges, every second
        self.assertIn(("vault.core.unsealed", 1.0, "g", []), m)
        self.assertTrue(any(n == "vault.runtime.rss_bytes" and t == "g" and v > 1 << 20
                            for n, v, t, _ in m))
        # 20 reads batched: far fewer datagrams than lines
        self.assertLess(len(grams), len(lines))

        grams, lines = collect(dd, 5, have_all)
        self.assertTrue(grams, "no dogstatsd datagram arrived")
        for g in grams:
            self.assertLessEqual(len(g), 1432)
        m = parse(lines)
        login = [x for x in m if x[0] == "vault.auth.login"]
        self.assertEqual(login, [("vault.auth.login", 1.0, "c",
                                  ["env:test", "dc:one", "mount_point:auth/userpass/",
                                   "result:success"])])
        hr = [x for x in m if x[0] == "vault.core.handle_request" and x[2] == "ms"]
        self.assertGreaterEqual(len(hr), 20)
        self.assertEqual(hr[0][3], ["env:test", "dc:one"])
        self.assertIn(("vault.core.unsealed", 1.0, "g", ["env:test", "dc:one"]), m)

        # the server stayed healthy and requests kept being answered
        self.assertEqual(s.get("sys/health").status, 200)

    def test_sinks_without_a_listener_do_not_block(self):
        # nothing listens on the port: datagrams are lost, requests are not
        sock = udp_listener()
        port = sock.getsockname()[1]
        sock.close()
        s = Server(extra_config='telemetry {\n  statsd_address = "127.0.0.1:%d"\n}\n' % port)
        self.addCleanup(s.cleanup)
        s.start()
        s.init_unseal()
        t0 = time.time()
        for _ in range(50):
            self.assertEqual(s.get("sys/mounts").status, 200)
        self.assertLess(time.time() - t0, 10)

    def test_bad_address_fails_at_start(self):
        for addr, msg in (("no-port", "statsd_address \"no-port\": expected host:port"),
                          ("127.0.0.1:99x", "bad port")):
            s = Server(extra_config='telemetry {\n  statsd_address = "%s"\n}\n' % addr)
            self.addCleanup(s.cleanup)
            p = subprocess.run([BIN, "server", "-config=" + s.config_path],
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn(msg, p.stderr.decode())
        s = Server(extra_config='telemetry {\n  dogstatsd_tags = "env:test"\n}\n')
        self.addCleanup(s.cleanup)
        p = subprocess.run([BIN, "server", "-config=" + s.config_path],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("expected a list of strings", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
