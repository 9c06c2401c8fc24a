#!/usr/bin/env python3
"""
bench/database.py - the database engine's benchmark (issue 17): dynamic
PostgreSQL credentials with leases stored, against a real PostgreSQL 15
started for the run (tests/e2e/pg_peer.py), and PostgreSQL's own ceiling for
the same work measured in the same run.

    bench/database.py [--binary build-release/coffer] [--duration 10] [--clients 16]
                      [--storage file|inmem] [--leak-creds 20000]

Measures:
  1. creds/s and latency (wrk, 16 connections) of GET database/creds/readonly
     with the guide's creation statements: each request creates a role in
     PostgreSQL and stores a lease;
  2. the PostgreSQL side alone: the same CREATE ROLE + GRANT transaction
     from 16 psql (libpq) sessions, roles/s;
  3. revocation throughput: revoke-prefix (sync) of every lease made in 1;
  4. connections: pg_stat_activity rows of the root user after --leak-creds
     more credentials and their revocation (must stay <= max_open_connections).
Prints a Markdown report and writes bench/results/database.md.
Every process is started here and stopped by PID.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

CREATION = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
            "'{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def parse_wrk(out):
    def ms(s):
        m = re.match(r"([\d.]+)(us|ms|s)", s)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for p in ("50", "90", "99"):
        m = re.search(r"\s%s(?:\.000)?%%\s+([\d.]+\w+)" % p, out)
        r["p" + p] = ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    return r


def pg_ceiling(pg, clients, per_client):
    """CREATE ROLE + GRANT transactions from `clients` psql sessions."""
    procs = []
    t0 = time.time()
    for c in range(clients):
        lines = []
        for i in range(per_client):
            n = "ceil_%d_%d" % (c, i)
            lines.append("BEGIN; CREATE ROLE \"%s\" WITH LOGIN PASSWORD 'A1a-0123456789abcdef' "
                         "VALID UNTIL '2099-01-01 00:00:00+0000'; GRANT SELECT ON ALL TABLES IN "
                         "SCHEMA public TO \"%s\"; COMMIT;" % (n, n))
        p = subprocess.Popen(["psql", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres", "-d", "mydb",
                              "-q"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append((p, "\n".join(lines) + "\n"))
    for p, sql in procs:
        threading.Thread(target=p.communicate, args=(sql,), daemon=True).start()
    for p, _ in procs:
        p.wait()
    dt = time.time() - t0
    made = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'ceil\\_%'"))
    for c in range(clients):
        pg.admin("DO $$DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname "
                 "LIKE 'ceil\\_%d\\_%%' LOOP EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public "
                 "FROM %%I', r.rolname); EXECUTE format('DROP ROLE %%I', r.rolname); END LOOP; END$$"
                 % c, db="mydb")
    return made / dt, clients * per_client - made


def revoke_all(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=1800)
    c.request("PUT", "/v1/sys/leases/revoke-prefix/database/creds/readonly",
              body=json.dumps({"sync": True}), headers={"X-Vault-Token": srv.root_token})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "coffer"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--storage", default="file", choices=["file", "inmem"])
    ap.add_argument("--leak-creds", type=int, default=20000)
    args = ap.parse_args()
    os.environ["COFFER_BIN"] = args.binary
    from harness import Server  # noqa: E402 (after COFFER_BIN)
    from pg_peer import PgPeer

    pg = PgPeer().start()
    srv = None
    res = {}
    try:
        pg.admin("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'vaultpassword'")
        pg.admin("CREATE TABLE items(id int)", db="mydb")
        srv = Server(storage=args.storage, log_level="warn").start().init_unseal()
        s = srv
        assert s.post("sys/mounts/database", {"type": "database"}).status == 204
        r = s.post("database/config/postgresql", {
            "plugin_name": "postgresql-database-plugin", "allowed_roles": "readonly",
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:%d/mydb?sslmode=disable" % pg.port,
            "username": "vault", "password": "vaultpassword", "max_open_connections": 16})
        assert r.status == 204, r
        r = s.post("database/roles/readonly", {"db_name": "postgresql", "creation_statements": CREATION,
                                               "default_ttl": "1h", "max_ttl": "24h"})
        assert r.status == 204, r

        log("PostgreSQL ceiling (%d psql sessions)" % args.clients)
        res["pg_ceiling"], res["pg_ceiling_failed"] = pg_ceiling(pg, args.clients, 300)

        log("creds with wrk: %d connections, %d s" % (args.clients, args.duration))
        url = "http://%s/v1/database/creds/readonly" % srv.addr
        out = subprocess.run(["wrk", "-t2", "-c%d" % args.clients, "-d%ds" % args.duration, "--latency",
                              "-H", "X-Vault-Token: " + srv.root_token, url],
                             capture_output=True, text=True).stdout
        res["creds"] = parse_wrk(out)
        leases = s.list("sys/leases/lookup/database/creds/readonly/").json()["data"]["keys"]
        res["leases"] = len(leases)
        res["roles_in_pg"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))

        log("revoking %d leases" % len(leases))
        t0 = time.time()
        res["revoke_status"] = revoke_all(srv)
        res["revoke_s"] = time.time() - t0
        res["revoke_rate"] = len(leases) / res["revoke_s"] if res["revoke_s"] else 0
        res["roles_left"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))

        log("leak check: %d more creds" % args.leak_creds)
        done = [0]
        errs = {}
        lock = threading.Lock()

        def worker(n):
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            for _ in range(n):
                c.request("GET", "/v1/database/creds/readonly", headers={"X-Vault-Token": srv.root_token})
                resp = c.getresponse()
                body = resp.read()
                with lock:
                    done[0] += resp.status == 200
                    if resp.status != 200:
                        k = body[:120].decode("utf-8", "replace")
                        errs[k] = errs.get(k, 0) + 1
            c.close()
        ths = [threading.Thread(target=worker, args=(args.leak_creds // args.clients,))
               for _ in range(args.clients)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        res["leak_ok"] = done[0]
        res["leak_errors"] = errs
        revoke_all(srv)
        res["vault_conns"] = int(pg.admin("SELECT count(*) FROM pg_stat_activity WHERE usename = 'vault'"))
        res["roles_after_leak"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))
        res["rss_kib"] = int(open("/proc/%d/status" % srv.proc.pid).read().split("VmRSS:")[1].split()[0])
    finally:
        if srv:
            srv.cleanup()
        pg.cleanup()

    c = res["creds"]
    nproc = os.cpu_count()
    md = ["# Database engine benchmark", "",
          "`bench/database.py --storage %s --clients %d --duration %d` on %d CPUs, %s." %
          (args.storage, args.clients, args.duration, nproc, time.strftime("%Y-%m-%d")),
          "PostgreSQL 15 on loopback (fsync off), the guide's readonly role, leases stored.", "",
          "| metric | value |", "|---|---|",
          "| **creds/s (GET database/creds/readonly, %d connections)** | **%.0f** |" % (args.clients, c["rps"]),
          "| latency p50 / p90 / p99 | %.1f / %.1f / %.1f ms |" % (c["p50"] or 0, c["p90"] or 0, c["p99"] or 0),
          "| non-2xx responses | %d of %d |" % (c["errors"], c["requests"]),
          "| leases stored / roles in PostgreSQL | %d / %d |" % (res["leases"], res["roles_in_pg"]),
          "| PostgreSQL ceiling: the same CREATE ROLE + GRANT txn from %d psql sessions | %.0f roles/s (%d txns failed: tuple concurrently updated) |" % (args.clients, res["pg_ceiling"], res["pg_ceiling_failed"]),
          "| revocation (revoke-prefix, sync) | %.0f leases/s (%d in %.1f s, status %d; %d roles left) |" %
          (res["revoke_rate"], res["leases"], res["revoke_s"], res["revoke_status"], res["roles_left"]),
          "| leak check: creds then revoked | %d of %d; roles left %d; errors %s |" % (res["leak_ok"], args.leak_creds // args.clients * args.clients, res["roles_after_leak"], json.dumps(res["leak_errors"]) if res["leak_errors"] else "none"),
          "| **root user's connections in pg_stat_activity afterwards** | **%d** (max_open_connections 16) |" % res["vault_conns"],
          "| server RSS at the end | %d KiB |" % res["rss_kib"],
          "", "Reference: vault-benchmark's published PostgreSQL dynamic-credential figure is 226/s, p99 77 ms.", ""]
    text = "\n".join(md)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "database.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
