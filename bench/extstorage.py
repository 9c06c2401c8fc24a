#!/usr/bin/env python3
"""
extstorage.py - storage "etcd" and storage "consul": durable KV v2 writes/s
and p99 at 32 clients, each against its store's own ceiling in the same run.

  etcd    a real etcd (Debian's etcd-server, fsync on, as shipped) in a temp
          dir; ceiling: wrk with bench/put.lua, one put per request through
          etcd's JSON gateway (/v3/kv/put), the interface Coffer's backend
          uses; then Coffer on storage "etcd" with and without ha_enabled
          (every write a txn fenced by the lock's create revision).
  consul  the local Consul peer (tests/peers/consul_peer.py, a Python
          server: no Consul binary can be installed here) as a separate
          process; ceiling: wrk PUT /v1/kv/<key> against it; then Coffer on
          storage "consul". The peer is the bottleneck by construction, so
          this measures Coffer's round trips per write against it, not
          Consul's speed.

Storage writes per Coffer request come from etcd's revision / the peer's
X-Consul-Index; etcd's Range and Txn calls per request from its gRPC
counters (/metrics). Every process it starts is stopped by PID. Output: Markdown
on stdout and in bench/results/extstorage.md. Needs etcd-server and wrk.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from pgstorage import coffer_run, free_port, log, wrk_result  # noqa: E402
from etcd_service import Etcd, etcd_calls  # noqa: E402


def ceiling(args, url, mode):
    w = subprocess.run(["wrk", "-t2", "-c%d" % args.clients, "-d%ds" % args.seconds, "--timeout", "30s",
                        "--latency", "-s", os.path.join(HERE, "put.lua"), url, "--", mode],
                       capture_output=True, text=True, timeout=args.seconds + 60)
    return wrk_result(w.stdout)


def etcd_revision(url):
    req = urllib.request.Request(url + "/v3/kv/range", data=b'{"key":"AA=="}', method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return int(json.loads(r.read())["header"]["revision"])


def consul_index(url):
    try:
        with urllib.request.urlopen(url + "/v1/kv/?keys", timeout=5) as r:
            return int(r.headers["X-Consul-Index"])
    except urllib.error.HTTPError as e:
        return int(e.headers["X-Consul-Index"])


class ConsulProc:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-bench-consul-")
        pf = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "peer.log"), "ab")
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "peers", "consul_peer.py"),
                                   "--port-file", pf], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.addr = "127.0.0.1:" + open(pf).read().strip()
        self.url = "http://" + self.addr
        return self

    def __exit__(self, *a):
        self.p.terminate()
        self.p.wait(10)
        self.log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "coffer"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--only", choices=["etcd", "consul"])
    ap.add_argument("--out", default=os.path.join(HERE, "results", "extstorage.md"),
                    help="where the Markdown report goes")
    args = ap.parse_args()
    load0 = os.getloadavg()
    rows = []
    if args.only in (None, "etcd"):
        with Etcd() as e:
            log("etcd ceiling")
            c = ceiling(args, e.url, "etcd")
            rows.append(("etcd", "ceiling: wrk, one `/v3/kv/put` per request", c, 1.0))
            for ha, keyspace in ((False, 0), (True, 0), (False, 100), (True, 100)):
                log("coffer on etcd, ha_enabled = %s, keyspace %d" % (ha, keyspace))
                stanza = ('storage "etcd" {\n  address = "%s"\n  path = "/%s/"\n  ha_enabled = "%s"\n}\n'
                          % (e.url, ("vha" if ha else "vplain") + str(keyspace or ""),
                             "true" if ha else "false"))
                snaps = []

                def counter():
                    snaps.append(etcd_calls(e.url))
                    return etcd_revision(e.url)  # one Range, subtracted below
                r = coffer_run(args, stanza, ha, counter, keyspace)
                calls = ""
                if len(snaps) == 2 and r["requests"]:
                    per = {m: (snaps[1].get(m, 0) - snaps[0].get(m, 0) - (m == "Range"))
                           / r["requests"] for m in ("Range", "Txn")}
                    calls = "; per request: %.2f Range + %.2f Txn" % (per["Range"], per["Txn"])
                what = ("write (new secret, 100 B)" if not keyspace else
                        "update (%d secrets per wrk thread, a new version each)" % keyspace)
                rows.append(("etcd", "Coffer KV v2 %s, ha_enabled = %s%s%s"
                             % (what, str(ha).lower(), " (fenced txns)" if ha else "", calls), r,
                             r["commits_per_req"]))
    if args.only in (None, "consul"):
        with ConsulProc() as p:
            log("consul peer ceiling")
            c = ceiling(args, p.url, "consul")
            rows.append(("consul", "ceiling: wrk, one `PUT /v1/kv/<key>` per request", c, 1.0))
            for ha in (False, True):
                log("coffer on the consul peer, ha_enabled = %s" % ha)
                stanza = ('storage "consul" {\n  address = "%s"\n  path = "%s/"\n  ha_enabled = "%s"\n}\n'
                          % (p.addr, "vha" if ha else "vplain", "true" if ha else "false"))
                r = coffer_run(args, stanza, ha, lambda: consul_index(p.url))
                rows.append(("consul", "Coffer KV v2 write, ha_enabled = %s" % str(ha).lower(), r,
                             r["commits_per_req"]))
    load1 = os.getloadavg()
    lines = ["# storage \"etcd\" and \"consul\" benchmark", "",
             "`bench/extstorage.py --clients %d --seconds %d` on %d CPUs, %s; Coffer binary %s. "
             "etcd: Debian's etcd-server, one member on loopback, fsync on. consul: the local "
             "Python Consul peer (tests/peers/consul_peer.py), not a real Consul."
             % (args.clients, args.seconds, os.cpu_count(), time.strftime("%Y-%m-%d"),
                os.path.relpath(args.bin, ROOT)),
             "Load average (1/5/15 min) before: %.1f / %.1f / %.1f, after: %.1f / %.1f / %.1f "
             "(the box is shared; absolute numbers move with it)." % (load0 + load1), "",
             "| store | scenario | writes/s | p50 | p99 | store commits per request | of ceiling |",
             "|---|---|---|---|---|---|---|"]
    ceil = {}
    for store, name, r, per in rows:
        if name.startswith("ceiling"):
            ceil[store] = r["rps"]
        lines.append("| %s | %s, %d clients | %.0f | %.1f ms | %.1f ms | %s | %.0f%% |"
                     % (store, name, args.clients, r["rps"], r["p50"] or -1, r["p99"] or -1,
                        "%.2f" % per if per is not None else "?", 100 * r["rps"] / ceil[store]))
        if r["non2xx"]:
            lines.append("| | (%d non-2xx answers) | | | | | |" % r["non2xx"])
    lines += ["", "A KV v2 write of a new secret is several storage writes (version data, "
              "metadata, ...), each a round trip to the store (the consul backend groups them in one txn), so a ratio near "
              "1 / commits-per-request means the store is the bottleneck.", ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
