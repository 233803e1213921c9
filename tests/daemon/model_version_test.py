#!/usr/bin/env python3
"""Model versions (issue 20): where a daemon's model version comes from and where it shows.
  - by default the first 12 hex digits of the weights' sha256, known before the model serves
    (/info's weights_sha256 is never "pending" then);
  - a VERSION file in the model directory (its first line, trimmed), and --model-version /
    BERTSERVE_MODEL_VERSION over it;
  - every /predict answer says it: "model_version" in our shapes (single and batch), the
    X-Model-Version header on every shape (TEI's too, and a refusal after the body was read);
    /info (model_version, model_loaded_at, previous_model_version), bertserve_model_info and
    bertserve_predictions_total's model_version label, the request log line;
  - a VERSION file that is empty or not a plain name, or a bad --model-version, stops the
    startup with a message naming it.
usage: model_version_test.py BUILD_DIR"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, metric_values  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
with open(os.path.join(tiny, "model.safetensors"), "rb") as f:
    sha = hashlib.sha256(f.read()).hexdigest()


def model_dir_with_version(content):
    """A copy of tiny-bert (links to its files) with a VERSION file holding content."""
    d = tempfile.mkdtemp(prefix="bertserve-version-")
    for name in os.listdir(tiny):
        os.symlink(os.path.join(tiny, name), os.path.join(d, name))
    if content is not None:
        with open(os.path.join(d, "VERSION"), "wb") as f:
            f.write(content)
    return d


def check_answers(d, want):
    """Every /predict shape carries version want; returns the daemon's /info."""
    status, h, body = d.predict({"text": "Profit rose."})
    check(status == 200 and body.get("model_version") == want, f"single: {status} {body}")
    check(h.get("x-model-version") == want, f"single: X-Model-Version {h.get('x-model-version')!r}")
    status, h, body = d.predict({"texts": ["Profit rose.", "Sales fell."]})
    check(status == 200 and body.get("model_version") == want and len(body.get("results", [])) == 2,
          f"batch: {status} {body}")
    check(h.get("x-model-version") == want, f"batch: X-Model-Version {h.get('x-model-version')!r}")
    status, h, body = d.predict({"inputs": "Profit rose."})
    check(status == 200 and isinstance(body, list), f"TEI shape: {status} {body}")
    check(h.get("x-model-version") == want, f"TEI shape: X-Model-Version {h.get('x-model-version')!r}")
    status, h, body = d.predict({"text": ""})
    check(status == 422 and h.get("x-model-version") == want, f"a 422 after parsing: {status} {h}")
    info = json.loads(d.request("GET", "/info")[2])
    check(info.get("model_version") == want, f"/info model_version {info.get('model_version')!r}")
    check(info.get("previous_model_version", "absent") is None, f"/info previous_model_version: {info}")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info.get("model_loaded_at", "")) is not None,
          f"/info model_loaded_at {info.get('model_loaded_at')!r}")
    m = metric_values(d.request("GET", "/metrics")[2].decode())
    series = [k for k in m if k.startswith("bertserve_predictions_total{")]
    check(series and all(f'model_version="{want}"' in k for k in series), f"predictions_total: {series}")
    check(sum(m[k] for k in series) == 4, f"4 predictions counted (1 + 2 + 1): {[m[k] for k in series]}")
    check(any(k.startswith("bertserve_model_info{") and f'model_version="{want}"' in k for k in m),
          "bertserve_model_info carries the version")
    return info


# The default: the weights' hash, known at once.
d = Daemon(build, tiny)
info = check_answers(d, sha[:12])
check(info.get("weights_sha256") == sha, f"weights_sha256 known at startup when it names the version: {info}")
d.stop()
check(any(f"model_version={sha[:12]}" in line and " request " in line for line in d.lines),
      "the request log line carries the version")

# A VERSION file; the flag and the environment over it.
versioned = model_dir_with_version(b"  release-3.1+build.7 \r\nignored second line\n")
d = Daemon(build, versioned)
check_answers(d, "release-3.1+build.7")
d.stop()
os.environ["BERTSERVE_MODEL_VERSION"] = "from-env"
d = Daemon(build, versioned)
check_answers(d, "from-env")
d.stop()
d = Daemon(build, versioned, "--model-version", "2026-12-04_a")
check_answers(d, "2026-12-04_a")
d.stop()
del os.environ["BERTSERVE_MODEL_VERSION"]

# Bad versions stop the startup, naming the source.
exe = os.path.join(build, "bertserve")
for content, why in [(b"\n \n", "1 to 64 characters"), (b"two words\n", "letters, digits"),
                     (b"v" * 65, "1 to 64 characters")]:
    bad = model_dir_with_version(content)
    p = subprocess.run([exe, "--model", bad, "--port", "0"], capture_output=True, timeout=60)
    err = p.stderr.decode()
    check(p.returncode == 1 and os.path.join(bad, "VERSION") in err and why in err,
          f"VERSION {content!r}: exit {p.returncode}, {err}")
p = subprocess.run([exe, "--model", tiny, "--port", "0", "--model-version", 'a"b'], capture_output=True, timeout=60)
check(p.returncode == 1 and "--model-version" in p.stderr.decode(), f"--model-version a\"b: {p.returncode} {p.stderr}")
finish("model_version_test")
