#!/usr/bin/env python3
"""The source layout's rule, checked: a layer includes only the layers below it.

    common  <-  text, engine  <-  server, cli

Every header lives in include/<layer>/ beside the sources' src/<layer>/, and every project
include names its layer ("engine/model.h"), so a file's folder says what it may include.
Besides: libmicrohttpd only in the HTTP transport; cJSON only where JSON is read or written.

usage: check_layers.py [ROOT]        check the tree at ROOT (default: this repository)
       check_layers.py --self-test   also prove each rule fails on a planted violation
"""
import os
import re
import shutil
import sys
import tempfile

MAY_INCLUDE = {
    "common": {"common"},
    "text": {"common", "text"},
    "engine": {"common", "engine"},
    "server": {"common", "text", "engine", "server"},
    "cli": {"common", "text", "engine", "cli"},
}
# System headers that belong to one concern, and the files allowed to include them.
ONLY_IN = {
    "microhttpd.h": {"src/server/http.c"},
    "cjson/cJSON.h": {
        "include/common/json_text.h",  # the JSON helpers' home
        "src/text/tokenizer.c",  # tokenizer_config.json
        "src/text/bpe_load.c",  # BPE's vocab.json, tokenizer_config.json, tokenizer.json
        "src/engine/model.c",  # config.json
        "src/engine/safetensors.c",  # the safetensors header
        "include/server/request.h",  # request bodies in, answers out
        "include/server/infer.h",
        "src/server/infer.c",
        "include/server/tokenize.h",  # /tokenize's answer
        "src/server/tokenize.c",
        "include/server/feedback.h",  # /feedback's answer
        "src/server/http.c",
        "include/server/logger.h",  # log lines are JSON objects
        "src/server/prediction_log.c",  # the prediction log's JSON lines
        "src/cli/cli.c",  # the CLI's JSON lines
        "src/cli/cli_score.c",  # reads the prediction log and feedback JSON lines
    },
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def source_files(root):
    for top in ("src", "include"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h", ".inc")):
                    yield os.path.relpath(os.path.join(dirpath, n), root)


def check(root):
    """Returns the list of violations in the tree at root."""
    problems = []
    for rel in source_files(root):
        parts = rel.split(os.sep)
        if len(parts) != 3 or parts[1] not in MAY_INCLUDE:
            problems.append(f"{rel}: not in a layer folder ({', '.join(MAY_INCLUDE)})")
            continue
        layer = parts[1]
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        for m in INCLUDE.finditer(text):
            kind, name = m.group(1), m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            if kind == '"':
                if name.endswith(".inc") and "/" not in name:
                    continue  # a source fragment beside its source
                target = name.split("/")[0]
                if target not in MAY_INCLUDE:
                    problems.append(f"{rel}:{line}: \"{name}\" does not name its layer")
                elif target not in MAY_INCLUDE[layer]:
                    problems.append(f"{rel}:{line}: {layer} includes \"{name}\" from the {target} layer above it")
                elif not os.path.exists(os.path.join(root, "include", name)):
                    problems.append(f"{rel}:{line}: \"{name}\" is not a header under include/")
            elif name in ONLY_IN and rel not in ONLY_IN[name]:
                problems.append(f"{rel}:{line}: <{name}> is only for {', '.join(sorted(ONLY_IN[name]))}")
    return problems


def self_test(root):
    """Each rule must catch a planted violation, or the check proves nothing."""
    plants = [
        ("src/engine/bert.c", '#include "server/batcher.h"\n', "from the server layer above it"),
        ("src/text/vocab.c", '#include "engine/model.h"\n', "from the engine layer above it"),
        ("src/common/fileio.c", '#include "text/utf8.h"\n', "from the text layer above it"),
        ("src/cli/cli.c", '#include "server/http.h"\n', "from the server layer above it"),
        ("src/server/batcher.c", "#include <microhttpd.h>\n", "<microhttpd.h> is only for"),
        ("src/engine/gemm.c", "#include <cjson/cJSON.h>\n", "<cjson/cJSON.h> is only for"),
        ("src/server/metrics.c", '#include "model.h"\n', "does not name its layer"),
    ]
    failures = 0
    for rel, line, expect in plants:
        with tempfile.TemporaryDirectory() as tmp:
            for top in ("src", "include"):
                shutil.copytree(os.path.join(root, top), os.path.join(tmp, top))
            path = os.path.join(tmp, rel)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            with open(path, "w", encoding="utf-8") as f:
                f.write(line + text)
            found = [p for p in check(tmp) if expect in p and p.startswith(rel)]
            if not found:
                print(f"FAIL: self-test: planting {line.strip()} in {rel} was not caught")
                failures += 1
    return failures


def main():
    args = sys.argv[1:]
    selftest = "--self-test" in args
    args = [a for a in args if a != "--self-test"]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    problems = check(root)
    for p in problems:
        print("FAIL:", p)
    failures = len(problems) + (self_test(root) if selftest else 0)
    n = sum(1 for _ in source_files(root))
    print(f"check_layers: {n} files, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
