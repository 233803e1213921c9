#!/usr/bin/python3
"""tools/convert_checkpoint.py end to end: tiny-bert's weights saved the ways users have them
(HF-named zip state_dict; a legacy pickle with DataParallel's "module." prefix and LayerNorm
gamma/beta names, labels from a pickled sklearn LabelEncoder) convert into directories whose
predictions equal the golden logits. distilbert-tiny's and roberta-tiny's weights, as an HF
pytorch_model.bin with an old checkpoint's position_ids buffer and as a prefix-less
DistilBertModel/RobertaModel-style state_dict (RoBERTa's tokenizer from vocab.json + merges.txt,
then from tokenizer.json), convert into directories whose logits are bertserve-cli's on the
original directories, bit for bit; a missing tensor fails naming it. Needs Debian's python3-torch.
usage: convert_test.py BUILD_DIR"""
import json
import os
import pickle
import subprocess
import sys
import tempfile
import types

try:
    import numpy as np
    import torch
except ImportError as e:
    sys.exit(f"FAIL: {e}: the converter test needs Debian's python3-torch (apt-get install python3-torch)")

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(root, "tools"))
sys.path.insert(0, os.path.join(root, "tests", "lib"))
from export_onnx import read_safetensors  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
converter = os.path.join(root, "tools", "convert_checkpoint.py")
model = need(os.path.join(shared, "models", "tiny-bert"))
golden = need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl"))


def fake_label_encoder(path, classes):
    """Pickles an object that unpickles as sklearn's LabelEncoder, without sklearn."""
    mod = types.ModuleType("sklearn.preprocessing._label")

    class LabelEncoder:
        pass

    LabelEncoder.__module__ = mod.__name__
    LabelEncoder.__qualname__ = "LabelEncoder"
    mod.LabelEncoder = LabelEncoder
    for parent in ("sklearn", "sklearn.preprocessing"):
        sys.modules.setdefault(parent, types.ModuleType(parent))
    sys.modules[mod.__name__] = mod
    enc = LabelEncoder()
    enc.classes_ = np.array(classes, dtype=object)
    with open(path, "wb") as f:
        pickle.dump(enc, f)


rows = [json.loads(l) for l in open(golden)]
rows = [r for r in rows if "text_pair" not in r][:60]
weights = read_safetensors(os.path.join(model, "model.safetensors"))
labels = ["positive", "negative", "neutral"]

with tempfile.TemporaryDirectory() as tmp:
    hf = os.path.join(tmp, "model.pth")
    torch.save(weights, hf)
    legacy = os.path.join(tmp, "legacy.bin")
    renamed = {}
    for k, v in weights.items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["module." + k] = v
    torch.save(renamed, legacy, _use_new_zipfile_serialization=False)
    encoder = os.path.join(tmp, "label_encoder.pkl")
    fake_label_encoder(encoder, labels)

    config = json.load(open(os.path.join(model, "config.json")))
    config.pop("id2label"), config.pop("label2id")  # labels must come from the flags
    config_path = os.path.join(tmp, "config.json")
    json.dump(config, open(config_path, "w"))

    variants = [("hf", hf, ["--labels", ",".join(labels)]), ("legacy", legacy, ["--label-encoder", encoder])]
    for name, checkpoint, label_args in variants:
        out = os.path.join(tmp, name)
        p = subprocess.run([sys.executable, os.path.join(root, "tools", "convert_checkpoint.py"), checkpoint, out,
                            "--config", config_path, "--vocab", os.path.join(model, "vocab.txt"),
                            "--tokenizer-config", os.path.join(model, "tokenizer_config.json")] + label_args,
                           capture_output=True)
        check(p.returncode == 0, f"{name}: convert failed: {p.stderr.decode()}")
        if p.returncode:
            continue
        p = subprocess.run([os.path.join(build, "bertserve-cli"), "predict", "--model", out, "--jsonl"],
                           input="".join(json.dumps(r["text"]) + "\n" for r in rows).encode(), capture_output=True)
        got = [json.loads(l) for l in p.stdout.decode().splitlines()]
        check(p.returncode == 0 and len(got) == len(rows), f"{name}: predict failed: {p.stderr.decode()}")
        worst = 0.0
        for r, g in zip(rows, got):
            d = max(abs(a - b) for a, b in zip(g["logits"], r["logits"]))
            worst = max(worst, d)
            check(d <= 1e-5 and g["label"] == r["label"], f"{name} {r['id']}: {g['label']} {d:.2e}")
        print(f"{name}: {len(got)} rows, max |logit diff| {worst:.2e}")

    # a checkpoint that is not a state_dict is refused with a message
    bad = os.path.join(tmp, "bad.pth")
    torch.save([1, 2, 3], bad)
    p = subprocess.run([sys.executable, os.path.join(root, "tools", "convert_checkpoint.py"), bad,
                        os.path.join(tmp, "x"), "--config", config_path, "--vocab", os.path.join(model, "vocab.txt")],
                       capture_output=True)
    check(p.returncode != 0 and b"not a state_dict" in p.stderr, f"bad checkpoint: {p.returncode} {p.stderr}")



