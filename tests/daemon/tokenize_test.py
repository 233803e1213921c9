#!/usr/bin/env python3
"""POST /tokenize (TEI's shape), tiny-bert over loopback:
  - every golden unit case and special-literal case (but the empty text: 422, as TEI), sent in batches of --max-texts: the ids
    are the golden ids and the ids, offsets and special flags are bertserve-cli tokenize's
    (whose offsets ctest tokenizer_offsets checks against HF tokenizers); each token's "text"
    is its bytes of the input; the template's [CLS]/[SEP] are special with null offsets;
  - a single string answers a list of one list; "add_special_tokens": false leaves the special
    tokens out and nothing else; long texts are not truncated;
  - errors as JSON kinds: invalid JSON 400, bad shapes and texts 422, the token bound 413,
    GET 405 (Allow: POST), a wrong content type 415;
  - --api-key guards /tokenize as it does /predict; /metrics counts route="/tokenize".
usage: tokenize_test.py BUILD_DIR"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
golden_dir = os.path.join(shared, "golden", "tokenizer")
rows = [json.loads(l) for name in ("cases.jsonl", "special_literals.jsonl")
        for l in open(need(os.path.join(golden_dir, name)), encoding="utf-8")]
# TEI refuses an empty input (422, checked below); every other golden text is compared.
check(sum(r["text"] == "" for r in rows) == 1, "the goldens hold one empty text")
rows = [r for r in rows if r["text"] != ""]
MAX_TEXTS = 64


def cli_tokenize(texts):
    """bertserve-cli tokenize's JSON line for each text (read as JSON, as the daemon reads it)."""
    out = subprocess.run([need(os.path.join(build, "bertserve-cli")), "tokenize", "--model", tiny, "--jsonl"],
                         input="".join(json.dumps(t) + "\n" for t in texts).encode(), capture_output=True,
                         check=True).stdout.decode().splitlines()
    check(len(out) == len(texts), f"bertserve-cli printed {len(out)} lines for {len(texts)} texts")
    return [json.loads(l) for l in out]


def tokenize(d, payload, headers=None):
    status, hdrs, data = d.request("POST", "/tokenize", payload, headers)
    return status, hdrs, json.loads(data) if data else None


def as_read(text):
    """The text as the daemon sees it: a JSON \\u0000 is read as U+FFFD (see README, Tokenizer)."""
    return text.replace("\0", "\ufffd")


def check_tokens(row, want, got):
    """got: the daemon's token list for row; want: bertserve-cli's line for the same text."""
    what = f"{row['id']} {row['text']!r}"
    ids = [t["id"] for t in got]
    if not check(ids == row["ids"] == want["ids"], f"{what}: ids {ids}, golden {row['ids']}, cli {want['ids']}"):
        return
    raw = as_read(row["text"]).encode()
    for i, t in enumerate(got):
        start, stop = want["offsets"][i]
        special = i in (0, len(got) - 1)
        ok = t["special"] == special and set(t) == {"id", "text", "special", "start", "stop"}
        if special:
            ok = ok and t["start"] is None and t["stop"] is None and t["text"] == want["tokens"][i]
        else:
            ok = ok and (t["start"], t["stop"]) == (start, stop) and t["text"] == raw[start:stop].decode()
        if not check(ok, f"{what}: token {i} {t}, cli offsets {want['offsets'][i]}"):
            return


d = Daemon(build, tiny, "--max-texts", str(MAX_TEXTS))
compared = 0
for k in range(0, len(rows), MAX_TEXTS):
    chunk = rows[k:k + MAX_TEXTS]
    texts = [r["text"] for r in chunk]
    status, _, got = tokenize(d, {"inputs": texts})
    if not check(status == 200 and isinstance(got, list) and len(got) == len(chunk),
                 f"batch at {k}: {status} {str(got)[:200]}"):
        continue
    for row, want, tokens in zip(chunk, cli_tokenize(texts), got):
        check_tokens(row, want, tokens)
        compared += 1
check(compared == len(rows), f"compared {compared} of {len(rows)} golden cases")

