#!/usr/bin/env python3
"""CORS (--cors-allow-origin / BERTSERVE_CORS_ALLOW_ORIGIN), tiny-bert over loopback, with
http.client as a browser would speak:
  - off by default: no Access-Control-* header on any answer, and OPTIONS stays 405;
  - with a list: answers (successes and errors, 401 included) to a listed Origin carry
    Access-Control-Allow-Origin: that origin, Vary: Origin and the exposed headers; another
    origin, or none, gets no CORS header;
  - a preflight (OPTIONS + Origin + Access-Control-Request-Method) from a listed origin is 204
    with Allow-Methods, Allow-Headers (Content-Type, Authorization), Max-Age and no body, even
    with --api-key (browsers send no credentials on a preflight); from another origin 405;
    on an unknown path 404;
  - "*" (here from the environment) allows any origin, without Vary;
  - a malformed list fails at startup with its reason.
usage: cors_test.py BUILD_DIR"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
A, B, EVIL = "http://a.example", "https://b.example:8443", "http://evil.example"
BODY = {"text": "Profit rose."}
KEY = "cors-key-7"
AUTH = {"Authorization": "Bearer " + KEY}
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-expose-headers")


def no_cors(h, what):
    found = [k for k in h if k.startswith("access-control-")]
    check(not found, f"{what}: CORS headers {found} where none belong")


def allowed(h, origin, what):
    check(h.get("access-control-allow-origin") == origin, f"{what}: Allow-Origin {h.get('access-control-allow-origin')!r}")
    check(h.get("vary") == "Origin", f"{what}: Vary {h.get('vary')!r}")
    exposed = h.get("access-control-expose-headers", "")
    check("X-Request-Id" in exposed and "x-total-time" in exposed, f"{what}: Expose-Headers {exposed!r}")


def preflight(d, path, origin, method="POST"):
    return d.request("OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                               "Access-Control-Request-Headers": "content-type, authorization"})


# Off by default.
d = Daemon(build, tiny)
status, h, _ = d.request("POST", "/predict", BODY, {"Origin": A})
check(status == 200, f"default: /predict {status}")
no_cors(h, "default /predict")
status, h, _ = preflight(d, "/predict", A)
check(status == 405, f"default: OPTIONS {status}")
no_cors(h, "default OPTIONS")
check(d.stop() == 0, "default: exit status")

# A list of two origins (spaces around the comma allowed), and an API key.
d = Daemon(build, tiny, "--cors-allow-origin", f"{A} , {B}", "--api-key", KEY)
for origin in (A, B):
    for path, payload in (("/predict", BODY), ("/batch_predict", {"texts": ["Profit rose."]}),
                          ("/tokenize", {"inputs": "Profit rose."})):
        status, h, _ = d.request("POST", path, payload, {"Origin": origin, **AUTH})
        check(status == 200, f"{origin} {path}: {status}")
        allowed(h, origin, f"{origin} {path}")
    status, h, _ = d.request("GET", "/health", headers={"Origin": origin})
    check(status == 200, f"{origin} /health: {status}")
    allowed(h, origin, f"{origin} /health")
# Errors carry the headers too, so the page can read why.
status, h, _ = d.request("POST", "/predict", BODY, {"Origin": A})
check(status == 401, f"no key: {status}")
allowed(h, A, "401")
status, h, _ = d.request("POST", "/predict", {"texts": []}, {"Origin": A, **AUTH})
check(status == 422, f"bad body: {status}")
allowed(h, A, "422")
# Other origins, or none: nothing.
for origin, what in ((EVIL, "another origin"), (A + ":80", "a listed origin with a port"), (A + "/", "a slash"),
                     ("HTTP://A.EXAMPLE", "another case")):
    status, h, _ = d.request("POST", "/predict", BODY, {"Origin": origin, **AUTH})
    check(status == 200, f"{what}: {status}")
    no_cors(h, what)
status, h, _ = d.request("POST", "/predict", BODY, AUTH)
no_cors(h, "no Origin")

# Preflights.
for path in ("/predict", "/batch_predict", "/tokenize", "/info"):
    status, h, data = preflight(d, path, B)
    check(status == 204 and data == b"", f"preflight {path}: {status} {data!r}")
    allowed(h, B, f"preflight {path}")
    check("POST" in h.get("access-control-allow-methods", "") and "GET" in h.get("access-control-allow-methods", ""),
          f"preflight {path}: Allow-Methods {h.get('access-control-allow-methods')!r}")
    headers = h.get("access-control-allow-headers", "").lower()
    check("content-type" in headers and "authorization" in headers, f"preflight {path}: Allow-Headers {headers!r}")
    check(h.get("access-control-max-age") == "600", f"preflight {path}: Max-Age {h.get('access-control-max-age')!r}")
status, h, _ = preflight(d, "/predict", EVIL)
check(status == 405, f"preflight from another origin: {status}")
no_cors(h, "preflight from another origin")
status, h, _ = d.request("OPTIONS", "/predict", headers={"Origin": A})
check(status == 405, f"OPTIONS without Access-Control-Request-Method: {status}")
status, _, _ = preflight(d, "/nowhere", A)
check(status == 404, f"preflight on an unknown path: {status}")
m = metric_values(d.request("GET", "/metrics", headers={"Origin": A})[2].decode())
check(m.get('bertserve_requests_total{route="/predict",method="OPTIONS",code="204"}') == 1, "preflights counted")
check(d.stop() == 0, "list: exit status")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

# "*" from the environment: any origin, no Vary (the answer does not depend on it).
os.environ["BERTSERVE_CORS_ALLOW_ORIGIN"] = "*"
d = Daemon(build, tiny)
status, h, _ = d.request("POST", "/predict", BODY, {"Origin": EVIL})
check(status == 200 and h.get("access-control-allow-origin") == "*" and "vary" not in h, f"*: {status} {h}")
status, h, _ = preflight(d, "/tokenize", EVIL)
check(status == 204 and h.get("access-control-allow-origin") == "*", f"* preflight: {status} {h}")
check(d.stop() == 0, "*: exit status")
del os.environ["BERTSERVE_CORS_ALLOW_ORIGIN"]

# A malformed list fails at startup, naming the entry.
for bad in ("http://a.example/path", "a.example", "http://a.example,,http://b.example", ""):
    p = subprocess.run([os.path.join(build, "bertserve"), "--model", tiny, "--host", "127.0.0.1", "--port", "0",
                        "--cors-allow-origin", bad], capture_output=True, timeout=60)
    err = p.stderr.decode()
    check(p.returncode != 0 and "--cors-allow-origin" in err, f"{bad!r}: exit {p.returncode}: {err[-300:]}")

finish("cors_test")
