#!/usr/bin/env python3
"""check_deploy.py — offline checks of dronepipe's deployment manifests.

Run by scripts/validate-deploy.sh inside .tools/venv (kubernetes-validate, jsonschema, PyYAML).
Inputs: Helm renders (one multi-document YAML per values file), the compose file, the vendored
schemas in tests/deploy/schemas/, the config tables of the binaries (`<binary> --help`, or the
committed fallback tests/deploy/known-vars.txt for binaries not built yet).

Prints one line per check: "ok   <name>" or "FAIL <name>" followed by indented details, and
exits 1 when any check failed. Checks:
  k8s-schema      every rendered document against the Kubernetes schemas of --k8s-version (strict:
                  unknown fields fail); custom resources against their vendored CRD schemas
  k8s-security    non-root, read-only root filesystem, no privilege escalation, capabilities
                  dropped, seccomp, no service-account token, probes, requests and limits
  k8s-env         every DP_* variable exists in the binary's table; required ones are set;
                  secrets only as files; HTTP address and port agree with the probes
  k8s-scaling     consumer groups <= partitions, topics co-partitioned, PDBs, quota has room for
                  the maximum scale plus one surge pod per service
  k8s-netpol      default deny, DNS, and exactly the flows each service needs
  compose-schema  the compose file against the compose-spec JSON schema (after interpolation)
  compose-*       the same security and env rules for the compose services
  topics          compose, chart and scripts/topics.txt list the same topics
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

SERVICES = ["ingress", "workflow", "package", "scheduler", "delivery", "dronesim"]
BINARIES = ["dronepipe-" + s for s in SERVICES] + ["dronepipe"]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
ONE_SHOT_KINDS = {"Job", "CronJob"}
CRD_FILES = {
    ("keda.sh", "ScaledObject"): "crd-keda-scaledobjects.yaml",
    ("keda.sh", "TriggerAuthentication"): "crd-keda-triggerauthentications.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): "crd-gateway-httproutes.yaml",
    ("kafka.strimzi.io", "KafkaTopic"): "crd-strimzi-kafkatopics.yaml",
}
KAFKA_PROP_RE = re.compile(r"^DP_KAFKA_PROP_[a-z0-9_]+$")
SECRETISH_RE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|CREDENTIAL)", re.I)
HELP_LINE_RE = re.compile(r"^  (DP_[A-Z0-9_]+)\b(.*)$")
# Third-party images whose entrypoints write inside the image at start; read_only would break
# them. Every other container must have a read-only root filesystem.
COMPOSE_WRITABLE_OK = {
    "kafka": "apache/kafka's start script writes the generated server.properties into /opt/kafka/config",
    "redis": "official redis image, data on a volume; read-only root not verified without Docker",
    "mongodb": "official mongo image writes its entrypoint state outside the volumes",
}
# Well-known ports of the data services for the network-policy check.
MONGO_PORT, REDIS_PORT, DNS_PORT = 27017, 6379, 53


class Report:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, name, problems, note=""):
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems[:40]:
                print(f"     - {p}")
            if len(problems) > 40:
                print(f"     ... and {len(problems) - 40} more")
        else:
            self.passed += 1
            print(f"ok   {name}{'  (' + note + ')' if note else ''}")


# ---------------------------------------------------------------------------------------------
# Config tables: from `--help` when the binary exists, else the committed fallback.


def parse_help(text):
    """Rows "  DP_NAME  type default bounds help [(required)] [(secret)]"; a binary without such
    rows (the ops CLI prints prose) contributes every DP_* name its help mentions."""
    table = {}
    for line in text.splitlines():
        m = HELP_LINE_RE.match(line)
        if m and not m.group(1).endswith("_"):  # skip the "DP_KAFKA_PROP_<name>" row
            flags = {"help"}
            if "(required)" in m.group(2):
                flags.add("required")
            if "(secret)" in m.group(2):
                flags.add("secret")
            table[m.group(1)] = flags
    if not table:
        for name in re.findall(r"\b(DP_[A-Z0-9_]*[A-Z0-9])\b", text):
            if not name.startswith("DP_KAFKA_PROP"):
                table[name] = {"help"}
    return table


def load_fallback(path):
    tables = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) >= 2:
                tables.setdefault(line[0], {})[line[1]] = set(line[2:])
    return tables


def write_fallback(path, tables):
    with open(path) as f:
        header = [l for l in f.read().splitlines() if l.startswith("#")]
    lines = list(header)
    for b in BINARIES:
        for var, flags in tables.get(b, {}).items():
            order = [x for x in ("required", "secret", "proposed", "expected", "help") if x in flags]
            lines.append(" ".join([b, var] + order))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def load_tables(bin_dir, fallback_path, regen, strict, problems):
    """Returns ({binary: {var: flags}}, {binary: 'help'|'fallback'})."""
    fallback = load_fallback(fallback_path)
    tables, source = {}, {}
    for b in BINARIES:
        exe = os.path.join(bin_dir, b)
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            try:
                out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10,
                                     env={"PATH": "/usr/bin:/bin"})
            except (OSError, subprocess.TimeoutExpired) as e:
                problems.append(f"{b} --help: {e}")
                continue
            table = parse_help(out.stdout + out.stderr)
            if out.returncode != 0 or not table:
                problems.append(f"{b} --help exited {out.returncode} and listed {len(table)} DP_* options")
                continue
            tables[b], source[b] = table, "help"
        else:
            if strict:
                problems.append(f"{exe}: not built (DEPLOY_STRICT_BINARIES=1 needs every binary)")
            if b not in fallback:
                problems.append(f"{b}: not built and not in {fallback_path}")
                continue
            tables[b], source[b] = fallback[b], "fallback"
    if regen and any(s == "help" for s in source.values()):
        # Built binaries replace their lines; "proposed" lines stay until a binary has them, so
        # the proposal is not lost (they are accepted only while a binary is not built).
        merged = dict(fallback)
        for b, t in tables.items():
            if source[b] == "help":
                merged[b] = dict(t)
                for var, flags in fallback.get(b, {}).items():
                    if "proposed" in flags and var not in t:
                        merged[b][var] = flags
        if merged != fallback:
            write_fallback(fallback_path, merged)
            print(f"note {fallback_path} regenerated from --help of: "
                  + ", ".join(b for b in BINARIES if source.get(b) == "help"))
    return tables, source


def check_env(where, binary, env, tables, problems, secrets_as_files, server=True):
    """env: {name: value or None (from a reference)}."""
    table = tables.get(binary)
    if table is None:
        problems.append(f"{where}: no config table for {binary}")
        return
    for name, value in env.items():
        if not name.startswith("DP_"):
            continue
        if name in table:
            flags = table[name]
        elif KAFKA_PROP_RE.match(name):
            flags = set()
        else:
            problems.append(f"{where}: {name} is not in {binary}'s config table")
            continue
        if secrets_as_files and value is not None and not name.endswith("_FILE"):
            if "secret" in flags or SECRETISH_RE.search(name):
                problems.append(f"{where}: secret {name} set as a literal; mount it and use {name}_FILE")
    for name, flags in table.items():
        if "required" in flags and name not in env and name + "_FILE" not in env:
            problems.append(f"{where}: required {name} is not set")
    if server and env.get("DP_HTTP_ADDR") != "0.0.0.0":
        problems.append(f"{where}: DP_HTTP_ADDR must be 0.0.0.0 in a container")


# ---------------------------------------------------------------------------------------------
# Kubernetes


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def strictify(schema):
    """CRD schemas prune unknown fields; make them errors, as `kubectl apply --validate=strict`."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for v in schema.values():
            strictify(v)
    elif isinstance(schema, list):
        for v in schema:
            strictify(v)
    return schema


