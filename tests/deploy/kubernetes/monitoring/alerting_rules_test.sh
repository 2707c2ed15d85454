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
# never skips (./lib.sh, shared with dashboard_test.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "$here/lib.sh"
monitoring_test_setup alerting-rules

"$PYTHON" "$here/prometheusrule_check.py" \
  "$ROOT/deploy/kubernetes/monitoring/prometheusrule.yaml" "$here/alerts_test.yaml" \
  "$ROOT/docs/OPERATIONS.md" "$SCRATCH/leadflow.rules.yaml"
cp "$here/alerts_test.yaml" "$SCRATCH/alerts_test.yaml"

"$PROMTOOL" check rules "$SCRATCH/leadflow.rules.yaml"
"$PROMTOOL" test rules "$SCRATCH/alerts_test.yaml"
