#!/usr/bin/env python3
"""
metrics.py - the cost of a Prometheus scrape of GET /v1/sys/metrics on a
real server with many series: mounts KV engines until the exposition holds
at least --series sample lines, drives a read through each so their route
histograms fill, then times --scrapes scrapes on one keep-alive connection
(client-side wall time: HTTP, auth, ACL, audit-free pipeline and rendering).

  python3 bench/metrics.py --bin build/coffer [--series 1000] [--scrapes 200]

Prints the series count, the median and p95 scrape time and the body size.
Every process it starts is stopped by its PID (bench.stop_all).
"""
import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="coffer-bench-metrics-")
    try:
        srv = bench.Coffer(os.path.abspath(args.bin), work, "m")
        with open(srv.conf, "a") as f:
            f.write('telemetry {\n  prometheus_retention_time = "1h"\n  disable_hostname = true\n}\n')
        srv.start()
        srv.init(1, 1)
        srv.unseal()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        hdr = {"X-Vault-Token": srv.root}

        def scrape():
            c.request("GET", "/v1/sys/metrics?format=prometheus", headers=hdr)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError("scrape -> %d %s" % (r.status, body[:200]))
            return body

        def series(body):
            return sum(1 for l in body.split(b"\n") if l and not l.startswith(b"#"))

        i = 0
        while series(scrape()) < args.series:
            m = "kv%d" % i
            srv.api.must("POST", "sys/mounts/" + m, {"type": "kv"})
            srv.api.must("PUT", "%s/x" % m, {"v": "1"})
            srv.api.call("GET", "%s/x" % m)
            i += 1
        for _ in range(10):
            scrape()
        times = []
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            body = scrape()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print("series=%d mounts=%d body=%d bytes scrapes=%d median=%.3f ms p95=%.3f ms min=%.3f ms"
              % (series(body), i, len(body), len(times), statistics.median(times),
                 times[int(len(times) * 0.95) - 1], times[0]))
        c.close()
        srv.stop()
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
