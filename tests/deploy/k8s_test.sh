#!/usr/bin/env bash
# The Kubernetes manifests, offline: `kubectl kustomize k8s/` renders them; every rendered object
# (and the HPA with its commented in-flight example uncommented) is validated against the API
# schemas (kubernetes-models) and for unknown fields (TypeScript, tests/deploy/k8s_validate.mjs); then
# tests/deploy/k8s_consistency_test.py holds them against the real daemon (env names from --help,
# probe and scrape paths, the HPA example's metric in a real /metrics) and against each other;
# tools/k8s-set-image.sh (the Jenkinsfile's) is run on a copy.
# usage: tests/deploy/k8s_test.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=$(cd "${1:-build}" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in kubectl node npm python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (kubectl comes with the machine image; see .ci/run)"
done
work=$build/k8s
rm -rf "$work"
mkdir -p "$work"

kubectl kustomize k8s/ >"$work/rendered.yaml" || fail "kubectl kustomize k8s/ failed"
echo "rendered: $(grep -c '^kind:' "$work/rendered.yaml") objects ($(kubectl version --client 2>/dev/null | tr '\n' ' '))"
npm_dir=$(tests/npm/install.sh "$root/build/npm")
node tests/deploy/k8s_validate.mjs "$npm_dir" "$work/rendered.yaml" k8s/hpa.yaml "$work/ts"
python3 tests/deploy/k8s_consistency_test.py "$build" "$work/ts/objects.json"

cp -r k8s "$work/k8s-copy"
tools/k8s-set-image.sh registry.test/ml/bertserve 0123abc "$work/k8s-copy" >/dev/null
grep -q 'image: registry.test/ml/bertserve:0123abc' <(kubectl kustomize "$work/k8s-copy") ||
  fail "tools/k8s-set-image.sh did not set the image"
cmp -s k8s/kustomization.yaml "$work/k8s-copy/kustomization.yaml" && fail "tools/k8s-set-image.sh changed nothing"
echo "k8s: all checks passed"
