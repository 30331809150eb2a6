#!/usr/bin/env bash
# Builds librdkafka (C and C++ libraries) from the source vendored in the crates.io crate
# rdkafka-sys, pinned by version and sha256, into .deps/librdkafka; sluice links it instead of
# Debian 12's librdkafka 2.0.2, whose SCRAM login Kafka 4 refuses (docs/decisions.md, "librdkafka
# from source"). Idempotent: skipped when .deps/librdkafka/.complete names this pin.
# Usage: scripts/build-librdkafka.sh   (called by scripts/setup.sh; needs Debian's libssl-dev,
# libsasl2-dev, libzstd-dev, liblz4-dev, zlib1g-dev, cmake, ninja-build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CRATE_VERSION="4.10.0+2.12.1"  # rdkafka-sys; the part after '+' is librdkafka's version
CRATE_SHA256="e234cf318915c1059d4921ef7f75616b5219b10b46e9f3a511a15eb4b56a3f77"
LIBRDKAFKA_VERSION=${CRATE_VERSION#*+}
PREFIX="$ROOT/.deps/librdkafka"
STAMP="rdkafka-sys $CRATE_VERSION $CRATE_SHA256"

log() { printf '[librdkafka] %s\n' "$*"; }

if [ "$(cat "$PREFIX/.complete" 2>/dev/null)" = "$STAMP" ] &&
   [ -e "$PREFIX/lib/librdkafka++.so.1" ]; then
  log "librdkafka $LIBRDKAFKA_VERSION present"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-librdkafka.XXXXXX")
trap 'rm -rf "$work"' EXIT
crate="$work/rdkafka-sys.crate"
# crates.io's download endpoint redirects to its static host; either answers with the same file.
urls=(
  "https://crates.io/api/v1/crates/rdkafka-sys/${CRATE_VERSION}/download"
  "https://static.crates.io/crates/rdkafka-sys/rdkafka-sys-${CRATE_VERSION/+/%2B}.crate"
)
fetched=""
for url in "${urls[@]}"; do
  if curl -sSfL --retry 2 --connect-timeout 20 -o "$crate" "$url" 2>"$work/curl.err"; then
    fetched=$url
    break
  fi
done
if [ -z "$fetched" ]; then
  echo "build-librdkafka: could not download rdkafka-sys $CRATE_VERSION from crates.io" \
       "($(tail -1 "$work/curl.err")); check that crates.io is reachable and run scripts/setup.sh again" >&2
  exit 1
fi
actual=$(sha256sum "$crate" | cut -d' ' -f1)
if [ "$actual" != "$CRATE_SHA256" ]; then
  echo "build-librdkafka: rdkafka-sys $CRATE_VERSION from $fetched has sha256 $actual," \
       "expected $CRATE_SHA256 (the pin in scripts/build-librdkafka.sh); refusing to build it" >&2
  exit 1
fi
log "building librdkafka $LIBRDKAFKA_VERSION (rdkafka-sys $CRATE_VERSION, sha256 verified)"
tar -xzf "$crate" -C "$work"
src="$work/rdkafka-sys-$CRATE_VERSION/librdkafka"

# The features Debian's package has (TLS, Cyrus SASL, zstd, lz4, zlib), against Debian's
# libraries; no curl (OIDC token fetch), no examples or tests. RUNPATH $ORIGIN: librdkafka++
# finds librdkafka beside it, here and in a `make install` lib/.
rm -rf "$PREFIX"
cmake -S "$src" -B "$work/build" -G Ninja -Wno-dev \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_INSTALL_RPATH='$ORIGIN' \
  -DRDKAFKA_BUILD_STATIC=OFF -DRDKAFKA_BUILD_EXAMPLES=OFF -DRDKAFKA_BUILD_TESTS=OFF \
  -DWITH_SSL=ON -DWITH_SASL=ON -DWITH_ZSTD=ON -DENABLE_LZ4_EXT=ON -DWITH_ZLIB=ON \
  -DWITH_CURL=OFF -DWITH_PLUGINS=ON >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; echo "build-librdkafka: cmake configure failed (above)" >&2; exit 1; }
cmake --build "$work/build" -j "${SLUICE_BUILD_JOBS:-2}" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; echo "build-librdkafka: build failed (above)" >&2; exit 1; }
cmake --install "$work/build" >/dev/null
echo "$STAMP" > "$PREFIX/.complete"
log "installed into $PREFIX"
