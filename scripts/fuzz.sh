#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (every decoder and validator that takes outside
# input). It builds them with clang, installing clang when missing, in build-fuzz/ with
# AddressSanitizer and coverage on all of leadflow's code, then runs each target for SECONDS
# (default 60) on a copy of its seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: lead_submission segment_activity
#                                              csv_import rule_files
# A crash or hang leaves its input in build-fuzz/findings/<target>/. Fix the bug, then add that
# file to tests/fuzz/corpus/<target>/: the unit test fuzz_<target>_test replays every seed in
# CI from then on. Not part of scripts/test.sh (it runs as long as you let it).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(lead_submission segment_activity csv_import rule_files)

# clang plus its runtime libraries (libFuzzer, AddressSanitizer).
if ! command -v clang++ >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
  log "fuzz: installing clang and libclang-rt-14-dev"
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    clang libclang-rt-14-dev
fi

fuzz_dir="$ROOT/build-fuzz"
export CCACHE_DIR="${CCACHE_DIR:-$CACHE/ccache}" CCACHE_NOHASHDIR=true CCACHE_BASEDIR="$ROOT"
if [[ ! -f "$fuzz_dir/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$fuzz_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DLEADFLOW_FUZZERS=ON -DLEADFLOW_BUILD_BENCHMARKS=OFF -DLEADFLOW_JEMALLOC=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address" >/dev/null
fi
cmake --build "$fuzz_dir" -j"${LEADFLOW_JOBS:-2}" --target "${targets[@]/%/_fuzzer}"

status=0
for t in "${targets[@]}"; do
  work="$fuzz_dir/corpus/$t"
  findings="$fuzz_dir/findings/$t"
  mkdir -p "$work" "$findings"
  cp -n "$ROOT/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  log "fuzz: $t for ${seconds}s"
  if ! "$fuzz_dir/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "$work" \
    >"$fuzz_dir/$t.log" 2>&1; then
    warn "fuzz: $t found a failure; input in $findings, log in $fuzz_dir/$t.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$fuzz_dir/$t.log" | sed "s/^/  $t /" >&2 || true
done
exit "$status"
