#!/usr/bin/env python3
"""Exports a bertserve model directory (config.json + model.safetensors) to ONNX, for the
ONNX Runtime comparison in tools/bench_vs_ort.sh. The network is HF BertForSequenceClassification
written out in PyTorch (Debian's python3-torch; no transformers needed):

    tools/export_onnx.py MODEL_DIR OUT.onnx

Inputs: input_ids, attention_mask, token_type_ids (int64, [batch, seq]); output: logits.
"""
import json
import math
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F16": np.float16}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]]).astype(np.float32)
        tensors[name] = torch.from_numpy(arr.reshape(t["shape"]).copy())
    return tensors


class Bert(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, w
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)

    def ln(self, x, prefix):
        return torch.nn.functional.layer_norm(x, (self.cfg["hidden_size"],), self.w[prefix + ".weight"],
                                              self.w[prefix + ".bias"], self.eps)

    def lin(self, x, prefix):
        return torch.nn.functional.linear(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"])

    def forward(self, input_ids, attention_mask, token_type_ids):
        w, B, T = self.w, input_ids.shape[0], input_ids.shape[1]
        pos = torch.arange(T, dtype=torch.int64).unsqueeze(0)
        x = (w["bert.embeddings.word_embeddings.weight"][input_ids]
             + w["bert.embeddings.position_embeddings.weight"][pos]
             + w["bert.embeddings.token_type_embeddings.weight"][token_type_ids])
        x = self.ln(x, "bert.embeddings.LayerNorm")
        mask = (1.0 - attention_mask.to(torch.float32)[:, None, None, :]) * torch.finfo(torch.float32).min
        H = x.shape[-1]
        d = H // self.heads
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"bert.encoder.layer.{i}."

            def split(t):
                return t.view(B, T, self.heads, d).transpose(1, 2)

            q = split(self.lin(x, p + "attention.self.query"))
            k = split(self.lin(x, p + "attention.self.key"))
            v = split(self.lin(x, p + "attention.self.value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
            x = self.ln(self.lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = torch.nn.functional.gelu(self.lin(x, p + "intermediate.dense"))
            x = self.ln(self.lin(h, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = torch.tanh(self.lin(x[:, 0], "bert.pooler.dense"))
        return self.lin(pooled, "classifier")


def main(model_dir, out):
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = read_safetensors(f"{model_dir}/model.safetensors")
    for k in list(w):  # legacy LayerNorm names
        if k.endswith(".gamma") or k.endswith(".beta"):
            w[k.rsplit(".", 1)[0] + (".weight" if k.endswith(".gamma") else ".bias")] = w.pop(k)
    model = Bert(cfg, w).eval()
    ids = torch.full((1, 8), 1000, dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), out,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["logits"], opset_version=14,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                        ["input_ids", "attention_mask", "token_type_ids"]})
    print(f"{out}: exported")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
