"""
test_deploy.py - the files in deploy/ are what an operator applies, so
each is checked the way its tool would (no cluster, no image builder here):

  * Kubernetes manifests: YAML parses; every object is checked against the
    shapes of its kind (the fields of the Kubernetes OpenAPI schema these
    manifests use - an unknown or misspelt field fails, as kubectl's
    server-side validation would), plus the cross-references a cluster
    would only reveal at run time: selectors match the pod labels, every
    volumeMount names a volume or claim template, probes hit a declared
    port, the ServiceAccount and ConfigMap exist, the NetworkPolicy admits
    the ports the Services expose. `kubectl kustomize` builds the set when
    kubectl is installed.
  * the guide's requirements: 3 replicas, raft on a volumeClaimTemplate,
    VAULT_K8S_POD_NAME / namespace env, config from a ConfigMap, health
    probes with Vault's query flags, retry_join through the headless
    service, vault-auth bound to system:auth-delegator, non-root,
    read-only root fs, IPC_LOCK.
  * the Helm chart renders (a renderer for the template subset the chart
    uses; helm is not in Debian) and with default values yields exactly
    the objects of deploy/kubernetes; values change what they should.
  * Containerfile: structure (two stages, non-root USER before the
    entrypoint, apt lists removed) and its runtime packages cover every
    shared library `readelf -d` lists for the built binary.
  * Prometheus rules: promtool check rules + promtool test rules.
  * coffer-backup.sh (shellcheck-clean) end to end against a real
    single-node raft server when the binary has raft storage (skipped
    otherwise; raft is not on main yet), and with a stand-in coffer
    command for the failure cases: a verified snapshot is
    kept with its checksum, snapshots past 7 days are rotated, the newest
    MIN_KEEP always stay; a failed save or a snapshot failing `inspect`
    rotates nothing and leaves no partial file; a second run while one
    holds the lock refuses. The systemd units pass systemd-analyze verify.
"""
import copy
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
CHART = os.path.join(DEPLOY, "helm", "coffer")

# ---- the OpenAPI shapes of the kinds used (the fields these manifests may use) ----
S, I, B = "string", "int", "bool"
OBJ_META = {"name": S, "namespace": S, "labels": {"*": S}, "annotations": {"*": S}}
LABEL_SELECTOR = {"matchLabels": {"*": S}, "matchExpressions": [{"key": S, "operator": S, "values": [S]}]}
INT_OR_STRING = "int-or-string"
PROBE = {"httpGet": {"path": S, "port": INT_OR_STRING, "scheme": S},
         "tcpSocket": {"port": INT_OR_STRING},
         "initialDelaySeconds": I, "periodSeconds": I, "timeoutSeconds": I,
         "failureThreshold": I, "successThreshold": I}
RESOURCES = {"requests": {"*": INT_OR_STRING}, "limits": {"*": INT_OR_STRING}}
CONTAINER = {
    "name": S, "image": S, "imagePullPolicy": S, "command": [S], "args": [S],
    "env": [{"name": S, "value": S,
             "valueFrom": {"fieldRef": {"fieldPath": S, "apiVersion": S},
                           "secretKeyRef": {"name": S, "key": S}}}],
    "ports": [{"name": S, "containerPort": I, "protocol": S}],
    "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
    "resources": RESOURCES,
    "securityContext": {"allowPrivilegeEscalation": B, "readOnlyRootFilesystem": B,
                        "runAsNonRoot": B, "runAsUser": I, "runAsGroup": I, "privileged": B,
                        "capabilities": {"add": [S], "drop": [S]}},
    "volumeMounts": [{"name": S, "mountPath": S, "readOnly": B, "subPath": S}],
}
POD_SPEC = {
    "serviceAccountName": S, "terminationGracePeriodSeconds": I,
    "securityContext": {"runAsNonRoot": B, "runAsUser": I, "runAsGroup": I, "fsGroup": I,
                        "seccompProfile": {"type": S}},
    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": LABEL_SELECTOR, "topologyKey": S}]}},
    "containers": [CONTAINER], "initContainers": [CONTAINER],
    "volumes": [{"name": S, "configMap": {"name": S, "defaultMode": I},
                 "secret": {"secretName": S, "defaultMode": I}, "emptyDir": {"medium": S, "sizeLimit": S}}],
}
PVC = {"metadata": OBJ_META, "spec": {"accessModes": [S], "storageClassName": S,
                                      "resources": {"requests": {"storage": S}}}}
