#!/usr/bin/env python3
"""POST /batch_predict (seed 003's route), tiny-bert over loopback:
  - {"texts": [...]} answers {"results": [...]}, each result exactly /predict's answer to
    {"text": t} for that text (label, confidence, scores, tokens, truncated: a text's logits do
    not depend on its batch) and the golden label; "truncate" is honoured as on /predict;
  - any other body shape is 422 validation, GET is 405 (Allow: POST), --api-key guards it;
  - /metrics counts route="/batch_predict" and its predictions.
usage: batch_predict_test.py BUILD_DIR"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
rows = [json.loads(l) for l in open(need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl")))]
# Single texts that /predict accepts (an empty or whitespace-only text is refused on both routes).
rows = [r for r in rows if "text_pair" not in r and r["text"].strip() and len(r["input_ids"]) > 2]
check(len(rows) > 200, f"{len(rows)} golden texts")


def post(d, path, payload, headers=None):
    status, hdrs, data = d.request("POST", path, payload, headers)
    return status, hdrs, json.loads(data) if data else None


FIELDS = ("text", "prediction", "confidence", "scores", "tokens", "truncated")
d = Daemon(build, tiny)
answered = 0
for k in range(0, len(rows), 16):
    chunk = rows[k:k + 16]
    status, _, got = post(d, "/batch_predict", {"texts": [r["text"] for r in chunk]})
    if not check(status == 200 and set(got) == {"results", "processing_time_ms", "model_version"} and len(got["results"]) == len(chunk),
                 f"batch at {k}: {status} {str(got)[:200]}"):
        continue
    for row, result in zip(chunk, got["results"]):
        s1, _, one = post(d, "/predict", {"text": row["text"]})
        same = s1 == 200 and all(result.get(f) == one.get(f) for f in FIELDS) and set(result) == set(FIELDS)
        check(same, f"{row['id']}: /batch_predict {result} != /predict {one}")
        check(result.get("prediction") == row["label"], f"{row['id']}: {result.get('prediction')} != golden {row['label']}")
        answered += 1
check(answered == len(rows), f"compared {answered} of {len(rows)} texts")

# "truncate": false makes an over-long text a 413, as on /predict.
status, _, got = post(d, "/batch_predict", {"texts": ["profit " * 200], "truncate": False})
check(status == 413 and got.get("error_type") == "validation", f"truncate false: {status} {got}")
status, _, got = post(d, "/batch_predict", {"texts": ["profit " * 200]})
check(status == 200 and got["results"][0]["truncated"] and got["results"][0]["tokens"] == 128, f"truncated: {got}")

for body in [{"text": "Profit rose."}, {"inputs": "Profit rose."}, {"inputs": ["a", "b"]}, {"texts": []},
             {"texts": "Profit rose."}, {"texts": ["a", 3]}, {"texts": ["a"] * 65}, [1, 2]]:
    status, _, got = post(d, "/batch_predict", body)
    check(status == 422 and got.get("error_type") == "validation" and got.get("error"), f"{body}: {status} {got}")
status, h, _ = d.request("GET", "/batch_predict")
check(status == 405 and h.get("allow") == "POST", f"GET: {status} {h.get('allow')}")

m = metric_values(d.request("GET", "/metrics")[2].decode())
n200 = m.get('bertserve_requests_total{route="/batch_predict",method="POST",code="200"}', 0)
check(n200 == -(-len(rows) // 16) + 1, f"/batch_predict 200s counted: {n200}")
check(m.get('bertserve_requests_total{route="/batch_predict",method="POST",code="422"}') == 8, "422s counted")
predictions = sum(v for k, v in m.items() if k.startswith("bertserve_predictions_total"))
check(predictions == 2 * len(rows) + 1, f"predictions counted: {predictions} (want {2 * len(rows) + 1})")
check(d.stop() == 0, "exit status")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

KEY = "batch-key-42"
a = Daemon(build, tiny, "--api-key", KEY)
status, _, got = post(a, "/batch_predict", {"texts": ["Profit rose."]})
check(status == 401 and got.get("error_type") == "unauthorized", f"no key: {status} {got}")
status, _, got = post(a, "/batch_predict", {"texts": ["Profit rose."]}, {"Authorization": "Bearer " + KEY})
check(status == 200 and len(got["results"]) == 1, f"with the key: {status} {got}")
check(a.stop() == 0, "api-key daemon: exit status")

finish("batch_predict_test")
