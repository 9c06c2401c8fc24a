"""
test_server_files.py - the server's own files: Vault's `log_file` and
`pid_file` settings do what the configuration reference says.

  * pid_file holds the server's PID once it serves, and is removed at a
    clean shutdown (SIGTERM).
  * log_file receives the same lines as stderr (start-up, unseal), is
    created 0600, and after an external rotation (the file moved away) a
    SIGHUP makes the server write to a fresh file at the same path.
  * a directory as log_file gets coffer.log inside it.
  * an unwritable log_file stops start-up with an error naming it.
"""
import os
import signal
import stat
import time
import unittest

from harness import Server, VALGRIND


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class ServerFiles(unittest.TestCase):
    def test_pid_file_and_log_file(self):
        s = Server()
        logf = os.path.join(s.dir, "logs", "coffer-server.log")
        pidf = os.path.join(s.dir, "coffer.pid")
        os.mkdir(os.path.join(s.dir, "logs"))
        with open(s.config_path, "a") as f:
            f.write('log_file = "%s"\npid_file = "%s"\n' % (logf, pidf))
        try:
            s.start()
            if not VALGRIND:
                self.assertEqual(wait_for(lambda: read(pidf).strip()), str(s.proc.pid))
            else:
                self.assertTrue(wait_for(lambda: read(pidf).strip().isdigit()))
            self.assertIn("listening", wait_for(lambda: read(logf)))
            self.assertEqual(stat.S_IMODE(os.stat(logf).st_mode), 0o600)
            s.init_unseal()
            self.assertIn("unsealed", wait_for(lambda: "unsealed" in read(logf) and read(logf)))

            # logrotate-style: move the file away, SIGHUP, a new file appears
            os.rename(logf, logf + ".1")
            s.proc.send_signal(signal.SIGHUP)
            self.assertIn("reload", wait_for(lambda: read(logf)))
            self.assertNotIn("reload", read(logf + ".1").split("listening", 1)[1]
                             if "listening" in read(logf + ".1") else "")
            r = s.put("sys/seal", token=s.root_token)
            self.assertEqual(r.status, 204)
            self.assertIn("sealed", wait_for(lambda: "sealed" in read(logf) and read(logf)))

            self.assertEqual(s.stop(), 0)
            self.assertFalse(os.path.exists(pidf), "pid_file left behind after SIGTERM")
            self.assertIn("shutdown complete", read(logf))
        finally:
            s.cleanup()

    def test_log_file_directory(self):
        s = Server()
        d = os.path.join(s.dir, "logdir")
        os.mkdir(d)
        with open(s.config_path, "a") as f:
            f.write('log_file = "%s/"\n' % d)
        try:
            s.start()
            self.assertIn("listening", wait_for(lambda: read(os.path.join(d, "coffer.log"))))
        finally:
            s.cleanup()

    def test_unwritable_log_file_refused(self):
        s = Server()
        bad = os.path.join(s.dir, "no-such-dir", "x.log")
        with open(s.config_path, "a") as f:
            f.write('log_file = "%s"\n' % bad)
        try:
            s.start(wait=False)
            rc = s.proc.wait(30)
            self.assertNotEqual(rc, 0)
            self.assertIn("log_file", s.log())
            self.assertIn(bad, s.log())
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
