#!/usr/bin/env python3
"""bertserve-cli --dtype (issue 19) end to end on finsent-mini:
  - eval --dtype bf16 on the PhraseBank test split: accuracy within 1 point of f32's;
  - predict --dtype bf16 answers every golden text with the f32 label on >= 99% of them, logits
    within 0.1 of f32's but not all equal (the bf16 products did run);
  - bench --dtype bf16 says so; --dtype with another name fails with exit status 2.
usage: cli_dtype_test.py BUILD_DIR"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
cli = os.path.join(build, "bertserve-cli")
model = need(os.path.join(shared, "models", "finsent-mini"))


def run(args, stdin=""):
    p = subprocess.run([cli] + args, input=stdin.encode(), capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# eval: accuracy in each dtype
test_split = need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv"))
accuracy = {}
for dtype in ("f32", "bf16"):
    rc, out, err = run(["eval", "--model", model, "--dtype", dtype, test_split])
    m = re.search(r"^accuracy: ([\d.]+)$", out, re.M)
    check(rc == 0 and m, f"eval --dtype {dtype}: exit {rc}, {out} {err}")
    accuracy[dtype] = float(m.group(1)) if m else float("nan")
print(f"eval on splits/test.tsv: accuracy f32 {accuracy['f32']:.4f}, bf16 {accuracy['bf16']:.4f}")
check(abs(accuracy["f32"] - accuracy["bf16"]) <= 0.01, f"bf16 accuracy {accuracy['bf16']} vs f32 {accuracy['f32']}")

# predict: the golden single texts, --jsonl, in each dtype
rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "finsent-mini", "logits.jsonl")))]
texts = "".join(json.dumps(r["text"]) + "\n" for r in rows if "text_pair" not in r)
answers = {}
for dtype in ("f32", "bf16"):
    rc, out, err = run(["predict", "--model", model, "--jsonl", "--dtype", dtype], texts)
    check(rc == 0, f"predict --dtype {dtype}: exit {rc}: {err}")
    answers[dtype] = [json.loads(l) for l in out.splitlines()]
n = len(answers["f32"])
check(n > 0 and len(answers["bf16"]) == n, f"predict: {n} f32 answers, {len(answers['bf16'])} bf16")
same = sum(a["label"] == b["label"] for a, b in zip(answers["f32"], answers["bf16"]))
dlogit = max((abs(x - y) for a, b in zip(answers["f32"], answers["bf16"]) for x, y in zip(a["logits"], b["logits"])),
             default=0.0)
print(f"predict on {n} golden texts: same label {same}, max |dlogit| {dlogit:.4f}")
check(same >= 0.99 * n, f"predict --dtype bf16: the f32 label on {same} of {n}")
check(0 < dlogit <= 0.1, f"predict --dtype bf16: max |logit - f32's| {dlogit} (0: bf16 did not run)")

# bench reports the dtype; a bad dtype is a usage error
rc, out, err = run(["bench", "--model", model, "--dtype", "bf16", "--iterations", "1"])
check(rc == 0 and re.search(r"^dtype: bf16, [\d.]+ MB of weights", out, re.M), f"bench --dtype bf16: {rc} {out} {err}")
rc, out, err = run(["predict", "--model", model, "--dtype", "int4"], "Profit rose.\n")
check(rc == 2 and "--dtype must be f32 or bf16" in err, f"--dtype int4: exit {rc}, {err}")

finish("cli_dtype_test")
