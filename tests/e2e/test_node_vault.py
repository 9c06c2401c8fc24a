"""
test_node_vault.py - run the node-vault tests (tests/e2e/node, node's own
`node --test` runner) against the real coffer binary.

Starts two servers through harness.Server: one initialised and unsealed
(VAULT_ADDR, VAULT_TOKEN=root token) and one fresh, uninitialised,
file-storage server (COFFER_FRESH_ADDR) for init/unseal. Installs the
pinned npm dependencies with `npm ci` when node_modules is missing (the
npm registry is the only network access). Skipped when node or npm is not
installed.
"""
import os
import shutil
import subprocess
import unittest

from harness import Server

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")


def node_ready():
    """Why the node tests cannot run, or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node/npm not installed"
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "node-vault")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("npm ci failed:\n%s%s" % (r.stdout, r.stderr))
    return None


class NodeVaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = node_ready()
        if why:
            raise unittest.SkipTest(why)
        cls.s = Server().start().init_unseal()
        cls.fresh = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        cls.fresh.cleanup()

    def run_node(self, files):
        env = dict(os.environ, VAULT_ADDR="http://%s" % self.s.addr,
                   VAULT_TOKEN=self.s.root_token,
                   COFFER_FRESH_ADDR="http://%s" % self.fresh.addr,
                   COFFER_TEST_DIR=self.s.dir)
        for k in ("VAULT_NAMESPACE", "VAULT_PREFIX", "VAULT_SKIP_VERIFY"):
            env.pop(k, None)
        r = subprocess.run(["node", "--test", "--test-reporter=spec"] + files, cwd=NODE_DIR,
                           env=env, capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, "node --test failed:\n%s\n--- server log ---\n%s"
                         % (out, self.s.log()[-3000:]))
        self.assertIn("# fail 0", out.replace("ℹ fail 0", "# fail 0"))
        return out

    def test_client(self):
        self.run_node(["client.test.js"])

    def test_lifecycle(self):
        self.run_node(["lifecycle.test.js"])


if __name__ == "__main__":
    unittest.main()
