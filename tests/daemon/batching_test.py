#!/usr/bin/env python3
"""The batcher, over loopback with finsent-mini: requests that arrive together are run in shared
batches within the budgets, every text still gets exactly its own logits (golden), a request's
texts may be split across batches, the gather wait ends as soon as the last batch's clients are
back (and is bounded), and /health turns 503 while the workers make no progress.

usage: batching_test.py BUILD_DIR"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
finsent = need(os.path.join(shared, "models", "finsent-mini"))
rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "finsent-mini", "logits.jsonl")))]
rows = [r for r in rows if "text_pair" not in r and r["untruncated_length"] <= 512]
LABELS = ["positive", "negative", "neutral"]
TOL = 2e-5  # shared/golden/README.md, finsent-mini logits


def logits_of(tei_item):
    by_label = {x["label"]: x["score"] for x in tei_item}
    return [by_label[k] for k in LABELS]


def close(got, want):
    return max(abs(a - b) for a, b in zip(got, want)) <= TOL


# ---- concurrent requests share batches, within the budgets ------------------------------------
MAX_TEXTS, MAX_TOKENS = 3, 160
d = Daemon(build, finsent, "--max-batch-requests", str(MAX_TEXTS), "--max-batch-tokens", str(MAX_TOKENS),
           "--batch-wait-us", "20000")
before = metric_values(d.request("GET", "/metrics")[2].decode())
wrong, failed = [], []
chosen = rows[:48]


def client(part):
    for r in part:
        status, _, got = d.predict({"inputs": r["text"], "raw_scores": True})
        if status != 200:
            failed.append((r["id"], status, got))
        elif not close(logits_of(got), r["logits"]):
            wrong.append((r["id"], logits_of(got), r["logits"]))


threads = [threading.Thread(target=client, args=(chosen[i::8],)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(not failed, f"concurrent requests failed: {failed[:3]}")
check(not wrong, f"{len(wrong)} texts got logits off golden by more than {TOL} when batched: {wrong[:2]}")

# One request of many texts is split into batches of at most MAX_TEXTS; order is kept.
many = rows[48:58]
status, _, got = d.predict({"inputs": [[r["text"]] for r in many], "raw_scores": True})
check(status == 200 and len(got) == len(many), f"10-text request: {status}")
if status == 200:
    bad = [r["id"] for r, g in zip(many, got) if not close(logits_of(g), r["logits"])]
    check(not bad, f"split request: texts off golden: {bad}")

after = metric_values(d.request("GET", "/metrics")[2].decode())
n_batches = after["bertserve_batch_texts_count"] - before.get("bertserve_batch_texts_count", 0)
n_texts = after["bertserve_batch_texts_sum"] - before.get("bertserve_batch_texts_sum", 0)
check(n_texts == len(chosen) + len(many), f"batches ran {n_texts} texts, {len(chosen) + len(many)} were sent")
check(n_batches >= (len(chosen) + len(many)) / MAX_TEXTS, f"{n_batches} batches: more than {MAX_TEXTS} texts each")
check(n_batches < len(chosen) + len(many), f"{n_batches} batches for {n_texts} texts: concurrent requests never shared one")
# No batch above the text budget (bucket le=2 ... le=4 holds 3), none above the token budget
# unless it held a single longer text.
check(after['bertserve_batch_texts_bucket{le="4"}'] == after["bertserve_batch_texts_count"], "a batch over 3 texts")
long_alone = sum(1 for r in chosen + many if len(r["input_ids"]) > MAX_TOKENS)
over = after["bertserve_batch_tokens_count"] - after['bertserve_batch_tokens_bucket{le="256"}']
check(over <= long_alone, f"{over} batches over the token budget, only {long_alone} texts are that long")
print(f"{n_texts:.0f} texts ran in {n_batches:.0f} batches (budget {MAX_TEXTS} texts, {MAX_TOKENS} tokens)")
check(d.stop() == 0, "exit code after SIGTERM")
check(not d.sanitizer_reports(), "sanitizer reports:\n" + "".join(d.lines[-30:]))

# ---- the gather wait: it ends when the last batch's clients are back, and is bounded -----------
WAIT = 1.5  # seconds: far longer than any batch here, so only the early exit can beat it
g = Daemon(build, finsent, "--batch-wait-us", str(int(WAIT * 1e6)))
text = rows[0]["text"]
check(g.predict({"texts": [text, text]})[0] == 200, "a 2-text request")  # a batch of 2: later ones may wait
before = metric_values(g.request("GET", "/metrics")[2].decode())
answers = []
pair = [threading.Thread(target=lambda: answers.append(g.predict({"inputs": text})[0])) for _ in range(2)]
t0 = time.time()
for t in pair:
    t.start()
for t in pair:
    t.join()
took = time.time() - t0
after = metric_values(g.request("GET", "/metrics")[2].decode())
check(answers == [200, 200], f"two clients after a batch of two: {answers}")
check(took < WAIT / 2, f"the two clients back from a batch of two waited {took:.2f} s (the wait is {WAIT} s): "
      "the batch should start once both are queued")
check(after["bertserve_batch_texts_count"] - before["bertserve_batch_texts_count"] == 1,
      "the two clients back from a batch of two did not share one batch")
t0 = time.time()  # one client of the two comes back: it waits for the other, but only so long
check(g.predict({"inputs": text})[0] == 200, "a lone request after a batch of two")
took = time.time() - t0
check(WAIT * 0.9 <= took < WAIT + 5, f"a lone request after a batch of two waited {took:.2f} s; the wait is {WAIT} s")
t0 = time.time()  # and after a batch of one, nobody waits
check(g.predict({"inputs": text})[0] == 200 and time.time() - t0 < WAIT / 2, "a request after a batch of one waited")
check(g.stop() == 0, "exit code after SIGTERM")
check(not g.sanitizer_reports(), "sanitizer reports:\n" + "".join(g.lines[-30:]))

# ---- liveness: a worker busy without progress turns /health 503, and it recovers ---------------
# One batch of 64 texts x ~500 tokens on one thread takes seconds; the limit is 1 s.
s = Daemon(build, finsent, "--stall-seconds", "1", "--threads", "1", "--max-batch-tokens", "40000",
           "--max-batch-requests", "64", "--max-length", "512")
long_text = " ".join(["The company reported revenue growth in the quarter"] * 60)
result = {}


def heavy():
    result["status"] = s.predict({"texts": [long_text] * 64}, None)[0]


def light():
    result["light"] = s.predict({"text": "Profit rose."}, None)[0]


h = threading.Thread(target=heavy)
h.start()
time.sleep(0.2)
waiting = threading.Thread(target=light)  # work waiting behind the long batch
waiting.start()
seen_503 = None
deadline = time.time() + 60
while time.time() < deadline and h.is_alive() and seen_503 is None:
    status, _, body = s.request("GET", "/health")
    if status == 503:
        seen_503 = json.loads(body)
    time.sleep(0.1)
h.join()
waiting.join()
check(seen_503 is not None and seen_503.get("status") == "stalled" and seen_503.get("stalled_seconds", 0) >= 1,
      f"/health never answered 503 while the worker was busy for seconds: {seen_503}")
check(result.get("status") == 200 and result.get("light") == 200, f"the long and the waiting request: {result}")
status, _, body = s.request("GET", "/health")
check(status == 200, f"/health after the batch finished: {status} {body}")
check(s.stop() == 0, "exit code after SIGTERM")
check(not s.sanitizer_reports(), "sanitizer reports:\n" + "".join(s.lines[-30:]))
finish("batching")
