#!/usr/bin/env bash
# ctest dashboard_test: deploy/kubernetes/monitoring/dashboards/leadflow.json, the Grafana
# dashboard, checked without Grafana. No sockets, no cluster:
#   1. dashboard_check.py checks the conventions (unique panel ids, titles, the ${datasource}
#      variable everywhere, known variables, metrics listed in docs/OPERATIONS.md, labels the
#      code sets, the ConfigMap generator) and writes every query, its variables replaced by
#      valid values, to a scratch rule file as recording rules;
#   2. promtool check rules on that file: every query is valid PromQL.
# Like alerting_rules_test it fails without promtool (scripts/setup.sh) or PyYAML: ./lib.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "$here/lib.sh"
monitoring_test_setup dashboard

monitoring="$ROOT/deploy/kubernetes/monitoring"
"$PYTHON" "$here/dashboard_check.py" \
  "$monitoring/dashboards/leadflow.json" "$monitoring/kustomization.yaml" \
  "$ROOT/docs/OPERATIONS.md" "$ROOT" "$SCRATCH/dashboard.rules.yaml"
"$PROMTOOL" check rules "$SCRATCH/dashboard.rules.yaml"
