#!/usr/bin/env python3
"""Throughput and latency of the daemon under concurrent clients, batching on and off, beside
the engine's own packed-batch rate and ONNX Runtime's batched rate, all measured in one run.

    tools/bench_load.py     (after `cmake -B build && cmake --build build`; needs Debian's wrk)

The daemon serves a FinBERT-shaped model (12 x 768, seeded random weights: speed does not depend
on the values) on loopback; wrk (tools/load.lua) drives it with CLIENTS closed-loop connections
(default "1 4 16 64") for DURATION seconds (default 8) per point, with a fixed sample of SAMPLE
(256) Financial PhraseBank sentences ("short", ~31 tokens) and texts of 8 consecutive sentences
("long", ~240 tokens). Every answer is checked for a 200 and one of the model's labels; anything
else is an error. Batching off is the same daemon with --max-batch-requests 1. The daemons, the
engine alone and ONNX Runtime take turns, ROUNDS times (default 3); ratios are taken within a
round and the medians reported. Settings: BUILD_DIR, BENCH_DIR (default /tmp/bertserve-bench),
THREADS (default 2: compute and ORT threads), NO_ORT=1 skips ONNX Runtime, DTYPE (f32, bf16, int8
or auto; default f32) is the daemon's and the engine baseline's --dtype (ONNX Runtime stays fp32),
DAEMON_ARGS adds daemon flags (e.g. "--batch-wait-us 500")."""
import glob
import json
import os
import random
import resource
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tests", "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import need, shared  # noqa: E402

build = os.environ.get("BUILD_DIR", os.path.join(root, "build"))
work = os.environ.get("BENCH_DIR", "/tmp/bertserve-bench")
duration = float(os.environ.get("DURATION", "8"))
rounds = int(os.environ.get("ROUNDS", "3"))
clients = [int(c) for c in os.environ.get("CLIENTS", "1 4 16 64").split()]
threads = int(os.environ.get("THREADS", "2"))
use_ort = os.environ.get("NO_ORT") != "1"
dtype = os.environ.get("DTYPE", "f32")
extra = ["--dtype", dtype] + os.environ.get("DAEMON_ARGS", "").split()
if not os.path.exists("/usr/bin/wrk"):
    sys.exit("bench_load: needs wrk (apt-get install wrk)")

subprocess.run([os.path.join(root, "tools", "bench_prepare.sh")] + ([] if use_ort else ["--no-ort"]), check=True)
model = os.path.join(work, "finbert-random")
labels = [json.load(open(os.path.join(model, "config.json")))["id2label"][str(i)] for i in range(3)]

# ---- the texts -------------------------------------------------------------------------------
sentences = []
for path in sorted(glob.glob(need(os.path.join(shared, "data", "financial_phrasebank", "splits")) + "/*.tsv")):
    sentences += [line.rstrip("\n").split("\t", 1)[1] for line in open(path, encoding="utf-8") if "\t" in line]
# "short" is a fixed sample of SAMPLE sentences, so that the engine-alone baselines run the
# texts the clients send (each once), not a different few hundred of the file's: the mean
# length of a few hundred sentences moves by a few percent from one slice to the next.
sample = int(os.environ.get("SAMPLE", "256"))
short = random.Random(11).sample(sentences, sample)
mixes = {"short": short, "long": [" ".join(sentences[i:i + 8]) for i in range(0, len(sentences) - 8, 8)]}
for name, texts in mixes.items():
    with open(os.path.join(work, f"{name}.txt"), "w") as f:
        f.write("".join(t + "\n" for t in texts))
    with open(os.path.join(work, f"{name}.bodies"), "w") as f:
        f.write("".join(json.dumps({"text": t}) + "\n" for t in texts))


