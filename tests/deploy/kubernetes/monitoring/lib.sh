# shellcheck shell=bash
# Shared by the monitoring tests (alerting_rules_test.sh, dashboard_test.sh): sourced, it brings
# scripts/lib.sh (ROOT, PROMTOOL, log, die) and monitoring_test_setup. These tests fail without
# their tools, with the fix in the message: they never skip.

# shellcheck source=../../../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../../scripts/lib.sh"

# monitoring_test_setup NAME: dies unless promtool runs and python3 has PyYAML; sets PYTHON and
# SCRATCH, a scratch directory removed on exit.
#   - promtool comes from scripts/setup.sh (Debian's prometheus package, extracted into the
#     cache, see PROMTOOL in scripts/lib.sh; LEADFLOW_PROMTOOL overrides);
#   - PYTHON is Debian's python3 where there is one, where setup.sh's python3-yaml goes (a
#     python3 earlier on PATH, e.g. pyenv's, may lack PyYAML).
monitoring_test_setup() {
  if ! "$PROMTOOL" --version >/dev/null 2>&1; then
    die "promtool not found at $PROMTOOL: run scripts/setup.sh (it extracts promtool from Debian's prometheus package), or point LEADFLOW_PROMTOOL at one"
  fi
  log "$("$PROMTOOL" --version 2>&1 | head -n1)"
  PYTHON=python3
  [[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
  "$PYTHON" -c 'import yaml' 2>/dev/null ||
    die "python3 with PyYAML is needed: run scripts/setup.sh (it installs python3-yaml)"
  SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/leadflow-$1.XXXXXX")"
  trap 'rm -rf "$SCRATCH"' EXIT
}
