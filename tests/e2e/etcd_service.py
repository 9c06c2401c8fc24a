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
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-etcd-")
        self.cport, self.pport = _port(), _port()
        self.url = "http://127.0.0.1:%d" % self.cport
        self.proc = None

    def start(self):
        peer = "http://127.0.0.1:%d" % self.pport
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "t", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "t=" + peer, "--log-level", "error", "--logger", "zap"],
            stdout=self.log, stderr=subprocess.STDOUT)
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
