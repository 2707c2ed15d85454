#!/usr/bin/env bash
# Fault run: `leadctl load` at a fixed rate through a stack of its own while every service is
# SIGKILLed at random moments (--kills times each) and restarted, every redis-server (AOF on) is
# restarted and the Kafka broker is restarted; then the load tool's verifier must report 0 leads
# unaccounted for and 0 duplicate effects. Prints, and writes as JSON, the faults with their
# times and how long recovery took: from the end of the last fault (and from the last
# submission) until every accepted lead was routed or nurtured.
#
#   scripts/fault.sh [--leads N] [--rate R] [--kills K] [--seed S] [--json FILE] [--settle S]
#
# The stack is its own: LEADFLOW_STACK_DIR (default build/fault-stack) and ports shifted by
# LEADFLOW_FAULT_PORT_OFFSET (default LEADFLOW_PORT_OFFSET + 100), so it never touches the
# stack of scripts/test.sh or a demo. It is purged before and torn down after the run.
# Exit status: 0 when nothing was lost or doubled.
set -euo pipefail

leads=3000
rate=50
kills=5
seed=$RANDOM
json=""
settle=300
while (($#)); do
  case "$1" in
    --leads) leads="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --settle) settle="$2"; shift 2 ;;
    *) echo "usage: $0 [--leads N] [--rate R] [--kills K] [--seed S] [--json FILE] [--settle S]" >&2
       exit 2 ;;
  esac
done

export LEADFLOW_PORT_OFFSET="${LEADFLOW_FAULT_PORT_OFFSET:-$((${LEADFLOW_PORT_OFFSET:-0} + 100))}"
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"
export LEADFLOW_STACK_DIR="${LEADFLOW_STACK_DIR:-$BUILD_DIR/fault-stack}"
STACK_DIR="$LEADFLOW_STACK_DIR"
stack() { bash "$ROOT/scripts/stack.sh" "$@"; }
run_dir="$STACK_DIR/run"
load_pid=""

# shellcheck disable=SC2317 # only reached through the EXIT trap
finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n "$load_pid" ]] && pid_running "$load_pid"; then
    kill -TERM "$load_pid" 2>/dev/null || true
  fi
  local down_log rc_down=0
  down_log="$(stack down --purge 2>&1)" || rc_down=$?
  ((rc_down == 0)) || warn "fault: stack.sh down failed; see stack.sh status"
  # A service that ignores SIGTERM is stuck somewhere (a wait that never ends): say so, it is the
  # first thing to look for when leads went missing.
  grep -E "still running after" <<<"$down_log" | sed 's/^/fault: did not stop on SIGTERM: /' >&2 || true
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

[[ -x "$LEADCTL" ]] || die "fault: $LEADCTL not built"
RANDOM=$seed
log "fault: stack in $STACK_DIR, port offset $LEADFLOW_PORT_OFFSET, seed $seed"
stack down --purge
stack up
mkdir -p "$run_dir"

# The faults, in random order: every service killed `kills` times, every redis and the broker
# restarted once.
faults=()
for ((i = 0; i < kills; ++i)); do
  for svc in "${SERVICES[@]}"; do faults+=("kill:$svc"); done
