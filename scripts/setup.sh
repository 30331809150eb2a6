#!/usr/bin/env bash
# Installs everything sluice needs on a fresh Debian 12 machine, idempotently:
# Debian packages (C++ libraries), the project virtualenv (.venv: pyarrow = Arrow C++ SDK,
# test readers), librdkafka (.deps/librdkafka) and the Apache Kafka jars (.deps/kafka). A second
# run skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config lld  # lld: the faster linker (CMakeLists.txt)
  rapidjson-dev libssl-dev libcurl4-openssl-dev libxxhash-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev nlohmann-json3-dev
  default-jre-headless maven
  libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev curl  # librdkafka from source (build-librdkafka.sh)
  patchelf  # make install / make dist: RUNPATH $ORIGIN on the bundled Debian libraries
  prometheus  # promtool: tests/integration/test_serve.py checks the /metrics text with it
  clang libclang-rt-14-dev llvm-14  # the ASan + UBSan + libFuzzer build (build-fuzz/); symbolizer
  chromium  # headless browser of the dashboard tests (tests/integration/test_dashboard.py)
)
# Node.js for the dashboard bundle (web/, built with the binary) and Azurite (the Azure Blob
# emulator of the tests): Debian's, unless a node is there.
command -v node >/dev/null && command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

log() { printf '[setup] %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# Virtualenv: rebuilt when requirements.txt changes (stamp holds its hash). PyPI and Maven Central
# are independent downloads: the venv is built in the background while the jars are fetched below
# (one mvn at a time: they share ~/.m2). docs/decisions.md "CI time".
{
REQ_HASH=$(sha256sum requirements.txt | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.req-hash 2>/dev/null)" != "$REQ_HASH" ]; then
  log "creating .venv from requirements.txt"
  PY=${PYTHON:-python3}
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  # libarrow.so etc. as unversioned links so the linker finds them.
  .venv/bin/python -c "import pyarrow; pyarrow.create_library_symlinks()"
  echo "$REQ_HASH" > .venv/.req-hash
else
  log ".venv up to date"
fi
} &
venv_pid=$!
trap 'kill "$venv_pid" 2>/dev/null || true' EXIT

# librdkafka >= 2.6.1 (Debian's 2.0.2 fails SCRAM with Kafka 4), from the crates.io crate
# rdkafka-sys's vendored source, pinned by sha256; skipped when the installed pin matches.
scripts/build-librdkafka.sh

# Jars from Maven Central, refetched only when their pom changes (the stamp holds its hash).
fetch_jars() {  # fetch_jars <pom> <folder under .deps> <what> [extra mvn arguments...]
  local pom=$1 dir=.deps/$2 what=$3
  shift 3
  local hash
  hash=$(sha256sum "$pom" | cut -c1-16)
  if [ ! -d "$dir/jars" ] || [ "$(cat "$dir/.complete" 2>/dev/null)" != "$hash" ]; then
    log "fetching $what (Maven)"
    rm -rf "$dir/jars"; mkdir -p "$dir/jars"
    mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$ROOT/$dir/jars" "$@"
    echo "$hash" > "$dir/.complete"
  else
    log "$what present"
  fi
}
fetch_jars tools/kafka/pom.xml kafka "Apache Kafka jars" -DincludeScope=runtime
# pyspark ships Spark, Scala and Hadoop: only Delta's own jars are needed.
fetch_jars tools/spark/pom.xml spark "Delta Lake jars for Spark" -DexcludeTransitive=true
# Spark's Kafka source for the Spark side-by-side benchmark (bench/spark_side_by_side.py).
fetch_jars tools/spark-kafka/pom.xml spark-kafka "Spark Kafka source jars" -DexcludeTransitive=true
# Apicurio Registry (Confluent-compatible schema registry API) for the Avro tests: Apicurio
# publishes its ready-to-run server on Maven Central as apicurio-registry-app:<v>:tar.gz:all.
APICURIO_HASH=$(sha256sum tools/apicurio/pom.xml | cut -c1-16)
if [ "$(cat .deps/apicurio/.complete 2>/dev/null)" != "$APICURIO_HASH" ]; then
  log "fetching Apicurio Registry (Maven)"
  rm -rf .deps/apicurio; mkdir -p .deps/apicurio
  mvn -q -B -f tools/apicurio/pom.xml package -Dapicurio.dir="$ROOT/.deps/apicurio/registry"
  rm -rf tools/apicurio/target
  echo "$APICURIO_HASH" > .deps/apicurio/.complete
else
  log "Apicurio Registry present"
fi
# Azurite (Azure Storage emulator, npm) for the Azure Blob tests: tools/azurite pins it (lock
# file); `npm ci` installs exactly that into .deps/azurite when the lock file changes.
AZURITE_HASH=$(cat tools/azurite/package.json tools/azurite/package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat .deps/azurite/.complete 2>/dev/null)" != "$AZURITE_HASH" ]; then
  log "installing Azurite (npm)"
  rm -rf .deps/azurite; mkdir -p .deps/azurite
  cp tools/azurite/package.json tools/azurite/package-lock.json .deps/azurite/
  (cd .deps/azurite && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
  echo "$AZURITE_HASH" > .deps/azurite/.complete
else
  log "Azurite present"
fi
# The dashboard's npm packages (web/package-lock.json: uPlot, dagre, esbuild), bundled into the
# binary by the build (web/build.mjs); esbuild is a dev dependency, so no --omit=dev.
WEB_HASH=$(cat web/package.json web/package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat .deps/web/.complete 2>/dev/null)" != "$WEB_HASH" ]; then
  log "installing the dashboard's npm packages"
  rm -rf .deps/web; mkdir -p .deps/web
  cp web/package.json web/package-lock.json .deps/web/
  (cd .deps/web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$WEB_HASH" > .deps/web/.complete
else
  log "dashboard npm packages present"
fi
wait "$venv_pid" || { log "creating .venv failed (pip's error above): run scripts/setup.sh again"; exit 1; }
trap - EXIT
log "done"