# One string: a list of one list; add_special_tokens false drops [CLS]/[SEP] only.
text = "Operating profit rose to EUR 13.1 mn"
status, _, one = tokenize(d, {"inputs": text})
check(status == 200 and len(one) == 1 and one[0][0]["text"] == "[CLS]" and one[0][-1]["text"] == "[SEP]",
      f"one string: {status} {one}")
status, _, plain = tokenize(d, {"inputs": text, "add_special_tokens": False})
check(status == 200 and plain == [one[0][1:-1]], f"add_special_tokens false: {status} {plain}")
check([t["text"] for t in plain[0]][-4:] == ["13", ".", "1", "mn"] and plain[0][-1]["start"] == 34,
      f"pieces and offsets: {plain}")
# Not truncated: 300 words are 302 tokens although tiny-bert's limit is 128.
status, _, long = tokenize(d, {"inputs": "profit " * 300})
check(status == 200 and len(long[0]) == 302, f"a long text is not truncated: {status} {len(long[0]) if long else None}")

# Errors.
cases = [
    (b"{", 400, "invalid_json"),
    (b'{"text": "a"}', 422, "validation"),
    (b'{"inputs": 3}', 422, "validation"),
    (b'{"inputs": []}', 422, "validation"),
    (b'{"inputs": ["a", 3]}', 422, "validation"),
    (b'{"inputs": [["a", "b"]]}', 422, "validation"),
    (b'{"inputs": ""}', 422, "validation"),
    (b'{"inputs": ["a", ""]}', 422, "validation"),
    (b'{"inputs": "a", "add_special_tokens": "no"}', 422, "validation"),
    (b'{"inputs": "bad \xff byte"}', 422, "validation"),
    (json.dumps({"inputs": ["a"] * (MAX_TEXTS + 1)}).encode(), 422, "validation"),
    # the bound: --max-texts x the token limit (64 x 128), here over it in one text
    (json.dumps({"inputs": "profit " * (MAX_TEXTS * 128)}).encode(), 413, "validation"),
]
for body, want_status, want_type in cases:
    status, _, data = d.request("POST", "/tokenize", body, {"Content-Type": "application/json"})
    got = json.loads(data)
    check(status == want_status and got.get("error_type") == want_type and got.get("error"),
          f"{body[:60]!r}: {status} {got}")
status, h, data = d.request("GET", "/tokenize")
check(status == 405 and h.get("allow") == "POST", f"GET /tokenize: {status} {h.get('allow')} {data!r}")
status, _, data = d.request("POST", "/tokenize", b'{"inputs": "a"}', {"Content-Type": "text/plain"})
check(status == 415, f"text/plain: {status} {data!r}")
status, _, _ = d.request("GET", "/health")
check(status == 200, "still serving after the errors")

m = metric_values(d.request("GET", "/metrics")[2].decode())
ok200 = m.get('bertserve_requests_total{route="/tokenize",method="POST",code="200"}', 0)
check(ok200 == -(-len(rows) // MAX_TEXTS) + 3, f"/tokenize 200s counted: {ok200}")
check(m.get('bertserve_requests_total{route="/tokenize",method="POST",code="413"}') == 1, "413 counted")
check(d.stop() == 0, "exit status")
check(not d.sanitizer_reports(), f"sanitizer reports: {d.sanitizer_reports()}")

# --api-key guards /tokenize like /predict.
KEY = "tok-3n-key"
a = Daemon(build, tiny, "--api-key", KEY)
status, h, got = tokenize(a, {"inputs": "profit"})
check(status == 401 and got.get("error_type") == "unauthorized" and h.get("www-authenticate") == "Bearer",
      f"no key: {status} {got}")
status, _, got = tokenize(a, {"inputs": "profit"}, {"Authorization": "Bearer " + KEY})
check(status == 200 and [t["id"] for t in got[0]] == [101, 5618, 102], f"with the key: {status} {got}")
check(a.stop() == 0, "api-key daemon: exit status")
check(not a.sanitizer_reports(), f"sanitizer reports: {a.sanitizer_reports()}")

finish("tokenize_test")
