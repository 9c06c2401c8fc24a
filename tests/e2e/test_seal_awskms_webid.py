"""
test_seal_awskms_webid.py - the awskms seal's web identity and container
credential sources (the Kubernetes deployments: EKS IRSA, EKS Pod Identity,
ECS task roles), against the local KMS peer, the local STS peer
(tests/peers/sts_peer.py: real RS256 JWTs from a local OIDC provider,
issuer/audience/expiry checked, a role trust policy, expiring credentials
the KMS peer accepts) and the local container credentials peer
(tests/peers/container_peer.py: the authorization token required):

- only a web identity configured: init, restart -> auto-unsealed with no
  key typed; credentials that expire are fetched again (the token file
  re-read) before they do;
- a JWT with the wrong audience, signed by another key, or expired: the
  server stays sealed, the log says why (STS's code and message); a good
  token written to the file -> it unseals by itself;
- only container credentials: init, restart -> auto-unsealed; a wrong
  authorization token -> sealed with the endpoint's refusal;
- no secret key, session token, JWT or authorization token in the log.
"""
import os
import shutil
import tempfile
import time
import unittest

from harness import Server
from seal_util import awskms_stanza, start_kms, unsealed, wait_for
from container_peer import ContainerPeer
from kms_peer import ACCOUNT
from sts_peer import StsPeer

from cryptography.hazmat.primitives.asymmetric import rsa

ROLE = "arn:aws:iam::%s:role/coffer-irsa" % ACCOUNT
SUB = "system:serviceaccount:vault:coffer"