def crd_validators(schema_dir):
    out = {}
    for (group, kind), fname in CRD_FILES.items():
        with open(os.path.join(schema_dir, fname)) as f:
            crd = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "CustomResourceDefinition")
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                s = strictify(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
                s.setdefault("properties", {})["metadata"] = {"type": "object"}
                out[(f"{group}/{v['name']}", kind)] = jsonschema.Draft4Validator(s)
    return out


def check_k8s_schema(docs, k8s_version, crds):
    problems = []
    for d in docs:
        ident = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        key = (d.get("apiVersion"), d.get("kind"))
        if key in crds:
            for e in sorted(crds[key].iter_errors(d), key=lambda e: list(e.path)):
                problems.append(f"{ident}: {'.'.join(map(str, e.path))}: {e.message[:200]}")
            continue
        if "/" in str(d.get("apiVersion")) and d["apiVersion"].split("/")[0].endswith((".io", ".sh")) \
                and not d["apiVersion"].split("/")[0].endswith("k8s.io"):
            problems.append(f"{ident}: {d['apiVersion']} has no vendored CRD schema")
            continue
        try:
            kubernetes_validate.validate(d, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{ident}: {'.'.join(map(str, e.path))}: {e.message[:200]}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
            problems.append(f"{ident}: {e}")
    return problems


def pod_spec(d):
    spec = d.get("spec", {})
    if d["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec", {})


def pod_labels(d):
    spec = d.get("spec", {})
    if d["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("metadata", {}).get("labels", {})


def binary_of(cmd):
    if cmd:
        b = os.path.basename(str(cmd[0]))
        if b in BINARIES:
            return b
    return None


def container_env(d, c, by_name):
    """{name: literal or None} from env and envFrom ConfigMaps; problems for secret refs."""
    env, problems = {}, []
    ns = d["metadata"].get("namespace")
    where = f"{d['kind']}/{d['metadata']['name']}/{c['name']}"
    for ef in c.get("envFrom", []):
        if "configMapRef" in ef:
            cm = by_name.get(("ConfigMap", ns, ef["configMapRef"]["name"]))
            if cm is None:
                problems.append(f"{where}: envFrom ConfigMap {ef['configMapRef']['name']} is not rendered")
                continue
            for k, v in (cm.get("data") or {}).items():
                env[ef.get("prefix", "") + k] = str(v)
        if "secretRef" in ef:
            problems.append(f"{where}: envFrom secretRef puts secrets in the environment; mount them as files")
    for e in c.get("env", []):
        if "valueFrom" in e:
            if "secretKeyRef" in e["valueFrom"]:
                problems.append(f"{where}: {e['name']} from secretKeyRef; mount the Secret and use a _FILE variable")
            env[e["name"]] = None
        else:
            env[e["name"]] = str(e.get("value", ""))
    return env, problems


def check_k8s_security(docs):
    problems = []
    for d in docs:
        if d.get("kind") not in WORKLOAD_KINDS:
            continue
        ident = f"{d['kind']}/{d['metadata']['name']}"
        ps = pod_spec(d)
        psc = ps.get("securityContext", {}) or {}
        if ps.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident}: automountServiceAccountToken must be false")
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if ps.get(k):
                problems.append(f"{ident}: {k} must not be set")
        for c in ps.get("initContainers", []) + ps.get("containers", []):
            w = f"{ident}/{c['name']}"
            sc = c.get("securityContext", {}) or {}

            def eff(k):
                return sc.get(k, psc.get(k))
            if eff("runAsNonRoot") is not True:
                problems.append(f"{w}: runAsNonRoot must be true")
            if eff("runAsUser") == 0:
                problems.append(f"{w}: runAsUser 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{w}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{w}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                problems.append(f"{w}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{w}: capabilities must drop ALL")
            if (sc.get("capabilities") or {}).get("add"):
                problems.append(f"{w}: adds capabilities")
            if (eff("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{w}: seccompProfile must be RuntimeDefault")
            res = c.get("resources", {}) or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        problems.append(f"{w}: no {part}.{r}")
            image = str(c.get("image", ""))
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                problems.append(f"{w}: image {image!r} needs a pinned tag")
            if d["kind"] in ONE_SHOT_KINDS or c in ps.get("initContainers", []):
                continue
            for probe, path in (("startupProbe", None), ("readinessProbe", "/readyz"),
                                ("livenessProbe", "/healthz")):
                p = c.get(probe)
                if not p:
                    problems.append(f"{w}: no {probe}")
                elif path and (p.get("httpGet") or {}).get("path") != path:
                    problems.append(f"{w}: {probe} must GET {path}")
    return problems


def port_number(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check_k8s_env(docs, tables, by_name):
    problems = []
    for d in docs:
        if d.get("kind") not in WORKLOAD_KINDS:
            continue
        ps = pod_spec(d)
        mounts_ok = lambda c: [m["mountPath"] for m in c.get("volumeMounts", [])]
        for c in ps.get("containers", []):
            b = binary_of(c.get("command"))
            w = f"{d['kind']}/{d['metadata']['name']}/{c['name']}"
            if b is None:
                problems.append(f"{w}: command {c.get('command')} is not a dronepipe binary")
                continue
            env, p = container_env(d, c, by_name)
            problems += p
            check_env(w, b, env, tables, problems, secrets_as_files=True,
                      server=d["kind"] not in ONE_SHOT_KINDS)
            for name, value in env.items():
                if name.endswith("_FILE") and value and name.startswith("DP_") or \
                        (name == "DP_KAFKA_PROP_ssl_ca_location" and value):
                    if not any(value.startswith(m.rstrip("/") + "/") for m in mounts_ok(c)):
                        problems.append(f"{w}: {name}={value} is not under a mounted volume")
            if d["kind"] in ONE_SHOT_KINDS:
                continue
            port = env.get("DP_HTTP_PORT")
            ports = {p["containerPort"] for p in c.get("ports", [])}
            if port is None or int(port) not in ports:
                problems.append(f"{w}: DP_HTTP_PORT={port} is not a containerPort {sorted(ports)}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                hg = (c.get(probe) or {}).get("httpGet") or {}
                if hg and port is not None and port_number(c, hg.get("port")) != int(port):
                    problems.append(f"{w}: {probe} port {hg.get('port')} is not DP_HTTP_PORT {port}")
    return problems


API_BINARIES = {"dronepipe-ingress", "dronepipe-delivery", "dronepipe-package", "dronepipe-scheduler"}
TRACKING_BINARIES = {"dronepipe-ingress", "dronepipe-delivery"}
AUTH_OFF_RENDERS = {"dev"}  # values-dev.yaml turns authentication off, visibly


def check_k8s_auth(render, docs, by_name):
    """Every API service authenticates (an API-key file or a JWKS), except in a render allowed to
    run open, where the pods must say so (dronepipe.io/auth: "off"); ingress and delivery share
    one tracking-token secret."""
    problems, track_files = [], {}
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        annotations = (d["spec"]["template"]["metadata"].get("annotations") or {})
        for c in pod_spec(d).get("containers", []):
            b = binary_of(c.get("command"))
            if b not in API_BINARIES:
                continue
            w = f"Deployment/{d['metadata']['name']}"
            env, _ = container_env(d, c, by_name)
            has_auth = bool(env.get("DP_AUTH_API_KEYS_FILE") or env.get("DP_AUTH_JWKS_FILE"))
            said = annotations.get("dronepipe.io/auth")
            if not has_auth:
                if render not in AUTH_OFF_RENDERS:
                    problems.append(f"{w}: auth is off (no DP_AUTH_API_KEYS_FILE or DP_AUTH_JWKS_FILE) "
                                    f"in the {render} values; only {sorted(AUTH_OFF_RENDERS)} may run an open API")
                elif said != "off":
                    problems.append(f"{w}: runs an open API without the annotation dronepipe.io/auth: \"off\"")
                continue
            if said != "on":
                problems.append(f"{w}: authenticates but is annotated dronepipe.io/auth: {said!r}")
            if env.get("DP_AUTH_JWKS_FILE") and not (env.get("DP_AUTH_JWT_ISSUER") and env.get("DP_AUTH_JWT_AUDIENCE")):
                problems.append(f"{w}: DP_AUTH_JWKS_FILE without DP_AUTH_JWT_ISSUER and DP_AUTH_JWT_AUDIENCE")
            if b in TRACKING_BINARIES:
                track_files[b] = env.get("DP_TRACK_TOKEN_SECRET_FILE")
    if track_files and len(set(track_files.values())) != 1:
        problems.append(f"ingress and delivery must mount the same tracking-token secret: {track_files}")
    return problems


def labels_match(selector, labels):
    ml = (selector or {}).get("matchLabels") or {}
    if (selector or {}).get("matchExpressions"):
        return False  # not used by the chart; treat as no match to stay conservative
    return all(labels.get(k) == v for k, v in ml.items())


def max_replicas(d, docs):
    n = d["spec"].get("replicas", 1)
    for o in docs:
        ref = (o.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("name") != d["metadata"]["name"] or o["metadata"].get("namespace") != d["metadata"].get("namespace"):
            continue
        if o["kind"] == "HorizontalPodAutoscaler":
            n = max(n, o["spec"]["maxReplicas"])
        if o["kind"] == "ScaledObject":
            n = max(n, o["spec"].get("maxReplicaCount", 100))
    return n


def qty(v, kind):
    v = str(v)
    if kind == "cpu":
        return int(v[:-1]) if v.endswith("m") else int(float(v) * 1000)
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for u, f in units.items():
        if v.endswith(u):
            return float(v[: -len(u)]) * f
    return float(v) / 2**20


def check_k8s_scaling(docs, by_name):
    problems = []
    parts = set()
    for d in docs:
        if d.get("kind") == "ConfigMap" and "DP_PARTITIONS" in (d.get("data") or {}):
            parts.add(int(d["data"]["DP_PARTITIONS"]))
    if len(parts) != 1:
        problems.append(f"DP_PARTITIONS differs between services or is missing: {sorted(parts)}")
        return problems
    partitions = parts.pop()
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    targets = {}
    for o in docs:
        if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject"):
            ref = o["spec"]["scaleTargetRef"]["name"]
            if ref in targets:
                problems.append(f"Deployment/{ref}: scaled by both {targets[ref]} and {o['kind']}")
            targets[ref] = o["kind"]
            if not any(d["metadata"]["name"] == ref for d in deployments):
                problems.append(f"{o['kind']}/{o['metadata']['name']}: target Deployment/{ref} not rendered")
        if o.get("kind") == "ScaledObject":
            mx = o["spec"].get("maxReplicaCount", 100)
            if mx > partitions:
                problems.append(f"ScaledObject/{o['metadata']['name']}: maxReplicaCount {mx} > {partitions} partitions (idle consumers)")
            for t in o["spec"]["triggers"]:
                if t["type"] == "kafka":
                    for k in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
                        if k not in t.get("metadata", {}):
                            problems.append(f"ScaledObject/{o['metadata']['name']}: kafka trigger without {k}")
        if o.get("kind") == "KafkaTopic":
            s, n = o["spec"], o["metadata"]["name"]
            if s.get("partitions") != partitions:
                problems.append(f"KafkaTopic/{n}: {s.get('partitions')} partitions, services use {partitions}")
            isr = int((s.get("config") or {}).get("min.insync.replicas", 1))
            if s.get("replicas", 1) > 1 and isr >= s["replicas"]:
                problems.append(f"KafkaTopic/{n}: min.insync.replicas {isr} leaves no broker to lose")
            if n.endswith(".state") and (s.get("config") or {}).get("cleanup.policy") != "compact":
                problems.append(f"KafkaTopic/{n}: the changelog must be compacted")
    need = {"pods": 0, "requests.cpu": 0, "limits.cpu": 0, "requests.memory": 0, "limits.memory": 0}
    namespaces = set()
    for d in deployments:
        ns, name = d["metadata"].get("namespace"), d["metadata"]["name"]
        namespaces.add(ns)
        labels = pod_labels(d)
        if not any(o.get("kind") == "PodDisruptionBudget" and o["metadata"].get("namespace") == ns
                   and labels_match(o["spec"].get("selector"), labels) for o in docs):
            problems.append(f"Deployment/{name}: no PodDisruptionBudget")
        ps = pod_spec(d)
        if not ps.get("topologySpreadConstraints"):
            problems.append(f"Deployment/{name}: no topologySpreadConstraints")
        surge = d["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1)
        n = max_replicas(d, docs) + (surge if isinstance(surge, int) else 1)
        need["pods"] += n
        for c in ps.get("containers", []):
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    v = (c.get("resources", {}).get(part) or {}).get(r)
                    if v is not None:
                        need[f"{part}.{r}"] += n * qty(v, r)
    for ns in namespaces:
        quotas = [o for o in docs if o.get("kind") == "ResourceQuota" and o["metadata"].get("namespace") == ns]
        if not quotas:
            problems.append(f"namespace {ns}: no ResourceQuota")
        if not any(o.get("kind") == "LimitRange" and o["metadata"].get("namespace") == ns for o in docs):
            problems.append(f"namespace {ns}: no LimitRange")
        for q in quotas:
            hard = q["spec"]["hard"]
            for k, v in need.items():
                if k in hard:
                    have = int(hard[k]) if k == "pods" else qty(hard[k], k.split(".")[1])
                    if have < v:
                        problems.append(f"ResourceQuota/{q['metadata']['name']}: {k}={hard[k]} < {v:g} needed at max scale + surge")
    return problems


def policy_ports(rule):
    return {p.get("port") for p in rule.get("ports") or []}


def check_k8s_netpol(docs, by_name):
    problems = []
    pols = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    public = set()
    for d in docs:
        if d.get("kind") == "Ingress":
            for r in d["spec"].get("rules", []):
                for p in r.get("http", {}).get("paths", []):
                    public.add(p["backend"]["service"]["name"])
        if d.get("kind") == "HTTPRoute":
            for r in d["spec"].get("rules", []):
                for b in r.get("backendRefs", []):
                    public.add(b["name"])
    for d in docs:
        if d.get("kind") not in WORKLOAD_KINDS:
            continue
        ns, name = d["metadata"].get("namespace"), d["metadata"]["name"]
        labels = pod_labels(d)
        mine = [p for p in pols if p["metadata"].get("namespace") == ns
                and labels_match(p["spec"].get("podSelector"), labels)]
        if not any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                   and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in mine):
            problems.append(f"{d['kind']}/{name}: no default-deny NetworkPolicy in {ns}")
        egress = [r for p in mine for r in p["spec"].get("egress") or []]
        ingress = [r for p in mine for r in p["spec"].get("ingress") or []]
        for r in egress + ingress:
            if not r.get("to") and not r.get("from"):
                problems.append(f"{d['kind']}/{name}: a policy rule allows every peer")
        eports = set().union(*[policy_ports(r) for r in egress]) if egress else set()
        ps = pod_spec(d)
        c = ps["containers"][0]
        env, _ = container_env(d, c, by_name)
        want = {DNS_PORT}
        brokers = env.get("DP_KAFKA_BROKERS") or ""
        want |= {int(b.rsplit(":", 1)[1]) for b in brokers.split(",") if ":" in b}
        if "DP_MONGO_URI" in env or "DP_MONGO_URI_FILE" in env:
            want.add(MONGO_PORT)
        if "DP_REDIS_URL" in env or "DP_REDIS_URL_FILE" in env:
            want.add(REDIS_PORT)
        for p in sorted(want - eports):
            problems.append(f"{d['kind']}/{name}: no egress allowed to port {p}")
        for p in sorted(eports - want - {9092, 9093}):
            problems.append(f"{d['kind']}/{name}: egress to port {p} is allowed but not needed")
        if d["kind"] in ONE_SHOT_KINDS:
            continue
        port = int(env.get("DP_HTTP_PORT", 0))
        if not any(port in policy_ports(r) for r in ingress):
            problems.append(f"{d['kind']}/{name}: no ingress rule on {port} (Prometheus scrape)")
        if name in public and sum(port in policy_ports(r) for r in ingress) < 2:
            problems.append(f"{d['kind']}/{name}: public, but no ingress rule for the ingress controller/gateway")
    return problems


# ---------------------------------------------------------------------------------------------
# Compose

INTERP_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$\$")


def interpolate(node, env):
    """Docker compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, $$ -> $."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if isinstance(node, str):
        def sub(m):
            if m.group(0) == "$$":
                return "$"
            v = env.get(m.group(1))
            if m.group(2) in (":-",) and not v:
                return m.group(3)
            if m.group(2) == "-" and v is None:
                return m.group(3)
            return v or ""
        return INTERP_RE.sub(sub, node)
    return node


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")


def compose_port_problems(services):
    """Every published port binds to loopback by default (the file interpolated with an empty
    environment): a port with no host address would be published on every interface."""
    problems = []
    for name, s in services.items():
        for p in s.get("ports") or []:
            if isinstance(p, dict):  # long syntax
                if p.get("published") is not None and str(p.get("host_ip", "")) not in LOOPBACK:
                    problems.append(f"{name}: port {p.get('published')} published on "
                                    f"'{p.get('host_ip', '')}' (all interfaces), not loopback")
                continue
            text = str(p).split("/", 1)[0]
            host = text.rsplit(":", 2)[0] if text.count(":") >= 2 else ""
            if host not in LOOPBACK:
                problems.append(f"{name}: port '{p}' is published on "
                                f"{host or 'every interface'}, not loopback")
    return problems


def check_compose(path, schema_path, tables, report):
    with open(path) as f:
        raw = yaml.safe_load(f)
    doc = interpolate(raw, {})
    with open(schema_path) as f:
        schema = json.load(f)
    v = jsonschema.validators.validator_for(schema)(schema)
    errs = [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path))]
    report.check("compose-schema", errs, f"compose-spec {os.path.basename(schema_path)}")
    services = doc.get("services") or {}
    sec, envp = [], []
    for name, s in services.items():
        one_shot = str(s.get("restart", "")) == "no"
        user = str(s.get("user", ""))
        if not user or user.split(":")[0] in ("0", "root"):
            sec.append(f"{name}: must set a non-root user")
        if not s.get("read_only") and name not in COMPOSE_WRITABLE_OK:
            sec.append(f"{name}: read_only must be true")
        if "ALL" not in (s.get("cap_drop") or []):
            sec.append(f"{name}: cap_drop must include ALL")
        if not any(str(o).startswith("no-new-privileges") for o in s.get("security_opt") or []):
            sec.append(f"{name}: security_opt no-new-privileges:true")
        lim = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "memory" not in lim or "cpus" not in lim:
            sec.append(f"{name}: deploy.resources.limits needs memory and cpus")
        if not s.get("restart"):
            sec.append(f"{name}: no restart policy")
        for dep, cond in (s.get("depends_on") or {}).items() if isinstance(s.get("depends_on"), dict) else []:
            if not (cond or {}).get("condition"):
                sec.append(f"{name}: depends_on {dep} without a condition")
            if dep not in services:
                sec.append(f"{name}: depends_on unknown service {dep}")
        if isinstance(s.get("depends_on"), list):
            sec.append(f"{name}: depends_on must use conditions (long form)")
        if not one_shot and not (s.get("healthcheck") or {}).get("test"):
            sec.append(f"{name}: no healthcheck")
        b = binary_of(s.get("entrypoint"))
        if b is None:
            continue
        env = compose_env(s)
        check_env(f"compose {name}", b, env, tables, envp, secrets_as_files=False)
        test = (s.get("healthcheck") or {}).get("test") or []
        if "/readyz" not in test or env.get("DP_HTTP_PORT") not in test:
            sec.append(f"{name}: healthcheck must probe /readyz on DP_HTTP_PORT {env.get('DP_HTTP_PORT')}")
        deps = s.get("depends_on") or {}
        if (deps.get("kafka") or {}).get("condition") != "service_healthy" or \
                (deps.get("topics") or {}).get("condition") != "service_completed_successfully":
            sec.append(f"{name}: must wait for kafka healthy and topics completed")
        for want, dep in (("DP_MONGO_URI", "mongodb"), ("DP_REDIS_URL", "redis")):
            if want in env and (deps.get(dep) or {}).get("condition") != "service_healthy":
                sec.append(f"{name}: uses {dep} but does not wait for it to be healthy")
    report.check("compose-ports", compose_port_problems(services),
                 "every published port on loopback unless DRONEPIPE_PUBLISH_ADDR widens it")
    report.check("compose-security", sec,
                 "writable root allowed for " + ", ".join(sorted(COMPOSE_WRITABLE_OK)))
    report.check("compose-env", envp)
    topics = services.get("topics", {}).get("environment", {})
    names = set(str(topics.get("TOPICS", "")).split())
    compacted = set(str(topics.get("COMPACTED_TOPICS", "")).split())
    return names | {t + ".dlq" for t in names} | compacted, compacted


# ---------------------------------------------------------------------------------------------


def read_topics_txt(path):
    if not os.path.exists(path):
        return None
    out, compacted = set(), set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                out.add(line[0])
                if "cleanup.policy=compact" in line[1:]:
                    compacted.add(line[0])
    return out, compacted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--render", action="append", default=[], help="NAME=FILE of a helm render")
    ap.add_argument("--compose", required=True)
    ap.add_argument("--schemas", required=True)
    ap.add_argument("--known-vars", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--topics-txt", required=True)
    ap.add_argument("--k8s-version", required=True)
    ap.add_argument("--regen", action="store_true", help="rewrite --known-vars from built binaries")
    a = ap.parse_args()
    report = Report()
    strict = os.environ.get("DEPLOY_STRICT_BINARIES") == "1"

    tprob = []
    tables, source = load_tables(a.bin_dir, a.known_vars, a.regen, strict, tprob)
    fb = [b for b in BINARIES if source.get(b) == "fallback"]
    report.check("config-tables", tprob,
                 ("--help of " + ", ".join(b for b in BINARIES if source.get(b) == "help") + "; " if len(fb) < len(BINARIES) else "")
                 + (f"not built, using {os.path.basename(a.known_vars)}: {', '.join(fb)}" if fb else "all from --help"))

    crds = crd_validators(a.schemas)
    chart_topics = set()
    for spec in a.render:
        name, path = spec.split("=", 1)
        docs = load_docs(path)
        by_name = {(d.get("kind"), d.get("metadata", {}).get("namespace"), d.get("metadata", {}).get("name")): d for d in docs}
        report.check(f"k8s-schema[{name}]", check_k8s_schema(docs, a.k8s_version, crds),
                     f"{len(docs)} documents, Kubernetes {a.k8s_version}")
        report.check(f"k8s-security[{name}]", check_k8s_security(docs))
        report.check(f"k8s-env[{name}]", check_k8s_env(docs, tables, by_name))
        report.check(f"k8s-scaling[{name}]", check_k8s_scaling(docs, by_name))
        report.check(f"k8s-netpol[{name}]", check_k8s_netpol(docs, by_name))
        report.check(f"k8s-auth[{name}]", check_k8s_auth(name, docs, by_name))
        chart_topics |= {d["spec"].get("topicName", d["metadata"]["name"]) for d in docs if d.get("kind") == "KafkaTopic"}

    compose_topics, compose_compacted = check_compose(a.compose, os.path.join(a.schemas, "compose-spec.json"), tables, report)
    tp = []
    if chart_topics and compose_topics != chart_topics:
        tp.append(f"compose vs chart: only in compose {sorted(compose_topics - chart_topics)}, "
                  f"only in chart {sorted(chart_topics - compose_topics)}")
    txt, txt_compacted = read_topics_txt(a.topics_txt) or (None, None)
    if txt is not None and txt_compacted != compose_compacted:
        tp.append(f"compacted topics: {sorted(txt_compacted)} in {a.topics_txt}, {sorted(compose_compacted)} in compose")
    if txt is not None and txt != compose_topics:
        tp.append(f"{a.topics_txt} vs compose: only in topics.txt {sorted(txt - compose_topics)}, "
                  f"only in compose {sorted(compose_topics - txt)}")
    report.check("topics", tp, f"{len(compose_topics)} topics" + ("" if txt is not None else "; scripts/topics.txt not written yet"))
    print(f"checks: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
