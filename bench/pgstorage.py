#!/usr/bin/env python3
"""
pgstorage.py - storage "postgresql": durable KV v2 writes/s and p99 at 32
clients against PostgreSQL's own single-statement ceiling on the same box.

  1. a PostgreSQL 15 with durable settings (fsync, synchronous_commit and
     full_page_writes on: PostgreSQL's defaults) in a temp dir, free port;
  2. ceiling: pgbench, 32 clients, a script of one INSERT ... ON CONFLICT DO
     UPDATE of a fresh 150-byte row into a copy of Vault's table (what one
     storage put costs with nothing above it);
  3. Coffer on storage "postgresql" (build/coffer unless --bin), initialised
     and unsealed, wrk with bench/write.lua: every request a new KV v2
     secret of 100 bytes, 32 connections; the same with ha_enabled (every
     write fenced by the advisory-lock guard);
  4. PostgreSQL commits per Coffer request (pg_stat_database) and the load
     average before and after, since the box is shared.

Every process it starts is stopped by PID. Output: Markdown on stdout and
in bench/results/pgstorage.md. Needs postgresql-15 and wrk.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PGBIN = "/usr/lib/postgresql/15/bin"
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(out, p):
    m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]


class Pg:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-bench-pg-")
        if AS_PG:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()

    def start(self):
        subprocess.run(AS_PG + [PGBIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres",
                                "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True)
        subprocess.run(AS_PG + [PGBIN + "/pg_ctl", "-D", self.dir + "/data", "-l",
                                self.dir + "/pg.log", "-w", "-t", "30", "start", "-o",
                                "-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 "
                                "-c shared_buffers=256MB" % (self.port, self.dir)],
                       check=True, capture_output=True)
        self.sql("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'benchpass'")
        self.sql("CREATE DATABASE coffer OWNER vault")
        return self

    def sql(self, q, db="postgres"):
        r = subprocess.run(["psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-At", "-c", q],
                           capture_output=True, text=True, check=True)
        return r.stdout.strip()

    def settings(self):
        return self.sql("SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM "
                        "pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
                        "'full_page_writes', 'wal_sync_method')")

    def commits(self):
        return int(self.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'coffer'"))

    def stop(self):
        subprocess.run(AS_PG + [PGBIN + "/pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w",
                                "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def pgbench_ceiling(pg, clients, secs):
    pg.sql('CREATE TABLE ceiling (parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C", '
           'key TEXT COLLATE "C", value BYTEA, CONSTRAINT ceiling_pkey PRIMARY KEY (path, key)); '
           'CREATE INDEX ceiling_pp ON ceiling (parent_path)', db="coffer")
    script = os.path.join(pg.dir, "upsert.sql")
    with open(script, "w") as f:
        f.write("\\set k random(1, 2000000000)\n"
                "INSERT INTO ceiling VALUES ('/logical/', '/logical/abc/', 'k' || :k || '-' || "
                ":client_id, decode(repeat('ab', 150), 'hex')) ON CONFLICT (path, key) DO UPDATE "
                "SET value = EXCLUDED.value;\n")
    if AS_PG:
        shutil.chown(script, "postgres", "postgres")
    r = subprocess.run([PGBIN + "/pgbench", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "vault",
                        "-n", "-c", str(clients), "-j", "2", "-T", str(secs), "-r", "-f", script,
                        "coffer"], capture_output=True, text=True,
                       env=dict(os.environ, PGPASSWORD="benchpass"))
    m = re.search(r"tps = ([\d.]+)", r.stdout)
    lat = re.search(r"latency average = ([\d.]+) ms", r.stdout)
    if not m:
        raise RuntimeError("pgbench failed:\n" + r.stdout + r.stderr)
    return float(m.group(1)), float(lat.group(1)) if lat else None


def call(port, method, path, body=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Vault-Token"] = token
    c.request(method, "/v1/" + path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def pg_stanza(pg, ha, table):
    url = "postgres://vault:benchpass@127.0.0.1:%d/coffer?sslmode=disable" % pg.port
    return ('storage "postgresql" {\n  connection_url = "%s"\n  table = "%s"\n  ha_table = "%s_ha"\n'
            '  ha_enabled = "%s"\n}\n' % (url, table, table, "true" if ha else "false"))


def wrk_writes(args, port, tok, keyspace=0):
    """wrk with write.lua against a KV v2 mount "secret": one new secret per
    request (keyspace 0), or each wrk thread cycling over its own keyspace
    secrets (updates: a new version of an existing secret)."""
    w = subprocess.run(["wrk", "-t2", "-c%d" % args.clients, "-d%ds" % args.seconds, "--timeout", "30s",
                        "--latency", "-s", os.path.join(HERE, "write.lua"),
                        "http://127.0.0.1:%d" % port, "--", "/v1/secret/data/w", str(keyspace), tok],
                       capture_output=True, text=True, timeout=args.seconds + 60)
    return wrk_result(w.stdout)


def wrk_result(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("wrk failed:\n" + out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(m.group(1)), "p50": pct(out, 50), "p99": pct(out, 99),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


def coffer_run(args, stanza, ha, counter=None, keyspace=0):
    """Coffer on the given storage stanza, initialised, unsealed, active, a
    KV v2 mount, then wrk_writes. counter(): storage-side operations, read
    before and after (per-request ratio in "commits_per_req")."""
    d = tempfile.mkdtemp(prefix="coffer-bench-")
    port = free_port()
    cfg = os.path.join(d, "coffer.hcl")
    with open(cfg, "w") as f:
        f.write(stanza + 'listener "tcp" {\n  address = "127.0.0.1:%d"\n'
                '  tls_disable = true\n}\ndisable_mlock = true\nlog_level = "warn"\n'
                'api_addr = "http://127.0.0.1:%d"\ncluster_addr = "https://127.0.0.1:%d"\n'
                % (port, port, free_port()))
    logf = open(os.path.join(d, "server.log"), "ab")
    p = subprocess.Popen([args.bin, "server", "-config=" + cfg], stdout=logf, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if call(port, "GET", "sys/seal-status")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        st, init = call(port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        assert st == 200, init
        call(port, "PUT", "sys/unseal", {"key": init["keys_base64"][0]})
        tok = init["root_token"]
        for _ in range(300):
            st, j = call(port, "GET", "sys/leader")
            if st == 200 and (j.get("is_self") or not j.get("ha_enabled")):
                break
            time.sleep(0.05)
        st, _ = call(port, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, tok)
        assert st in (200, 204), st
        c0 = counter() if counter else 0
        if keyspace:
            wrk_writes(args, port, tok, keyspace)  # create them: the timed run updates
        r = wrk_writes(args, port, tok, keyspace)
        c1 = counter() if counter else 0
        r["commits_per_req"] = (c1 - c0) / r["requests"] if counter and r["requests"] else None
        return r
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        logf.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "coffer"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    load0 = os.getloadavg()
    pg = Pg().start()
    try:
        log("pgbench ceiling")
        tps, lat = pgbench_ceiling(pg, args.clients, args.seconds)
        log("coffer, ha_enabled = false")
        plain = coffer_run(args, pg_stanza(pg, False, "kv_plain"), False, pg.commits)
        log("coffer, ha_enabled = true (fenced writes)")
        fenced = coffer_run(args, pg_stanza(pg, True, "kv_ha"), True, pg.commits)
        settings = pg.settings()
    finally:
        pg.stop()
    load1 = os.getloadavg()
    lines = [
        "# storage \"postgresql\" benchmark",
        "",
        "`bench/pgstorage.py --clients %d --seconds %d` on %d CPUs, %s. PostgreSQL 15 on loopback "
        "(%s); Coffer binary %s." % (args.clients, args.seconds, os.cpu_count(),
                                     time.strftime("%Y-%m-%d"), settings, os.path.relpath(args.bin, ROOT)),
        "Load average (1/5/15 min) before: %.1f / %.1f / %.1f, after: %.1f / %.1f / %.1f "
        "(the box is shared with other builds; absolute numbers move with it)." % (load0 + load1),
        "",
        "| scenario | writes/s | p50 | p99 | PostgreSQL commits per request |",
        "|---|---|---|---|---|",
        "| ceiling: pgbench, one `INSERT ... ON CONFLICT DO UPDATE` per transaction, %d clients "
        "| %.0f | %s | | 1 |" % (args.clients, tps, "%.1f ms (avg)" % lat if lat else ""),
    ]
    for name, r in (("Coffer KV v2 write (new secret, 100 B), ha_enabled = false", plain),
                    ("Coffer KV v2 write, ha_enabled = true (every write fenced)", fenced)):
        lines.append("| %s, %d clients | %.0f | %.1f ms | %.1f ms | %.2f |"
                     % (name, args.clients, r["rps"], r["p50"] or -1, r["p99"] or -1,
                        r["commits_per_req"] or -1))
        if r["non2xx"]:
            lines.append("|   (%d non-2xx answers) | | | | |" % r["non2xx"])
    lines += ["", "Coffer / ceiling: %.0f%% (plain), %.0f%% (fenced). One KV v2 write of a new "
              "secret is several storage writes (version data, metadata, ...), each its own "
              "PostgreSQL commit, so a ratio near 1/commits-per-request means storage is the "
              "bottleneck." % (100 * plain["rps"] / tps, 100 * fenced["rps"] / tps), ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "pgstorage.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
