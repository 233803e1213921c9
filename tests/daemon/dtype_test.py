#!/usr/bin/env python3
"""The daemon's --dtype (issue 19) on finsent-mini, each reduced dtype against the CLI's own:
  - /predict over the PhraseBank test split gives, text for text, the labels and probabilities
    `bertserve-cli predict --dtype D` gives (the same engine, batched by the daemon);
  - /info says the compute dtype, the dtype asked for and the kernel; bertserve_model_info too;
    the `loaded` log line says them;
  - BERTSERVE_DTYPE sets it, the flag wins, --dtype auto resolves to a real dtype, and an
    unknown name is a usage error (exit 2) naming the flag.
usage: dtype_test.py BUILD_DIR"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
cli = need(os.path.join(build, "bertserve-cli"))
model = need(os.path.join(shared, "models", "finsent-mini"))
split = need(os.path.join(shared, "data", "financial_phrasebank", "splits", "test.tsv"))
texts = [line.rstrip("\n").split("\t", 1)[1] for line in open(split, encoding="utf-8")][:300]
DTYPES = ("bf16", "int8")


def cli_answers(dtype):
    p = subprocess.run([cli, "predict", "--model", model, "--dtype", dtype, "--jsonl"], capture_output=True,
                       input="".join(json.dumps(t) + "\n" for t in texts).encode())
    check(p.returncode == 0, f"bertserve-cli predict --dtype {dtype}: {p.stderr.decode()}")
    return [json.loads(line) for line in p.stdout.decode().splitlines()]


def metric_line(text, name):
    return [line for line in text.splitlines() if line.startswith(name + "{")]


for dtype in DTYPES:
    want = cli_answers(dtype)
    check(len(want) == len(texts), f"CLI {dtype}: {len(want)} answers for {len(texts)} texts")
    d = Daemon(build, model, "--dtype", dtype, "--max-batch-requests", "16")
    info = json.loads(d.request("GET", "/info")[2])
    check(info.get("compute_dtype") == dtype and info.get("requested_dtype") == dtype,
          f"/info dtype: {info.get('compute_dtype')!r}, asked {info.get('requested_dtype')!r}")
    kernel = info.get("kernel", "")
    check(kernel in {"bf16": ("amx-bf16", "avx512-bf16", "portable-bf16"),
                   "int8": ("amx-int8", "avx512-vnni", "portable-int8")}[dtype],
          f"/info kernel {kernel!r} is not a {dtype} kernel")
    loaded = [line for line in d.lines if " loaded " in line or '"event":"loaded"' in line]
    check(loaded and f"compute_dtype={dtype}" in loaded[0] and f"kernel={kernel}" in loaded[0],
          f"the loaded log line says the dtype and kernel: {loaded[:1]}")
    got = []
    for i in range(0, len(texts), 20):  # several requests, batched together by the daemon
        status, _, body = d.predict({"texts": texts[i:i + 20]})
        check(status == 200, f"/predict --dtype {dtype}: {status} {body}")
        got += body["results"] if status == 200 else []
    same = sum(g["prediction"] == w["label"] for g, w in zip(got, want))
    dprob = max(abs(g["scores"][label] - p) for g, w in zip(got, want) for label, p in w["scores"].items())
    print(f"{dtype}: /predict and the CLI agree on {same} of {len(want)} labels, max |dprob| {dprob:.2e}, "
          f"kernel {kernel}")
    check(len(got) == len(want) and same == len(want), f"{dtype}: the daemon's labels differ from the CLI's")
    check(dprob <= 1e-5, f"{dtype}: probabilities differ from the CLI's by {dprob}")
    scrape = d.request("GET", "/metrics")[2].decode()
    info_line = metric_line(scrape, "bertserve_model_info")
    check(len(info_line) == 1 and f'precision="{dtype}"' in info_line[0] and f'kernel="{kernel}"' in info_line[0],
          f"bertserve_model_info: {info_line}")
    d.stop()

# The environment, the flag winning over it, auto, and a bad name.
os.environ["BERTSERVE_DTYPE"] = "bf16"
d = Daemon(build, model)
info = json.loads(d.request("GET", "/info")[2])
check(info.get("compute_dtype") == "bf16", f"BERTSERVE_DTYPE=bf16: /info says {info.get('compute_dtype')!r}")
d.stop()
d = Daemon(build, model, "--dtype", "auto")
info = json.loads(d.request("GET", "/info")[2])
check(info.get("requested_dtype") == "auto" and info.get("compute_dtype") in ("f32", "bf16", "int8"),
      f"--dtype auto: /info {info.get('requested_dtype')!r} -> {info.get('compute_dtype')!r}")
flags = open("/proc/cpuinfo").read().split()
want_auto = "int8" if "avx512_vnni" in flags else "bf16" if "avx512_bf16" in flags else "f32"
check(info.get("compute_dtype") == want_auto, f"--dtype auto chose {info.get('compute_dtype')}, want {want_auto}")
print(f"auto chose {info.get('compute_dtype')} ({info.get('kernel')}) on this CPU")
d.stop()
del os.environ["BERTSERVE_DTYPE"]
p = subprocess.run([os.path.join(build, "bertserve"), "--model", model, "--dtype", "fp8"], capture_output=True)
check(p.returncode == 2 and b"--dtype must be" in p.stderr, f"--dtype fp8: exit {p.returncode}, {p.stderr!r}")
finish("dtype_test")
