"""
etcd_service.py - a real etcd (Debian's etcd-server) for the tests that need
one: single member on free loopback ports in a temporary directory, started
and stopped by PID (other processes on the machine are never touched).

    with Etcd() as e:
        e.url          # http://127.0.0.1:PORT
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def _port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Etcd:
    def __init__(self, name="t", initial_cluster=None, cport=None, pport=None):
        self.dir = tempfile.mkdtemp(prefix="coffer-etcd-")
        self.name = name
        self.cport, self.pport = cport or _port(), pport or _port()
        self.url = "http://127.0.0.1:%d" % self.cport
        self.peer = "http://127.0.0.1:%d" % self.pport
        self.initial_cluster = initial_cluster or ("%s=%s" % (name, self.peer))
        self.proc = None

    def spawn(self):
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            ["etcd", "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", self.peer, "--initial-advertise-peer-urls", self.peer,
             "--initial-cluster", self.initial_cluster, "--initial-cluster-token", "coffer-test",
             "--log-level", "error", "--logger", "zap"],
            stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def start(self):
        self.spawn()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("etcd did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def status(url):
    """etcd's maintenance status: (member_id, leader_id) or None."""
    import json
    req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            j = json.loads(r.read())
        return j["header"]["member_id"], j["leader"]
    except (OSError, KeyError, ValueError):
        return None


def etcd_calls(url):
    """etcd's own count of handled KV calls by method (its /metrics)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    n = {}
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and 'grpc_service="etcdserverpb.KV"' in line:
            m = line.split('grpc_method="', 1)[1].split('"', 1)[0]
            n[m] = n.get(m, 0) + float(line.rsplit(" ", 1)[1])
    return n


class EtcdCluster:
    """Three etcd members on loopback; .urls, .members, leader(), kill9()."""

    def __init__(self, n=3):
        ports = [(_port(), _port()) for _ in range(n)]
        init = ",".join("m%d=http://127.0.0.1:%d" % (i, p[1]) for i, p in enumerate(ports))
        self.members = [Etcd(name="m%d" % i, initial_cluster=init, cport=c, pport=p)
                        for i, (c, p) in enumerate(ports)]
        self.urls = [m.url for m in self.members]

    def start(self):
        for m in self.members:
            m.spawn()
        deadline = time.time() + 30
        while time.time() < deadline:
            if all(status(u) and status(u)[1] != "0" for u in self.urls):
                return self
            time.sleep(0.1)
        raise RuntimeError("etcd cluster did not form")

    def leader(self):
        for m in self.members:
            if m.proc and m.proc.poll() is None:
                st = status(m.url)
                if st and st[0] == st[1]:
                    return m
        return None

    def stop(self):
        for m in self.members:
            m.stop()
