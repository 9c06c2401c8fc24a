"""
kms_peer.py - a faithful local stand-in for AWS KMS, for the awskms seal.

No AWS can be reached from the test machines, so the e2e tests start this
peer on a loopback port. It implements the KMS JSON 1.1 protocol for the
three operations the seal uses (TrentService.Encrypt, Decrypt, DescribeKey)
and checks what the real service checks, never a canned answer:

* HTTPS only, with its own CA and a CA-signed certificate for 127.0.0.1
  (python3-cryptography); clients must trust ca.pem (AWS_CA_BUNDLE).
* Every request must carry a valid AWS Signature Version 4 (the header
  form): credential scope day/region/"kms"/"aws4_request", X-Amz-Date within
  15 minutes, the signature recomputed here from the request as received
  (method, path, query, the SignedHeaders, including host with its port, and
  the SHA-256 of the body). Unknown access key: UnrecognizedClientException;
  wrong signature: InvalidSignatureException; a temporary access key without
  its X-Amz-Security-Token: UnrecognizedClientException; too old:
  InvalidSignatureException "Signature expired".
* Keys are referenced by key id, key ARN, alias name or alias ARN. Unknown:
  NotFoundException; disabled: DisabledException; pending deletion:
  KMSInvalidStateException; the key policy lists the principals allowed each
  action, anyone else gets AccessDeniedException with the real service's
  wording. DescribeKey answers KMS's KeyMetadata (KeyId, Arn, Enabled,
  KeyState Enabled/Disabled/PendingDeletion, DeletionDate, ...) whatever the
  state. `disable_key`, `schedule_key_deletion`, `delete_key` change it.
* Temporary credentials (add_user with `expires`, as tests/peers/imds_peer.py
  mints them) need their session token and are refused after their
  expiration with ExpiredTokenException.
* Real envelope: a ciphertext blob is [version 1][key id 36][nonce 12]
  [AES-256-GCM ciphertext+tag] under the key's own material, with the
  encryption context (canonical JSON) as additional data, so a changed blob
  or context is InvalidCiphertextException, and a blob of another key given
  with an explicit KeyId is IncorrectKeyException.
* Throttling: `peer.throttle(n)` answers the next n requests with
  ThrottlingException "Rate exceeded".

Errors are HTTP 400 (500 for KMSInternalException) with
x-amzn-ErrorType and a JSON body {"__type": ..., "message": ...}.
Every request is recorded in `peer.calls` as (operation, access key, outcome).
"""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import socket
import ssl
import threading
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

ACCOUNT = "123456789012"
JSON_TYPE = "application/x-amz-json-1.1"


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_ca_and_cert(dirpath):
    """CA + server certificate for 127.0.0.1; returns (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.utcnow()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kms-peer test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(dirpath, n) for n in ("ca.pem", "kms-cert.pem", "kms-key.pem")]
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class KmsError(Exception):
    def __init__(self, typ, msg, status=400):
        super().__init__(msg)
        self.typ, self.msg, self.status = typ, msg, status


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _quote_path(path):
    out = []
    for ch in path.encode():
        c = chr(ch)
        if c.isascii() and (c.isalnum() or c in "-_.~/"):
            out.append(c)
        else:
            out.append("%%%02X" % ch)
    return "".join(out) or "/"


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """The peers' request handler base: HTTP/1.1, TCP_NODELAY (headers and
    body are separate writes: without it Nagle + the client's delayed ACK
    add 40 ms to every answer), no access log."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass


