#!/usr/bin/env python3
"""
profile.py - repeatable per-request cost of one Coffer request, for judging a
hot-path change on a shared, noisy machine (docs/performance.md, "Where the
time goes"). Not part of bench/run; uses bench.py's server set-up.

Two measures, each on a fresh server (file storage, the non-root bench token,
optionally one file audit device):

  callgrind  the server runs under `valgrind --tool=callgrind
             --instr-atstart=no`; instrumentation is switched on around N
             requests on one keep-alive connection. Prints instructions per
             request (all server threads, so the audit writer is included).
  cpu        `perf stat -e task-clock,context-switches` on the server during a
             wrk run at 32 connections. Prints server CPU microseconds and
             context switches per request (far less noisy than req/s);
             transit paths POST their body through bench/post.lua.
  serial     the server runs natively; `perf stat -e task-clock,raw_syscalls:
             sys_enter` counts around N requests on one keep-alive connection
             (any --path, POSTs too). Prints server CPU microseconds and
             system calls per request: what callgrind cannot see (mmap,
             mlock, munmap of per-request locked buffers cost no user-space
             instructions but do cost kernel time).

  python3 bench/profile.py --bin build-release/coffer callgrind [--audit] [-n 2000]
  python3 bench/profile.py --bin build-release/coffer cpu [--audit] [--duration 5]
  python3 bench/profile.py --bin build-release/coffer callgrind --path transit-encrypt
  python3 bench/profile.py --bin build-release/coffer serial --path transit-encrypt
  python3 bench/profile.py --bin build-release/coffer record --path transit-encrypt

  record     `perf record -g` on the server during the same wrk run as cpu,
             then the top of `perf report` (self and children); --keep-out
             FILE keeps perf.data. PROFILE_CALLGRAPH=dwarf,16384 unwinds
             through libc and libcrypto (no frame pointers there), so the
             children column of a Coffer function includes them.

cpu also splits the server CPU into user and system time (/proc/PID/stat
around the wrk run).

--path picks the request: the GETs (kv2, kv1, lookup, health), a KV v2
write of 100 bytes (kv2-write: a new version of one secret each time), or a
transit POST with the bodies bench/run uses (transit-encrypt / -decrypt: 1 KiB,
aes256-gcm96; transit-sign / -verify: ecdsa-p256, sha2-256, 32-byte input;
transit-batch-encrypt / -decrypt: 1,000 items of 128 B in one request).

--pool N runs the cpu/record server with the listener's thread_pool_size = N
(epoll workers instead of a thread per connection). PROFILE_AUDIT_PATH sets
the audit device's file_path (e.g. "discard": formatted and chained, not
written).

Every process it starts is stopped by its PID (bench.stop_all).
"""
import argparse
import base64
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

PATHS = {
    "kv2": "/v1/secret/data/bench",
    "kv2-write": "/v1/secret/data/w/profile",
    "kv1": "/v1/kv1/bench",
    "lookup": "/v1/auth/token/lookup-self",
    "health": "/v1/sys/health",
    "transit-encrypt": "/v1/transit/encrypt/bench",
    "transit-decrypt": "/v1/transit/decrypt/bench",
    "transit-sign": "/v1/transit/sign/bench-p256",
    "transit-verify": "/v1/transit/verify/bench-p256",
    "transit-batch-encrypt": "/v1/transit/encrypt/bench",
    "transit-batch-decrypt": "/v1/transit/decrypt/bench",
}


def transit_body(srv, name, workdir):
    """The JSON body (bytes) of a POST --path (kv2-write, transit-*), made
    on the prepared server; None for the GET paths."""
    if name == "kv2-write":  # a new version of one secret per request
        return json.dumps({"data": {"value": "v" * 100}}).encode()
    if not name.startswith("transit-"):
        return None
    files = bench.setup_transit(srv, workdir)
    if not files:
        raise RuntimeError("the server has no transit engine")
    op = name.split("-")[-1]
    if "batch" not in name:
        with open(files[op], "rb") as f:
            return f.read()
    items = [{"plaintext": base64.b64encode(os.urandom(128)).decode()} for _ in range(1000)]
    if op == "encrypt":
        return json.dumps({"batch_input": items}).encode()
    j = srv.api.must("POST", "transit/encrypt/bench", {"batch_input": items})
    cts = [{"ciphertext": r["ciphertext"]} for r in j["data"]["batch_results"]]
    return json.dumps({"batch_input": cts}).encode()


