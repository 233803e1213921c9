#!/usr/bin/env python3
"""The KServe v2 / Open Inference Protocol routes, tiny-bert over loopback:
  - POST /v2/models/tiny-bert/infer on every golden text (and sentence pair) gives the golden
    label and probabilities (1e-5), in batches of [n], [n, 1] nested and [n, 2] pairs; the
    request's "id" comes back, and "outputs" picks and orders the tensors;
  - the protocol's published inference example (two non-BYTES inputs) is refused 422 with the
    protocol's error shape {"error": "..."} and no error_type; another model's name is 404;
  - GET /v2, /v2/health/live, /v2/health/ready, /v2/models/tiny-bert(/ready) and the
    /versions/{version} forms answer as the protocol says; --api-key guards infer only;
  - /metrics counts the v2 routes by their templates.
usage: v2_test.py BUILD_DIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl")))]
# Inputs /predict accepts (an empty or whitespace-only text is refused on every route).
rows = [r for r in rows if r["text"].strip() and len(r["input_ids"]) > 2 and r.get("text_pair", "x").strip()]
singles = [r for r in rows if "text_pair" not in r]
pairs = [r for r in rows if "text_pair" in r]
check(len(singles) > 200 and len(pairs) > 5, f"{len(singles)} golden texts, {len(pairs)} pairs")
LABELS = ["positive", "negative", "neutral"]  # tiny-bert's id2label order
INFER = "/v2/models/tiny-bert/infer"


def post(d, path, payload, headers=None):
    status, hdrs, data = d.request("POST", path, payload, headers)
    return status, hdrs, json.loads(data) if data else None


def tensor(shape, data):
    return {"name": "text", "shape": shape, "datatype": "BYTES", "data": data}


def compare(chunk, got, what):
    """The answer's label and probabilities against the golden rows."""
    outs = {o["name"]: o for o in got["outputs"]}
    n = len(chunk)
    ok = (outs["label"]["shape"] == [n] and outs["label"]["datatype"] == "BYTES" and
          outs["probabilities"]["shape"] == [n, 3] and outs["probabilities"]["datatype"] == "FP32")
    if not check(ok, f"{what}: tensor shapes {got}"):
        return 0
    for i, r in enumerate(chunk):
        probs = outs["probabilities"]["data"][3 * i:3 * i + 3]
        check(outs["label"]["data"][i] == r["label"], f"{r['id']}: {outs['label']['data'][i]} != golden {r['label']}")
        check(max(abs(a - b) for a, b in zip(probs, r["probs"])) < 1e-5, f"{r['id']}: {probs} != golden {r['probs']}")
    return n


d = Daemon(build, tiny)
version = json.loads(d.request("GET", "/info")[2])["model_version"]
answered = 0
for k in range(0, len(singles), 16):
    chunk = singles[k:k + 16]
    texts = [r["text"] for r in chunk]
    # [n] flat, and [n, 1] nested on every other batch: the protocol allows both forms.
    body = {"id": f"batch-{k}", "inputs": [tensor([len(texts)], texts) if k % 32 else
                                            tensor([len(texts), 1], [[t] for t in texts])]}
    status, hdrs, got = post(d, INFER, body)
    if check(status == 200 and got.get("id") == f"batch-{k}" and got.get("model_name") == "tiny-bert" and
             got.get("model_version") == version and hdrs.get("x-model-version") == version, f"batch {k}: {status} {got}"):
        answered += compare(chunk, got, f"batch {k}")
status, _, got = post(d, INFER, {"inputs": [tensor([len(pairs), 2], [x for r in pairs for x in (r["text"], r["text_pair"])])]})
if check(status == 200 and "id" not in got, f"pairs: {status} {got}"):
    answered += compare(pairs, got, "pairs")
check(answered == len(singles) + len(pairs), f"compared {answered} of {len(singles) + len(pairs)} inputs")

# The same probabilities as /predict's TEI shape for a pair.
status, _, tei = post(d, "/predict", {"inputs": [pairs[0]["text"], pairs[0]["text_pair"]]})
status2, _, got = post(d, INFER, {"inputs": [tensor([1, 2], [pairs[0]["text"], pairs[0]["text_pair"]])],
                                  "outputs": [{"name": "probabilities"}]})
want = {x["label"]: x["score"] for x in tei}
check(status == 200 and status2 == 200 and [o["name"] for o in got["outputs"]] == ["probabilities"] and
      got["outputs"][0]["data"] == [want[label] for label in LABELS], f"pair vs /predict: {tei} {got}")
# "outputs" orders the answer's tensors.
status, _, got = post(d, INFER, {"inputs": [tensor([1], ["Profit rose."])],
                                 "outputs": [{"name": "probabilities"}, {"name": "label"}]})
check(status == 200 and [o["name"] for o in got["outputs"]] == ["probabilities", "label"], f"outputs order: {got}")

