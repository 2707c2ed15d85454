#!/usr/bin/env bash
# Counts the instructions a store bench's private redis-server executes, under callgrind.
#
#   scripts/profile-redis.sh tracking_store_bench --leads 1000 --rounds 10 --workers 1 --batch 256
#
# On a shared VM timings of the same binary vary by ±20 %; instruction counts repeat to ~0.05 %
# for a one-worker bench (1–3 % with several threads), so they show a change worth a few percent
# of Redis's work (docs/BENCHMARKS.md, "Counting Redis's instructions"). The benches start
# `redis-server` through PATH, so a wrapper first in PATH runs it under valgrind; the bench stops
# it with SIGTERM, and callgrind writes its file as Redis exits. The file is kept in
# build/profile/ for callgrind_annotate (or kcachegrind).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# < 1)) || [[ "$1" == -h || "$1" == --help ]]; then
  echo "usage: $0 BENCH [BENCH ARGS...]   (BENCH: tracking_store_bench, nurture_store_bench, ...)" >&2
  exit 2
fi
bench="$1"
shift
[[ -x "$bench" ]] || bench="$BUILD_DIR/bench/$bench"
[[ -x "$bench" ]] || die "no bench $bench (cmake --build build --target <bench>)"
if ! command -v valgrind >/dev/null; then
  log "installing valgrind"
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind >&2
fi
redis="$(command -v redis-server)" || die "no redis-server (scripts/setup.sh installs it)"

out_dir="$BUILD_DIR/profile"
mkdir -p "$out_dir"
wrapper="$(mktemp -d)"
trap 'rm -rf "$wrapper"' EXIT
stamp="$(date +%Y%m%d-%H%M%S)"
cat >"$wrapper/redis-server" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$out_dir/redis-$stamp.%p" "$redis" "\$@"
EOF
chmod +x "$wrapper/redis-server"

PATH="$wrapper:$PATH" "$bench" "$@"
shopt -s nullglob
files=("$out_dir"/redis-"$stamp".*)
((${#files[@]} == 1)) || die "expected one callgrind file in $out_dir, found ${#files[@]}"
file="${files[0]}"
echo "callgrind file: $file"
echo "redis-server instructions, inclusive (see docs/BENCHMARKS.md for what each part is):"
callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
  grep -E 'PROGRAM TOTALS|:(execCommand|queueMultiCommand|watchCommand|evalGenericCommand|luaCallFunction|lua_pcall|scriptCall|feedAppendOnlyFile|processMultibulkBuffer) ' |
  sed -E 's/ +\?\?\?:/  /; s/ \[.*\]$//'