def prepare(srv, audit, workdir):
    srv.init()
    srv.unseal()
    token, _ = bench.setup_server(srv)
    if audit:
        srv.api.must("PUT", "sys/audit/bench",
                     {"type": "file",
                      "options": {"file_path": os.environ.get("PROFILE_AUDIT_PATH") or
                                  os.path.join(workdir, "audit.log")}})
    return token


def requests(port, path, token, n, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(n):
        if body is None:
            c.request("GET", path, headers={"X-Vault-Token": token})
        else:
            c.request("POST", path, body=body,
                      headers={"X-Vault-Token": token, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError("%s -> %d" % (path, r.status))
    c.close()


def run_callgrind(args, workdir):
    srv = bench.Coffer(args.bin, workdir, "cg")
    if args.extra_config:
        with open(srv.conf, "a") as f:
            f.write(args.extra_config + "\n")
    out = os.path.join(workdir, "callgrind.out")
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           "--callgrind-out-file=" + out, args.bin, "server", "-config=" + srv.conf]
    srv.proc = bench.spawn(cmd, srv.logpath)
    bench.wait_port(srv.port, srv.proc, timeout=120)
    token = prepare(srv, args.audit, workdir)
    path = PATHS[args.path]
    body = transit_body(srv, args.path, workdir)
    requests(srv.port, path, token, min(200, args.n), body)  # warm caches and thread stacks
    pid = str(srv.proc.pid)
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True,
                   stdout=subprocess.DEVNULL)
    requests(srv.port, path, token, args.n, body)
    time.sleep(0.5)  # let the audit writer finish the last batch
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True,
                   stdout=subprocess.DEVNULL)
    srv.stop()
    total = 0
    for f in glob.glob(out + "*"):
        with open(f) as fh:
            for line in fh:
                if line.startswith("totals:"):
                    total += int(line.split()[1])
                    break
    if not total:
        raise RuntimeError("no callgrind totals in %s" % out)
    if args.annotate:
        for f in glob.glob(out + "*"):
            subprocess.run(["callgrind_annotate", "--inclusive=" + args.annotate, f])
    if args.keep_out:
        for f in glob.glob(out + "*"):
            shutil.copy(f, args.keep_out + f[len(out):])
    print("%s %s audit=%s: %d instructions / request (%d requests)"
          % (os.path.basename(args.bin), args.path, "file" if args.audit else "off",
             total // args.n, args.n))


def run_serial(args, workdir):
    srv = bench.Coffer(args.bin, workdir, "serial")
    srv.start()
    token = prepare(srv, args.audit, workdir)
    path = PATHS[args.path]
    body = transit_body(srv, args.path, workdir)
    requests(srv.port, path, token, min(200, args.n), body)  # warm up
    statf = os.path.join(workdir, "perf-stat.txt")
    if args.strace:  # which calls: a summary table instead of the counts
        cmd = ["strace", "-f", "-c", "-o", statf, "-p", str(srv.proc.pid)]
    else:
        cmd = ["perf", "stat", "-x,", "-e", "task-clock,raw_syscalls:sys_enter",
               "-p", str(srv.proc.pid), "-o", statf]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench.CHILDREN.append(p)
    time.sleep(0.3)
    t0 = time.time()
    try:
        requests(srv.port, path, token, args.n, body)
    finally:
        wall = time.time() - t0
        p.send_signal(signal.SIGINT)
        p.wait(10)
        bench.CHILDREN.remove(p)
    srv.stop()
    if args.strace:
        with open(statf) as f:
            sys.stdout.write(f.read())
        return
    vals = {}
    with open(statf) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                vals[parts[2]] = float(parts[0])
    print("%s %s audit=%s serial: server CPU %.1f us/request, %.1f system calls/request, "
          "client wall %.1f us/request (%d requests)"
          % (os.path.basename(args.bin), args.path, "file" if args.audit else "off",
             vals.get("task-clock", 0) * 1000 / args.n,
             vals.get("raw_syscalls:sys_enter", 0) / args.n, wall * 1e6 / args.n, args.n))


def run_cpu(args, workdir):
    """cpu: perf stat on the server during wrk; record: perf record -g
    (call graphs) during the same run, then the top of perf report."""
    srv = bench.Coffer(args.bin, workdir, "cpu", thread_pool_size=args.pool)
    srv.start()
    token = prepare(srv, args.audit, workdir)
    url = "http://127.0.0.1:%d%s" % (srv.port, PATHS[args.path])
    body = transit_body(srv, args.path, workdir)
    kw = {"headers": ["X-Vault-Token: " + token]}
    if body is not None:  # POST the body with bench/post.lua
        bodyf = os.path.join(workdir, "body.json")
        with open(bodyf, "wb") as f:
            f.write(body)
        kw = {"script": os.path.join(bench.HERE, "post.lua"),
              "script_args": [PATHS[args.path], token, bodyf]}
    statf = os.path.join(workdir, "perf-stat.txt")
    dataf = args.keep_out or os.path.join(workdir, "perf.data")
    if args.mode == "record":
        cmd = ["perf", "record", "--call-graph", os.environ.get("PROFILE_CALLGRAPH", "fp"),
               "-F", "999", "-o", dataf, "-p", str(srv.proc.pid)]
    else:
        cmd = ["perf", "stat", "-x,", "-e", "task-clock,context-switches",
               "-p", str(srv.proc.pid), "-o", statf]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench.CHILDREN.append(p)
    time.sleep(0.3)
    t0 = proc_times(srv.proc.pid)
    try:
        r = bench.run_wrk(args, url, args.connections, args.duration, **kw)
    finally:
        t1 = proc_times(srv.proc.pid)
        p.send_signal(signal.SIGINT)
        p.wait(10)
        bench.CHILDREN.remove(p)
    srv.stop()
    if args.mode == "record":
        print("%s %s c=%d: %.0f req/s under perf record (profile: %s)"
              % (os.path.basename(args.bin), args.path, args.connections, r["rps"], dataf))
        for sort in ("--no-children", "--children"):
            rep = subprocess.run(["perf", "report", "-i", dataf, "--stdio", sort,
                                  "--sort", "symbol", "-g", "none", "--percent-limit", "0.7"],
                                 capture_output=True, text=True)
            print("== perf report %s" % sort)
            sys.stdout.write("\n".join(ln for ln in rep.stdout.splitlines()
                                       if ln.strip() and not ln.startswith("#")) + "\n")
        return
    vals = {}
    with open(statf) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                vals[parts[2]] = float(parts[0])
    reqs = r["requests"] if isinstance(r, dict) else None
    if not reqs:
        raise RuntimeError("wrk gave no request count: %r" % (r,))
    print("%s %s audit=%s c=%d: %.0f req/s, p99 %s ms, server CPU %.1f us/request "
          "(user %.1f + system %.1f), %.2f context switches/request"
          % (os.path.basename(args.bin), args.path, "file" if args.audit else "off",
             args.connections, r["rps"], r.get("p99"),
             vals.get("task-clock", 0) * 1000 / reqs,
             (t1[0] - t0[0]) * 1e6 / reqs, (t1[1] - t0[1]) * 1e6 / reqs,
             vals.get("context-switches", 0) / reqs))


def proc_times(pid):
    """(user, system) CPU seconds of a process so far, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("mode", choices=["callgrind", "cpu", "serial", "record"])
    ap.add_argument("--audit", action="store_true")
    ap.add_argument("--extra-config", default="", metavar="HCL",
                    help="appended to the server's config (e.g. a telemetry stanza)")
    ap.add_argument("--path", choices=sorted(PATHS), default="kv2")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--annotate", default=None, metavar="yes|no",
                    help="also print callgrind_annotate (inclusive yes/no)")
    ap.add_argument("--strace", action="store_true",
                    help="serial: strace -c the server instead of perf stat")
    ap.add_argument("--keep-out", default=None, metavar="FILE",
                    help="copy the callgrind output to FILE (for callgrind_annotate later)")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool", type=int, default=0,
                    help="listener thread_pool_size for cpu/record (0: thread per connection)")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    os.makedirs(os.path.join(bench.HERE, "out"), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="profile-", dir=os.path.join(bench.HERE, "out"))
    try:
        {"callgrind": run_callgrind, "cpu": run_cpu, "serial": run_serial,
         "record": run_cpu}[args.mode](args, workdir)
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
