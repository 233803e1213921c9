#!/usr/bin/env python3
"""--metrics-port: /metrics alone on its own listener (e.g. kept off a public Service), every
other route only on --port; both keep working through a drain's start.

usage: metrics_port_test.py BUILD_DIR"""
import http.client
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
d = Daemon(build, need(os.path.join(shared, "models", "tiny-bert")), "--metrics-port", "0")
ready = next((line for line in d.lines if " ready " in line), "")
m = re.search(r"metrics_port=(\d+)", ready)
check(m is not None and int(m.group(1)) != d.port, f"no separate metrics port in the ready line: {ready!r}")
mport = int(m.group(1)) if m else 0


def get(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


status, _, got = d.predict({"text": "Profit rose."})
check(status == 200, f"/predict on --port: {status}")
status, data = get(mport, "/metrics")
values = metric_values(data.decode()) if status == 200 else {}
check(status == 200 and values.get('bertserve_requests_total{route="/predict",method="POST",code="200"}') == 1,
      f"/metrics on --metrics-port: {status} {data[:200]!r}")
status, data = get(d.port, "/metrics")
check(status == 404 and str(mport).encode() in data, f"/metrics on --port: {status} {data!r}")
for path, method, body in (("/predict", "POST", b'{"text": "x"}'), ("/health", "GET", None), ("/info", "GET", None)):
    status, data = get(mport, path, method, body)
    check(status == 404, f"{method} {path} on --metrics-port: {status} {data!r}")
check(d.stop() == 0, "exit code after SIGTERM")
check(not d.sanitizer_reports(), "sanitizer reports:\n" + "".join(d.lines[-30:]))
finish("metrics_port")
