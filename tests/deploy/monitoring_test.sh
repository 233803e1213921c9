#!/usr/bin/env bash
# Monitoring (k8s/monitoring/): promtool check rules; promtool test rules (every alert fires
# on a bad series and stays silent on a healthy one); then tests/deploy/monitoring_test.py runs a real
# Prometheus on loopback with the example scrape config's relabelling and the rules, scraping
# the real daemon, and checks the target is up, every rule and dashboard query evaluates, and
# every metric they use is one the daemon exports; predictions with feedback of known right and
# wrong answers give, through the scrape, the accuracy the feedback had.
# usage: tests/deploy/monitoring_test.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=$(cd "${1:-build}" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in promtool prometheus node npm python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install prometheus; node/npm: machine image)"
done
mon=k8s/monitoring
work=$build/monitoring
rm -rf "$work"
mkdir -p "$work"

promtool check rules "$mon/alerts.yml"
(cd "$mon" && promtool test rules alerts_test.yml alerts_drift_test.yml alerts_feedback_test.yml)

npm_dir=$(tests/npm/install.sh "$root/build/npm")
for f in prometheus alerts alerts_test alerts_drift_test alerts_feedback_test; do
  node tests/deploy/yaml2json.mjs "$npm_dir" "$mon/$f.yml" "$work/$f.json"
done
python3 tests/deploy/monitoring_test.py "$build" "$work"
