"""
test_seal_multi.py - multi-seal ("Seal HA"): several enabled seal stanzas
with a name and a priority, the root key wrapped by each, any one unseals.
Two local KMS peers (tests/peers/kms_peer.py) and a SoftHSM2 token as the
third seal:
  - init with two KMS seals -> one copy per seal; restart with the first
    KMS down -> still auto-unseals (the log names the seal that failed),
    sys/seal-backend-status reports it unhealthy; both down -> sealed with an
    error naming both; back up -> unseals by itself;
  - a tampered copy for one seal is refused, the other unseals, and the
    refused copy is wrapped again;
  - a third seal (pkcs11) added -> re-wrapped at the next start; both KMS
    down -> the HSM unseals; a seal removed -> its copy is deleted;
  - a single awskms seal becomes one member of a multi-seal with no
    migration; configuration errors are refused at start;
  - SIGHUP: a seal added to the running set wraps the root key at once
    (the first KMS key then disabled -> a restart unseals through the new
    seal); a new seal that cannot wrap -> refused with a log line naming
    it, the old set kept, still serving; a seal removed -> its copy is
    deleted and a restart unseals with the rest; removing every seal ->
    refused.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

try:
    import hvac
except ImportError:  # pragma: no cover
    hvac = None

from harness import Server, free_port
from seal_util import (SK, file_get, kms_env, start_kms_pair, tamper_json_field,
                       unsealed, wait_for)

MODULE = next((p for p in ("/usr/lib/softhsm/libsofthsm2.so",
                           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so") if os.path.exists(p)), None)


def kms_stanza(peer, name=None, priority=None):
    extra = ""
    if name:
        extra += '  name = "%s"\n' % name
    if priority:
        extra += '  priority = "%s"\n' % priority
    return ('seal "awskms" {\n  region = "us-east-1"\n  kms_key_id = "alias/coffer"\n  endpoint = "%s"\n%s}\n'
            % (peer.url, extra))


class MultiSeal(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="multiseal-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        p1, p2 = start_kms_pair(self.tmp)
        self.addCleanup(p1.stop)
        self.addCleanup(p2.stop)
        self.kms = [p1, p2]
        self.env = kms_env(p1)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()

    def two(self):
        return kms_stanza(self.kms[0], "kms1", 1) + kms_stanza(self.kms[1], "kms2", 2)

    def hsm_stanza(self):
        if MODULE is None or shutil.which("softhsm2-util") is None:
            self.skipTest("softhsm2 missing (scripts/deps.sh)")
        hsm = os.path.join(self.tmp, "hsm")
        os.makedirs(os.path.join(hsm, "tokens"))
        conf = os.path.join(hsm, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n" % hsm)
        self.env["SOFTHSM2_CONF"] = conf
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "coffer-hsm", "--so-pin", "1234",
                        "--pin", "4321"], env=dict(os.environ, SOFTHSM2_CONF=conf), check=True,
                       capture_output=True)
        return ('seal "pkcs11" {\n  name = "hsm"\n  priority = "3"\n  lib = "%s"\n  token_label = "coffer-hsm"\n'
                '  pin = "4321"\n  key_label = "coffer-multi"\n  generate_key = "true"\n}\n' % MODULE)

    def server(self, seals):
        s = Server(extra_config=seals, env=self.env)
        self.servers.append(s)
        return s

    def set_seals(self, s, seals):
        with open(s.config_path) as f:
            txt = f.read()
        with open(s.config_path, "w") as f:
            i = txt.find("seal ")
            f.write((txt if i < 0 else txt[:i]) + seals)

    def restart(self, s):
        s.stop()
        s.env.update(self.env)
        open(s.log_path, "w").close()
        s.start()
        return s

    def init(self, s):
        r = s.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        s.root_token = r.json()["root_token"]
        self.recovery = r.json()["recovery_keys"][0]
        self.assertTrue(unsealed(s))
        self.assertEqual(s.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(s.put("kv/x", {"v": "multi"}).status, 204)

    def data(self, s):
        return os.path.join(s.dir, "data")

    def backends(self, s):
        r = s.get("sys/seal-backend-status", token="")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        return j, {b["name"]: b for b in j["backends"]}

    def test_any_one_seal_unseals_both_down_sealed_tampered_copy(self):
        s = self.server(self.two()).start()
        st = s.get("sys/seal-status", token="").json()
        self.assertEqual(st["type"], "multiseal")
        self.assertTrue(st["recovery_seal"])
        self.init(s)
        # one envelope per seal, each under its own KMS key
        for n, p in (("kms1", self.kms[0]), ("kms2", self.kms[1])):
            blob = file_get(self.data(s), "core/seal-root/" + n)
            self.assertIsNotNone(blob, n)
            self.assertIn(b'"wrapped_key"', blob)
            self.assertTrue(any(c[0] == "Encrypt" and c[2] == "ok" for c in p.calls), n)
        self.assertIsNone(file_get(self.data(s), "core/awskms-root"))
        j, b = self.backends(s)
        self.assertTrue(j["healthy"] and j["fully_wrapped"])
        self.assertEqual([x["name"] for x in j["backends"]], ["kms1", "kms2"])
        self.assertNotIn("unhealthy_since", j)

        # the first KMS down: the second unseals, the log says why
        self.kms[0].stop()
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.assertTrue(wait_for(lambda: 'unwrapped by seal "kms2"' in s.log(), 5), s.log())
        self.assertIn('"kms1" (awskms): awskms seal: could not reach', s.log())
        j, b = self.backends(s)
        self.assertFalse(j["healthy"])
        self.assertIn("unhealthy_since", j)
        self.assertFalse(b["kms1"]["healthy"])
        self.assertIn("unhealthy_since", b["kms1"])
        self.assertTrue(b["kms2"]["healthy"])
        # hvac: a manual seal, then the recovery key unseals through kms2
        if hvac is not None:
            c = hvac.Client(url="http://" + s.addr, token=s.root_token)
            self.assertEqual(c.sys.read_seal_status()["type"], "multiseal")
            c.sys.seal()
            self.assertTrue(c.sys.is_sealed())
            self.assertFalse(c.sys.submit_unseal_key(self.recovery)["sealed"])
            self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")

        # both down: sealed, answering, with an error naming both
        self.kms[1].stop()
        self.restart(s)
        self.assertTrue(wait_for(lambda: "auto-unseal failed" in s.log(), 15), s.log())
        line = next(ln for ln in s.log().splitlines() if "auto-unseal failed" in ln)
        self.assertIn('"kms1" (awskms)', line)
        self.assertIn('"kms2" (awskms)', line)
        self.assertIn("no configured seal could unwrap the root key", line)
        self.assertTrue(s.get("sys/seal-status", token="").json()["sealed"])
        self.assertEqual(s.get("sys/health", token="").status, 503)
        j, b = self.backends(s)
        self.assertFalse(b["kms1"]["healthy"] or b["kms2"]["healthy"])
        # the second back: unseals by itself (retry with backoff)
        self.kms[1].start()
        self.assertTrue(wait_for(lambda: unsealed(s), 20), s.log())

        # a tampered copy for kms1 is refused; kms2 unseals; kms1 re-wrapped
        self.kms[0].start()
        s.stop()
        tamper_json_field(self.data(s), "core/seal-root/kms1", "ciphertext")
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.assertTrue(wait_for(lambda: 'root key wrapped by seal "kms1"' in s.log(), 10), s.log())
        self.assertIn('unwrapped by seal "kms2" (awskms) after: "kms1" (awskms): invalid key', s.log())
        # healed: kms1 alone unseals now
        self.kms[1].stop()
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertNotIn("unwrapped by seal", s.log())

    def test_add_third_seal_then_remove_one(self):
        hsm = self.hsm_stanza()
        s = self.server(self.two()).start()
        self.init(s)
        # a third seal added: wrapped at the next unseal
        s.stop()
        self.set_seals(s, self.two() + hsm)
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertTrue(wait_for(lambda: 'root key wrapped by seal "hsm" (pkcs11)' in s.log(), 10), s.log())
        s.stop()
        self.assertIsNotNone(file_get(self.data(s), "core/seal-root/hsm"))
        # both KMS down: the HSM alone unseals
        for p in self.kms:
            p.stop()
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.assertIn('unwrapped by seal "hsm" (pkcs11)', s.log())
        j, b = self.backends(s)
        self.assertEqual([x["name"] for x in j["backends"]], ["kms1", "kms2", "hsm"])
        self.assertTrue(b["hsm"]["healthy"])
        self.assertFalse(b["kms1"]["healthy"])
        # kms2 removed from the configuration: its copy is deleted
        s.stop()
        self.set_seals(s, kms_stanza(self.kms[0], "kms1", 1) + hsm)
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertTrue(wait_for(lambda: 'seal "kms2" is no longer configured' in s.log(), 10), s.log())
        s.stop()
        self.assertIsNone(file_get(self.data(s), "core/seal-root/kms2"))
        self.assertIsNotNone(file_get(self.data(s), "core/seal-root/kms1"))
        # kms1 alone (the HSM's token gone) still unseals
        self.kms[0].start()
        self.set_seals(s, kms_stanza(self.kms[0], "kms1", 1))
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")

    def test_single_seal_becomes_a_member(self):
        s = self.server(kms_stanza(self.kms[0])).start()
        self.init(s)
        s.stop()
        self.assertIsNotNone(file_get(self.data(s), "core/awskms-root"))
        self.set_seals(s, self.two())
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertFalse(s.get("sys/seal-status", token="").json()["migration"])
        self.assertTrue(wait_for(lambda: "now wrapped per seal" in s.log(), 10), s.log())
        s.stop()
        self.assertIsNone(file_get(self.data(s), "core/awskms-root"))
        self.assertIsNotNone(file_get(self.data(s), "core/seal-root/kms2"))
        # kms2 alone unseals what kms1's single seal made
        self.kms[0].stop()
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")

    def hup(self, s, seals, want):
        self.set_seals(s, seals)
        s.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: want in s.log(), 15), s.log())

    def test_sighup_adds_and_removes_seals(self):
        s = self.server(kms_stanza(self.kms[0], "kms1", 1)).start()
        self.init(s)
        self.assertIsNone(file_get(self.data(s), "core/seal-root/kms2"))
        # kms2 added while running: wrapped at once, no restart
        self.hup(s, self.two(), "the seals are now, in priority order: kms1 (awskms), kms2 (awskms)")
        self.assertIn('seal "kms2" (awskms) added: the root key is wrapped by it', s.log())
        self.assertTrue(any(c[0] == "Encrypt" and c[2] == "ok" for c in self.kms[1].calls))
        self.assertIsNotNone(file_get(self.data(s), "core/seal-root/kms2"))
        j, b = self.backends(s)
        self.assertEqual([x["name"] for x in j["backends"]], ["kms1", "kms2"])
        self.assertTrue(j["fully_wrapped"] and b["kms2"]["wrapped"])
        # the first key disabled: a restart unseals through the added seal
        kid1 = next(iter(self.kms[0].keys))
        self.kms[0].disable_key(kid1)
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.assertIn('unwrapped by seal "kms2" (awskms)', s.log())

        # a new seal that cannot be used (its key disabled), or cannot wrap
        # (its KMS unreachable): refused, the old set stays, still serving
        bad = kms_stanza(self.kms[0], "kms3", 3)
        self.hup(s, self.two() + bad, "seal reload refused")
        line = next(ln for ln in s.log().splitlines() if "seal reload refused" in ln)
        self.assertIn('seal "kms3" (awskms)', line)
        self.assertIn("its state is Disabled", line)
        self.assertIn("the seals are unchanged", line)
        open(s.log_path, "w").close()
        down = type("Down", (), {"url": "https://127.0.0.1:%d" % free_port()})()
        self.hup(s, self.two() + kms_stanza(down, "kms3", 3), "seal reload refused")
        line = next(ln for ln in s.log().splitlines() if "seal reload refused" in ln)
        self.assertIn('seal "kms3" (awskms) cannot wrap the root key', line)
        self.assertIn("could not reach", line)
        self.assertIn("the running seals are unchanged", line)
        self.assertIsNone(file_get(self.data(s), "core/seal-root/kms3"))
        j, _ = self.backends(s)
        self.assertEqual([x["name"] for x in j["backends"]], ["kms1", "kms2"])
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")

        # kms1 removed: its copy is deleted; kms2 alone unseals
        open(s.log_path, "w").close()
        self.hup(s, kms_stanza(self.kms[1], "kms2", 2), 'seal "kms1" removed: its wrapped copy is deleted')
        self.assertIsNone(file_get(self.data(s), "core/seal-root/kms1"))
        j, _ = self.backends(s)
        self.assertEqual([x["name"] for x in j["backends"]], ["kms2"])
        # every seal removed: refused (that is a migration), still serving
        self.hup(s, "", "seal reload refused: removing every seal is a seal migration")
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.set_seals(s, kms_stanza(self.kms[1], "kms2", 2))
        self.restart(s)
        self.assertTrue(wait_for(lambda: unsealed(s), 15), s.log())
        self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
        self.assertNotIn(SK, s.log())

    def test_kill9_during_sighup_change_still_unseals(self):
        """kill -9 at several points of a SIGHUP add and remove: whatever the
        moment, the store unseals with the seal both sets share."""
        s = self.server(kms_stanza(self.kms[0], "kms1", 1)).start()
        self.init(s)
        one, two = kms_stanza(self.kms[0], "kms1", 1), self.two()
        for i, delay in enumerate((0.0, 0.002, 0.005, 0.01, 0.02, 0.05)):
            # even rounds add kms2, odd rounds remove it again
            self.set_seals(s, two if i % 2 == 0 else one)
            s.proc.send_signal(signal.SIGHUP)
            time.sleep(delay)
            s.kill9()
            # kms1 is in both sets and never loses its copy: it alone unseals
            self.kms[1].stop()
            self.set_seals(s, one)
            self.restart(s)
            self.assertTrue(wait_for(lambda: unsealed(s), 15), "round %d: %s" % (i, s.log()))
            self.assertEqual(s.get("kv/x").json()["data"]["v"], "multi")
            self.kms[1].start()
            # and the set of the round's end state unseals too (re-wrapped as needed)
            self.set_seals(s, two if i % 2 == 0 else one)
            self.restart(s)
            self.assertTrue(wait_for(lambda: unsealed(s), 15), "round %d: %s" % (i, s.log()))
            time.sleep(0.2)  # the unseal's re-wrap runs after it serves
        s.stop()
        self.assertIsNotNone(file_get(self.data(s), "core/seal-root/kms1"))

    def test_bad_configuration_refused(self):
        cases = [
            (kms_stanza(self.kms[0]) + kms_stanza(self.kms[1], "b", 2), "need a priority each"),
            (kms_stanza(self.kms[0], "a", 1) + kms_stanza(self.kms[1], "a", 2), 'two seals are named "a"'),
            (kms_stanza(self.kms[0], "a", 1) + kms_stanza(self.kms[1], "b", 1), "the same priority 1"),
            (kms_stanza(self.kms[0], "a", "x") + kms_stanza(self.kms[1], "b", 2), "priority must be an integer"),
            (kms_stanza(self.kms[0], "a/b", 1) + kms_stanza(self.kms[1], "b", 2), "name must be"),
            ('seal "shamir" {\n  name = "s"\n  priority = "1"\n}\n' + kms_stanza(self.kms[1], "b", 2),
             "auto seals only"),
        ]
        for seals, want in cases:
            s = self.server(seals)
            with self.assertRaises(RuntimeError) as cm:
                s.start()
            self.assertIn(want, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
