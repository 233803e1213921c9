#!/usr/bin/env python3
"""bertserve, the HTTP daemon, over loopback:
  - tiny-bert: every route and request shape, every bad input with its status and error_type,
    timing headers and request ids, metrics that move with what was returned, 200 concurrent
    connections, clients that stall or hang up mid-body, and the daemon still serving after it all;
  - finsent-mini: the golden `clear` rows end to end (labels, probabilities within 1e-5), a full
    queue answered with 429 + Retry-After, and SIGTERM with requests in flight (all complete,
    /ready 503 meanwhile, exit 0).
usage: daemon_test.py BUILD_DIR"""
import json
import math
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
t_begin = time.time()


def section(name):
    print(f"[{time.time() - t_begin:5.1f}s] {name}", flush=True)


tiny = need(os.path.join(shared, "models", "tiny-bert"))
finsent = need(os.path.join(shared, "models", "finsent-mini"))
tiny_rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl")))]
tiny_meta = json.load(open(need(os.path.join(shared, "golden", "tiny-bert", "meta.json"))))
tiny_version = tiny_meta["weights_sha256"][:12]  # no VERSION file, no --model-version: the weights' hash
fin_rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "finsent-mini", "logits.jsonl")))]
LABELS = ["positive", "negative", "neutral"]
MAX_BODY = 100000

d = Daemon(build, tiny, "--max-body-bytes", str(MAX_BODY), "--timeout-seconds", "5", "--workers", "2")
returned = {k: 0 for k in LABELS}  # every prediction the daemon has answered with


def count(label):
    returned[label] += 1


section("GET routes")
# ---- GET routes ----------------------------------------------------------------------------
status, h, body = d.request("GET", "/health")
check(status == 200 and json.loads(body) == {"status": "ok"}, f"/health: {status} {body}")
check(h.get("content-type", "").startswith("application/json"), "/health content type")
status, _, body = d.request("GET", "/ready")
check(status == 200, f"/ready: {status} {body}")
status, _, body = d.request("GET", "/info")
info = json.loads(body)
check(status == 200, f"/info: {status}")
for key, want in [("labels", LABELS), ("max_tokens", 128), ("layers", 2), ("hidden_size", 32),
                  ("weights_dtype", "F32"), ("model", tiny), ("compute_dtype", "f32"), ("requested_dtype", "f32")]:
    check(info.get(key) == want, f"/info {key}: {info.get(key)!r} != {want!r}")
check(info.get("workers") == 2 and info.get("threads_per_worker", 0) >= 1, f"/info workers: {info}")
check(info.get("kernel", "").endswith("-f32"), f"/info kernel of an f32 model: {info.get('kernel')!r}")
for key in ["version", "build", "gemm_kernel", "threads_per_worker", "weights_sha256", "weights_bytes"]:
    check(key in info, f"/info lacks {key}")
deadline = time.time() + 30
while info.get("weights_sha256") == "pending" and time.time() < deadline:
    time.sleep(0.05)
    info = json.loads(d.request("GET", "/info")[2])
check(info.get("weights_sha256") == tiny_meta["weights_sha256"],
      f"/info weights_sha256 {info.get('weights_sha256')} != {tiny_meta['weights_sha256']}")

metrics_before = metric_values(d.request("GET", "/metrics")[2].decode())

section("predict shapes")
# ---- POST /predict: the bertserve shapes ---------------------------------------------------
single = next(r for r in tiny_rows if r["id"] == "clear-000")
status, h, got = d.predict({"text": single["text"]}, {"X-Request-Id": "test-req-1"})
check(status == 200, f"text: {status} {got}")
count(got["prediction"])
check(set(got) == {"text", "prediction", "confidence", "scores", "tokens", "truncated", "processing_time_ms",
                    "model_version"},
      f"text: keys {sorted(got)}")
check(got["text"] == single["text"], "text echoed")
check(got["prediction"] == single["label"], f"text: prediction {got['prediction']} != golden {single['label']}")
check(all(abs(got["scores"][k] - p) <= 1e-5 for k, p in zip(LABELS, single["probs"])),
      f"text: scores {got['scores']} != golden {single['probs']}")