def serve(port, handler, cert=None, key=None):
    """A threading server for `handler` on 127.0.0.1:port (HTTPS with cert
    and key), serving in a daemon thread; returns it (stop: shutdown and
    server_close)."""
    class S(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    httpd = S(("127.0.0.1", port), handler)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class KmsPeer:
    def __init__(self, dirpath, region="us-east-1", port=None):
        self.dir = dirpath
        self.region = region
        self.port = port or _free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.ca, self.cert, self.key = make_ca_and_cert(dirpath)
        self.creds = {}    # access key -> {secret, token, arn}
        self.keys = {}     # key id -> {material, enabled, policy{action: set(arn)}, arn}
        self.aliases = {}  # "alias/name" -> key id
        self.calls = []
        self._throttle = 0
        self.lock = threading.Lock()
        self.httpd = None

    # -- set-up --
    def add_user(self, access_key, secret, name, token=None, expires=None, principal=None, arn=None):
        """A user's long-term key, or (expires: unix time) a temporary key
        with its session token, acting as `principal` (the role a key policy
        names) and reported as `arn` (the assumed-role session)."""
        arn = arn or "arn:aws:iam::%s:user/%s" % (ACCOUNT, name)
        self.creds[access_key] = {"secret": secret, "token": token, "arn": arn,
                                  "principal": principal or arn, "expires": expires}
        return arn

    def create_key(self, alias=None, allow=()):
        kid = str(uuid.uuid4())
        arn = "arn:aws:kms:%s:%s:key/%s" % (self.region, ACCOUNT, kid)
        pol = {a: set(allow) for a in ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")}
        self.keys[kid] = {"material": AESGCM.generate_key(256), "enabled": True, "policy": pol,
                          "arn": arn, "state": "Enabled", "created": time.time(), "deletion": None}
        if alias:
            self.aliases["alias/" + alias] = kid
        return kid, arn

    def disable_key(self, kid):
        """kms:DisableKey: KeyState Disabled, Enabled false."""
        self.keys[kid].update(enabled=False, state="Disabled")

    def schedule_key_deletion(self, kid, days=7):
        """kms:ScheduleKeyDeletion: KeyState PendingDeletion with a
        DeletionDate; the key can no longer be used."""
        self.keys[kid].update(enabled=False, state="PendingDeletion",
                              deletion=time.time() + days * 86400)

    def delete_key(self, kid):
        """The deletion date passed: the key (and its aliases) are gone."""
        del self.keys[kid]
        for a in [a for a, k in self.aliases.items() if k == kid]:
            del self.aliases[a]

    def throttle(self, n):
        with self.lock:
            self._throttle = n

    # -- lifecycle --
    def start(self):
        peer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are separate writes: without TCP_NODELAY,
            # Nagle + the client's delayed ACK add 40 ms to every answer
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                status, out, typ = peer.handle(self, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", JSON_TYPE)
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                if typ:
                    self.send_header("x-amzn-ErrorType", typ)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class S(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.httpd = S(("127.0.0.1", self.port), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # -- the protocol --
    def handle(self, req, body):
        op, who = "?", None
        try:
            target = req.headers.get("X-Amz-Target", "")
            if not target.startswith("TrentService."):
                raise KmsError("UnknownOperationException", "")
            op = target.split(".", 1)[1]
            if (req.headers.get("Content-Type") or "").split(";")[0] != JSON_TYPE:
                raise KmsError("SerializationException", "Content-Type must be " + JSON_TYPE)
            who = self.authenticate(req, body)
            with self.lock:
                if self._throttle > 0:
                    self._throttle -= 1
                    raise KmsError("ThrottlingException", "Rate exceeded")
            try:
                args = json.loads(body or b"{}")
                assert isinstance(args, dict)
            except (ValueError, AssertionError):
                raise KmsError("SerializationException", "Start of structure or map found where not expected")
            fn = {"Encrypt": self.op_encrypt, "Decrypt": self.op_decrypt,
                  "DescribeKey": self.op_describe}.get(op)
            if not fn:
                raise KmsError("UnknownOperationException", "")
            out = fn(who, args)
            self.calls.append((op, who and who["ak"], "ok"))
            return 200, out, None
        except KmsError as e:
            ak = who and who["ak"]
            if ak is None:  # refused while authenticating: the key it claimed
                cred = req.headers.get("Authorization", "").partition("Credential=")[2]
                ak = cred.split("/", 1)[0] or None
            self.calls.append((op, ak, e.typ))
            return e.status, {"__type": e.typ, "message": e.msg}, e.typ

    def authenticate(self, req, body):
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise KmsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        parts = {}
        for p in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = p.strip().partition("=")
            parts[k] = v
        try:
            ak, day, region, service, term = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
            sig = parts["Signature"]
        except (KeyError, ValueError):
            raise KmsError("IncompleteSignatureException", "Authorization header requires 'Credential', "
                           "'Signature' and 'SignedHeaders' parameters.")
        cred = self.creds.get(ak)
        if not cred:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        if cred["token"] is not None and req.headers.get("X-Amz-Security-Token") != cred["token"]:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        if cred["expires"] is not None and time.time() >= cred["expires"]:
            raise KmsError("ExpiredTokenException", "The security token included in the request is expired")
        if service != "kms" or term != "aws4_request" or region != self.region:
            raise KmsError("InvalidSignatureException",
                           "Credential should be scoped to a valid region, not '%s'." % region)
        amz_date = req.headers.get("X-Amz-Date", "")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise KmsError("IncompleteSignatureException", "Date must be in ISO-8601 'basic format'.")
        if abs((datetime.datetime.utcnow() - t).total_seconds()) > 900:
            raise KmsError("InvalidSignatureException", "Signature expired: %s is now earlier than "
                           "the allowed window." % amz_date)
        if day != amz_date[:8] or "host" not in signed:
            raise KmsError("InvalidSignatureException", "Credential scope date does not match X-Amz-Date.")
        path, _, query = req.path.partition("?")
        pairs = sorted((p.partition("=")[0], p.partition("=")[2]) for p in query.split("&")) if query else []
        lines = []
        for h in signed:
            vals = req.headers.get_all(h) or []
            if not vals:
                raise KmsError("InvalidSignatureException", "Signed header %s is missing." % h)
            lines.append("%s:%s" % (h, ",".join(" ".join(v.split()) for v in vals)))
        canonical = "\n".join([req.command, _quote_path(path), "&".join("%s=%s" % p for p in pairs),
                               "\n".join(lines) + "\n", ";".join(signed),
                               hashlib.sha256(body).hexdigest()])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "%s/%s/kms/aws4_request" % (day, region),
                         hashlib.sha256(canonical.encode()).hexdigest()])
        k = _sign(("AWS4" + cred["secret"]).encode(), day)
        k = _sign(_sign(_sign(k, region), "kms"), "aws4_request")
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            raise KmsError("InvalidSignatureException",
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your AWS Secret Access Key and signing method. Consult the service "
                           "documentation for details.")
        return {"ak": ak, "arn": cred["arn"], "principal": cred["principal"]}

    def resolve(self, ref):
        if not isinstance(ref, str) or not ref:
            raise KmsError("ValidationException", "1 validation error detected: Value at 'keyId' failed "
                           "to satisfy constraint: Member must have length greater than or equal to 1")
        kid = ref
        if ref.startswith("arn:aws:kms:"):
            res = ref.split(":", 5)[5]
            if res.startswith("alias/"):
                if res not in self.aliases:
                    raise KmsError("NotFoundException", "Alias %s is not found." % ref)
                kid = self.aliases[res]
            else:
                kid = res[len("key/"):]
        elif ref.startswith("alias/"):
            if ref not in self.aliases:
                raise KmsError("NotFoundException", "Alias arn:aws:kms:%s:%s:%s is not found." %
                               (self.region, ACCOUNT, ref))
            kid = self.aliases[ref]
        if kid not in self.keys:
            raise KmsError("NotFoundException", "Key 'arn:aws:kms:%s:%s:key/%s' does not exist" %
                           (self.region, ACCOUNT, kid))
        return kid

    def authorize(self, who, kid, action):
        k = self.keys[kid]
        if who["principal"] not in k["policy"][action]:
            raise KmsError("AccessDeniedException",
                           "User: %s is not authorized to perform: %s on resource: %s because no "
                           "resource-based policy allows the %s action" % (who["arn"], action, k["arn"], action))
        if k["state"] == "PendingDeletion":
            raise KmsError("KMSInvalidStateException", "%s is pending deletion." % k["arn"])
        if not k["enabled"]:
            raise KmsError("DisabledException", "%s is disabled." % k["arn"])

    @staticmethod
    def _context(args):
        ctx = args.get("EncryptionContext") or {}
        if not isinstance(ctx, dict):
            raise KmsError("SerializationException", "EncryptionContext must be a map")
        return json.dumps(ctx, sort_keys=True, separators=(",", ":")).encode()

    def op_encrypt(self, who, args):
        kid = self.resolve(args.get("KeyId"))
        self.authorize(who, kid, "kms:Encrypt")
        try:
            pt = base64.b64decode(args.get("Plaintext") or "", validate=True)
        except ValueError:
            raise KmsError("SerializationException", "Plaintext is not valid base64")
        if not 1 <= len(pt) <= 4096:
            raise KmsError("ValidationException", "1 validation error detected: Value at 'plaintext' failed "
                           "to satisfy constraint: Member must have length less than or equal to 4096")
        nonce = os.urandom(12)
        ct = AESGCM(self.keys[kid]["material"]).encrypt(nonce, pt, self._context(args))
        blob = b"\x01" + kid.encode() + nonce + ct
        return {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": self.keys[kid]["arn"],
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def op_decrypt(self, who, args):
        try:
            blob = base64.b64decode(args.get("CiphertextBlob") or "", validate=True)
        except ValueError:
            raise KmsError("SerializationException", "CiphertextBlob is not valid base64")
        if len(blob) < 1 + 36 + 12 + 16 or blob[0] != 1:
            raise KmsError("InvalidCiphertextException", "")
        kid = blob[1:37].decode(errors="replace")
        if kid not in self.keys:
            raise KmsError("InvalidCiphertextException", "")
        if args.get("KeyId") and self.resolve(args["KeyId"]) != kid:
            raise KmsError("IncorrectKeyException", "The key ID in the request does not identify a CMK "
                           "that can perform this operation.")
        self.authorize(who, kid, "kms:Decrypt")
        try:
            pt = AESGCM(self.keys[kid]["material"]).decrypt(blob[37:49], blob[49:], self._context(args))
        except Exception:
            raise KmsError("InvalidCiphertextException", "")
        return {"Plaintext": base64.b64encode(pt).decode(), "KeyId": self.keys[kid]["arn"],
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def op_describe(self, who, args):
        # DescribeKey works on a disabled or pending-deletion key: that is
        # how a caller learns its state
        kid = self.resolve(args.get("KeyId"))
        k = self.keys[kid]
        if who["principal"] not in k["policy"]["kms:DescribeKey"]:
            raise KmsError("AccessDeniedException",
                           "User: %s is not authorized to perform: kms:DescribeKey on resource: %s because no "
                           "resource-based policy allows the kms:DescribeKey action" % (who["arn"], k["arn"]))
        md = {"AWSAccountId": ACCOUNT, "KeyId": kid, "Arn": k["arn"], "CreationDate": k["created"],
              "Enabled": k["enabled"], "Description": "", "KeyState": k["state"],
              "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
              "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
              "Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "MultiRegion": False}
        if k["deletion"] is not None:
            md["DeletionDate"] = k["deletion"]
        return {"KeyMetadata": md}


if __name__ == "__main__":
    import sys
    import tempfile
    import time
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="kms-peer-")
    p = KmsPeer(d)
    p.add_user("AKIDTEST", "testsecret", "coffer")
    _, arn = p.create_key(alias="coffer", allow=[p.creds["AKIDTEST"]["arn"]])
    p.start()
    print("url=%s ca=%s key=%s access_key=AKIDTEST secret_key=testsecret" % (p.url, p.ca, arn), flush=True)
    while True:
        time.sleep(3600)
