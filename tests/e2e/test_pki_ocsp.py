"""
test_pki_ocsp.py - revocation status from the PKI engine through the real
binary, checked by real tools: `openssl ocsp` against `pki/ocsp` (good,
revoked, unknown; POST and GET; a garbage request; ocsp_disable), delta
CRLs read by `openssl crl` and used by `openssl verify -use_deltas` (auto-tidy:
test_pki_tidy.py).
"""
import base64
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import Server


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, input=input,
                          timeout=60)


class PkiRevocationBase(unittest.TestCase):
    def setUp(self):
        self.s = Server(dev=True).start()
        self.tmp = tempfile.mkdtemp(prefix="pki-ocsp-e2e-")
        r = self.s.post("sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
        self.assertIn(r.status, (200, 204), r)
        r = self.s.post("pki/root/generate/internal",
                        {"common_name": "OCSP Root", "ttl": "8760h", "key_type": "ec"})
        self.assertEqual(r.status, 200, r)
        self.ca = self.write("ca.pem", r.json()["data"]["certificate"])
        r = self.s.post("pki/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                          "key_type": "ec", "max_ttl": "72h"})
        self.assertIn(r.status, (200, 204), r)

    def tearDown(self):
        self.s.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        return p

    def issue(self, cn, **extra):
        body = {"common_name": cn}
        body.update(extra)
        r = self.s.post("pki/issue/web", body)
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        d["path"] = self.write(cn + ".pem", d["certificate"])
        return d


class OcspTest(PkiRevocationBase):
    def ocsp(self, *args, url_path="pki/ocsp"):
        return openssl("ocsp", "-issuer", self.ca, "-CAfile", self.ca,
                       "-url", "http://%s/v1/%s" % (self.s.addr, url_path), "-resp_text", *args)

    def test_good_revoked_unknown_nonce(self):
        leaf = self.issue("a.example.com")
        r = self.ocsp("-cert", leaf["path"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Response verify OK", r.stderr + r.stdout)
        self.assertIn("%s: good" % leaf["path"], r.stdout)
        self.assertIn("Next Update:", r.stdout)  # ocsp_expiry 12h by default
        # openssl sends a nonce by default: a missing echo would be reported
        self.assertNotIn("no nonce in response", r.stdout + r.stderr)
        self.assertIn("Responder Id:", r.stdout)
        # revoke: revoked with the revocation time
        rv = self.s.post("pki/revoke", {"serial_number": leaf["serial_number"]})
        self.assertEqual(rv.status, 200, rv)
        r = self.ocsp("-cert", leaf["path"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s: revoked" % leaf["path"], r.stdout)
        self.assertIn("Revocation Time:", r.stdout)
        # a serial this CA never issued: unknown, still signed by the CA
        r = self.ocsp("-serial", "0x0123456789abcdef")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0x0123456789abcdef: unknown", r.stdout)
        self.assertIn("Response verify OK", r.stderr + r.stdout)
        # the per-issuer form answers the same
        iid = self.s.get("pki/issuer/default").json()["data"]["issuer_id"]
        r = self.ocsp("-cert", leaf["path"], url_path="pki/issuer/%s/ocsp" % iid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s: revoked" % leaf["path"], r.stdout)

    def test_get_form_and_no_auth(self):
        leaf = self.issue("b.example.com")
        reqf = os.path.join(self.tmp, "req.der")
        r = openssl("ocsp", "-issuer", self.ca, "-cert", leaf["path"], "-no_nonce", "-reqout", reqf)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(reqf, "rb") as f:
            der = f.read()
        path = "pki/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        g = self.s.get(path, token="")
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.headers.get("content-type"), "application/ocsp-response")
        respf = os.path.join(self.tmp, "resp.der")
        with open(respf, "wb") as f:
            f.write(g.body)
        t = openssl("ocsp", "-respin", respf, "-issuer", self.ca, "-CAfile", self.ca,
                    "-cert", leaf["path"], "-resp_text")
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn(": good", t.stdout)
        # POST without a token, as OCSP clients send it
        p = self.s.request("POST", "pki/ocsp", raw=der, token="",
                           headers={"Content-Type": "application/ocsp-request"})
        self.assertEqual(p.status, 200, p)
        self.assertEqual(p.body[:1], b"\x30")

    def resp_text(self, body):
        f = os.path.join(self.tmp, "r.der")
        with open(f, "wb") as fh:
            fh.write(body)
        return openssl("ocsp", "-respin", f, "-resp_text", "-noverify").stdout

    def test_garbage_is_malformed_and_server_keeps_serving(self):
        for junk in (b"", b"garbage", b"\x30\x82\xff\xff", os.urandom(300)):
            p = self.s.request("POST", "pki/ocsp", raw=junk, token="",
                               headers={"Content-Type": "application/ocsp-request"})
            self.assertEqual(p.status, 400, p)
            self.assertEqual(p.headers.get("content-type"), "application/ocsp-response")
            self.assertIn("malformedrequest (1)", self.resp_text(p.body).lower())
        g = self.s.get("pki/ocsp/" + urllib.parse.quote("not*base64", safe=""), token="")
        self.assertEqual(g.status, 400, g)
        self.assertIn("malformedrequest", self.resp_text(g.body).lower())
        leaf = self.issue("c.example.com")
        r = self.ocsp("-cert", leaf["path"])
        self.assertIn(": good", r.stdout)

    def test_ocsp_disable_answers_unauthorized(self):
        leaf = self.issue("d.example.com")
        r = self.s.post("pki/config/crl", {"ocsp_disable": True, "ocsp_expiry": "0"})
        self.assertIn(r.status, (200, 204), r)
        cfg = self.s.get("pki/config/crl").json()["data"]
        self.assertTrue(cfg["ocsp_disable"])
        self.assertEqual(cfg["ocsp_expiry"], "0")
        reqf = os.path.join(self.tmp, "req.der")
        openssl("ocsp", "-issuer", self.ca, "-cert", leaf["path"], "-reqout", reqf)
        with open(reqf, "rb") as f:
            der = f.read()
        p = self.s.request("POST", "pki/ocsp", raw=der, token="",
                           headers={"Content-Type": "application/ocsp-request"})
        self.assertEqual(p.status, 401, p)
        self.assertIn("unauthorized (6)", self.resp_text(p.body).lower())
        # enabled again, ocsp_expiry 0: no nextUpdate
        self.s.post("pki/config/crl", {"ocsp_disable": False})
        r = self.ocsp("-cert", leaf["path"])
        self.assertIn(": good", r.stdout)
        self.assertNotIn("Next Update:", r.stdout)



class DeltaCrlTest(PkiRevocationBase):
    def pem(self, path):
        r = self.s.get(path, token="")
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def test_delta_lists_new_revocations_and_verify_uses_it(self):
        # without enable_delta there is no delta CRL; enable_delta needs auto_rebuild (Vault)
        r = self.s.get("pki/crl/delta", token="")
        self.assertEqual(r.status, 400, r)
        r = self.s.post("pki/config/crl", {"enable_delta": True})
        self.assertEqual(r.status, 400, r)
        self.assertIn("Delta CRLs cannot be enabled when auto rebuilding is disabled",
                      r.json()["errors"][0])
        dp = "http://%s/v1/pki/crl/delta" % self.s.addr
        r = self.s.post("pki/config/urls", {"delta_crl_distribution_points": [dp]})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(self.s.get("pki/config/urls").json()["data"]["delta_crl_distribution_points"], [dp])
        r = self.s.post("pki/config/crl", {"auto_rebuild": True, "enable_delta": True})
        self.assertIn(r.status, (200, 204), r)
        old = self.issue("old.example.com")
        new = self.issue("new.example.com")
        keep = self.issue("keep.example.com")
        self.s.post("pki/revoke", {"serial_number": old["serial_number"]})
        self.assertEqual(self.s.get("pki/crl/rotate").status, 200)  # old is in the complete CRL
        full = self.write("full.pem", self.pem("pki/crl/pem"))
        rv = self.s.post("pki/revoke", {"serial_number": new["serial_number"]})
        self.assertEqual(rv.status, 200, rv)
        # auto_rebuild: the complete CRL waits, the delta has the revocation at once
        self.assertEqual(open(full).read().strip(), self.pem("pki/crl/pem").strip())
        delta = self.write("delta.pem", self.pem("pki/crl/delta/pem"))
        t = openssl("crl", "-in", delta, "-noout", "-text", "-CAfile", self.ca)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("verify OK", t.stdout + t.stderr)
        self.assertIn("Delta CRL Indicator: critical", t.stdout)
        want = new["serial_number"].replace(":", "").upper()
        self.assertIn("Serial Number: " + want, t.stdout)
        self.assertNotIn(old["serial_number"].replace(":", "").upper(), t.stdout)
        base = int(openssl("crl", "-in", full, "-noout", "-crlnumber").stdout.strip().split("=")[1], 16)
        self.assertRegex(t.stdout, r"Delta CRL Indicator: critical\s+%d\n" % base)
        ft = openssl("crl", "-in", full, "-noout", "-text").stdout
        self.assertIn("Freshest CRL", ft)
        self.assertIn(dp, ft)
        self.assertNotIn(want, ft)
        # DER forms and the per-issuer paths serve the same delta
        der = self.s.get("pki/crl/delta", token="")
        self.assertEqual(der.headers.get("content-type"), "application/pkix-crl")
        iid = self.s.get("pki/issuer/default").json()["data"]["issuer_id"]
        self.assertEqual(self.s.get("pki/issuer/%s/crl/delta/der" % iid, token="").body, der.body)
        self.assertEqual(self.pem("pki/issuer/%s/crl/delta/pem" % iid).strip(), open(delta).read().strip())
        # openssl: the complete CRL alone passes the new revocation, with the delta it fails
        v = openssl("verify", "-crl_check", "-CAfile", self.ca, "-CRLfile", full, new["path"])
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        v = openssl("verify", "-crl_check", "-use_deltas", "-CAfile", self.ca, "-CRLfile", full,
                    "-CRLfile", delta, new["path"])
        self.assertNotEqual(v.returncode, 0, v.stdout)
        self.assertIn("certificate revoked", v.stdout + v.stderr)
        v = openssl("verify", "-crl_check", "-use_deltas", "-CAfile", self.ca, "-CRLfile", full,
                    "-CRLfile", delta, keep["path"])
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # rotate-delta renumbers; a complete rebuild empties the delta
        n1 = openssl("crl", "-in", delta, "-noout", "-crlnumber").stdout
        self.assertEqual(self.s.get("pki/crl/rotate-delta").status, 200)
        n2 = openssl("crl", "-in", self.write("d2.pem", self.pem("pki/crl/delta/pem")), "-noout",
                     "-crlnumber").stdout
        self.assertNotEqual(n1, n2)
        self.s.get("pki/crl/rotate")
        t = openssl("crl", "-in", self.write("d3.pem", self.pem("pki/crl/delta/pem")), "-noout", "-text")
        self.assertIn("No Revoked Certificates", t.stdout)


if __name__ == "__main__":
    unittest.main()
