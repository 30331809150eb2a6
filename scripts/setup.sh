#!/usr/bin/env bash
# Installs everything sluice needs on a fresh Debian 12 machine, idempotently:
# Debian packages (C++ libraries), the project virtualenv (.venv: pyarrow = Arrow C++ SDK,
# test readers) and the Apache Kafka jars (.deps/kafka). A second run skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev rapidjson-dev libssl-dev libxxhash-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev nlohmann-json3-dev
  default-jre-headless maven
)

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

# Virtualenv: rebuilt when requirements.txt changes (stamp holds its hash).
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

# Kafka jars from Maven Central.
KAFKA_LIBS=.deps/kafka/libs
POM_HASH=$(sha256sum tools/kafka/pom.xml | cut -c1-16)
if [ "$(cat .deps/kafka/.complete 2>/dev/null)" != "$POM_HASH" ]; then
  log "fetching Apache Kafka jars (Maven)"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f tools/kafka/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$ROOT/$KAFKA_LIBS" -DincludeScope=runtime
  echo "$POM_HASH" > .deps/kafka/.complete
else
  log "Kafka jars present"
fi
# Delta Lake jars for Spark from Maven Central (pyspark ships Spark, Scala and Hadoop).
SPARK_JARS=.deps/spark/jars
SPARK_POM_HASH=$(sha256sum tools/spark/pom.xml | cut -c1-16)
if [ "$(cat .deps/spark/.complete 2>/dev/null)" != "$SPARK_POM_HASH" ]; then
  log "fetching Delta Lake jars for Spark (Maven)"
  rm -rf "$SPARK_JARS"; mkdir -p "$SPARK_JARS"
  mvn -q -B -f tools/spark/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$ROOT/$SPARK_JARS" -DexcludeTransitive=true
  echo "$SPARK_POM_HASH" > .deps/spark/.complete
else
  log "Spark Delta jars present"
fi
log "done"
