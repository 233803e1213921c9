#!/usr/bin/env python3
"""bertserve-cli predict and eval end to end, and make-random-model:
  - predict on golden finsent-mini rows (plain lines and --jsonl, and --pair rows) gives the golden
    labels and logits within 2e-5;
  - eval on the PhraseBank test split reproduces MODEL_CARD.md's accuracy and macro-F1;
  - bench FILE with (texts / batch) iterations runs each text once: its mean length is the file's;
  - a random model made from tiny-bert's config loads and predicts.
usage: cli_model_test.py BUILD_DIR"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
cli = os.path.join(build, "bertserve-cli")


def run(args, stdin=""):
    p = subprocess.run([cli] + args, input=stdin.encode(), capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


model = need(os.path.join(shared, "models", "finsent-mini"))
rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "finsent-mini", "logits.jsonl")))]
singles = [r for r in rows if "text_pair" not in r]
pairs = [r for r in rows if "text_pair" in r]

# predict, --jsonl: every single-text golden row in one stream (texts hold newlines, NULs...)
rc, out, err = run(["predict", "--model", model, "--jsonl"], "".join(json.dumps(r["text"]) + "\n" for r in singles))
check(rc == 0, f"predict --jsonl exit {rc}: {err}")
lines = out.splitlines()
check(len(lines) == len(singles), f"predict --jsonl: {len(lines)} lines for {len(singles)} texts")
worst = 0.0
for r, line in zip(singles, lines):
    got = json.loads(line)
    diff = max(abs(a - b) for a, b in zip(got["logits"], r["logits"]))
    worst = max(worst, diff)
    check(got["label"] == r["label"], f"{r['id']}: label {got['label']} != {r['label']}")
    check(diff <= 2e-5, f"{r['id']}: |logit diff| {diff:.2e} > 2e-5")
    check(got["tokens"] == len(r["input_ids"]), f"{r['id']}: tokens {got['tokens']} != {len(r['input_ids'])}")
    check(got["truncated"] == (r["untruncated_length"] > len(r["input_ids"])), f"{r['id']}: truncated flag")
    check(abs(sum(got["scores"].values()) - 1) < 1e-5 and got["score"] == got["scores"][got["label"]],
          f"{r['id']}: scores do not sum to 1 or score is not the label's")
print(f"predict --jsonl: {len(singles)} rows, max |logit diff| {worst:.2e}")

# predict --pair
rc, out, err = run(["predict", "--model", model, "--pair"],
                   "".join(json.dumps([r["text"], r["text_pair"]]) + "\n" for r in pairs))
check(rc == 0 and len(out.splitlines()) == len(pairs), f"predict --pair exit {rc}: {err}")
for r, line in zip(pairs, out.splitlines()):
    got = json.loads(line)
    check(got["label"] == r["label"] and max(abs(a - b) for a, b in zip(got["logits"], r["logits"])) <= 2e-5,
          f"{r['id']} (pair): {got['label']} {got['logits']} vs {r['label']} {r['logits']}")

# predict, plain lines, with an invalid line in the middle: error on that line, the rest answered
plain = [r for r in singles if r["category"] == "clear"][:5]
text = "\n".join(r["text"] for r in plain[:2]) + "\nbad \xff\n" + "\n".join(r["text"] for r in plain[2:]) + "\n"
p = subprocess.run([cli, "predict", "--model", model],
                   input=text.encode("utf-8").replace("\xff".encode("utf-8"), b"\xff"), capture_output=True)
lines = p.stdout.decode().splitlines()
check(p.returncode == 1 and len(lines) == 6, f"predict with a bad line: exit {p.returncode}, {len(lines)} lines")
if len(lines) == 6:
    check("error" in json.loads(lines[2]) and "UTF-8" in json.loads(lines[2])["error"], "bad line not reported")
    check([json.loads(l)["label"] for l in lines[:2] + lines[3:]] == [r["label"] for r in plain],
          "labels around the bad line")

# eval reproduces the model card (numbers read from MODEL_CARD.md, not written here)
card = open(need(os.path.join(model, "MODEL_CARD.md"))).read()
m = re.search(r"### Test split \(n = (\d+)\)\s+accuracy \*\*([\d.]+)\*\*, macro-F1 \*\*([\d.]+)\*\*", card)
check(m is not None, "MODEL_CARD.md has no test-split accuracy line")
rc, out, err = run(["eval", "--model", model,
                    need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv"))])
check(rc == 0, f"eval exit {rc}: {err}")
if m:
    check(f"examples: {m.group(1)}\n" in out, f"eval: not {m.group(1)} examples:\n{out}")
    check(f"accuracy: {m.group(2)}\n" in out, f"eval: accuracy is not {m.group(2)}:\n{out}")
    check(f"macro-F1: {m.group(3)}\n" in out, f"eval: macro-F1 is not {m.group(3)}:\n{out}")

# bench FILE: 12 texts in batches of 4, 3 timed batches: each text once, whatever the shuffle
texts = [r["text"] for r in singles if "\n" not in r["text"] and "\r" not in r["text"] and r["text"].strip()][:12]
rc, out, err = run(["predict", "--model", model], "".join(t + "\n" for t in texts))
lengths = [json.loads(l)["tokens"] for l in out.splitlines()]
with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
    f.write("".join(t + "\n" for t in texts))
    f.flush()
    rc, out, err = run(["bench", "--model", model, "--batch", "4", "--iterations", "3", f.name])
    got = dict(kv.split("=") for kv in out.split()) if rc == 0 else {}
    check(rc == 0 and got.get("texts") == "12" and got.get("batches") == "3", f"bench FILE: {rc} {out} {err}")
    check(len(lengths) == 12 and got.get("mean_tokens") == f"{sum(lengths) / 12:.1f}",
          f"bench FILE: mean_tokens {got.get('mean_tokens')}, the texts' mean is {sum(lengths) / max(len(lengths), 1):.2f}")

# make-random-model: a model from tiny-bert's config loads and predicts one of its labels
with tempfile.TemporaryDirectory() as tmp:
    out_dir = os.path.join(tmp, "random")
    p = subprocess.run([os.path.join(build, "make-random-model"),
                        need(os.path.join(shared, "models", "tiny-bert", "config.json")), out_dir, "7"],
                       capture_output=True)
    check(p.returncode == 0, f"make-random-model: {p.stderr.decode()}")
    rc, out, err = run(["predict", "--model", out_dir], "Profit rose.\n")
    check(rc == 0 and json.loads(out)["label"] in ("positive", "negative", "neutral"),
          f"random model predict: {rc} {out} {err}")

finish("cli_model_test")