NP_PEER = {"namespaceSelector": LABEL_SELECTOR, "podSelector": LABEL_SELECTOR,
           "ipBlock": {"cidr": S, "except": [S]}}
NP_PORT = {"protocol": S, "port": INT_OR_STRING}
KINDS = {
    ("v1", "Namespace"): {"metadata": OBJ_META},
    ("v1", "ServiceAccount"): {"metadata": OBJ_META, "automountServiceAccountToken": B},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {
        "metadata": OBJ_META, "roleRef": {"apiGroup": S, "kind": S, "name": S},
        "subjects": [{"kind": S, "name": S, "namespace": S, "apiGroup": S}]},
    ("v1", "ConfigMap"): {"metadata": OBJ_META, "data": {"*": S}},
    ("v1", "Service"): {"metadata": OBJ_META, "spec": {
        "type": S, "clusterIP": S, "publishNotReadyAddresses": B, "selector": {"*": S},
        "ports": [{"name": S, "port": I, "targetPort": INT_OR_STRING, "protocol": S}]}},
    ("apps/v1", "StatefulSet"): {"metadata": OBJ_META, "spec": {
        "serviceName": S, "replicas": I, "podManagementPolicy": S,
        "updateStrategy": {"type": S, "rollingUpdate": {"partition": I}},
        "selector": LABEL_SELECTOR,
        "template": {"metadata": OBJ_META, "spec": POD_SPEC},
        "volumeClaimTemplates": [PVC]}},
    ("networking.k8s.io/v1", "NetworkPolicy"): {"metadata": OBJ_META, "spec": {
        "podSelector": LABEL_SELECTOR, "policyTypes": [S],
        "ingress": [{"from": [NP_PEER], "ports": [NP_PORT]}],
        "egress": [{"to": [NP_PEER], "ports": [NP_PORT]}]}},
    ("policy/v1", "PodDisruptionBudget"): {"metadata": OBJ_META, "spec": {
        "maxUnavailable": INT_OR_STRING, "minAvailable": INT_OR_STRING, "selector": LABEL_SELECTOR}},
}
REQUIRED = {  # beyond apiVersion/kind/metadata.name
    "StatefulSet": ["spec.selector", "spec.template", "spec.serviceName"],
    "ClusterRoleBinding": ["roleRef.apiGroup", "roleRef.kind", "roleRef.name"],
    "Service": ["spec.ports"],
    "NetworkPolicy": ["spec.podSelector"],
}


def check_shape(value, shape, path, errors):
    if shape == S:
        if not isinstance(value, str):
            errors.append("%s: expected a string, found %r" % (path, value))
    elif shape == I:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append("%s: expected an integer, found %r" % (path, value))
    elif shape == B:
        if not isinstance(value, bool):
            errors.append("%s: expected a boolean, found %r" % (path, value))
    elif shape == INT_OR_STRING:
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errors.append("%s: expected an int or string, found %r" % (path, value))
    elif isinstance(shape, list):
        if not isinstance(value, list):
            errors.append("%s: expected a list" % path)
            return
        for i, v in enumerate(value):
            check_shape(v, shape[0], "%s[%d]" % (path, i), errors)
    elif isinstance(shape, dict):
        if not isinstance(value, dict):
            errors.append("%s: expected an object" % path)
            return
        for k, v in value.items():
            if k in shape:
                check_shape(v, shape[k], path + "." + k, errors)
            elif "*" in shape:
                check_shape(v, shape["*"], path + "." + k, errors)
            else:
                errors.append("%s: unknown field %r" % (path, k))


