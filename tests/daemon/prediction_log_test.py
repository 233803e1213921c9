#!/usr/bin/env python3
"""--prediction-log (issue 21), tiny-bert over loopback:
  - one JSON line per answered text, with exactly time (ISO 8601 UTC), request_id, index,
    model_version, label, confidence and scores, equal to the answer's; no text unless
    --log-text (then text, and text_pair for a pair); every line written by the drain;
  - rotation: with --prediction-log-max-bytes 2000 --prediction-log-keep 2, FILE, FILE.1 and
    FILE.2 hold the newest lines, each within 2000 bytes, in order, and FILE.3 never appears;
  - failures never fail a request: on /dev/full (every write fails with ENOSPC, root or not)
    all requests answer 200, every line is counted in bertserve_prediction_log_dropped_total
    and one prediction_log_failed line is logged; with the log's directory removed mid-run
    (the rotation's new file cannot be created, root or not: chmod would not stop root) the
    same, and once the directory is back the log resumes (prediction_log_recovered);
  - a FIFO nobody reads (a disk slower than the traffic): every request still answers 200,
    lines are dropped and counted, and once the reader reads, every line not dropped arrives;
  - a log that cannot be opened (no such directory, a FIFO with no reader) fails the startup
    with exit status 1 and a message naming the file.
usage: prediction_log_test.py BUILD_DIR"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
FIELDS = {"time", "request_id", "index", "model_version", "label", "confidence", "scores"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
tmp = tempfile.mkdtemp(prefix="bertserve-predlog-")


def metrics(d):
    return metric_values(d.request("GET", "/metrics")[2].decode())


def wait_metric(d, name, want, timeout=20):
    """Polls until the counter reaches want (the writer is asynchronous); its last value."""
    deadline = time.time() + timeout
    while True:
        v = metrics(d).get(name)
        if v is not None and v >= want or time.time() > deadline:
            return v
        time.sleep(0.05)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def post(d, path, payload, rid):
    status, _, data = d.request("POST", path, payload, {"X-Request-Id": rid})
    return status, json.loads(data)


# ---- the lines: one per text, the answer's fields, no text by default ----------------------
log = os.path.join(tmp, "predictions.log")
d = Daemon(build, tiny, "--prediction-log", log)
answers = {}
status, a = post(d, "/predict", {"text": "Operating profit rose to EUR 13.1 mn"}, "one")
answers[("one", 0)] = a
status2, a = post(d, "/predict", {"texts": ["Sales fell.", "The company cut 500 jobs.", "Nothing new."]}, "three")
for i, r in enumerate(a["results"]):
    answers[("three", i)] = dict(r, model_version=a["model_version"])
status3, a = post(d, "/batch_predict", {"texts": ["Profit doubled.", "Losses widened."]}, "batch")
check(status == status2 == status3 == 200, f"requests answered {status}, {status2}, {status3}")
check(wait_metric(d, "bertserve_prediction_log_lines_total", 6) == 6, "lines_total reaches 6 while serving")
m = metrics(d)
check(m.get("bertserve_prediction_log_dropped_total") == 0, "nothing dropped")
check(d.stop() == 0, "the daemon exits 0")
lines = read_lines(log)
check(len(lines) == 6, f"one line per text: {len(lines)}")
for line in lines:
    check(set(line) == FIELDS, f"exactly the fields, no text: {sorted(line)}")
    check(TIME.match(line.get("time", "")), f"ISO 8601 UTC time: {line.get('time')}")
    check(abs(line["confidence"] - line["scores"][line["label"]]) < 1e-9, "confidence is the label's score")
check([(x["request_id"], x["index"]) for x in lines] ==
      [("one", 0), ("three", 0), ("three", 1), ("three", 2), ("batch", 0), ("batch", 1)], "ids and indexes in order")
for line in lines:
    want = answers.get((line["request_id"], line["index"]))
    if want:
        check(line["label"] == want["prediction"] and abs(line["confidence"] - want["confidence"]) < 1e-6
              and line["model_version"] == want["model_version"]
              and all(abs(line["scores"][k] - v) < 1e-6 for k, v in want["scores"].items()),
              f"{line['request_id']}[{line['index']}] is the answer's: {line} vs {want}")

# ---- --log-text, and rotation at its size keeping N files ----------------------------------
rot = os.path.join(tmp, "rot", "p.log")
os.makedirs(os.path.dirname(rot))
d = Daemon(build, tiny, "--prediction-log", rot, "--prediction-log-max-bytes", "2000", "--prediction-log-keep", "2",
           "--log-text")
N = 40
for k in range(N):
    status, _ = post(d, "/predict", {"text": f"Sentence number {k} about quarterly profit."}, f"r{k}")
    check(status == 200, f"r{k}: {status}")
status, _ = post(d, "/predict", {"inputs": [["The premise.", "The hypothesis."]]}, "pair")
check(status == 200, f"pair: {status}")
check(wait_metric(d, "bertserve_prediction_log_lines_total", N + 1) == N + 1, "every line written")
check(d.stop() == 0, "the daemon exits 0")
files = sorted(os.listdir(os.path.dirname(rot)))
check(files == ["p.log", "p.log.1", "p.log.2"], f"FILE and keep=2 old files: {files}")
kept = []
for name in ("p.log.2", "p.log.1", "p.log"):
    path = os.path.join(os.path.dirname(rot), name)
    check(os.path.getsize(path) <= 2000, f"{name} within --prediction-log-max-bytes: {os.path.getsize(path)}")
    kept += read_lines(path)
ids = [x["request_id"] for x in kept]
want_ids = [f"r{k}" for k in range(N)] + ["pair"]
check(len(ids) > 3 and ids == want_ids[-len(ids):], f"the kept files hold the newest lines in order: {ids}")
check(os.path.getsize(os.path.join(os.path.dirname(rot), "p.log.2")) > 2000 - 300, "rotated files are full")
for x in kept:
    if x["request_id"].startswith("r"):
        check(x.get("text") == f"Sentence number {x['request_id'][1:]} about quarterly profit.", f"text logged: {x}")
check(kept[-1].get("text") == "The premise." and kept[-1].get("text_pair") == "The hypothesis.",
      f"a pair logs text and text_pair: {kept[-1]}")

# ---- a full disk: /dev/full fails every write, for root too ---------------------------------
need("/dev/full")
d = Daemon(build, tiny, "--prediction-log", "/dev/full")
for k in range(10):
    status, _ = post(d, "/predict", {"texts": ["Profit rose.", "Sales fell."]}, f"full{k}")
    check(status == 200, f"full{k}: {status}")
check(wait_metric(d, "bertserve_prediction_log_dropped_total", 20) == 20, "every line dropped and counted")
check(metrics(d).get("bertserve_prediction_log_lines_total") == 0, "no line counted as written")
check(d.stop() == 0, "the daemon exits 0")
check(sum('prediction_log_failed' in x for x in d.lines) == 1, "the failure logged once: " + "".join(d.lines[-5:]))
check(os.path.exists("/dev/full") and not os.path.exists("/dev/full.1"), "a device is never rotated")

# ---- the directory removed mid-run, then back -------------------------------------------
gone = os.path.join(tmp, "gone")
os.makedirs(gone)
d = Daemon(build, tiny, "--prediction-log", os.path.join(gone, "p.log"), "--prediction-log-max-bytes", "1000",
           "--prediction-log-keep", "1", "--max-batch-requests", "1")
for k in range(5):
    post(d, "/predict", {"text": "Profit rose."}, f"before{k}")
check(wait_metric(d, "bertserve_prediction_log_lines_total", 5) == 5, "lines written before the removal")
shutil.rmtree(gone)
for k in range(30):
    status, _ = post(d, "/predict", {"text": "Profit rose."}, f"gone{k}")
    check(status == 200, f"gone{k}: {status}")
check(wait_metric(d, "bertserve_prediction_log_dropped_total", 1) >= 1, "lines dropped once the file cannot be made")
written = metrics(d)["bertserve_prediction_log_lines_total"]
dropped = metrics(d)["bertserve_prediction_log_dropped_total"]
check(written + dropped == 35, f"every line written or dropped: {written} + {dropped}")
check(any("prediction_log_failed" in x for x in d.lines), "the failure logged")
os.makedirs(gone)
for k in range(3):
    post(d, "/predict", {"text": "Profit rose."}, f"back{k}")
check(wait_metric(d, "bertserve_prediction_log_lines_total", written + 3) == written + 3, "the log resumes")
check(d.stop() == 0, "the daemon exits 0")
check(any("prediction_log_recovered" in x for x in d.lines), "the recovery logged")
check([x["request_id"] for x in read_lines(os.path.join(gone, "p.log"))] == ["back0", "back1", "back2"],
      "the new file holds the lines after the directory came back")
check(not d.sanitizer_reports(), "no sanitizer report")

# ---- a reader slower than the traffic: lines dropped, requests unaffected ---------------------
# A FIFO the test opens but does not read: the writer blocks once the pipe (64 KiB) is full, the
# 4 MiB buffer fills behind it, and later lines are dropped. Long texts (--log-text, cut to 16
# tokens so the model's work stays small) make ~2.2 KB lines: 60 requests of 64 texts, 8.4 MB.
# A request that waited on the disk would wait for good (nobody reads), so each 200 says it did not.
slow = os.path.join(tmp, "slow")
os.mkfifo(slow)
reader = os.open(slow, os.O_RDONLY | os.O_NONBLOCK)
d = Daemon(build, tiny, "--prediction-log", slow, "--log-text", "--max-length", "16")
text = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn. " * 40
REQS, TEXTS = 60, 64
slowest = 0
for k in range(REQS):
    t0 = time.time()
    status, _ = post(d, "/predict", {"texts": [text] * TEXTS}, f"slow{k}")
    slowest = max(slowest, time.time() - t0)
    check(status == 200, f"slow{k}: {status}")
dropped = wait_metric(d, "bertserve_prediction_log_dropped_total", 1)
check(dropped and dropped > 0, f"lines dropped behind a reader that does not read: {dropped}")
print(f"slow reader: {dropped:.0f} of {REQS * TEXTS} lines dropped, slowest request {slowest * 1e3:.0f} ms")
got = bytearray()
os.set_blocking(reader, True)


def drain_fifo():
    while chunk := os.read(reader, 1 << 16):
        got.extend(chunk)


t = threading.Thread(target=drain_fifo)
t.start()
check(d.stop() == 0, "the daemon exits 0 once its reader reads")
t.join(30)
os.close(reader)
lines = got.decode().splitlines()
check(len(lines) == REQS * TEXTS - dropped, f"every line not dropped arrives: {len(lines)} + {dropped:.0f}")
check(all(json.loads(x)["text"] == text for x in lines), "every line whole")

# ---- a log that cannot be opened fails the startup ------------------------------------------
fifo = os.path.join(tmp, "fifo")
os.mkfifo(fifo)
for bad in (os.path.join(tmp, "no-such-dir", "p.log"), fifo):
    p = subprocess.run([os.path.join(build, "bertserve"), "--model", tiny, "--host", "127.0.0.1", "--port", "0",
                        "--prediction-log", bad], capture_output=True, timeout=60)
    err = p.stderr.decode()
    check(p.returncode == 1 and "startup_failed" in err and bad in err, f"{bad}: exit {p.returncode}: {err}")

shutil.rmtree(tmp)
finish("prediction_log")
