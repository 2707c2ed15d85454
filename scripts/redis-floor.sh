#!/usr/bin/env bash
# What Redis itself charges per command, on this machine, with the stack's persistence: a
# redis-server of its own (AOF, appendfsync everysec, no RDB, as scripts/stack.sh starts them)
# on a free port, driven by redis-benchmark pipelined (-P 64, so round trips cost Redis almost
# nothing), and the server's own CPU (INFO cpu, main thread; AOF-rewrite children excluded)
# divided by the commands it ran. The floor under any design that writes a record per input:
# docs/BENCHMARKS.md "What two cores allow".
#
#   scripts/redis-floor.sh [--requests N] [--value-bytes B]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

requests=500000
value_bytes=400
while (($#)); do
  case "$1" in
    --requests) requests="$2"; shift 2 ;;
    --value-bytes) value_bytes="$2"; shift 2 ;;
    -h | --help) sed -n 2,9p "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
command -v redis-server >/dev/null || die "no redis-server (scripts/setup.sh installs it)"
command -v redis-benchmark >/dev/null || die "no redis-benchmark (Debian's redis-tools)"

port=""
for p in $(seq 17400 17499); do
  if ! port_open "$p"; then port="$p"; break; fi
done
[[ -n "$port" ]] || die "no free port in 17400-17499"
dir="$(mktemp -d)"
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
  --appendfsync everysec --save "" >"$dir/redis.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
pong() { redis-cli -p "$port" ping >/dev/null 2>&1; }
wait_for --pid "$pid" --log "$dir/redis.log" 10 "redis-server on $port" pong

cpu() {
  redis-cli -p "$port" info cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.3f", s }'
}
value="$(head -c "$value_bytes" /dev/zero | tr '\0' x)"
echo "redis-server $(redis-server --version | awk '{print $3}'), AOF everysec, pipelined 64," \
  "$requests requests per command over 100,000 keys, values of $value_bytes bytes"
printf '%-44s %14s %22s\n' command "commands/s" "redis CPU per command"
run() {
  local label="$1"
  shift
  local before after rate
  before="$(cpu)"
  rate="$(redis-benchmark -p "$port" -P 64 -n "$requests" -r 100000 -q "$@" 2>/dev/null |
    tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')"
  after="$(cpu)"
  printf '%-44s %14.0f %19.2f us\n' "$label" "$rate" \
    "$(echo "($after - $before) * 1000000 / $requests" | bc -l)"
}
run "GET of a missing key" GET "k:__rand_int__"
run "SET key VALUE PX 7d (an apply-once record)" SET "d:__rand_int__" "$value" PX 604800000
run "HSET key v N d VALUE i INC (a state record)" HSET "r:__rand_int__" v 1 d "$value" \
  i 0123456789abcdef
run "ZADD schedule SCORE MEMBER (an index entry)" ZADD z __rand_int__ "m:__rand_int__"
run "SADD set MEMBER (a registry entry)" SADD "s:__rand_int__" "m:__rand_int__"
