#!/usr/bin/env python3
"""bertserve-cli score PREDICTION_LOG FEEDBACK_FILE on a handcrafted prediction log (two model
versions with different labels, a reused request id, an unreadable line) and feedback file (a
/feedback list body on one line, an absent index, a duplicate, an unknown id, a label the
version lacks, an unreadable line). The expected accuracy, per-class precision/recall/F1 and
confusion matrices are computed here from the same data, independently of the C code; the
counts of unmatched feedback are known by construction. Also: a missing file is exit 1, bad
usage exit 2.
usage: cli_score_test.py BUILD_DIR"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import check, finish, need  # noqa: E402

cli = need(os.path.join(sys.argv[1], "bertserve-cli"))
V1 = ["positive", "negative", "neutral"]
V2 = ["up", "down"]


def pred(rid, index, version, labels, label):
    scores = {k: (0.8 if k == label else 0.2 / (len(labels) - 1)) for k in labels}
    line = {"time": "2026-12-04T21:00:00.000Z", "request_id": rid, "index": index, "model_version": version,
            "label": label, "confidence": scores[label], "scores": scores}
    return json.dumps(line)


# (request_id, index, version, predicted, true label or None for no feedback)
cases = [("a", 0, "v1", "positive", "positive"), ("a", 1, "v1", "negative", "positive"),
         ("b", 0, "v1", "neutral", "neutral"), ("c", 0, "v1", "neutral", "negative"),
         ("d", 0, "v1", "positive", "neutral"), ("e", 0, "v1", "negative", "negative"),
         ("f", 0, "v1", "neutral", "neutral"), ("g", 0, "v1", "positive", None),
         ("h", 0, "v2", "up", "up"), ("h", 1, "v2", "down", "up"), ("i", 0, "v2", "down", "down")]
tmp = tempfile.mkdtemp(prefix="bertserve-score-")
log_path, fb_path = os.path.join(tmp, "predictions.log"), os.path.join(tmp, "feedback.jsonl")
with open(log_path, "w") as f:
    # "b" first predicted positive, then again under the same id: the newest (neutral) is kept.
    f.write(pred("b", 0, "v1", V1, "positive") + "\n")
    for rid, index, version, predicted, _ in cases:
        f.write(pred(rid, index, version, V1 if version == "v1" else V2, predicted) + "\n")
    f.write("{not json\n\n")
with open(fb_path, "w") as f:
    truth = [(rid, index, actual) for rid, index, _, _, actual in cases if actual]
    f.write(json.dumps([{"request_id": r, "index": i, "label": a} for r, i, a in truth[:3]]) + "\n")
    for r, i, a in truth[3:]:
        f.write(json.dumps({"request_id": r, "label": a} if i == 0 else {"request_id": r, "index": i, "label": a})
                + "\n")
    f.write(json.dumps({"request_id": "a", "index": 1, "label": "negative"}) + "\n")  # duplicate: first stands
    f.write(json.dumps({"request_id": "zzz", "label": "positive"}) + "\n")  # no such prediction
    f.write(json.dumps({"request_id": "i", "label": "positive"}) + "\n")  # v2 has no "positive"
    f.write("[oops\n")

p = subprocess.run([cli, "score", log_path, fb_path], capture_output=True, text=True, timeout=60)
out = p.stdout
check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
print(out)
check("prediction log: 13 lines, 1 unreadable, 1 under a reused request id" in out, "log counts")
check("feedback: 13 items, 10 matched, 1 matched no prediction, 1 duplicates (the first stands), "
      "1 with a label the model version lacks, 1 unreadable lines" in out, "feedback counts")
scored = [c for c in cases if c[4]]
check(f"accuracy (all versions): {sum(c[3] == c[4] for c in scored) / len(scored):.4f} over 10" in out,
      "overall accuracy")

for version, labels in (("v1", V1), ("v2", V2)):
    rows = [c for c in scored if c[2] == version]
    section = out.split(f"model_version: {version}\n", 1)[-1].split("model_version:", 1)[0]
    acc = sum(c[3] == c[4] for c in rows) / len(rows)
    check(f"examples: {len(rows)}\naccuracy: {acc:.4f}\n" in section, f"{version} accuracy {acc:.4f}:\n{section}")
    macro = 0
    for k in labels:
        tp = sum(c[3] == k and c[4] == k for c in rows)
        npred, nact = sum(c[3] == k for c in rows), sum(c[4] == k for c in rows)
        prec, rec = (tp / npred if npred else 0), (tp / nact if nact else 0)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0
        macro += f1 / len(labels)
        want = f"{k:<12} {prec:9.4f} {rec:9.4f} {f1:9.4f} {nact:8d}"
        check(want in section, f"{version} row {want!r}")
    check(f"macro-F1: {macro:.4f}" in section, f"{version} macro-F1 {macro:.4f}")
    for a in labels:
        counts = " ".join(f"{sum(c[4] == a and c[3] == q for c in rows):9d}" for q in labels)
        check(re.search(rf"^{re.escape(a)}\s+{re.escape(counts.strip())}\s*$".replace(r"\ ", r"\s+"), section, re.M),
              f"{version} confusion row {a}: {counts}")

p = subprocess.run([cli, "score", log_path, os.path.join(tmp, "missing")], capture_output=True, text=True)
check(p.returncode == 1 and "missing" in p.stderr, f"a missing file: exit {p.returncode} {p.stderr}")
p = subprocess.run([cli, "score", log_path], capture_output=True, text=True)
check(p.returncode == 2 and "usage" in p.stderr, f"one file: exit {p.returncode}")
shutil.rmtree(tmp)
finish("cli_score")
