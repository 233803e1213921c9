#!/usr/bin/python3
"""Converts a PyTorch BERT classifier checkpoint into a model directory bertserve loads
(config.json, vocab.txt, tokenizer_config.json, model.safetensors in F32).

Accepted checkpoints (anything torch.load reads into a dict of tensors):
  - HF `pytorch_model.bin` (BertForSequenceClassification);
  - a bare state_dict, as saved by `torch.save(model.state_dict(), "model.pth")` in a
    Flask + PyTorch service (a "module." prefix from DataParallel is removed);
  - the legacy `pytorch_pretrained_bert` pickle (e.g. ProsusAI's GitHub copy of FinBERT),
    whose LayerNorm parameters are named gamma/beta.

    tools/convert_checkpoint.py CHECKPOINT --config config.json --vocab vocab.txt OUT_DIR \
        [--labels positive,negative,neutral | --label-encoder label_encoder.pkl] \
        [--tokenizer-config tokenizer_config.json]

Labels: from --labels, or the classes_ of a scikit-learn LabelEncoder pickle (read without
scikit-learn), else the config's id2label. Needs Debian's python3-torch.
"""
import argparse
import json
import os
import pickle
import shutil
import struct
import sys

import torch


def label_encoder_classes(path):
    """classes_ of a pickled sklearn LabelEncoder, without importing sklearn."""
    class Stub:
        def __setstate__(self, state):
            self.__dict__.update(state)

    class Loader(pickle.Unpickler):
        def find_class(self, module, name):
            if module.startswith("sklearn"):
                return Stub
            return super().find_class(module, name)

    with open(path, "rb") as f:
        obj = Loader(f).load()
    classes = getattr(obj, "classes_", None)
    if classes is None:
        sys.exit(f"{path}: no classes_ in this pickle (not a fitted LabelEncoder?)")
    return [str(c) for c in list(classes)]


def normalise_names(state):
    out = {}
    for name, tensor in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("LayerNorm.gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith("LayerNorm.beta"):
            name = name[: -len("beta")] + "bias"
        if name.startswith(("embeddings.", "encoder.", "pooler.")):
            name = "bert." + name  # a BertModel-style prefix-less dict
        out[name] = tensor
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out_dir")
    ap.add_argument("--config", required=True, help="the model's HF config.json")
    ap.add_argument("--vocab", required=True, help="its vocab.txt")
    ap.add_argument("--tokenizer-config", help="its tokenizer_config.json (default: do_lower_case true)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--labels", help="comma-separated label names, in class-index order")
    group.add_argument("--label-encoder", help="a pickled sklearn LabelEncoder whose classes_ are the labels")
    args = ap.parse_args()

    state = torch.load(args.checkpoint, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        sys.exit(f"{args.checkpoint}: not a state_dict (a dict of tensors); save model.state_dict()")
    state = normalise_names(state)
    state.pop("bert.embeddings.position_ids", None)

    config = json.load(open(args.config))
    labels = None
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",")]
    elif args.label_encoder:
        labels = label_encoder_classes(args.label_encoder)
    n_out = state["classifier.weight"].shape[0] if "classifier.weight" in state else None
    if labels is not None:
        if n_out is not None and len(labels) != n_out:
            sys.exit(f"{len(labels)} labels given but the classifier has {n_out} outputs")
        config["id2label"] = {str(i): l for i, l in enumerate(labels)}
        config["label2id"] = {l: i for i, l in enumerate(labels)}

    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(os.path.join(args.out_dir, "model.safetensors"), state)
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copyfile(args.vocab, os.path.join(args.out_dir, "vocab.txt"))
    if args.tokenizer_config:
        shutil.copyfile(args.tokenizer_config, os.path.join(args.out_dir, "tokenizer_config.json"))
    print(f"{args.out_dir}: {len(state)} tensors, labels {list(config.get('id2label', {}).values())}")


if __name__ == "__main__":
    main()