check(got["confidence"] == got["scores"][got["prediction"]] == max(got["scores"].values()), "confidence")
check(got["tokens"] == len(single["input_ids"]) and got["truncated"] is False, "tokens/truncated")
check(got["processing_time_ms"] > 0, "processing_time_ms")
check(h.get("x-request-id") == "test-req-1", f"X-Request-Id not echoed: {h.get('x-request-id')}")
for name in ["x-total-time", "x-queue-time", "x-tokenization-time", "x-inference-time"]:
    check(name in h and float(h[name]) >= 0, f"header {name}: {h.get(name)}")
check(h.get("x-compute-tokens") == str(len(single["input_ids"])), f"x-compute-tokens {h.get('x-compute-tokens')}")
_, h2, got2 = d.predict({"text": "hello"})
_, h3, got3 = d.predict({"text": "hello"})
count(got2["prediction"])
count(got3["prediction"])
for hh in (h2, h3):
    check(len(hh.get("x-request-id", "")) >= 8, "generated X-Request-Id")
check(h2.get("x-request-id") != h3.get("x-request-id"), "generated request ids differ")
status, h, got = d.predict({"text": "hello"}, {"X-Request-Id": "bad id with spaces"})
count(got["prediction"])
check(h.get("x-request-id") not in (None, "bad id with spaces"), "an unsafe X-Request-Id is replaced")

# the charset parameter is allowed
status, _, got = d.request("POST", "/predict", json.dumps({"text": "profit"}).encode(),
                           {"Content-Type": "application/json; charset=UTF-8"})
check(status == 200, f"charset=UTF-8: {status}")
count(json.loads(got)["prediction"])

# texts: a batch answers as each text alone would
batch_rows = [r for r in tiny_rows if "text_pair" not in r and r["category"] in ("clear", "news")][:20]
status, h, got = d.predict({"texts": [r["text"] for r in batch_rows]})
check(status == 200 and len(got.get("results", [])) == len(batch_rows), f"texts: {status}")
check(set(got) == {"results", "processing_time_ms", "model_version"}, f"texts: keys {sorted(got)}")
check(h.get("x-compute-tokens") == str(sum(len(r["input_ids"]) for r in batch_rows)), "texts: x-compute-tokens")
for r, res in zip(batch_rows, got.get("results", [])):
    count(res["prediction"])
    check(res["text"] == r["text"] and res["prediction"] == r["label"], f"texts {r['id']}: {res['prediction']}")
    check(all(abs(res["scores"][k] - p) <= 1e-5 for k, p in zip(LABELS, r["probs"])), f"texts {r['id']}: scores")

# truncation: reported, or refused with the limit named when "truncate": false
long_text = "profit " * 300
status, _, got = d.predict({"text": long_text})
count(got["prediction"])
check(status == 200 and got["tokens"] == 128 and got["truncated"] is True, f"long text: {status} {got.get('tokens')}")
status, _, got = d.predict({"text": long_text, "truncate": False})
check(status == 413 and "128" in got.get("error", "") and got.get("error_type"), f"truncate false: {status} {got}")
status, _, got = d.predict({"texts": ["ok", long_text], "truncate": False})
check(status == 413 and "texts[1]" in got.get("error", ""), f"truncate false in texts: {status} {got}")
status, _, got = d.predict({"text": "short", "truncate": False})
check(status == 200, f"truncate false, short text: {status}")
count(got["prediction"])

# a \u0000 escape does not cut the text short
status, _, got = d.predict({"text": "profit\u0000 rose"})
check(status == 200 and got["tokens"] == 4, f"NUL escape: {status} {got}")
count(got["prediction"])

# ---- POST /predict: TEI's shapes -----------------------------------------------------------
def tei_check(item, want_logits, raw, what):
    if not check(isinstance(item, list) and len(item) == 3, f"{what}: {item}"):
        return
    scores = [x["score"] for x in item]
    check(scores == sorted(scores, reverse=True), f"{what}: not sorted by score")
    m = max(want_logits)
    exps = [math.exp(v - m) for v in want_logits]
    probs = [e / sum(exps) for e in exps]
    want = dict(zip(LABELS, want_logits if raw else probs))
    check(all(abs(x["score"] - want[x["label"]]) <= 1e-5 for x in item), f"{what}: {item} != {want}")
    count(item[0]["label"])


