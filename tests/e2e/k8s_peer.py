"""
k8s_peer.py - a small local stand-in for a Kubernetes API server that
implements the one endpoint the kubernetes auth method calls:

    POST /apis/authentication.k8s.io/v1/tokenreviews

No Kubernetes can run in the test environment, so the e2e tests start this
peer on a free loopback port. It behaves like the real authenticator rather
than answering canned replies:

* TLS with its own CA and a CA-signed server certificate for 127.0.0.1, both
  made at start-up with the openssl CLI (so Coffer must pin the right CA).
* The caller must present `Authorization: Bearer <token>`: a service account
  JWT this cluster issued (and that is allowed to create TokenReviews), or a
  configured static token. Anything else is 401 with a Status object, a
  valid token without the permission is 403, like the API server.
* The reviewed token is checked for real: RS256/ES256 (and RS384/RS512/
  ES384) signatures against the cluster's signing keys (generated at start-up
  with python3-cryptography), issuer "kubernetes/serviceaccount" (legacy,
  secret-based tokens, no expiry) or "https://kubernetes.default.svc.cluster.local"
  (projected tokens: exp/nbf checked, audiences must intersect the requested
  audiences or the API server's own), and the service account must still
  exist with the same UID. The answer is a TokenReview whose status is either
  authenticated with user system:serviceaccount:NS:NAME, or carries the
  error text the API server would give.

Every request is recorded in `peer.requests` (bearer, spec) for assertions.
Run standalone for manual tests: `python3 k8s_peer.py DIR` prints the URL
and writes ca.crt, reviewer.jwt and app.jwt (default/app) into DIR.
"""
import base64
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                              encode_dss_signature)

LEGACY_ISSUER = "kubernetes/serviceaccount"
PROJECTED_ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = [PROJECTED_ISSUER]
TR_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_SIZES = {"ES256": 32, "ES384": 48, "ES512": 66}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in s):
        raise ValueError("illegal base64 data")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sign_jwt(header, claims, key, alg):
    """Compact JWS of header+claims signed with `key` (RSA or EC private key)."""
    h = dict(header, alg=alg)
    signing_input = (b64url(json.dumps(h, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
    hfn = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        sig = key.sign(signing_input, padding.PKCS1v15(), hfn)
    elif alg.startswith("ES"):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hfn)))
        n = _EC_SIZES[alg]
        sig = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    else:
        raise ValueError("cannot sign with " + alg)
    return signing_input.decode() + "." + b64url(sig)


