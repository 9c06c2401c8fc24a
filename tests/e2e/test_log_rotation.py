"""
test_log_rotation.py - Vault's log_rotate_bytes, log_rotate_max_files and
log_rotate_duration on the real server's log_file:

  * by size: the live file never grows past log_rotate_bytes (plus the one
    line that starts a file), archives are named <stem>-<unix ns>.log next
    to it, mode 0600, and only the newest log_rotate_max_files are kept;
    every line written is in exactly one of the files (none lost).
  * log_rotate_max_files = -1: archives are deleted as soon as made.
  * by age: with log_rotate_duration = "2s" a file older than that is
    rotated at the next line.
"""
import os
import re
import stat
import time
import unittest

from harness import Server


def archives(d, stem="coffer"):
    return sorted(f for f in os.listdir(d) if re.fullmatch(re.escape(stem) + r"-\d+\.log", f))


class LogRotation(unittest.TestCase):
    def server(self, extra):
        s = Server(log_level="debug")
        d = os.path.join(s.dir, "logs")
        os.mkdir(d)
        with open(s.config_path, "a") as f:
            f.write('log_file = "%s/coffer.log"\n%s' % (d, extra))
        self.addCleanup(s.cleanup)
        s.start()
        return s, d

    def noise(self, s, n):
        # each failed request logs a debug line
        for i in range(n):
            s.get("secret/data/missing-%d" % i, token="s.nope")

    def test_by_size_keeps_max_files(self):
        s, d = self.server('log_rotate_bytes = 2048\nlog_rotate_max_files = 2\n')
        s.init_unseal()
        self.noise(s, 200)
        time.sleep(0.2)
        arch = archives(d)
        self.assertEqual(len(arch), 2, arch)
        live = os.path.join(d, "coffer.log")
        for f in arch + ["coffer.log"]:
            p = os.path.join(d, f)
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, f)
            self.assertLessEqual(os.path.getsize(p), 2048 + 512, f)
        # newest archive + live file hold the latest requests, in order
        text = "".join(open(os.path.join(d, f)).read() for f in arch + ["coffer.log"])
        self.assertIn("missing-199", text)
        self.assertNotIn("missing-0 ", text)  # long since rotated away
        self.assertTrue(os.path.getsize(live) > 0)

    def test_max_files_minus_one_keeps_none(self):
        s, d = self.server('log_rotate_bytes = 1024\nlog_rotate_max_files = -1\n')
        s.init_unseal()
        self.noise(s, 100)
        time.sleep(0.2)
        self.assertEqual(archives(d), [])
        self.assertLessEqual(os.path.getsize(os.path.join(d, "coffer.log")), 1024 + 512)

    def test_by_duration(self):
        s, d = self.server('log_rotate_duration = "2s"\n')
        s.init_unseal()
        self.assertEqual(archives(d), [])
        time.sleep(2.5)
        self.noise(s, 3)
        time.sleep(0.2)
        arch = archives(d)
        self.assertEqual(len(arch), 1, arch)  # the default keeps every archive
        self.assertIn("unsealed", open(os.path.join(d, arch[0])).read())
        self.assertIn("missing-2", open(os.path.join(d, "coffer.log")).read())


if __name__ == "__main__":
    unittest.main()
