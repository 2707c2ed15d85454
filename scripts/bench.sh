#!/usr/bin/env bash
# Regenerates the figures of docs/BENCHMARKS.md in one go, on this machine:
#   1. engine micro-benchmarks (bench/engine_bench)
#   2. the store benches against their own redis-server (nurture, scoring, routing)
#   3. `leadctl load` through a stack of its own: as fast as possible with the raw-bus baseline
#      (--baseline), at 1,000 leads/s, and at half of the lower end-to-end rate of those two
#   4. the fault run (scripts/fault.sh): every service SIGKILLed --kills times, every redis and
#      the broker restarted, during a load at a fixed rate
# and writes every command, its output and a summary (machine, date, load average before and
# after each step) under build/bench-results/<UTC stamp>/ (summary.md, *.json, *.txt).
#
#   scripts/bench.sh [--scale small|full] [--perf] [--skip-micro] [--skip-stores]
#
# --scale full is what docs/BENCHMARKS.md holds (about 8 minutes on 2 vCPUs); small is a quick
# smoke run of the script itself (a few minutes). --perf records `perf record -a -g` for 20 s
# during the full-speed load and adds `perf report --sort comm` to the results.
# The stack is its own (LEADFLOW_STACK_DIR=build/bench-stack, ports of LEADFLOW_PORT_OFFSET),
# purged before and torn down after. Other users of the machine skew the figures: the load
# average is recorded next to each one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

scale=full
do_perf=0
micro=1
stores=1
while (($#)); do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --perf) do_perf=1; shift ;;
    --skip-micro) micro=0; shift ;;
    --skip-stores) stores=0; shift ;;
    *) echo "usage: $0 [--scale small|full] [--perf] [--skip-micro] [--skip-stores]" >&2; exit 2 ;;
  esac
done
case "$scale" in
  full)
    micro_args=(--benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
    nurture_args=(--leads 100000 --claims-per-pass 3000 --workers 4)
    scoring_args=(--leads 10000 --rounds 10 --workers 2)
    tracking_args=(--leads 10000 --rounds 20 --workers 1)
    routing_args=(--leads 20000 --teams 4 --reps 8 --workers 2)
    max_leads=20000
    rate1000_leads=20000
    half_seconds=90
    fault_leads=6000
    fault_rate=40
    fault_kills=5
    ;;
  small)
    micro_args=(--benchmark_min_time=0.2)
    nurture_args=(--leads 5000 --claims-per-pass 1000 --workers 2)
    scoring_args=(--leads 1000 --rounds 5 --workers 2)
    tracking_args=(--leads 1000 --rounds 10 --workers 1)
    routing_args=(--leads 2000 --teams 4 --reps 8 --workers 2)
    max_leads=2000
    rate1000_leads=3000
    half_seconds=20
    fault_leads=1200
    fault_rate=20
    fault_kills=1
    ;;
  *) die "bench: --scale small or full" ;;
esac

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$BUILD_DIR/bench-results/$stamp"
mkdir -p "$out"
summary="$out/summary.md"
export LEADFLOW_STACK_DIR="$BUILD_DIR/bench-stack"
STACK_DIR="$LEADFLOW_STACK_DIR"
stack() { bash "$ROOT/scripts/stack.sh" "$@"; }
stack_started=0

# shellcheck disable=SC2317 # only reached through the EXIT trap
finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if ((stack_started)); then
    stack down --purge >/dev/null 2>&1 || warn "bench: stack.sh down failed"
  fi
  log "bench: exit $rc; results in $out"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
md() { printf '%s\n' "$*" >>"$summary"; }

# step NAME CMD...: runs CMD with its output in $out/NAME.txt, and notes the command, the time
# and the load average before and after in the summary.
step() {
  local name="$1" before after t0 rc=0
  shift
  before="$(loadavg)"
  t0=$SECONDS
  log "bench: $name: $*"
  "$@" >"$out/$name.txt" 2>"$out/$name.err" || rc=$?
  after="$(loadavg)"
  md ""
  md "### $name"
  md ""
  md "\`$*\` — $((SECONDS - t0)) s, load average $before → $after, exit $rc"
  md ""
  md '```'
  tail -n 40 "$out/$name.txt" >>"$summary"
  md '```'
  return "$rc"
}

{
  echo "# leadflow benchmark run $stamp"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
  echo "- compiler: $(c++ --version | head -n1); build: $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")"
  echo "- git: $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" rev-parse --abbrev-ref HEAD))"
  echo "- scale: $scale; load average at start: $(loadavg); other processes using CPU at start:"
  echo
  echo '```'
  top -b -n1 -o %CPU | sed -n '7,14p'
  echo '```'
} >"$summary"

log "bench: building the benches, services and leadctl"
cmake --build "$BUILD_DIR" -j"${LEADFLOW_JOBS:-2}" --target engine_bench nurture_store_bench \
  scoring_store_bench routing_store_bench tracking_store_bench leadctl leadflow-capture leadflow-tracking \
  leadflow-scoring leadflow-routing leadflow-nurturing >"$out/build.txt" 2>&1 ||
  die "bench: build failed; see $out/build.txt"

md ""
md "## Engine micro-benchmarks"
if ((micro)); then
  step engine_bench "$BUILD_DIR/bench/engine_bench" "${micro_args[@]}" \
    --benchmark_out="$out/engine_bench.json" --benchmark_out_format=json