pair_row = next(r for r in tiny_rows if "text_pair" in r)
status, _, got = d.predict({"inputs": single["text"]})
check(status == 200, f"inputs str: {status}")
tei_check(got, single["logits"], False, "inputs str")
status, _, got = d.predict({"inputs": [pair_row["text"], pair_row["text_pair"]], "raw_scores": True})
check(status == 200, f"inputs pair: {status}")
tei_check(got, pair_row["logits"], True, "inputs pair (raw_scores)")
status, _, got = d.predict({"inputs": [[single["text"]], [pair_row["text"], pair_row["text_pair"]], single["text"]],
                            "truncate": True, "truncation_direction": "right"})
check(status == 200 and isinstance(got, list) and len(got) == 3, f"inputs batch: {status}")
if status == 200:
    tei_check(got[0], single["logits"], False, "inputs batch [0]")
    tei_check(got[1], pair_row["logits"], False, "inputs batch [1] (pair)")
    tei_check(got[2], single["logits"], False, "inputs batch [2]")
# truncation_direction "left" keeps the last tokens: 50 x "loss" then exactly max_tokens - 2
# x "profit", cut on the left, is the "profit" part alone.
tail = " ".join(["profit"] * (info["max_tokens"] - 2))
st1, _, cut = d.predict({"inputs": " ".join(["loss"] * 50) + " " + tail, "truncation_direction": "Left",
                         "raw_scores": True})
st2, _, alone = d.predict({"inputs": tail, "raw_scores": True})
st3, _, right = d.predict({"inputs": " ".join(["loss"] * 50) + " " + tail, "raw_scores": True})
check(st1 == st2 == st3 == 200 and cut == alone and right != alone,
      f"truncation_direction left: {st1} {st2} {st3} {cut} {alone} {right}")
for answer in (cut, alone, right):
    if isinstance(answer, list):
        count(answer[0]["label"])

# ---- bad input: status and error_type, and the daemon keeps serving ---------------------
def bad(body, want_status, want_type, headers=None, what=None):
    hdrs = {"Content-Type": "application/json"} if headers is None else headers
    status, h, data = d.request("POST", "/predict", body, hdrs)
    try:
        got = json.loads(data)
    except ValueError:
        got = {}
    what = what or repr(body)[:60]
    check(status == want_status, f"{what}: status {status} != {want_status} ({data[:200]!r})")
    check(isinstance(got.get("error"), str) and got.get("error") and got.get("error_type") == want_type,
          f"{what}: body {got} (want error_type {want_type})")
    return h


bad(b"{", 400, "invalid_json")
bad(b"", 400, "invalid_json", what="empty body")
bad(b"[1, 2]", 422, "validation")
bad(b'"text"', 422, "validation")
bad(b"{}", 422, "validation")
bad(b'{"txt": "a"}', 422, "validation")
bad(b'{"text": 5}', 422, "validation")
bad(b'{"text": null}', 422, "validation")
bad(b'{"text": ""}', 422, "validation")
bad(b'{"text": " \\t\\n  "}', 422, "validation")
bad(b'{"texts": []}', 422, "validation")
bad(b'{"texts": "a"}', 422, "validation")
bad(b'{"texts": ["a", 1]}', 422, "validation")
bad(b'{"texts": ["a", "  "]}', 422, "validation")
bad(json.dumps({"texts": ["a"] * 65}).encode(), 422, "validation", what="65 texts")
bad(b'{"text": "caf\xc3 ok"}', 422, "validation", what="invalid UTF-8")
bad(b'{"text": "\xff\xfe"}', 422, "validation", what="invalid UTF-8 bytes")
bad(b'{"text": "a\\ud800b"}', 422, "validation", what="lone high surrogate escape")
bad(b'{"text": "a\\udc00"}', 422, "validation", what="lone low surrogate escape")
bad(b'{"text": "a\\\\ud800", "x": }', 400, "invalid_json", what="escaped backslash, then bad JSON")
bad(b'{"inputs": []}', 422, "validation")
bad(b'{"inputs": 3}', 422, "validation")
bad(b'{"inputs": [["a", "b", "c"]]}', 422, "validation")
bad(b'{"text": "a", "truncate": "yes"}', 422, "validation")
bad(b'{"inputs": "a", "truncation_direction": "sideways"}', 422, "validation")
bad(b'{"text": "a", "texts": ["b"]}', 422, "validation")
bad(b'{"text": "a"}', 415, "unsupported_media_type", headers={"Content-Type": "text/plain"})
bad(b'{"text": "a"}', 415, "unsupported_media_type", headers={}, what="no content type")
bad(b'{"text": "a"}', 415, "unsupported_media_type", headers={"Content-Type": "application/json; charset=latin-1"})
bad(json.dumps({"text": "a" * MAX_BODY}).encode(), 413, "payload_too_large", what="body over the limit")

