#!/usr/bin/env python3
"""PyTorch's time for the forward-pass cases of `bertserve-cli bench`, the peer of
tools/bench_vs_torch.sh, in each of its CPU number types:

    /usr/bin/python3 tools/torch_bench.py MODEL_DIR DTYPE [THREADS]    DTYPE: f32, bf16 or int8

The network is HF BertForSequenceClassification with nn.Linear layers (so that
quantize_dynamic finds them), loaded from MODEL_DIR (Debian's python3-torch; no transformers):
  f32   as loaded;
  bf16  model.to(torch.bfloat16) (inputs bf16 too; oneDNN's bf16 matmuls where the CPU has them);
  int8  torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8) with
        torch.backends.quantized.engine = "onednn" (per-row dynamic activation scales, int8
        weights), what a PyTorch user does to serve BERT in int8 on a CPU.
Prints one line per case: "torch-DTYPE <case> <p50 ms> <min ms>", the cases and token ids as
tools/ort_bench.js makes them (no padding: bertserve never pads either)."""
import json
import math
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_onnx import read_safetensors  # noqa: E402


class Layer(nn.Module):
    def __init__(self, H, I, heads, eps):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_out, self.ln1 = nn.Linear(H, H), nn.LayerNorm(H, eps=eps)
        self.ffn_in, self.ffn_out, self.ln2 = nn.Linear(H, I), nn.Linear(I, H), nn.LayerNorm(H, eps=eps)

    def forward(self, x, mask):
        B, T, H = x.shape
        d = H // self.heads

        def split(t):
            return t.view(B, T, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = self.ln1(self.attn_out(ctx) + x)
        return self.ln2(self.ffn_out(nn.functional.gelu(self.ffn_in(x))) + x)


class Bert(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.word = nn.Embedding(cfg["vocab_size"], H)
        self.pos = nn.Embedding(cfg["max_position_embeddings"], H)
        self.token_type = nn.Embedding(cfg.get("type_vocab_size", 2), H)
        self.ln = nn.LayerNorm(H, eps=eps)
        self.layers = nn.ModuleList(Layer(H, cfg["intermediate_size"], cfg["num_attention_heads"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))
        self.pooler = nn.Linear(H, H)
        self.classifier = nn.Linear(H, len(cfg.get("id2label", {0: 0, 1: 1})))

    def forward(self, ids, attention_mask, types):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.ln(self.word(ids) + self.pos(pos) + self.token_type(types))
        mask = (1.0 - attention_mask.to(x.dtype)[:, None, None, :]) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def load(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    m = Bert(cfg)
    names = {"word.weight": "bert.embeddings.word_embeddings.weight",
             "pos.weight": "bert.embeddings.position_embeddings.weight",
             "token_type.weight": "bert.embeddings.token_type_embeddings.weight",
             "ln": "bert.embeddings.LayerNorm", "pooler": "bert.pooler.dense", "classifier": "classifier"}
    ours = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
            "attn_out": "attention.output.dense", "ln1": "attention.output.LayerNorm",
            "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "ln2": "output.LayerNorm"}
    state = {}
    for name in m.state_dict():
        parts = name.split(".")
        if parts[0] == "layers":
            hf = f"bert.encoder.layer.{parts[1]}.{ours[parts[2]]}.{parts[3]}"
        elif name in names:
            hf = names[name]
        else:
            hf = names[parts[0]] + "." + parts[1]
        state[name] = w[hf]
    m.load_state_dict(state)
    return m.eval()


def main(model_dir, dtype, threads=2):
    torch.set_num_threads(int(threads))
    model = load(model_dir)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    elif dtype == "int8":
        torch.backends.quantized.engine = "onednn"
        model = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    elif dtype != "f32":
        sys.exit(f"torch_bench.py: DTYPE must be f32, bf16 or int8, not {dtype}")
    for batch, length in [(1, 8), (1, 32), (1, 128), (1, 512), (16, 32)]:
        seed, ids = 12345, []
        for i in range(batch * length):
            seed = (seed * 1664525 + 1013904223) % 2**32
            ids.append(101 if i % length == 0 else 1000 + seed % 29000)
        ids = torch.tensor(ids).view(batch, length)
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        with torch.inference_mode():
            model(ids, mask, types)  # warm-up
            times, start = [], time.perf_counter()
            while len(times) < 5 or (time.perf_counter() - start < 1.0 and len(times) < 200):
                t = time.perf_counter()
                model(ids, mask, types)
                times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        print(f"torch-{dtype} {batch}x{length} {times[len(times) // 2]:.2f} {times[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