fi
md ""
md "## Store benches (own redis-server, no Kafka)"
if ((stores)); then
  step nurture_store_bench "$BUILD_DIR/bench/nurture_store_bench" "${nurture_args[@]}"
  step scoring_store_bench "$BUILD_DIR/bench/scoring_store_bench" "${scoring_args[@]}"
  step routing_store_bench "$BUILD_DIR/bench/routing_store_bench" "${routing_args[@]}"
  step tracking_store_bench "$BUILD_DIR/bench/tracking_store_bench" "${tracking_args[@]}"
fi

md ""
md "## End to end (stack: Kafka KRaft, 5 redis-server with AOF, 5 services; $STACK_DIR)"
stack_started=1
stack down --purge >/dev/null 2>&1 || true
stack up >"$out/stack-up.txt" 2>&1 || die "bench: stack up failed; see $out/stack-up.txt"
env_file="$STACK_DIR/stack.env"

perf_pid=""
if ((do_perf)); then
  # Started with the full-speed run; it samples the whole machine for 20 s.
  (sleep 5 && perf record -a -g -o "$out/perf.data" -- sleep 20 >"$out/perf-record.txt" 2>&1) &
  perf_pid=$!
fi
step load_max "$LEADCTL" load --env "$env_file" --leads "$max_leads" --rate 0 --baseline \
  --settle-seconds 900 --json "$out/load_max.json"
if [[ -n "$perf_pid" ]]; then
  wait "$perf_pid" || true
  perf report -i "$out/perf.data" --no-children --sort comm -g none --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 30 >"$out/perf-comm.txt" || true
  perf report -i "$out/perf.data" --no-children --sort comm,dso -g none --stdio 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 40 >"$out/perf-comm-dso.txt" || true
  md ""
  md "### perf (20 s of the full-speed run, \`perf record -a -g\`, by command)"
  md ""
  md '```'
  cat "$out/perf-comm.txt" >>"$summary"
  md '```'
fi
max_rate=$(jq -r '.end_to_end_per_second' "$out/load_max.json")

step load_1000 "$LEADCTL" load --env "$env_file" --leads "$rate1000_leads" --rate 1000 \
  --settle-seconds 900 --json "$out/load_1000.json"

# Half of what the stack sustained, not of the burst: the full-speed run is short (its first
# seconds drain into empty queues), so the lower of its rate and the 1,000/s run's achieved rate.
rate1000_e2e=$(jq -r '.end_to_end_per_second' "$out/load_1000.json")
half=$(awk -v m="$max_rate" -v s="$rate1000_e2e" \
  'BEGIN { if (s > 0 && s < m) m = s; h = m / 2; printf "%d", h < 1 ? 1 : h }')
half_leads=$((half * half_seconds))
step load_half "$LEADCTL" load --env "$env_file" --leads "$half_leads" --rate "$half" \
  --settle-seconds 900 --json "$out/load_half.json"
stack down --purge >/dev/null 2>&1
stack_started=0

md ""
md "## Fault run"
step fault bash "$ROOT/scripts/fault.sh" --leads "$fault_leads" --rate "$fault_rate" \
  --kills "$fault_kills" --seed 8 --settle 600 --json "$out/fault.json" || true

# One table of the end-to-end figures.
md ""
md "## Summary"
md ""
md "| run | leads | offered rate | captured/s | end to end leads/s | p50 / p99 / p99.9 ms (submission → routed) | unaccounted | duplicate effects | wire duplicates |"
md "|---|---|---|---|---|---|---|---|---|"
for run in load_max load_1000 load_half; do
  [[ -s "$out/$run.json" ]] || continue
  jq -r --arg run "$run" '"| \($run) | \(.leads) | \(if .rate == 0 then "max" else .rate end) | \(.captured_per_second | floor) | \(.end_to_end_per_second | floor) | \(.latency_ms.p50 | floor) / \(.latency_ms.p99 | floor) / \(.latency_ms.p999 | floor) | \(.unaccounted) | \(.duplicate_effects) | \(.wire_duplicates) |"' "$out/$run.json" >>"$summary"
done
if [[ -s "$out/load_max.json" ]]; then
  md ""
  jq -r '"Raw bus: \(.bus.messages_per_second | floor) messages/s through \(.bus.hops) hops (\(.bus.delivered) messages in \(.bus.seconds * 10 | round / 10) s, mean bodies \(.bus.mean_bytes | map(floor) | tostring) bytes); the pipeline at full speed is \(.bus_fraction * 1000 | round / 10) % of it."' "$out/load_max.json" >>"$summary"
fi
if [[ -s "$out/fault.json" ]]; then
  md ""
  jq -r '"Fault run: \(.faults_done) of \(.faults_planned) faults, lost \(.lost), duplicate effects \(.duplicate_effects), recovery \(.recovery_after_last_fault_seconds * 10 | round / 10) s after the last fault, \(.recovery_after_last_submission_seconds * 10 | round / 10) s after the last submission; per fault (s): \([.faults[] | "\(.kind) \(.name) \(.seconds * 10 | round / 10)"] | join(", "))."' "$out/fault.json" >>"$summary"
fi
md ""
md "Load average at the end: $(loadavg)"
cat "$summary"
