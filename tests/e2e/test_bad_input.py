"""
test_bad_input.py - the bad-input catalogue: a table of malformed requests,
each with the status and the message it must get, run against one real
server; then the server must still serve and its stored data must be
unchanged. A second table runs against a fresh (uninitialised, then sealed)
server for sys/init and sys/unseal. A slow client (slowloris) must not stop
the server from serving others, and must be timed out.

Each row: (name, method, path, body, expected status, expected text).
  body: None, a dict/list (sent as JSON), bytes (sent as is), or a Raw(...)
        for requests http.client cannot produce (sent on a bare socket).
  text: a substring that must appear in the answer's errors (or, for answers
        libmicrohttpd gives itself, in the body); "" = no check beyond status;
        a list = the exact "errors" array; WARN(...) = a 2xx whose warnings
        contain the text.
Paths are relative to /v1/ unless the row is Raw. Tokens: root unless the
row's options say otherwise.
"""
import json
import os
import socket
import threading
import time
import unittest
import http.client

from harness import Server

MAX_BODY = 65536


class Raw:
    def __init__(self, data):
        self.data = data


class WARN:
    def __init__(self, text):
        self.text = text


def big_headers(n):
    return b"".join(b"X-Filler-%d: v\r\n" % i for i in range(n))


T = "__ROOT__"  # replaced by the root token in raw requests
KEEP_POLICY = 'path "secret/*" {capabilities=["read"]}'

