"""
test_http_lockout.py - connection exhaustion without a token (issue 12
item 3). Hundreds of sockets each send the start of a request header and
then one byte at a time, never finishing it; a normal client must still get
its answer within a second, the per-address limit must hold, and a trickled
header must be cut off at http_read_header_timeout however often its bytes
arrive (libmicrohttpd's own idle timer restarts on every byte).

The attack comes from 127.0.0.2 .. 127.0.0.9 (Linux accepts any 127.x source
on loopback), the normal client from 127.0.0.1, like attackers elsewhere on
the network.
"""
import os
import socket
import threading
import time
import unittest
import urllib.request

import hvac

from harness import Server

LIMIT = 200      # max_connections
PER_IP = 50      # max_connections_per_ip
ATTACKERS = 400  # 8 addresses x 50
PREFIX = b"GET /v1/sys/health HTTP/1.1\r\nX-A: "


def listener_opts(srv, opts):
    with open(srv.config_path) as f:
        cfg = f.read()
    cfg = cfg.replace("tls_disable = true", "tls_disable = true\n" + opts)
    with open(srv.config_path, "w") as f:
        f.write(cfg)


def attacker_socket(port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(PREFIX)
    return s


class Slowloris:
    """ATTACKERS sockets trickling one header byte each per second; a socket
    the server closes is opened again (the attacker keeps the pressure)."""

    def __init__(self, port, n=ATTACKERS, addrs=8):
        self.port, self.n = port, n
        self.srcs = ["127.0.0.%d" % (2 + i % addrs) for i in range(n)]
        self.socks = [None] * n
        self.stop = threading.Event()
        self.reopened = 0
        self.refused = 0
        self.t = threading.Thread(target=self.run, daemon=True)

    def open(self, i):
        try:
            self.socks[i] = attacker_socket(self.port, self.srcs[i])
        except OSError:
            self.socks[i] = None
            self.refused += 1

    def start(self):
        for i in range(self.n):
            self.open(i)
        self.t.start()
        return self

    def run(self):
        while not self.stop.is_set():
            for i in range(self.n):
                s = self.socks[i]
                try:
                    if s is None:
                        raise OSError
                    s.send(b"a")
                except OSError:
                    if s:
                        s.close()
                    self.reopened += 1
                    self.open(i)
                if self.stop.is_set():
                    break
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        self.t.join(10)
        for s in self.socks:
            if s:
                s.close()


class HttpLockout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(storage="inmem")
        # a long header deadline: only the per-address limit and the reserve
        # (eviction of the oldest unfinished header) can keep a slot free
        listener_opts(cls.srv, '  max_connections = %d\n  max_connections_per_ip = %d\n'
                      '  http_read_header_timeout = "120s"\n  http_idle_timeout = "120s"'
                      % (LIMIT, PER_IP))
        cls.srv.start()
        cls.srv.init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def health_latency(self):
        t0 = time.time()
        with urllib.request.urlopen("http://%s/v1/sys/health" % self.srv.addr, timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b'"sealed":false', r.read())
        return time.time() - t0

    def test_01_normal_client_served_during_attack(self):
        attack = Slowloris(self.srv.port).start()
        try:
            time.sleep(1.5)  # the table is full and the trickle is under way
            lat = []
            client = hvac.Client(url="http://" + self.srv.addr, token=self.srv.root_token, timeout=5)
            for _ in range(7):
                lat.append(self.health_latency())
                t0 = time.time()
                # the token-holding client too, through hvac (its own connection pool)
                self.assertTrue(client.sys.read_health_status(method="GET")["initialized"])
                lat.append(time.time() - t0)
                time.sleep(0.5)
            print("\n  attack: %d sockets trickling, %d reopened after the server closed them, "
                  "%d refused; normal client latency max %.3fs" % (ATTACKERS, attack.reopened,
                                                                   attack.refused, max(lat)))
            self.assertLess(max(lat), 1.0, lat)
        finally:
            attack.close()
        self.assertIsNone(self.srv.proc.poll())

    def test_02_per_address_limit(self):
        socks, closed = [], 0
        try:
            for _ in range(PER_IP + 10):
                try:
                    socks.append(attacker_socket(self.srv.port, "127.0.0.20"))
                except OSError:
                    closed += 1
            time.sleep(0.5)
            for s in socks:
                s.settimeout(0.2)
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except socket.timeout:
                    pass
                except OSError:
                    closed += 1
            # the ones past the limit are closed at accept; the rest are held
            self.assertEqual(closed, 10, "connections closed from one address")
            # and another address is served meanwhile
            self.assertLess(self.health_latency(), 1.0)
        finally:
            for s in socks:
                s.close()


class HeaderDeadline(unittest.TestCase):
    def test_trickled_header_cut_off_at_deadline(self):
        srv = Server(storage="inmem")
        listener_opts(srv, '  http_read_header_timeout = "2s"\n  http_idle_timeout = "60s"')
        try:
            srv.start()
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=0.4)
            t0 = time.time()
            s.sendall(PREFIX)
            got, end = b"", None
            while time.time() - t0 < 10:
                try:
                    s.send(b"a")  # one byte every 0.4 s keeps any idle timer happy
                    b = s.recv(4096)
                    if not b:
                        end = time.time() - t0
                        break
                    got += b
                except socket.timeout:
                    continue
                except OSError:
                    end = time.time() - t0
                    break
            s.close()
            self.assertIsNotNone(end, "a trickling header was never cut off")
            self.assertGreater(end, 1.5)
            self.assertLess(end, 5.0)  # 2 s + the reaper tick, on loaded cores
            self.assertFalse(got.startswith(b"HTTP/1.1 2"), got[:100])
            # a normal request on a new connection is fine
            self.assertEqual(srv.get("sys/health").status, 501)  # not initialised
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
