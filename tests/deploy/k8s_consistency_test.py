#!/usr/bin/env python3
"""The rendered manifests against the daemon itself, not against a copy of its settings:
env var names from `bertserve --help`, the daemon started with the ConfigMap's environment
(its /info shows the values took effect), probe and scrape paths asked of it, the metric names
of the HPA's prometheus-adapter example found in its real /metrics scrape; and the objects
against each other (ports, selectors, HPA target, drain timing, the image's user).
usage: k8s_consistency_test.py BUILD_DIR OBJECTS_JSON (written by k8s_validate.mjs)"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, need, shared  # noqa: E402
from testlib import check, finish  # noqa: E402

build, objects_path = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
data = json.load(open(objects_path))
by_kind = {}
for o in data["objects"]:
    by_kind.setdefault(o["kind"], []).append(o)
for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
    if not check(len(by_kind.get(kind, [])) == 1, f"expected one {kind}, got {len(by_kind.get(kind, []))}"):
        finish("k8s_consistency")
dep, svc, hpa, pdb, cm = (by_kind[k][0] for k in ("Deployment", "Service", "HorizontalPodAutoscaler",
                                                   "PodDisruptionBudget", "ConfigMap"))
pod = dep["spec"]["template"]
ctr = pod["spec"]["containers"][0]
env = cm["data"]

# --- environment names: every one the manifests set is one the daemon reads
help_text = subprocess.run([need(os.path.join(build, "bertserve")), "--help"], capture_output=True, text=True,
                           check=True).stdout
known = set(re.findall(r"\benv (BERTSERVE_[A-Z_]+)", help_text))
check(len(known) >= 10, f"--help lists only {len(known)} env vars")
for name in env:
    check(name in known, f"ConfigMap key {name} is not an environment variable of the daemon (--help)")
for e in ctr.get("env", []):
    check(e["name"] in known, f"container env {e['name']} is not read by the daemon (--help)")
refs = [s["configMapRef"]["name"] for s in ctr.get("envFrom", []) if "configMapRef" in s]
check(refs == [cm["metadata"]["name"]], f"envFrom {refs} is not the ConfigMap {cm['metadata']['name']}")

# --- ports, named and numbered, all the way from the Service to the daemon's setting
ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
check(ports.get("http") == int(env.get("BERTSERVE_PORT", "8080")),
      f"containerPort http {ports.get('http')} != BERTSERVE_PORT {env.get('BERTSERVE_PORT')}")


def resolve(port):
    return ports.get(port) if isinstance(port, str) else port


probes = {k: ctr.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
for kind, probe in probes.items():
    if check(probe and "httpGet" in probe, f"{kind} missing or not httpGet"):
        check(resolve(probe["httpGet"]["port"]) == ports.get("http"), f"{kind} port {probe['httpGet']['port']}")
check(probes["readinessProbe"]["httpGet"]["path"] == "/ready", "readinessProbe is not /ready")
check(probes["livenessProbe"]["httpGet"]["path"] == "/health", "livenessProbe is not /health")
for sp in svc["spec"]["ports"]:
    check(resolve(sp["targetPort"]) in ports.values(), f"Service targetPort {sp['targetPort']} is no container port")
ann = pod["metadata"].get("annotations", {})
check(ann.get("prometheus.io/scrape") == "true", "no prometheus.io/scrape annotation")
check(int(ann.get("prometheus.io/port", 0)) == ports.get("http"), "prometheus.io/port is not the container port")

# --- selectors and targets
labels = pod["metadata"]["labels"]
for what, sel in (("Deployment", dep["spec"]["selector"]["matchLabels"]), ("Service", svc["spec"]["selector"]),
                  ("PodDisruptionBudget", pdb["spec"]["selector"]["matchLabels"])):
    check(all(labels.get(k) == v for k, v in sel.items()), f"{what} selector {sel} does not match the pods {labels}")
ref = hpa["spec"]["scaleTargetRef"]
check((ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", dep["metadata"]["name"]),
      f"HPA targets {ref}")
check(hpa["spec"]["minReplicas"] >= 2 and dep["spec"]["replicas"] >= hpa["spec"]["minReplicas"],
      "HPA minimum below 2 replicas or above the Deployment's")
check(pdb["spec"].get("minAvailable", 0) < hpa["spec"]["minReplicas"], "the PDB would block every eviction")
cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
check(cpu and cpu[0]["resource"]["target"].get("averageUtilization") == 70, "HPA CPU target is not 70%")
check("requests" in ctr["resources"] and "cpu" in ctr["resources"]["requests"],
      "no CPU request: the HPA's utilisation has nothing to refer to")

# --- drain: the kubelet's SIGKILL comes after preStop + the daemon's grace period
pre = ctr["lifecycle"]["preStop"]
pre_s = pre["sleep"]["seconds"] if "sleep" in pre else int(pre["exec"]["command"][-1])
grace = int(env.get("BERTSERVE_GRACE_SECONDS", "30"))
tgps = pod["spec"]["terminationGracePeriodSeconds"]
check(tgps >= pre_s + grace + 1, f"terminationGracePeriodSeconds {tgps} < preStop {pre_s} + grace {grace} + 1")

# --- the image's user is the one the pod runs as (runAsNonRoot needs a numeric USER)
dockerfile = open(os.path.join(root, "docker", "Dockerfile")).read()
user = re.findall(r"^USER (\d+)", dockerfile, re.M)
sc = pod["spec"].get("securityContext", {})
check(user and int(user[-1]) == sc.get("runAsUser"), f"Dockerfile USER {user} != runAsUser {sc.get('runAsUser')}")
check(sc.get("runAsNonRoot") is True and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
      "pod securityContext")
csc = ctr.get("securityContext", {})
check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
      and csc.get("capabilities", {}).get("drop") == ["ALL"], "container securityContext")
mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
check(env.get("BERTSERVE_MODEL") in mounts, f"BERTSERVE_MODEL {env.get('BERTSERVE_MODEL')} is not a volume mount")

# --- the real daemon, configured by the ConfigMap (model and address are the test's own)
for k, v in env.items():
    os.environ[k] = v
d = Daemon(build, need(os.path.join(shared, "models", "tiny-bert")))
status, _, body = d.request("GET", "/info")
info = json.loads(body)
for key, var in (("max_texts", "BERTSERVE_MAX_TEXTS"), ("max_concurrent_requests", "BERTSERVE_MAX_CONCURRENT_REQUESTS"),
                 ("workers", "BERTSERVE_WORKERS")):
    if var in env:
        check(info.get(key) == int(env[var]), f"{var}={env[var]} but /info {key}={info.get(key)}")
for kind, probe in probes.items():
    status, _, _ = d.request("GET", probe["httpGet"]["path"])
    check(status == 200, f"{kind} {probe['httpGet']['path']} answered {status}")
d.predict({"text": "Operating profit rose"})
status, hdrs, body = d.request("GET", ann.get("prometheus.io/path", "/metrics"))
check(status == 200 and hdrs.get("content-type", "").startswith("text/plain"), f"scrape path answered {status}")
families = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.M))
example = data.get("hpa_example") or []
names = [m["pods"]["metric"]["name"] for m in example if m.get("type") == "Pods"]
check(names, "the HPA's in-flight example names no Pods metric")
for rule in (data.get("adapter_rules") or {}).get("rules", []):
    names.append(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"].strip("'\"")).group(0))
    names.append(rule["name"]["as"])
for n in names:
    check(n in families, f"the HPA example's metric {n} is not exported by the daemon")
check(d.stop() == 0, "daemon exit code")
print(f"k8s_consistency: {len(env)} env vars known to --help, probes {[p['httpGet']['path'] for p in probes.values()]}"
      f" answer 200, HPA example metrics {sorted(set(names))} in the scrape")
finish("k8s_consistency")
