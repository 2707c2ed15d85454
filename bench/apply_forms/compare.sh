#!/usr/bin/env bash
# Redis instructions per input of one tracking-like apply in two forms, under callgrind:
#   lua    EVALSHA of leadflow's apply script (common/redis/apply_once.cc, as ScriptArgs sends it)
#   multi  WATCH + reads, then MULTI / the same writes / EXEC (an apply without Lua)
# Each form runs twice on a fresh private redis-server (AOF on, as in the stack), LEADS leads ×
# 2 and × 6 rounds fed by `redis-cli --pipe`; the difference / (4 × LEADS) is the steady-state
# cost of one input (record update, memo, timeline push and trim, identity link, registry).
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
python3 - "$root/common/redis/apply_once.cc" >"$work/apply.lua" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
print(re.search(r'constexpr char kApplyScript\[\] = R"lua\((.*?)\)lua";', src, re.S).group(1))
PY

# Prints the instructions redis-server ran for FORM over ROUNDS rounds.
instructions() {
  local form=$1 rounds=$2 port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir="$work/$form-$rounds"
  mkdir -p "$dir"
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" redis-server --port "$port" \
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
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  pid=""
  callgrind_annotate "$dir/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

for form in lua multi; do
  a=$(instructions "$form" 2)
  b=$(instructions "$form" 6)
  echo "$form: $(((b - a) / (4 * leads))) instructions per input ($leads leads; 2 rounds: $a, 6 rounds: $b)"
done
