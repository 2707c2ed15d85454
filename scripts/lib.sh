# shellcheck shell=bash disable=SC2034 # the variables here are used by the scripts that source it
# Shared helpers for the leadflow scripts. Sourced, never executed: it only defines functions and
# path variables, so sourcing it twice is harmless.

# Resolve the repo root from this file's location rather than $PWD so the scripts work from any
# directory (CI runs `bash .ci/run` from a fresh clone, developers run them from anywhere).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BUILD_DIR="${LEADFLOW_BUILD_DIR:-$ROOT/build}"
# LEADFLOW_STACK_DIR: a second stack (scripts/fault.sh) keeps its pids, data and logs apart.
STACK_DIR="${LEADFLOW_STACK_DIR:-$BUILD_DIR/stack}"
CACHE="${LEADFLOW_CACHE:-$HOME/.cache/leadflow}"
KAFKA_VERSION="${LEADFLOW_KAFKA_VERSION:-3.9.1}"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
# Written last by setup.sh's fetch, so its presence means the jar set is complete.
KAFKA_MARKER="$CACHE/kafka-$KAFKA_VERSION/.complete"
# promtool, Prometheus's rule checker, for the alerting-rule test (tests/deploy): setup.sh takes it
# out of Debian's prometheus package into $CACHE. LEADFLOW_PROMTOOL points at another one instead.
PROMTOOL="${LEADFLOW_PROMTOOL:-$CACHE/promtool/promtool}"

# LEADFLOW_PORT_OFFSET shifts every port below, so two checkouts (or a developer's stack and a
# test run) can each have a stack of their own on one machine.
PORT_OFFSET="${LEADFLOW_PORT_OFFSET:-0}"
KAFKA_PORT="${LEADFLOW_KAFKA_PORT:-$((19092 + PORT_OFFSET))}"
KAFKA_CONTROLLER_PORT="${LEADFLOW_KAFKA_CONTROLLER_PORT:-$((19093 + PORT_OFFSET))}"
KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# Fixed, per-service endpoints. Kept away from the defaults (6379, 9092, ...) so a developer's own
# Redis/Kafka on this machine are never touched or confused with the stack's, and below Linux's
# ephemeral range (32768-60999): a listener there can collide with some client's outgoing
# connection (seen: a gRPC port at 50162 taken when the fault run's stack started after ctest).
SERVICES=(capture tracking scoring routing nurturing)
declare -A REDIS_PORT GRPC_PORT METRICS_PORT
for i in "${!SERVICES[@]}"; do
  REDIS_PORT[${SERVICES[$i]}]=$((16381 + i + PORT_OFFSET))
  GRPC_PORT[${SERVICES[$i]}]=$((18061 + i + PORT_OFFSET))
  METRICS_PORT[${SERVICES[$i]}]=$((9461 + i + PORT_OFFSET))
done

LEADCTL="$BUILD_DIR/tools/leadctl/leadctl"

log() {
  # stderr, so functions whose stdout is captured can still log.
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

warn() {
  log "WARNING: $*"
}

die() {
  log "ERROR: $*"
  exit 1
}

# port_open PORT [HOST]: true if something accepts TCP connections there. Uses bash's /dev/tcp so
# it needs no netcat; on loopback a closed port is refused immediately, so no timeout is needed.
port_open() {
  local port="$1" host="${2:-127.0.0.1}"
  (: <>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_for [--pid PID] [--log FILE] [--quiet] TIMEOUT_S DESCRIPTION CMD [ARGS...]
# Polls CMD every 0.2 s until it succeeds; fails with a clear message once TIMEOUT_S has elapsed.
# --pid: give up at once if that process dies (no point waiting 90 s for a crashed broker).
# --log: tail of that file is printed on failure, which is usually where the reason is.
# --quiet: no message on failure, for callers that handle it themselves.
wait_for() {
  local pid="" logfile="" quiet=0
  while (($#)); do
    case "$1" in
      --pid) pid="$2"; shift 2 ;;
      --log) logfile="$2"; shift 2 ;;
      --quiet) quiet=1; shift ;;
      *) break ;;
    esac
  done
  local timeout="$1" desc="$2"
  shift 2
  local start=$SECONDS
  while :; do
    if "$@"; then
      return 0
    fi
    local why=""
    if [[ -n "$pid" ]] && ! pid_running "$pid"; then
      why="process $pid exited"
    elif ((SECONDS - start >= timeout)); then
      why="timed out after ${timeout}s"
    fi
    if [[ -n "$why" ]]; then
      ((quiet)) && return 1
      log "ERROR: waiting for $desc: $why"
      if [[ -n "$logfile" && -f "$logfile" ]]; then
        log "last lines of $logfile:"
        tail -n 30 "$logfile" >&2 || true
      fi
      return 1
    fi
    sleep 0.2
  done
}

# pid_running PID: exists and is not a zombie. `kill -0` alone is not enough: a child that crashed
# while the starting script is still running stays a zombie until that script exits.
pid_running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ -n "$stat" && "${stat:0:1}" != Z ]]
}

# negate CMD...: succeeds when CMD fails; for wait_for conditions such as "no longer running".
negate() {
  ! "$@"
}

# Pid files: $STACK_DIR/pids/<name>.pid holding just the pid.
pid_file() {
  printf '%s/pids/%s.pid\n' "$STACK_DIR" "$1"
}

read_pid() {
  local f
  f="$(pid_file "$1")"
  [[ -s "$f" ]] && tr -dc '0-9' <"$f"
}

# pid_matches PID PATTERN: the process exists, is not a zombie, and its command line contains
# PATTERN. Guards against pid reuse: a recorded pid is only "ours" if it still runs the same
# program, so `down` can never signal an unrelated process that inherited the number.
pid_matches() {
  local pid="$1" pattern="$2" cmdline
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  # A zombie's cmdline is empty, so it never matches: it is dead for our purposes.
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$pattern"* ]]
}
