#!/usr/bin/env python3
"""tests/e2e/test_audit_disk_full.py - a file audit device on a full disk
(issue 12 item 2): the device's log lives on a small tmpfs (mounted here;
needs root, else the test is skipped), which is filled until an audit write
is cut mid-line. The request fails closed (500, nothing of the secret in the
answer), the file is truncated back to its last complete line, requests are
audited again once space is freed, and `coffer audit verify` passes and
names the failed write the server recorded in the chain. Before the fix the
partial line stayed, the next entry was appended to it, and verify reported
the merged line as altered.
Stdlib only: COFFER_BIN=build/coffer /usr/bin/python3 tests/e2e/run.py test_audit_disk_full.py
"""
import errno
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Server  # noqa: E402

SECRET = "s3cr3t-value-" + "x" * 40


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class TestAuditDiskFull(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.srv = Server(dev=True)
        self.srv.start()
        self.addCleanup(self.srv.cleanup)
        self.assertTrue(wait_for(lambda: self.srv.get("auth/token/lookup-self").status == 200))
        self.mnt = os.path.join(self.srv.dir, "small")
        os.makedirs(self.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                            self.mnt], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + p.stderr.strip())
        # runs before the server's cleanup (LIFO): lazy, as the server may
        # still hold the log open
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)
        self.logp = os.path.join(self.mnt, "audit.log")

    def fill(self):
        """Fill the file system: afterwards only the slack in the last page
        of the audit log is left, so an audit write is cut mid-line."""
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for chunk in (4096, 512, 1):
                while True:
                    try:
                        os.write(fd, b"f" * chunk)
                    except OSError as e:
                        self.assertEqual(e.errno, errno.ENOSPC)
                        break
        finally:
            os.close(fd)
        return filler

    def test_disk_full_mid_line_rolls_back_and_chain_verifies(self):
        s = self.srv
        self.assertEqual(s.put("sys/audit/file", {"type": "file",
                                                  "options": {"file_path": self.logp}}).status, 204)
        self.assertEqual(s.put("secret/data/app", {"data": {"password": SECRET}}).status, 200)
        self.assertEqual(s.get("secret/data/app").status, 200)
        filler = self.fill()
        # read until an audit write does not fit: it fails closed
        failed = None
        for _ in range(50):
            r = s.get("secret/data/app")
            if r.status != 200:
                failed = r
                break
        self.assertIsNotNone(failed, "no audit write failed on a full disk")
        self.assertEqual(failed.status, 500, failed)
        self.assertNotIn(SECRET.encode(), failed.body)
        self.assertNotIn(b'"data"', failed.body)
        with open(self.logp, "rb") as f:
            log = f.read()
        self.assertTrue(log.endswith(b"\n"), "a partial line was left: %r" % log[-80:])
        # while the disk stays full every request fails closed
        r = s.get("secret/data/app")
        self.assertEqual(r.status, 500)
        self.assertNotIn(SECRET.encode(), r.body)

        os.remove(filler)
        self.assertTrue(wait_for(lambda: s.get("secret/data/app").status == 200))
        r = s.get("secret/data/app")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["data"]["data"]["password"], SECRET)
        with open(self.logp) as f:
            lines = f.read().splitlines()
        failures = [l for l in lines if '"type":"audit_write_failed"' in l]
        self.assertEqual(len(failures), 1, lines[-4:])
        self.assertIn('"error":"audit log write failed: No space left on device"', failures[0])

        env = dict(os.environ, VAULT_ADDR="http://" + s.addr, VAULT_TOKEN=s.root_token,
                   HOME=s.dir)
        p = subprocess.run([BIN, "audit", "verify", "-path=file", self.logp], env=env,
                           capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("rolled back and recorded", p.stdout)
        self.assertEqual(s.delete("sys/audit/file").status, 204)


if __name__ == "__main__":
    unittest.main()
