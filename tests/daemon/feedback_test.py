#!/usr/bin/env python3
"""POST /feedback (issue 21), tiny-bert over loopback:
  - every /predict (each shape) and /batch_predict answer's texts are recorded under the
    answer's X-Request-Id and index; a feedback for one answers 200 with what was recorded
    (predicted, actual, correct, confidence, model_version);
  - a second feedback for the same prediction is 200 "already_recorded", the first label
    stands, and the confusion matrix counts it once;
  - 404 not_found for an unknown id and for one pushed out of --feedback-window; 422 for an
    unknown label, an index past the request's texts and every malformed body; 400 invalid
    JSON; a list answers 200 with a status per item;
  - bertserve_feedback_total{predicted,actual,model_version} and
    bertserve_feedback_unmatched_total{reason} count exactly what was sent;
    bertserve_unk_token_share and bertserve_truncated_texts_total move with [UNK]s and cut texts;
  - across a reload to a model with other labels, a feedback is scored against the labels of
    the version that made the prediction, and counted under that version;
  - --api-key guards it; the daemon keeps serving after every refusal.
usage: feedback_test.py BUILD_DIR"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
LABELS = ["positive", "negative", "neutral"]
WINDOW = 50


def post(d, path, payload, headers=None):
    status, hdrs, data = d.request("POST", path, payload, headers)
    return status, hdrs, json.loads(data) if data else None


def metrics(d):
    return metric_values(d.request("GET", "/metrics")[2].decode())


def feedback_count(m, predicted, actual, version):
    return m.get(f'bertserve_feedback_total{{predicted="{predicted}",actual="{actual}",model_version="{version}"}}')


d = Daemon(build, tiny, "--feedback-window", str(WINDOW), "--max-texts", "8")
m0 = metrics(d)
check(all(feedback_count(m0, p, a, v) == 0 for p in LABELS for a in LABELS
          for v in [k.split('model_version="')[1].split('"')[0] for k in m0 if k.startswith("bertserve_model_info")]),
      "every confusion cell is present at 0 before any feedback")
check(all(m0.get(f'bertserve_feedback_unmatched_total{{reason="{r}"}}') == 0
          for r in ("unknown_id", "bad_label", "bad_index", "duplicate")), "the unmatched reasons are present at 0")

# A prediction under a chosen id, and its feedback.
status, h, one = post(d, "/predict", {"text": "Operating profit rose to EUR 13.1 mn"}, {"X-Request-Id": "req-1"})
check(status == 200 and h.get("x-request-id") == "req-1", f"predict: {status} {h}")
version = one["model_version"]
wrong = next(l for l in LABELS if l != one["prediction"])
status, _, got = post(d, "/feedback", {"request_id": "req-1", "label": one["prediction"]})
check(status == 200 and got == {"request_id": "req-1", "index": 0, "status": "recorded", "predicted": one["prediction"],
                                "actual": one["prediction"], "correct": True, "confidence": got.get("confidence"),
                                "model_version": version}
      and abs(got["confidence"] - one["confidence"]) < 1e-6, f"feedback: {status} {got}")
# Idempotence: the first label stands, answered again, counted once.
status, _, got = post(d, "/feedback", {"request_id": "req-1", "label": wrong})
check(status == 200 and got.get("status") == "already_recorded" and got.get("actual") == one["prediction"]
      and got.get("correct") is True, f"second feedback: {status} {got}")

# A generated id (no X-Request-Id sent), a multi-text request and its indexes, /batch_predict, TEI.
texts = ["Profit rose.", "The company cut 500 jobs.", "The meeting is on Monday."]
status, h, many = post(d, "/predict", {"texts": texts})
gen_id = h.get("x-request-id")
check(status == 200 and gen_id and len(gen_id) == 16, f"generated id: {h}")
status, hb, batch = post(d, "/batch_predict", {"texts": texts}, {"X-Request-Id": "batch:7"})
status_t, ht, tei = post(d, "/predict", {"inputs": "Profit rose."}, {"X-Request-Id": "tei.1"})
check(status == 200 and status_t == 200, "batch_predict and TEI answered")
sent = {}  # (predicted, actual) -> feedbacks counted
sent[(one["prediction"], one["prediction"])] = 1
items = []
for i, r in enumerate(many["results"]):
    actual = LABELS[(LABELS.index(r["prediction"]) + i) % 3]  # index 0 right, 1 and 2 wrong
    items.append({"request_id": gen_id, "index": i, "label": actual})
    sent[(r["prediction"], actual)] = sent.get((r["prediction"], actual), 0) + 1
status, _, got = post(d, "/feedback", items)
check(status == 200 and [x["status"] for x in got["results"]] == ["recorded"] * 3
      and [x["correct"] for x in got["results"]] == [True, False, False]
      and [x["index"] for x in got["results"]] == [0, 1, 2], f"list: {status} {got}")
r = batch["results"][2]
status, _, got = post(d, "/feedback", {"request_id": "batch:7", "index": 2, "label": r["prediction"]})
check(status == 200 and got["predicted"] == r["prediction"] and got["correct"], f"batch_predict: {status} {got}")
sent[(r["prediction"], r["prediction"])] = sent.get((r["prediction"], r["prediction"]), 0) + 1
tei_label = tei[0]["label"]
status, _, got = post(d, "/feedback", {"request_id": "tei.1", "label": tei_label})
check(status == 200 and got["predicted"] == tei_label, f"TEI shape: {status} {got}")
sent[(tei_label, tei_label)] = sent.get((tei_label, tei_label), 0) + 1

# A list mixing outcomes: 200, one status per item, in order.
status, _, got = post(d, "/feedback", [{"request_id": "batch:7", "index": 0, "label": "neutral"},
                                       {"request_id": "nope", "label": "neutral"},
                                       {"request_id": "batch:7", "index": 1, "label": "bogus"},
                                       {"request_id": "batch:7", "index": 9, "label": "neutral"},
                                       {"request_id": "batch:7", "index": 2, "label": "neutral"}])
statuses = [x.get("status") for x in got["results"]] if status == 200 else []
check(statuses == ["recorded", "not_found", "invalid_label", "invalid_index", "already_recorded"]
      and all(x.get("error") for x in got["results"][1:4]), f"mixed list: {status} {got}")
sent[(batch["results"][0]["prediction"], "neutral")] = sent.get((batch["results"][0]["prediction"], "neutral"), 0) + 1

# Single-item refusals: status, error_type, a sentence.
for body, want, kind in [
        ({"request_id": "never-seen", "label": "positive"}, 404, "not_found"),
        ({"request_id": "req-1", "label": "Positive"}, 422, "validation"),  # labels are exact
        ({"request_id": "req-1", "index": 1, "label": "positive"}, 422, "validation"),
        ({"request_id": gen_id, "index": 3, "label": "positive"}, 422, "validation"),
        ({"request_id": "req-1", "index": -1, "label": "positive"}, 422, "validation"),
        ({"request_id": "req-1", "index": 0.5, "label": "positive"}, 422, "validation"),
        ({"request_id": "req-1", "index": "0", "label": "positive"}, 422, "validation"),
        ({"request_id": "req-1"}, 422, "validation"),
        ({"label": "positive"}, 422, "validation"),
        ({"request_id": "", "label": "positive"}, 422, "validation"),
        ({"request_id": "a b", "label": "positive"}, 422, "validation"),
        ({"request_id": "x" * 65, "label": "positive"}, 422, "validation"),
        ({"request_id": "req-1", "label": ""}, 422, "validation"),
        ({"request_id": "req-1", "label": 3}, 422, "validation"),
        ({"request_id": "req-1", "label": "positive", "text": "x"}, 422, "validation"),
        ([], 422, "validation"),
        ([{"request_id": "req-1", "label": "positive"}] * 9, 422, "validation"),  # over --max-texts 8
        ([{"request_id": "req-1", "label": "positive"}, 7], 422, "validation"),
        ]:
    status, _, got = post(d, "/feedback", body)
    check(status == want and got.get("error_type") == kind and got.get("error"), f"{str(body)[:80]}: {status} {got}")
for raw, want in [(b'{"request_id": "req-1"', 400), (b"", 400), (b'{"request_id":"req-1","label":"positive"} x', 400),
                  (b'"req-1"', 422)]:
    status, _, got = d.request("POST", "/feedback", raw, {"Content-Type": "application/json"})
    check(status == want, f"{raw}: {status} {got}")
status, _, got = d.request("POST", "/feedback", b'{"request_id":"req-1","label":"positive\\u0000"}',
                           {"Content-Type": "application/json"})
check(status == 422, f"a label with NUL is not the label: {status} {got}")
status, h, _ = d.request("GET", "/feedback")
check(status == 405 and h.get("allow") == "POST", f"GET: {status}")
status, _, _ = d.request("POST", "/feedback", b"{}", {"Content-Type": "text/plain"})
check(status == 415, f"text/plain: {status}")

# The metrics count exactly what was sent.
m = metrics(d)
for p in LABELS:
    for a in LABELS:
        check(feedback_count(m, p, a, version) == sent.get((p, a), 0),
              f"feedback_total {p}->{a}: {feedback_count(m, p, a, version)} != {sent.get((p, a), 0)}")
unmatched = {r: m.get(f'bertserve_feedback_unmatched_total{{reason="{r}"}}') for r in
             ("unknown_id", "bad_label", "bad_index", "duplicate")}
check(unmatched == {"unknown_id": 2, "bad_label": 3, "bad_index": 3, "duplicate": 2}, f"unmatched: {unmatched}")
check(m.get('bertserve_requests_total{route="/feedback",method="POST",code="200"}') == 6, "200s on route /feedback")

# The window: after WINDOW more predictions, req-1 is forgotten (404), the newest still found.
for k in range(WINDOW // 5):
    post(d, "/predict", {"texts": ["Profit rose."] * 5}, {"X-Request-Id": f"fill-{k}"})
status, _, got = post(d, "/feedback", {"request_id": "batch:7", "index": 1, "label": "neutral"})
check(status == 404 and got.get("error_type") == "not_found", f"expired: {status} {got}")
status, _, got = post(d, "/feedback", {"request_id": f"fill-{WINDOW // 5 - 1}", "index": 4, "label": "neutral"})
check(status == 200 and got.get("status") == "recorded", f"newest kept: {status} {got}")
# A reused X-Request-Id: the newest prediction under it takes the feedback.
post(d, "/predict", {"texts": ["a", "b"]}, {"X-Request-Id": "reused"})
post(d, "/predict", {"text": "Profit rose."}, {"X-Request-Id": "reused"})
status, _, got = post(d, "/feedback", {"request_id": "reused", "index": 1, "label": "neutral"})
check(status == 200, f"reused id, index 1 of the older request: {status} {got}")

# Drift: [UNK] shares and truncations.
before = metrics(d)
# tiny-bert's vocabulary has no parrot and no runes: [UNK] [UNK] profit, a share of 2/3.
post(d, "/predict", {"texts": ["\U0001f99c \u16a0\u16a2\u16a6 Profit", "profit " * 300]})
after = metrics(d)


def grew(key):
    return after[key] - before[key]


check(grew("bertserve_unk_token_share_count") == 2 and grew('bertserve_unk_token_share_bucket{le="0"}') == 1
      and grew('bertserve_unk_token_share_bucket{le="0.5"}') == 1 and grew('bertserve_unk_token_share_bucket{le="1"}') == 2
      and abs(grew("bertserve_unk_token_share_sum") - 2 / 3) < 1e-6, "unk share observed: 0 and 2/3")
check(after["bertserve_truncated_texts_total"] - before["bertserve_truncated_texts_total"] == 1, "truncated counted")
status, _, got = post(d, "/predict", {"text": "Profit rose."})
check(status == 200, "still serving")
check(d.stop() == 0, "exit status")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

# A reload to tiny-bert relabelled bullish/bearish/flat: the old prediction keeps its labels.
work = tempfile.mkdtemp(prefix="bertserve-feedback-")
relabelled = os.path.join(work, "relabelled")
os.makedirs(relabelled)
for f in os.listdir(tiny):
    if f != "config.json":
        os.symlink(os.path.join(tiny, f), os.path.join(relabelled, f))
cfg = json.load(open(os.path.join(tiny, "config.json")))
cfg["id2label"] = {"0": "bullish", "1": "bearish", "2": "flat"}
cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
json.dump(cfg, open(os.path.join(relabelled, "config.json"), "w"))
ADMIN = {"Authorization": "Bearer admin-7"}
r = Daemon(build, tiny, "--model-version", "v1", "--admin-key", "admin-7")
status, _, old = post(r, "/predict", {"text": "Profit rose."}, {"X-Request-Id": "before-reload"})
status, _, got = post(r, "/admin/reload", {"model": relabelled, "version": "v2"}, ADMIN)
check(status == 200 and got.get("model_version") == "v2", f"reload: {status} {got}")
status, _, new = post(r, "/predict", {"text": "Profit rose."}, {"X-Request-Id": "after-reload"})
check(status == 200 and new["prediction"] in ("bullish", "bearish", "flat"), f"new labels: {new}")
status, _, got = post(r, "/feedback", {"request_id": "before-reload", "label": "bullish"})
check(status == 422 and "positive, negative, neutral" in got.get("error", ""), f"a new label for an old prediction: {status} {got}")
status, _, got = post(r, "/feedback", {"request_id": "before-reload", "label": old["prediction"]})
check(status == 200 and got.get("model_version") == "v1" and got.get("correct"), f"old prediction: {status} {got}")
status, _, got = post(r, "/feedback", {"request_id": "after-reload", "label": "flat"})
check(status == 200 and got.get("model_version") == "v2", f"new prediction: {status} {got}")
m = metrics(r)
check(feedback_count(m, old["prediction"], old["prediction"], "v1") == 1
      and feedback_count(m, new["prediction"], "flat", "v2") == 1
      and feedback_count(m, "bullish", "positive", "v1") is None, "counted under each version, in its own labels")
check(r.stop() == 0, "reload daemon: exit status")
check(not r.sanitizer_reports(), f"sanitizer reports: {r.sanitizer_reports()}")
shutil.rmtree(work)

KEY = "fb-key-42"
a = Daemon(build, tiny, "--api-key", KEY)
auth = {"Authorization": "Bearer " + KEY}
status, _, got = post(a, "/feedback", {"request_id": "x", "label": "positive"})
check(status == 401 and got.get("error_type") == "unauthorized", f"no key: {status} {got}")
status, _, got = post(a, "/feedback", {"request_id": "x", "label": "positive"}, auth)
check(status == 404, f"with the key: {status} {got}")
check(a.stop() == 0, "api-key daemon: exit status")

finish("feedback_test")
