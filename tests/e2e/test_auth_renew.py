"""
Renewing a login token asks the auth method that issued it (Vault's
auth renew): a userpass token stops renewing once its user is deleted or its
policies change; an approle token once its role is deleted.
"""
import unittest

from harness import Server


class AuthRenewTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server().start().init_unseal()
        cls.s.post("sys/auth/userpass", {"type": "userpass"})
        cls.s.post("sys/auth/approle", {"type": "approle"})

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def login(self, user):
        r = self.s.post("auth/userpass/login/" + user, {"password": "pw-" + user}, token="")
        self.assertEqual(r.status, 200, r)
        return r.json()["auth"]["client_token"]

    def test_userpass_renew_follows_user(self):
        s = self.s
        s.post("auth/userpass/users/ren1", {"password": "pw-ren1", "token_policies": "default",
                                            "token_ttl": "10m", "token_max_ttl": "1h"})
        t = self.login("ren1")
        r = s.post("auth/token/renew-self", {"increment": "30m"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(1700 <= r.json()["auth"]["lease_duration"] <= 1800)
        # policies changed -> no renewal
        s.post("auth/userpass/users/ren1/policies", {"token_policies": "default,other"})
        r = s.post("auth/token/renew-self", {}, token=t)
        self.assertIn(r.status, (400, 403), r)
        self.assertIn("policies have changed", r.json()["errors"][0])
        # deleted user -> no renewal
        s.post("auth/userpass/users/ren2", {"password": "pw-ren2"})
        t2 = self.login("ren2")
        s.delete("auth/userpass/users/ren2")
        r = s.post("auth/token/renew-self", {}, token=t2)
        self.assertIn(r.status, (400, 403), r)
        self.assertIn("no longer exists", r.json()["errors"][0])

    def test_approle_renew_follows_role(self):
        s = self.s
        s.post("auth/approle/role/r1", {"token_ttl": "10m", "token_max_ttl": "1h"})
        rid = s.get("auth/approle/role/r1/role-id").json()["data"]["role_id"]
        sid = s.post("auth/approle/role/r1/secret-id").json()["data"]["secret_id"]
        r = s.post("auth/approle/login", {"role_id": rid, "secret_id": sid}, token="")
        self.assertEqual(r.status, 200, r)
        t = r.json()["auth"]["client_token"]
        self.assertEqual(s.post("auth/token/renew-self", {}, token=t).status, 200)
        s.delete("auth/approle/role/r1")
        r = s.post("auth/token/renew-self", {}, token=t)
        self.assertIn(r.status, (400, 403), r)


if __name__ == "__main__":
    unittest.main()
