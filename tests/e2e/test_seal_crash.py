"""
test_seal_crash.py - the crash harness (test_crash_consistency.py) once on
an auto-unsealed server: awskms against the local KMS peer, kill -9 under
write load, and after every restart the server unseals itself (no key
typed) before the ledger of acknowledged writes is verified.
"""
import os
import shutil
import tempfile
import unittest

import test_crash_consistency as tcc
from harness import Server
from seal_util import awskms_stanza, kms_env, start_kms, unsealed, wait_for


class AutoUnsealServer(Server):
    """Server whose init is sys/init with recovery keys and whose "unseal"
    only waits for the auto-unseal."""

    def init_unseal(self, shares=1, threshold=1):
        r = self.put("sys/init", {"recovery_shares": shares, "recovery_threshold": threshold}, token="")
        assert r.status == 200, r
        j = r.json()
        self.root_token, self.keys = j["root_token"], j["recovery_keys"]
        assert unsealed(self)
        return self

    def unseal(self, keys=None):
        assert wait_for(lambda: unsealed(self), timeout=30), self.log()[-3000:]
        return self.get("sys/seal-status", token="").json()


class CrashConsistencyAwsKms(tcc.CrashConsistencyBase, unittest.TestCase):
    backend_name = "file+awskms"

    def setUpBackend(self):
        self.kdir = tempfile.mkdtemp(prefix="kms-peer-")
        self.kms, _ = start_kms(self.kdir)
        self.saved_env = dict(os.environ)
        os.environ.update(kms_env(self.kms))
        tcc.Server = AutoUnsealServer  # the harness's server, for this process

    def tearDownBackend(self):
        tcc.Server = Server
        os.environ.clear()
        os.environ.update(self.saved_env)
        self.kms.stop()
        shutil.rmtree(self.kdir, ignore_errors=True)

    def storage_stanza(self, dirpath):
        return ('storage "file" {\n  path = "%s"\n}\n' % os.path.join(dirpath, "data")
                + awskms_stanza(self.kms))


if __name__ == "__main__":
    unittest.main()
