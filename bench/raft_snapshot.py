#!/usr/bin/env python3
"""
raft_snapshot.py - a large raft snapshot saved and restored through the API
on a one-node raft server (production thresholds): COUNT values of SIZE
bytes written through KV v1 (default 16,384 x 64 KiB = 1 GiB), then
GET sys/storage/raft/snapshot streamed to a file and POSTed back, each
timed, with the server's peak RSS (VmHWM, reset through
/proc/PID/clear_refs before each phase) and its RSS before. Data on a real
disk (RAFT_TEST_DIR, default /var/tmp). Writes bench/results/raft-snapshot.md.

    COFFER_BIN=$PWD/build/coffer python3 bench/raft_snapshot.py [--count 16384] [--size 65536]
"""
import argparse
import http.client
import json
import os
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("COFFER_BIN", os.path.join(ROOT, "build", "coffer"))

import test_raft as T  # noqa: E402 - needs the path above


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) // 1024  # MiB
    return out


def reset_hwm(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def writer(addr, token, keys, size, errors):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    for k in keys:
        body = json.dumps({"v": os.urandom(size // 2).hex()})
        c.request("POST", "/v1/big/" + k, body, {"X-Vault-Token": token})
        r = c.getresponse()
        r.read()
        if r.status not in (200, 204):
            errors.append(r.status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=16384)
    ap.add_argument("--size", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    root = os.path.join(os.environ.get("RAFT_TEST_DIR", "/var/tmp"),
                        "coffer-bench-raftsnap-%d" % os.getpid())
    os.makedirs(root, exist_ok=True)
    n = T.raft_server("bench1", root)
    cfg = open(n.config_path).read().replace(
        "  snapshot_threshold = 64\n  trailing_logs = 32\n", "")
    open(n.config_path, "w").write(cfg)
    out = []
    try:
        n.start()
        n.init_unseal(shares=1, threshold=1)
        tok = n.root_token
        T.wait(lambda: n.get("sys/leader").json().get("is_self"), what="active")
        n.post("sys/mounts/big", {"type": "kv", "options": {"version": "1"}}, token=tok)
        pid = n.proc.pid
        keys = ["k%06d" % i for i in range(a.count)]
        errors = []
        t0 = time.time()
        th = [threading.Thread(target=writer, args=(n.addr, tok, keys[i::a.threads], a.size,
                                                     errors)) for i in range(a.threads)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        fill_s = time.time() - t0
        if errors:
            raise SystemExit("%d writes failed (%s)" % (len(errors), errors[:5]))
        data_mib = a.count * a.size / (1 << 20)
        # let a log-compaction snapshot still running after the fill finish
        # (its buffer would count in the save's peak)
        last = None
        for _ in range(60):
            cur = status(pid)["VmRSS"]
            if last is not None and abs(cur - last) < 8:
                break
            last = cur
            time.sleep(2)
        before = status(pid)
        host, port = n.addr.rsplit(":", 1)

        # save, streamed to a file
        path = os.path.join(root, "bench.snap")
        reset_hwm(pid)
        t0 = time.time()
        c = http.client.HTTPConnection(host, int(port), timeout=600)
        c.request("GET", "/v1/sys/storage/raft/snapshot", headers={"X-Vault-Token": tok})
        r = c.getresponse()
        assert r.status == 200, r.status
        with open(path, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        save_s = time.time() - t0
        c.close()
        save = status(pid)
        snap_mib = os.path.getsize(path) / (1 << 20)

        # change a key, then restore, streamed from the file
        n.post("big/k000000", {"v": "changed"}, token=tok)
        reset_hwm(pid)
        mid = status(pid)
        t0 = time.time()
        c = http.client.HTTPConnection(host, int(port), timeout=600)
        with open(path, "rb") as f:
            c.request("POST", "/v1/sys/storage/raft/snapshot", body=f,
                      headers={"X-Vault-Token": tok,
                               "Content-Length": str(os.path.getsize(path))})
            r = c.getresponse()
            body = r.read()
        restore_s = time.time() - t0
        assert r.status == 204, (r.status, body)
        restore = status(pid)

        def back():
            if not n.get("sys/leader").json().get("is_self"):
                return False
            r = n.get("big/k000000", token=tok)
            return r.status == 200 and r.json()["data"]["v"] != "changed"
        T.wait(back, timeout=120, what="restored data")
        total_s = time.time() - t0
        sample = [keys[i] for i in range(0, a.count, max(1, a.count // 64))]
        ok = all(n.get("big/" + k, token=tok).status == 200 for k in sample)
        load = open("/proc/loadavg").read().split()[:3]
        out.append("# Raft snapshot save / restore (bench/raft_snapshot.py)\n")
        out.append("One run, one raft node, data on %s, %d cores, load average %s at the end.\n"
                   % (os.environ.get("RAFT_TEST_DIR", "/var/tmp"), os.cpu_count(),
                      " ".join(load)))
        out.append("Data set: %d values x %d bytes = %.0f MiB through KV v1 (%.0f s to write, "
                   "%d threads); snapshot file %.0f MiB.\n" % (a.count, a.size, data_mib, fill_s,
                                                             a.threads, snap_mib))
        out.append("| phase | time | server RSS before | peak RSS during (VmHWM) |")
        out.append("|---|---|---|---|")
        out.append("| save (GET, streamed to a file) | %.1f s | %d MiB | %d MiB |" %
                   (save_s, before["VmRSS"], save["VmHWM"]))
        out.append("| restore (POST, until 204) | %.1f s | %d MiB | %d MiB |" %
                   (restore_s, mid["VmRSS"], restore["VmHWM"]))
        out.append("| restore, until the active node serves the restored data | %.1f s | | |\n"
                   % total_s)
        out.append("Sampled keys present after the restore: %s.\n" % ("all" if ok else "NO"))
    finally:
        n.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(out)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "raft-snapshot.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
