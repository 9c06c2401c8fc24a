"""
run.py - run every tests/e2e/test_*.py against the real binary ($COFFER_BIN)
and print a closing 'N passed, N failed' line. Exit status 1 on any failure.

  run.py [PATTERN]            the files matching PATTERN (default test_*.py)
  COFFER_E2E_JOBS=N run.py    N files at a time, each in its own process
                              (default 1: one process, in order)

With N > 1 the files whose assertions bound a time (a failover within a
TTL, a client served within 1 s, a timing ratio) run in one lane, one at a
time, next to at most N - 1 other files: they are listed in TIMED.
Each file's output is printed whole when it ends, slowest files first in
the summary.
"""
import os
import re
import subprocess
import sys
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor, as_completed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# files with wall-clock bounds in their assertions (kept out of the parallel
# part); a file that gains such an assertion belongs here
TIMED = {
    "test_audit", "test_auth_kubernetes", "test_auth_userpass_approle", "test_bad_input",
    "test_ha_consul", "test_ha_etcd", "test_http_lockout", "test_leases", "test_pki_tidy",
    "test_raft", "test_raft_tls", "test_seal_awskms_creds", "test_storage_postgresql",
    "test_telemetry", "test_telemetry_statsd", "test_state_race",
}
# the longest of the others, started first so the workers end together
LONG_FIRST = ["test_database", "test_storage_etcd", "test_raft_snapshot", "test_pki",
              "test_crash_consistency"]

SUMMARY = re.compile(r"^e2e: (\d+) passed, (\d+) failed, (\d+) skipped$", re.M)


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


def run_here(pattern):
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern, top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    return res.testsRun - failed - skipped, failed, skipped, res.testsRun


def run_file(name):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, os.path.abspath(__file__), name + ".py"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                       env=dict(os.environ, COFFER_E2E_JOBS="1"))
    out = p.stdout.decode("utf-8", "replace")
    m = SUMMARY.findall(out)
    if m:
        passed, failed, skipped = (int(x) for x in m[-1])
    else:  # died before its summary
        passed, failed, skipped = 0, 1, 0
    if p.returncode != 0 and failed == 0:
        failed = 1
    return name, out, passed, failed, skipped, time.monotonic() - t0


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else "test_*.py"
    jobs = int(os.environ.get("COFFER_E2E_JOBS", "1") or 1)
    if jobs <= 1:
        passed, failed, skipped, ran = run_here(pattern)
        slow = sorted(CountingResult.file_secs.items(), key=lambda kv: -kv[1])
        print("e2e: slowest files: " + ", ".join("%s %.0fs" % kv for kv in slow[:12]))
        print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
        sys.exit(1 if failed or ran == 0 else 0)

    import fnmatch
    names = sorted(f[:-3] for f in os.listdir(HERE) if fnmatch.fnmatch(f, pattern))
    free = [n for n in names if n not in TIMED]
    free.sort(key=lambda n: (LONG_FIRST.index(n) if n in LONG_FIRST else len(LONG_FIRST)))
    timed = [n for n in names if n in TIMED]
    results = []
    lock = threading.Lock()

    def report(r):
        name, out, p, f, s, secs = r
        with lock:
            sys.stdout.write("==== %s: %d passed, %d failed, %d skipped in %.0f s\n%s\n"
                             % (name, p, f, s, secs, out))
            sys.stdout.flush()
            results.append(r)

    def timed_lane():
        for n in timed:
            report(run_file(n))

    # one lane runs the timed files one after the other; the other lanes
    # share the rest, so a timed file has at most jobs - 1 neighbours
    with ThreadPoolExecutor(max_workers=1) as lane, \
            ThreadPoolExecutor(max_workers=max(1, jobs - 1)) as ex:
        futs = [ex.submit(lambda n=n: report(run_file(n))) for n in free]
        futs.append(lane.submit(timed_lane))
        for fut in as_completed(futs):
            fut.result()
    passed = sum(r[2] for r in results)
    failed = sum(r[3] for r in results)
    skipped = sum(r[4] for r in results)
    slow = sorted(results, key=lambda r: -r[5])
    print("e2e: slowest files: " + ", ".join("%s %.0fs" % (r[0], r[5]) for r in slow[:12]))
    bad = [r[0] for r in results if r[3]]
    if bad:
        print("e2e: failed in: " + ", ".join(bad))
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
