#!/usr/bin/env python3
"""Soak: the daemon under wrk at 64 connections for SOAK_SECONDS (default 300; CI runs a short
one), mixing valid requests (their labels checked against bertserve-cli predict) with every kind
of bad request (each must get the status it gets on an idle server, never a 5xx), while other
clients hang up mid-body and trickle bodies in slowly. Asserts: zero 5xx, zero wrong answers,
resident memory growth below 2% from the first minute (or half-way through a shorter run) to
the end, and open fds back to their baseline once the load is gone.

usage: soak.py BUILD_DIR   (MODEL: a model directory, default shared tiny-bert; needs wrk)"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(here), "lib"))
from daemon_support import Daemon  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
seconds = int(os.environ.get("SOAK_SECONDS", "300"))
model = os.environ.get("MODEL") or need(os.path.join(shared, "models", "tiny-bert"))
wrk = shutil.which("wrk")
if not wrk:
    sys.exit("FAIL: soak needs wrk (apt-get install wrk)")
work = os.environ.get("TMPDIR", "/tmp")
MAX_BODY = 8192

# ---- the plan: valid requests with their expected labels, and every kind of bad request -----
sentences = [line.split("\t", 1)[1].strip() for line in open(
    need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv")), encoding="utf-8")][:120]
pred = subprocess.run([need(os.path.join(build, "bertserve-cli")), "predict", "--model", model, "--jsonl"],
                      input="".join(json.dumps(s) + "\n" for s in sentences), capture_output=True, text=True,
                      check=True).stdout
label = dict(zip(sentences, (json.loads(line)["label"] for line in pred.splitlines())))

JSON = "application/json"
valid = []  # (method, path, content type, body bytes, expected labels)
for i, s in enumerate(sentences):
    if i % 3 == 0:
        valid.append(("POST", "/predict", JSON, json.dumps({"text": s}), label[s]))
    elif i % 3 == 1:
        trio = sentences[i:i + 3]
        valid.append(("POST", "/predict", JSON, json.dumps({"texts": trio}), ",".join(label[t] for t in trio)))
    else:
        valid.append(("POST", "/predict", JSON, json.dumps({"inputs": s}), label[s]))
bad = [  # (method, path, content type, body bytes); the expected status is what an idle server says
    ("POST", "/predict", JSON, b'{"text": "unfinished'),
    ("POST", "/predict", JSON, b"[1, 2, 3]"),
    ("POST", "/predict", JSON, b"{}"),
    ("POST", "/predict", JSON, b'{"text": 5}'),
    ("POST", "/predict", JSON, b'{"text": "   "}'),
    ("POST", "/predict", JSON, b'{"texts": []}'),
    ("POST", "/predict", JSON, b'{"texts": ["a", 7]}'),
    ("POST", "/predict", JSON, json.dumps({"texts": ["x"] * 65}).encode()),
    ("POST", "/predict", JSON, b'{"text": "bad \xff\xfe utf-8"}'),
    ("POST", "/predict", JSON, b'{"text": "' + b"a" * MAX_BODY + b'"}'),
    ("POST", "/predict", "text/plain", b'{"text": "wrong type"}'),
    ("POST", "/predict", "-", b'{"text": "no type"}'),
    ("POST", "/predict", JSON, b'{"inputs": "x", "truncation_direction": "sideways"}'),
    ("GET", "/predict", "-", None),
    ("POST", "/nowhere", JSON, b"{}"),
    ("GET", "/health", "-", None),
    ("GET", "/ready", "-", None),
    ("GET", "/metrics", "-", None),
    ("GET", "/info", "-", None),
]

d = Daemon(build, model, "--max-body-bytes", str(MAX_BODY), "--timeout-seconds", "5")


def idle_status(method, path, ctype, body):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    c.request(method, path, body=body, headers={} if ctype == "-" else {"Content-Type": ctype})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


plan = []
for method, path, ctype, body, labels in valid:
    plan.append((method, path, ctype, idle_status(method, path, ctype, body.encode()), labels, body.encode()))
    check(plan[-1][3] == 200, f"valid request answered {plan[-1][3]} on an idle server: {body[:80]}")
for method, path, ctype, body in bad:
    status = idle_status(method, path, ctype, body)
    check(status < 500, f"{method} {path} {(body or b'')[:60]!r}: {status} on an idle server")
    plan += [(method, path, ctype, status, "-", body)] * 2
plan_file = os.path.join(work, f"bertserve-soak-{os.getpid()}.plan")
with open(plan_file, "w") as f:
    for method, path, ctype, status, labels, body in plan:
        f.write(f"{method}\t{path}\t{ctype}\t{status}\t{labels}\t{body.hex() if body else '-'}\n")


# ---- clients wrk cannot be: hang-ups mid-body and slow trickles ------------------------------
stop = threading.Event()
side = {"hangups": 0, "slow_ok": 0, "slow_bad": 0}


def hangups():
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 500\r\n\r\n{\"text\": \"half a bo")
            s.close()
            side["hangups"] += 1
        except OSError:
            pass
        time.sleep(0.05)


def slow_clients():
    body = json.dumps({"text": sentences[0]}).encode()
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 16):
                s.sendall(body[i:i + 16])
                time.sleep(0.2)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            s.close()
            good = data.startswith(b"HTTP/1.1 200") and f'"prediction":"{label[sentences[0]]}"'.encode() in data
            side["slow_ok" if good else "slow_bad"] += 1
        except OSError:
            side["slow_bad"] += 1


def rss_kib():
    for line in open(f"/proc/{d.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def open_fds():
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


rss_series = []  # (seconds into the load, KiB), printed at the end


def sample_rss():
    t0 = time.time()
    while not stop.wait(max(1, seconds // 12)):
        rss_series.append((round(time.time() - t0), rss_kib()))


fds_before = open_fds()
helpers = [threading.Thread(target=hangups), threading.Thread(target=slow_clients),
           threading.Thread(target=slow_clients), threading.Thread(target=sample_rss)]
for t in helpers:
    t.start()
load = subprocess.Popen([wrk, "-t", "2", "-c", "64", "-d", f"{seconds}s", "--timeout", "30s",
                         "-s", os.path.join(here, "soak.lua"), f"http://127.0.0.1:{d.port}", "--", plan_file],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
t_mark = min(60, seconds / 2)
time.sleep(t_mark)
rss_mark = rss_kib()
# "The end" is the last moment under load: once wrk stops, its 64 connections close at once
# with answers still due, a moment unlike the steady state the check is about.
time.sleep(max(0, seconds - t_mark - 1))
rss_end = rss_kib()
out, err = load.communicate(timeout=seconds + 120)
rss_after = rss_kib()
stop.set()
for t in helpers:
    t.join(60)
os.unlink(plan_file)

check(load.returncode == 0, f"wrk failed: {err}")
r = json.loads(out.strip().splitlines()[-1]) if load.returncode == 0 else {}
print(f"soak: {r.get('requests', 0)} requests in {r.get('seconds', 0):.0f} s at 64 connections "
      f"({r.get('requests', 0) / max(r.get('seconds', 1), 1):.0f}/s), p99 {r.get('p99_us', 0) / 1000:.1f} ms; "
      f"{side['hangups']} mid-body hang-ups, {side['slow_ok']} slow clients served; "
      f"RSS {rss_mark} KiB at {t_mark:.0f} s, {rss_end} KiB at the end of the load, {rss_after} KiB after it")
print("RSS over the run (s: KiB): " + ", ".join(f"{t}: {k}" for t, k in rss_series))
check(r.get("requests", 0) > 0 and r.get("ok") == r.get("requests"), f"answers not as planned: {r}")
for key in ("wrong_status", "wrong_label", "server_errors", "untagged", "socket_errors", "timeouts"):
    check(r.get(key, 1) == 0, f"{key}: {r.get(key)} ({r.get('first_problem')})")
check(side["slow_ok"] > 0 and side["slow_bad"] == 0, f"slow clients: {side}")
growth = (rss_end - rss_mark) / rss_mark
# Under AddressSanitizer freed memory sits in quarantine, so RSS says nothing there (LeakSanitizer
# checks at exit instead).
sanitized = b"sanitizers off" not in subprocess.run([os.path.join(build, "bertserve"), "--version"],
                                                   capture_output=True).stdout
check(growth < 0.02 or sanitized, f"resident memory grew {100 * growth:.1f}% from {t_mark:.0f} s to the end")
deadline = time.time() + 15
while open_fds() > fds_before and time.time() < deadline:
    time.sleep(0.2)
check(open_fds() <= fds_before, f"open fds {open_fds()} after the load, {fds_before} before")
status, _, _ = d.request("GET", "/health")
check(status == 200, f"/health after the soak: {status}")
check(d.stop() == 0, "exit code after SIGTERM")
check(not d.sanitizer_reports(), "sanitizer reports:\n" + "".join(d.lines[-30:]))
finish("soak")
