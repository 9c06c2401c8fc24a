"""
test_seal_ha.py - auto-unseal on an HA pair (storage "etcd", a real etcd):
both nodes start sealed and uninitialised with the awskms seal; node A is
initialised with recovery keys; node B, which nobody touches, unseals
itself as a standby (it polls until the storage is initialised); after a
restart of both, both unseal themselves again and one is active.

Multi-seal on an HA pair: the active node adds a seal by SIGHUP; the
standby, restarted with its older configuration (without that seal),
writes nothing - the added seal's copy stays, and the active node,
restarted with the first seal's key disabled, unseals through it; a
standby configured with a seal more wraps nothing until it takes over,
then wraps the root key with it.
"""
import signal
import shutil
import tempfile
import unittest

from etcd_service import Etcd
from seal_util import awskms_stanza, kms_env, start_kms, start_kms_pair, unsealed, wait_for
from test_ha_etcd import leader, node
from test_seal_multi import kms_stanza


class AutoUnsealHA(unittest.TestCase):
    def setUp(self):
        self.kdir = tempfile.mkdtemp(prefix="kms-peer-")
        self.kms, _ = start_kms(self.kdir)
        self.addCleanup(shutil.rmtree, self.kdir, True)
        self.addCleanup(self.kms.stop)
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.stop)
        self.a, self.b = node(self.etcd.url), node(self.etcd.url)
        for s in (self.a, self.b):
            with open(s.config_path, "a") as f:
                f.write(awskms_stanza(self.kms))
            s.env.update(kms_env(self.kms))
            self.addCleanup(s.cleanup)
            s.start()

    def test_standby_unseals_itself(self):
        self.assertFalse(self.b.get("sys/seal-status", token="").json()["initialized"])
        r = self.a.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_for(lambda: (leader(self.a) or {}).get("is_self"), 15), self.a.log())
        # B: no key typed, unsealed as a standby
        self.assertTrue(wait_for(lambda: unsealed(self.b), 15), self.b.log())
        self.assertEqual(self.b.get("sys/health", token="").status, 429)
        self.assertIn("auto-unseal with the awskms seal succeeded", self.b.log())
        # both restarted: both unseal themselves, one is active
        for s in (self.a, self.b):
            s.stop()
        for s in (self.a, self.b):
            s.start()
        self.assertTrue(wait_for(lambda: unsealed(self.a) and unsealed(self.b), 20))
        self.assertTrue(wait_for(lambda: sorted(s.get("sys/health", token="").status
                                                for s in (self.a, self.b)) == [200, 429], 20))


class MultiSealHA(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="multiseal-ha-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        p1, p2 = start_kms_pair(self.tmp)
        self.addCleanup(p1.stop)
        self.addCleanup(p2.stop)
        self.kms = [p1, p2]
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.stop)
        self.one = kms_stanza(p1, "kms1", 1)
        self.two = self.one + kms_stanza(p2, "kms2", 2)
        self.a, self.b = node(self.etcd.url), node(self.etcd.url)
        for s in (self.a, self.b):
            with open(s.config_path) as f:
                s.base_config = f.read()
            self.set_seals(s, self.one)
            s.env.update(kms_env(p1))
            self.addCleanup(s.cleanup)

    def set_seals(self, s, seals):
        with open(s.config_path, "w") as f:
            f.write(s.base_config + seals)

    def test_restarted_standby_keeps_the_copy_the_active_added(self):
        a, b = self.a, self.b
        a.start()
        r = a.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        a.root_token = r.json()["root_token"]
        self.assertTrue(wait_for(lambda: (leader(a) or {}).get("is_self"), 15), a.log())
        self.assertEqual(a.post("sys/mounts/kv", {"type": "kv"}).status, 204)
        self.assertEqual(a.put("kv/x", {"v": "ha"}).status, 204)
        b.start()
        self.assertTrue(wait_for(lambda: unsealed(b), 15), b.log())
        self.assertEqual(b.get("sys/health", token="").status, 429)
        # the active node adds kms2 while running
        self.set_seals(a, self.two)
        a.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: 'seal "kms2" (awskms) added' in a.log(), 15), a.log())
        # the standby restarted with its old configuration (kms1 only):
        # unsealed again, a standby, and it leaves the copies alone
        b.stop()
        open(b.log_path, "w").close()
        b.start()
        self.assertTrue(wait_for(lambda: unsealed(b), 15), b.log())
        self.assertEqual(b.get("sys/health", token="").status, 429)
        self.assertFalse(wait_for(lambda: "no longer configured" in b.log(), 3), b.log())
        self.assertNotIn("wrapped copy", b.log())
        # the active node, restarted alone with kms1's key disabled,
        # unseals through the copy it added
        b.stop()
        self.kms[0].disable_key(next(iter(self.kms[0].keys)))
        a.stop()
        open(a.log_path, "w").close()
        a.start()
        self.assertTrue(wait_for(lambda: unsealed(a), 15), a.log())
        self.assertIn('unwrapped by seal "kms2" (awskms)', a.log())
        self.assertTrue(wait_for(lambda: (leader(a) or {}).get("is_self"), 15), a.log())
        self.assertEqual(a.get("kv/x").json()["data"]["v"], "ha")


    def test_standby_wraps_an_added_seal_once_active(self):
        a, b = self.a, self.b
        a.start()
        r = a.put("sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, token="")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_for(lambda: (leader(a) or {}).get("is_self"), 15), a.log())
        self.set_seals(b, self.two)
        b.start()
        self.assertTrue(wait_for(lambda: unsealed(b), 15), b.log())
        self.assertEqual(b.get("sys/health", token="").status, 429)
        # a standby: kms2 is not asked to wrap anything
        self.assertFalse(wait_for(lambda: 'root key wrapped by seal "kms2"' in b.log(), 3), b.log())
        self.assertFalse(any(c[0] == "Encrypt" for c in self.kms[1].calls))
        # the active node gone: b takes over and wraps with kms2
        a.stop()
        self.assertTrue(wait_for(lambda: b.get("sys/health", token="").status == 200, 30), b.log())
        self.assertTrue(wait_for(lambda: 'root key wrapped by seal "kms2" (awskms)' in b.log(), 15), b.log())
        self.assertTrue(any(c[0] == "Encrypt" and c[2] == "ok" for c in self.kms[1].calls))
        # kms1's key disabled: b alone, restarted, unseals through kms2
        self.kms[0].disable_key(next(iter(self.kms[0].keys)))
        b.stop()
        open(b.log_path, "w").close()
        b.start()
        self.assertTrue(wait_for(lambda: unsealed(b), 15), b.log())
        self.assertIn('unwrapped by seal "kms2" (awskms)', b.log())


if __name__ == "__main__":
    unittest.main()