def get(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def validate(doc):
    errors = []
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in KINDS:
        return ["unknown apiVersion/kind %r" % (key,)]
    top = dict(KINDS[key], apiVersion=S, kind=S)
    check_shape(doc, top, doc["kind"], errors)
    if not get(doc, "metadata.name"):
        errors.append("%s: metadata.name is required" % doc["kind"])
    for r in REQUIRED.get(doc["kind"], []):
        if get(doc, r) is None:
            errors.append("%s: %s is required" % (doc["kind"], r))
    return errors


def load_dir(d):
    docs = []
    for f in sorted(os.listdir(d)):
        if f.endswith(".yaml") and f != "kustomization.yaml":
            with open(os.path.join(d, f)) as fh:
                docs += [x for x in yaml.safe_load_all(fh) if x]
    return docs


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


# ---- a renderer for the Go-template subset the chart uses ----
def lookup(ctx, path):
    v = ctx
    for p in path.strip(".").split("."):
        v = v[p]
    return v


def render_template(text, ctx):
    out, pos = [], 0
    stack = []  # (emitting?) for if/end
    for m in re.finditer(r"{{(-?)\s*(.*?)\s*(-?)}}", text, re.S):
        lit = text[pos:m.start()]
        if m.group(1) == "-":
            lit = lit.rstrip(" \t\n")
        if all(stack):
            out.append(lit)
        pos = m.end()
        if m.group(3) == "-":
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\n"))
        expr = m.group(2)
        if expr.startswith("if "):
            stack.append(bool(lookup(ctx, expr[3:])))
            continue
        if expr == "end":
            stack.pop()
            continue
        if not all(stack):
            continue
        parts = [p.strip() for p in expr.split("|")]
        head = parts[0]
        if head.startswith("toYaml "):
            val = yaml.safe_dump(lookup(ctx, head[7:]), default_flow_style=False, sort_keys=False).rstrip("\n")
        elif head.startswith("."):
            val = lookup(ctx, head)
        else:
            raise AssertionError("template construct outside the supported subset: %r" % expr)
        for f in parts[1:]:
            mm = re.fullmatch(r"nindent (\d+)", f)
            if not mm:
                raise AssertionError("template function outside the supported subset: %r" % f)
            ind = " " * int(mm.group(1))
            val = "\n" + "\n".join(ind + l if l else l for l in str(val).split("\n"))
        out.append(str(val))
    out.append(text[pos:])
    return "".join(out)


def render_chart(values=None, name="coffer", namespace="coffer"):
    with open(os.path.join(CHART, "values.yaml")) as f:
        vals = yaml.safe_load(f)
    for k, v in (values or {}).items():  # dotted overrides
        cur = vals
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur[p]
        cur[parts[-1]] = v
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    ctx = {"Values": vals, "Release": {"Name": name, "Namespace": namespace},
           "Chart": {"Name": chart["name"], "AppVersion": chart["appVersion"]}}
    docs = []
    tdir = os.path.join(CHART, "templates")
    for f in sorted(os.listdir(tdir)):
        with open(os.path.join(tdir, f)) as fh:
            docs += [x for x in yaml.safe_load_all(render_template(fh.read(), ctx)) if x]
    return docs


def key(d):
    return (d["kind"], d["metadata"]["name"])


class Kubernetes(unittest.TestCase):
    def setUp(self):
        self.docs = load_dir(K8S)
        self.k = by_kind(self.docs)

    def test_every_object_matches_its_kind(self):
        errors = [e for d in self.docs for e in validate(d)]
        self.assertEqual(errors, [])
        # the schema check itself catches a misspelt field
        bad = copy.deepcopy(self.k["StatefulSet"][0])
        bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilsystem"] = True
        self.assertTrue(any("readOnlyRootFilsystem" in e for e in validate(bad)))

    def test_the_guides_statefulset(self):
        ss = self.k["StatefulSet"][0]
        spec = ss["spec"]
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        self.assertEqual(spec["replicas"], 3)
        self.assertEqual(spec["selector"]["matchLabels"].items() - spec["template"]["metadata"]["labels"].items(),
                         set())
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["VAULT_K8S_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(env["VAULT_K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace")
        self.assertIn("$(VAULT_K8S_POD_NAME).%s" % spec["serviceName"], env["VAULT_API_ADDR"]["value"])
        # volumes: data on a claim template, config from the ConfigMap
        vols = {v["name"]: v for v in pod["volumes"]}
        claims = {t["metadata"]["name"] for t in spec["volumeClaimTemplates"]}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        for m in c["volumeMounts"]:
            self.assertTrue(m["name"] in vols or m["name"] in claims, m)
        self.assertIn(mounts["/vault/data"], claims)
        self.assertEqual(vols[mounts["/vault/config"]]["configMap"]["name"],
                         self.k["ConfigMap"][0]["metadata"]["name"])
        # probes: sys/health with Vault's flags, on a declared port
        ports = {p["containerPort"] for p in c["ports"]}
        for probe in (c["readinessProbe"], c["livenessProbe"]):
            self.assertTrue(probe["httpGet"]["path"].startswith("/v1/sys/health?"))
            self.assertIn("standbyok=true", probe["httpGet"]["path"])
            self.assertIn(probe["httpGet"]["port"], ports)
        self.assertIn("sealedcode=503", c["readinessProbe"]["httpGet"]["path"])
        self.assertIn("sealedcode=200", c["livenessProbe"]["httpGet"]["path"])
        # security: non-root, read-only root, only IPC_LOCK
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        sc = c["securityContext"]
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"], "add": ["IPC_LOCK"]})
        # the service account exists and is bound to system:auth-delegator
        sa = self.k["ServiceAccount"][0]
        self.assertEqual(pod["serviceAccountName"], sa["metadata"]["name"])
        self.assertEqual(sa["metadata"]["name"], "vault-auth")
        crb = self.k["ClusterRoleBinding"][0]
        self.assertEqual(crb["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": "system:auth-delegator"})
        self.assertEqual(crb["subjects"][0]["name"], sa["metadata"]["name"])
        self.assertEqual(crb["subjects"][0]["namespace"], sa["metadata"]["namespace"])

    def test_services_config_and_network_policy_agree(self):
        ss = self.k["StatefulSet"][0]
        labels = ss["spec"]["template"]["metadata"]["labels"]
        svcs = {s["metadata"]["name"]: s for s in self.k["Service"]}
        headless = svcs[ss["spec"]["serviceName"]]
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertTrue(headless["spec"]["publishNotReadyAddresses"])
        cports = {p["containerPort"] for p in ss["spec"]["template"]["spec"]["containers"][0]["ports"]}
        for s in svcs.values():
            self.assertEqual(s["spec"]["selector"].items() - labels.items(), set())
            for p in s["spec"]["ports"]:
                self.assertIn(p["targetPort"], cports)
        # retry_join names every pod through the headless service
        hcl = self.k["ConfigMap"][0]["data"]["coffer.hcl"]
        self.assertIn('storage "raft"', hcl)
        for i in range(ss["spec"]["replicas"]):
            self.assertIn("https://coffer-%d.%s:8200" % (i, headless["metadata"]["name"]), hcl)
        self.assertIn("prometheus_retention_time", hcl)
        # the NetworkPolicy selects the pods and admits the API port from clients
        np = self.k["NetworkPolicy"][0]
        self.assertEqual(np["spec"]["podSelector"]["matchLabels"].items() - labels.items(), set())
        self.assertEqual(sorted(np["spec"]["policyTypes"]), ["Egress", "Ingress"])
        api_rule = np["spec"]["ingress"][0]
        self.assertEqual([p["port"] for p in api_rule["ports"]], [8200])
        self.assertTrue(any("namespaceSelector" in f for f in api_rule["from"]))
        peer_ports = {p["port"] for p in np["spec"]["ingress"][1]["ports"]}
        self.assertEqual(peer_ports, {8200, 8201, 8202})
        pdb = self.k["PodDisruptionBudget"][0]
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"].items() - labels.items(), set())

    @unittest.skipUnless(shutil.which("kubectl"), "kubectl not installed")
    def test_kustomize_builds(self):
        p = subprocess.run(["kubectl", "kustomize", K8S], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        built = [d for d in yaml.safe_load_all(p.stdout) if d]
        self.assertEqual(sorted(map(key, built)), sorted(map(key, self.docs)))


class Helm(unittest.TestCase):
    def test_defaults_render_the_manifests(self):
        rendered = {key(d): d for d in render_chart()}
        plain = {key(d): d for d in load_dir(K8S) if d["kind"] != "Namespace"}
        self.assertEqual(sorted(rendered), sorted(plain))
        for k in plain:
            self.assertEqual(rendered[k], plain[k], k)
        for d in rendered.values():
            self.assertEqual(validate(d), [])

    def test_values_change_the_objects(self):
        docs = by_kind(render_chart({"server.replicas": 5, "image.tag": "9.9.9",
                                     "networkPolicy.enabled": False},
                                    name="vault", namespace="secrets"))
        ss = docs["StatefulSet"][0]
        self.assertEqual(ss["spec"]["replicas"], 5)
        self.assertEqual(ss["metadata"]["namespace"], "secrets")
        self.assertEqual(ss["spec"]["serviceName"], "vault-internal")
        self.assertTrue(ss["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9"))
        self.assertNotIn("NetworkPolicy", docs)
        self.assertEqual(docs["ClusterRoleBinding"][0]["subjects"][0]["namespace"], "secrets")


def package_of(soname):
    """The Debian package of a shared library as this machine resolves it."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True).stdout.decode()
    paths = re.findall(r"^\s*%s \(libc6,x86-64[^)]*\) => (\S+)$" % re.escape(soname), out, re.M)
    for p in paths + [os.path.realpath(x) for x in paths]:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True)
        if r.returncode == 0:
            return r.stdout.decode().split(":")[0]
    r = subprocess.run(["dpkg", "-S", "*/" + soname], capture_output=True)
    return r.stdout.decode().split(":")[0]


class Containerfile(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(DEPLOY, "Containerfile")) as f:
            self.text = f.read()
        # join continuation lines
        self.lines = re.sub(r"\\\n", " ", self.text).splitlines()
        self.ins = [l.strip() for l in self.lines if l.strip() and not l.strip().startswith("#")]

    def test_structure(self):
        froms = [l for l in self.ins if l.startswith("FROM ")]
        self.assertEqual(len(froms), 2)
        self.assertIn("debian:bookworm-slim", froms[-1])
        final = self.ins[self.ins.index(froms[-1]):]
        users = [l for l in final if l.startswith("USER ")]
        self.assertTrue(users and not users[-1].split()[1].startswith(("0", "root")))
        self.assertLess(final.index(users[-1]), final.index(next(l for l in final if l.startswith("ENTRYPOINT"))))
        for l in self.ins:
            if "apt-get install" in l:
                self.assertIn("--no-install-recommends", l)
                self.assertIn("rm -rf /var/lib/apt/lists/*", l)
            self.assertFalse(l.startswith("ADD http"), l)
        for d in ("/vault/config", "/vault/data", "/vault/logs"):
            self.assertIn(d, self.text)
        self.assertIn("EXPOSE 8200 8201 8202", self.ins)

    @unittest.skipUnless(os.environ.get("COFFER_BIN") and shutil.which("readelf") and shutil.which("dpkg"),
                         "needs COFFER_BIN, readelf and dpkg")
    def test_runtime_packages_cover_the_binary(self):
        out = subprocess.run(["readelf", "-d", os.environ["COFFER_BIN"]], capture_output=True,
                             check=True).stdout.decode()
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]", out)
        self.assertTrue(needed)
        final = self.text[self.text.rindex("FROM "):]
        install = re.search(r"apt-get install[^&]*", re.sub(r"\\\n", " ", final)).group(0).split()
        for lib in needed:
            if re.match(r"lib(asan|ubsan|tsan|lsan)\.", lib):
                continue  # a sanitizer build's runtime, not the image's binary
            pkg = package_of(lib)
            if pkg in ("libc6",):
                continue  # in the base image
            self.assertIn(pkg, install, "%s (from %s) missing in the runtime stage" % (pkg, lib))


class PrometheusRules(unittest.TestCase):
    @unittest.skipUnless(shutil.which("promtool"), "promtool not installed (Debian package prometheus)")
    def test_rules_check_and_unit_tests(self):
        d = os.path.join(DEPLOY, "prometheus")
        p = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=d, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        p = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=d, capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())


FAKE_COFFER = r"""#!/bin/sh
# stand-in for `coffer operator raft snapshot save|inspect` (raft is not on main)
[ "$1 $2 $3" = "operator raft snapshot" ] || { echo "unexpected: $*" >&2; exit 64; }
case "$4" in
save)
	[ -n "$FAKE_SAVE_FAIL" ] && { echo "Error: connection refused" >&2; exit 2; }
	if [ -n "$FAKE_CORRUPT" ]; then printf 'garbage' >"$5"; else printf 'SNAPSHOT %s\n' "$(date +%s%N)" >"$5"; fi
	[ -n "$FAKE_SLOW" ] && sleep "$FAKE_SLOW"
	exit 0;;
inspect)
	head -c 9 "$5" | grep -q '^SNAPSHOT ' || { echo "Error inspecting the snapshot: not a snapshot" >&2; exit 1; }
	echo "ok"; exit 0;;
esac
exit 64
"""


class Backup(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-backup-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "backups")
        self.fake = os.path.join(self.tmp, "coffer")
        with open(self.fake, "w") as f:
            f.write(FAKE_COFFER)
        os.chmod(self.fake, 0o755)
        self.script = os.path.join(DEPLOY, "coffer-backup.sh")

    def run_backup(self, **env):
        e = dict(os.environ, COFFER=self.fake, COFFER_BACKUP_DIR=self.dir,
                 COFFER_BACKUP_TEXTFILE=os.path.join(self.tmp, "backup.prom"), **env)
        return subprocess.run(["bash", self.script], env=e, capture_output=True, timeout=60)

    def snaps(self):
        return sorted(f for f in os.listdir(self.dir) if f.endswith(".snap"))

    def old(self, name, days):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write("SNAPSHOT old\n")
        t = time.time() - days * 86400
        os.utime(p, (t, t))
        return name

    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck not installed")
    def test_shellcheck(self):
        p = subprocess.run(["shellcheck", self.script], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout.decode())

    def test_verified_snapshot_and_rotation(self):
        os.makedirs(self.dir)
        keep = [self.old("coffer-snapshot-20200101-000006.snap", 6)]
        gone = [self.old("coffer-snapshot-20200101-000008.snap", 8),
                self.old("coffer-snapshot-20200101-000030.snap", 30)]
        self.old("unrelated.snap.txt", 40)
        p = self.run_backup(COFFER_BACKUP_MIN_KEEP="1")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        snaps = self.snaps()
        new = [s for s in snaps if s not in keep]
        self.assertEqual(len(new), 1)
        self.assertTrue(re.fullmatch(r"coffer-snapshot-\d{8}-\d{6}\.snap", new[0]))
        for g in gone:
            self.assertNotIn(g, snaps)
        self.assertIn(keep[0], snaps)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "unrelated.snap.txt")))
        path = os.path.join(self.dir, new[0])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # the checksum file verifies with sha256sum -c
        with open(path + ".sha256") as f:
            line = f.read()
        with open(path, "rb") as f:
            self.assertEqual(line.split()[0], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(subprocess.run(["sha256sum", "-c", new[0] + ".sha256"], cwd=self.dir,
                                        capture_output=True).returncode, 0)
        self.assertFalse([f for f in os.listdir(self.dir) if f.endswith(".partial")])
        with open(os.path.join(self.tmp, "backup.prom")) as f:
            prom = f.read()
        self.assertIn("coffer_backup_last_status 0", prom)
        self.assertIn("coffer_backup_last_success_timestamp_seconds", prom)

    def test_min_keep_survives_age(self):
        os.makedirs(self.dir)
        olds = [self.old("coffer-snapshot-2020010%d-000000.snap" % i, 20 + i) for i in range(1, 5)]
        p = self.run_backup(COFFER_BACKUP_MIN_KEEP="3")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        snaps = self.snaps()
        self.assertEqual(len(snaps), 3)  # the new one and the two youngest old ones
        self.assertIn(olds[0], snaps)
        self.assertIn(olds[1], snaps)

    def test_failures_rotate_nothing(self):
        os.makedirs(self.dir)
        old = self.old("coffer-snapshot-20200101-000030.snap", 30)
        p = self.run_backup(FAKE_SAVE_FAIL="1", COFFER_BACKUP_MIN_KEEP="0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("snapshot save failed", p.stderr.decode())
        self.assertEqual(self.snaps(), [old])
        p = self.run_backup(FAKE_CORRUPT="1", COFFER_BACKUP_MIN_KEEP="0")
        self.assertEqual(p.returncode, 3)
        self.assertIn("failed verification", p.stderr.decode())
        self.assertEqual(self.snaps(), [old])
        self.assertFalse([f for f in os.listdir(self.dir) if f.endswith(".partial")])
        with open(os.path.join(self.tmp, "backup.prom")) as f:
            self.assertIn("coffer_backup_last_status 3", f.read())
        self.assertEqual(self.run_backup(COFFER_BACKUP_RETENTION_DAYS="seven").returncode, 1)

    def test_one_run_at_a_time(self):
        first = subprocess.Popen(["bash", self.script],
                                 env=dict(os.environ, COFFER=self.fake, COFFER_BACKUP_DIR=self.dir,
                                          FAKE_SLOW="2"), stderr=subprocess.PIPE)
        time.sleep(0.7)
        p = self.run_backup()
        self.assertEqual(p.returncode, 1)
        self.assertIn("another backup is running", p.stderr.decode())
        first.communicate(timeout=30)
        self.assertEqual(first.returncode, 0)

    def test_against_a_raft_node(self):
        # the real commands against a real single-node raft server, once the
        # binary has raft storage (skipped on a build without it)
        from harness import Server, free_port, BIN
        cport = free_port()
        # raft_addr from free_port too: the default (cluster port + 1) may be
        # some client's source port
        s = Server(storage='storage "raft" {\n  path = "%s"\n  node_id = "n1"\n'
                   '  raft_addr = "127.0.0.1:%d"\n}' % (os.path.join(self.tmp, "raft"), free_port()))
        os.makedirs(os.path.join(self.tmp, "raft"))
        with open(s.config_path, "a") as f:
            f.write('api_addr = "http://%s"\ncluster_addr = "https://127.0.0.1:%d"\n' % (s.addr, cport))
        self.addCleanup(s.cleanup)
        try:
            s.start()
        except RuntimeError as e:
            if "not supported" in str(e):
                self.skipTest("this build has no raft storage")
            raise
        s.init_unseal()
        deadline = time.time() + 20
        while time.time() < deadline and s.put("sys/mounts/kv", {"type": "kv"}).status not in (200, 204):
            time.sleep(0.2)
        self.assertIn(s.put("kv/a", {"v": "1"}).status, (200, 204))
        env = dict(os.environ, COFFER=BIN, COFFER_BACKUP_DIR=self.dir, VAULT_ADDR="http://" + s.addr,
                   VAULT_TOKEN=s.root_token)
        p = subprocess.run(["bash", self.script], env=env, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        snaps = self.snaps()
        self.assertEqual(len(snaps), 1)
        p = subprocess.run([BIN, "operator", "raft", "snapshot", "inspect", os.path.join(self.dir, snaps[0])],
                           env=env, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        # a second run a second later keeps both (nothing is old)
        time.sleep(1.1)
        self.assertEqual(subprocess.run(["bash", self.script], env=env, capture_output=True,
                                        timeout=120).returncode, 0)
        self.assertEqual(len(self.snaps()), 2)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_systemd_units_verify(self):
        d = os.path.join(self.tmp, "units")
        os.mkdir(d)
        for u in ("coffer-backup.service", "coffer-backup.timer"):
            with open(os.path.join(DEPLOY, "systemd", u)) as f:
                text = f.read().replace("/usr/local/bin/coffer-backup", self.script)
            with open(os.path.join(d, u), "w") as f:
                f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", "coffer-backup.timer",
                            "coffer-backup.service"], cwd=d, capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        self.assertEqual(out.strip(), "", out)


if __name__ == "__main__":
    unittest.main()
