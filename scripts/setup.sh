#!/usr/bin/env bash
# Prepares a machine (fresh Debian 12, as root) to build and run leadflow:
#   1. installs the Debian packages that are missing,
#   2. fetches the Apache Kafka broker jars from Maven Central into $CACHE (once per version),
#   3. configures and builds the project (skipped with --no-build).
# Idempotent: a second run installs nothing, fetches nothing and only lets ninja check the build.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: $0 [--no-build]" >&2
  exit 2
}

do_build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) do_build=0 ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev libhiredis-dev libspdlog-dev libfmt-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev
  libyaml-cpp-dev libcli11-dev libphonenumber-dev nlohmann-json3-dev libcsv-dev libjemalloc-dev
  clang-format redis-server openjdk-17-jre-headless maven
)

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "apt: all ${#PACKAGES[@]} packages present"
    return
  fi
  log "apt: installing ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}) and not root"
    sudo=(sudo)
  fi
  # Slim Debian images drop /usr/share/man, and openjdk's postinst then fails creating its
  # man-page alternatives symlink.
  "${sudo[@]}" mkdir -p /usr/share/man/man1
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

fetch_kafka() {
  if [[ -f "$KAFKA_MARKER" ]]; then
    log "kafka: $KAFKA_VERSION jars cached in $KAFKA_LIBS"
    return
  fi
  log "kafka: fetching $KAFKA_VERSION and its runtime dependencies from Maven Central"
  local dest="$CACHE/kafka-$KAFKA_VERSION" tmp
  mkdir -p "$CACHE"
  # Fetch into a scratch dir and move it into place only once it is complete and proven to run,
  # so an interrupted fetch never leaves a half-filled libs/ that looks usable.
  tmp="$(mktemp -d "$CACHE/.kafka-$KAFKA_VERSION.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now: it is local and gone by the time the trap fires
  trap "rm -rf '$tmp'" EXIT
  chmod 755 "$tmp"
  # Maven's output (even with -q it emits colour codes) only matters when it fails.
  if ! mvn -q -B -ntp -Dstyle.color=never \
    -f "$ROOT/scripts/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies \
    -DoutputDirectory="$tmp/libs" -DincludeScope=runtime >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    die "kafka: Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  rm -f "$tmp/mvn.log"
  # Cheap proof that the classpath holds a working broker (loads kafka.Kafka and its deps).
  local got
  got="$(java -cp "$tmp/libs/*" kafka.Kafka --version 2>/dev/null | head -n1)" ||
    die "kafka: 'kafka.Kafka --version' failed on the fetched classpath"
  [[ "$got" == "$KAFKA_VERSION"* ]] || die "kafka: fetched classpath reports version '$got'"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
  date -u +%FT%TZ >"$KAFKA_MARKER"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

build_project() {
  # ccache: share one cache across clones of the repo (CI clones afresh every run). NOHASHDIR and
  # BASEDIR make object files from different checkout paths hash identically.
  export CCACHE_DIR="${CCACHE_DIR:-$CACHE/ccache}"
  export CCACHE_NOHASHDIR=true
  export CCACHE_BASEDIR="$ROOT"
  mkdir -p "$CCACHE_DIR"
  [[ -f "$ROOT/CMakeLists.txt" ]] || die "no $ROOT/CMakeLists.txt to build"
  # Configure once; afterwards ninja re-runs cmake by itself when a CMakeLists.txt changes.
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    log "build: configuring $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
      -DCMAKE_BUILD_TYPE="${LEADFLOW_BUILD_TYPE:-RelWithDebInfo}" \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  fi
  log "build: building (-j${LEADFLOW_JOBS:-2})"
  cmake --build "$BUILD_DIR" -j"${LEADFLOW_JOBS:-2}"
}

install_packages
fetch_kafka
if ((do_build)); then
  build_project
else
  log "build: skipped (--no-build)"
fi
