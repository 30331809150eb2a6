#!/usr/bin/env bash
# Builds the SQL parser fuzzer with clang (libFuzzer + ASan + UBSan) and runs it.
#   scripts/fuzz.sh [seconds]   (default 600); findings go to .run/fuzz/
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
bash scripts/setup.sh
if ! command -v clang++ >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
[ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON >/dev/null
cmake --build build-fuzz --target sql_parser_fuzzer
mkdir -p .run/fuzz/corpus .run/fuzz/artifacts
cp -n tests/unit/sql/golden/*.sql .run/fuzz/corpus/ 2>/dev/null || true
./build-fuzz/sql_parser_fuzzer .run/fuzz/corpus -max_total_time="$SECONDS_TO_RUN" \
  -max_len=4096 -timeout=10 -artifact_prefix=.run/fuzz/artifacts/ -print_final_stats=1
