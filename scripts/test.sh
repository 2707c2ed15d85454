#!/usr/bin/env bash
# Runs the whole test suite against a real stack: setup (packages, Kafka jars, build), Kafka +
# the per-service Redis instances (`stack.sh up --infra`), then ctest, then (full suite only) a
# small fault run on a stack of its own (scripts/fault.sh). The stack is always torn down again,
# and the script exits with ctest's status, or the fault run's.
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R routing -V
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start=$SECONDS
ctest_log="$BUILD_DIR/ctest-output.log"
stack_started=0
ctest_pid=""

# shellcheck disable=SC2317 # only reached through the EXIT trap
finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # Interrupted while ctest runs: stop it and its tests (its process group, see below) before
  # pulling the stack from under them.
  if [[ -n "$ctest_pid" ]] && pid_running "$ctest_pid"; then
    log "test.sh: interrupted; stopping ctest"
    kill -TERM -- "-$ctest_pid" 2>/dev/null || true
    wait_for --quiet 10 ctest negate pid_running "$ctest_pid" || true
    kill -KILL -- "-$ctest_pid" 2>/dev/null || true
  fi
  if ((stack_started)); then
    bash "$ROOT/scripts/stack.sh" down || warn "stack.sh down failed; check scripts/stack.sh status"
  fi
  local elapsed=$((SECONDS - start))
  log "test.sh: exit $rc, total elapsed ${elapsed}s ($((elapsed / 60))m$((elapsed % 60))s)"
  # Teardown logs come after ctest's summary; repeat it so the run still ends with it.
  if [[ -f "$ctest_log" ]]; then
    grep -E '^[0-9]+% tests passed|^No tests were found' "$ctest_log" | tail -n1 || true
  fi
  exit "$rc"
}
trap finish EXIT
# Turn signals into a normal exit so the EXIT trap (teardown) runs.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Idempotent and quick when everything is already there; on a fresh machine it does it all.
bash "$ROOT/scripts/setup.sh"

rm -f "$ctest_log"
stack_started=1
bash "$ROOT/scripts/stack.sh" up --infra

export LEADFLOW_TEST_ENV="$STACK_DIR/stack.env"
log "test.sh: running ctest (LEADFLOW_TEST_ENV=$LEADFLOW_TEST_ENV)"
# ctest runs as a background job that we wait for, because bash defers traps until a foreground
# command finishes: a SIGTERM would otherwise leave ctest (and the stack) running to the end.
# setsid gives ctest and its tests their own process group, so an interrupt can stop the lot
# (signalling ctest alone orphans the running tests). `trap -` undoes the SIGINT/SIGQUIT
# ignoring bash gives background jobs, which every test process would otherwise inherit.
(
  trap - INT QUIT
  exec setsid ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 600 \
    -O "$ctest_log" "$@"
) &
ctest_pid=$!
rc=0
wait "$ctest_pid" || rc=$?
ctest_pid=""

# The fault run at a small scale, on a stack of its own (other ports, other data dir) after
# ctest, so the shared test broker is never restarted under a test. Only for the full suite
# (no ctest arguments); LEADFLOW_SKIP_FAULT=1 skips it.
if ((rc == 0 && $# == 0)) && [[ "${LEADFLOW_SKIP_FAULT:-0}" != 1 ]]; then
  log "test.sh: fault run (scripts/fault.sh, small scale)"
  bash "$ROOT/scripts/fault.sh" --leads 1200 --rate 20 --kills 1 --seed 7 --settle 240 \
    --json "$BUILD_DIR/fault-ci.json" || rc=$?
  ((rc == 0)) && log "test.sh: fault run passed (0 lost, 0 duplicate effects)"
fi
exit "$rc"
