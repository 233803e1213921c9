#!/usr/bin/env bash
# bertserve-cli tokenize end to end: plain lines, --jsonl, --pair, --max-length, errors.
set -euo pipefail
cli=$1
here=$(cd "$(dirname "$0")" && pwd)
shared=${BERTSERVE_SHARED:-$here/../../../shared}
model=$shared/models/finbert
[ -f "$model/vocab.txt" ] || { echo "FAIL: $model/vocab.txt missing (set BERTSERVE_SHARED)"; exit 1; }
fail=0
expect() { # name, got, want
  if [ "$2" != "$3" ]; then echo "FAIL $1:"; echo "  got  $2"; echo "  want $3"; fail=1; fi
}

got=$(printf 'Operating profit rose 25%% to EUR 10 million.\n' | "$cli" tokenize --model "$model")
expect plain "$got" '{"ids":[101,4082,5618,3123,2423,1003,2000,7327,2099,2184,2454,1012,102],"tokens":["[CLS]","operating","profit","rose","25","%","to","eu","##r","10","million",".","[SEP]"],"type_ids":[0,0,0,0,0,0,0,0,0,0,0,0,0],"offsets":[[0,0],[0,9],[10,16],[17,21],[22,24],[24,25],[26,28],[29,31],[31,32],[33,35],[36,43],[43,44],[0,0]],"truncated":false}'

got=$(printf '"Net\\nsales\\u0000 rose"\n' | "$cli" tokenize --model "$model" --jsonl)
# the \u0000 is read as U+FFFD (cJSON strings end at a NUL): three bytes in the offsets
expect jsonl "$got" '{"ids":[101,5658,4341,3123,102],"tokens":["[CLS]","net","sales","rose","[SEP]"],"type_ids":[0,0,0,0,0],"offsets":[[0,0],[0,3],[4,9],[13,17],[0,0]],"truncated":false}'

got=$(printf '["Profit rose", "Loss"]\n' | "$cli" tokenize --model "$model" --pair --max-length 4)
# budget 1 token for 2 + 1: both count as 1 (capped at the budget), a tie goes to the second
expect pair "$got" '{"ids":[101,102,3279,102],"tokens":["[CLS]","[SEP]","loss","[SEP]"],"type_ids":[0,0,1,1],"offsets":[[0,0],[0,0],[0,4],[0,0]],"truncated":true}'

set +e
got=$(printf 'fine\nbad \xff byte\n' | "$cli" tokenize --model "$model"); status=$?
set -e
expect "invalid utf-8 status" "$status" 1
expect "invalid utf-8 line" "$(echo "$got" | sed -n 2p)" '{"error":"the text is not valid UTF-8 (at byte offset 4)"}'

set +e
err=$("$cli" tokenize --model /nonexistent 2>&1 </dev/null); status=$?
set -e
expect "missing model status" "$status" 1
case "$err" in *"/nonexistent/vocab.txt"*) ;; *) echo "FAIL missing model message: $err"; fail=1 ;; esac

[ $fail = 0 ] && echo "cli_tokenize: all checks passed"
exit $fail
