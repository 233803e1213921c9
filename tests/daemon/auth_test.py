#!/usr/bin/env python3
"""Optional bearer-token auth on /predict (--api-key / BERTSERVE_API_KEY), tiny-bert over loopback:
  - without the right "Authorization: Bearer KEY", /predict is 401 unauthorized with
    WWW-Authenticate: Bearer (no header, a wrong key, a prefix or extension of the key,
    another scheme), before the body is read; with it, the golden answer;
  - /health, /ready, /info and /metrics stay open; the 401s are counted in the metrics;
  - the environment variable works and the flag wins over it; the key is never logged;
  - without a key /predict stays open.
usage: auth_test.py BUILD_DIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
row = next(json.loads(l) for l in open(need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl")))
           if json.loads(l)["id"] == "clear-000")
KEY = "s3cret-Key_0123456789"


def refused(d, headers, what):
    status, h, got = d.predict({"text": row["text"]}, headers)
    check(status == 401, f"{what}: status {status} {got}")
    check(h.get("www-authenticate") == "Bearer", f"{what}: WWW-Authenticate {h.get('www-authenticate')!r}")
    check(got and got.get("error_type") == "unauthorized" and got.get("error"), f"{what}: body {got}")
    check(KEY not in json.dumps(got), f"{what}: the answer holds the key")


def accepted(d, headers, what):
    status, _, got = d.predict({"text": row["text"]}, headers)
    check(status == 200 and got.get("prediction") == row["label"], f"{what}: {status} {got}")


os.environ["BERTSERVE_API_KEY"] = "from-the-environment"
d = Daemon(build, tiny, "--api-key", KEY)
refused(d, {}, "no Authorization")
refused(d, {"Authorization": "Bearer wrong"}, "wrong key")
refused(d, {"Authorization": "Bearer " + KEY[:-1]}, "a prefix of the key")
refused(d, {"Authorization": "Bearer " + KEY + "x"}, "the key and more")
refused(d, {"Authorization": "Bearer"}, "the scheme alone")
refused(d, {"Authorization": "Basic " + KEY}, "another scheme")
refused(d, {"Authorization": KEY}, "the key without a scheme")
refused(d, {"Authorization": "Bearer from-the-environment"}, "the environment's key (the flag wins)")
# A refused request's body is never parsed: invalid JSON is still a 401, not a 400.
status, _, data = d.request("POST", "/predict", b"{", {"Content-Type": "application/json"})
check(status == 401, f"invalid JSON without a key: {status} {data!r}")
accepted(d, {"Authorization": "Bearer " + KEY}, "the key")
accepted(d, {"Authorization": "bearer " + KEY}, "the key, scheme in lower case")
for path in ["/health", "/ready", "/info", "/metrics"]:
    status, _, _ = d.request("GET", path)
    check(status == 200, f"{path} stays open: {status}")
m = metric_values(d.request("GET", "/metrics")[2].decode())
n401 = m.get('bertserve_requests_total{route="/predict",method="POST",code="401"}', 0)
check(n401 == 9, f"401s counted: {n401} (want 9)")
check(d.stop() == 0, "exit status")
check(KEY not in "".join(d.lines), "the key is not in the log")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

# The environment alone.
e = Daemon(build, tiny)
refused(e, {}, "env: no Authorization")
accepted(e, {"Authorization": "Bearer from-the-environment"}, "env: the key")
check(e.stop() == 0, "env: exit status")

# No key: open.
del os.environ["BERTSERVE_API_KEY"]
o = Daemon(build, tiny)
accepted(o, {}, "no key configured")
check(o.stop() == 0, "open: exit status")

finish("auth_test")
