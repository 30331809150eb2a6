#!/usr/bin/env bash
# Configures and builds build-fuzz/: the one clang build with AddressSanitizer + UBSan (and
# libFuzzer coverage) that serves both `make test-asan` and the fuzzers (docs/decisions.md).
#   scripts/sanitizer-build.sh [cmake build target ...]   (default: everything)
# -O1: faster to compile than -O2 and fast enough to run, as the ASan docs advise. Asserts stay
# on (no NDEBUG); CMakeLists.txt adds line tables and _GLIBCXX_ASSERTIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" \
    -DSLUICE_FUZZ=ON >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build-fuzz -j"${SLUICE_BUILD_JOBS:-$(nproc)}" "${targets[@]}"
