#!/usr/bin/env python3
"""The monitoring files against a real Prometheus and the real daemon.
 - Every alert in alerts.yml has a unit test that fires on a bad series and one that stays
   silent on a healthy one (the JSON of alerts_test.yml and alerts_drift_test.yml).
 - Prometheus (Debian's) runs on loopback with k8s/monitoring/prometheus.yml's scrape job and
   relabelling, its Kubernetes discovery replaced by a static target carrying the same
   __meta_kubernetes_* labels a pod with k8s/deployment.yaml's annotations would have, and
   alerts.yml loaded; it scrapes the daemon (finsent-mini) while requests arrive.
 - The target is up with its namespace/pod labels; every rule evaluates with health "ok";
   every rule and Grafana dashboard query runs without error and the dashboard's return data.
 - Every metric the rules and the dashboard use is in the daemon's real /metrics (and in
   Prometheus), apart from the named few that come from Prometheus or kube-state-metrics.
 - Feedback end to end: predictions under known request ids, feedback for each with a known
   right or wrong label; the accuracy recording rule and the diagonal PromQL computed from the
   scrape equal the accuracy of the feedback sent.
usage: monitoring_test.py BUILD_DIR WORK_DIR (WORK_DIR holds the *.json monitoring_test.sh wrote)"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, need, shared  # noqa: E402
from testlib import check, finish  # noqa: E402

build, work = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
mon = os.path.join(root, "k8s", "monitoring")
load = lambda name: json.load(open(os.path.join(work, name)))  # noqa: E731
rules_doc, example = load("alerts.json"), load("prometheus.json")
dashboard = json.load(open(os.path.join(mon, "grafana-dashboard.json")))

# Metrics that are not the daemon's, and where they come from.
EXTERNAL = {
    "up": "Prometheus, per target",
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas_ready": "kube-state-metrics",
}

# --- every alert fires on a bad series and stays silent on a healthy one -----------------
alerts = [r["alert"] for g in rules_doc["groups"] for r in g["rules"] if "alert" in r]
records = {r["record"] for g in rules_doc["groups"] for r in g["rules"] if "record" in r}
fires, silent = set(), set()
for f in ("alerts_test.json", "alerts_drift_test.json", "alerts_feedback_test.json"):
    for t in load(f)["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent if t.get("input_series") else set()).add(a["alertname"])
for a in alerts:
    check(a in fires, f"alert {a} has no unit test where it fires")
    check(a in silent, f"alert {a} has no unit test where it stays silent on a healthy series")
check(len(alerts) >= 8, f"only {len(alerts)} alerts")
print(f"unit tests: {len(alerts)} alerts, each with a firing and a silent case")


# --- metric names used by PromQL expressions --------------------------------------------------
def metrics_in(expr):
    """Metric names in a PromQL expression (label matchers, ranges, grouping clauses, strings
    and function names removed), and (name, matchers) pairs for the selectors with braces."""
    selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr)
    s = re.sub(r'"[^"]*"', "", expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    keywords = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "by", "without", "on",
                "ignoring", "inf", "nan", "le"}
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        if not m.group(2) and m.group(1).lower() not in keywords:
            names.add(m.group(1))
    return names, selectors


rule_exprs = [(r.get("alert") or r.get("record"), r["expr"]) for g in rules_doc["groups"] for r in g["rules"]]
dash_exprs = [(f"panel {p['title']}", t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
for v in dashboard["templating"]["list"]:
    if v["type"] == "query":
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.match(r"label_values\((.*),\s*\w+\)$", q)
        dash_exprs.append((f"variable {v['name']}", m.group(1) if m else q))
check(len(dash_exprs) >= 12, f"only {len(dash_exprs)} dashboard queries")
for title in ("Request rate", "latency", "Error ratio", "Label mix", "Confidence", "Batch size", "Queue depth",
              "CPU", "Memory", "Replicas", "Accuracy", "Confusion matrix", "Feedback rate", "Unknown-token",
              "Truncated"):
    check(any(title.lower() in p["title"].lower() for p in dashboard["panels"]), f"no dashboard panel on {title}")


def grafana_to_promql(expr):
    return expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$namespace", ".*")


# --- the daemon and a real Prometheus ------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


d = Daemon(build, need(os.path.join(shared, "models", "finsent-mini")))
prom = None
prom_dir = os.path.join(work, "prometheus")
try:
    texts = ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn", "The company cut 500 jobs.",
             "The annual general meeting will be held in Helsinki.", "Sales fell sharply in the quarter."]
    d.predict({"texts": texts})
    d.request("POST", "/predict", b"{", {"Content-Type": "application/json"})
    status, _, scrape = d.request("GET", "/metrics")
    check(status == 200, f"/metrics answered {status}")
    scrape = scrape.decode()
    samples = {}
    for line in scrape.splitlines():
        if line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", line)
            samples.setdefault(m.group(1), []).append(m.group(2) or "")
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))

    # Every metric used is exported (and every label value pinned by a matcher is one it has).
    used = set()
    for what, expr in rule_exprs + dash_exprs:
        names, selectors = metrics_in(expr)
        for n in names:
            if ":" in n:
                check(n in records, f"{what}: {n} is no recording rule in alerts.yml")
                continue
            used.add(n)
            check(n in samples or n in EXTERNAL, f"{what}: the daemon does not export {n}")
        for n, matchers in selectors:
            for label, value in re.findall(r'(\w+)\s*=\s*"([^"]*)"', matchers):
                if n in samples and label in ("le", "route"):
                    check(any(f'{label}="{value}"' in s for s in samples[n]),
                          f'{what}: {n} has no series with {label}="{value}"')
    daemon_used = sorted(n for n in used if n not in EXTERNAL)
    print(f"metrics: {len(daemon_used)} daemon metrics used by rules and dashboard, all in its /metrics "
          f"({len(families)} families); external: {sorted(used & set(EXTERNAL))}")

    # The example scrape job, fed a static target with the labels Kubernetes discovery would give.
    prometheus = shutil.which("prometheus")
    config = dict(example)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
    config["rule_files"] = [os.path.join(mon, f) for f in example["rule_files"]]
    job = dict(example["scrape_configs"][0])
    check("kubernetes_sd_configs" in job, "the example job does not discover pods")
    job.pop("kubernetes_sd_configs", None)
    job["static_configs"] = [{"targets": ["127.0.0.1:1"], "labels": {
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(d.port),
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
        "__meta_kubernetes_namespace": "ci",
        "__meta_kubernetes_pod_name": "bertserve-ci-0",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "bertserve"}}]
    config["scrape_configs"] = [job]
    config_path = os.path.join(work, "prometheus-ci.yml")
    json.dump(config, open(config_path, "w"), indent=1)  # JSON is YAML
    p = subprocess.run(["promtool", "check", "config", config_path], capture_output=True, text=True)
    check(p.returncode == 0, f"promtool check config on the CI config: {p.stdout}{p.stderr}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prom_log = open(os.path.join(work, "prometheus.log"), "w")
    prom = subprocess.Popen([prometheus, f"--config.file={config_path}", f"--storage.tsdb.path={prom_dir}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=prom_log, stderr=prom_log)
    target = None
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            active = get_json(base + "/api/v1/targets")["data"]["activeTargets"]
            if active and active[0]["health"] == "up":
                target = active[0]
                break
        except OSError:
            pass
        if prom.poll() is not None:
            break
        d.predict({"texts": texts})
        time.sleep(0.5)
    if not check(target is not None, "the Prometheus target never came up; log:\n"
                 + open(os.path.join(work, "prometheus.log")).read()[-3000:]):
        raise SystemExit(finish("monitoring"))
    labels = target["labels"]
    check(labels.get("namespace") == "ci" and labels.get("pod") == "bertserve-ci-0"
          and target["scrapeUrl"] == f"http://127.0.0.1:{d.port}/metrics",
          f"relabelling gave {target['scrapeUrl']} {labels}")
    print(f"prometheus: target {target['scrapeUrl']} up, labels {labels}")

    # Traffic across a few scrapes, so that rate() has points; then every rule evaluated.
    for _ in range(8):
        d.predict({"texts": texts})
        time.sleep(0.5)
    # Feedback with known right and wrong answers, sent once Prometheus has scraped every
    # feedback cell at 0 (so increase() extrapolates every cell alike and the ratio is exact).
    sent_right = sent_wrong = 0
    labels_of = ["positive", "negative", "neutral"]
    for k in range(20):
        rid = f"e2e-{k}"
        status, _, body = d.request("POST", "/predict", {"text": texts[k % len(texts)]}, {"X-Request-Id": rid})
        predicted = json.loads(body)["prediction"]
        right = k % 3 != 0  # 13 right, 7 wrong
        actual = predicted if right else labels_of[(labels_of.index(predicted) + 1) % 3]
        status, _, body = d.request("POST", "/feedback", {"request_id": rid, "label": actual})
        if check(status == 200 and json.loads(body)["correct"] == right, f"feedback {rid}: {status} {body[:200]}"):
            sent_right += right
            sent_wrong += not right
    want = sent_right / (sent_right + sent_wrong)
    rules = []
    deadline = time.time() + 30
    while time.time() < deadline:
        rules = [r for g in get_json(base + "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        if len(rules) == len(rule_exprs) and all(not r["lastEvaluation"].startswith("0001") for r in rules):
            break
        time.sleep(0.5)
    check(len(rules) == len(rule_exprs), f"Prometheus loaded {len(rules)} rules, alerts.yml has {len(rule_exprs)}")
    for r in rules:
        check(r["health"] == "ok" and not r.get("lastError"),
              f"rule {r['name']}: health {r['health']} {r.get('lastError', '')}")
    print(f"prometheus: {len(rules)} rules evaluated, health ok: {sorted(r['name'] for r in rules)}")

    def query(expr):
        url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            return get_json(url)
        except urllib.error.HTTPError as e:
            return json.load(e)

    for what, expr in rule_exprs:
        res = query(expr)
        check(res["status"] == "success", f"{what}: {res.get('error')}")
    empty = []
    for what, expr in dash_exprs:
        res = query(grafana_to_promql(expr))
        if check(res["status"] == "success", f"dashboard {what}: {res.get('error')}") and not res["data"]["result"]:
            empty.append(what)
    check(not empty, f"dashboard queries without data on live traffic: {empty}")
    shares = query("namespace_label:bertserve_prediction_share:rate1h")["data"]["result"]
    check(shares and all(s["metric"].get("namespace") == "ci" for s in shares), f"label share series: {shares}")
    accuracy = None
    deadline = time.time() + 30
    while time.time() < deadline:
        res = query('namespace:bertserve_feedback_accuracy:ratio1h{namespace="ci"}')["data"]["result"]
        total = query('sum(bertserve_feedback_total{namespace="ci"})')["data"]["result"]
        if res and total and float(total[0]["value"][1]) == sent_right + sent_wrong:
            accuracy = float(res[0]["value"][1])
            if abs(accuracy - want) < 1e-9:
                break
        time.sleep(0.5)
    check(accuracy is not None and abs(accuracy - want) < 1e-9,
          f"accuracy from the scrape {accuracy}, feedback sent {sent_right}/{sent_right + sent_wrong} = {want}")
    diag = query('sum(bertserve_feedback_total{namespace="ci"} and label_replace(group without (predicted) '
                 '(bertserve_feedback_total{namespace="ci"}), "predicted", "$1", "actual", "(.*)"))')["data"]["result"]
    check(diag and float(diag[0]["value"][1]) == sent_right, f"the diagonal PromQL: {diag}, want {sent_right}")
    print(f"prometheus: feedback accuracy {accuracy} from the scrape = {sent_right}/{sent_right + sent_wrong} sent")
    for n in daemon_used:
        res = query(f'count({{__name__="{n}"}})')["data"]["result"]
        check(res and float(res[0]["value"][1]) > 0, f"Prometheus has no {n} series from the scrape")
    print(f"prometheus: {len(rule_exprs)} rule and {len(dash_exprs)} dashboard queries ran, the dashboard's on data; "
          f"label shares {[(s['metric']['label'], round(float(s['value'][1]), 2)) for s in shares]}")
finally:
    if prom:
        prom.terminate()
        try:
            prom.wait(30)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
    check(d.stop() == 0, "daemon exit code")
    shutil.rmtree(prom_dir, ignore_errors=True)
finish("monitoring")