class TempCredentials(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="webid-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.kms, self.key_arn = start_kms(self.tmp)
        self.addCleanup(self.kms.stop)
        self.servers = []
        # nothing from the environment, a credentials file or IMDS
        self.env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                    "AWS_PROFILE": "", "HOME": self.tmp,
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "no-such-file"),
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_CA_BUNDLE": self.kms.ca}

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def allow(self, principal):
        kid = self.key_arn.rsplit("/", 1)[1]
        for action in self.kms.keys[kid]["policy"].values():
            action.add(principal)

    def server(self, env):
        s = Server(extra_config=awskms_stanza(self.kms), env=env)
        self.servers.append(s)
        return s

    def init(self, s):
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        s.root_token = r.json()["root_token"]
        self.recovery = r.json()["recovery_keys"][0]
        self.assertTrue(wait_for(lambda: unsealed(s), 10), s.log())
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/x", {"v": "temp"}).status, 204)

    def restart(self, s):
        s.stop()
        open(s.log_path, "w").close()
        s.start()

    def no_secrets(self, log, issued, extra=()):
        for ak in issued:
            c = self.kms.creds[ak]
            self.assertNotIn(c["secret"], log)
            self.assertNotIn(c["token"], log)
        for x in extra:
            self.assertNotIn(x, log)

    # -- web identity --
    def webid(self, lifetime=3600):
        sts = StsPeer(self.kms, lifetime=lifetime).start()
        self.addCleanup(sts.stop)
        sts.trust(ROLE, SUB)
        self.allow(ROLE)
        self.jwt_file = os.path.join(self.tmp, "token")
        env = dict(self.env, AWS_WEB_IDENTITY_TOKEN_FILE=self.jwt_file, AWS_ROLE_ARN=ROLE,
                   AWS_ROLE_SESSION_NAME="coffer-test", AWS_ENDPOINT_URL_STS=sts.url)
        return sts, env

    def write_jwt(self, tok):
        with open(self.jwt_file, "w") as f:
            f.write(tok + "\n")
        return tok

    def test_web_identity_only_unseals_and_refreshes(self):
        sts, env = self.webid(lifetime=6)
        jwts = [self.write_jwt(sts.make_jwt(SUB))]
        s = self.server(env).start()
        self.init(s)
        self.assertIn("awskms seal: credentials from STS (web identity)", s.log())
        self.assertTrue(any(c == ("AssumeRoleWithWebIdentity", ROLE, "ok") for c in sts.calls), sts.calls)
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "temp")
        # KMS saw the assumed role's temporary key, never a long-term one
        self.assertTrue(all(c[1] in sts.issued for c in self.kms.calls if c[2] == "ok"))
        # the kubelet rotates the token; the credentials near their end:
        # the next KMS call (an unseal with the recovery key) fetches anew
        n = len(sts.issued)
        jwts.append(self.write_jwt(sts.make_jwt(SUB)))
        time.sleep(3.5)
        self.assertEqual(s.put("sys/seal", token=s.root_token).status, 204)
        r = s.put("sys/unseal", {"key": self.recovery}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["sealed"], s.log())
        self.assertGreater(len(sts.issued), n)
        self.assertIn("new credentials from STS (web identity), valid until", s.log())
        self.no_secrets(s.log(), sts.issued, jwts)

    def test_bad_jwt_stays_sealed_then_unseals(self):
        sts, env = self.webid()
        good = self.write_jwt(sts.make_jwt(SUB))
        s = self.server(env).start()
        self.init(s)
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cases = [(sts.make_jwt(SUB, aud="not-sts"), "InvalidIdentityToken: Incorrect token audience"),
                 (sts.make_jwt(SUB, key=other), "InvalidIdentityToken: The token signature could not be verified"),
                 (sts.make_jwt(SUB, exp=int(time.time()) - 10), "ExpiredTokenException: Token expired"),
                 (sts.make_jwt("system:serviceaccount:other:app"),
                  "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity")]
        bad = []
        for tok, want in cases:
            bad.append(self.write_jwt(tok))
            s.stop()
            open(s.log_path, "w").close()
            s.start()
            self.assertTrue(wait_for(lambda: "auto-unseal failed" in s.log(), 15), s.log())
            line = next(ln for ln in s.log().splitlines() if "auto-unseal failed" in ln)
            self.assertIn("STS AssumeRoleWithWebIdentity for role %s refused" % ROLE, line)
            self.assertIn(want, line)
            self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
            self.assertEqual(s.get("sys/health", token="").status, 503)
        # a good token in the file: the retry unseals by itself
        self.write_jwt(good)
        self.assertTrue(wait_for(lambda: unsealed(s), 30), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "temp")
        self.no_secrets(s.log(), sts.issued, bad + [good])

    def test_web_identity_needs_role(self):
        sts, env = self.webid()
        self.write_jwt(sts.make_jwt(SUB))
        del env["AWS_ROLE_ARN"]
        s = self.server(env)
        with self.assertRaises(RuntimeError) as cm:
            s.start()
        self.assertIn("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not", str(cm.exception))

    # -- container credentials --
    def test_container_credentials_only(self):
        peer = ContainerPeer(self.kms).start()
        self.addCleanup(peer.stop)
        self.allow(peer.role_arn)
        tf = os.path.join(self.tmp, "pod-identity-token")
        with open(tf, "w") as f:
            f.write(peer.token)
        env = dict(self.env, AWS_CONTAINER_CREDENTIALS_FULL_URI=peer.url,
                   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tf)
        s = self.server(env).start()
        self.init(s)
        self.assertIn("awskms seal: credentials from the container credentials endpoint", s.log())
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "temp")
        self.assertTrue(peer.calls and all(c[1] and c[2] == 200 for c in peer.calls), peer.calls)
        good = peer.token
        # a wrong token (from the environment, no file): sealed, the refusal logged
        env2 = dict(env, AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong-" + good)
        del env2["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
        s.stop()
        s.env = dict(s.env, **env2)
        s.env.pop("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None)
        open(s.log_path, "w").close()
        s.start()
        self.assertTrue(wait_for(lambda: "auto-unseal failed" in s.log(), 15), s.log())
        line = next(ln for ln in s.log().splitlines() if "auto-unseal failed" in ln)
        self.assertIn("the container credentials endpoint %s refused (HTTP 401): AccessDenied" % peer.url, line)
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.no_secrets(s.log(), peer.issued, [good, "wrong-" + good])

    def test_container_full_uri_must_be_local_or_https(self):
        env = dict(self.env, AWS_CONTAINER_CREDENTIALS_FULL_URI="http://203.0.113.5/creds")
        s = self.server(env)
        with self.assertRaises(RuntimeError) as cm:
            s.start()
        self.assertIn("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
