"""
test_seal_ha.py - auto-unseal on an HA pair (storage "etcd", a real etcd):
both nodes start sealed and uninitialised with the awskms seal; node A is
initialised with recovery keys; node B, which nobody touches, unseals
itself as a standby (it polls until the storage is initialised); after a
restart of both, both unseal themselves again and one is active.
"""
import shutil
import tempfile
import unittest

from etcd_service import Etcd
from seal_util import awskms_stanza, kms_env, start_kms, unsealed, wait_for
from test_ha_etcd import leader, node


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


if __name__ == "__main__":
    unittest.main()