status, h, data = d.request("GET", "/nope")
check(status == 404 and json.loads(data).get("error_type") == "not_found", f"unknown route: {status}")
status, h, data = d.request("GET", "/predict")
check(status == 405 and h.get("allow") == "POST" and json.loads(data).get("error_type") == "method_not_allowed",
      f"GET /predict: {status} {h.get('allow')}")
status, h, data = d.request("POST", "/health", b"{}", {"Content-Type": "application/json"})
check(status == 405 and "GET" in h.get("allow", ""), f"POST /health: {status} {h.get('allow')}")
status, h, data = d.request("DELETE", "/metrics")
check(status == 405 and "GET" in h.get("allow", ""), f"DELETE /metrics: {status}")


def raw_exchange(payload, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    s.sendall(payload)
    data = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    head, _, rest = data.partition(b"\r\n\r\n")
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if cl and len(rest) >= int(cl[0].split(b":")[1]):
                        break
        except socket.timeout:
            pass
    s.close()
    return data


# Content-Length over the limit: answered 413 from the headers alone, before any body is sent.
data = raw_exchange(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 50000000\r\n\r\n")
check(data.startswith(b"HTTP/1.1 413") and b"payload_too_large" in data, f"Content-Length 50 MB: {data[:120]!r}")
data = raw_exchange(b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
check(data.startswith(b"HTTP/1.1 413"), f"a large body to another route: {data[:60]!r}")
# A chunked body is counted while it is read.
chunk = b'{"text": "' + b"a" * 30000 + b'"}'
payload = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
for _ in range(5):
    payload += b"%x\r\n%s\r\n" % (len(chunk), chunk)
payload += b"0\r\n\r\n"
data = raw_exchange(payload)
check(data.startswith(b"HTTP/1.1 413") or data == b"", f"chunked body over the limit: {data[:120]!r}")
# A small chunked body is fine.
body = json.dumps({"text": "profit rose"}).encode()
data = raw_exchange(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
check(data.startswith(b"HTTP/1.1 200"), f"small chunked body: {data[:120]!r}")
if data.startswith(b"HTTP/1.1 200"):
    count(json.loads(data.partition(b"\r\n\r\n")[2])["prediction"])

# A slow but steady client: its body trickles in over longer than the connection timeout
# (5 s), never idle that long, so it is served (in a thread, beside the checks below).
steady_out = {}


def steady_client():
    body = json.dumps({"text": "Operating profit rose to EUR 13.1 mn"}).encode()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    t0 = time.time()
    for i in range(0, len(body), len(body) // 6):
        s.sendall(body[i:i + len(body) // 6])
        time.sleep(1.2)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    steady_out["took"], steady_out["data"] = time.time() - t0, data


steady = threading.Thread(target=steady_client)
steady.start()

# A client that hangs up mid-body, and one that stalls mid-body: neither pins the server.
raw_exchange(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
             b'{"text": "abc', read=False)
stalled = socket.create_connection(("127.0.0.1", d.port))
stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                b'{"text": "abc')
t0 = time.time()
status, _, body = d.request("GET", "/health")
check(status == 200 and time.time() - t0 < 2, f"/health with a stalled client: {status} after {time.time() - t0:.1f}s")
status, _, got = d.predict({"text": "still serving"})
check(status == 200, f"predict after bad input: {status}")
count(got["prediction"])
stalled.settimeout(20)
try:  # the connection timeout (5 s here) closes it
    closed = stalled.recv(100) == b""
except (socket.timeout, ConnectionResetError):
    closed = False
check(closed, "a stalled client is disconnected by the connection timeout")
stalled.close()
steady.join(60)
check(steady_out.get("data", b"").startswith(b"HTTP/1.1 200") and steady_out["took"] > 5,
      f"slow but steady client: {steady_out.get('data', b'')[:100]!r} after {steady_out.get('took', 0):.1f} s")
if steady_out.get("data", b"").startswith(b"HTTP/1.1 200"):
    count(json.loads(steady_out["data"].partition(b"\r\n\r\n")[2])["prediction"])

section("200 concurrent")
# ---- 200 concurrent connections, all answered -----------------------------------------------
N = 200
results = [None] * N
barrier = threading.Barrier(N)


def client(i):
    try:
        c = d.conn(timeout=120)
        c.connect()
        barrier.wait(30)
        st, _, data = d.request("POST", "/predict", {"text": f"request number {i}"}, conn=c)
        results[i] = (st, json.loads(data))
        c.close()
    except Exception as e:  # noqa: BLE001 (report every failure, do not die in a thread)
        results[i] = (None, repr(e))


threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join(180)
ok = [r for r in results if r and r[0] == 200]
check(len(ok) == N, f"concurrent: {len(ok)}/{N} answered 200; others: {[r for r in results if not r or r[0] != 200][:3]}")
for st, got in ok:
    count(got["prediction"])

section("metrics")
# ---- metrics move with what was returned --------------------------------------------------------
# Request counters are updated once a response is sent, which can trail the client's read a
# little: scrape until this scrape is the only request in flight.
deadline = time.time() + 10
while True:
    m = metric_values(d.request("GET", "/metrics")[2].decode())
    if m.get("bertserve_requests_in_flight") == 1 or time.time() > deadline:
        break
    time.sleep(0.02)
for k in LABELS:
    key = f'bertserve_predictions_total{{label="{k}",model_version="{tiny_version}"}}'
    moved = m.get(key, -1) - metrics_before.get(key, 0)
    check(moved == returned[k], f"{key} moved by {moved}, the daemon returned {returned[k]} {k} predictions")
conf = m.get("bertserve_prediction_confidence_count", 0) - metrics_before.get("bertserve_prediction_confidence_count", 0)
check(conf == sum(returned.values()), f"confidence histogram count moved by {conf}, not {sum(returned.values())}")
check(m.get('bertserve_requests_total{route="/predict",method="POST",code="422"}', 0) >= 20, "422s counted")
check(m.get('bertserve_requests_total{route="/predict",method="POST",code="200"}', 0) >= N, "200s counted")
check(m.get('bertserve_requests_total{route="other",method="GET",code="404"}') == 1, "404 counted once")
check(m.get("bertserve_queue_depth") == 0, f"queue depth back to 0: {m.get('bertserve_queue_depth')}")
check(m.get("bertserve_requests_in_flight") == 1, f"in flight is this scrape alone: {m.get('bertserve_requests_in_flight')}")
check(m.get('bertserve_model_info{model="%s",version="%s",precision="f32",kernel="%s",model_version="%s"}'
            % (tiny, info.get("version"), info.get("kernel"), tiny_version)) == 1, "bertserve_model_info")
check(m.get("bertserve_tokens_per_text_count", 0) >= N, "tokens per text observed")
check(m.get("bertserve_inference_time_seconds_count", 0) >= N, "inference time observed")
for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
             "process_start_time_seconds"]:
    check(m.get(name, 0) > 0, f"{name}: {m.get(name)}")
check(abs(m.get("process_start_time_seconds", 0) - time.time()) < 600, "process_start_time_seconds is recent")

# the log: one line per request with the request id, no text
log = "".join(d.lines)
check("request_id=test-req-1 " in log or "request_id=test-req-1\n" in log, "the request log names the request id")
check(single["text"] not in log, "request text is not logged without --log-text")

rc = d.stop()
check(rc == 0, f"tiny daemon exit code {rc}")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}\n{log[-3000:]}")

section("finsent-mini golden")
# ---- finsent-mini: golden end to end, 429, graceful shutdown ------------------------------------
clear = [r for r in fin_rows if r["category"] == "clear"]
check(len(clear) == 30, f"{len(clear)} clear rows")
f = Daemon(build, finsent, "--max-concurrent-requests", "2", "--workers", "1", "--log-format", "json", "--grace-seconds", "60",
           "--log-text")
status, _, got = f.predict({"texts": [r["text"] for r in clear]})
check(status == 200, f"finsent clear: {status}")
worst = 0.0
for r, res in zip(clear, got.get("results", [])):
    check(res["prediction"] == r["label"], f"finsent {r['id']}: {res['prediction']} != golden {r['label']}")
    diff = max(abs(res["scores"][k] - p) for k, p in zip(LABELS, r["probs"]))
    worst = max(worst, diff)
    check(diff <= 1e-5, f"finsent {r['id']}: |prob diff| {diff:.2e} > 1e-5")
print(f"finsent-mini clear rows: max |prob diff| {worst:.2e}")
status, _, got = f.predict({"text": clear[0]["text"]})
check(status == 200 and got["prediction"] == clear[0]["label"], f"finsent single: {status}")

def logged_requests(dmn, want, timeout=10):
    """The JSON request log entries, once one satisfies want (the line is written when the
    response has been sent, which can be just after the client has read it)."""
    deadline = time.time() + timeout
    while True:
        entries = [json.loads(l) for l in list(dmn.lines) if '"event":"request"' in l]
        if any(want(e) for e in entries) or time.time() > deadline:
            return entries
        time.sleep(0.02)


logged = logged_requests(f, lambda e: e.get("texts") == [clear[0]["text"]])
check(logged and all(e.get("method") and e.get("route") and e.get("request_id") for e in logged), "JSON log lines")
check(any(e.get("texts") == [clear[0]["text"]] and e.get("status") == 200 for e in logged),
      "--log-text puts the request text in the log")

heavy = {"texts": ["The company's operating profit rose sharply " * 20] * 8}


def post(dmn, payload, out, i):
    try:
        st, h, got = dmn.predict(payload)
        out[i] = (st, h, got)
    except Exception as e:  # noqa: BLE001
        out[i] = (None, {}, repr(e))


section("429")
# More concurrent work than the queue holds (2): the rest is refused with 429 and Retry-After.
out = [None] * 8
ts = [threading.Thread(target=post, args=(f, heavy, out, i)) for i in range(8)]
for t in ts:
    t.start()
time.sleep(0.05)
t0 = time.time()
status, _, _ = f.request("GET", "/health")  # /health never waits behind a running batch
check(status == 200 and time.time() - t0 < 1.5, f"/health during a batch: {status} after {time.time() - t0:.2f}s")
for t in ts:
    t.join(120)
codes = [o[0] for o in out]
check(set(codes) <= {200, 429} and 200 in codes and 429 in codes, f"queue full: statuses {codes}")
for st, h, got in out:
    if st == 429:
        check(h.get("retry-after") == "1" and got.get("error_type") == "overloaded", f"429: {h} {got}")

section("SIGTERM drain")
# SIGTERM with requests in flight: they complete, /ready turns 503, the exit code is 0.
keep = f.conn()
status, _, _ = f.request("GET", "/ready", conn=keep)
check(status == 200, f"/ready before SIGTERM: {status}")
out = [None] * 2
ts = [threading.Thread(target=post, args=(f, heavy, out, i)) for i in range(2)]
for t in ts:
    t.start()
deadline = time.time() + 30
while time.time() < deadline:  # wait until both are admitted
    depth = metric_values(f.request("GET", "/metrics")[2].decode()).get("bertserve_queue_depth", 0)
    if depth >= 2:
        break
    time.sleep(0.005)
check(depth >= 2, f"both requests in the queue before SIGTERM (depth {depth})")
f.proc.send_signal(signal.SIGTERM)
# The signal reaches the daemon's main thread a moment later (later still on a loaded machine):
# /ready answers 200 on the open connection until then, keeping it open; then 503 with
# "Connection: close", and the connection is closed (README: "Stopping").
deadline = time.time() + 5
try:
    while True:
        status, hdrs, body = f.request("GET", "/ready", conn=keep)
        if status != 200 or time.time() > deadline:
            break
        check(hdrs.get("connection", "").lower() != "close", f"/ready 200 closes the connection: {hdrs}")
        time.sleep(0.01)
    check(status == 503, f"/ready while draining: {status} {body}")
    check(hdrs.get("connection", "").lower() == "close", f"/ready 503 while draining keeps the connection: {hdrs}")
except (ConnectionError, OSError) as e:
    check(False, f"/ready while draining on an open connection: {e!r}")
try:
    socket.create_connection(("127.0.0.1", f.port), timeout=2).close()
    refused = False
except OSError:
    refused = True
check(refused, "new connections are refused while draining")
for t in ts:
    t.join(120)
check([o[0] for o in out] == [200, 200], f"in-flight requests at SIGTERM: {[o[0] for o in out]}")
rc = f.wait(60)  # one signal: a second one while draining would force the exit
check(rc == 0, f"finsent daemon exit code after SIGTERM: {rc}")
check(not f.sanitizer_reports(), f"sanitizer reports: {f.sanitizer_reports()}\n{''.join(f.lines)[-3000:]}")

# Past --grace-seconds, queued jobs are answered 503 and the running one finishes; still exit 0.
section("grace period over")
g = Daemon(build, finsent, "--grace-seconds", "0", "--max-concurrent-requests", "8", "--workers", "1")
out = [None] * 4
ts = [threading.Thread(target=post, args=(g, heavy, out, i)) for i in range(4)]
for t in ts:
    t.start()
deadline = time.time() + 30
depth = 0
# SIGTERM once all four are admitted (or all are answered): a request still connecting would be
# refused, which is right but not what this checks.
while time.time() < deadline and depth < 4 and any(t.is_alive() for t in ts):
    depth = metric_values(g.request("GET", "/metrics")[2].decode()).get("bertserve_queue_depth", 0)
rc = g.stop(timeout=60)
for t in ts:
    t.join(60)
codes = [o[0] if o else None for o in out]
check(set(codes) <= {200, 503} and (depth < 4 or 503 in codes), f"grace over: statuses {codes} (depth {depth})")
for o in out:
    if o and o[0] == 503:
        check(o[2].get("error_type") == "unavailable", f"grace over: 503 body {o[2]}")
check(rc == 0, f"grace over: exit code {rc}")
check(not g.sanitizer_reports(), f"sanitizer reports: {g.sanitizer_reports()}")

# A second SIGTERM while draining exits at once (code 1) instead of waiting for the work.
section("second signal")
k = Daemon(build, finsent, "--grace-seconds", "120", "--threads", "1", "--max-batch-tokens", "40000")
long_heavy = {"texts": [" ".join(["The company reported revenue growth in the quarter"] * 60)] * 64}
out = [None] * 3
ts = [threading.Thread(target=post, args=(k, long_heavy, out, i)) for i in range(3)]
for t in ts:
    t.start()
deadline = time.time() + 30
while time.time() < deadline and metric_values(k.request("GET", "/metrics")[2].decode()).get(
        "bertserve_queue_depth", 0) < 3:
    time.sleep(0.05)
k.proc.send_signal(signal.SIGTERM)
time.sleep(0.3)
t0 = time.time()
rc = k.stop(timeout=60)
took = time.time() - t0
for t in ts:
    t.join(60)
check(rc == 1 and took < 2, f"second SIGTERM: exit code {rc} after {took:.1f} s (want 1, at once)")
check(any("forced_exit" in line for line in k.lines), "second SIGTERM: no forced_exit log line")

section("startup failures")
# ---- startup failures: a bad model dir and a taken port name the problem ------------------------
import subprocess  # noqa: E402

exe = os.path.join(build, "bertserve")
p = subprocess.run([exe, "--model", "/nonexistent-model", "--port", "0"], capture_output=True, timeout=60)
check(p.returncode != 0 and b"/nonexistent-model/" in p.stderr, f"bad model dir: {p.returncode} {p.stderr[-300:]!r}")
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen()
p = subprocess.run([exe, "--model", tiny, "--host", "127.0.0.1", "--port", str(busy.getsockname()[1])],
                   capture_output=True, timeout=60)
busy.close()
check(p.returncode != 0 and b"in use" in p.stderr, f"taken port: {p.returncode} {p.stderr[-300:]!r}")
p = subprocess.run([exe, "--port", "x"], capture_output=True, timeout=60)
check(p.returncode == 2 and b"--port" in p.stderr, f"bad flag value: {p.returncode} {p.stderr!r}")
p = subprocess.run([exe, "--help"], capture_output=True, timeout=60)
check(p.returncode == 0 and all(s in p.stdout for s in [b"--max-concurrent-requests", b"BERTSERVE_PORT", b"--log-text"]), "--help")
p = subprocess.run([exe, "--version"], capture_output=True, timeout=60)
check(p.returncode == 0 and p.stdout.startswith(b"bertserve "), f"--version: {p.stdout!r}")

finish("daemon_test")
