#!/usr/bin/env bash
# One-command demo: setup (packages, Kafka jars, build), the full stack (Kafka, Redis, all five
# services), then `leadctl demo`, which feeds a workload through the pipeline and prints the
# report. The stack is left running for poking around unless --down is given.
#   scripts/demo.sh [--down] [leadctl demo args...]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

teardown=0
args=()
for arg in "$@"; do
  if [[ "$arg" == --down ]]; then
    teardown=1
  else
    args+=("$arg")
  fi
done

if ((teardown)); then
  trap 'bash "$ROOT/scripts/stack.sh" down' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi

bash "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/stack.sh" up
[[ -x "$LEADCTL" ]] || die "$LEADCTL not built"

"$LEADCTL" demo --env "$STACK_DIR/stack.env" "${args[@]}"

if ((!teardown)); then
  echo
  bash "$ROOT/scripts/stack.sh" status
  echo
  echo "The stack is still running (endpoints in $STACK_DIR/stack.env, logs in $STACK_DIR/logs)."
  echo "Stop it with: scripts/stack.sh down    (add --purge to also delete Kafka/Redis data)"
fi
