#!/usr/bin/env bash
# ctest alerting_rules_test: deploy/kubernetes/monitoring/prometheusrule.yaml, checked and
# unit-tested with Prometheus's own promtool. No sockets, no cluster:
#   1. prometheusrule_check.py writes the manifest's .spec (the rule file) to a scratch dir and
#      checks the conventions (severity, annotations, runbook anchors in docs/OPERATIONS.md,
#      metric names listed there, a firing and a quiet test case per alert);
#   2. promtool check rules on that file;
#   3. promtool test rules on alerts_test.yaml (copied next to it; it names leadflow.rules.yaml).
# promtool comes from scripts/setup.sh (Debian's prometheus package, extracted into the cache,
# see PROMTOOL in scripts/lib.sh; LEADFLOW_PROMTOOL overrides). Without it the test fails: it
# never skips.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../../../../scripts/lib.sh
source "$here/../../../../scripts/lib.sh"

if ! "$PROMTOOL" --version >/dev/null 2>&1; then
  die "promtool not found at $PROMTOOL: run scripts/setup.sh (it extracts promtool from Debian's prometheus package), or point LEADFLOW_PROMTOOL at one"
fi
# Debian's python3, where setup.sh's python3-yaml goes (a python3 earlier on PATH, e.g. pyenv's,
# may lack PyYAML).
python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3
"$python" -c 'import yaml' 2>/dev/null ||
  die "python3 with PyYAML is needed: run scripts/setup.sh (it installs python3-yaml)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/leadflow-alerting-rules.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

"$python" "$here/prometheusrule_check.py" \
  "$ROOT/deploy/kubernetes/monitoring/prometheusrule.yaml" "$here/alerts_test.yaml" \
  "$ROOT/docs/OPERATIONS.md" "$tmp/leadflow.rules.yaml"
cp "$here/alerts_test.yaml" "$tmp/alerts_test.yaml"

log "$("$PROMTOOL" --version 2>&1 | head -n1)"
"$PROMTOOL" check rules "$tmp/leadflow.rules.yaml"
"$PROMTOOL" test rules "$tmp/alerts_test.yaml"
