"""
`coffer policy fmt FILE` rewrites a policy in canonical HCL, is idempotent,
refuses a file that does not parse (exit 1, file untouched), and the
formatted policy means the same to the server as the original.
"""
import os
import subprocess
import tempfile
import unittest

from harness import BIN, Server

UGLY = ('path "secret/data/app/*" {capabilities=["read","list"]}\n'
        '# a comment\n'
        'path "sys/capabilities-self" { capabilities = ["update"] '
        'allowed_parameters = { "paths" = [] } }\n')


class PolicyFmtTest(unittest.TestCase):
    def test_fmt(self):
        d = tempfile.mkdtemp()
        p = os.path.join(d, "p.hcl")
        with open(p, "w") as f:
            f.write(UGLY)
        r = subprocess.run([BIN, "policy", "fmt", p], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Success! Formatted policy", r.stdout)
        text = open(p).read()
        self.assertEqual(text, 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n\n'
                               'path "sys/capabilities-self" {\n  capabilities = ["update"]\n'
                               '  allowed_parameters = {\n    "paths" = []\n  }\n}\n')
        subprocess.run([BIN, "policy", "fmt", p], check=True, capture_output=True, timeout=10)
        self.assertEqual(open(p).read(), text)
        # the server reads both versions the same way
        s = Server().start().init_unseal()
        self.addCleanup(s.cleanup)
        caps = []
        for name, body in (("ugly", UGLY), ("pretty", text)):
            self.assertEqual(s.put("sys/policies/acl/" + name, {"policy": body}).status, 204)
            t = s.post("auth/token/create", {"policies": [name]}).json()["auth"]["client_token"]
            r = s.post("sys/capabilities", {"token": t, "paths": ["secret/data/app/x", "secret/data/other"]})
            caps.append(r.json()["data"])
        self.assertEqual(caps[0], caps[1])
        self.assertEqual(sorted(caps[0]["secret/data/app/x"]), ["list", "read"])
        # a broken file is refused and left as it was
        bad = os.path.join(d, "bad.hcl")
        with open(bad, "w") as f:
            f.write('path "x" {')
        r = subprocess.run([BIN, "policy", "fmt", bad], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"bad.hcl:1", r.stderr)
        self.assertEqual(open(bad).read(), 'path "x" {')


if __name__ == "__main__":
    unittest.main()