def verify_jwt_signature(token, public_keys):
    """Header and claims of `token` if one of public_keys verifies it (the key
    type must match the algorithm), else raises ValueError with k8s-like text."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("square/go-jose: compact JWS format must have three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise ValueError("square/go-jose: error in cryptographic primitive")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("square/go-jose: error in cryptographic primitive")
    alg = header.get("alg")
    if alg not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
        raise ValueError("square/go-jose: unexpected signature algorithm %r" % (alg,))
    signing_input = (parts[0] + "." + parts[1]).encode()
    hfn = _HASHES[alg[2:]]()
    for pub in public_keys:
        try:
            if alg.startswith("RS") and isinstance(pub, rsa.RSAPublicKey):
                pub.verify(sig, signing_input, padding.PKCS1v15(), hfn)
                return header, claims
            if alg.startswith("ES") and isinstance(pub, ec.EllipticCurvePublicKey):
                n = _EC_SIZES[alg]
                if pub.curve.key_size != {"ES256": 256, "ES384": 384, "ES512": 521}[alg] or len(sig) != 2 * n:
                    continue
                der = encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
                pub.verify(der, signing_input, ec.ECDSA(hfn))
                return header, claims
        except InvalidSignature:
            continue
    raise ValueError("square/go-jose: error in cryptographic primitive")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_ca_and_server_cert(d, prefix=""):
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
    Returns (ca_cert, server_cert, server_key) paths."""
    ca_key, ca_crt = os.path.join(d, prefix + "ca.key"), os.path.join(d, prefix + "ca.crt")
    key, csr, crt = (os.path.join(d, prefix + n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, prefix + "server.ext")

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=coffer-test-kubernetes-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=kube-apiserver")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


class ServiceAccount:
    def __init__(self, namespace, name, uid=None, secret_name=None):
        self.namespace = namespace
        self.name = name
        self.uid = uid or str(uuid.uuid4())
        self.secret_name = secret_name or "%s-token-%s" % (name, uuid.uuid4().hex[:5])


class K8sPeer:
    """The fake API server. start() / stop(); tokens via sa_token()."""

    def __init__(self, workdir=None, static_tokens=(), api_audiences=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="coffer-k8s-peer-")
        self.ca_cert, self.server_cert, self.server_key = make_ca_and_server_cert(self.dir)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.signing_public_keys = [self.rsa_key.public_key(), self.ec_key.public_key()]
        self.api_audiences = list(api_audiences or API_AUDIENCES)
        self.static_tokens = set(static_tokens)
        self.accounts = {}          # (ns, name) -> ServiceAccount
        self.reviewers = None       # None: every valid SA may review; else set of (ns, name)
        self.requests = []
        self.lock = threading.Lock()
        self.port = None
        self.httpd = None
        self.thread = None

    # -- cluster state --
    def add_sa(self, namespace, name, uid=None):
        sa = ServiceAccount(namespace, name, uid)
        with self.lock:
            self.accounts[(namespace, name)] = sa
        return sa

    def delete_sa(self, namespace, name):
        with self.lock:
            self.accounts.pop((namespace, name), None)

    def public_key_pem(self, which="rsa"):
        k = self.rsa_key if which == "rsa" else self.ec_key
        return k.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sa_token(self, namespace, name, projected=False, alg="RS256", key=None, exp_in=3600,
                 nbf_in=None, aud=None, uid=None, extra=None):
        """A service account JWT as the cluster would issue it. Legacy
        (secret-based) by default; projected=True gives a bound token with
        exp and audiences. `key` overrides the signing key (forgeries)."""
        sa = self.accounts.get((namespace, name)) or self.add_sa(namespace, name)
        now = int(time.time())
        if projected:
            claims = {
                "aud": aud if aud is not None else list(self.api_audiences),
                "exp": now + exp_in, "iat": now - 5, "nbf": now - 5 if nbf_in is None else now + nbf_in,
                "iss": PROJECTED_ISSUER,
                "kubernetes.io": {"namespace": namespace,
                                  "pod": {"name": name + "-7d9c", "uid": str(uuid.uuid4())},
                                  "serviceaccount": {"name": name, "uid": uid or sa.uid}},
                "sub": "system:serviceaccount:%s:%s" % (namespace, name),
            }
        else:
            claims = {
                "iss": LEGACY_ISSUER,
                "kubernetes.io/serviceaccount/namespace": namespace,
                "kubernetes.io/serviceaccount/secret.name": sa.secret_name,
                "kubernetes.io/serviceaccount/service-account.name": name,
                "kubernetes.io/serviceaccount/service-account.uid": uid or sa.uid,
                "sub": "system:serviceaccount:%s:%s" % (namespace, name),
            }
            if exp_in is not None and exp_in < 0:
                claims["exp"] = now + exp_in
        if extra:
            claims.update(extra)
        if key is None:
            key = self.ec_key if alg.startswith("ES") else self.rsa_key
        return sign_jwt({"kid": "test-key", "typ": "JWT"}, claims, key, alg)

    # -- the authenticator --
    def authenticate(self, token, audiences):
        """(ServiceAccount, audiences) or raises ValueError(error text)."""
        try:
            _, claims = verify_jwt_signature(token, self.signing_public_keys)
        except ValueError as e:
            raise ValueError("[invalid bearer token, %s]" % e)
        now = time.time()
        iss = claims.get("iss")
        if iss == LEGACY_ISSUER:
            ns = claims.get("kubernetes.io/serviceaccount/namespace")
            name = claims.get("kubernetes.io/serviceaccount/service-account.name")
            uid = claims.get("kubernetes.io/serviceaccount/service-account.uid")
            if "exp" in claims and now >= claims["exp"]:
                raise ValueError("[invalid bearer token, service account token has expired]")
            # legacy tokens are audience-agnostic: they get the audiences asked for
            granted = list(audiences or self.api_audiences)
        elif iss == PROJECTED_ISSUER:
            k = claims.get("kubernetes.io") or {}
            ns = k.get("namespace")
            name = (k.get("serviceaccount") or {}).get("name")
            uid = (k.get("serviceaccount") or {}).get("uid")
            if not isinstance(claims.get("exp"), (int, float)) or now >= claims["exp"]:
                raise ValueError("[invalid bearer token, service account token has expired]")
            if isinstance(claims.get("nbf"), (int, float)) and now < claims["nbf"]:
                raise ValueError("[invalid bearer token, service account token is not valid yet]")
            token_aud = claims.get("aud")
            token_aud = [token_aud] if isinstance(token_aud, str) else list(token_aud or [])
            target = list(audiences or self.api_audiences)
            granted = [a for a in target if a in token_aud]
            if not granted:
                raise ValueError("[invalid bearer token, token audiences %s is invalid for the target "
                                 "audiences %s]" % (json.dumps(token_aud), json.dumps(target)))
        else:
            raise ValueError("[invalid bearer token, token issuer %s is not trusted]" % json.dumps(iss))
        with self.lock:
            sa = self.accounts.get((ns, name))
        if sa is None:
            raise ValueError('[invalid bearer token, serviceaccounts "%s" not found]' % name)
        if sa.uid != uid:
            raise ValueError("[invalid bearer token, service account UID (%s) does not match claim (%s)]"
                             % (sa.uid, uid))
        return sa, granted

    # -- server --
    def start(self):
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send_json(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def status(self, code, reason, message):
                self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Failure", "message": message,
                                      "reason": reason, "code": code})

            def do_GET(self):
                self.status(404, "NotFound", "the server could not find the requested resource")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path != TR_PATH:
                    return self.status(404, "NotFound", "the server could not find the requested resource")
                auth = self.headers.get("Authorization") or ""
                bearer = auth[7:] if auth.startswith("Bearer ") else None
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with peer.lock:
                    peer.requests.append({"bearer": bearer, "body": body})
                # authenticate the caller
                if not bearer:
                    return self.status(401, "Unauthorized", "Unauthorized")
                if bearer not in peer.static_tokens:
                    try:
                        caller, _ = peer.authenticate(bearer, None)
                    except ValueError:
                        return self.status(401, "Unauthorized", "Unauthorized")
                    if peer.reviewers is not None and (caller.namespace, caller.name) not in peer.reviewers:
                        return self.status(403, "Forbidden",
                                           'tokenreviews.authentication.k8s.io is forbidden: User '
                                           '"system:serviceaccount:%s:%s" cannot create resource '
                                           '"tokenreviews" in API group "authentication.k8s.io" at '
                                           'the cluster scope' % (caller.namespace, caller.name))
                if (not isinstance(body, dict) or body.get("kind") != "TokenReview"
                        or body.get("apiVersion") != "authentication.k8s.io/v1"
                        or not isinstance(body.get("spec"), dict)):
                    return self.status(400, "BadRequest", "the request is not a TokenReview")
                spec = body["spec"]
                token = spec.get("token")
                audiences = spec.get("audiences") or []
                if not isinstance(token, str) or not token:
                    return self.status(422, "Invalid", "TokenReview.authentication.k8s.io is invalid: "
                                                       "spec.token: Required value")
                out = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {"creationTimestamp": None}, "spec": spec}
                try:
                    sa, granted = peer.authenticate(token, audiences)
                    out["status"] = {
                        "authenticated": True,
                        "user": {"username": "system:serviceaccount:%s:%s" % (sa.namespace, sa.name),
                                 "uid": sa.uid,
                                 "groups": ["system:serviceaccounts",
                                            "system:serviceaccounts:" + sa.namespace,
                                            "system:authenticated"],
                                 "extra": {}},
                        "audiences": granted,
                    }
                except ValueError as e:
                    out["status"] = {"user": {}, "error": str(e)}
                self.send_json(201, out)

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.server_cert, self.server_key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def ca_pem(self):
        with open(self.ca_cert) as f:
            return f.read()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="coffer-k8s-peer-")
    os.makedirs(d, exist_ok=True)
    peer = K8sPeer(d).start()
    with open(os.path.join(d, "reviewer.jwt"), "w") as f:
        f.write(peer.sa_token("kube-system", "vault-reviewer"))
    with open(os.path.join(d, "app.jwt"), "w") as f:
        f.write(peer.sa_token("default", "app"))
    print("TokenReview peer on %s (ca.crt, reviewer.jwt, app.jwt in %s); Ctrl-C to stop" % (peer.url, d),
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        peer.stop()


if __name__ == "__main__":
    main()
