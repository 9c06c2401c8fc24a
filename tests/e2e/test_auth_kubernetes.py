#!/usr/bin/env python3
"""tests/e2e/test_auth_kubernetes.py - the kubernetes auth method end to end.

The real `coffer` binary (dev mode) talks HTTPS to k8s_peer.K8sPeer, a local
TokenReview endpoint that validates real RS256/ES256 service account JWTs
signed by keys made at test time. Covers: a good login (policies, metadata,
lease), projected tokens with audiences, early rejection of the wrong
namespace/name, expired and forged JWTs, deleted service accounts, a bad
reviewer token, an unreachable API server and a wrong CA, local signature
verification with pem_keys (including the HS256 algorithm-confusion
forgery), and the seed runbook's CLI lines.

    COFFER_BIN=build/coffer /usr/bin/python3 tests/e2e/test_auth_kubernetes.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from k8s_peer import K8sPeer, make_ca_and_server_cert, free_port, b64url  # noqa: E402

import hashlib  # noqa: E402
import hmac  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

META_KEYS = {"role", "service_account_name", "service_account_namespace",
             "service_account_secret_name", "service_account_uid"}


class KubernetesAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-e2e-k8s-")
        cls.peer = K8sPeer(cls._mkdir("peer")).start()
        cls.reviewer_jwt = cls.peer.sa_token("kube-system", "vault-reviewer")
        cls.peer.reviewers = {("kube-system", "vault-reviewer"), ("default", "app")}
        cls.srv = harness.Server(dev=True).start()
        s = cls.srv
        assert s.post("sys/auth/kubernetes", {"type": "kubernetes"}).status == 204
        r = s.post("auth/kubernetes/config", {
            "kubernetes_host": cls.peer.url,
            "kubernetes_ca_cert": cls.peer.ca_pem(),
            "token_reviewer_jwt": cls.reviewer_jwt,
            "disable_local_ca_jwt": True,
        })
        assert r.status in (200, 204), r
        r = s.post("auth/kubernetes/role/demo", {
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default", "team-*"],
            "token_policies": ["dev", "prod"],
            "token_ttl": "1h", "token_max_ttl": "2h",
        })
        assert r.status in (200, 204), r

    @classmethod
    def _mkdir(cls, name):
        d = os.path.join(cls.tmp, name)
        os.makedirs(d, exist_ok=True)
        return d

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.peer.stop()

    def login(self, jwt, role="demo", mount="kubernetes"):
        n = len(self.peer.requests)
        r = self.srv.post("auth/%s/login" % mount, {"role": role, "jwt": jwt}, token="")
        return r, self.peer.requests[n:]

    def assert_error(self, r, status, text):
        self.assertEqual(r.status, status, r)
        j = r.json()
        self.assertNotIn("auth", j or {})
        self.assertTrue(any(text in e for e in j["errors"]), (text, j))
        # no secret ever comes back in an error
        self.assertNotIn(self.reviewer_jwt.encode(), r.body)
        self.assertNotIn(b"eyJ", r.body)

    # -- happy paths --
    def test_login_legacy_token(self):
        sa = self.peer.add_sa("default", "app")
        jwt = self.peer.sa_token("default", "app")
        r, reqs = self.login(jwt)
        self.assertEqual(r.status, 200, r)
        auth = r.json()["auth"]
        self.assertTrue(auth["client_token"])
        self.assertEqual(sorted(auth["policies"]), ["default", "dev", "prod"])
        self.assertEqual(sorted(auth["token_policies"]), ["default", "dev", "prod"])
        self.assertEqual(set(auth["metadata"]), META_KEYS)
        self.assertEqual(auth["metadata"]["role"], "demo")
        self.assertEqual(auth["metadata"]["service_account_name"], "app")
        self.assertEqual(auth["metadata"]["service_account_namespace"], "default")
        self.assertEqual(auth["metadata"]["service_account_uid"], sa.uid)
        self.assertEqual(auth["metadata"]["service_account_secret_name"], sa.secret_name)
        self.assertEqual(auth["lease_duration"], 3600)
        self.assertTrue(auth["renewable"])
        # the peer saw one TokenReview, authenticated by the reviewer JWT
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0]["bearer"], self.reviewer_jwt)
        self.assertEqual(reqs[0]["body"]["kind"], "TokenReview")
        self.assertEqual(reqs[0]["body"]["apiVersion"], "authentication.k8s.io/v1")
        self.assertEqual(reqs[0]["body"]["spec"]["token"], jwt)
        # the token works and carries the metadata
        look = self.srv.get("auth/token/lookup-self", token=auth["client_token"])
        self.assertEqual(look.status, 200, look)
        d = look.json()["data"]
        self.assertEqual(d["meta"]["service_account_uid"], sa.uid)
        self.assertEqual(d["display_name"], "kubernetes-default-app")
        self.assertEqual(d["path"], "auth/kubernetes/login")

    def test_login_projected_es256_with_audience_and_glob_namespace(self):
        s = self.srv
        r = s.post("auth/kubernetes/role/aud", {
            "bound_service_account_names": "app,worker",
            "bound_service_account_namespaces": "team-*",
            "audience": "vault", "policies": "reader",
            "alias_name_source": "serviceaccount_name"})
        self.assertEqual(r.status, 204, r)
        sa = self.peer.add_sa("team-blue", "worker")
        jwt = self.peer.sa_token("team-blue", "worker", projected=True, alg="ES256", aud=["vault", "x"])
        r, reqs = self.login(jwt, role="aud")
        self.assertEqual(r.status, 200, r)
        auth = r.json()["auth"]
        self.assertIn("reader", auth["policies"])
        self.assertEqual(auth["metadata"]["service_account_uid"], sa.uid)
        self.assertEqual(auth["metadata"]["service_account_secret_name"], "")
        self.assertEqual(reqs[0]["body"]["spec"]["audiences"], ["vault"])
        # a token for another audience is refused before any TokenReview
        jwt = self.peer.sa_token("team-blue", "worker", projected=True, aud=["other"])
        r, reqs = self.login(jwt, role="aud")
        self.assert_error(r, 403, "aud")
        self.assertEqual(reqs, [])
        # the role read shows the deprecated name it was written with
        d = s.get("auth/kubernetes/role/aud").json()["data"]
        self.assertEqual(d["policies"], ["reader"])
        self.assertEqual(d["token_policies"], ["reader"])
        self.assertEqual(d["bound_service_account_names"], ["app", "worker"])
        self.assertEqual(d["alias_name_source"], "serviceaccount_name")

    def test_projected_token_without_role_audience(self):
        # no audience on the role: Coffer asks the API server for the
        # token's own audiences (Vault's behaviour), which it grants
        self.peer.add_sa("default", "app")
        jwt = self.peer.sa_token("default", "app", projected=True, aud=["somewhere-else"])
        r, reqs = self.login(jwt)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(reqs[0]["body"]["spec"]["audiences"], ["somewhere-else"])

    # -- early rejection on the (untrusted) claims --
    def test_wrong_namespace(self):
        jwt = self.peer.sa_token("kube-system", "app")
        r, reqs = self.login(jwt)
        self.assert_error(r, 403, "namespace not authorized")
        self.assertEqual(reqs, [])

    def test_wrong_name(self):
        jwt = self.peer.sa_token("default", "intruder")
        r, reqs = self.login(jwt)
        self.assert_error(r, 403, "service account name not authorized")
        self.assertEqual(reqs, [])

    def test_expired_jwt(self):
        self.peer.add_sa("default", "app")
        # long expired: refused locally
        jwt = self.peer.sa_token("default", "app", projected=True, exp_in=-3600)
        r, reqs = self.login(jwt)
        self.assert_error(r, 403, "expired")
        self.assertEqual(reqs, [])
        # expired within Coffer's clock-skew leeway: the API server refuses
        jwt = self.peer.sa_token("default", "app", projected=True, exp_in=-30)
        r, reqs = self.login(jwt)
        self.assert_error(r, 403, "lookup failed: [invalid bearer token, service account token has expired]")
        self.assertEqual(len(reqs), 1)

    def test_bad_signature(self):
        self.peer.add_sa("default", "app")
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwt = self.peer.sa_token("default", "app", key=forger)
        r, reqs = self.login(jwt)
        self.assert_error(r, 403, "lookup failed: [invalid bearer token")
        self.assertEqual(len(reqs), 1)

    def test_garbage_jwt(self):
        r, reqs = self.login("not-a-jwt")
        self.assert_error(r, 403, "malformed token")
        r, reqs = self.login("")
        self.assert_error(r, 400, "missing jwt")

    def test_deleted_service_account(self):
        self.peer.add_sa("default", "gone")
        self.srv.post("auth/kubernetes/role/gone", {"bound_service_account_names": "gone",
                                                    "bound_service_account_namespaces": "default"})
        jwt = self.peer.sa_token("default", "gone")
        self.assertEqual(self.login(jwt, role="gone")[0].status, 200)
        self.peer.delete_sa("default", "gone")
        r, _ = self.login(jwt, role="gone")
        self.assert_error(r, 403, 'serviceaccounts "gone" not found')

    def test_missing_role(self):
        r, reqs = self.login(self.peer.sa_token("default", "app"), role="nope")
        self.assert_error(r, 400, 'invalid role name "nope"')
        r, reqs = self.login(self.peer.sa_token("default", "app"), role="")
        self.assert_error(r, 400, "missing role")

    # -- configuration problems --
    def mount(self, path, **config):
        r = self.srv.post("sys/auth/" + path, {"type": "kubernetes"})
        self.assertEqual(r.status, 204, r)
        config.setdefault("disable_local_ca_jwt", True)
        r = self.srv.post("auth/%s/config" % path, config)
        self.assertIn(r.status, (200, 204), r)
        r = self.srv.post("auth/%s/role/demo" % path, {"bound_service_account_names": "*",
                                                       "bound_service_account_namespaces": "*",
                                                       "policies": "dev"})
        self.assertIn(r.status, (200, 204), r)

    def test_api_server_unreachable(self):
        port = free_port()
        self.mount("k8s-down", kubernetes_host="https://127.0.0.1:%d" % port,
                   kubernetes_ca_cert=self.peer.ca_pem(), token_reviewer_jwt=self.reviewer_jwt)
        t0 = time.time()
        r, _ = self.login(self.peer.sa_token("default", "app"), mount="k8s-down")
        self.assert_error(r, 500, "could not reach the Kubernetes API server at https://127.0.0.1:%d" % port)
        self.assertLess(time.time() - t0, 12)

    def test_wrong_ca(self):
        other_ca, _, _ = make_ca_and_server_cert(self._mkdir("other-ca"), prefix="other-")
        with open(other_ca) as f:
            self.mount("k8s-wrongca", kubernetes_host=self.peer.url, kubernetes_ca_cert=f.read(),
                       token_reviewer_jwt=self.reviewer_jwt)
        r, reqs = self.login(self.peer.sa_token("default", "app"), mount="k8s-wrongca")
        self.assert_error(r, 500, "TLS connection to the Kubernetes API server")
        self.assertIn("kubernetes_ca_cert", r.json()["errors"][0])
        self.assertEqual(reqs, [])

    def test_bad_reviewer_token(self):
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        from k8s_peer import sign_jwt
        bad = sign_jwt({}, {"iss": "kubernetes/serviceaccount", "sub": "x"}, forger, "RS256")
        self.mount("k8s-badrev", kubernetes_host=self.peer.url, kubernetes_ca_cert=self.peer.ca_pem(),
                   token_reviewer_jwt=bad)
        r, reqs = self.login(self.peer.sa_token("default", "app"), mount="k8s-badrev")
        self.assert_error(r, 403, "service account unauthorized")
        self.assertEqual(reqs[0]["bearer"], bad)

    def test_opaque_reviewer_token(self):
        """A reviewer token that is not a JWT is taken as Vault takes it: sent
        as the bearer to TokenReview; the API server decides."""
        # unknown to the API server: config accepts it, login fails with Vault's error
        self.mount("k8s-opaque-bad", kubernetes_host=self.peer.url,
                   kubernetes_ca_cert=self.peer.ca_pem(), token_reviewer_jwt="not-a-jwt-token")
        r, reqs = self.login(self.peer.sa_token("default", "app"), mount="k8s-opaque-bad")
        self.assert_error(r, 403, "lookup failed: service account unauthorized")
        self.assertEqual(reqs[0]["bearer"], "not-a-jwt-token")
        # a static token the API server knows (trailing newline of a token file trimmed)
        self.peer.static_tokens.add("opaque-static-reviewer-0123456789")
        self.mount("k8s-opaque", kubernetes_host=self.peer.url, kubernetes_ca_cert=self.peer.ca_pem(),
                   token_reviewer_jwt="opaque-static-reviewer-0123456789\n")
        r, reqs = self.login(self.peer.sa_token("default", "app"), mount="k8s-opaque")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["auth"]["client_token"])
        self.assertEqual(reqs[0]["bearer"], "opaque-static-reviewer-0123456789")
        # never echoed back by a config read
        d = self.srv.get("auth/k8s-opaque/config").json()["data"]
        self.assertNotIn("token_reviewer_jwt", d)
        self.assertTrue(d["disable_local_ca_jwt"])

    def test_reviewer_without_permission(self):
        self.peer.add_sa("default", "nobody")
        weak = self.peer.sa_token("default", "nobody")
        self.mount("k8s-norbac", kubernetes_host=self.peer.url, kubernetes_ca_cert=self.peer.ca_pem(),
                   token_reviewer_jwt=weak)
        r, _ = self.login(self.peer.sa_token("default", "app"), mount="k8s-norbac")
        self.assert_error(r, 500, "answered HTTP 403: tokenreviews.authentication.k8s.io is forbidden")

    def test_no_reviewer_uses_client_jwt(self):
        self.mount("k8s-self", kubernetes_host=self.peer.url, kubernetes_ca_cert=self.peer.ca_pem())
        self.peer.add_sa("default", "app")
        jwt = self.peer.sa_token("default", "app")
        r, reqs = self.login(jwt, mount="k8s-self")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(reqs[0]["bearer"], jwt)

    def test_not_configured(self):
        self.assertEqual(self.srv.post("sys/auth/k8s-empty", {"type": "kubernetes"}).status, 204)
        self.srv.post("auth/k8s-empty/role/demo", {"bound_service_account_names": "*",
                                                   "bound_service_account_namespaces": "*"})
        r, _ = self.login(self.peer.sa_token("default", "app"), mount="k8s-empty")
        self.assert_error(r, 500, "could not load backend configuration")
        self.assertEqual(self.srv.get("auth/k8s-empty/config").status, 404)

    # -- pem_keys: local signature verification --
    def test_pem_keys(self):
        self.mount("k8s-pem", kubernetes_host=self.peer.url, kubernetes_ca_cert=self.peer.ca_pem(),
                   token_reviewer_jwt=self.reviewer_jwt,
                   pem_keys=[self.peer.public_key_pem("rsa"), self.peer.public_key_pem("ec")])
        self.peer.add_sa("default", "app")
        r, reqs = self.login(self.peer.sa_token("default", "app"), mount="k8s-pem")
        self.assertEqual(r.status, 200, r)
        r, reqs = self.login(self.peer.sa_token("default", "app", projected=True, alg="ES256"), mount="k8s-pem")
        self.assertEqual(r.status, 200, r)
        # a forged signature never reaches the API server
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r, reqs = self.login(self.peer.sa_token("default", "app", key=forger), mount="k8s-pem")
        self.assert_error(r, 403, "signature")
        self.assertEqual(reqs, [])
        # algorithm confusion: HS256 keyed with the public RSA PEM
        pem = self.peer.public_key_pem("rsa").encode()
        h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        good = self.peer.sa_token("default", "app")
        p = good.split(".")[1]
        mac = hmac.new(pem, (h + "." + p).encode(), hashlib.sha256).digest()
        r, reqs = self.login(h + "." + p + "." + b64url(mac), mount="k8s-pem")
        self.assert_error(r, 403, "algorithm")
        self.assertEqual(reqs, [])
        # alg none
        h = b64url(json.dumps({"alg": "none"}).encode())
        r, reqs = self.login(h + "." + p + ".", mount="k8s-pem")
        self.assert_error(r, 403, "algorithm")
        # config read shows the keys, never the reviewer JWT
        d = self.srv.get("auth/k8s-pem/config").json()["data"]
        self.assertEqual(len(d["pem_keys"]), 2)
        self.assertNotIn("token_reviewer_jwt", d)

    def test_config_and_role_api(self):
        s = self.srv
        r = s.get("auth/kubernetes/config")
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual(d["kubernetes_host"], self.peer.url)
        self.assertEqual(d["kubernetes_ca_cert"], self.peer.ca_pem())
        self.assertNotIn("token_reviewer_jwt", d)
        self.assertNotIn(self.reviewer_jwt.encode(), r.body)
        self.assertEqual(d["disable_local_ca_jwt"], True)
        self.assertIn("issuer", d)
        # bad configs
        self.assertEqual(s.post("sys/auth/k8s-cfg", {"type": "kubernetes"}).status, 204)
        r = s.post("auth/k8s-cfg/config", {"kubernetes_ca_cert": self.peer.ca_pem()})
        self.assert_error(r, 400, "no host provided")
        r = s.post("auth/k8s-cfg/config", {"kubernetes_host": self.peer.url, "pem_keys": ["junk"]})
        self.assert_error(r, 400, "data does not contain any valid RSA or ECDSA public keys")
        r = s.post("auth/k8s-cfg/config", {"kubernetes_host": self.peer.url, "token_reviewer_jwt": "ab c"})
        self.assert_error(r, 400, "token_reviewer_jwt must not contain whitespace")
        r = s.post("auth/k8s-cfg/config", {"kubernetes_host": self.peer.url, "kubernetes_ca_cert": "junk"})
        self.assert_error(r, 400, "kubernetes_ca_cert")
        # roles
        r = s.post("auth/kubernetes/role/bad", {"bound_service_account_names": "a"})
        self.assert_error(r, 400, "bound_service_account_namespaces")
        r = s.post("auth/kubernetes/role/bad", {"bound_service_account_namespaces": "a"})
        self.assert_error(r, 400, "bound_service_account_names")
        r = s.post("auth/kubernetes/role/bad", {"bound_service_account_names": "*,a",
                                                "bound_service_account_namespaces": "a"})
        self.assert_error(r, 400, 'can not mix "*" with values')
        r = s.post("auth/kubernetes/role/bad", {"bound_service_account_names": "a",
                                                "bound_service_account_namespaces": "a",
                                                "alias_name_source": "pod"})
        self.assert_error(r, 400, "alias_name_source")
        r = s.post("auth/kubernetes/role/bad", {"bound_service_account_names": "a",
                                                "bound_service_account_namespaces": "a",
                                                "token_ttl": "2h", "token_max_ttl": "1h"})
        self.assert_error(r, 400, "token ttl should not be greater than token max ttl")
        r = s.post("auth/kubernetes/role/Tmp", {"bound_service_account_names": "a",
                                                "bound_service_account_namespaces": "b"})
        self.assertEqual(r.status, 200, r)  # 200: it carries a warning
        self.assertIn("audience", r.json()["warnings"][0])
        d = s.get("auth/kubernetes/role/tmp").json()["data"]
        self.assertEqual(d["bound_service_account_namespaces"], ["b"])
        self.assertEqual(d["alias_name_source"], "serviceaccount_uid")
        self.assertEqual(d["token_type"], "default")
        self.assertNotIn("policies", d)
        # partial update keeps other fields
        self.assertIn(s.post("auth/kubernetes/role/tmp", {"token_ttl": 60}).status, (200, 204))
        d = s.get("auth/kubernetes/role/tmp").json()["data"]
        self.assertEqual(d["token_ttl"], 60)
        self.assertEqual(d["bound_service_account_names"], ["a"])
        keys = s.list("auth/kubernetes/role").json()["data"]["keys"]
        self.assertIn("demo", keys)
        self.assertIn("tmp", keys)
        self.assertEqual(s.delete("auth/kubernetes/role/tmp").status, 204)
        self.assertEqual(s.get("auth/kubernetes/role/tmp").status, 404)
        # not readable without a token
        self.assertEqual(s.get("auth/kubernetes/config", token="").status, 403)

    def test_bound_cidrs(self):
        self.srv.post("auth/kubernetes/role/cidr", {"bound_service_account_names": "app",
                                                    "bound_service_account_namespaces": "default",
                                                    "token_bound_cidrs": "10.0.0.0/8"})
        r, reqs = self.login(self.peer.sa_token("default", "app"), role="cidr")
        self.assert_error(r, 403, "permission denied")
        self.assertEqual(reqs, [])
        self.srv.post("auth/kubernetes/role/cidr", {"token_bound_cidrs": "127.0.0.0/8"})
        r, _ = self.login(self.peer.sa_token("default", "app"), role="cidr")
        self.assertEqual(r.status, 200, r)

    # -- the seed runbook through the CLI --
    def test_cli_runbook(self):
        d = self._mkdir("cli")
        ca = os.path.join(d, "ca.crt")
        with open(ca, "w") as f:
            f.write(self.peer.ca_pem())
        jwtf = os.path.join(d, "jwt")
        with open(jwtf, "w") as f:
            f.write(self.reviewer_jwt)
        srv = harness.Server(dev=True).start()  # a fresh server: the runbook's default path
        self.addCleanup(srv.cleanup)
        env = dict(os.environ, VAULT_ADDR="http://" + srv.addr, VAULT_TOKEN="root", HOME=d)

        def cli(*args):
            return subprocess.run([harness.BIN] + list(args), env=env, capture_output=True,
                                  text=True, timeout=60)

        r = cli("auth", "enable", "kubernetes")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(jwtf) as f:
            reviewer = f.read()
        r = cli("write", "auth/kubernetes/config", "token_reviewer_jwt=%s" % reviewer,
                "kubernetes_host=%s" % self.peer.url, "kubernetes_ca_cert=@%s" % ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli("write", "auth/kubernetes/role/demo", "bound_service_account_names=app",
                "bound_service_account_namespaces=default", "policies=default")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.peer.add_sa("default", "app")
        r = cli("write", "-format=json", "auth/kubernetes/login", "role=demo",
                "jwt=%s" % self.peer.sa_token("default", "app"))
        self.assertEqual(r.returncode, 0, r.stderr)
        auth = json.loads(r.stdout)["auth"]
        self.assertTrue(auth["client_token"].startswith("s."))
        self.assertEqual(auth["metadata"]["service_account_name"], "app")
        self.assertEqual(auth["policies"], ["default"])
        # plain output shows the token table
        r = cli("write", "auth/kubernetes/login", "role=demo",
                "jwt=%s" % self.peer.sa_token("default", "app"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("token_accessor", r.stdout)
        # a wrong namespace through the CLI: exit 2 with Vault's message
        r = cli("write", "auth/kubernetes/login", "role=demo",
                "jwt=%s" % self.peer.sa_token("kube-system", "app"))
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("namespace not authorized", r.stderr)

if __name__ == "__main__":
    unittest.main(verbosity=2)