def predict(model_dir, texts):
    p = subprocess.run([os.path.join(build, "bertserve-cli"), "predict", "--model", model_dir, "--jsonl"],
                       input="".join(json.dumps(t) + "\n" for t in texts).encode(), capture_output=True)
    check(p.returncode == 0, f"predict --model {model_dir}: {p.stderr.decode()}")
    return [json.loads(line)["logits"] for line in p.stdout.decode().splitlines()]


def convert(checkpoint, out, args):
    return subprocess.run([sys.executable, converter, checkpoint, out] + args, capture_output=True)


for family in ("distilbert", "roberta"):
    model = need(os.path.join(shared, "models", f"{family}-tiny"))
    golden_rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", f"{family}-tiny", "logits.jsonl")))]
    texts = [r["text"] for r in golden_rows if "text_pair" not in r][:8]
    want = predict(model, texts)
    weights = read_safetensors(os.path.join(model, "model.safetensors"))
    config = ["--config", os.path.join(model, "config.json")]
    bpe_json = need(os.path.join(shared, "golden", "tokenizer-bpe", "tokenizer.json"))
    tokenizer_config = ["--tokenizer-config", os.path.join(model, "tokenizer_config.json")]
    if family == "roberta":  # from vocab.json + merges.txt, and from tokenizer.json
        files = ["--vocab", os.path.join(model, "vocab.json"), "--merges", os.path.join(model, "merges.txt")]
        other_files = ["--tokenizer-json", bpe_json] + tokenizer_config
        wrong = ["--vocab", os.path.join(model, "vocab.json")]
    else:
        files = other_files = ["--vocab", os.path.join(model, "vocab.txt")]
        wrong = ["--tokenizer-json", bpe_json]
    files = files + tokenizer_config

    with tempfile.TemporaryDirectory() as tmp:
        hf = dict(weights)  # HF names, and the int64 buffer older transformers saved
        hf[f"{family}.embeddings.position_ids"] = torch.arange(weights[f"{family}.embeddings.position_embeddings.weight"]
                                                               .shape[0]).unsqueeze(0)
        torch.save(hf, os.path.join(tmp, "pytorch_model.bin"))
        bare = {k[len(family) + 1:] if k.startswith(family + ".") else k: v for k, v in weights.items()}
        torch.save(bare, os.path.join(tmp, "bare.pth"), _use_new_zipfile_serialization=False)

        for name, checkpoint, args in (("hf", "pytorch_model.bin", files), ("bare", "bare.pth", other_files)):
            out = os.path.join(tmp, name)
            p = convert(os.path.join(tmp, checkpoint), out, config + args)
            if not check(p.returncode == 0, f"{family} {name}: convert failed: {p.stderr.decode()}"):
                continue
            got = predict(out, texts)
            check(got == want, f"{family} {name}: logits {got} != the original's {want}")
            made = sorted(os.listdir(out))
            print(f"{family} {name}: {len(got)} texts, logits identical: {got == want}; {made}")
            with open(os.path.join(out, "model.safetensors"), "rb") as f:
                check(b"position_ids" not in f.read(1 << 16), f"{family} {name}: the position_ids buffer was kept")

        # a tensor the family needs, missing: the converter names it
        for lost in (sorted(k for k in weights if ".layer.1." in k)[0], sorted(weights)[0]):
            partial = {k: v for k, v in weights.items() if k != lost}
            torch.save(partial, os.path.join(tmp, "partial.bin"))
            p = convert(os.path.join(tmp, "partial.bin"), os.path.join(tmp, "partial"), config + files)
            check(p.returncode != 0 and lost.encode() in p.stderr, f"{family} without {lost}: {p.returncode} {p.stderr}")
            check(not os.path.exists(os.path.join(tmp, "partial")), f"{family} without {lost}: wrote a directory")

        # the wrong tokenizer files for the family are refused before the checkpoint is read
        p = convert(os.path.join(model, "model.safetensors"), os.path.join(tmp, "wrong"), config + wrong)
        check(p.returncode != 0 and b"needs --vocab" in p.stderr, f"{family} {wrong}: {p.returncode} {p.stderr}")

finish("convert_test")
