"""
test_auth_cert.py - the TLS certificate auth method over a real TLS
handshake: a CA, an intermediate and client certificates made by the openssl
CLI at test time (leaf of the root, leaf of the intermediate presented with
its chain, an expired one, a revoked one listed in a CRL made by `openssl ca
-gencrl`, one of an unrelated CA); certs/NAME constraints, crls/NAME,
config, login by name or by trying every entry, renewal re-checking the
certificate, and hvac's auth.cert.

    COFFER_BIN=$PWD/build/coffer /usr/bin/python3 tests/e2e/run.py test_auth_cert.py
"""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import unittest

from harness import Server, make_cert

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover - deps.sh installs python3-hvac
    hvac = None

BAD = "invalid certificate or no client certificate supplied"
NO_MATCH = "no chain matching all constraints could be found for this login certificate"

CA_CNF = """
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}/newcerts
certificate = {d}/root.pem
private_key = {d}/root.key
serial = {d}/serial
crlnumber = {d}/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
copy_extensions = copy
unique_subject = no
[ policy_any ]
commonName = supplied
organizationalUnitName = optional
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
[ inter ]
basicConstraints = critical, CA:TRUE
keyUsage = keyCertSign, cRLSign
"""


def run(*args):
    subprocess.run(list(args), check=True, capture_output=True)


class Pki:
    """A root CA (openssl ca), an intermediate, and client certificates."""

    def __init__(self, d):
        self.d = d
        os.makedirs(os.path.join(d, "newcerts"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "crlnumber"), "w") as f:
            f.write("01\n")
        self.cnf = os.path.join(d, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(CA_CNF.format(d=d))
        self.root = self.self_signed("root", "Test Root CA")
        self.other = self.self_signed("other", "Unrelated CA")
        self.inter = self.issue("inter", "Test Intermediate", ext="inter")

    def p(self, name):
        return os.path.join(self.d, name)

    def self_signed(self, name, cn):
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.p(name + ".key"), "-out", self.p(name + ".pem"), "-days", "3",
            "-subj", "/CN=%s" % cn, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=keyCertSign,cRLSign")
        return self.p(name + ".pem")

    def csr(self, name, subj, san=None):
        args = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.p(name + ".key"), "-out", self.p(name + ".csr"), "-subj", subj]
        if san:
            args += ["-addext", "subjectAltName=" + san]
        run(*args)

    def issue(self, name, cn, ext="leaf", san=None, ou=None, start=None, end=None):
        """Signed by the root through `openssl ca` (so it can be revoked)."""
        subj = "/CN=%s" % cn + ("/OU=%s" % ou if ou else "")
        self.csr(name, subj, san)
        args = ["openssl", "ca", "-batch", "-config", self.cnf, "-extensions", ext, "-notext",
                "-in", self.p(name + ".csr"), "-out", self.p(name + ".pem")]
        if start:
            args += ["-startdate", start, "-enddate", end]
        run(*args)
        return self.p(name + ".pem")

    def issue_by(self, ca, name, cn, san=None):
        """Signed by another CA (the intermediate, or the unrelated one)."""
        self.csr(name, "/CN=%s" % cn, san)
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                    + ("subjectAltName=%s\n" % san if san else ""))
        run("openssl", "x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p(ca + ".pem"),
            "-CAkey", self.p(ca + ".key"), "-CAcreateserial", "-days", "2", "-out", self.p(name + ".pem"),
            "-extfile", ext)
        return self.p(name + ".pem")

    def revoke(self, name):
        run("openssl", "ca", "-config", self.cnf, "-revoke", self.p(name + ".pem"))

    def crl(self):
        run("openssl", "ca", "-config", self.cnf, "-gencrl", "-out", self.p("crl.pem"))
        return open(self.p("crl.pem")).read()

    def serial(self, name):
        out = subprocess.run(["openssl", "x509", "-in", self.p(name + ".pem"), "-noout", "-serial"],
                             check=True, capture_output=True, text=True).stdout
        return str(int(out.strip().split("=")[1], 16))

    def chain(self, *names):
        path = self.p("-".join(names) + ".chain.pem")
        with open(path, "w") as f:
            for n in names:
                f.write(open(self.p(n + ".pem")).read())
        return path


def pem(path):
    return open(path).read()


class CertAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-cert-")
        cls.pki = Pki(os.path.join(cls.tmp, "pki"))
        k = cls.pki
        k.issue("alice", "alice", san="DNS:alice.example.com,email:alice@example.com", ou="eng")
        k.issue("bob", "bob", san="DNS:bob.example.com")
        k.issue("carol", "carol")
        k.issue("old", "old", start="20200101000000Z", end="20200201000000Z")
        k.issue_by("inter", "dave", "dave", san="DNS:dave.example.com")
        k.issue_by("other", "eve", "alice")  # same CN, wrong CA
        scert, skey = make_cert(cls.tmp)
        cls.server_cert = scert
        cls.s = Server(tls=(scert, skey)).start()
        cls.s.init_unseal()
        s = cls.s
        assert s.post("sys/auth/cert", {"type": "cert"}).status == 204
        for name, pol in (("p-root", 'path "secret/*" { capabilities = ["read"] }'),):
            assert s.put("sys/policy/" + name, {"policy": pol}).status == 204

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def login(self, cert=None, key=None, body=None, path="auth/cert/login"):
        ctx = ssl.create_default_context(cafile=self.server_cert)
        if cert:
            ctx.load_cert_chain(cert, key)
        c = http.client.HTTPSConnection("127.0.0.1", self.s.port, timeout=30, context=ctx)
        try:
            c.request("POST", "/v1/" + path, body=json.dumps(body or {}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def key(self, name):
        return self.pki.p(name + ".key")

    def crt(self, name):
        return self.pki.p(name + ".pem")

    def put_cert(self, name, **fields):
        r = self.s.post("auth/cert/certs/" + name, fields)
        self.assertEqual(r.status, 204, r)

    def test_1_crud_and_login_by_name(self):
        s = self.s
        self.put_cert("eng", certificate=pem(self.pki.root), allowed_common_names=["alice", "bob"],
                      allowed_organizational_units=["eng"], token_policies="p-root", token_ttl="1h",
                      display_name="engineers")
        r = s.get("auth/cert/certs/eng")
        d = r.json()["data"]
        self.assertEqual(d["allowed_common_names"], ["alice", "bob"])
        self.assertEqual(d["token_policies"], ["p-root"])
        self.assertIn("BEGIN CERTIFICATE", d["certificate"])
        self.assertIn("eng", s.list("auth/cert/certs").json()["data"]["keys"])
        # a bad certificate is refused at write
        r = s.post("auth/cert/certs/bad", {"certificate": "not a pem"})
        self.assertEqual(r.status, 400, r)

        st, j = self.login(self.crt("alice"), self.key("alice"), {"name": "eng"})
        self.assertEqual(st, 200, j)
        a = j["auth"]
        self.assertIn("p-root", a["policies"])
        self.assertEqual(a["metadata"]["cert_name"], "eng")
        self.assertEqual(a["metadata"]["common_name"], "alice")
        self.assertEqual(a["metadata"]["serial_number"], self.pki.serial("alice"))
        self.assertEqual(a["lease_duration"], 3600)
        r = s.get("auth/token/lookup-self", token=a["client_token"])
        self.assertEqual(r.json()["data"]["display_name"], "cert-engineers")
        # bob lacks OU=eng: the chain is fine, the constraints are not
        st, j = self.login(self.crt("bob"), self.key("bob"), {"name": "eng"})
        self.assertEqual((st, j["errors"]), (400, [NO_MATCH]))

    def test_2_refusals(self):
        self.put_cert("any", certificate=pem(self.pki.root), token_policies="default")
        st, j = self.login(None, None, {"name": "any"})
        self.assertEqual((st, j["errors"]), (400, ["no client certificate found"]))
        # right CN, wrong CA
        st, j = self.login(self.crt("eve"), self.key("eve"), {"name": "any"})
        self.assertEqual((st, j["errors"]), (400, [BAD]))
        # expired (signed by the trusted root in 2020)
        st, j = self.login(self.crt("old"), self.key("old"), {"name": "any"})
        self.assertEqual((st, j["errors"]), (400, [BAD]))
        # an intermediate's leaf without its chain does not reach the root
        st, j = self.login(self.crt("dave"), self.key("dave"), {"name": "any"})
        self.assertEqual((st, j["errors"]), (400, [BAD]))

    def test_3_chains(self):
        # the leaf presented with its intermediate chains to the root
        self.put_cert("root-only", certificate=pem(self.pki.root), allowed_dns_sans=["*.example.com"])
        st, j = self.login(self.pki.chain("dave", "inter"), self.key("dave"), {"name": "root-only"})
        self.assertEqual(st, 200, j)
        self.assertEqual(j["auth"]["metadata"]["cert_name"], "root-only")
        # an intermediate as the trust anchor: the leaf alone is enough
        self.put_cert("inter-only", certificate=pem(self.pki.inter))
        st, j = self.login(self.crt("dave"), self.key("dave"), {"name": "inter-only"})
        self.assertEqual(st, 200, j)
        # a leaf certificate trusted as itself (a non-CA entry)
        self.put_cert("carol-itself", certificate=pem(self.crt("carol")))
        st, j = self.login(self.crt("carol"), self.key("carol"), {"name": "carol-itself"})
        self.assertEqual(st, 200, j)
        st, j = self.login(self.crt("bob"), self.key("bob"), {"name": "carol-itself"})
        self.assertEqual(st, 400, j)

    def test_4_login_without_name_tries_every_entry(self):
        self.put_cert("zz-emails", certificate=pem(self.pki.root), allowed_email_sans=["*@example.com"],
                      token_policies="p-root")
        # eve (other CA) matches nothing anywhere
        st, j = self.login(self.crt("eve"), self.key("eve"))
        self.assertEqual(st, 400, j)
        # alice matches the first entry in name order that accepts her
        st, j = self.login(self.crt("alice"), self.key("alice"))
        self.assertEqual(st, 200, j)
        self.assertIn(j["auth"]["metadata"]["cert_name"], ("any", "eng", "root-only", "zz-emails"))

    def test_5_crl_and_renewal_recheck(self):
        s = self.s
        self.put_cert("crl-ca", certificate=pem(self.pki.root), allowed_common_names=["bob", "carol"],
                      token_policies="default", token_ttl="10m", token_max_ttl="1h")
        st, j = self.login(self.crt("carol"), self.key("carol"), {"name": "crl-ca"})
        self.assertEqual(st, 200, j)
        carol_tok = j["auth"]["client_token"]
        self.assertEqual(s.post("auth/token/renew-self", token=carol_tok).status, 200)
        # bob and carol are revoked; the CRL goes in
        self.pki.revoke("bob")
        self.pki.revoke("carol")
        r = s.post("auth/cert/crls/main", {"crl": self.pki.crl()})
        self.assertEqual(r.status, 204, r)
        serials = s.get("auth/cert/crls/main").json()["data"]["serials"]
        self.assertIn(self.pki.serial("bob"), serials)
        st, j = self.login(self.crt("bob"), self.key("bob"), {"name": "crl-ca"})
        self.assertEqual((st, j["errors"]), (400, [NO_MATCH]))
        # carol's token does not renew any more: the certificate is re-checked
        r = s.post("auth/token/renew-self", token=carol_tok)
        self.assertIn(r.status, (400, 403), r)
        # the CRL removed: logins work again
        self.assertEqual(s.delete("auth/cert/crls/main").status, 204)
        st, j = self.login(self.crt("bob"), self.key("bob"), {"name": "crl-ca"})
        self.assertEqual(st, 200, j)
        # the entry deleted: its tokens do not renew
        tok = j["auth"]["client_token"]
        self.assertEqual(s.delete("auth/cert/certs/crl-ca").status, 204)
        self.assertIn(s.post("auth/token/renew-self", token=tok).status, (400, 403))

    def test_6_config(self):
        s = self.s
        self.assertEqual(s.get("auth/cert/config").json()["data"],
                         {"disable_binding": False, "enable_identity_alias_metadata": False})
        self.assertEqual(s.post("auth/cert/config", {"disable_binding": True}).status, 204)
        self.assertTrue(s.get("auth/cert/config").json()["data"]["disable_binding"])

    @unittest.skipIf(hvac is None, "python3-hvac is not installed")
    def test_7_hvac(self):
        c = hvac.Client(url="https://127.0.0.1:%d" % self.s.port, token=self.s.root_token,
                        verify=self.server_cert, timeout=30)
        c.auth.cert.create_ca_certificate_role("hv", certificate=self.pki.root,
                                               allowed_common_names="alice", token_policies=["p-root"])
        self.assertIn("hv", c.auth.cert.list_certificate_roles()["data"]["keys"])
        a = hvac.Client(url="https://127.0.0.1:%d" % self.s.port, verify=self.server_cert, timeout=30)
        r = a.auth.cert.login(name="hv", cert_pem=self.crt("alice"),
                              key_pem=self.key("alice"))
        self.assertIn("p-root", r["auth"]["policies"])
        self.assertTrue(a.is_authenticated())
        with self.assertRaises(hexc.InvalidRequest):
            hvac.Client(url="https://127.0.0.1:%d" % self.s.port, verify=self.server_cert).auth.cert.login(
                name="hv", cert_pem=self.crt("eve"), key_pem=self.key("eve"))


if __name__ == "__main__":
    unittest.main()
