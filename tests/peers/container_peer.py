"""
container_peer.py - a faithful local stand-in for the container credentials
endpoint (the ECS agent's task-role endpoint, the EKS Pod Identity agent),
for the awskms seal's container credential source.

The real endpoints answer at http://169.254.170.2<RELATIVE_URI> (ECS) or at
AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity:
http://169.254.170.23/v1/credentials); tests set the FULL_URI to this peer on
loopback, which the SDKs allow for http://. What it checks, as the agents do:

* GET on the one credentials path (another path: 404, another method: 405).
* When an authorization token is set (Pod Identity always; ECS with
  FULL_URI), the Authorization header must equal it: missing is 400
  ("Authorization header is missing" as the Pod Identity agent answers), a
  wrong one 401. `rotate_token()` changes it (the agent's token file is
  rewritten by the kubelet).
* The answer is JSON: AccessKeyId, SecretAccessKey, Token, Expiration
  (ISO 8601), RoleArn (ECS also sends it). The credentials are minted into the
  linked KmsPeer as temporary keys for the role, refused by KMS after their
  Expiration (ExpiredTokenException); a request within the last third of
  their lifetime (at most 5 minutes) gets fresh ones, as the agents
  refresh ahead of expiry.

Every request is recorded in `peer.calls` as (path, authorization given,
status), and every access key issued in `peer.issued`.
"""
import datetime
import hmac
import json
import secrets
import threading
import time

from kms_peer import ACCOUNT, KmsPeer, QuietHandler, _free_port, serve


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerPeer:
    def __init__(self, kms, role="coffer-task", token=None, lifetime=6 * 3600, port=None):
        self.kms = kms
        self.role = role
        self.role_arn = "arn:aws:iam::%s:role/%s" % (ACCOUNT, role)
        self.token = token if token is not None else secrets.token_urlsafe(32)
        self.lifetime = lifetime
        self.port = port or _free_port()
        self.path = "/v1/credentials/" + secrets.token_hex(8)
        self.url = "http://127.0.0.1:%d%s" % (self.port, self.path)
        self.current = None
        self.issued = []
        self.calls = []
        self.lock = threading.Lock()
        self.httpd = None

    def rotate_token(self):
        self.token = secrets.token_urlsafe(32)
        return self.token

    def _credentials(self):
        with self.lock:
            c, now = self.current, time.time()
            if c is None or now >= c["exp"] - min(300, self.lifetime / 3):
                ak = "ASIA" + secrets.token_hex(8).upper()
                c = {"ak": ak, "secret": secrets.token_urlsafe(30), "token": secrets.token_urlsafe(60),
                     "exp": int(now + self.lifetime)}
                self.kms.add_user(ak, c["secret"], None, token=c["token"], expires=c["exp"],
                                  principal=self.role_arn,
                                  arn="arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT, self.role,
                                                                            secrets.token_hex(16)))
                self.current = c
                self.issued.append(ak)
            return c

    def start(self):
        peer = self

        class H(QuietHandler):
            def answer(self, status, doc):
                auth = self.headers.get("Authorization")
                peer.calls.append((self.path, auth is not None, status))
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != peer.path:
                    return self.answer(404, {"code": "NotFound", "message": "Not Found"})
                auth = self.headers.get("Authorization")
                if peer.token:
                    if auth is None:
                        return self.answer(400, {"code": "InvalidRequest",
                                                 "message": "Authorization header is missing"})
                    if not hmac.compare_digest(auth.encode(), peer.token.encode()):
                        return self.answer(401, {"code": "AccessDenied",
                                                 "message": "Service account token cannot be authorized"})
                c = peer._credentials()
                self.answer(200, {"AccessKeyId": c["ak"], "SecretAccessKey": c["secret"], "Token": c["token"],
                                  "AccountId": ACCOUNT, "Expiration": _iso(c["exp"]), "RoleArn": peer.role_arn})

            def do_POST(self):
                self.answer(405, {"code": "MethodNotAllowed", "message": "Method Not Allowed"})

            do_PUT = do_POST

        self.httpd = serve(self.port, H)
        return self

    stop = KmsPeer.stop
