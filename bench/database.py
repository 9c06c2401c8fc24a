#!/usr/bin/env python3
"""
bench/database.py - the database engine's benchmark (issue 17): dynamic
PostgreSQL credentials with leases stored, against a real PostgreSQL 15
started for the run (tests/e2e/pg_peer.py), and PostgreSQL's own ceiling for
the same work measured in the same run.

    bench/database.py [--binary build-release/coffer] [--duration 10] [--clients 16]
                      [--storage file|inmem] [--leak-creds 20000] [--guide-max 2000]

Measures:
  1. creds/s and latency (wrk, 16 connections) of GET database/creds/<role>
     for the creation statements (the guide's, with password_authentication
     password and scram-sha-256, a group-role one, and a no-op that leaves
     only Coffer's own path); each request stores a lease; with the CPU
     seconds the Coffer server and the PostgreSQL cluster (postmaster and
     its backends) spent per credential, and the load average;
  2. the PostgreSQL side alone: the same transaction from 16 psql (libpq)
     sessions, roles/s, and how many PostgreSQL itself failed;
  3. revocation throughput: revoke-prefix (sync) of every lease made in 1;
  4. connections: pg_stat_activity rows of the root user after --leak-creds
     more credentials and their revocation (must stay <= max_open_connections).
A table's ACL lives in one catalog row, so the guide's direct GRANT to every
user stops at about 2,400 live users per table ("row is too big"): the guide
runs stop after --guide-max credentials (bench/creds.lua stops wrk's
threads), and the leak check grants through a group role.
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


# The scenarios: name -> (creation statement, what PostgreSQL's side runs
# for the ceiling with {n} for the role name, password_authentication)
SCENARIOS = [
    ("guide", CREATION,
     "CREATE ROLE \"{n}\" WITH LOGIN PASSWORD 'A1a-0123456789abcdef' VALID UNTIL "
     "'2099-01-01 00:00:00+0000'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{n}\";", "password"),
    ("guide-scram", CREATION, None, "scram-sha-256"),
    ("group", "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
     "'{{expiration}}' IN ROLE readers;",
     "CREATE ROLE \"{n}\" WITH LOGIN PASSWORD 'A1a-0123456789abcdef' VALID UNTIL "
     "'2099-01-01 00:00:00+0000' IN ROLE readers;", "password"),
    ("no-op", "SELECT 1", None, "password"),
]


def cpu_s(pids):
    """utime + stime of the processes, seconds"""
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return t / os.sysconf("SC_CLK_TCK")


def pg_pids(pg):
    """the postmaster and its children (backends, checkpointer...)"""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        pm = int(f.readline())
    kids = [pm]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pm:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def pg_ceiling(pg, clients, per_client, stmt):
    """The same transaction from `clients` psql (libpq) sessions: roles
    made per second, and how many transactions PostgreSQL failed."""
    procs = []
    t0 = time.time()
    for c in range(clients):
        lines = ["BEGIN; %s COMMIT;" % stmt.format(n="ceil_%d_%d" % (c, i)) for i in range(per_client)]
        p = subprocess.Popen(["psql", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres", "-d", "mydb",
                              "-q"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        procs.append((p, "\n".join(lines) + "\n"))
    for p, sql in procs:
        threading.Thread(target=p.communicate, args=(sql,), daemon=True).start()
    for p, _ in procs:
        p.wait()
    dt = time.time() - t0
    made = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'ceil\\_%'"))
    pg.admin("DO $$DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname "
             "LIKE 'ceil\\_%' LOOP EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public "
             "FROM %I', r.rolname); EXECUTE format('DROP ROLE %I', r.rolname); END LOOP; END$$",
             db="mydb")
    return made / dt, clients * per_client - made


def revoke_all(srv, role):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=1800)
    c.request("PUT", "/v1/sys/leases/revoke-prefix/database/creds/" + role,
              body=json.dumps({"sync": True}), headers={"X-Vault-Token": srv.root_token})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def wrk(srv, pg, role, clients, duration, max_creds=0):
    """wrk against creds/<role>; max_creds > 0 stops after about that many.
    Also the CPU seconds per credential of Coffer and of PostgreSQL."""
    url = "http://%s/v1/database/creds/%s" % (srv.addr, role)
    env = dict(os.environ, CREDS_MAX=str(max_creds // 2 if max_creds else 0))
    pids = pg_pids(pg)
    c0, p0 = cpu_s([srv.proc.pid]), {pid: cpu_s([pid]) for pid in pids}
    out = subprocess.run(["wrk", "-t2", "-c%d" % clients, "-d%ds" % duration, "--latency",
                          "-s", os.path.join(HERE, "creds.lua"),
                          "-H", "X-Vault-Token: " + srv.root_token, url],
                         capture_output=True, text=True, env=env).stdout
    load = loadavg()
    time.sleep(2)  # requests wrk abandoned at the deadline finish and register
    r = parse_wrk(out)
    n = max(r["requests"], 1)
    r["coffer_cpu_ms"] = (cpu_s([srv.proc.pid]) - c0) * 1000 / n
    # backends opened during the run count whole (they started at 0)
    r["pg_cpu_ms"] = sum(cpu_s([pid]) - p0.get(pid, 0) for pid in pg_pids(pg)) * 1000 / n
    r["load"] = load
    return r


def leak_check(srv, role, total, clients):
    done = [0]
    errs = {}
    lock = threading.Lock()

    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        for _ in range(n):
            c.request("GET", "/v1/database/creds/" + role, headers={"X-Vault-Token": srv.root_token})
            resp = c.getresponse()
            body = resp.read()
            with lock:
                done[0] += resp.status == 200
                if resp.status != 200:
                    k = body[:120].decode("utf-8", "replace")
                    errs[k] = errs.get(k, 0) + 1
        c.close()
    ths = [threading.Thread(target=worker, args=(total // clients,)) for _ in range(clients)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    return done[0], errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "coffer"))
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--storage", default="file", choices=["file", "inmem"])
    ap.add_argument("--leak-creds", type=int, default=10000)
    ap.add_argument("--scenarios", default=",".join(x[0] for x in SCENARIOS),
                    help="comma-separated subset of " + ",".join(x[0] for x in SCENARIOS))
    ap.add_argument("--guide-max", type=int, default=2000,
                    help="creds per guide run (a table's ACL row holds about 2,400 users)")
    args = ap.parse_args()
    os.environ["COFFER_BIN"] = args.binary
    from harness import Server  # noqa: E402 (after COFFER_BIN)
    from pg_peer import PgPeer

    pg = PgPeer().start()
    srv = None
    rows = []
    res = {}
    try:
        pg.admin("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'vaultpassword'")
        pg.admin("CREATE ROLE readers NOLOGIN")
        pg.admin("CREATE TABLE items(id int); GRANT SELECT ON items TO readers", db="mydb")
        srv = Server(storage=args.storage, log_level="warn").start().init_unseal()
        s = srv
        assert s.post("sys/mounts/database", {"type": "database"}).status == 204
        r = s.post("database/config/postgresql", {
            "plugin_name": "postgresql-database-plugin", "allowed_roles": "*",
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:%d/mydb?sslmode=disable" % pg.port,
            "username": "vault", "password": "vaultpassword", "max_open_connections": 16})
        assert r.status == 204, r
        for name, creation, ceiling, pwauth in SCENARIOS:
            if name not in args.scenarios.split(","):
                continue
            r = s.post("database/config/postgresql", {"password_authentication": pwauth})
            assert r.status == 204, r
            r = s.post("database/roles/" + name, {"db_name": "postgresql", "creation_statements": creation,
                                                  "revocation_statements": "SELECT 1" if name == "no-op" else [],
                                                  "default_ttl": "1h", "max_ttl": "24h"})
            assert r.status == 204, r
            row = {"name": name, "pwauth": pwauth}
            if ceiling:
                log("%s: PostgreSQL ceiling (%d psql sessions)" % (name, args.clients))
                row["ceiling"], row["ceiling_failed"] = pg_ceiling(pg, args.clients, 150, ceiling)
            log("%s: creds with wrk, %d connections, %d s" % (name, args.clients, args.duration))
            row["creds"] = wrk(srv, pg, name, args.clients, args.duration,
                               args.guide_max if creation == CREATION else 0)
            r = s.list("sys/leases/lookup/database/creds/%s/" % name)
            row["leases"] = len(r.json()["data"]["keys"]) if r.status == 200 else 0
            row["roles"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))
            log("%s: revoking %d leases" % (name, row["leases"]))
            t0 = time.time()
            pids = pg_pids(pg)
            c0, p0 = cpu_s([srv.proc.pid]), {pid: cpu_s([pid]) for pid in pids}
            row["revoke_status"] = revoke_all(srv, name)
            row["revoke_s"] = time.time() - t0
            n = max(row["leases"], 1)
            row["revoke_cpu"] = ((cpu_s([srv.proc.pid]) - c0) * 1000 / n,
                                 sum(cpu_s([pid]) - p0.get(pid, 0) for pid in pg_pids(pg)) * 1000 / n)
            row["revoke_load"] = loadavg()
            row["roles_left"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))
            rows.append(row)

        log("leak check: %d creds (group role) then revoke" % args.leak_creds)
        t0 = time.time()
        res["leak_ok"], res["leak_errors"] = leak_check(srv, "group", args.leak_creds, args.clients)
        res["leak_creds_s"] = time.time() - t0
        t0 = time.time()
        revoke_all(srv, "group")
        res["leak_revoke_s"] = time.time() - t0
        res["vault_conns"] = int(pg.admin("SELECT count(*) FROM pg_stat_activity WHERE usename = 'vault'"))
        res["roles_after_leak"] = int(pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"))
        res["rss_kib"] = int(open("/proc/%d/status" % srv.proc.pid).read().split("VmRSS:")[1].split()[0])
        with open("/proc/loadavg") as f:
            res["load"] = f.read().split()[0]
    finally:
        if srv:
            srv.cleanup()
        pg.cleanup()

    md = ["# Database engine benchmark", "",
          "`bench/database.py --storage %s --clients %d --duration %d` on %d CPUs (load average %s at the "
          "end: other work shared the box), %s. PostgreSQL 15 on loopback (fsync off) on the same CPUs; "
          "leases stored." % (args.storage, args.clients, args.duration, os.cpu_count(), res["load"],
                              time.strftime("%Y-%m-%d")), "",
          "Scenarios: **guide** = the production guide's creation statements (CREATE ROLE + GRANT "
          "SELECT ON ALL TABLES); **group** = CREATE ROLE ... IN ROLE readers (privileges through a "
          "group role); **no-op** = `SELECT 1` as the creation statement: Coffer's own path (HTTP, "
          "token, ACL, audit, engine, pool, lease registration) without PostgreSQL's role work.", "",
          "| scenario | password_authentication | Coffer creds/s (load avg) | p50 / p99 ms | non-2xx | CPU ms per cred: "
          "Coffer / PostgreSQL | PostgreSQL alone, same txn, %d psql sessions | "
          "revoke-prefix (sync) (load avg), CPU ms per lease Coffer / PostgreSQL |" % args.clients,
          "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        c = row["creds"]
        ceil = ("%.0f roles/s (%d txns failed)" % (row["ceiling"], row["ceiling_failed"])
                if "ceiling" in row else "—")
        md.append("| %s | %s | **%.0f** (%s) | %.1f / %.1f | %d of %d | %.2f / %.2f | %s | %.0f leases/s (%d, %d roles left) (%s), %.2f / %.2f |" % (
            row["name"], row["pwauth"], c["rps"], c["load"], c["p50"] or 0, c["p99"] or 0, c["errors"],
            c["requests"], c["coffer_cpu_ms"], c["pg_cpu_ms"], ceil,
            row["leases"] / row["revoke_s"] if row["revoke_s"] else 0, row["leases"], row["roles_left"],
            row["revoke_load"], row["revoke_cpu"][0], row["revoke_cpu"][1]))
    md += ["",
           "| leak check | value |", "|---|---|",
           "| creds (group scenario) then revoked | %d of %d ok in %.0f s (%.0f/s, Python clients), revoked in "
           "%.0f s (%.0f/s); roles left %d; errors %s |" % (
               res["leak_ok"], args.leak_creds // args.clients * args.clients, res["leak_creds_s"],
               res["leak_ok"] / res["leak_creds_s"], res["leak_revoke_s"],
               res["leak_ok"] / res["leak_revoke_s"], res["roles_after_leak"],
               json.dumps(res["leak_errors"]) if res["leak_errors"] else "none"),
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
