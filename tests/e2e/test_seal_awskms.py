"""
test_seal_awskms.py - the awskms seal against the local KMS peer
(tests/peers/kms_peer.py: HTTPS, SigV4 verified, key policy, AES-GCM
envelope, KMS error shapes): init with recovery keys, restart unsealed with
no key typed (timed), KMS down at start (sealed, clear error, unseals by
itself once KMS is back), wrong secret key, access denied by the key policy,
throttling, a tampered wrapped root key, recovery keys authorising
generate-root, rekey-recovery-key and an unseal after a manual seal, and
hvac's view of it all.
"""
import base64
import os
import shutil
import tempfile
import time
import unittest

from harness import Server
from seal_util import (AK, awskms_stanza, file_get, kms_env, start_kms, tamper_json_field,
                       unsealed, wait_for)

try:
    import hvac
except ImportError:  # pragma: no cover
    hvac = None


class AwsKmsSeal(unittest.TestCase):
    def setUp(self):
        self.kdir = tempfile.mkdtemp(prefix="kms-peer-")
        self.kms, self.key_arn = start_kms(self.kdir)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        self.kms.stop()
        shutil.rmtree(self.kdir, ignore_errors=True)

    def server(self, extra=None, env=None, keep_dir=None):
        s = Server(extra_config=extra if extra is not None else awskms_stanza(self.kms),
                   env=env or kms_env(self.kms), keep_dir=keep_dir)
        self.servers.append(s)
        return s

    def restart(self, s, env=None):
        """Stop s and make it ready to start again on the same config, with
        a fresh log (and new environment, when given)."""
        s.stop()
        if env is not None:
            s.env = dict(os.environ, **env)
        open(s.log_path, "w").close()
        return s

    def init(self, s, shares=3, threshold=2):
        r = s.put("sys/init", {"recovery_shares": shares, "recovery_threshold": threshold}, token="")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        s.root_token = j["root_token"]
        return j

    def test_init_restart_unsealed_without_keys(self):
        s = self.server().start()
        st = s.get("sys/seal-status", token="").json()
        self.assertEqual(st["type"], "awskms")
        self.assertTrue(st["recovery_seal"])
        self.assertFalse(st["initialized"])
        # recovery config is required and checked
        r = s.put("sys/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        self.assertEqual(r.status, 400)
        self.assertIn("recovery_shares", r.body.decode())
        r = s.put("sys/init", {"recovery_shares": 3, "recovery_threshold": 4}, token="")
        self.assertEqual(r.status, 400)
        j = self.init(s)
        self.assertEqual(j["keys"], [])
        self.assertEqual(len(j["recovery_keys"]), 3)
        self.assertEqual(len(j["recovery_keys_base64"]), 3)
        # unsealed at once, as Vault does
        st = s.get("sys/seal-status", token="").json()
        self.assertFalse(st["sealed"])
        self.assertEqual((st["t"], st["n"], st["type"], st["recovery_seal"]), (2, 3, "awskms", True))
        self.assertEqual(st["recovery_seal_type"], "shamir")
        self.assertEqual(st["storage_type"], "file")
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}).status, 204)
        self.assertEqual(s.post("kv/data/app", {"data": {"pw": "hunter2"}}).status, 200)
        # the root key is stored as a KMS envelope, never in the clear
        blob = file_get(os.path.join(s.dir, "data"), "core/awskms-root")
        self.assertIn(b'"wrapped_key"', blob)
        self.assertIn(self.key_arn.encode(), blob)
        self.assertTrue(any(c[0] == "Encrypt" and c[1] == AK and c[2] == "ok" for c in self.kms.calls))

        # restart: unsealed with no key typed; time start -> serving a read
        s.stop()
        n = self.restart(s)
        t0 = time.monotonic()
        n.start(wait=False)
        ok = wait_for(lambda: _read_ok(n), timeout=15, step=0.002)
        dt = (time.monotonic() - t0) * 1000
        self.assertTrue(ok, n.log())
        print("\n[bench] awskms restart to unsealed-and-serving (process start to first 200 KV read): %.1f ms" % dt)
        self.assertEqual(n.get("kv/data/app").json()["data"]["data"]["pw"], "hunter2")
        self.assertIn("auto-unseal with the awskms seal succeeded", n.log())
        m = __import__("re").search(r"succeeded \(1 attempt, (\d+) ms\)", n.log())
        self.assertIsNotNone(m, n.log())
        print("[bench] awskms auto-unseal inside the server (KMS Decrypt + barrier open + set-up): %s ms" % m.group(1))
        self.assertTrue(any(c[0] == "Decrypt" and c[2] == "ok" for c in self.kms.calls))

    def test_sdk_endpoint_variables(self):
        # no endpoint in the stanza: the AWS SDKs' AWS_ENDPOINT_URL_KMS /
        # AWS_ENDPOINT_URL reach the peer; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
        # turns them off (the default endpoint, which is not reachable here)
        stanza = 'seal "awskms" {\n  region = "us-east-1"\n  kms_key_id = "alias/coffer"\n}\n'
        s = self.server(extra=stanza, env=dict(kms_env(self.kms), AWS_ENDPOINT_URL=self.kms.url)).start()
        self.init(s, 1, 1)
        self.assertFalse(s.get("sys/seal-status", token="").json()["sealed"])
        s.stop()
        n = self.restart(s, env=dict(kms_env(self.kms), AWS_ENDPOINT_URL="https://127.0.0.1:1/",
                                     AWS_ENDPOINT_URL_KMS=self.kms.url))
        n.start()
        self.assertTrue(wait_for(lambda: not n.get("sys/seal-status", token="").json()["sealed"]),
                        n.log())
        n.stop()
        n = self.restart(n, env=dict(kms_env(self.kms), AWS_ENDPOINT_URL=self.kms.url,
                                     AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true",
                                     HTTPS_PROXY="http://127.0.0.1:1"))
        n.start(wait=False)
        calls = len(self.kms.calls)
        self.assertTrue(wait_for(lambda: "kms.us-east-1.amazonaws.com" in n.log(), timeout=15), n.log())

        def sealed_status():  # the listener may open after the first seal attempt
            try:
                return n.get("sys/seal-status", token="").json()["sealed"]
            except OSError:
                return None
        self.assertTrue(wait_for(lambda: sealed_status() is not None, timeout=15), n.log())
        self.assertTrue(sealed_status())
        self.assertEqual(len(self.kms.calls), calls)  # the peer was not asked

    def test_kms_down_at_start_then_back(self):
        s = self.server().start()
        self.init(s, 1, 1)
        s.stop()
        port = self.kms.port
        self.kms.stop()
        n = self.restart(s)
        n.start()
        # sealed, answering seal-status and health, with a clear log line
        self.assertTrue(wait_for(lambda: "auto-unseal failed" in n.log(), timeout=15), n.log())
        st = n.get("sys/seal-status", token="").json()
        self.assertTrue(st["sealed"])
        self.assertTrue(st["initialized"])
        self.assertEqual(n.get("sys/health", token="").status, 503)
        self.assertIn("could not reach https://127.0.0.1:%d" % port, n.log())
        # KMS back on the same port (same keys): unsealed by the retry loop
        self.kms.port = port
        self.kms.start()
        self.assertTrue(wait_for(lambda: unsealed(n), timeout=30), n.log())
        self.assertIsNone(n.proc.poll())

    def test_wrong_secret_key_and_denied_policy_stay_sealed(self):
        s = self.server().start()
        self.init(s, 1, 1)
        s.stop()
        n = self.restart(s, env=kms_env(self.kms, secret="not-the-secret"))
        n.start()
        self.assertTrue(wait_for(lambda: "InvalidSignatureException" in n.log(), timeout=15), n.log())
        self.assertTrue(n.get("sys/seal-status", token="").json()["sealed"])
        self.assertNotIn("not-the-secret", n.log())
        n.stop()
        # the key policy no longer allows this user
        for pol in self.kms.keys.values():
            pol["policy"]["kms:Decrypt"] = set()
        n2 = self.restart(n, env=kms_env(self.kms))
        n2.start()
        self.assertTrue(wait_for(lambda: "AccessDeniedException" in n2.log(), timeout=15), n2.log())
        self.assertIn("is not authorized to perform: kms:Decrypt", n2.log())
        self.assertTrue(n2.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(n2.proc.poll())

    def test_throttled_kms_is_retried(self):
        s = self.server().start()
        self.init(s, 1, 1)
        s.stop()
        self.kms.throttle(2)
        n = self.restart(s)
        n.start()
        self.assertTrue(wait_for(lambda: unsealed(n), timeout=15), n.log())
        self.assertGreaterEqual(sum(1 for c in self.kms.calls if c[2] == "ThrottlingException"), 2)

    def test_tampered_wrapped_root_key_refused(self):
        s = self.server().start()
        self.init(s, 1, 1)
        s.stop()
        data = os.path.join(s.dir, "data")
        tamper_json_field(data, "core/awskms-root", "wrapped_key")
        n = self.restart(s)
        n.start()
        self.assertTrue(wait_for(lambda: "InvalidCiphertextException" in n.log(), timeout=15), n.log())
        self.assertTrue(n.get("sys/seal-status", token="").json()["sealed"])
        n.stop()
        # restore the KMS part, alter the local ciphertext instead
        tamper_json_field(data, "core/awskms-root", "wrapped_key")  # flips the same bit back
        tamper_json_field(data, "core/awskms-root", "ciphertext")
        n2 = self.restart(n)
        n2.start()
        self.assertTrue(wait_for(lambda: "invalid key" in n2.log(), timeout=15), n2.log())
        self.assertTrue(n2.get("sys/seal-status", token="").json()["sealed"])
        self.assertIsNone(n2.proc.poll())

    def test_recovery_keys_authorise_generate_root_rekey_and_unseal(self):
        s = self.server().start()
        j = self.init(s, 3, 2)
        rk = j["recovery_keys"]
        # generate-root with recovery keys
        a = s.put("sys/generate-root/attempt", {}, token="").json()
        otp, nonce = a["otp"], a["nonce"]
        r = s.put("sys/generate-root/update", {"key": rk[0], "nonce": nonce}, token="").json()
        self.assertFalse(r["complete"])
        r = s.put("sys/generate-root/update", {"key": rk[2], "nonce": nonce}, token="").json()
        self.assertTrue(r["complete"])
        enc = base64.b64decode(r["encoded_token"] + "==")
        tok = bytes(x ^ ord(y) for x, y in zip(enc, otp)).decode()
        self.assertEqual(s.get("auth/token/lookup-self", token=tok).json()["data"]["policies"], ["root"])
        # a wrong recovery key is refused
        a = s.put("sys/generate-root/attempt", {}, token="").json()
        s.put("sys/generate-root/update", {"key": rk[0], "nonce": a["nonce"]}, token="")
        bad = "00" * 33
        r = s.put("sys/generate-root/update", {"key": bad, "nonce": a["nonce"]}, token="")
        self.assertEqual(r.status, 400, r)
        s.delete("sys/generate-root/attempt", token="")
        # sys/rekey is for unseal keys: refused with a pointer
        r = s.put("sys/rekey/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        self.assertEqual(r.status, 400)
        self.assertIn("rekey-recovery-key", r.body.decode())
        # rekey the recovery keys to 1 of 1
        r = s.put("sys/rekey-recovery-key/init", {"secret_shares": 1, "secret_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        nonce = r.json()["nonce"]
        s.put("sys/rekey-recovery-key/update", {"key": rk[1], "nonce": nonce}, token="")
        r = s.put("sys/rekey-recovery-key/update", {"key": rk[0], "nonce": nonce}, token="").json()
        self.assertTrue(r["complete"])
        new_rk = r["keys"][0]
        st = s.get("sys/seal-status", token="").json()
        self.assertEqual((st["t"], st["n"]), (1, 1))
        # manual seal: stays sealed; an unseal with the (new) recovery key opens it
        self.assertEqual(s.put("sys/seal").status, 204)
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        r = s.put("sys/unseal", {"key": rk[0]}, token="")
        self.assertEqual(r.status, 400)
        r = s.put("sys/unseal", {"key": new_rk}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["sealed"])

    @unittest.skipIf(hvac is None, "python3-hvac missing")
    def test_hvac(self):
        s = self.server().start()
        c = hvac.Client(url="http://" + s.addr)
        self.assertFalse(c.sys.is_initialized())
        res = c.sys.initialize(recovery_shares=5, recovery_threshold=3)
        self.assertEqual(len(res["recovery_keys"]), 5)
        c.token = res["root_token"]
        st = c.sys.read_seal_status()
        self.assertEqual(st["type"], "awskms")
        self.assertTrue(st["recovery_seal"])
        self.assertFalse(c.sys.is_sealed())
        c.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
        c.secrets.kv.v2.create_or_update_secret("a", {"x": "1"}, mount_point="kv")
        self.assertEqual(c.secrets.kv.v2.read_secret_version("a", mount_point="kv")["data"]["data"], {"x": "1"})


def _read_ok(srv):
    try:
        return srv.get("kv/data/app").status == 200
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
