"""
seal_util.py - helpers for the seal e2e tests: the local KMS peer
(tests/peers/kms_peer.py), a server configured with the awskms seal, and a
way to alter one stored entry of the file backend's log while the server is
stopped (to test that a tampered wrapped root key is refused).
"""
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))

from kms_peer import KmsPeer  # noqa: E402

AK, SK = "AKIDCOFFERTEST", "coffer-test-secret-key"


def start_kms(dirpath, port=None):
    p = KmsPeer(dirpath, port=port)
    arn = p.add_user(AK, SK, "coffer")
    kid, key_arn = p.create_key(alias="coffer", allow=[arn])
    p.start()
    return p, key_arn


def start_kms_pair(tmp):
    """Two independent KMS peers under tmp (own keys, own ports); the second
    serves the first one's certificate, so one AWS_CA_BUNDLE trusts both.
    The caller stops both."""
    d1, d2 = os.path.join(tmp, "k1"), os.path.join(tmp, "k2")
    os.mkdir(d1)
    os.mkdir(d2)
    p1, _ = start_kms(d1)
    p2 = KmsPeer(d2)
    p2.ca, p2.cert, p2.key = p1.ca, p1.cert, p1.key
    p2.create_key(alias="coffer", allow=[p2.add_user(AK, SK, "coffer")])
    try:
        p2.start()
    except Exception:
        p1.stop()
        raise
    return p1, p2


def awskms_stanza(peer, key="alias/coffer", extra=""):
    return ('seal "awskms" {\n  region = "us-east-1"\n  kms_key_id = "%s"\n  endpoint = "%s"\n%s}\n'
            % (key, peer.url, extra))


def kms_env(peer, secret=SK):
    return {"AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": secret, "AWS_CA_BUNDLE": peer.ca}


def wait_for(fn, timeout=15, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def unsealed(srv):
    r = srv.get("sys/seal-status", token="")
    return r.status == 200 and not r.json()["sealed"]


# -- the file backend's log (src/physical/file.c DESIGN) --

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _records(path):
    with open(path, "rb") as f:
        buf = f.read()
    off, out = 32, []
    while off + 24 <= len(buf):
        hcrc, vcrc, batch, vlen, klen, op, _ = struct.unpack_from("<IIQIHBB", buf, off)
        key = buf[off + 24:off + 24 + klen]
        val = buf[off + 24 + klen:off + 24 + klen + vlen]
        out.append((batch, op, key.decode(), val))
        off += 24 + klen + vlen
    return out, buf[:off]


def file_get(datadir, key):
    recs, _ = _records(os.path.join(datadir, "coffer.db"))
    val = None
    for _, op, k, v in recs:
        if k == key:
            val = v if op == 1 else None
    return val


def file_put(datadir, key, value):
    """Append a put record (next batch number) to a stopped server's log."""
    path = os.path.join(datadir, "coffer.db")
    recs, good = _records(path)
    batch = max([r[0] for r in recs] or [0]) + 1
    kb = key.encode()
    hdr_rest = struct.pack("<QIHBB", batch, len(value), len(kb), 1, 0)
    vcrc = crc32c(value)
    hcrc = crc32c(struct.pack("<I", vcrc) + hdr_rest + kb)
    with open(path, "wb") as f:
        f.write(good + struct.pack("<I", hcrc) + struct.pack("<I", vcrc) + hdr_rest + kb + value)


def tamper_json_field(datadir, key, field):
    blob = json.loads(file_get(datadir, key))
    raw = bytearray(__import__("base64").b64decode(blob[field]))
    raw[len(raw) // 2] ^= 0x01
    blob[field] = __import__("base64").b64encode(bytes(raw)).decode()
    file_put(datadir, key, json.dumps(blob, separators=(",", ":")).encode())