def cli_bench(batch, mix):
    """The engine alone over the mix's texts, each once, in batches of `batch`."""
    out = subprocess.run([os.path.join(build, "bertserve-cli"), "bench", "--model", model, "--dtype", dtype,
                          "--batch", str(batch),
                          "--iterations", str(len(mixes[mix]) // batch), os.path.join(work, f"{mix}.txt")],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}).stdout
    return dict(kv.split("=") for kv in out.split())


def ort_16x32():
    out = subprocess.run(["node", os.path.join(root, "tools", "ort_bench.js"), os.path.join(work, "finbert.onnx"),
                          str(threads), "16x32"], check=True, capture_output=True, text=True,
                         env={**os.environ, "NODE_PATH": os.path.join(work, "npm", "node_modules")}).stdout
    return 16 / (float(out.split()[2]) / 1000)  # "ort 16x32 <p50 ms> <min ms>"


def quiesce():
    """Waits until no daemon has work left: when wrk stops, the requests it leaves behind
    (seconds of them at 64 clients with long texts) still run, and must not overlap the next
    measurement, whichever daemon or engine that is."""
    for d in daemons.values():
        while metric_values(d.request("GET", "/metrics")[2].decode()).get("bertserve_queue_depth", 0) > 0:
            time.sleep(0.05)


def drive(d, mix, n):
    """One point: wrk with n connections; returns its figures plus the daemon's batch sizes."""
    quiesce()
    before = metric_values(d.request("GET", "/metrics")[2].decode())
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", "-t", str(min(n, 2)), "-c", str(n), "-d", f"{duration:.0f}s", "--timeout", "120s",
           "-s", os.path.join(root, "tools", "load.lua"), f"http://127.0.0.1:{d.port}", "--",
           os.path.join(work, f"{mix}.bodies"), *labels]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"bench_load: wrk failed ({run.returncode}): {run.stderr.strip()}")
    out = run.stdout
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = metric_values(d.request("GET", "/metrics")[2].decode())
    r = json.loads(out.strip().splitlines()[-1])

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)
    r["texts_per_s"] = r["checked"] / r["seconds"]
    r["mean_batch"] = delta("bertserve_batch_texts_sum") / max(delta("bertserve_batch_texts_count"), 1)
    r["mean_tokens"] = delta("bertserve_tokens_per_text_sum") / max(delta("bertserve_tokens_per_text_count"), 1)
    # The share of the point the worker spent in forward passes: what is left is the cost of
    # the HTTP layer, the tokenizer and the queue between batches.
    r["busy"] = delta("bertserve_batch_duration_seconds_sum") / r["seconds"]
    wrk_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    r["wrk_cpu_share"] = wrk_cpu / (r["seconds"] * os.cpu_count())
    return r


def baselines(n):
    """What the targets hold the short-text point with n clients against: the engine alone one
    text at a time (1 client), or in packed batches of 16, and ONNX Runtime (16 clients): their
    texts/s, and the engine's mean tokens per text."""
    quiesce()
    rates, tokens = {}, {}
    if n in (1, 16):
        b = cli_bench(n, "short")
        rates[n] = float(b["texts_per_second"])
        tokens[n] = float(b["mean_tokens"])
    if n == 16 and use_ort:
        rates["ort"] = ort_16x32()
    return rates, tokens


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def spread(values):
    return f"{min(values):.2f}-{max(values):.2f}"


print(f"== FinBERT shape, seeded random weights; {threads} compute threads; {duration:.0f} s per point; "
      f"{rounds} rounds; machine: {os.cpu_count()} CPUs")
# Both daemons run side by side (the idle one sleeps) and every measurement takes turns with
# the others, round after round, so a noisy neighbour slows all alike; each ratio below is
# taken within a round and the median over the rounds is reported.
daemons = {"on": Daemon(build, model, "--threads", str(threads), *extra),
           "off": Daemon(build, model, "--threads", str(threads), "--max-batch-requests", "1", *extra)}
cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True)
            .stdout.splitlines() if line.startswith("Model name")), "?")
facts = json.loads(daemons["on"].request("GET", "/info")[2])
print(f"== host: {cpu}; dtype {facts['compute_dtype']}, kernel {facts['kernel']}")
for d in daemons.values():
    for mix in mixes:
        drive(d, mix, 4 if mix == "short" else 1)  # warm-up: scratch buffers and caches

results = {}  # (mode, mix, clients) -> [one result per round]
engine = {1: [], 16: []}
ort = []
for rnd in range(rounds):
    for mix in mixes:
        for n in clients:
            # The baselines are measured just before and just after the point they belong
            # to, and averaged: a neighbour's load changes within a minute.
            before, tokens = baselines(n) if mix == "short" else ({}, {})
            for mode, d in daemons.items():
                r = drive(d, mix, n)
                results.setdefault((mode, mix, n), []).append(r)
                print(f"round {rnd + 1}: batching {mode:3} {mix:5} {n:3} clients: {r['texts_per_s']:7.1f} texts/s  "
                      f"p50 {r['p50_us'] / 1000:8.1f}  p95 {r['p95_us'] / 1000:8.1f}  p99 {r['p99_us'] / 1000:8.1f} ms  "
                      f"errors {r['errors'] + r['socket_errors']}  mean batch {r['mean_batch']:5.2f} texts  "
                      f"{r['mean_tokens']:.0f} tokens/text  worker busy {100 * r['busy']:.1f}%  "
                      f"wrk CPU {100 * r['wrk_cpu_share']:.1f}%", flush=True)
            if before:
                after, _ = baselines(n)
                for key in before:
                    (ort if key == "ort" else engine[key]).append((before[key] + after[key]) / 2)
                print(f"round {rnd + 1}: baselines around it: " + ", ".join(
                    f"{'ONNX Runtime 16 x 32' if k == 'ort' else f'engine alone, batch {k}'} {before[k]:.1f} and "
                    f"{after[k]:.1f} texts/s" + ("" if k == "ort" else f" ({tokens[k]:.1f} tokens/text)")
                    for k in before), flush=True)
