#!/usr/bin/env bash
# The Jenkinsfile: npm-groovy-lint (CodeNarc on Java, pinned in tests/npm/package.json, run
# without its background server so nothing outlives the check) with the Jenkinsfile rule set
# (tests/deploy/groovylint/.groovylintrc.json), failing on any finding including a parse error; then
# the pipeline is checked to run what README and .ci/run run and to deploy the way k8s/ expects.
# usage: tests/deploy/jenkinsfile_test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in node npm java; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (npm-groovy-lint needs node, npm and java 17)"
done
npm_dir=$(tests/npm/install.sh "$root/build/npm")
"$npm_dir/node_modules/.bin/npm-groovy-lint" --noserver --config tests/deploy/groovylint --failon info \
  --output txt Jenkinsfile || fail "npm-groovy-lint found problems in the Jenkinsfile"

# What the pipeline must do (issue 12): the same test commands as .ci/run, and the release path.
for cmd in 'tests/run.sh' 'tests/run.sh --sanitize'; do
  grep -qx "$cmd" .ci/run || fail ".ci/run no longer runs $cmd"
done
# shellcheck disable=SC2016 # the $ are the Jenkinsfile's shell variables, matched literally
for want in "sh 'tests/run.sh'" "sh 'tests/run.sh --sanitize'" "stage('Benchmark smoke')" "archiveArtifacts" \
            'docker build -f docker/Dockerfile' '-t "$IMAGE:$GIT_SHA"' 'docker push "$IMAGE:$GIT_SHA"' \
            'credentialsId: params.HARBOR_CREDENTIALS_ID' 'credentialsId: params.KUBECONFIG_CREDENTIALS_ID' \
            'tools/k8s-set-image.sh "$IMAGE" "$GIT_SHA"' 'kubectl apply -k k8s/' 'kubectl rollout status' \
            'kubectl rollout undo'; do
  grep -qF -- "$want" Jenkinsfile || fail "the Jenkinsfile lacks: $want"
done
[ -x tools/k8s-set-image.sh ] || fail "tools/k8s-set-image.sh (used by the Jenkinsfile) is missing"
echo "jenkinsfile: all checks passed"
