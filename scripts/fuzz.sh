#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/*_fuzzer.cc) with clang, AddressSanitizer and UBSan, and
# runs each for the given seconds from its seed corpus (fuzz/corpus/<name>/); a crash fails.
#   scripts/fuzz.sh [seconds per target] [target ...]   (default 600 s, every target)
# Working corpora and crash artifacts go to .run/fuzz/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
shift || true
bash scripts/setup.sh
if ! command -v clang++ >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
[ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do n=$(basename "$f" .cc); targets+=("${n%_fuzzer}"); done
fi
cmake --build build-fuzz --target "${targets[@]/%/_fuzzer}"
total=0
for t in "${targets[@]}"; do
  work=.run/fuzz/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  log=$work/last.log
  echo "[fuzz] $t for ${SECONDS_TO_RUN}s"
  if ! ./build-fuzz/${t}_fuzzer "$work/corpus" "fuzz/corpus/$t" -max_total_time="$SECONDS_TO_RUN" \
      -max_len=65536 -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log"
    echo "[fuzz] $t FAILED: the input is in $work/artifacts/ (add it to fuzz/corpus/$t/ with the fix)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "[fuzz] $t: ${runs:-?} executions, no crash"
  total=$((total + ${runs:-0}))
done
echo "[fuzz] all ${#targets[@]} targets: $total executions, no crash"
