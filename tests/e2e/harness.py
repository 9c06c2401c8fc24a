"""
harness.py - start the real `coffer` binary on loopback and talk HTTP to it.

Used by every end-to-end test. The binary comes from $COFFER_BIN (default
build/coffer). Each Server gets its own temp directory, free port and config
file; stop() sends SIGTERM, kill9() simulates a crash.

COFFER_VALGRIND=1 runs every server under valgrind memcheck (leak check on,
errors make the server exit 99; see scripts/test.sh); `wrap` prefixes the
command for one server (e.g. setpriv to drop privileges).
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import http.client
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "coffer"))
VALGRIND = os.environ.get("COFFER_VALGRIND") == "1"
VALGRIND_CMD = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
                "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                "--track-fds=no", "--num-callers=30"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Server:
    """A coffer server process with its own directory."""

    def __init__(self, storage="file", extra_config="", tls=None, dev=False, env=None,
                 log_level="info", keep_dir=None, wrap=None, thread_pool=None):
        self.dir = keep_dir or tempfile.mkdtemp(prefix="coffer-e2e-")
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.tls = tls  # (cert, key) paths or None
        self.dev = dev
        self.wrap = list(wrap or []) + (VALGRIND_CMD if VALGRIND else [])
        self.proc = None
        self.root_token = None
        self.keys = None
        self.env = dict(os.environ, **(env or {}))
        self.log_path = os.path.join(self.dir, "server.log")
        self.config_path = os.path.join(self.dir, "coffer.hcl")
        if not dev:
            if storage.startswith("storage "):  # a whole stanza, as given
                storage_block = storage + "\n"
            else:
                storage_block = ('storage "file" {\n  path = "%s"\n}\n' % os.path.join(self.dir, "data")
                                 if storage == "file" else 'storage "inmem" {}\n')
            # COFFER_E2E_THREAD_POOL=N: every harness server uses the epoll
            # listener with N threads (the offload path), not a thread per
            # connection
            pool = thread_pool if thread_pool is not None else \
                os.environ.get("COFFER_E2E_THREAD_POOL", "")
            pool_line = "  thread_pool_size = %d\n" % int(pool) if pool else ""
            if tls:
                listener = ('listener "tcp" {\n  address = "%s"\n  tls_cert_file = "%s"\n'
                            '  tls_key_file = "%s"\n%s}\n' % (self.addr, tls[0], tls[1], pool_line))
            else:
                listener = ('listener "tcp" {\n  address = "%s"\n  tls_disable = true\n%s}\n'
                            % (self.addr, pool_line))
            with open(self.config_path, "w") as f:
                f.write(storage_block + listener + 'disable_mlock = false\nlog_level = "%s"\n' % log_level
                        + extra_config)

    # -- process control --
    def start(self, wait=True, args=None):
        if self.dev:
            cmd = [BIN, "server", "-dev", "-dev-root-token-id=root",
                   "-dev-listen-address=%s" % self.addr] + (args or [])
            self.root_token = "root"
        else:
            cmd = [BIN, "server", "-config=%s" % self.config_path] + (args or [])
        cmd = self.wrap + cmd
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60 if VALGRIND else 15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                r = self.request("GET", "sys/seal-status")
                if r.status in (200, 400, 503):
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)
        raise RuntimeError("server did not become ready:\n" + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=60 if VALGRIND else 15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        if VALGRIND and rc == 99:
            self.proc = None  # report once
            raise AssertionError("valgrind found errors or leaks:\n" + self.log()[-20000:])
        self.check_sanitizer_log()
        return rc

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "WARNING: ThreadSanitizer")

    def check_sanitizer_log(self):
        """Fail the test when the server's log holds a sanitizer report (an
        ASan/UBSan build may report at exit, or keep running after a UBSan
        finding, and the test would not notice). Each part of the log is
        checked once, so a restarted server is not reported twice."""
        text = self.log()
        start = getattr(self, "_san_checked", 0)
        self._san_checked = len(text)
        new = text[start:]
        for mark in self.SANITIZER_MARKS:
            i = new.find(mark)
            if i >= 0:
                raise AssertionError("sanitizer report in the server log (%s):\n%s"
                                     % (self.log_path, new[max(0, i - 2000):i + 8000]))

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- HTTP --
    def conn(self, timeout=30):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[2] if len(self.tls) > 2 else None)
            if len(self.tls) <= 2:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, token=None, headers=None, raw=None, query=None):
        h = {}
        if token is None:
            token = self.root_token
        if token:
            h["X-Vault-Token"] = token
        if headers:
            h.update(headers)
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        url = "/v1/" + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        c = self.conn()
        try:
            c.request(method, url, body=data, headers=h)
            r = c.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body if body is not None else {}, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body if body is not None else {}, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def list(self, path, **kw):
        return self.request("LIST", path, **kw)

    # -- lifecycle helpers --
    def init(self, shares=5, threshold=3):
        r = self.put("sys/init", {"secret_shares": shares, "secret_threshold": threshold}, token="")
        assert r.status == 200, r
        j = r.json()
        self.keys = j["keys"]
        self.root_token = j["root_token"]
        return j

    def unseal(self, keys=None):
        r = None
        for k in (keys or self.keys):
            r = self.put("sys/unseal", {"key": k}, token="")
            assert r.status == 200, r
        return r.json()

    def init_unseal(self, shares=1, threshold=1):
        self.init(shares, threshold)
        self.unseal(self.keys[:threshold])
        return self


def make_cert(dirpath, cn="127.0.0.1"):
    """Self-signed certificate for 127.0.0.1 via the openssl CLI."""
    cert = os.path.join(dirpath, "cert.pem")
    key = os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=%s" % cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key
