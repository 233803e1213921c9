#!/usr/bin/env python3
"""The warm-up (issue 22): before /ready turns 200, every compute worker runs one forward pass at
the largest batch the limits allow. finsent-mini with --max-batch-tokens 16384 makes that pass
take seconds (32 texts of 512 tokens), long enough to watch it from outside:
  - meanwhile /ready answers 503 {"status":"warming_up"} (keeping the connection open) and
    /health 200; a /predict sent then is answered (it waits for the worker);
  - then /ready turns 200, and the `ready` log line says how long the warm-up took.
usage: warmup_test.py BUILD_DIR"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
model = need(os.path.join(shared, "models", "finsent-mini"))
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
proc = subprocess.Popen([need(os.path.join(build, "bertserve")), "--model", model, "--host", "127.0.0.1", "--port",
                         str(port), "--max-batch-tokens", "16384", "--max-batch-requests", "32"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
lines = []
threading.Thread(target=lambda: lines.extend(l.decode() for l in proc.stderr), daemon=True).start()


def get(path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.getheader("Connection"), r.read()


seen, predict = [], {}
deadline = time.time() + 120
conn = None
while time.time() < deadline and proc.poll() is None:
    try:
        conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, connection, body = get("/ready", conn)
    except OSError:
        conn = None
        time.sleep(0.01)
        continue
    seen.append((status, json.loads(body)["status"], connection))
    if status == 200:
        break
    if not predict:  # one request while warming up: answered once the workers are free
        health = get("/health")[0]
        check(health == 200, f"/health during the warm-up: {health}")

        def ask():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("POST", "/predict", json.dumps({"text": "Profit rose."}), {"Content-Type": "application/json"})
            r = c.getresponse()
            predict["status"], predict["body"] = r.status, r.read()
        predict["thread"] = threading.Thread(target=ask)
        predict["thread"].start()
    time.sleep(0.02)
warming = [x for x in seen if x[1] == "warming_up"]
print(f"/ready: {len(warming)} answers warming_up, then {seen[-1] if seen else None}")
check(warming and all(x[0] == 503 and x[2] != "close" for x in warming),
      f"/ready answered 503 warming_up (connection kept) during the warm-up: {seen[:3]}")
check(seen and seen[-1][:2] == (200, "ready"), f"/ready turned 200: {seen[-1:]}")
if predict:
    predict["thread"].join()
    check(predict.get("status") == 200, f"a /predict sent during the warm-up: {predict.get('status')}")
proc.terminate()
proc.wait(60)
ready = [l for l in lines if " ready " in l]
m = re.search(r"warm_up_ms=([\d.]+)", ready[0]) if ready else None
check(m and float(m.group(1)) > 0, f"the ready line says the warm-up time: {ready}")
if m:
    print(f"warm-up: {float(m.group(1)):.0f} ms (32 texts of 512 tokens, finsent-mini)")
finish("warmup_test")
