"""
test_password_policies.py - Vault's sys/policies/password API: write a
policy (HCL), read it back, list, generate passwords that follow every
rule, bad policies refused with a 400 naming the problem, delete; and the
database engine's `password_policy` naming a stored policy (the guide's
dynamic credentials follow it), against a real PostgreSQL.
"""
import string
import unittest

from harness import Server

POLICY = '''length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 2
}
rule "charset" {
  charset = "0123456789"
  min-chars = 3
}
rule "charset" {
  charset = "!@#"
  min-chars = 1
}
'''


class PasswordPolicies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server(storage="file").start()
        cls.s.init_unseal()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def test_api(self):
        s = self.s
        self.assertEqual(s.get("sys/policies/password/nope").status, 404)
        self.assertIn(s.put("sys/policies/password/strong", {"policy": POLICY}).status, (200, 204))
        self.assertEqual(s.get("sys/policies/password/strong").json()["data"]["policy"], POLICY)
        self.assertIn("strong", s.list("sys/policies/password").json()["data"]["keys"])
        alphabet = set(string.ascii_lowercase + string.digits + "!@#")
        for _ in range(20):
            pw = s.get("sys/policies/password/strong/generate").json()["data"]["password"]
            self.assertEqual(len(pw), 24)
            self.assertTrue(set(pw) <= alphabet, pw)
            self.assertGreaterEqual(sum(c.isdigit() for c in pw), 3)
            self.assertGreaterEqual(sum(c.islower() for c in pw), 2)
            self.assertGreaterEqual(sum(c in "!@#" for c in pw), 1)
        # bad policies: 400 naming the problem, nothing stored
        for bad, needle in (("length = 2\nrule \"charset\" {\n charset = \"ab\"\n min-chars = 5\n}\n", ""),
                            ("length = ", ""), ("", "missing policy")):
            r = s.put("sys/policies/password/bad", {"policy": bad})
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn(needle, r.json()["errors"][0])
        self.assertEqual(s.get("sys/policies/password/bad").status, 404)
        self.assertEqual(s.get("sys/policies/password/strong/generate", token="").status, 403)
        self.assertIn(s.delete("sys/policies/password/strong").status, (200, 204))
        self.assertEqual(s.get("sys/policies/password/strong/generate").status, 404)

    def test_database_engine_uses_a_named_policy(self):
        from pg_peer import PgPeer
        s = self.s
        pg = PgPeer().start()
        self.addCleanup(pg.cleanup)
        pg.admin("CREATE ROLE vault LOGIN SUPERUSER PASSWORD 'vaultpassword'")
        self.assertIn(s.put("sys/policies/password/db", {"policy": POLICY}).status, (200, 204))
        self.assertIn(s.post("sys/mounts/database", {"type": "database"}).status, (200, 204))
        url = "postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable" % pg.port
        r = s.put("database/config/pg", {"plugin_name": "postgresql-database-plugin", "connection_url": url,
                                          "allowed_roles": "*", "username": "vault",
                                          "password": "vaultpassword", "password_policy": "db"})
        self.assertIn(r.status, (200, 204), r)
        r = s.put("database/roles/ro", {"db_name": "pg", "creation_statements":
                                        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                                        "VALID UNTIL '{{expiration}}';", "default_ttl": "1h"})
        self.assertIn(r.status, (200, 204), r)
        pw = s.get("database/creds/ro").json()["data"]["password"]
        self.assertEqual(len(pw), 24)
        self.assertGreaterEqual(sum(c.isdigit() for c in pw), 3)
        # a name that does not exist is refused at config time
        r = s.put("database/config/pg2", {"plugin_name": "postgresql-database-plugin", "connection_url": url,
                                           "username": "vault", "password": "vaultpassword",
                                           "password_policy": "missing", "verify_connection": False})
        self.assertEqual(r.status, 400)
        self.assertIn('password_policy "missing"', r.json()["errors"][0])


if __name__ == "__main__":
    unittest.main()
