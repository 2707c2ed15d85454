#!/usr/bin/env bash
# Redis instructions per input of one tracking-like apply in two forms, under callgrind:
#   lua    EVALSHA of leadflow's former apply script (common/redis/apply_once.cc as of ae8dd9c,
#          the last commit with it, taken from git; as its ScriptArgs sent it)
#   multi  WATCH + reads, then MULTI / the same writes / EXEC (the form ApplyOnce has used since)
# Each form runs twice on a fresh private redis-server (AOF on, as in the stack), LEADS leads ×
# 2 and × 6 rounds fed by `redis-cli --pipe`; the difference / (4 × LEADS) is the steady-state
# cost of one input (record update, memo, timeline push and trim, identity link, registry).
# Then both forms natively with 20 × LEADS leads, for redis-server's CPU time per input.
#
#   bench/apply_forms/compare.sh [LEADS]      (default 1000; needs valgrind and python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd "$here/../.." && pwd -P)"
leads="${1:-1000}"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$root" show ae8dd9c:common/redis/apply_once.cc >"$work/apply_once.cc"
python3 - "$work/apply_once.cc" >"$work/apply.lua" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
print(re.search(r'constexpr char kApplyScript\[\] = R"lua\((.*?)\)lua";', src, re.S).group(1))
PY

# Runs FORM over ROUNDS rounds of LEADS leads on a fresh redis-server, under callgrind when
# MODE is "callgrind"; prints the instructions it ran (callgrind) or its CPU time in clock ticks.
run_form() {
  local mode=$1 form=$2 rounds=$3 leads=$4 port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir="$work/$mode-$form-$rounds"
  mkdir -p "$dir"
  local wrap=()
  [[ "$mode" == callgrind ]] && wrap=(valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out")
  "${wrap[@]}" redis-server --port "$port" \
    --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 60))
  until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
    ((SECONDS < deadline)) || { echo "redis-server did not start" >&2; exit 1; }
    sleep 0.2
  done
  local sha
  sha=$(redis-cli -p "$port" script load "$(cat "$work/apply.lua")")
  python3 "$here/gen.py" "$form" "$leads" "$rounds" "$sha" >"$dir/in.resp"
  redis-cli -p "$port" --pipe <"$dir/in.resp" >"$dir/pipe.log" 2>&1
  grep -q "errors: 0" "$dir/pipe.log" || { cat "$dir/pipe.log" >&2; exit 1; }
  local v
  v=$(redis-cli -p "$port" hget "t:{L-0}:history" v)
  [[ "$v" == "$rounds" ]] || { echo "$form: version $v after $rounds rounds" >&2; exit 1; }
  local ticks
  # utime + stime of the server (fields 14 and 15 of /proc/PID/stat), before it exits.
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  pid=""
  if [[ "$mode" == callgrind ]]; then
    callgrind_annotate "$dir/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  else
    echo "$ticks"
  fi
}

hz=$(getconf CLK_TCK)
for form in lua multi; do
  a=$(run_form callgrind "$form" 2 "$leads")
  b=$(run_form callgrind "$form" 6 "$leads")
  echo "$form: $(((b - a) / (4 * leads))) instructions per input ($leads leads; 2 rounds: $a, 6 rounds: $b)"
done
# The same natively, 20 times the leads, for Redis CPU time (clock ticks of 1/CLK_TCK s).
big=$((20 * leads))
for form in lua multi; do
  a=$(run_form native "$form" 2 "$big")
  b=$(run_form native "$form" 6 "$big")
  echo "$form: $(((b - a) * 1000000 / hz / (4 * big))) us of redis-server CPU per input ($big leads; 2 rounds: $a ticks, 6 rounds: $b ticks)"
done
