"""
test_seal_awskms_creds.py - the awskms seal's last credential source and
its key check at start, against the local KMS peer and the local IMDSv2
peer (tests/peers/imds_peer.py: session tokens required and TTL-bound,
temporary role credentials that expire, KMS refusing them once expired):

- a server whose only credentials come from the instance metadata service
  initialises and auto-unseals after a restart; no secret key, session
  token or metadata token reaches the log;
- credentials rotated in the peer mid-run are picked up before the old
  ones expire, and at once when KMS answers ExpiredTokenException;
- AWS_EC2_METADATA_DISABLED=true: no credentials, start refused;
- DescribeKey at start: a missing alias, a disabled key and a key pending
  deletion fail the start with a message naming the key and its state (also
  for an initialised server whose key was scheduled for deletion), and the
  ARN an alias resolves to is what sys/seal-status and the log show.
"""
import http.client
import os
import shutil
import tempfile
import time
import unittest

from harness import Server
from seal_util import awskms_stanza, kms_env, start_kms, unsealed, wait_for
from imds_peer import ImdsPeer


def imds_env(kms, imds, home):
    # nothing from the environment or a credentials file: only the metadata service
    return {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
            "AWS_PROFILE": "", "HOME": home,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-such-file"),
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url, "AWS_CA_BUNDLE": kms.ca}


def _req(imds, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", imds.port, timeout=5)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


class ImdsCredentials(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imds-test-")
        self.kms, self.key_arn = start_kms(self.tmp)
        self.imds = None
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        if self.imds:
            self.imds.stop()
        self.kms.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_imds(self, lifetime=6 * 3600):
        self.imds = ImdsPeer(self.kms, lifetime=lifetime).start()
        # the key policy names the instance's role
        kid = self.key_arn.rsplit("/", 1)[1]
        for action in self.kms.keys[kid]["policy"].values():
            action.add(self.imds.role_arn)
        return self.imds

    def server(self, env):
        s = Server(extra_config=awskms_stanza(self.kms), env=env)
        self.servers.append(s)
        return s

    def secrets_absent(self, log):
        for ak in self.imds.issued:
            c = self.kms.creds[ak]
            self.assertNotIn(c["secret"], log)
            self.assertNotIn(c["token"], log)
        for tok in self.imds.tokens:
            self.assertNotIn(tok, log)

    def test_peer_is_imdsv2_with_tokens_required(self):
        imds = self.start_imds()
        base = "/latest/meta-data/iam/security-credentials/"
        self.assertEqual(_req(imds, "GET", base)[0], 401)
        self.assertEqual(_req(imds, "PUT", "/latest/api/token")[0], 400)
        self.assertEqual(_req(imds, "PUT", "/latest/api/token",
                              {"X-aws-ec2-metadata-token-ttl-seconds": "21601"})[0], 400)
        self.assertEqual(_req(imds, "PUT", "/latest/api/token",
                              {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                               "X-Forwarded-For": "10.0.0.1"})[0], 403)
        st, tok = _req(imds, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "1"})
        self.assertEqual(st, 200)
        h = {"X-aws-ec2-metadata-token": tok.decode()}
        self.assertEqual(_req(imds, "GET", base, h), (200, imds.role.encode()))
        self.assertEqual(_req(imds, "GET", base + "other-role", h)[0], 404)
        time.sleep(1.1)
        self.assertEqual(_req(imds, "GET", base, h)[0], 401)  # the token's TTL is over

    def test_metadata_credentials_only_init_restart_unsealed(self):
        imds = self.start_imds()
        s = self.server(imds_env(self.kms, imds, self.tmp)).start()
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, s.log())
        s.root_token = r.json()["root_token"]
        ak = imds.issued[-1]
        self.assertTrue(ak.startswith("ASIA"))
        self.assertIn(("Encrypt", ak, "ok"), self.kms.calls)
        self.assertIn(("PUT", "/latest/api/token", 200), imds.calls)
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.post("kv/a", {"v": "1"}).status, 204)
        s.stop()
        open(s.log_path, "w").close()
        n0 = len(self.kms.calls)
        s.start()
        self.assertTrue(wait_for(lambda: unsealed(s), timeout=15), s.log())
        self.assertEqual(s.get("kv/a").json()["data"]["v"], "1")
        self.assertTrue(any(c[0] == "Decrypt" and c[1] in imds.issued and c[2] == "ok"
                            for c in self.kms.calls[n0:]))
        log = s.log()
        self.assertIn("credentials from the instance metadata service", log)
        self.secrets_absent(log)

    def test_rotated_credentials_are_picked_up(self):
        imds = self.start_imds(lifetime=12)
        s = self.server(imds_env(self.kms, imds, self.tmp))
        s.start()
        t_fetch = time.time()  # the credentials are fetched before the listener starts
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, s.log())
        s.root_token = r.json()["root_token"]
        rk = r.json()["recovery_keys"][0]
        c1 = imds.issued[-1]

        def reseal():
            self.assertEqual(s.put("sys/seal").status, 204)
            r = s.put("sys/unseal", {"key": rk}, token="")
            self.assertEqual(r.status, 200, s.log())
            self.assertFalse(r.json()["sealed"], s.log())

        # EC2 hands out new credentials; the old ones stay valid a while.
        # Half-way through their lifetime the seal fetches the new ones
        # before using the old ones again.
        c2 = imds.rotate()
        time.sleep(max(0, t_fetch + 6.5 - time.time()))
        n0 = len(self.kms.calls)
        reseal()
        decrypts = [c for c in self.kms.calls[n0:] if c[0] == "Decrypt"]
        self.assertEqual(decrypts, [("Decrypt", c2, "ok")], (c1, c2, self.kms.calls[n0:]))
        # credentials ended early (revoked): KMS says ExpiredTokenException,
        # the seal fetches new ones at once and the call succeeds
        c3 = imds.rotate()
        imds.revoke(c2)
        n0 = len(self.kms.calls)
        reseal()
        decrypts = [c for c in self.kms.calls[n0:] if c[0] == "Decrypt"]
        self.assertEqual(decrypts, [("Decrypt", c2, "ExpiredTokenException"), ("Decrypt", c3, "ok")],
                         self.kms.calls[n0:])
        self.assertIn("instance credentials expired; fetching new ones", s.log())
        self.secrets_absent(s.log())

    def test_metadata_disabled_means_no_credentials(self):
        imds = self.start_imds()
        env = dict(imds_env(self.kms, imds, self.tmp), AWS_EC2_METADATA_DISABLED="true")
        s = self.server(env)
        with self.assertRaises(RuntimeError) as cm:
            s.start()
        self.assertIn("no AWS credentials", str(cm.exception) + s.log())
        self.assertEqual(imds.calls, [])