# name, method, path, body, status, text, options
CATALOGUE = [
    # ---- invalid JSON ----
    ("json_unterminated_object", "PUT", "secret/data/k", b'{"data":{"a":"b"}', 400, "failed to parse JSON input"),
    ("json_garbage", "PUT", "secret/data/k", b"{bad json", 400, "failed to parse JSON input"),
    ("json_lone_brace", "PUT", "secret/data/k", b"{", 400, "failed to parse JSON input"),
    ("json_trailing_garbage", "PUT", "secret/data/k", b'{"data":{"a":"b"}}xyz', 400, "failed to parse JSON input"),
    ("json_single_quotes", "PUT", "secret/data/k", b"{'data':{}}", 400, "failed to parse JSON input"),
    ("json_trailing_comma", "PUT", "secret/data/k", b'{"data":{"a":"b",}}', 400, "failed to parse JSON input"),
    ("json_nan", "PUT", "auth/token/create", b'{"ttl": NaN}', 400, "failed to parse JSON input"),
    ("json_infinity", "PUT", "auth/token/create", b'{"ttl": Infinity}', 400, "failed to parse JSON input"),
    ("json_int_overflow", "PUT", "auth/token/create", b'{"num_uses": 99999999999999999999999}', 400,
     "failed to parse JSON input"),
    ("json_lone_surrogate", "PUT", "secret/data/k", b'{"data":{"a":"\\ud800"}}', 400, "failed to parse JSON input"),
    ("json_invalid_utf8_value", "PUT", "secret/data/k", b'{"data":{"a":"\xff\xfe"}}', 400,
     "failed to parse JSON input"),
    ("json_invalid_utf8_key", "PUT", "secret/data/k", b'{"data":{"\xc0\xaf":"v"}}', 400,
     "failed to parse JSON input"),
    ("json_escaped_nul_in_key", "PUT", "secret/data/k", b'{"data":{"a\\u0000b":"v"}}', 400,
     "failed to parse JSON input"),
    ("json_escaped_nul_in_value", "PUT", "secret/data/k", b'{"data":{"a":"x\\u0000y"}}', 400,
     "failed to parse JSON input"),
    ("json_raw_nul_byte", "PUT", "secret/data/k", b'{"data":{"a":"b"}}\x00', 400, "failed to parse JSON input"),
    ("json_deep_nesting", "PUT", "secret/data/k", b'{"data":' + b"[" * 5000 + b"]" * 5000 + b"}", 400,
     "failed to parse JSON input"),
    ("json_bad_escape", "PUT", "secret/data/k", b'{"data":{"a":"\\q"}}', 400, "failed to parse JSON input"),
    ("json_control_char_in_string", "PUT", "secret/data/k", b'{"data":{"a":"x\x01y"}}', 400,
     "failed to parse JSON input"),
    # ---- JSON of the wrong type ----
    ("body_array", "PUT", "secret/data/k", b"[1,2]", 400, "must be a JSON object"),
    ("body_string", "PUT", "secret/data/k", b'"str"', 400, "must be a JSON object"),
    ("body_number", "PUT", "secret/data/k", b"123", 400, "must be a JSON object"),
    ("body_true", "PUT", "auth/token/create", b"true", 400, "must be a JSON object"),
    ("kv2_data_string", "PUT", "secret/data/k", {"data": "str"}, 400, 'field \\"data\\": expected a map'),
    ("kv2_data_array", "PUT", "secret/data/k", {"data": [1, 2]}, 400, 'field \\"data\\": expected a map'),
    ("kv2_data_missing", "PUT", "secret/data/k", {}, 400, "no data provided"),
    ("kv2_cas_string", "PUT", "secret/data/k", {"data": {"a": "b"}, "options": {"cas": "abc"}}, 400,
     "check-and-set parameter"),
    ("kv2_cas_huge_real", "PUT", "secret/data/k", {"data": {"a": "b"}, "options": {"cas": 1e300}}, 400,
     "check-and-set parameter"),
    ("kv2_cas_mismatch", "PUT", "secret/data/keep", {"data": {"a": "b"}, "options": {"cas": 0}}, 400,
     "check-and-set parameter did not match"),
    ("kv2_options_string", "PUT", "secret/data/k", {"data": {"a": "b"}, "options": "x"}, 400,
     'field \\"options\\": expected a map'),
    ("kv2_versions_string", "POST", "secret/delete/k", {"versions": "abc"}, 400, "versions"),
    ("kv2_versions_huge", "POST", "secret/delete/k", {"versions": [1e300]}, 400, "versions"),
    ("kv2_config_max_versions_string", "POST", "secret/config", {"max_versions": "lots"}, 400,
     'field \\"max_versions\\": expected an integer'),
    ("kv2_metadata_dva_huge", "POST", "secret/metadata/k", {"delete_version_after": 1e300}, 400,
     "delete_version_after"),
    ("token_policies_object", "PUT", "auth/token/create", {"policies": {"a": 1}}, 400,
     'field \\"policies\\": expected a list of strings'),
    ("token_policies_nested", "PUT", "auth/token/create", {"policies": [{"a": 1}]}, 400,
     'field \\"policies\\": expected a list of strings'),
    ("token_num_uses_string", "PUT", "auth/token/create", {"num_uses": "x"}, 400,
     'field \\"num_uses\\": expected an integer'),
    ("token_num_uses_fraction", "PUT", "auth/token/create", {"num_uses": 1.5}, 400,
     'field \\"num_uses\\": expected an integer'),
    ("token_renewable_maybe", "PUT", "auth/token/create", {"renewable": "maybe"}, 400,
     'field \\"renewable\\": expected a boolean'),
    ("token_meta_list", "PUT", "auth/token/create", {"meta": [1, 2]}, 400, 'field \\"meta\\": expected a map'),
    ("policy_body_number", "PUT", "sys/policies/acl/p-bad", {"policy": 5}, 400, "failed to parse policy"),
    ("mount_config_string", "POST", "sys/mounts/m-bad", {"type": "kv", "config": "x"}, 400,
     "config must be an object"),
    ("unseal_key_number", "PUT", "sys/unseal", {"key": 123}, 400, "'key' must be a string"),
    # ---- fields out of range ----
    ("token_ttl_negative", "PUT", "auth/token/create", {"ttl": -5}, 400, 'field \\"ttl\\": expected a duration'),
    ("token_ttl_negative_string", "PUT", "auth/token/create", {"ttl": "-5h"}, 400, "negative"),
    ("token_ttl_huge_real", "PUT", "auth/token/create", {"ttl": 1e300}, 400, 'field \\"ttl\\": expected a duration'),
    ("token_ttl_overflow_string", "PUT", "auth/token/create", {"ttl": "9999999999999999999h"}, 400, "too large"),
    ("token_ttl_digits_overflow", "PUT", "auth/token/create", {"ttl": "99999999999999999999999"}, 400,
     "invalid duration"),
    ("token_ttl_bad_unit", "PUT", "auth/token/create", {"ttl": "1y"}, 400, "unknown unit"),
    ("token_ttl_garbage", "PUT", "auth/token/create", {"ttl": "abc"}, 400, "invalid duration"),
    ("token_num_uses_negative", "PUT", "auth/token/create", {"num_uses": -1}, 400, "cannot be negative"),
    ("token_explicit_max_ttl_negative", "PUT", "auth/token/create", {"explicit_max_ttl": -1}, 400,
     'field \\"explicit_max_ttl\\": expected a duration'),
    ("token_period_negative", "PUT", "auth/token/create", {"period": "-1s"}, 400, "negative"),
    ("mount_default_ttl_garbage", "POST", "sys/mounts/m-bad", {"type": "kv", "config": {"default_lease_ttl": "abc"}},
     400, "invalid default_lease_ttl"),
    ("mount_max_ttl_negative", "POST", "sys/mounts/m-bad", {"type": "kv", "config": {"max_lease_ttl": "-1h"}},
     400, "max_lease_ttl"),
    ("kv2_max_versions_negative", "POST", "secret/config", {"max_versions": -1}, 400, "max_versions"),
    # ---- unknown fields: Vault warns, it does not reject ----
    ("token_unknown_field", "PUT", "auth/token/create", {"bogus": 1}, 200,
     WARN("Endpoint ignored these unrecognized parameters: [bogus]")),
    ("policy_unknown_field", "PUT", "sys/policies/acl/keep", {"policy": KEEP_POLICY, "colour": "red"}, 200,
     WARN("Endpoint ignored these unrecognized parameters: [colour]")),
    # ---- semantic errors ----
    ("policy_unparsable", "PUT", "sys/policies/acl/p-bad", {"policy": "path {"}, 400, "failed to parse policy"),
    ("policy_missing", "PUT", "sys/policies/acl/p-bad", {}, 400, "'policy' parameter not supplied or empty"),
    ("policy_bad_capability", "PUT", "sys/policies/acl/p-bad", {"policy": 'path "x" {capabilities=["fly"]}'}, 400,
     "fly"),
    ("policy_root_name", "PUT", "sys/policies/acl/root", {"policy": 'path "x" {capabilities=["read"]}'}, 400,
     "root"),
    ("policy_delete_default", "DELETE", "sys/policies/acl/default", None, 400, "default"),
    ("mount_type_missing", "POST", "sys/mounts/m-bad", {}, 400, "type"),
    ("mount_type_unknown", "POST", "sys/mounts/m-bad", {"type": "nope"}, 400, "plugin not found in the catalog: nope"),
    ("mount_in_use", "POST", "sys/mounts/secret", {"type": "kv"}, 400, "path is already in use"),
    ("mount_under_sys", "POST", "sys/mounts/sys/x", {"type": "kv"}, 400, ""),
    ("auth_type_unknown", "POST", "sys/auth/a-bad", {"type": "nope"}, 400, "nope"),
    ("init_again", "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, 400, "already initialized"),
    ("token_lookup_bogus", "POST", "auth/token/lookup", {"token": "s.bogus"}, 403, "bad token"),
    # ---- bodies over max_request_size ----
    ("body_over_max_size", "PUT", "secret/data/k", {"data": {"a": "x" * (MAX_BODY + 10)}}, 413,
     "http: request body too large"),
    ("content_length_claims_64mib", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode() +
         b"\r\nContent-Length: 67108864\r\n\r\n"), 413, "http: request body too large"),
    ("chunked_over_max_size", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode() +
         b"\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"4000\r\n" + b"x" * 0x4000 + b"\r\n") * 5 + b"0\r\n\r\n"),
     413, "http: request body too large"),
    ("content_length_negative", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"), 400, ""),
    ("content_length_garbage", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"), 400, ""),
    # ---- strict framing (issue 12 item 5): exactly one answer, at once ----
    ("content_length_minus_one", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
     400, "invalid Content-Length header", {"one_answer": True}),
    ("content_length_abc", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"),
     400, "invalid Content-Length header", {"one_answer": True}),
    ("content_length_exponent", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1e20\r\n\r\n"),
     400, "invalid Content-Length header", {"one_answer": True}),
    ("content_length_too_many_digits", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
     400, "invalid Content-Length header", {"one_answer": True}),
    ("query_thousand_parameters", None, None,
     Raw(b"GET /v1/sys/health?" + b"&".join(b"p%d=v" % i for i in range(1000)) + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
     400, "too many query parameters", {"one_answer": True}),
    ("transfer_encoding_identity", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{}"),
     501, "unsupported transfer encoding", {"one_answer": True}),
    ("transfer_encoding_gzip", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
     501, "unsupported transfer encoding", {"one_answer": True}),
    ("content_length_conflicting_duplicate", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode()
         + b"\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{}"),
     400, "conflicting Content-Length headers", {"one_answer": True}),
    ("content_length_with_transfer_encoding", None, None,
     Raw(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode()
         + b"\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
     400, "must not both be set", {"one_answer": True}),
    ("token_with_nul", None, None,
     Raw(b"GET /v1/auth/token/lookup-self HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode()
         + b"\x00junk\r\n\r\n"),
     400, "NUL byte in a header value", {"one_answer": True}),
    ("token_with_control_char", None, None,
     Raw(b"GET /v1/auth/token/lookup-self HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode()
         + b"\x1b[0m\r\n\r\n"),
     400, "control character in a header value", {"one_answer": True}),
    ("header_name_with_nul", None, None,
     Raw(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-\x00A: b\r\n\r\n"),
     400, "control character in a header name", {"one_answer": True}),
    ("header_obsolete_folding", None, None,
     Raw(b"GET /v1/auth/token/lookup-self HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode()
         + b"\r\n junk\r\n\r\n"),
     400, "folding", {"one_answer": True}),
    # ---- headers and request line ----
    ("ten_thousand_headers", None, None,
     Raw(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n" + big_headers(10000) + b"\r\n"), 431, "Request too big"),
    ("one_huge_header", None, None,
     Raw(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"), 431, ""),
    ("one_mib_path", None, None,
     Raw(b"GET /v1/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 414, "Request too big"),
    ("long_path_under_header_limit", "GET", "secret/data/" + "a" * 5000, None, 400, "path is too long"),
    ("not_http", None, None, Raw(b"GARBAGE\r\n\r\n"), None, ""),
    ("http_0_9", None, None, Raw(b"GET /v1/sys/health\r\n\r\n"), 400, "Request malformed"),
    ("raw_nul_in_request_line", None, None,
     Raw(b"GET /v1/secret/data/a\x00b HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode() + b"\r\n\r\n"),
     400, ""),
    ("raw_invalid_utf8_in_path", None, None,
     Raw(b"GET /v1/secret/data/\xff\xfe HTTP/1.1\r\nHost: x\r\nX-Vault-Token: " + T.encode() + b"\r\n\r\n"),
     400, "path is not valid UTF-8"),
    # ---- paths: NUL, invalid UTF-8, control characters, dot segments, encoded slashes ----
    ("path_encoded_nul", "GET", "secret/data/a%00b", None, 400, "request path contains a NUL byte"),
    ("path_encoded_nul_in_mount", "GET", "sec%00ret/data/a", None, 400, "request path contains a NUL byte"),
    ("path_invalid_utf8", "GET", "secret/data/a%ffb", None, 400, "path is not valid UTF-8"),
    ("path_overlong_utf8", "GET", "secret/data/%c0%af", None, 400, "path is not valid UTF-8"),
    ("path_surrogate_utf8", "GET", "secret/data/%ed%a0%80", None, 400, "path is not valid UTF-8"),
    ("path_truncated_utf8", "PUT", "secret/data/a%e2%82", {"data": {"a": "b"}}, 400, "path is not valid UTF-8"),
    ("path_control_char", "GET", "secret/data/a%01b", None, 400, "path contains a control character"),
    ("path_del_char", "PUT", "secret/data/a%7fb", {"data": {"a": "b"}}, 400, "path contains a control character"),
    ("path_newline", "GET", "secret/data/a%0ab", None, 400, "path contains a control character"),
    ("path_dotdot", "GET", "secret/../sys/mounts", None, 301, ""),
    ("path_encoded_dotdot", "GET", "secret/%2e%2e/sys/mounts", None, 301, ""),
    ("path_dot", "GET", "secret/./data/k", None, 301, ""),
    ("path_double_slash", "GET", "secret//data/k", None, 301, ""),
    ("path_encoded_slash_mount", "GET", "secret%2Fdata%2Fkeep", None, 200, ""),
    ("path_encoded_slash_key", "GET", "secret/data/a%2F..%2F..%2Fsys", None, 301, ""),
    ("path_not_v1", None, None, Raw(b"GET /v2/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"), 404, ""),
    ("path_no_mount", "GET", "nosuchmount/x", None, 404,
     ['no handler for route "nosuchmount/x". route entry not found.']),
    ("path_no_mount_write", "PUT", "nosuchmount/x", {"a": "b"}, 404, "no handler for route"),
    ("path_no_mount_default_token", "GET", "nosuchmount/x", None, 403, "permission denied", {"token": "@default"}),
    ("path_bad_query_list", "GET", "secret/metadata/?list=maybe", None, 400,
     ["invalid value for the list parameter: expected a boolean"]),
    ("path_bad_percent", "GET", "secret/data/a%zzb", None, 400, ""),
    # ---- methods the path does not support ----
    ("method_delete_seal_status", "DELETE", "sys/seal-status", None, 405, "unsupported operation"),
    ("method_post_seal_status", "POST", "sys/seal-status", {}, 405, "unsupported operation"),
    ("method_list_mounts", "LIST", "sys/mounts", None, 405, "unsupported operation"),
    ("method_delete_init", "DELETE", "sys/init", None, 405, "unsupported operation"),
    ("method_put_health", "PUT", "sys/health", {}, 405, "unsupported operation"),
    ("method_unknown_verb", "BREW", "sys/health", None, 405, ""),
    ("method_trace", "TRACE", "sys/health", None, 405, ""),
    ("method_delete_token_create", "DELETE", "auth/token/create", None, 405, "unsupported operation"),
    ("method_patch_no_content_type", "PATCH", "secret/data/k", b'{"data":{"a":"b"}}', 400, "mime"),
    ("method_patch_json_content_type", "PATCH", "secret/data/k", {"data": {"a": "b"}}, 415, ""),
    # ---- missing or bad token ----
    ("token_missing_kv", "GET", "secret/data/keep", None, 403, "permission denied", {"token": ""}),
    ("token_missing_mounts", "GET", "sys/mounts", None, 403, "permission denied", {"token": ""}),
    ("token_missing_policy_write", "PUT", "sys/policies/acl/p-bad", {"policy": 'path "x" {capabilities=["read"]}'},
     403, "permission denied", {"token": ""}),
    ("token_bogus", "GET", "secret/data/keep", None, 403, "permission denied", {"token": "s.notatoken"}),
    ("token_huge", "GET", "secret/data/keep", None, 403, "permission denied", {"token": "s." + "x" * 4000}),
    ("token_bearer_bogus", "GET", "secret/data/keep", None, 403, "permission denied",
     {"token": "", "headers": {"Authorization": "Bearer s.bogus"}}),
    ("token_revoked", "GET", "secret/data/keep", None, 403, "permission denied", {"token": "@revoked"}),
    ("token_default_policy_mounts", "POST", "sys/mounts/m-bad", {"type": "kv"}, 403, "permission denied",
     {"token": "@default"}),
    ("token_default_policy_kv", "PUT", "secret/data/keep", {"data": {"x": "y"}}, 403, "permission denied",
     {"token": "@default"}),
]

# Against a fresh server: sys/init validation, then unseal validation while sealed.
INIT_CATALOGUE = [
    ("init_shares_zero", "PUT", "sys/init", {"secret_shares": 0, "secret_threshold": 0}, 400, "shares"),
    ("init_shares_256", "PUT", "sys/init", {"secret_shares": 256, "secret_threshold": 3}, 400, "shares"),
    ("init_threshold_gt_shares", "PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 5}, 400, "threshold"),
    ("init_threshold_zero", "PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 0}, 400, "threshold"),
    ("init_threshold_one_of_many", "PUT", "sys/init", {"secret_shares": 3, "secret_threshold": 1}, 400, "threshold"),
    ("init_shares_negative", "PUT", "sys/init", {"secret_shares": -1, "secret_threshold": 1}, 400, "shares"),
    ("init_shares_string", "PUT", "sys/init", {"secret_shares": "five", "secret_threshold": 3}, 400, "secret_shares"),
    ("init_shares_huge", "PUT", "sys/init", {"secret_shares": 2 ** 62, "secret_threshold": 3}, 400, "shares"),
    ("init_pgp_keys_mismatch", "PUT", "sys/init", {"secret_shares": 2, "secret_threshold": 2,
                                                   "pgp_keys": ["a"]}, 400, "PGP keys"),
    ("init_body_array", "PUT", "sys/init", b"[]", 400, "must be a JSON object"),
    ("sealed_uninit_unseal", "PUT", "sys/unseal", {"key": "00" * 32}, 400, "not initialized"),
]

UNSEAL_CATALOGUE = [
    ("unseal_key_not_hex", "PUT", "sys/unseal", {"key": "zz"}, 400, "'key' must be a valid hex or base64 string"),
    ("unseal_key_number", "PUT", "sys/unseal", {"key": 42}, 400, "'key' must be a string"),
    ("unseal_key_missing", "PUT", "sys/unseal", {}, 400, "'key' must be specified"),
    ("unseal_key_wrong_length", "PUT", "sys/unseal", {"key": "00" * 5}, 400, ""),
    ("unseal_key_huge", "PUT", "sys/unseal", {"key": "00" * 100000}, 400,
     "'key' must be a valid hex or base64 string"),
    ("sealed_kv_read", "GET", "secret/data/keep", None, 503, "Vault is sealed"),
    ("sealed_mounts", "GET", "sys/mounts", None, 503, "Vault is sealed"),
]


def send_raw_all(port, data, timeout=5):
    """Send bytes; read everything until the server closes (or timeout).
    Returns (bytes, closed_by_server, seconds)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out, closed, t0 = b"", False, time.time()
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not b:
                closed = True
                break
            out += b
    finally:
        s.close()
    return out, closed, time.time() - t0


def send_raw(port, data, timeout=20):
    """Send bytes on a fresh socket; return (status or None, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read what it said
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            out += b
            head, sep, rest = out.partition(b"\r\n\r\n")
            if sep:
                cl = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    finally:
        s.close()
    if not out.startswith(b"HTTP/1."):
        return None, out
    status = int(out.split(b" ", 2)[1])
    return status, out.partition(b"\r\n\r\n")[2]


class BadInputCatalogue(unittest.TestCase):
    passed = 0

    @classmethod
    def setUpClass(cls):
        extra = ""
        cls.srv = Server(storage="file")
        with open(cls.srv.config_path) as f:
            cfg = f.read()
        cfg = cfg.replace("tls_disable = true",
                          'tls_disable = true\n  max_request_size = %d\n  http_idle_timeout = "2s"' % MAX_BODY)
        with open(cls.srv.config_path, "w") as f:
            f.write(cfg + extra)
        cls.srv.start()
        cls.srv.init_unseal()
        s = cls.srv
        assert s.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status in (200, 204)
        assert s.put("secret/data/keep", {"data": {"v": "kept", "n": "1"}}).status == 200
        assert s.put("sys/policies/acl/keep", {"policy": KEEP_POLICY}).status in (200, 204)
        r = s.post("auth/token/create", {"policies": ["default"]})
        cls.default_token = r.json()["auth"]["client_token"]
        r = s.post("auth/token/create", {"policies": ["default"]})
        cls.revoked_token = r.json()["auth"]["client_token"]
        assert s.post("auth/token/revoke", {"token": cls.revoked_token}).status in (200, 204)
        cls.before = cls.snapshot(s)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    @staticmethod
    def snapshot(s):
        out = {}
        for p in ("secret/data/keep", "secret/metadata/keep", "sys/policies/acl/keep", "sys/mounts",
                  "sys/policies/acl", "sys/auth"):
            r = s.request("LIST" if p == "sys/policies/acl" else "GET", p)
            j = r.json()
            d = j.get("data", j) if isinstance(j, dict) else j
            if isinstance(d, dict):
                for volatile in ("updated_time",):
                    d.pop(volatile, None)
            out[p] = (r.status, json.dumps(d, sort_keys=True))
        out["lookup-default"] = s.get("auth/token/lookup-self", token=cls_default_token(s)).status
        return out

    def run_row(self, srv, row):
        name, method, path, body, status, text = row[:6]
        opts = row[6] if len(row) > 6 else {}
        if isinstance(body, Raw) and opts.get("one_answer"):
            data = body.data.replace(T.encode(), (srv.root_token or "").encode())
            out, closed, secs = send_raw_all(srv.port, data)
            self.assertTrue(out.startswith(b"HTTP/1.1 %d " % status), "%s: %r" % (name, out[:300]))
            self.assertEqual(out.count(b"HTTP/1."), 1, "%s: more than one status line: %r" % (name, out[:600]))
            head, _, rest = out.partition(b"\r\n\r\n")
            cl = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
            self.assertTrue(cl and int(cl[0].split(b":")[1]) == len(rest), "%s: body length: %r" % (name, out))
            self.assertIn(text, json.loads(rest)["errors"][0], name)
            self.assertTrue(closed and secs < 2, "%s: not closed at once (%.1fs)" % (name, secs))
            return
        if isinstance(body, Raw):
            data = body.data.replace(T.encode(), (srv.root_token or "").encode())
            got, raw_body = send_raw(srv.port, data)
            msg = raw_body.decode("utf-8", "replace")
            self.assertEqual(got, status, "%s: %s" % (name, msg[:300]))
            if text:
                self.assertIn(text, msg, name)
            return
        token = opts.get("token")
        if token == "@default":
            token = self.default_token
        elif token == "@revoked":
            token = self.revoked_token
        raw = None
        headers = dict(opts.get("headers", {}))
        if isinstance(body, bytes):
            raw, body = body, None
            headers.setdefault("Content-Type", "application/json")
        if method == "PATCH" and name == "method_patch_no_content_type":
            headers.pop("Content-Type", None)
        try:
            r = srv.request(method, path, body=body, raw=raw, token=token, headers=headers)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
            self.fail("%s: connection dropped without an answer (%r)" % (name, e))
        msg = r.body.decode("utf-8", "replace")
        self.assertEqual(r.status, status, "%s: %s" % (name, msg[:300]))
        if isinstance(text, WARN):
            self.assertIn(text.text, json.dumps(r.json().get("warnings")), name)
        elif isinstance(text, list):
            self.assertEqual(r.json()["errors"], text, name)
        elif text:
            self.assertIn(text, msg, name)
            if r.headers.get("content-type", "").startswith("application/json"):
                errs = r.json().get("errors")
                self.assertTrue(errs and all(isinstance(e, str) and "\n" not in e for e in errs), name)

    def test_01_catalogue(self):
        self.assertGreaterEqual(len(CATALOGUE) + len(INIT_CATALOGUE) + len(UNSEAL_CATALOGUE), 80)
        n = 0
        for row in CATALOGUE:
            with self.subTest(row[0]):
                self.run_row(self.srv, row)
                n += 1
        type(self).passed += n
        # the server still serves and nothing it stored changed
        self.assertEqual(self.srv.get("sys/health").status, 200)
        self.assertEqual(self.snapshot(self.srv), self.before)
        self.assertIsNone(self.srv.proc.poll())

    def test_02_init_and_unseal_catalogue(self):
        fresh = Server(storage="file")
        try:
            fresh.start()
            n = 0
            for row in INIT_CATALOGUE:
                with self.subTest(row[0]):
                    self.run_row(fresh, row)
                    n += 1
            r = fresh.get("sys/init", token="")
            self.assertEqual(r.json(), {"initialized": False}, "a rejected init changed state")
            fresh.init(shares=3, threshold=2)
            fresh.unseal(fresh.keys[:2])
            self.assertEqual(fresh.post("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status,
                             204)
            self.assertEqual(fresh.put("secret/data/keep", {"data": {"v": "kept"}}).status, 200)
            self.assertEqual(fresh.put("sys/seal", {}).status, 204)
            for row in UNSEAL_CATALOGUE:
                with self.subTest(row[0]):
                    self.run_row(fresh, row)
                    n += 1
            st = fresh.get("sys/seal-status").json()
            self.assertEqual((st["sealed"], st["progress"]), (True, 0), "bad keys counted as progress")
            fresh.unseal(fresh.keys[:2])
            self.assertEqual(fresh.get("secret/data/keep").json()["data"]["data"], {"v": "kept"})
            type(self).passed += n
        finally:
            fresh.cleanup()

    def test_03_slowloris(self):
        """Slow clients hold connections; others are served; the slow ones are cut off."""
        slow = []
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
            s.sendall(b"GET /v1/sys/heal")  # and then nothing
            slow.append(s)
        trickle = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        trickle.sendall(b"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        t0 = time.time()
        for _ in range(10):
            r = self.srv.get("secret/data/keep")
            self.assertEqual(r.status, 200)
        self.assertLess(time.time() - t0, 5, "slow clients delayed others")
        # the idle timeout (2 s here) closes them
        deadline = time.time() + 15
        for s in slow + [trickle]:
            s.settimeout(max(0.1, deadline - time.time()))
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                self.fail("a slow connection was never timed out")
            self.assertFalse(data.startswith(b"HTTP/1.1 2"), data[:100])
            s.close()
        self.assertLess(time.time() - t0, 15)
        self.assertEqual(self.srv.get("sys/health").status, 200)
        type(self).passed += 1

    def test_04_bodies_the_fast_reader_takes(self):
        """Valid bodies outside plain ASCII (raw UTF-8, \\u escapes with a
        surrogate pair, control escapes, reals, a duplicate key) are parsed
        by util/jsonr rather than jansson: what is stored and read back is
        what Python's json module makes of the same bytes."""
        bodies = [
            '{"data":{"caf\u00e9":"\u65e5\u672c \U0001f511","n":"x"}}'.encode(),
            b'{"data":{"k\\u00e9":"\\u0041\\u20ac\\ud83d\\udd11\\u001f\\t\\"\\\\\\/"}}',
            b'{"data":{"r":[1.5,-0.25,1e300,2.5E-3,0],"i":-9007199254740993,"t":true,"z":null}}',
            b'{"data":{"a":"first","a":"last"}}',
        ]
        for i, raw in enumerate(bodies):
            with self.subTest(i=i):
                path = "secret/data/fast-%d" % i
                r = self.srv.request("PUT", path, raw=raw, headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 200, r.body[:300])
                got = self.srv.get(path).json()["data"]["data"]
                self.assertEqual(got, json.loads(raw)["data"])
        # a \u0000 and a lone surrogate are still refused, in jansson's words
        for raw in (b'{"data":{"a":"x\\u0000"}}', b'{"data":{"a":"\\udc00"}}'):
            r = self.srv.request("PUT", "secret/data/fast-bad", raw=raw,
                                 headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400)
            self.assertIn("failed to parse JSON input: ", r.json()["errors"][0])
            self.assertIn("\\u", r.json()["errors"][0])

    def test_99_report(self):
        print("\nbad-input catalogue: %d cases passed (+ slowloris)" % type(self).passed)


def cls_default_token(s):
    return BadInputCatalogue.default_token


if __name__ == "__main__":
    unittest.main()
