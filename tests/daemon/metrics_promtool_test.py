#!/usr/bin/env python3
"""`promtool check metrics` on a real /metrics scrape of the daemon (tiny-bert), after requests
that fill every series (predictions, errors, 404s). promtool comes with Debian's `prometheus`
package; without it this test fails, it does not skip.
usage: metrics_promtool_test.py BUILD_DIR"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values, need, shared  # noqa: E402

promtool = shutil.which("promtool")
if not promtool:
    sys.exit("FAIL: promtool is not installed: apt-get install prometheus (Debian's package provides it)")

d = Daemon(sys.argv[1], need(os.path.join(shared, "models", "tiny-bert")))
d.predict({"text": "Operating profit rose"})
d.predict({"texts": ["a", "b", "net loss"]})
d.predict({"inputs": [["q", "d"], "x"]})
d.request("POST", "/predict", b"{", {"Content-Type": "application/json"})
d.request("GET", "/nope")
d.request("GET", "/health")
status, headers, body = d.request("GET", "/metrics")
rc = d.stop()

failures = []
if status != 200:
    failures.append(f"/metrics answered {status}")
if not headers.get("content-type", "").startswith("text/plain; version=0.0.4"):
    failures.append(f"/metrics content type {headers.get('content-type')}")
p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
print(p.stdout.decode() + p.stderr.decode(), end="")
if p.returncode != 0:
    failures.append(f"promtool check metrics exit {p.returncode}")
values = metric_values(body.decode())
if values.get('bertserve_requests_total{route="/predict",method="POST",code="400"}') != 1:
    failures.append("the 400 was not counted once")
if rc != 0:
    failures.append(f"daemon exit code {rc}")
if d.sanitizer_reports():
    failures.append(f"sanitizer reports: {d.sanitizer_reports()}")
if failures:
    sys.exit("FAIL: " + "; ".join(failures))
print("metrics_promtool: all checks passed")