class DescribeKeyAtStart(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kms-describe-")
        self.kms, self.key_arn = start_kms(self.tmp)
        self.kid = self.key_arn.rsplit("/", 1)[1]
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        self.kms.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, key="alias/coffer", keep_dir=None):
        s = Server(extra_config=awskms_stanza(self.kms, key=key), env=kms_env(self.kms), keep_dir=keep_dir)
        self.servers.append(s)
        return s

    def refused(self, s):
        with self.assertRaises(RuntimeError) as cm:
            s.start()
        return str(cm.exception) + s.log()

    def test_resolved_arn_is_reported(self):
        s = self.server().start()
        self.assertEqual(s.get("sys/seal-status", token="").json()["seal_key_id"], self.key_arn)
        self.assertIn("awskms seal: KMS key alias/coffer is %s (Enabled)" % self.key_arn, s.log())
        self.assertEqual(self.kms.calls[0][0], "DescribeKey")
        st = s.get("sys/seal-backend-status", token="").json()
        self.assertTrue(st["healthy"])

    def test_missing_disabled_or_pending_deletion_key_fails_start(self):
        msg = self.refused(self.server(key="alias/no-such-key"))
        self.assertIn("NotFoundException", msg)
        self.assertIn("alias/no-such-key is not found", msg)
        self.kms.disable_key(self.kid)
        msg = self.refused(self.server())
        self.assertIn("cannot be used: its state is Disabled", msg)
        self.assertIn(self.key_arn, msg)

    def test_silent_kms_at_start_does_not_hold_the_listener(self):
        # a KMS that accepts connections and never answers: the check at
        # start gives up after one bounded try, the server serves
        # seal-status, and the check runs again before the first use
        import socket
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(16)
        self.addCleanup(lsn.close)
        st = ('seal "awskms" {\n  region = "us-east-1"\n  kms_key_id = "alias/coffer"\n'
              '  endpoint = "https://127.0.0.1:%d"\n}\n' % lsn.getsockname()[1])
        s = Server(extra_config=st, env=kms_env(self.kms))
        self.servers.append(s)
        t0 = time.monotonic()
        s.start()
        dt = time.monotonic() - t0
        self.assertLess(dt, 4.5, s.log())
        self.assertIn("could not check KMS key alias/coffer at start", s.log())
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertNotIn("seal_key_id", s.get("sys/seal-status", token="").json())

    def test_initialised_server_whose_key_is_pending_deletion(self):
        s = self.server().start()
        self.assertEqual(s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1},
                               token="").status, 200)
        s.stop()
        self.kms.schedule_key_deletion(self.kid)
        open(s.log_path, "w").close()
        msg = self.refused(s)
        self.assertIn("its state is PendingDeletion", msg)
        self.assertIn("CancelKeyDeletion", msg)
        self.assertNotIn("Decrypt", msg)
        # the key deleted for good: the alias is gone too
        self.kms.delete_key(self.kid)
        open(s.log_path, "w").close()
        self.assertIn("NotFoundException", self.refused(s))


if __name__ == "__main__":
    unittest.main()
