#!/usr/bin/env bash
# Prepares a machine (fresh Debian 12, as root) to build and run leadflow:
#   1. installs the Debian packages that are missing,
#   2. fetches the Apache Kafka broker jars from Maven Central into $CACHE (once per version),
#   3. extracts promtool from Debian's prometheus package into $CACHE (once),
#   4. configures and builds the project (skipped with --no-build).
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
  clang-format redis-server openjdk-17-jre-headless maven python3-yaml
)

# as_root CMD...: runs CMD as root, through sudo when this script is not root.
as_root() {
  if ((EUID == 0)); then
    "$@"
  else
    command -v sudo >/dev/null || die "'$*' needs root, and there is no sudo"
    sudo "$@"
  fi
}

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
  # Slim Debian images drop /usr/share/man, and openjdk's postinst then fails creating its
  # man-page alternatives symlink.
  as_root mkdir -p /usr/share/man/man1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
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

# promtool checks and unit-tests the alerting rules (tests/deploy). Debian's prometheus package
# has it, but installing that package would also start a Prometheus server (its systemd unit,
# port 9090) on the machine; so the .deb is only downloaded, and promtool alone (a Go binary that
# needs nothing else) is extracted into $CACHE/promtool.
fetch_promtool() {
  if [[ -n "${LEADFLOW_PROMTOOL:-}" ]]; then
    "$PROMTOOL" --version >/dev/null 2>&1 || die "promtool: LEADFLOW_PROMTOOL=$PROMTOOL does not run"
    log "promtool: LEADFLOW_PROMTOOL=$PROMTOOL"
    return
  fi
  if "$PROMTOOL" --version >/dev/null 2>&1; then
    log "promtool: $(cat "$CACHE/promtool/deb-version" 2>/dev/null) cached in $PROMTOOL"
    return
  fi
  log "promtool: extracting it from Debian's prometheus package (downloaded, not installed)"
  local tmp
  mkdir -p "$CACHE"
  # A scratch dir moved into place only once promtool runs, like the Kafka jars above.
  tmp="$(mktemp -d "$CACHE/.promtool.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now: it is local and gone by the time the trap fires
  trap "rm -rf '$tmp'" EXIT
  chmod 755 "$tmp"
  # apt-get download needs the package lists: slim images ship them empty, and old lists may
  # name a version the mirror no longer has; so on failure update them once and try again.
  # As root apt warns that the download runs unsandboxed (its _apt user cannot write to $tmp);
  # its output only matters when it fails.
  if ! (cd "$tmp" && apt-get download -q prometheus) >"$tmp/apt.log" 2>&1; then
    log "promtool: updating the package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$tmp/apt.log" 2>&1 || true
    if ! (cd "$tmp" && apt-get download -q prometheus) >>"$tmp/apt.log" 2>&1; then
      cat "$tmp/apt.log" >&2
      die "promtool: 'apt-get download prometheus' failed"
    fi
  fi
  local deb
  deb="$(find "$tmp" -maxdepth 1 -name 'prometheus_*.deb' | head -n1)"
  [[ -n "$deb" ]] || die "promtool: apt-get download left no prometheus_*.deb"
  mkdir "$tmp/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ./usr/bin/promtool ||
    die "promtool: no usr/bin/promtool in $(basename "$deb")"
  mv "$tmp/x/usr/bin/promtool" "$tmp/promtool"
  dpkg-deb -f "$deb" Version >"$tmp/deb-version"
  rm -rf "$tmp/x" "$deb" "$tmp/apt.log"
  "$tmp/promtool" --version >/dev/null 2>&1 || die "promtool: the extracted binary does not run"
  rm -rf "$CACHE/promtool"
  mv "$tmp" "$CACHE/promtool"
  trap - EXIT
  log "promtool: $(cat "$CACHE/promtool/deb-version") in $PROMTOOL"
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
fetch_promtool
if ((do_build)); then
  build_project
else
  log "build: skipped (--no-build)"
fi
