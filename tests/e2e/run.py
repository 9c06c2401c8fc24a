"""
run.py - run every tests/e2e/test_*.py against the real binary ($COFFER_BIN)
and print a closing 'N passed, N failed' line. Exit status 1 on any failure.
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class CountingResult(unittest.TextTestResult):
    """Also times each test file, so a slow one shows in the CI log."""

    file_secs = {}
    last = time.monotonic()

    def stopTest(self, test):
        # the time since the previous test ended: this test plus its class
        # set-up (and the previous class's tear-down, a small error)
        super().stopTest(test)
        now = time.monotonic()
        mod = type(test).__module__
        CountingResult.file_secs[mod] = CountingResult.file_secs.get(mod, 0.0) + now - CountingResult.last
        CountingResult.last = now


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern, top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    slow = sorted(CountingResult.file_secs.items(), key=lambda kv: -kv[1])
    print("e2e: slowest files: " + ", ".join("%s %.0fs" % kv for kv in slow[:12]))
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed or res.testsRun == 0 else 0)


if __name__ == "__main__":
    main()
