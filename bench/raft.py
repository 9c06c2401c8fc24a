#!/usr/bin/env python3
"""
raft.py - integrated raft storage on a 3-node loopback cluster:
durable replicated KV v2 writes (wrk, 32 connections, a new 100-byte secret
per request) against the active node, with the time of each stage of the
write path from every node's sys/metrics and the CPU each process used; then
kill -9 of the active node under write load (4 background writers), timing
the first acknowledged write on the new active (TRIALS times; each killed
node is restarted and unsealed again). Uses the e2e harness
(tests/e2e) to start `coffer server` processes ($COFFER_BIN, default
build/coffer) with data on a real disk (RAFT_TEST_DIR, default /var/tmp).
Prints Markdown and writes bench/results/raft.md.

    COFFER_BIN=$PWD/build/coffer python3 bench/raft.py [--seconds 10] [--trials 10]

RAFT_STORAGE_EXTRA (HCL lines) goes into every node's storage "raft" block,
e.g. 'snapshot_interval = "5s"' to include paced log-compaction snapshots in
a short run.
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("COFFER_BIN", os.path.join(ROOT, "build", "coffer"))

import test_raft as T  # noqa: E402 - needs the path above


def active(nodes):
    for n in nodes:
        if n.proc is None or n.proc.poll() is not None:
            continue
        try:
            r = n.get("sys/leader")
            if r.status == 200 and r.json().get("is_self"):
                return n
        except OSError:
            pass
    return None


# where a write's time goes, from each node's sys/metrics (quantiles of the
# last 10 s: read right after the load; docs/storage-raft.md)
STAGES = [
    ("vault_core_handle_request", "active", "the request in the core (HTTP parsed -> response)"),
    ("vault_raft_storage_put", "active", "a storage put (submit -> committed and applied)"),
    ("vault_raft_storage_queue_wait", "active", "queued until its batch entry was proposed (loop pick-up + group commit)"),
    ("vault_raft_commitTime", "active", "batch: raft_apply -> committed (append + replication)"),
    ("vault_raft_leader_dispatchLog", "active", "leader log append (write + fsync)"),
    ("vault_raft_rpc_appendEntries_storeLogs", "standby",
     "follower log append (write + fsync)"),
    ("vault_raft_storage_wakeup", "active", "completed -> the request thread runs"),
]


def cpu_seconds(pid):
    """user + system CPU seconds of a process (its threads included)."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """core-seconds the whole machine spent not idle since boot."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def breakdown(nodes, act, token):
    text = {}
    for n in nodes:
        if n.proc is None or n.proc.poll() is not None:
            continue
        r = n.get("sys/metrics", token=token, query={"format": "prometheus"})
        text[n] = r.body.decode() if r.status == 200 else ""

    def q(n, name, quant):
        m = re.search(r'^%s\{quantile="%s"\} ([\d.eE+-]+)$' % (name, quant), text.get(n, ""),
                      re.M)
        return float(m.group(1)) if m else None

    def counter(n, name):
        m = re.search(r"^%s(?:_total)? ([\d.eE+-]+)$" % name, text.get(n, ""), re.M)
        return float(m.group(1)) if m else None
    rows = ["## Where the time goes (sys/metrics quantiles of the last 10 s, ms)\n",
            "| stage | node | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    for name, who, what in STAGES:
        for n in ([act] if who == "active" else [x for x in text if x is not act]):
            v = [q(n, name, x) for x in ("0.5", "0.9", "0.99")]
            rows.append("| %s (`%s`) | %s | %s |" % (what, name, n.node_id, " | ".join(
                "%.2f" % x if x is not None else "?" for x in v)))
    b, rec = counter(act, "vault_raft_storage_batches"), counter(
        act, "vault_raft_storage_batched_records")
    if b and rec:
        rows.append("\nBatches: %d, %.1f writes per log entry on average.\n" % (b, rec / b))
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--trials", type=int, default=10)
    a = ap.parse_args()
    C = T.RaftCluster
    orig = T.raft_server

    def server(*args, **kw):  # production thresholds, not the tests' small ones
        n = orig(*args, **kw)
        cfg = open(n.config_path).read().replace(
            "  snapshot_threshold = 64\n  trailing_logs = 32\n  snapshot_interval = \"1s\"\n",
            os.environ.get("RAFT_STORAGE_EXTRA", ""))
        # the Prometheus form of sys/metrics, for the breakdown below
        cfg += 'telemetry {\n  prometheus_retention_time = "60s"\n  disable_hostname = true\n}\n'
        open(n.config_path, "w").write(cfg)
        return n
    T.raft_server = server
    C.setUpClass()
    out = []
    try:
        act = T.wait(lambda: active(C.nodes), what="active")
        act.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, token=C.token)
        cpu0 = {n.node_id: cpu_seconds(n.proc.pid) for n in C.nodes}
        busy0 = machine_busy()
        p = subprocess.Popen(["wrk", "-t4", "-c%d" % a.connections, "-d%ds" % a.seconds,
                              "--latency", "-s", os.path.join(HERE, "write.lua"),
                              "http://" + act.addr, "--", "/v1/secret/data/w", "0", C.token],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wrk_cpu = 0.0
        while p.poll() is None:  # wrk's own CPU, sampled until it exits
            wrk_cpu = max(wrk_cpu, cpu_seconds(p.pid) or 0.0)
            time.sleep(0.2)
        p.stdout = p.stdout.read()
        cpu = {n.node_id: cpu_seconds(n.proc.pid) - cpu0[n.node_id] for n in C.nodes}
        busy = machine_busy() - busy0
        rps = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
        lat = dict(re.findall(r"\s(50|75|90|99)%\s+([\d.]+\w+)", p.stdout))
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
        out.append("## 3-node raft cluster, loopback (%d s, %d connections, load average %s "
                   "after the run)\n" % (a.seconds, a.connections,
                                         open("/proc/loadavg").read().split()[0]))
        out.append("| writes/s | p50 | p90 | p99 | non-2xx |\n|---|---|---|---|---|")
        out.append("| %s | %s | %s | %s | %s |\n" % (rps.group(1) if rps else "?", lat.get("50"),
                                                   lat.get("90"), lat.get("99"),
                                                   errs.group(1) if errs else "0"))
        out.append("CPU seconds used during the %d s run (%d cores = %d core-seconds; the "
                   "whole machine, other work included, was busy for %.1f): %s, wrk %.1f "
                   "(sampled until it exited).\n" % (
                       a.seconds, os.cpu_count(), a.seconds * os.cpu_count(), busy,
                       ", ".join("%s %.1f" % (k, v) for k, v in sorted(cpu.items())), wrk_cpu))
        out.append(breakdown(C.nodes, act, C.token))
        # the failovers happen under write load: writers on every live node
        # (forwarded by standbys), errors ignored, until the trials end
        stop = threading.Event()
        acked = [0]

        def writer(i):
            k = 0
            while not stop.is_set():
                for n in list(C.nodes):
                    if stop.is_set() or n.proc is None or n.proc.poll() is not None:
                        continue
                    try:
                        r = n.post("secret/data/bg-%d" % i, {"data": {"k": str(k)}},
                                   token=C.token)
                        acked[0] += r.status == 200
                    except OSError:
                        time.sleep(0.01)
                    k += 1
        bg = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
        for t in bg:
            t.start()
        times, loads = [], []
        for trial in range(a.trials):
            act = T.wait(lambda: active(C.nodes), timeout=30, what="active")
            t0 = time.time()
            act.kill9()

            def write_ok():
                for n in C.nodes:
                    if n.proc is None or n.proc.poll() is not None:
                        continue
                    try:
                        r = n.post("secret/data/failover", {"data": {"t": str(trial)}},
                                   token=C.token)
                        if r.status == 200:
                            return True
                    except OSError:
                        pass
                return False
            T.wait(write_ok, timeout=60, what="a write after kill -9")
            times.append(time.time() - t0)
            loads.append(open("/proc/loadavg").read().split()[0])
            print("trial %d: kill -9 %s at %s, a write acknowledged %.2f s later" % (
                trial, act.node_id, time.strftime("%H:%M:%S", time.gmtime(t0)) +
                ".%03d" % (t0 % 1 * 1000), times[-1]), file=sys.stderr)
            act.start()
            answers = [act.put("sys/unseal", {"key": k}) for k in C.keys[:2]]
            try:
                T.wait(lambda: not act.get("sys/seal-status").json()["sealed"], what="unsealed")
            except AssertionError:
                print("restarted %s stays sealed; unseal answered %s; its log ends:\n%s" % (
                    act.node_id, [(r.status, r.body[:200]) for r in answers], act.log()[-3000:]))
                raise
            time.sleep(1.5)  # let it catch up before the next kill
        stop.set()
        for t in bg:
            t.join()
        trials = ", ".join("%.2f s (load %s)" % tl for tl in zip(times, loads))
        times.sort()
        p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
        out.append("## kill -9 of the active node: first acknowledged write on the new active\n")
        out.append("| trials | min | median | p99 (max of %d) |\n|---|---|---|---|" % len(times))
        out.append("| %d | %.2f s | %.2f s | %.2f s |\n" % (len(times), times[0],
                                                        times[len(times) // 2], p99))
        out.append("Under write load: 4 background writers on every live node, %d writes "
                   "acknowledged during the trials. Each trial, in order: %s.\n" % (acked[0],
                                                                                   trials))
    finally:
        C.tearDownClass()
    load = open("/proc/loadavg").read().split()[:3]
    text = ("# Raft storage (bench/raft.py)\n\nOne run; 3 servers and wrk on this machine's %d "
            "cores, load average %s at the end (other work shares the machine).\n\n"
            % (os.cpu_count(), " ".join(load)) + "\n".join(out))
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "raft.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
