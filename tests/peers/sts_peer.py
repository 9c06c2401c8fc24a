"""
sts_peer.py - a faithful local stand-in for AWS STS AssumeRoleWithWebIdentity
(what EKS IRSA and other OIDC federations use), for the awskms seal's web
identity credential source, plus the OIDC identity provider whose tokens it
accepts.

The real STS answers at https://sts.<region>.amazonaws.com; tests point
AWS_ENDPOINT_URL_STS (the AWS SDKs' name) at this peer. What it checks, as
STS does for a role whose trust policy names an OIDC provider:

* HTTPS only (the KmsPeer's CA and certificate, so one AWS_CA_BUNDLE trusts
  both). The query API: POST of an application/x-www-form-urlencoded body
  (or a GET query) with Action=AssumeRoleWithWebIdentity, Version=2011-06-15,
  RoleArn, RoleSessionName ([\\w+=,.@-]{2,64}) and WebIdentityToken; the
  request needs no signature (the token is the proof). A missing or bad
  parameter is 400 ValidationError / MissingParameter.
* WebIdentityToken must be a JWT signed RS256 by the provider's key (the
  kid in its header names it), with iss = the provider's issuer URL, aud
  holding the provider's audience (sts.amazonaws.com, as IRSA sets it), exp
  in the future and nbf/iat not in the future. Bad signature, issuer,
  audience or shape: 400 InvalidIdentityToken; expired: 400
  ExpiredTokenException. The role must exist and its trust policy allow this
  provider's subject (`trust(role_arn, sub)`), else 403 AccessDenied "Not
  authorized to perform sts:AssumeRoleWithWebIdentity".
* The answer is STS's XML (AssumeRoleWithWebIdentityResponse /
  AssumeRoleWithWebIdentityResult / Credentials with AccessKeyId,
  SecretAccessKey, SessionToken, Expiration; SubjectFromWebIdentityToken,
  AssumedRoleUser, Provider, Audience). The credentials are minted into the
  linked KmsPeer as temporary keys for the role (so a KMS key policy names
  the role, and KMS refuses them after Expiration with ExpiredTokenException).
  Errors are <ErrorResponse><Error><Type>Sender</Type><Code>…</Code>
  <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>.

`make_jwt(sub, ...)` signs a token as the provider (the kubelet's projected
service-account token); every request is recorded in `peer.calls` as
(action, role, outcome) and every access key issued in `peer.issued`.
"""
import base64
import datetime
import json
import re
import secrets
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kms_peer import ACCOUNT, KmsPeer, QuietHandler, _free_port, serve

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AUDIENCE = "sts.amazonaws.com"


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StsError(Exception):
    def __init__(self, code, msg, status=400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class StsPeer:
    def __init__(self, kms, issuer="https://oidc.eks.us-east-1.amazonaws.com/id/C0FFEE",
                 audience=AUDIENCE, lifetime=3600, port=None):
        self.kms = kms
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.port = port or _free_port()
        self.url = "https://127.0.0.1:%d/" % self.port
        self.idp_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.roles = {}  # role arn -> set of allowed subjects
        self.calls = []
        self.issued = []
        self.httpd = None

    # -- set-up --
    def trust(self, role_arn, sub):
        """The role's trust policy allows this provider's subject."""
        self.roles.setdefault(role_arn, set()).add(sub)

    def make_jwt(self, sub, aud=None, exp=None, iss=None, key=None, alg="RS256", nbf=None):
        now = int(time.time())
        hdr = {"alg": alg, "kid": self.kid, "typ": "JWT"}
        claims = {"iss": iss or self.issuer, "sub": sub, "aud": [aud or self.audience],
                  "iat": now, "nbf": nbf if nbf is not None else now,
                  "exp": exp if exp is not None else now + 3600}
        signing = _b64u(json.dumps(hdr).encode()) + "." + _b64u(json.dumps(claims).encode())
        sig = (key or self.idp_key).sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing + "." + _b64u(sig)

    # -- the checks --
    def verify_jwt(self, tok):
        parts = tok.split(".")
        if len(parts) != 3:
            raise StsError("InvalidIdentityToken", "The ID Token provided is not a valid JWT")
        try:
            hdr = json.loads(_unb64u(parts[0]))
            claims = json.loads(_unb64u(parts[1]))
            sig = _unb64u(parts[2])
        except ValueError:
            raise StsError("InvalidIdentityToken", "The ID Token provided is not a valid JWT")
        if hdr.get("alg") != "RS256" or hdr.get("kid") != self.kid:
            raise StsError("InvalidIdentityToken", "No OpenIDConnect provider key matches the token's kid/alg")
        try:
            self.idp_key.public_key().verify(sig, (parts[0] + "." + parts[1]).encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise StsError("InvalidIdentityToken", "The token signature could not be verified")
        if claims.get("iss") != self.issuer:
            raise StsError("InvalidIdentityToken", "No OpenIDConnect provider found in your account for %s"
                           % claims.get("iss"))
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise StsError("InvalidIdentityToken", "Incorrect token audience")
        now = time.time()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise StsError("ExpiredTokenException", "Token expired: current date/time %s must be before the "
                           "expiration date/time %s" % (_iso(now), _iso(claims.get("exp") or 0)))
        for c in ("nbf", "iat"):
            if isinstance(claims.get(c), int) and claims[c] > now + 60:
                raise StsError("InvalidIdentityToken", "The token is not valid yet (%s)" % c)
        return claims

    def assume(self, args):
        if args.get("Action") != "AssumeRoleWithWebIdentity":
            raise StsError("InvalidAction", "Could not find operation %s for version 2011-06-15"
                           % args.get("Action"))
        if args.get("Version") != "2011-06-15":
            raise StsError("InvalidParameterValue", "Invalid Version")
        for p in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not args.get(p):
                raise StsError("MissingParameter", "The request must contain the parameter %s" % p)
        role, name = args["RoleArn"], args["RoleSessionName"]
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
            raise StsError("ValidationError", "1 validation error detected: Value '%s' at 'roleSessionName' "
                           "failed to satisfy constraint" % name)
        claims = self.verify_jwt(args["WebIdentityToken"])
        if claims.get("sub") not in self.roles.get(role, ()):
            raise StsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
        now = time.time()
        ak = "ASIA" + secrets.token_hex(8).upper()
        secret, token, exp = secrets.token_urlsafe(30), secrets.token_urlsafe(80), int(now + self.lifetime)
        rname = role.rsplit("/", 1)[-1]
        assumed = "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT, rname, name)
        self.kms.add_user(ak, secret, None, token=token, expires=exp, principal=role, arn=assumed)
        self.issued.append(ak)
        return ("<AssumeRoleWithWebIdentityResponse xmlns=\"%s\"><AssumeRoleWithWebIdentityResult>"
                "<Audience>%s</Audience><AssumedRoleUser><AssumedRoleId>AROA%s:%s</AssumedRoleId>"
                "<Arn>%s</Arn></AssumedRoleUser><Provider>%s</Provider>"
                "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
                "<SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>"
                "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>%s</RequestId>"
                "</ResponseMetadata></AssumeRoleWithWebIdentityResponse>"
                % (NS, escape(self.audience), secrets.token_hex(8).upper(), escape(name), escape(assumed),
                   escape(self.issuer), ak, escape(secret), escape(token), _iso(exp), escape(claims["sub"]),
                   uuid.uuid4()))

    # -- lifecycle --
    def start(self):
        peer = self

        class H(QuietHandler):
            def handle_args(self, args):
                role = args.get("RoleArn")
                try:
                    body, status = peer.assume(args).encode(), 200
                    peer.calls.append((args.get("Action"), role, "ok"))
                except StsError as e:
                    peer.calls.append((args.get("Action"), role, e.code))
                    body = ("<ErrorResponse xmlns=\"%s\"><Error><Type>Sender</Type><Code>%s</Code>"
                            "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
                            % (NS, e.code, escape(e.msg), uuid.uuid4())).encode()
                    status = e.status
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode("utf-8", "replace")
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if ctype != "application/x-www-form-urlencoded":
                    args = {}
                else:
                    args = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                self.handle_args(args)

            def do_GET(self):
                q = urllib.parse.urlsplit(self.path).query
                self.handle_args(dict(urllib.parse.parse_qsl(q, keep_blank_values=True)))

        self.httpd = serve(self.port, H, self.kms.cert, self.kms.key)
        return self

    stop = KmsPeer.stop
