#!/usr/bin/env python3
"""Seed corpora for the fuzz targets from the shared golden cases, written at fuzz time (they
are too large to commit): tests/fuzz/fuzz.sh runs this, then each target on OUT_DIR/<target> plus
the committed seeds/<target>.
usage: make_corpus.py SHARED_DIR OUT_DIR"""
import json
import os
import struct
import sys


def need(path):
    if not os.path.exists(path):
        sys.exit(f"FAIL: required asset {path} is missing (set BERTSERVE_SHARED)")
    return path


def rows(path):
    with open(need(path), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def safetensors(header, data):
    """A safetensors file: the header JSON padded with spaces to a multiple of 8, then data."""
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def shrink(path):
    """The file's own tensor names and dtypes with every dimension cut to at most 2, so a real
    model's structure fits in a small seed."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out, off = {}, 0
    for name, t in header.items():
        if name == "__metadata__":
            out[name] = t
            continue
        shape = [min(d, 2) for d in t["shape"]]
        size = {"F32": 4, "F16": 2, "BF16": 2}.get(t["dtype"], 1)
        for d in shape:
            size *= d
        out[name] = {"dtype": t["dtype"], "shape": shape, "data_offsets": [off, off + size]}
        off += size
    return safetensors(out, bytes((i * 37) & 0xFF for i in range(off)))


def main():
    shared, out = sys.argv[1], sys.argv[2]
    dirs = {t: os.path.join(out, t) for t in ("tokenizer", "tokenizer_bpe", "request", "safetensors", "config")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    counts = dict.fromkeys(dirs, 0)

    def put(target, name, data):
        with open(os.path.join(dirs[target], name), "wb") as f:
            f.write(data)
        counts[target] += 1

    gold = os.path.join(shared, "golden", "tokenizer")
    # tokenizer: flags byte (bit 0 pair, bit 1 cased), max_len byte (0 none, 255 = 512), text[\0pair]
    for r in rows(os.path.join(gold, "cases.jsonl")) + rows(os.path.join(gold, "special_literals.jsonl")):
        put("tokenizer", r["id"], bytes([0, 0]) + r["text"].encode())
    for r in rows(os.path.join(gold, "pairs.jsonl")):
        put("tokenizer", r["id"], bytes([1, 0]) + r["text"].encode() + b"\0" + r["text_pair"].encode())
    for r in rows(os.path.join(gold, "truncation.jsonl")):
        m = 255 if r["max_length"] >= 255 else r["max_length"]
        pair = "text_pair" in r
        body = r["text"].encode() + (b"\0" + r["text_pair"].encode() if pair else b"")
        put("tokenizer", r["id"], bytes([1 if pair else 0, m]) + body)
        put("tokenizer", r["id"] + "-cased", bytes([(1 if pair else 0) | 2, m]) + body)

    # tokenizer_bpe: flags byte (bit 0 pair, bit 1 truncate left), max_len byte, text[\0pair]
    bpe = os.path.join(shared, "golden", "tokenizer-bpe")
    for name in ("cases", "special_literals", "phrasebank", "pairs", "truncation"):
        for r in rows(os.path.join(bpe, name + ".jsonl")):
            m = 255 if r.get("max_length", 0) >= 255 else r.get("max_length", 0)
            pair = "text_pair" in r
            body = r["text"].encode() + (b"\0" + r["text_pair"].encode() if pair else b"")
            put("tokenizer_bpe", r["id"], bytes([1 if pair else 0, m]) + body)
            if m:
                put("tokenizer_bpe", r["id"] + "-left", bytes([(1 if pair else 0) | 2, m]) + body)

    # request: the golden texts in every request shape
    logits = rows(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl"))
    for r in logits:
        if "text_pair" in r:
            put("request", r["id"], json.dumps({"inputs": [r["text"], r["text_pair"]], "raw_scores": True}).encode())
        else:
            put("request", r["id"], json.dumps({"text": r["text"]}, ensure_ascii=False).encode())
    texts = [r["text"] for r in logits if "text_pair" not in r]
    for i in range(0, 40, 5):
        put("request", f"texts-{i}", json.dumps({"texts": texts[i:i + 5], "truncate": False}).encode())
        put("request", f"inputs-{i}", json.dumps({"inputs": [[t] for t in texts[i:i + 3]] + [texts[i]],
                                                  "truncation_direction": "right"}).encode())
        put("request", f"tokenize-{i}", json.dumps({"inputs": texts[i:i + 4], "add_special_tokens": False}).encode())
        put("request", f"v2-{i}", json.dumps({"id": str(i), "inputs": [{"name": "text", "shape": [3, 1], "datatype": "BYTES",
                                                                         "data": [[t] for t in texts[i:i + 3]]}]}).encode())

    # safetensors and config: every shared model's, the weights shrunk to a small seed
    models = os.path.join(shared, "models")
    for m in sorted(os.listdir(need(models))):
        cfg = os.path.join(models, m, "config.json")
        if os.path.exists(cfg):
            with open(cfg, "rb") as f:
                put("config", m, f.read())
        st = os.path.join(models, m, "model.safetensors")
        if os.path.exists(st):
            put("safetensors", m + "-shrunk", shrink(st))
            with open(st, "rb") as f:  # the real header, its data area cut short: an error path
                (n,) = struct.unpack("<Q", f.read(8))
                f.seek(0)
                put("safetensors", m + "-cut", f.read(8 + n + 64))
    for t, n in counts.items():
        if n == 0:
            sys.exit(f"FAIL: no seeds for {t}")
    print("seed corpora:", ", ".join(f"{t} {n}" for t, n in counts.items()))


if __name__ == "__main__":
    main()