for mode, d in daemons.items():
    if d.stop() != 0:
        sys.exit(f"bench_load: the batching-{mode} daemon did not exit cleanly")

print(f"\n== medians over {rounds} rounds")
parts = [f"batch {b} {median(v):.1f} texts/s" for b, v in engine.items() if v]
if parts:
    print("engine alone (bertserve-cli bench, short texts), around its point: " + ", ".join(parts) +
          (f"; ONNX Runtime 16 x 32 tokens, {threads} threads: {median(ort):.1f} texts/s" if ort else ""))
for (mode, mix, n), rs in results.items():
    med = {k: median([r[k] for r in rs]) for k in ("texts_per_s", "p50_us", "p95_us", "p99_us", "mean_batch",
                                                   "busy", "wrk_cpu_share")}
    print(f"batching {mode:3} {mix:5} {n:3} clients: {med['texts_per_s']:7.1f} texts/s  p50 {med['p50_us'] / 1000:8.1f}  "
          f"p95 {med['p95_us'] / 1000:8.1f}  p99 {med['p99_us'] / 1000:8.1f} ms  "
          f"errors {sum(r['errors'] + r['socket_errors'] for r in rs)}  mean batch {med['mean_batch']:5.2f} texts  "
          f"worker busy {100 * med['busy']:.1f}%  wrk CPU {100 * med['wrk_cpu_share']:.1f}%")

print(f"\n== ratios within each round (median, and the range over {rounds} rounds)")


def per_round(f):
    return [f(i) for i in range(rounds)]


for mix in mixes:
    for n in clients:
        on, off = results[("on", mix, n)], results[("off", mix, n)]
        r = per_round(lambda i: on[i]["texts_per_s"] / off[i]["texts_per_s"])
        print(f"{mix:5} {n:3} clients: batching on/off texts/s {median(r):.2f}x ({spread(r)})"
              + ("  (target >= 1.25)" if (mix, n) == ("short", 16) else ""))
if 16 in clients and "short" in mixes:
    on = results[("on", "short", 16)]
    r = per_round(lambda i: on[i]["texts_per_s"] / engine[16][i])
    print(f"short 16 clients: {median(r):.2f} of the engine's packed-batch rate ({spread(r)}; target >= 0.90)")
    if use_ort:
        r = per_round(lambda i: on[i]["texts_per_s"] / ort[i])
        print(f"short 16 clients: {median(r):.2f}x ONNX Runtime's 16 x 32 rate ({spread(r)}; target >= 1.0)")
    # What a fair FIFO gives each closed-loop client: 16 / throughput.
    p50 = per_round(lambda i: on[i]["p50_us"] / (16 / on[i]["texts_per_s"] * 1e6))
    p99 = per_round(lambda i: on[i]["p99_us"] / (16 / on[i]["texts_per_s"] * 1e6))
    print(f"short 16 clients: p50 {median(p50):.2f} ({spread(p50)}) and p99 {median(p99):.2f} ({spread(p99)}) "
          f"of 16 / throughput (targets <= 1.2 and <= 2.0)")
if 1 in clients and "short" in mixes:
    on = results[("on", "short", 1)]
    r = per_round(lambda i: on[i]["mean_us"] / 1e6 * engine[1][i])
    print(f"short 1 client: mean latency {median(r):.2f} ({spread(r)}) of the bare forward pass's mean time on the "
          f"same texts (p50 {median([x['p50_us'] for x in on]) / 1000:.1f} ms; target <= 1.10)")
errors = sum(r["errors"] + r["socket_errors"] for rs in results.values() for r in rs)
print(f"errors over all points: {errors}")
sys.exit(1 if errors else 0)
