"""
imds_peer.py - a faithful local stand-in for the EC2 instance metadata
service (IMDSv2, tokens required), for the awskms seal's last credential
source.

The real service answers on http://169.254.169.254; tests point
AWS_EC2_METADATA_SERVICE_ENDPOINT (botocore's name) at this peer on a
loopback port. What it checks, as EC2 does with HttpTokens=required:

* PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds, an
  integer 1..21600 (else 400); a request carrying X-Forwarded-For is refused
  (403), as EC2 refuses proxied token requests. The answer is the token, with
  the TTL echoed in the same header. Tokens expire after their TTL.
* Every GET needs a live X-aws-ec2-metadata-token: missing, unknown or
  expired is 401. A PUT to any other path is 405.
* GET /latest/meta-data/iam/security-credentials/ answers the role name;
  .../<role> the role's temporary credentials as JSON (Code, LastUpdated,
  Type, AccessKeyId, SecretAccessKey, Token, Expiration); another role or
  path is 404.
* The credentials are minted into the linked KmsPeer as temporary keys
  (session token required, signed requests after Expiration refused with
  ExpiredTokenException) for the principal arn:aws:iam::ACCOUNT:role/<role>
  (so a key policy names the role; KMS reports the assumed-role session).
  EC2 hands out new credentials before the old ones expire, while the old
  ones stay valid until their Expiration: `rotate()` does that on demand,
  and a request for credentials within the last third of their lifetime
  (at most 5 minutes) gets fresh ones. `revoke()` ends the old ones now.

Every request is recorded in `peer.calls` as (method, path, status).
"""
import datetime
import http.server
import json
import secrets
import threading
import time

from kms_peer import ACCOUNT, KmsPeer, _free_port

INSTANCE_ID = "i-0c0ffe0c0ffe0c0ff"
MAX_TTL = 21600


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImdsPeer:
    def __init__(self, kms, role="coffer-seal", lifetime=6 * 3600, port=None):
        self.kms = kms
        self.role = role
        self.role_arn = "arn:aws:iam::%s:role/%s" % (ACCOUNT, role)
        self.lifetime = lifetime
        self.port = port or _free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tokens = {}  # token -> expiry (monotonic)
        self.current = None  # {"ak", "secret", "token", "exp", "issued"}
        self.issued = []  # every access key handed out, oldest first
        self.calls = []
        self.lock = threading.Lock()
        self.httpd = None

    # -- credentials --
    def _mint(self):
        now = time.time()
        ak = "ASIA" + secrets.token_hex(8).upper()
        c = {"ak": ak, "secret": secrets.token_urlsafe(30), "token": secrets.token_urlsafe(60),
             "issued": now, "exp": int(now + self.lifetime)}
        self.kms.add_user(ak, c["secret"], None, token=c["token"], expires=c["exp"],
                          principal=self.role_arn,
                          arn="arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT, self.role, INSTANCE_ID))
        self.current = c
        self.issued.append(ak)
        return c

    def rotate(self):
        """New credentials from now on; the old ones stay valid until they expire."""
        with self.lock:
            return self._mint()["ak"]

    def revoke(self, ak):
        """End one access key now (KMS answers ExpiredTokenException)."""
        self.kms.creds[ak]["expires"] = int(time.time()) - 1

    def _credentials(self):
        with self.lock:
            c = self.current
            now = time.time()
            if c is None or now >= c["exp"] - min(300, self.lifetime / 3):
                c = self._mint()
            return c

    # -- lifecycle --
    def start(self):
        peer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            server_version = "EC2ws"
            sys_version = ""

            def log_message(self, *a):
                pass

            def answer(self, status, body=b"", ctype="text/plain", extra=()):
                peer.calls.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in extra:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                if self.path != "/latest/api/token":
                    return self.answer(405)
                if self.headers.get("X-Forwarded-For"):
                    return self.answer(403, b"Forbidden")
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
                    return self.answer(400, b"Bad Request")
                tok = secrets.token_urlsafe(42)
                with peer.lock:
                    peer.tokens[tok] = time.monotonic() + int(ttl)
                self.answer(200, tok.encode(), extra=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

            def do_GET(self):
                tok = self.headers.get("X-aws-ec2-metadata-token")
                with peer.lock:
                    exp = peer.tokens.get(tok or "")
                if exp is None or time.monotonic() >= exp:
                    return self.answer(401, b"Unauthorized")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self.answer(200, peer.role.encode())
                if self.path == base + peer.role:
                    c = peer._credentials()
                    doc = {"Code": "Success", "LastUpdated": _iso(c["issued"]), "Type": "AWS-HMAC",
                           "AccessKeyId": c["ak"], "SecretAccessKey": c["secret"], "Token": c["token"],
                           "Expiration": _iso(c["exp"])}
                    return self.answer(200, json.dumps(doc, indent=2).encode())
                if self.path == "/latest/meta-data/instance-id":
                    return self.answer(200, INSTANCE_ID.encode())
                self.answer(404, b"Not Found")

        class S(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.httpd = S(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    stop = KmsPeer.stop


if __name__ == "__main__":  # pragma: no cover
    import sys
    import tempfile
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="imds-peer-")
    k = KmsPeer(d).start()
    p = ImdsPeer(k).start()
    print("kms=%s imds=%s ca=%s" % (k.url, p.url, k.ca), flush=True)
    while True:
        time.sleep(3600)
