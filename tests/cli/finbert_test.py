#!/usr/bin/env python3
"""Real FinBERT weights against ProsusAI's published outputs. Runs only when BERTSERVE_FINBERT
points at a converted FinBERT directory (models/fetch-finbert.sh makes one); otherwise it
reports itself SKIPPED (ctest shows it as skipped, exit code 77), never passed.
  - reference_predictions.csv (ProsusAI's finbert.predict, max_seq_length 64): softmax within 1e-4
    and the same prediction;
  - the golden `clear` sentences get their human label.
usage: finbert_test.py BUILD_DIR"""
import csv
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
model = os.environ.get("BERTSERVE_FINBERT")
if not model:
    print("SKIPPED: BERTSERVE_FINBERT is not set (no real FinBERT weights on this machine)")
    sys.exit(77)
refs = os.path.join(shared, "models", "finbert", "reference_predictions.csv")
golden = os.path.join(shared, "golden", "finsent-mini", "logits.jsonl")
for p in (os.path.join(model, "model.safetensors"), refs, golden):
    need(p)


def predict(texts, max_len):
    p = subprocess.run([os.path.join(build, "bertserve-cli"), "predict", "--model", model, "--jsonl",
                        "--max-length", str(max_len)],
                       input="".join(json.dumps(t) + "\n" for t in texts).encode(), capture_output=True)
    if p.returncode:
        sys.exit(f"FAIL: predict: {p.stderr.decode()}")
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


rows = list(csv.DictReader(open(refs, encoding="utf-8")))
got = predict([r["sentence"] for r in rows], 64)
for r, g in zip(rows, got):
    want = [float(x) for x in r["logit"].strip("[]").split()]
    diff = max(abs(g["scores"][l] - w) for l, w in zip(["positive", "negative", "neutral"], want))
    check(diff <= 1e-4 and g["label"] == r["prediction"], f"{r['sentence'][:60]}...: {g['scores']} vs {want}")
clear = [json.loads(l) for l in open(golden)]
clear = [r for r in clear if r["category"] == "clear"]
for r, g in zip(clear, predict([r["text"] for r in clear], 512)):
    check(g["label"] == r["expected_label"], f"{r['text']!r}: {g['label']} (expected {r['expected_label']})")
finish(f"finbert_test ({len(rows)} reference predictions, {len(clear)} clear sentences)")
