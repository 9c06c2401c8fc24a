"""
End-to-end tests of the database secrets engine (issue 17) against the real
binary and a real PostgreSQL 15 (pg_peer.py; scripts/deps.sh installs
postgresql-15).

The production guide's commands run verbatim through the `coffer` CLI,
except the host in connection_url: the guide's "postgres:5432" is this
test's PostgreSQL on 127.0.0.1 and a free port. Issued credentials are
checked by logging in with psql over TCP with password authentication:
SELECT works for the readonly role, INSERT is refused; after a revoke (or
TTL expiry) the login fails, the role is gone and its sessions ended; a
renew moves pg_roles.rolvaliduntil; rotate-root makes the old root password
fail; a static role's password rotates on request and on schedule.
"""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import hvac

from harness import BIN, Server
from pg_peer import PgPeer

PLUGIN = "postgresql-database-plugin"
GUIDE_CREATION = ("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
                  "'{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";")


class DatabaseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgPeer().start()
        cls.pg.admin("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'vaultpassword'")
        cls.pg.admin("CREATE TABLE items(id int, name text); INSERT INTO items VALUES (1, 'one')",
                     db="mydb")
        cls.s = Server(dev=True).start()
        cls.url = "postgresql://{{username}}:{{password}}@127.0.0.1:%d/mydb?sslmode=disable" % cls.pg.port
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        cls.pg.cleanup()

    # -- helpers --
    def cli(self, *args, ok=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        env.update(VAULT_ADDR="http://" + self.s.addr, VAULT_TOKEN="root", HOME="/tmp")
        p = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=env, timeout=60)
        if ok:
            self.assertEqual(p.returncode, 0, "coffer %s\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.stdout, p.stderr))
        return p

    def mount(self):
        """A fresh database mount with a connection and the guide's readonly role."""
        DatabaseTest.n += 1
        path = "db%d" % self.n
        r = self.s.post("sys/mounts/" + path, {"type": "database"})
        self.assertEqual(r.status, 204, r)
        self.addCleanup(self.s.delete, "sys/mounts/" + path)
        r = self.s.post(path + "/config/postgresql", {
            "plugin_name": PLUGIN, "connection_url": self.url, "allowed_roles": "readonly,app-*",
            "username": "vault", "password": "vaultpassword"})
        self.assertEqual(r.status, 204, r)
        r = self.s.post(path + "/roles/readonly", {"db_name": "postgresql",
                                                   "creation_statements": GUIDE_CREATION,
                                                   "default_ttl": "1h", "max_ttl": "24h"})
        self.assertEqual(r.status, 204, r)
        return path

    def creds(self, path, role="readonly"):
        r = self.s.get("%s/creds/%s" % (path, role))
        self.assertEqual(r.status, 200, r)
        j = r.json()
        return j["data"]["username"], j["data"]["password"], j["lease_id"], j

    def wait(self, cond, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.2)
        return cond()

    def leases(self, prefix):
        r = self.s.list("sys/leases/lookup/" + prefix)
        return set(r.json()["data"]["keys"]) if r.status == 200 else set()

    # -- the guide --
    def test_guide_commands_through_the_cli(self):
        pg = self.pg
        self.cli("secrets", "enable", "database")
        self.addCleanup(self.s.delete, "sys/mounts/database")
        url = self.url  # the guide's postgres:5432 is this test's server
        self.cli("write", "database/config/postgresql", "plugin_name=postgresql-database-plugin",
                 "connection_url=" + url, "allowed_roles=readonly,readwrite",
                 "username=vault", "password=vaultpassword")
        self.cli("write", "database/roles/readonly", "db_name=postgresql",
                 "creation_statements=" + GUIDE_CREATION, "default_ttl=1h", "max_ttl=24h")
        out = self.cli("read", "-format=json", "database/creds/readonly").stdout
        j = json.loads(out)
        user, pw, lease = j["data"]["username"], j["data"]["password"], j["lease_id"]
        self.assertTrue(lease.startswith("database/creds/readonly/"), lease)
        self.assertEqual(j["lease_duration"], 3600)
        self.assertTrue(j["renewable"])
        self.assertTrue(user.startswith("v-root-readonly-"), user)
        self.assertLessEqual(len(user), 63)
        self.assertEqual(len(pw), 20)
        # the credentials work, and only for reading
        rc, rows, err = pg.psql_as(user, pw, "SELECT name FROM items")
        self.assertEqual((rc, rows), (0, "one"), err)
        rc, _, err = pg.psql_as(user, pw, "INSERT INTO items VALUES (2, 'two')")
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied", err)
        # VALID UNTIL is the lease's expiry
        until = pg.admin("SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles "
                         "WHERE rolname = '%s'" % user)
        self.assertAlmostEqual(int(until), time.time() + 3600, delta=30)
        # config read never shows the password
        out = self.cli("read", "-format=json", "database/config/postgresql").stdout
        self.assertNotIn("vaultpassword", out)
        self.assertEqual(json.loads(out)["data"]["connection_details"]["username"], "vault")
        # revoke by prefix: the user is gone and cannot log in
        self.cli("lease", "revoke", "-prefix", "database/creds/readonly")
        self.assertTrue(self.wait(lambda: not pg.role_exists(user)), "role still exists")
        rc, _, err = pg.psql_as(user, pw, "SELECT 1")
        self.assertNotEqual(rc, 0)
        self.assertIn("password authentication failed", err)

    # -- leases --
    def test_username_carries_the_tokens_display_name(self):
        """Vault's default template puts the token's display name (first 8
        characters) in the username: a userpass login's '<mount path>-alice'
        and a token created with display_name 'ci-bot' ('token-ci-bot')."""
        path = self.mount()
        pol = 'path "%s/creds/readonly" { capabilities = ["read"] }' % path
        self.assertEqual(self.s.put("sys/policies/acl/dbread", {"policy": pol}).status, 204)
        up = "up-" + path
        self.assertEqual(self.s.post("sys/auth/" + up, {"type": "userpass"}).status, 204)
        self.addCleanup(self.s.delete, "sys/auth/" + up)
        r = self.s.post("auth/%s/users/alice" % up, {"password": "pw-alice", "policies": "dbread"})
        self.assertEqual(r.status, 204, r)
        r = self.s.post("auth/%s/login/alice" % up, {"password": "pw-alice"}, token="")
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        r = self.s.get("%s/creds/readonly" % path, token=tok)
        self.assertEqual(r.status, 200, r)
        user = r.json()["data"]["username"]
        # the display name is "<mount path>-alice", as in Vault: its
        # first 8 characters
        self.assertTrue(user.startswith("v-%s-readonly-" % ("%s-alice" % up)[:8]), user)
        r = self.s.post("auth/token/create", {"policies": ["dbread"], "display_name": "ci-bot"})
        self.assertEqual(r.status, 200, r)
        r = self.s.get("%s/creds/readonly" % path, token=r.json()["auth"]["client_token"])
        self.assertEqual(r.status, 200, r)
        user = r.json()["data"]["username"]
        self.assertTrue(user.startswith("v-token-ci-readonly-"), user)
        # the login works: the display name is not a quoting hazard
        rc, rows, err = self.pg.psql_as(user, r.json()["data"]["password"], "SELECT name FROM items")
        self.assertEqual((rc, rows), (0, "one"), err)

    def test_username_template_sees_the_whole_display_name(self):
        """The engine gets the token's whole display name: a userpass login
        on its default path ('userpass-alice', as Vault names it) through a
        template that does not truncate it; hvac-style login, then creds."""
        path = self.mount()
        r = self.s.post(path + "/config/postgresql", {
            "username_template": "{{ printf \"v-%s-%s\" .DisplayName (random 6) | lowercase }}"})
        self.assertEqual(r.status, 204, r)
        pol = 'path "%s/creds/readonly" { capabilities = ["read"] }' % path
        self.assertEqual(self.s.put("sys/policies/acl/dbread2", {"policy": pol}).status, 204)
        self.assertEqual(self.s.post("sys/auth/userpass", {"type": "userpass"}).status, 204)
        self.addCleanup(self.s.delete, "sys/auth/userpass")
        r = self.s.post("auth/userpass/users/alice", {"password": "pw-alice", "policies": "dbread2"})
        self.assertEqual(r.status, 204, r)
        r = self.s.post("auth/userpass/login/alice", {"password": "pw-alice"}, token="")
        self.assertEqual(r.status, 200, r)
        tok = r.json()["auth"]["client_token"]
        r = self.s.get("%s/creds/readonly" % path, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["data"]["username"], r"^v-userpass-alice-[a-z0-9]{6}$")
        # the root token's is "root"
        r = self.s.get("%s/creds/readonly" % path)
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["data"]["username"], r"^v-root-[a-z0-9]{6}$")

    def test_revoke_ends_sessions_and_drops_the_role(self):
        path = self.mount()
        user, pw, lease, _ = self.creds(path)
        env = dict(os.environ, PGPASSWORD=pw)
        sess = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", user,
                                 "-d", "mydb", "-w", "-c", "SELECT pg_sleep(60)"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: sess.poll() is None and sess.kill())
        self.assertTrue(self.wait(lambda: self.pg.sessions_of(user) == 1), "session never started")
        r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
        self.assertEqual(r.status, 204, r)
        self.assertTrue(self.wait(lambda: not self.pg.role_exists(user)))
        sess.wait(10)
        self.assertNotEqual(sess.returncode, 0, "the session outlived its credentials")
        self.assertIn(b"terminat", sess.stderr.read())
        self.assertEqual(self.pg.sessions_of(user), 0)
        self.assertEqual(self.s.put("sys/leases/lookup", {"lease_id": lease}).status, 400)

    def test_renew_extends_valid_until(self):
        path = self.mount()
        user, _, lease, _ = self.creds(path)
        q = ("SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '%s'"
             % user)
        before = int(self.pg.admin(q))
        r = self.s.put("sys/leases/renew", {"lease_id": lease, "increment": 7200})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["lease_duration"], 7200)
        after = int(self.pg.admin(q))
        self.assertAlmostEqual(after - before, 3600, delta=10)
        # through the CLI as well, capped by the role's max_ttl (24h)
        self.cli("lease", "renew", "-increment=48h", lease)
        capped = int(self.pg.admin(q))
        self.assertAlmostEqual(capped, time.time() + 24 * 3600, delta=60)

    def test_ttl_expiry_removes_the_user(self):
        path = self.mount()
        r = self.s.post(path + "/roles/readonly", {"default_ttl": "2s", "max_ttl": "10s"})
        self.assertEqual(r.status, 204, r)
        user, pw, lease, j = self.creds(path)
        self.assertEqual(j["lease_duration"], 2)
        self.assertEqual(self.pg.psql_as(user, pw, "SELECT 1")[0], 0)
        self.assertTrue(self.wait(lambda: not self.pg.role_exists(user), timeout=20),
                        "expired user still exists")
        self.assertNotEqual(self.pg.psql_as(user, pw, "SELECT 1")[0], 0)

    def test_default_revocation_clears_every_kind_of_privilege(self):
        """Grants in another schema, on sequences, functions, the schema and
        the database: the default revocation removes them all, or DROP ROLE
        would fail."""
        path = self.mount()
        self.pg.admin("CREATE SCHEMA IF NOT EXISTS app; CREATE TABLE IF NOT EXISTS app.t(id serial, v text); "
                      "CREATE OR REPLACE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", db="mydb")
        r = self.s.post(path + "/roles/app-wide", {
            "db_name": "postgresql",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}';",
                "GRANT USAGE ON SCHEMA app TO \"{{name}}\"; GRANT SELECT, INSERT ON app.t TO \"{{name}}\";",
                "GRANT UPDATE (v) ON app.t TO \"{{name}}\"; GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO \"{{name}}\";",
                "GRANT EXECUTE ON FUNCTION app.f() TO \"{{name}}\"; GRANT CONNECT, TEMP ON DATABASE mydb TO \"{{name}}\";"]})
        self.assertEqual(r.status, 204, r)
        user, pw, lease, _ = self.creds(path, "app-wide")
        self.assertEqual(self.pg.psql_as(user, pw, "INSERT INTO app.t(v) VALUES ('x') RETURNING app.f()")[:2],
                         (0, "1\nINSERT 0 1"))
        r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
        self.assertEqual(r.status, 204, r)
        self.assertFalse(self.pg.role_exists(user))

    def test_revoking_a_group_member_waits_for_no_grant(self):
        """The default revocation finds the role's privileges through
        pg_shdepend before it takes the ACL lock: a user that holds its
        privileges through a group role is revoked while another session
        holds that lock (a GRANT in flight), instead of queueing behind it."""
        path = self.mount()
        self.pg.admin("DO $$BEGIN CREATE ROLE readers2 NOLOGIN; EXCEPTION WHEN duplicate_object "
                      "THEN NULL; END$$")
        self.pg.admin("GRANT SELECT ON items TO readers2", db="mydb")
        r = self.s.post(path + "/roles/app-member", {
            "db_name": "postgresql",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' IN ROLE readers2"})
        self.assertEqual(r.status, 204, r)
        user, pw, lease, _ = self.creds(path, "app-member")
        self.assertEqual(self.pg.psql_as(user, pw, "SELECT count(*) FROM items")[:2], (0, "1"))
        holder = subprocess.Popen(["psql", "-h", self.pg.dir, "-p", str(self.pg.port), "-U", "postgres",
                                   "-d", "mydb", "-q", "-c",
                                   "SELECT pg_advisory_lock(7165064477935461940), pg_sleep(30)"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(self.wait(lambda: self.pg.admin(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "1", timeout=10))
            t0 = time.time()
            r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
            took = time.time() - t0
            self.assertEqual(r.status, 204, r)
            self.assertLess(took, 10, "the revocation waited for the ACL lock")
            self.assertFalse(self.pg.role_exists(user))
        finally:
            self.pg.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                          "'SELECT pg_advisory_lock(7165064477935461940)%'")
            holder.wait()

    def test_deleted_role_does_not_orphan_its_leases(self):
        path = self.mount()
        r = self.s.post(path + "/roles/app-custom", {
            "db_name": "postgresql", "creation_statements": GUIDE_CREATION,
            "revocation_statements": ["REVOKE ALL ON ALL TABLES IN SCHEMA public FROM \"{{name}}\"; "
                                      "DROP ROLE \"{{name}}\";"]})
        self.assertEqual(r.status, 204, r)
        user, _, lease, _ = self.creds(path, "app-custom")
        self.assertEqual(self.s.delete(path + "/roles/app-custom").status, 204)
        r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
        self.assertEqual(r.status, 204, r)
        self.assertFalse(self.pg.role_exists(user))

    def test_unmount_revokes_every_lease(self):
        DatabaseTest.n += 1
        path = "dbu%d" % self.n
        self.s.post("sys/mounts/" + path, {"type": "database"})
        self.s.post(path + "/config/postgresql", {"plugin_name": PLUGIN, "connection_url": self.url,
                                                  "allowed_roles": "*", "username": "vault",
                                                  "password": "vaultpassword"})
        self.s.post(path + "/roles/r", {"db_name": "postgresql", "creation_statements": GUIDE_CREATION})
        users = [self.s.get(path + "/creds/r").json()["data"]["username"] for _ in range(3)]
        self.assertTrue(all(self.pg.role_exists(u) for u in users))
        self.assertEqual(self.s.delete("sys/mounts/" + path).status, 204)
        self.assertTrue(self.wait(lambda: not any(self.pg.role_exists(u) for u in users)))

    # -- statements --
    def test_multiple_statements_quotes_and_a_failure_in_the_middle(self):
        path = self.mount()
        r = self.s.post(path + "/roles/app-quotes", {
            "db_name": "postgresql",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; "
                "COMMENT ON ROLE \"{{name}}\" IS 'it''s; a comment';",
                "GRANT SELECT ON items TO \"{{name}}\""]})
        self.assertEqual(r.status, 204, r)
        user, pw, _, _ = self.creds(path, "app-quotes")
        self.assertEqual(self.pg.admin("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                                       "WHERE rolname = '%s'" % user), "it's; a comment")
        self.assertEqual(self.pg.psql_as(user, pw, "SELECT count(*) FROM items")[1], "1")
        # the second statement fails: the first is rolled back, rollback_statements run
        self.pg.admin("CREATE TABLE IF NOT EXISTS rollback_log(who text)", db="mydb")
        r = self.s.post(path + "/roles/app-broken", {
            "db_name": "postgresql",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; "
                                   "GRANT SELECT ON no_such_table TO \"{{name}}\";",
            "rollback_statements": "INSERT INTO rollback_log VALUES ('{{name}}')"})
        self.assertEqual(r.status, 204, r)
        before = self.leases(path + "/creds/app-broken/")
        r = self.s.get(path + "/creds/app-broken")
        self.assertEqual(r.status, 500, r)
        msg = r.json()["errors"][0]
        self.assertIn("no_such_table", msg)
        who = self.pg.admin("SELECT who FROM rollback_log", db="mydb")
        self.assertTrue(who.startswith("v-root-app-brok"), who)
        self.assertFalse(self.pg.role_exists(who), "the failed creation was not rolled back")
        self.assertEqual(self.leases(path + "/creds/app-broken/"), before)

    def test_concurrent_creds_share_a_transaction_and_fail_alone(self):
        """Group commit: concurrent creds requests on one config run in one
        PostgreSQL transaction (the roles made together share
        txid_current()), yet a request whose statement fails (before or
        after a GRANT) fails alone, with its rollback_statements run and
        nothing of it left, while the others of its batch get working
        users and leases."""
        path = self.mount()
        self.pg.admin("CREATE TABLE IF NOT EXISTS batchlog(name text, tx bigint); "
                      "CREATE TABLE IF NOT EXISTS rollback_log2(who text)", db="mydb")
        roles = {
            # phase 1 (CREATE ROLE, the INSERT) then phase 2 (the GRANT)
            "app-batch": {"creation_statements":
                          "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
                          "'{{expiration}}'; INSERT INTO batchlog VALUES ('{{name}}', txid_current()); "
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";"},
            # fails in phase 2, after its CREATE ROLE
            "app-late": {"creation_statements":
                         "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; "
                         "GRANT SELECT ON no_such_table TO \"{{name}}\";",
                         "rollback_statements": "INSERT INTO rollback_log2 VALUES ('{{name}}')"},
            # fails in phase 1
            "app-early": {"creation_statements":
                          "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' IN ROLE no_such_group"},
        }
        for name, body in roles.items():
            r = self.s.post("%s/roles/%s" % (path, name), dict(body, db_name="postgresql"))
            self.assertEqual(r.status, 204, r)
        plan = ["app-batch", "app-batch", "app-late", "app-batch", "app-early", "app-batch"]
        results = []
        lock = threading.Lock()

        def worker():
            for role in plan:
                r = self.s.get("%s/creds/%s" % (path, role))
                with lock:
                    results.append((role, r))
        ths = [threading.Thread(target=worker) for _ in range(16)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        good = [r.json()["data"] for role, r in results if role == "app-batch" and r.status == 200]
        self.assertEqual(len(good), 16 * 4, [r.body[:200] for role, r in results
                                             if role == "app-batch" and r.status != 200][:3])
        for role, r in results:
            if role == "app-late":
                self.assertEqual(r.status, 500, r)
                self.assertIn("no_such_table", r.json()["errors"][0])
            elif role == "app-early":
                self.assertEqual(r.status, 500, r)
                self.assertIn("no_such_group", r.json()["errors"][0])
        users = {d["username"] for d in good}
        self.assertEqual(len(users), len(good), "a username was issued twice")
        logged = self.pg.admin("SELECT count(*), count(DISTINCT tx) FROM batchlog", db="mydb")
        rows, txns = map(int, logged.split("|"))
        self.assertEqual(rows, len(good), "each issued user is in its transaction's log once")
        self.assertLessEqual(txns, rows * 3 // 4,
                             "%d users from %d transactions: no group commit" % (rows, txns))
        have = int(self.pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-app-batc%'"))
        self.assertEqual(have, len(good))
        for d in good[:: len(good) // 4]:
            self.assertEqual(self.pg.psql_as(d["username"], d["password"], "SELECT count(*) FROM items")[:2],
                             (0, "1"))
        # the failed ones left nothing: no role, no lease; their rollback ran
        late = self.pg.admin("SELECT who FROM rollback_log2", db="mydb").split()
        self.assertEqual(len(late), 16)
        self.assertEqual(int(self.pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE "
                                           "'v-root-app-late%' OR rolname LIKE 'v-root-app-earl%'")), 0)
        self.assertEqual(self.leases(path + "/creds/app-late/"), set())
        self.assertEqual(self.leases(path + "/creds/app-early/"), set())
        self.assertEqual(len(self.leases(path + "/creds/app-batch/")), len(good))

    def test_failed_commit_fails_the_request_without_a_lease(self):
        """A creation whose COMMIT fails (a deferred constraint) is an error
        with PostgreSQL's message: no user, no lease."""
        path = self.mount()
        self.pg.admin("CREATE TABLE IF NOT EXISTS parent(id int PRIMARY KEY); "
                      "CREATE TABLE IF NOT EXISTS child(pid int REFERENCES parent "
                      "DEFERRABLE INITIALLY DEFERRED)", db="mydb")
        r = self.s.post(path + "/roles/app-defer", {
            "db_name": "postgresql",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; "
                                   "INSERT INTO child VALUES (42);"})
        self.assertEqual(r.status, 204, r)
        r = self.s.get(path + "/creds/app-defer")
        self.assertEqual(r.status, 500, r)
        msg = r.json()["errors"][0]
        self.assertIn("violates foreign key constraint", msg)
        self.assertNotIn("connecting", msg)
        self.assertEqual(int(self.pg.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE "
                                           "'v-root-app-defe%'")), 0)
        self.assertEqual(self.leases(path + "/creds/app-defer/"), set())
        self.assertEqual(self.creds(path)[0][:16], "v-root-readonly-")

    def test_scram_password_authentication(self):
        path = self.mount()
        r = self.s.post(path + "/config/postgresql", {"password_authentication": "scram-sha-256",
                                                      "username_template": "{{ printf \"app-%s-%s\" (.RoleName) (random 8) | lowercase }}"})
        self.assertEqual(r.status, 204, r)
        user, pw, _, _ = self.creds(path)
        self.assertRegex(user, r"^app-readonly-[a-z0-9]{8}$")
        stored = self.pg.admin("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % user)
        self.assertTrue(stored.startswith("SCRAM-SHA-256$4096:"), stored)
        self.assertEqual(self.pg.psql_as(user, pw, "SELECT 1")[:2], (0, "1"))

    def test_static_role_rotation_schedule(self):
        """rotation_schedule (cron, UTC) instead of rotation_period: the
        password changes at the next scheduled minute; Vault's refusals for
        mixing the two, a short window, or an unparsable schedule."""
        path = self.mount()
        self.pg.admin("CREATE ROLE app_sched LOGIN PASSWORD 'initial-pass'")
        base = {"db_name": "postgresql", "username": "app_sched"}
        bad = [({"rotation_schedule": "* * * * *", "rotation_period": "1h"}, "mutually exclusive"),
               ({}, "one of rotation_schedule or rotation_period must be provided"),
               ({"rotation_schedule": "61 * * * *"}, "could not parse rotation_schedule: minute"),
               ({"rotation_schedule": "* * * *"}, "could not parse rotation_schedule"),
               ({"rotation_schedule": "* * * * *", "rotation_window": "10m"},
                "rotation_window must be 3600 seconds or more"),
               ({"rotation_period": "1h", "rotation_window": "2h"},
                "rotation_window is invalid with use of rotation_period")]
        for extra, msg in bad:
            r = self.s.post(path + "/static-roles/app-sched", dict(base, **extra))
            self.assertEqual(r.status, 400, (extra, r))
            self.assertIn(msg, r.json()["errors"][0], extra)
        r = self.s.post(path + "/static-roles/app-sched", dict(base, rotation_schedule="* * * * *",
                                                           rotation_window="1h"))
        self.assertEqual(r.status, 204, r)
        d = self.s.get(path + "/static-roles/app-sched").json()["data"]
        self.assertEqual((d["rotation_schedule"], d["rotation_window"]), ("* * * * *", 3600))
        self.assertNotIn("rotation_period", d)
        d = self.s.get(path + "/static-creds/app-sched").json()["data"]
        self.assertEqual(d["rotation_schedule"], "* * * * *")
        self.assertLessEqual(d["ttl"], 60)
        first = d["password"]
        self.assertEqual(self.pg.psql_as("app_sched", first, "SELECT 1")[0], 0)
        # the next whole minute rotates it (plus the periodic tick)
        self.assertTrue(self.wait(lambda: self.s.get(path + "/static-creds/app-sched").json()
                                  ["data"]["password"] != first, timeout=80),
                        "the scheduled rotation did not happen")
        new = self.s.get(path + "/static-creds/app-sched").json()["data"]["password"]
        self.assertEqual(self.pg.psql_as("app_sched", new, "SELECT 1")[0], 0)
        self.assertNotEqual(self.pg.psql_as("app_sched", first, "SELECT 1")[0], 0)
        # switching to a period drops the schedule and its window
        r = self.s.post(path + "/static-roles/app-sched", {"rotation_period": "1h"})
        self.assertEqual(r.status, 204, r)
        d = self.s.get(path + "/static-roles/app-sched").json()["data"]
        self.assertEqual(d["rotation_period"], 3600)
        self.assertNotIn("rotation_schedule", d)

    # -- root rotation --
    def test_rotate_root(self):
        self.pg.admin("CREATE ROLE rootrot LOGIN SUPERUSER PASSWORD 'rootrot-pass'")
        DatabaseTest.n += 1
        path = "dbr%d" % self.n
        self.s.post("sys/mounts/" + path, {"type": "database"})
        self.addCleanup(self.s.delete, "sys/mounts/" + path)
        r = self.s.post(path + "/config/pg", {"plugin_name": PLUGIN, "connection_url": self.url,
                                              "allowed_roles": ["*"], "username": "rootrot",
                                              "password": "rootrot-pass"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.pg.psql_as("rootrot", "rootrot-pass", "SELECT 1")[0], 0)
        r = self.s.post(path + "/rotate-root/pg")
        self.assertEqual(r.status, 204, r)
        rc, _, err = self.pg.psql_as("rootrot", "rootrot-pass", "SELECT 1")
        self.assertNotEqual(rc, 0, "the old root password still works")
        self.assertIn("password authentication failed", err)
        body = self.s.get(path + "/config/pg").body.decode()
        self.assertNotIn("password\"", body.replace("password_policy", "").replace(
            "password_authentication", ""))
        self.assertNotIn("rootrot-pass", body)
        # the engine still works with the new password, after a reset too
        self.s.post(path + "/roles/r", {"db_name": "pg", "creation_statements": GUIDE_CREATION})
        self.assertEqual(self.s.get(path + "/creds/r").status, 200)
        self.assertEqual(self.s.post(path + "/reset/pg").status, 204)
        self.assertEqual(self.s.get(path + "/creds/r").status, 200)

    # -- static roles --
    def test_static_role_rotation(self):
        path = self.mount()
        self.pg.admin("CREATE ROLE app_static LOGIN PASSWORD 'initial-pass'")
        self.pg.admin("GRANT SELECT ON items TO app_static", db="mydb")
        r = self.s.post(path + "/static-roles/app-static", {"db_name": "postgresql",
                                                            "username": "app_static",
                                                            "rotation_period": "5s"})
        self.assertEqual(r.status, 204, r)
        self.assertNotEqual(self.pg.psql_as("app_static", "initial-pass", "SELECT 1")[0], 0,
                            "creating the static role did not rotate the password")
        r = self.s.get(path + "/static-creds/app-static")
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["username"], "app_static")
        self.assertEqual(d["rotation_period"], 5)
        self.assertLessEqual(d["ttl"], 5)
        self.assertIn("T", d["last_vault_rotation"])
        self.assertEqual(self.pg.psql_as("app_static", d["password"], "SELECT count(*) FROM items")[1], "1")
        r = self.s.get(path + "/static-roles/app-static")
        self.assertNotIn("password", r.json()["data"])
        # rotate-role: a new password now, the old one fails
        self.assertEqual(self.s.post(path + "/rotate-role/app-static").status, 204)
        d2 = self.s.get(path + "/static-creds/app-static").json()["data"]
        self.assertNotEqual(d2["password"], d["password"])
        self.assertNotEqual(self.pg.psql_as("app_static", d["password"], "SELECT 1")[0], 0)
        self.assertEqual(self.pg.psql_as("app_static", d2["password"], "SELECT 1")[0], 0)
        # on schedule: the periodic hook (once a minute) rotates it
        self.assertTrue(self.wait(lambda: self.s.get(path + "/static-creds/app-static")
                                  .json()["data"]["password"] != d2["password"], timeout=75),
                        "the static role was never rotated on schedule")
        d3 = self.s.get(path + "/static-creds/app-static").json()["data"]
        self.assertEqual(self.pg.psql_as("app_static", d3["password"], "SELECT 1")[0], 0)
        r = self.s.post(path + "/static-roles/app-static", {"username": "someone_else"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("username", r.json()["errors"][0])

    # -- bad input and outages --
    def test_bad_input_names_the_problem(self):
        path = self.mount()
        s = self.s
        r = s.post(path + "/config/x", {"plugin_name": "mysql-database-plugin", "connection_url": self.url})
        self.assertEqual(r.status, 400, r)
        self.assertIn("mysql-database-plugin", r.json()["errors"][0])
        r = s.post(path + "/config/x", {"connection_url": self.url})
        self.assertEqual(r.status, 400, r)
        self.assertIn("plugin_name", r.json()["errors"][0])
        r = s.post(path + "/config/x", {"plugin_name": PLUGIN})
        self.assertEqual(r.status, 400, r)
        self.assertIn("connection_url", r.json()["errors"][0])
        r = s.post(path + "/config/x", {"plugin_name": PLUGIN, "connection_url": self.url,
                                        "username": "vault", "password": "wrong-secret-pw"})
        self.assertEqual(r.status, 400, r)
        msg = r.json()["errors"][0]
        self.assertIn("error verifying connection", msg)
        self.assertIn("password authentication failed", msg)
        self.assertNotIn("wrong-secret-pw", msg)
        r = s.post(path + "/config/x", {"plugin_name": PLUGIN, "connection_url": self.url,
                                        "username": "vault", "password": "p",
                                        "password_authentication": "md5"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("password_authentication", r.json()["errors"][0])
        self.assertEqual(s.get(path + "/config/x").status, 404)
        # a role the connection does not allow
        s.post(path + "/roles/other", {"db_name": "postgresql", "creation_statements": GUIDE_CREATION})
        r = s.get(path + "/creds/other")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"], ['"other" is not an allowed role'])
        r = s.get(path + "/creds/nope")
        self.assertEqual((r.status, r.json()["errors"]), (400, ["unknown role: nope"]))
        r = s.post(path + "/roles/bad", {"db_name": "postgresql"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("creation_statements", r.json()["errors"][0])
        r = s.post(path + "/roles/bad", {"db_name": "postgresql", "creation_statements": "x",
                                         "credential_type": "rsa_private_key"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("credential_type", r.json()["errors"][0])
        r = s.post(path + "/config/postgresql", {"username_template": "{{ nosuchfn 3 }}"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("nosuchfn", r.json()["errors"][0])
        # a literal password in the URL: warned about and never read back
        r = s.post(path + "/config/lit", {"plugin_name": PLUGIN, "verify_connection": False,
                                          "connection_url": "postgresql://vault:s3cr3t-lit@127.0.0.1:1/x"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("Password found in connection_url", r.json()["warnings"][0])
        body = s.get(path + "/config/lit").body.decode()
        self.assertNotIn("s3cr3t-lit", body)
        self.assertIn("postgresql://vault:*****@127.0.0.1:1/x", body)
        # listing
        keys = s.list(path + "/config").json()["data"]["keys"]
        self.assertEqual(sorted(keys), ["lit", "postgresql"])
        self.assertIn("readonly", s.list(path + "/roles").json()["data"]["keys"])
        self.assertEqual(s.delete(path + "/config/lit").status, 204)
        self.assertEqual(s.get(path + "/config/lit").status, 404)

    def test_postgres_down_at_creds_and_revoke(self):
        path = self.mount()
        user, pw, lease, _ = self.creds(path)
        before = self.leases(path + "/creds/readonly/")
        self.pg.stop()
        try:
            r = self.s.get(path + "/creds/readonly")
            self.assertEqual(r.status, 500, r)
            self.assertIn("connect", r.json()["errors"][0])
            self.assertNotIn("vaultpassword", r.body.decode())
            self.assertEqual(self.leases(path + "/creds/readonly/"), before, "a lease was created")
            # a synchronous revoke while down fails with the driver's message
            r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
            self.assertEqual(r.status, 500, r)
            self.assertIn("Connection refused", r.json()["errors"][0])
            # in the background: accepted, kept, retried with backoff
            r = self.s.put("sys/leases/revoke", {"lease_id": lease, "sync": False})
            self.assertIn(r.status, (202, 204), r)
            time.sleep(1.5)
            self.assertEqual(self.s.put("sys/leases/lookup", {"lease_id": lease}).status, 200,
                             "the lease vanished although its user could not be dropped")
        finally:
            self.pg.start_again()
        self.assertTrue(self.wait(lambda: not self.pg.role_exists(user), timeout=30),
                        "the revoke was not retried once PostgreSQL came back")
        self.assertTrue(self.wait(lambda: self.s.put("sys/leases/lookup", {"lease_id": lease}).status == 400))
        self.assertEqual(self.creds(path)[0][:16], "v-root-readonly-")

    def test_no_connection_leak(self):
        path = self.mount()
        for _ in range(60):
            self.creds(path)
        self.s.put("sys/leases/revoke-prefix/" + path + "/creds/readonly", {"sync": True})
        n = int(self.pg.admin("SELECT count(*) FROM pg_stat_activity WHERE usename = 'vault'"))
        self.assertLessEqual(n, 4 * 3, "connections of vault: %d" % n)  # 4 per pool, a few pools

    # -- restarts --
    def test_restart_keeps_leases_and_static_roles(self):
        """A file-storage server restarted (and unsealed again) still revokes
        the leases it issued and serves the static role's stored password."""
        srv = Server().start().init_unseal()
        try:
            srv.post("sys/mounts/database", {"type": "database"})
            r = srv.post("database/config/postgresql", {
                "plugin_name": PLUGIN, "connection_url": self.url, "allowed_roles": "*",
                "username": "vault", "password": "vaultpassword"})
            self.assertEqual(r.status, 204, r)
            srv.post("database/roles/readonly", {"db_name": "postgresql",
                                                 "creation_statements": GUIDE_CREATION})
            self.pg.admin("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'restart_st') "
                          "THEN CREATE ROLE restart_st LOGIN; END IF; END$$")
            r = srv.post("database/static-roles/st", {"db_name": "postgresql", "username": "restart_st",
                                                      "rotation_period": "1h"})
            self.assertEqual(r.status, 204, r)
            j = srv.get("database/creds/readonly").json()
            user, lease = j["data"]["username"], j["lease_id"]
            st = srv.get("database/static-creds/st").json()["data"]
            srv.stop()
            srv.start()
            srv.unseal(srv.keys[:1])
            st2 = srv.get("database/static-creds/st").json()["data"]
            self.assertEqual(st2["password"], st["password"])
            self.assertEqual(st2["last_vault_rotation"], st["last_vault_rotation"])
            self.assertEqual(self.pg.psql_as("restart_st", st2["password"], "SELECT 1")[0], 0)
            r = srv.put("sys/leases/revoke", {"lease_id": lease, "sync": True})
            self.assertEqual(r.status, 204, r)
            self.assertFalse(self.pg.role_exists(user))
        finally:
            srv.cleanup()

    def test_rotate_root_interrupted_by_a_crash(self):
        """kill -9 while PostgreSQL runs the root rotation: after the restart
        the engine works with whichever password PostgreSQL accepts."""
        import threading
        self.pg.admin("CREATE ROLE rootcrash LOGIN SUPERUSER PASSWORD 'rootcrash-pass'")
        srv = Server().start().init_unseal()
        try:
            srv.post("sys/mounts/database", {"type": "database"})
            r = srv.post("database/config/pg", {
                "plugin_name": PLUGIN, "connection_url": self.url, "allowed_roles": "*",
                "username": "rootcrash", "password": "rootcrash-pass",
                "root_rotation_statements": ["SELECT pg_sleep(3)",
                                             "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}'"]})
            self.assertEqual(r.status, 204, r)
            srv.post("database/roles/r", {"db_name": "pg", "creation_statements": GUIDE_CREATION})
            t = threading.Thread(target=lambda: self.assertRaises(Exception, srv.post, "database/rotate-root/pg"))
            t.start()
            time.sleep(1)
            srv.kill9()
            t.join()
            srv.start()
            srv.unseal(srv.keys[:1])
            body = srv.get("database/config/pg").body.decode()
            self.assertNotIn("pending", body)
            self.assertEqual(srv.get("database/creds/r").status, 200)
            self.assertIn("an interrupted root rotation was dropped", srv.log())
            self.assertNotIn("rootcrash-pass", srv.log())
            self.assertEqual(self.pg.psql_as("rootcrash", "rootcrash-pass", "SELECT 1")[0], 0)
            # the pending password was dropped: a real rotation still works
            srv.post("database/config/pg", {"root_rotation_statements": []})
            self.assertEqual(srv.post("database/rotate-root/pg").status, 204)
            self.assertNotEqual(self.pg.psql_as("rootcrash", "rootcrash-pass", "SELECT 1")[0], 0)
            self.assertEqual(srv.get("database/creds/r").status, 200)
        finally:
            srv.cleanup()

    # -- hvac --
    def test_hvac_client(self):
        c = hvac.Client(url="http://" + self.s.addr, token="root")
        DatabaseTest.n += 1
        mp = "dbh%d" % self.n
        c.sys.enable_secrets_engine("database", path=mp)
        self.addCleanup(c.sys.disable_secrets_engine, mp)
        db = c.secrets.database
        self.pg.admin("CREATE ROLE hvacroot LOGIN SUPERUSER PASSWORD 'hvacroot-pass'")
        db.configure(name="pg", plugin_name=PLUGIN, allowed_roles=["ro", "st"], mount_point=mp,
                     connection_url=self.url, username="hvacroot", password="hvacroot-pass",
                     max_open_connections=2)
        conn = db.read_connection(name="pg", mount_point=mp)["data"]
        self.assertEqual(conn["plugin_name"], PLUGIN)
        self.assertEqual(conn["allowed_roles"], ["ro", "st"])
        self.assertEqual(conn["connection_details"]["max_open_connections"], 2)
        self.assertNotIn("password", conn["connection_details"])
        self.assertEqual(db.list_connections(mount_point=mp)["data"]["keys"], ["pg"])
        db.create_role(name="ro", db_name="pg", creation_statements=[GUIDE_CREATION],
                       default_ttl="30m", max_ttl="2h", mount_point=mp)
        role = db.read_role(name="ro", mount_point=mp)["data"]
        self.assertEqual((role["default_ttl"], role["max_ttl"]), (1800, 7200))
        self.assertEqual(role["creation_statements"], [GUIDE_CREATION])
        self.assertEqual(db.list_roles(mount_point=mp)["data"]["keys"], ["ro"])
        cred = db.generate_credentials(name="ro", mount_point=mp)
        self.assertEqual(cred["lease_duration"], 1800)
        self.assertEqual(self.pg.psql_as(cred["data"]["username"], cred["data"]["password"],
                                         "SELECT name FROM items")[1], "one")
        c.sys.revoke_lease(cred["lease_id"])
        self.assertTrue(self.wait(lambda: not self.pg.role_exists(cred["data"]["username"])))
        self.pg.admin("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hvac_st') "
                      "THEN CREATE ROLE hvac_st LOGIN; END IF; END$$")
        db.create_static_role(name="st", db_name="pg", username="hvac_st",
                              rotation_statements=["ALTER USER \"{{name}}\" WITH PASSWORD '{{password}}';"],
                              rotation_period=3600, mount_point=mp)
        st = db.get_static_credentials(name="st", mount_point=mp)["data"]
        self.assertEqual(self.pg.psql_as("hvac_st", st["password"], "SELECT 1")[0], 0)
        self.assertEqual(db.list_static_roles(mount_point=mp)["data"]["keys"], ["st"])
        db.rotate_root_credentials(name="pg", mount_point=mp)
        self.assertNotEqual(self.pg.psql_as("hvacroot", "hvacroot-pass", "SELECT 1")[0], 0)
        self.assertEqual(db.generate_credentials(name="ro", mount_point=mp)["lease_duration"], 1800)
        c.sys.revoke_prefix(mp + "/creds/ro")
        db.delete_static_role(name="st", mount_point=mp)
        db.delete_role(name="ro", mount_point=mp)
        db.delete_connection(name="pg", mount_point=mp)
        self.assertEqual(self.s.get(mp + "/config/pg").status, 404)


if __name__ == "__main__":
    sys.exit(unittest.main())
