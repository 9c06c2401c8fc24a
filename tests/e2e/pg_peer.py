"""
pg_peer.py - a real PostgreSQL 15 for the tests: initdb + pg_ctl in a temp
directory on a free loopback port (shared/SERVICES.md), plus psql helpers.

    pg = PgPeer().start()          # superuser "postgres", trust auth on the socket
    pg.admin("CREATE ROLE vault ...")   # runs as postgres over the unix socket
    pg.psql_as(user, password, "SELECT 1")  # TCP + password auth: (rc, out, err)
    pg.stop() / pg.start_again()   # the same cluster down and up (outage tests)
    pg.cleanup()

TCP connections use scram-sha-256 password authentication (pg_hba.conf), so
a login with a wrong or expired password really fails; the unix socket
trusts the postgres superuser for the tests' own checks. The cluster runs as
the `postgres` OS user when the tests run as root (initdb refuses root).
Needs the postgresql-15 package (scripts/deps.sh installs it).
Run standalone for manual tests: `python3 pg_peer.py` prints the DSN and
waits for Enter.
"""
import os
import shutil
import subprocess
import tempfile

from harness import free_port

PGBIN = "/usr/lib/postgresql/15/bin"


class PgPeer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coffer-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.running = False
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, capture_output=True, text=True, **kw)

    def start(self):
        r = self._run([PGBIN + "/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                       "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr)
        hba = os.path.join(self.data, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all all trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        self.start_again()
        self.admin("CREATE DATABASE mydb")
        return self

    def start_again(self):
        r = self._run([PGBIN + "/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "pg.log"),
                       "-w", "-t", "30", "start", "-o",
                       "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                       % (self.port, self.dir)])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: " + r.stderr + self.log())
        self.running = True

    def stop(self):
        if self.running:
            self._run([PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
            self.running = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "pg.log")) as f:
                return f.read()
        except OSError:
            return ""

    # -- SQL --
    def admin(self, sql, db="postgres"):
        """Run sql as the superuser over the unix socket; return the rows'
        text (tuples only, unaligned, '|' separated). Raises on error."""
        r = subprocess.run(["psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s" % r.stderr)
        return r.stdout.strip()

    def psql_as(self, user, password, sql, db="mydb"):
        """Log in over TCP with a password; return (returncode, stdout, stderr)."""
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db,
                            "-w", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                           capture_output=True, text=True, env=env)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def role_exists(self, name):
        return self.admin("SELECT count(*) FROM pg_roles WHERE rolname = '%s'"
                          % name.replace("'", "''")) == "1"

    def sessions_of(self, name):
        return int(self.admin("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'"
                              % name.replace("'", "''")))


if __name__ == "__main__":
    pg = PgPeer().start()
    pg.admin("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'vaultpassword'")
    print("postgresql://vault:vaultpassword@127.0.0.1:%d/mydb?sslmode=disable" % pg.port)
    try:
        input("Enter to stop ")
    finally:
        pg.cleanup()
