#!/usr/bin/env python3
"""
audit.py - the audit slice of bench/run, quick enough to judge an audit
change on the shared machine (docs/performance.md, "Audit cost").

Measures, in one run and with the same wrk settings as bench.py: the nginx
ceiling, then on one Coffer server (file storage, the non-root bench token)
KV v2 read and lookup-self with audit off, then the same with one `file`
audit device on, then the nginx ceiling again. Each Coffer row is reported
as a share of the mean of the two ceilings, so a change in the machine's
load during the run moves both. --rounds N repeats the whole sequence.

  python3 bench/audit.py --bin build-release/coffer [--duration 5] [--rounds 2] [--pool N]

--pool N: the listener's thread_pool_size (epoll workers) instead of a thread
per connection.

Every process it starts is stopped by its PID (bench.stop_all).
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

SCEN = [("KV v2 read", "/v1/secret/data/bench"),
        ("lookup-self", "/v1/auth/token/lookup-self")]


def one_round(args, binary, workdir, n):
    conns = args.connections
    d = args.duration
    nport = bench.free_port()
    ng = bench.start_nginx(os.path.join(workdir, "ng%d" % n), nport)
    url_ng = "http://127.0.0.1:%d/v1/static.json" % nport
    ceil = [bench.run_wrk(args, url_ng, conns, d)["rps"]]

    srv = bench.Coffer(binary, workdir, "srv%d" % n, thread_pool_size=args.pool)
    srv.start()
    srv.init(1, 1)
    srv.unseal()
    token, _ = bench.setup_server(srv)
    hdr = ["X-Vault-Token: " + token]
    rows = []
    for label in ("off", "file"):
        if label == "file":
            srv.api.must("PUT", "sys/audit/bench",
                         {"type": "file",
                          "options": {"file_path": os.path.join(srv.dir, "audit.log")}})
        for name, path in SCEN:
            r = bench.run_wrk(args, "http://127.0.0.1:%d%s" % (srv.port, path), conns, d,
                              headers=hdr)
            rows.append((name, label, r))
    srv.stop()
    ceil.append(bench.run_wrk(args, url_ng, conns, d)["rps"])
    bench.stop(ng)
    return ceil, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")))
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--pool", type=int, default=0,
                    help="listener thread_pool_size (0: thread per connection)")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    workdir = os.path.join(bench.HERE, "out", "audit-%d" % os.getpid())
    os.makedirs(workdir)
    try:
        for n in range(args.rounds):
            ceil, rows = one_round(args, binary, workdir, n)
            c = sum(ceil) / len(ceil)
            print("round %d: nginx %s / %s req/s (load %.2f)"
                  % (n + 1, "{:,.0f}".format(ceil[0]), "{:,.0f}".format(ceil[1]),
                     os.getloadavg()[0]))
            print("| scenario | audit | req/s | p50 | p99 | of nginx |")
            print("|---|---|---|---|---|---|")
            for name, label, r in rows:
                print("| %s | %s | %s | %s | %s | %.0f %% |"
                      % (name, label, "{:,.0f}".format(r["rps"]), bench.fmt_ms(r["p50"]),
                         bench.fmt_ms(r["p99"]), 100.0 * r["rps"] / c))
            sys.stdout.flush()
    finally:
        bench.stop_all()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
