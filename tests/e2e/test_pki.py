"""
test_pki.py - the PKI secrets engine through the real binary: the guide's
flow typed with the `coffer` CLI, hvac's `client.secrets.pki.*` calls, and
real tools checking the results: `openssl verify` on every chain (root ->
leaf, root -> intermediate -> leaf), `openssl crl` listing a revoked serial,
a TLS handshake between Python ssl peers using issued server and client
certificates, and Vault's 400 messages for bad input.
"""
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import BIN, Server

try:
    import hvac
    import hvac.exceptions as hexc
except ImportError:  # pragma: no cover
    hvac = None


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, input=input)


class PkiBase(unittest.TestCase):
    def setUp(self):
        self.s = Server(dev=True).start()
        self.tmp = tempfile.mkdtemp(prefix="pki-e2e-")
        self.env = dict(os.environ, VAULT_ADDR="http://%s" % self.s.addr, VAULT_TOKEN="root")

    def tearDown(self):
        self.s.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def cli(self, *args):
        r = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=self.env, timeout=60)
        return r

    def ok(self, *args):
        r = self.cli(*args)
        self.assertEqual(r.returncode, 0, "%s: %s %s" % (args, r.stdout, r.stderr))
        return r.stdout

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        return p


class PkiGuideTest(PkiBase):
    """The guide's commands, verbatim, then openssl on the result."""

    def test_guide_flow_cli(self):
        self.ok("secrets", "enable", "pki")
        self.ok("secrets", "tune", "-max-lease-ttl=87600h", "pki")
        out = json.loads(self.ok("write", "-format=json", "pki/root/generate/internal",
                                 "common_name=example.com", "ttl=87600h"))
        root = out["data"]["certificate"]
        self.assertNotIn("private_key", out["data"])
        self.assertRegex(out["data"]["serial_number"], r"^([0-9a-f]{2}:)+[0-9a-f]{2}$")
        base = "http://%s/v1/pki" % self.s.addr
        self.ok("write", "pki/config/urls", "issuing_certificates=%s/ca" % base,
                "crl_distribution_points=%s/crl" % base)
        self.ok("write", "pki/roles/myapp-role", "allowed_domains=myapp.example.com",
                "allow_subdomains=true", "max_ttl=72h")
        out = json.loads(self.ok("write", "-format=json", "pki/issue/myapp-role",
                                 "common_name=api.myapp.example.com"))
        d = out["data"]
        for k in ("certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type",
                  "serial_number", "expiration"):
            self.assertIn(k, d)
        self.assertEqual(d["issuing_ca"], root)
        self.assertEqual(d["ca_chain"], [root])
        self.assertEqual(d["private_key_type"], "rsa")
        ca = self.write("ca.pem", root)
        leaf = self.write("leaf.pem", d["certificate"])
        v = openssl("verify", "-CAfile", ca, leaf)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        text = openssl("x509", "-in", leaf, "-noout", "-text").stdout
        self.assertIn("DNS:api.myapp.example.com", text)
        self.assertIn("CA Issuers - URI:%s/ca" % base, text)
        self.assertIn("URI:%s/crl" % base, text)
        self.assertIn("TLS Web Server Authentication", text)
        # 72h max_ttl caps the default (768h) validity
        end = openssl("x509", "-in", leaf, "-noout", "-enddate").stdout
        start = openssl("x509", "-in", leaf, "-noout", "-startdate").stdout
        self.assertTrue(end and start)
        self.assertLessEqual(d["expiration"] - int(_epoch(start)), 72 * 3600 + 31)
        # the key is the certificate's
        kp = self.write("leaf.key", d["private_key"])
        m1 = openssl("pkey", "-in", kp, "-pubout").stdout
        m2 = openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout
        self.assertEqual(m1, m2)
        # the CA is public: ca/pem with no token
        r = self.s.get("pki/ca/pem", token="")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.decode().strip(), root)

    def test_bad_input_messages(self):
        self.ok("secrets", "enable", "pki")
        self.ok("write", "pki/root/generate/internal", "common_name=example.com", "key_type=ec",
                "ttl=100h")
        self.ok("write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true",
                "key_type=ec", "ttl=1h")
        r = self.s.post("pki/issue/web", {"common_name": "www.evil.org"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"], ["common name www.evil.org not allowed by this role"])
        r = self.s.post("pki/issue/web", {"common_name": "a.example.com", "alt_names": "b.evil.org"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"], ["subject alternate name b.evil.org not allowed by this role"])
        r = self.s.post("pki/issue/nosuch", {"common_name": "a.example.com"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"], ["unknown role: nosuch"])
        r = self.s.post("pki/sign/web", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n"
                                                "-----END CERTIFICATE REQUEST-----"})
        self.assertEqual(r.status, 400)
        self.assertIn("certificate request could not be parsed", r.json()["errors"][0])
        # an RSA CSR for an EC role
        key = os.path.join(self.tmp, "rsa.key")
        csr = openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                      "-subj", "/CN=a.example.com")
        r = self.s.post("pki/sign/web", {"csr": csr.stdout})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["errors"], ["role requires keys of type ec"])
        r = self.s.post("pki/issue/web", {"common_name": "a.example.com", "ip_sans": "300.1.1.1"})
        self.assertEqual(r.status, 400)
        r = self.s.post("pki/issue/web", {"common_name": "a.example.com", "format": "xml"})
        self.assertEqual(r.status, 400)
        # a TTL past the CA's notAfter (the CA lives 100h; the mount max is 768h)
        r = self.s.post("pki/issue/web", {"common_name": "a.example.com", "ttl": "9000h"})
        self.assertEqual(r.status, 400)
        self.assertIn("beyond the expiration of the CA certificate", r.json()["errors"][0])
        r = self.s.post("pki/revoke", {"serial_number": "01:02:03"})
        self.assertEqual(r.status, 400)
        self.assertIn("not found", r.json()["errors"][0])


def _epoch(line):
    import email.utils
    import datetime
    s = line.split("=", 1)[1].strip()
    dt = datetime.datetime.strptime(s, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


@unittest.skipIf(hvac is None, "python3-hvac is not installed")
class PkiHvacTest(PkiBase):
    def setUp(self):
        super().setUp()
        self.c = hvac.Client(url="http://%s" % self.s.addr, token="root", timeout=30)
        self.c.sys.enable_secrets_engine("pki", path="pki", config={"max_lease_ttl": "87600h"})
        self.pki = self.c.secrets.pki

    def test_root_role_issue_revoke_crl(self):
        r = self.pki.generate_root("exported", "Coffer Root", extra_params={"key_type": "ec", "ttl": "8760h"})
        root = r["data"]["certificate"]
        self.assertIn("EC PRIVATE KEY", r["data"]["private_key"])
        self.assertEqual(self.pki.read_ca_certificate().strip(), root)
        self.pki.set_urls({"issuing_certificates": ["http://127.0.0.1/v1/pki/ca"]})
        self.assertEqual(self.pki.read_urls()["data"]["issuing_certificates"], ["http://127.0.0.1/v1/pki/ca"])
        self.pki.create_or_update_role("svc", extra_params={
            "allowed_domains": ["svc.internal"], "allow_subdomains": True, "key_type": "ec",
            "max_ttl": "24h", "allow_ip_sans": True})
        role = self.pki.read_role("svc")["data"]
        self.assertEqual(role["allowed_domains"], ["svc.internal"])
        self.assertEqual(role["max_ttl"], 86400)
        self.assertIn("svc", self.pki.list_roles()["data"]["keys"])
        issued = []
        for i in range(3):
            c = self.pki.generate_certificate("svc", "n%d.svc.internal" % i,
                                              extra_params={"ip_sans": "127.0.0.1"})["data"]
            issued.append(c)
        ca = self.write("root.pem", root)
        for c in issued:
            v = openssl("verify", "-CAfile", ca, self.write("l.pem", c["certificate"]))
            self.assertEqual(v.returncode, 0, v.stderr)
        serials = self.pki.list_certificates()["data"]["keys"]
        for c in issued:
            self.assertIn(c["serial_number"].replace(":", "-"), serials)
        got = self.pki.read_certificate(issued[0]["serial_number"])["data"]
        self.assertEqual(got["certificate"], issued[0]["certificate"])
        rv = self.pki.revoke_certificate(issued[1]["serial_number"])["data"]
        self.assertGreater(rv["revocation_time"], 0)
        self.assertTrue(rv["revocation_time_rfc3339"].endswith("Z"))
        crl_pem = self.pki.read_crl()
        crlf = self.write("crl.pem", crl_pem)
        t = openssl("crl", "-in", crlf, "-noout", "-text", "-CAfile", ca)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("verify OK", t.stderr + t.stdout)
        want = issued[1]["serial_number"].replace(":", "").upper()
        self.assertIn("Serial Number: " + want, t.stdout)
        self.assertNotIn(issued[0]["serial_number"].replace(":", "").upper(), t.stdout)
        # the DER CRL is the same list; rotate bumps the CRL number
        der = self.s.get("pki/crl", token="")
        self.assertEqual(der.headers.get("content-type"), "application/pkix-crl")
        n1 = openssl("crl", "-in", crlf, "-noout", "-crlnumber").stdout
        self.pki.rotate_crl()
        n2 = openssl("crl", "-in", self.write("crl2.pem", self.pki.read_crl()), "-noout", "-crlnumber").stdout
        self.assertNotEqual(n1, n2)
        revoked = self.s.list("pki/certs/revoked").json()["data"]["keys"]
        self.assertEqual(revoked, [issued[1]["serial_number"].replace(":", "-")])
        # openssl verify with CRL checking rejects the revoked one only
        bad = openssl("verify", "-crl_check", "-CAfile", ca, "-CRLfile", crlf,
                      self.write("bad.pem", issued[1]["certificate"]))
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("revoked", bad.stdout + bad.stderr)
        good = openssl("verify", "-crl_check", "-CAfile", ca, "-CRLfile", crlf,
                       self.write("good.pem", issued[0]["certificate"]))
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        # tidy answers 202 like Vault
        tr = self.pki.tidy(extra_params={"tidy_cert_store": True, "tidy_revoked_certs": True})
        self.assertEqual(tr.status_code, 202)
        self.pki.delete_role("svc")
        with self.assertRaises(hexc.InvalidPath):
            self.pki.read_role("svc")

    def test_intermediate_chain(self):
        self.pki.generate_root("internal", "Root CA", extra_params={"key_type": "ec", "ttl": "8760h",
                                                                    "issuer_name": "root"})
        self.c.sys.enable_secrets_engine("pki", path="pki_int", config={"max_lease_ttl": "43800h"})
        csr = self.pki.generate_intermediate("internal", "Intermediate CA", mount_point="pki_int",
                                             extra_params={"key_type": "ec"})["data"]["csr"]
        self.assertIn("BEGIN CERTIFICATE REQUEST", csr)
        signed = self.pki.sign_intermediate(csr, "Intermediate CA",
                                            extra_params={"ttl": "4380h", "format": "pem_bundle"})["data"]
        self.assertIn("BEGIN CERTIFICATE", signed["certificate"])
        inter = signed["certificate"]
        r = self.pki.set_signed_intermediate(inter, mount_point="pki_int")
        self.assertEqual(len(r["data"]["imported_issuers"]), 1)
        self.pki.create_or_update_role("web", mount_point="pki_int", extra_params={
            "allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec",
            "max_ttl": "72h"})
        leaf = self.pki.generate_certificate("web", "www.example.com", mount_point="pki_int")["data"]
        self.assertEqual(leaf["issuing_ca"], inter.strip())
        root = self.pki.read_ca_certificate().strip()
        rootf = self.write("root.pem", root)
        v = openssl("verify", "-CAfile", rootf, "-untrusted", self.write("int.pem", inter),
                    self.write("leaf.pem", leaf["certificate"]))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # without the intermediate the chain does not verify
        v = openssl("verify", "-CAfile", rootf, self.write("leaf2.pem", leaf["certificate"]))
        self.assertNotEqual(v.returncode, 0)
        # issuers and keys listings, the named root
        iss = self.s.list("pki/issuers").json()["data"]
        self.assertEqual(len(iss["keys"]), 1)
        self.assertEqual(iss["key_info"][iss["keys"][0]]["issuer_name"], "root")
        ir = self.s.get("pki/issuer/root").json()["data"]
        self.assertEqual(ir["certificate"], root)
        keys = self.s.list("pki_int/keys").json()["data"]["keys"]
        self.assertEqual(len(keys), 1)
        # a second root is another issuer; config/issuers picks the default
        r2 = self.s.post("pki/root/generate/internal", {"common_name": "Root 2", "key_type": "ed25519",
                                                        "issuer_name": "root2"}).json()
        self.assertEqual(len(self.s.list("pki/issuers").json()["data"]["keys"]), 2)
        self.assertEqual(self.s.post("pki/config/issuers", {"default": "root2"}).status, 200)
        self.assertEqual(self.s.get("pki/ca/pem", token="").body.decode().strip(), r2["data"]["certificate"])
        # DELETE root removes every issuer
        self.assertEqual(self.s.delete("pki/root").status, 204)
        self.assertEqual(self.s.list("pki/issuers").status, 404)


class PkiTlsTest(PkiBase):
    """An issued server certificate and an issued client certificate in a
    real mutual-TLS handshake."""

    def test_mutual_tls_handshake(self):
        s = self.s
        self.assertEqual(s.post("sys/mounts/pki", {"type": "pki"}).status, 204)
        root = s.post("pki/root/generate/internal", {"common_name": "TLS Root", "key_type": "ec"}).json()["data"]
        s.post("pki/roles/server", {"allowed_domains": "localhost", "allow_bare_domains": True,
                                    "allow_localhost": True, "key_type": "ec", "server_flag": True,
                                    "client_flag": False, "ttl": "1h"})
        s.post("pki/roles/client", {"allow_any_name": True, "key_type": "ec", "server_flag": False,
                                    "client_flag": True, "ttl": "1h"})
        srv = s.post("pki/issue/server", {"common_name": "localhost", "ip_sans": "127.0.0.1"}).json()["data"]
        cli = s.post("pki/issue/client", {"common_name": "app-1"}).json()["data"]
        ca = self.write("ca.pem", root["certificate"])
        scert, skey = self.write("s.pem", srv["certificate"]), self.write("s.key", srv["private_key"])
        ccert, ckey = self.write("c.pem", cli["certificate"]), self.write("c.key", cli["private_key"])

        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(scert, skey)
        sctx.load_verify_locations(ca)
        sctx.verify_mode = ssl.CERT_REQUIRED
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        seen = {}

        def serve():
            conn, _ = lsock.accept()
            try:
                with sctx.wrap_socket(conn, server_side=True) as t:
                    seen["peer"] = t.getpeercert()
                    t.sendall(t.recv(100).upper())
            except Exception as e:  # reported through `seen`
                seen["error"] = repr(e)

        th = threading.Thread(target=serve)
        th.start()
        cctx = ssl.create_default_context(cafile=ca)
        cctx.load_cert_chain(ccert, ckey)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with cctx.wrap_socket(raw, server_hostname="localhost") as t:
                t.sendall(b"hello")
                self.assertEqual(t.recv(100), b"HELLO")
                self.assertEqual(dict(x[0] for x in t.getpeercert()["subject"])["commonName"], "localhost")
        th.join(10)
        lsock.close()
        self.assertNotIn("error", seen)
        self.assertEqual(dict(x[0] for x in seen["peer"]["subject"])["commonName"], "app-1")

        # a client certificate from another CA is refused by the server
        other = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.write("o.key", ""),
                                "-out", self.write("o.pem", ""), "-days", "1", "-subj", "/CN=intruder"],
                               capture_output=True)
        self.assertEqual(other.returncode, 0)
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        seen.clear()
        th = threading.Thread(target=serve)
        th.start()
        bctx = ssl.create_default_context(cafile=ca)
        bctx.load_cert_chain(os.path.join(self.tmp, "o.pem"), os.path.join(self.tmp, "o.key"))
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with bctx.wrap_socket(raw, server_hostname="localhost") as t:
                    t.sendall(b"x")
                    t.recv(10)
        th.join(10)
        lsock.close()
        self.assertIn("error", seen)


if __name__ == "__main__":
    unittest.main()