done
for svc in "${SERVICES[@]}"; do faults+=("restart:redis-$svc"); done
faults+=("restart:kafka")
for ((i = ${#faults[@]} - 1; i > 0; --i)); do
  j=$((RANDOM % (i + 1)))
  tmp="${faults[$i]}"
  faults[i]="${faults[$j]}"
  faults[j]="$tmp"
done

send_seconds=$(awk -v n="$leads" -v r="$rate" 'BEGIN { printf "%d", n / r }')
log "fault: $leads leads at $rate/s (~${send_seconds}s of sending), ${#faults[@]} faults"
"$LEADCTL" load --env "$STACK_DIR/stack.env" --leads "$leads" --rate "$rate" --seed "$seed" \
  --settle-seconds "$settle" --json "$run_dir/load.json" >"$run_dir/load.txt" 2>"$run_dir/load.err" &
load_pid=$!

# Each fault at a random moment of the first 80 % of the sending phase (sorted, run one after
# the other). A fault takes a few seconds itself (a restarted service waits for its gRPC port, the
# broker for its start), so when they crowd they run back to back.
events="$run_dir/faults.tsv"
: >"$events"
t0=$(date +%s.%N)
mapfile -t at < <(for _ in "${faults[@]}"; do
  awk -v r="$RANDOM" -v s="$send_seconds" 'BEGIN { printf "%.1f\n", r / 32768 * s * 0.8 }'
done | sort -n)
for i in "${!faults[@]}"; do
  f="${faults[$i]}"
  pid_running "$load_pid" || break
  wait_s=$(awk -v t0="$t0" -v at="${at[$i]}" -v now="$(date +%s.%N)" \
    'BEGIN { d = t0 + at - now; printf "%.1f", (d > 0 ? d : 0) }')
  sleep "$wait_s" # the fault schedule's pacing, not synchronisation
  kind="${f%%:*}"
  name="${f#*:}"
  start=$(date +%s.%N)
  if [[ "$kind" == kill ]]; then
    stack kill "$name" 2>>"$run_dir/stack.log"
  fi
  stack restart "$name" 2>>"$run_dir/stack.log"
  end=$(date +%s.%N)
  printf '%s\t%s\t%s\t%s\n' "$kind" "$name" "$start" "$end" >>"$events"
  log "fault: $kind $name at +$(awk -v a="$start" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')s, back after $(awk -v a="$end" -v b="$start" 'BEGIN { printf "%.1f", a - b }')s"
done
done_faults=$(wc -l <"$events")

rc=0
wait "$load_pid" || rc=$?
load_pid=""
cat "$run_dir/load.txt"
if [[ ! -s "$run_dir/load.json" ]]; then
  tail -n 20 "$run_dir/load.err" >&2
  die "fault: leadctl load failed (exit $rc) without a report"
fi

# Recovery: the last lead accounted for, after the end of the last fault and after the last
# submission (while leads still stream in after the last fault, the first is mostly the rest of
# the sending phase: then the worst submission → routed delay and the drain say more).
last_fault_end=$(awk -F'\t' 'BEGIN { m = 0 } $4 > m { m = $4 } END { printf "%.3f", m }' "$events")
summary=$(jq -c --arg last_fault_end "$last_fault_end" --rawfile faults "$events" \
  --argjson kills "$kills" --argjson planned "${#faults[@]}" --argjson done "$done_faults" '
  . as $r
  | ($last_fault_end | tonumber) as $lf
  | {load: $r, kills_per_service: $kills, faults_planned: $planned, faults_done: $done,
     faults: [$faults | split("\n")[] | select(length > 0) | split("\t")
              | {kind: .[0], name: .[1], start_unix: (.[2] | tonumber), end_unix: (.[3] | tonumber),
                 seconds: ((.[3] | tonumber) - (.[2] | tonumber))}],
     last_fault_end_unix: $lf,
     recovery_after_last_fault_seconds: ([$r.last_accounted_unix - $lf, 0] | max),
     recovery_seen_after_last_fault_seconds: ([$r.last_accounted_seen_unix - $lf, 0] | max),
     recovery_after_last_submission_seconds: $r.drain_seconds,
     lost: $r.unaccounted, duplicate_effects: $r.duplicate_effects}' "$run_dir/load.json")
[[ -n "$json" ]] && printf '%s\n' "$summary" >"$json"
jq -r '"fault run: \(.faults_done) of \(.faults_planned) faults (\(.kills_per_service) SIGKILLs per service, each redis and the broker restarted)",
  "  lost \(.lost), duplicate effects \(.duplicate_effects), wire duplicates \(.load.wire_duplicates)",
  "  worst delay a routed lead saw: submission → routed max \(.load.latency_ms.max / 100 | round / 10) s (p50 \(.load.latency_ms.p50 | round) ms, p99 \(.load.latency_ms.p99 / 100 | round / 10) s)",
  "  recovery: every accepted lead routed or nurtured \(.recovery_after_last_fault_seconds * 10 | round / 10) s after the last fault ended by the events'"'"' produced_at (\(.recovery_after_last_submission_seconds * 10 | round / 10) s after the last submission); read by the verifier \(.recovery_seen_after_last_fault_seconds * 10 | round / 10) s after the last fault ended"' <<<"$summary"
((done_faults == ${#faults[@]})) || { warn "fault: the load ended before all faults were done"; rc=1; }
# Something lost or doubled: print what the stack's logs say before the exit purges them (a CI
# run's clone goes with it). The load report above lists the request ids of leads not captured.
if jq -e '.lost > 0 or .duplicate_effects > 0' <<<"$summary" >/dev/null; then
  for svc in capture tracking scoring routing nurturing; do
    log "fault: $svc's warnings and errors (previous run, then current; last 25; broker reconnects left out):"
    cat "$STACK_DIR/logs/$svc.log.prev" "$STACK_DIR/logs/$svc.log" 2>/dev/null |
      jq -Rr 'fromjson? | select(.level == "warning" or .level == "error" or .level == "critical")
              | select(.msg | test("unknown environment variable|CONFWARN|Connection refused|brokers are down|Disconnected|Connect to ipv4") | not)
              | "  \(.ts) \(.level) \(.msg)"' | tail -n 25 >&2 || true
  done
fi
exit "$rc"
