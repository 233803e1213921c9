#!/usr/bin/env python3
"""The daemon on each model family besides BERT (issue 24): DistilBERT (distilbert-tiny: no token
types, ReLU head) and RoBERTa (roberta-tiny: byte-level BPE, positions from pad_token_id + 1).
Each answers /predict with the probabilities and labels `bertserve-cli predict` gives for the
same texts, in a batch and alone, and for sentence pairs; /tokenize gives the CLI's ids and
offsets (which tokenizer_offsets checks against HF `tokenizers`); a text of only whitespace is
refused as for BERT; /info names the family. A reload from BERT to RoBERTa and back swaps the
tokenizer family with the weights.
usage: families_test.py BUILD_DIR"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
cli = need(os.path.join(build, "bertserve-cli"))
split = need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv"))
texts = [line.rstrip("\n").split("\t", 1)[1] for line in open(split, encoding="utf-8")][:64]
# Byte-level BPE's hard cases: an emoji split into byte tokens, runs of spaces, an added token.
texts += ["Profit rose 😀 and  net  sales fell", "Shares of Nokia <mask> 5 %", "Revenue: €1.2bn\tup\n"]
pairs = [[texts[i], texts[i + 1]] for i in range(0, 20, 2)]


def run_cli(command, model, rows, *args):
    p = subprocess.run([cli, command, "--model", model, "--jsonl", *args],
                       input="".join(json.dumps(r) + "\n" for r in rows).encode(), capture_output=True)
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    check(p.returncode == 0 and len(out) == len(rows), f"bertserve-cli {command}: {p.returncode} {p.stderr[-300:]!r}")
    return out


def same_answers(name, got, want):
    worst = max((abs(g["scores"][k] - w["scores"][k]) for g, w in zip(got, want) for k in w["scores"]), default=1.0)
    same = sum(g["prediction"] == w["label"] for g, w in zip(got, want))
    print(f"{name}: /predict and the CLI agree on {same} of {len(want)} labels, max |dprob| {worst:.2e}")
    check(len(got) == len(want) and same == len(want) and worst <= 1e-6, f"{name}: the daemon's answers are the CLI's")


for family, name in (("distilbert", "distilbert-tiny"), ("roberta", "roberta-tiny")):
    model = need(os.path.join(shared, "models", name))
    want = run_cli("predict", model, texts)
    want_pairs = run_cli("predict", model, pairs, "--pair")
    want_tokens = run_cli("tokenize", model, texts)

    d = Daemon(build, model, "--max-texts", "128")
    info = json.loads(d.request("GET", "/info")[2])
    check(info.get("model_type") == family, f"{name}: /info model_type {info.get('model_type')!r}")
    # roberta-tiny takes 64 tokens: a long PhraseBank sentence is truncated, as the CLI does.
    status, _, body = d.predict({"texts": texts, "truncate": True})
    same_answers(f"{name} texts", body.get("results", []) if status == 200 else [], want)
    status, _, one = d.predict({"text": texts[5], "truncate": True})
    check(status == 200 and abs(one["scores"][want[5]["label"]] - want[5]["score"]) <= 1e-6, f"alone: {status} {one}")
    status, _, body = d.predict({"inputs": pairs, "truncate": True})
    got = [{"prediction": max(r, key=lambda x: x["score"])["label"], "scores": {x["label"]: x["score"] for x in r}}
           for r in body] if status == 200 else []
    same_answers(f"{name} pairs", got, want_pairs)

    status, _, data = d.request("POST", "/tokenize", {"inputs": texts})
    answer = json.loads(data) if status == 200 else []
    agree = 0
    for text, tokens, w in zip(texts, answer, want_tokens):
        ids = [t["id"] for t in tokens]
        offsets = [[t["start"], t["stop"]] if not t["special"] else [0, 0] for t in tokens]
        spelled = all(t["special"] or t["text"] == text.encode()[t["start"]:t["stop"]].decode() for t in tokens)
        ok = ids == w["ids"] and offsets == w["offsets"] and spelled
        agree += ok
        check(ok, f"{name} /tokenize {text!r}: {ids} {offsets} != {w['ids']} {w['offsets']}")
    print(f"{name}: /tokenize gives the CLI's ids and offsets on {agree} of {len(texts)} texts")

    for blank in (" ", " \n\t ", "\u3000"):
        status, _, body = d.predict({"text": blank})
        check(status == 422 and "whitespace" in body.get("error", ""), f"{name}: {blank!r} -> {status} {body}")
    check(d.stop() == 0, f"{name}: clean exit")
# A reload changes the family and the tokenizer with it: BERT (WordPiece) -> RoBERTa (BPE) -> BERT.
KEY = {"Authorization": "Bearer families-key"}
tiny_bert, roberta = need(os.path.join(shared, "models", "tiny-bert")), os.path.join(shared, "models", "roberta-tiny")
want_roberta = run_cli("predict", roberta, texts[:8])
d = Daemon(build, tiny_bert, "--admin-key", "families-key")
for model, family in ((roberta, "roberta"), (tiny_bert, "bert")):
    status, _, data = d.request("POST", "/admin/reload", {"model": model}, KEY, conn=d.conn(120))
    check(status == 200, f"reload to {family}: {status} {data[:300]!r}")
    info = json.loads(d.request("GET", "/info")[2])
    check(info.get("model_type") == family, f"after the reload: /info model_type {info.get('model_type')!r}")
    status, _, data = d.request("POST", "/tokenize", {"inputs": "Profit rose"})
    first = json.loads(data)[0][0]["text"] if status == 200 else None
    check(first == ("<s>" if family == "roberta" else "[CLS]"), f"{family}: /tokenize starts with {first!r}")
    if family == "roberta":
        status, _, body = d.predict({"texts": texts[:8], "truncate": True})
        same_answers("roberta-tiny after a reload", body.get("results", []) if status == 200 else [], want_roberta)
check(d.stop() == 0, "reload daemon: clean exit")
finish("families_test")
