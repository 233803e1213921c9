#!/usr/bin/env bash
# Links the default model, finsent-mini (a 4-layer financial sentiment BERT), from the shared
# assets into models/finsent-mini, so `--model models/finsent-mini` works from the project root.
# The shared assets are found at $BERTSERVE_SHARED, or ../shared beside the project.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${BERTSERVE_SHARED:-$here/../../shared}
src=$shared/models/finsent-mini
for f in config.json vocab.txt model.safetensors; do
  [ -f "$src/$f" ] || { echo "link-default: $src/$f not found (set BERTSERVE_SHARED)" >&2; exit 1; }
done
ln -sfn "$(cd "$src" && pwd)" "$here/finsent-mini"
echo "models/finsent-mini -> $(readlink "$here/finsent-mini")"