# The protocol's published inference example: a model with two inputs (UINT32 [2, 2], BOOL [3]).
published = {"id": "42", "inputs": [{"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
                                    {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]}],
             "outputs": [{"name": "output0"}]}
for body in [published, {"inputs": [tensor([1], [1.5])]}, {"inputs": [tensor([2], ["a"])]},
             {"inputs": [tensor([1, 3], ["a", "b", "c"])]}, {"inputs": [tensor([65], ["a"] * 65)]},
             {"inputs": [tensor([1], ["a"])], "outputs": [{"name": "label"}, {"name": "label"}]},
             {"inputs": [tensor([1], ["a"])], "id": 42}, {"inputs": []}, {"inputs": [tensor([1], ["   "])]}]:
    status, _, got = post(d, INFER, body)
    check(status == 422 and set(got) == {"error"} and got["error"], f"{json.dumps(body)[:80]}: {status} {got}")
status, _, got = d.request("POST", INFER, b"{\"inputs\": [", {"Content-Type": "application/json"})
check(status == 400 and set(json.loads(got)) == {"error"}, f"broken JSON: {status} {got}")
for path in ["/v2/models/finsent-mini/infer", f"/v2/models/tiny-bert/versions/{version}x/infer"]:
    status, _, got = post(d, path, {"inputs": [tensor([1], ["a"])]})
    check(status == 404 and set(got) == {"error"}, f"{path}: {status} {got}")
status, _, got = post(d, f"/v2/models/tiny-bert/versions/{version}/infer", {"inputs": [tensor([1], ["Profit rose."])]})
check(status == 200 and got["model_version"] == version, f"versions form: {status} {got}")

# The GET routes.
for path, want_status, want in [
        ("/v2", 200, {"name": "bertserve", "version": json.loads(d.request("GET", "/info")[2])["version"], "extensions": []}),
        ("/v2/health/live", 200, {"live": True}), ("/v2/health/ready", 200, {"ready": True}),
        ("/v2/models/tiny-bert/ready", 200, {"name": "tiny-bert", "ready": True}),
        (f"/v2/models/tiny-bert/versions/{version}/ready", 200, {"name": "tiny-bert", "ready": True}),
        ("/v2/models/nope/ready", 404, None), ("/v2/models/tiny-bert/versions/v0", 404, None), ("/v2/models", 404, None)]:
    status, _, data = d.request("GET", path)
    got = json.loads(data)
    check(status == want_status and (got == want if want else "error" in got), f"GET {path}: {status} {got}")
for path in ["/v2/models/tiny-bert", f"/v2/models/tiny-bert/versions/{version}"]:
    status, _, data = d.request("GET", path)
    got = json.loads(data)
    check(status == 200 and got["name"] == "tiny-bert" and got["versions"] == [version] and
          [t["name"] for t in got["inputs"]] == ["text"] and got["outputs"][1] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
          f"GET {path}: {got}")
status, h, data = d.request("GET", INFER)
check(status == 405 and h.get("allow") == "POST" and set(json.loads(data)) == {"error"}, f"GET infer: {status} {data}")

m = metric_values(d.request("GET", "/metrics")[2].decode())
check(m.get('bertserve_requests_total{route="/v2/models/{name}/infer",method="POST",code="200"}', 0) >= 20,
      "infer answers counted under the route template")
check(m.get('bertserve_requests_total{route="/v2/health/live",method="GET",code="200"}') == 1, "live counted")
check(d.stop() == 0, "clean exit")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

# With --api-key, infer needs it; the metadata and health routes stay open.
d = Daemon(build, tiny, "--api-key", "k")
status, h, _ = post(d, INFER, {"inputs": [tensor([1], ["a"])]})
check(status == 401 and h.get("www-authenticate") == "Bearer", f"infer without the key: {status}")
status, _, _ = post(d, INFER, {"inputs": [tensor([1], ["a"])]}, {"Authorization": "Bearer k"})
check(status == 200, f"infer with the key: {status}")
for path in ["/v2", "/v2/health/ready", "/v2/models/tiny-bert"]:
    check(d.request("GET", path)[0] == 200, f"GET {path} open")
check(d.stop() == 0, "clean exit")

# --model-name: the model's v2 name instead of its directory's (a container mounts /models).
d = Daemon(build, tiny, "--model-name", "finsent")
check(d.request("GET", "/v2/models/finsent/ready")[0] == 200, "--model-name: /v2/models/finsent/ready")
check(d.request("GET", "/v2/models/tiny-bert/ready")[0] == 404, "--model-name: the directory's name is not the model's")
status, _, body = post(d, "/v2/models/finsent/infer", {"inputs": [tensor([1], ["Profit rose."])]})
check(status == 200 and body.get("model_name") == "finsent", f"--model-name infer: {status} {body}")
check(d.stop() == 0, "clean exit")
finish("v2_test")
