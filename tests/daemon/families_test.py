#!/usr/bin/env python3
"""The daemon on a DistilBERT classifier (issue 24): distilbert-tiny (no token types, ReLU head)
answers /predict with the probabilities and labels `bertserve-cli predict` gives for the same
texts, in a batch and alone, and /info names its family.
usage: families_test.py BUILD_DIR"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
model = need(os.path.join(shared, "models", "distilbert-tiny"))
split = need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv"))
texts = [line.rstrip("\n").split("\t", 1)[1] for line in open(split, encoding="utf-8")][:64]
p = subprocess.run([need(os.path.join(build, "bertserve-cli")), "predict", "--model", model, "--jsonl"],
                   input="".join(json.dumps(t) + "\n" for t in texts).encode(), capture_output=True)
want = [json.loads(line) for line in p.stdout.decode().splitlines()]
check(p.returncode == 0 and len(want) == len(texts), f"bertserve-cli predict: {p.returncode} {p.stderr[-300:]!r}")

d = Daemon(build, model)
info = json.loads(d.request("GET", "/info")[2])
check(info.get("model_type") == "distilbert", f"/info model_type {info.get('model_type')!r}")
status, _, body = d.predict({"texts": texts})
got = body.get("results", []) if status == 200 else []
check(len(got) == len(want), f"/predict: {status}, {len(got)} results")
worst = max((abs(g["scores"][k] - w["scores"][k]) for g, w in zip(got, want) for k in w["scores"]), default=1.0)
same = sum(g["prediction"] == w["label"] for g, w in zip(got, want))
print(f"distilbert-tiny: /predict and the CLI agree on {same} of {len(want)} labels, max |dprob| {worst:.2e}")
check(same == len(want) and worst <= 1e-6, "the daemon's DistilBERT answers are the CLI's")
status, _, one = d.predict({"text": texts[5]})
check(status == 200 and abs(one["scores"][want[5]["label"]] - want[5]["score"]) <= 1e-6, f"alone: {status} {one}")
check(d.stop() == 0, "clean exit")
finish("families_test")
