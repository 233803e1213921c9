#!/usr/bin/python3
"""Converts a PyTorch BERT, DistilBERT or RoBERTa classifier checkpoint into a model directory
bertserve loads (config.json, the tokenizer files, tokenizer_config.json, model.safetensors in F32).

The family is the config's model_type (else its architectures; with neither, BERT).
Accepted checkpoints (anything torch.load reads into a dict of tensors):
  - HF `pytorch_model.bin` (Bert/DistilBert/RobertaForSequenceClassification);
  - a bare state_dict, as saved by `torch.save(model.state_dict(), "model.pth")` in a
    Flask + PyTorch service: a "module." prefix from DataParallel is removed, and the names of
    a prefix-less BertModel/DistilBertModel/RobertaModel get "bert."/"distilbert."/"roberta.";
  - the legacy `pytorch_pretrained_bert` pickle (e.g. ProsusAI's GitHub copy of FinBERT),
    whose LayerNorm parameters are named gamma/beta.
Buffers (`*.position_ids`, `*.token_type_ids`) are dropped; a tensor the family needs and the
checkpoint lacks fails the conversion, naming it.

    tools/convert_checkpoint.py CHECKPOINT OUT_DIR --config config.json TOKENIZER
        [--tokenizer-config tokenizer_config.json]
        [--labels positive,negative,neutral | --label-encoder label_encoder.pkl]

TOKENIZER: bert, distilbert (WordPiece): --vocab vocab.txt; roberta (byte-level BPE):
--vocab vocab.json --merges merges.txt, or --tokenizer-json tokenizer.json.

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


BERT_LAYER = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")
# model_type: the architectures prefix, what a prefix-less dict starts with, the embeddings, the
# layers (under "PREFIX.LAYERS.N."), the head, and the tokenizer (as src/engine/model.c reads them).
FAMILIES = {
    "bert": dict(arch="BertFor", bare=("embeddings.", "encoder.", "pooler."),
                 embeddings=("word_embeddings", "position_embeddings", "token_type_embeddings"),
                 layers="encoder.layer", layer=BERT_LAYER, head=("bert.pooler.dense", "classifier"), bpe=False),
    "distilbert": dict(arch="DistilBertFor", bare=("embeddings.", "transformer."),
                       embeddings=("word_embeddings", "position_embeddings"), layers="transformer.layer",
                       layer=("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                              "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"),
                       head=("pre_classifier", "classifier"), bpe=False),
    "roberta": dict(arch="RobertaFor", bare=("embeddings.", "encoder.", "pooler."),
                    embeddings=("word_embeddings", "position_embeddings", "token_type_embeddings"),
                    layers="encoder.layer", layer=BERT_LAYER, head=("classifier.dense", "classifier.out_proj"),
                    bpe=True),
}


def config_family(config, path):
    """As src/engine/model.c: model_type, else the first architectures entry, else BERT."""
    if config.get("model_type") is not None:
        field, name = "model_type", config["model_type"]
    elif config.get("architectures"):
        field, name = "architectures", config["architectures"][0]
        name = next((f for f, d in FAMILIES.items() if name.startswith(d["arch"])), name)
    else:
        field, name = "model_type", "bert"
    if name not in FAMILIES:
        sys.exit(f"{path}: {field} {name} is not supported (supported: {', '.join(FAMILIES)})")
    return name


def required_tensors(family, config):
    """The tensor names the C loader reads for this family and layer count."""
    f = FAMILIES[family]
    n_layers = config.get("n_layers" if family == "distilbert" else "num_hidden_layers", 0)
    modules = [f"{family}.embeddings.{e}" for e in f["embeddings"]]
    names = [m + ".weight" for m in modules] + [f"{family}.embeddings.LayerNorm.{p}" for p in ("weight", "bias")]
    modules = [f"{family}.{f['layers']}.{i}.{m}" for i in range(n_layers) for m in f["layer"]] + list(f["head"])
    return names + [f"{m}.{p}" for m in modules for p in ("weight", "bias")]


def normalise_names(state, family):
    out = {}
    for name, tensor in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("LayerNorm.gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith("LayerNorm.beta"):
            name = name[: -len("beta")] + "bias"
        if name.startswith(FAMILIES[family]["bare"]):
            name = f"{family}.{name}"  # a BertModel-style prefix-less dict
        if name.endswith((".position_ids", ".token_type_ids")):
            continue  # buffers, not weights
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
    ap.add_argument("--vocab", help="its vocab.txt (bert, distilbert) or vocab.json (roberta, with --merges)")
    ap.add_argument("--merges", help="its merges.txt (roberta)")
    ap.add_argument("--tokenizer-json", help="its tokenizer.json (roberta, instead of --vocab and --merges)")
    ap.add_argument("--tokenizer-config", help="its tokenizer_config.json (default: do_lower_case true)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--labels", help="comma-separated label names, in class-index order")
    group.add_argument("--label-encoder", help="a pickled sklearn LabelEncoder whose classes_ are the labels")
    args = ap.parse_args()

    config = json.load(open(args.config))
    family = config_family(config, args.config)
    if FAMILIES[family]["bpe"]:  # the file names src/text/bpe_load.c reads
        if not (args.vocab and args.merges) and not args.tokenizer_json:
            sys.exit(f"a {family} model needs --vocab vocab.json --merges merges.txt, or --tokenizer-json")
        tokenizer_files = {"vocab.json": args.vocab, "merges.txt": args.merges, "tokenizer.json": args.tokenizer_json}
    else:
        if not args.vocab or args.merges or args.tokenizer_json:
            sys.exit(f"a {family} model needs --vocab vocab.txt (WordPiece), not --merges or --tokenizer-json")
        tokenizer_files = {"vocab.txt": args.vocab}

    state = torch.load(args.checkpoint, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        sys.exit(f"{args.checkpoint}: not a state_dict (a dict of tensors); save model.state_dict()")
    state = normalise_names(state, family)
    missing = [n for n in required_tensors(family, config) if n not in state]
    if missing:
        sys.exit(f"{args.checkpoint}: not a {family} classifier: {len(missing)} required tensor(s) missing: "
                 + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""))

    labels = None
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",")]
    elif args.label_encoder:
        labels = label_encoder_classes(args.label_encoder)
    n_out = state[FAMILIES[family]["head"][-1] + ".weight"].shape[0]
    if labels is not None:
        if len(labels) != n_out:
            sys.exit(f"{len(labels)} labels given but the classifier has {n_out} outputs")
        config["id2label"] = {str(i): l for i, l in enumerate(labels)}
        config["label2id"] = {l: i for i, l in enumerate(labels)}

    os.makedirs(args.out_dir, exist_ok=True)
    write_safetensors(os.path.join(args.out_dir, "model.safetensors"), state)
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name, src in tokenizer_files.items():
        if src:
            shutil.copyfile(src, os.path.join(args.out_dir, name))
    if args.tokenizer_config:
        shutil.copyfile(args.tokenizer_config, os.path.join(args.out_dir, "tokenizer_config.json"))
    print(f"{args.out_dir}: {family}, {len(state)} tensors, labels {list(config.get('id2label', {}).values())}")


if __name__ == "__main__":
    main()
