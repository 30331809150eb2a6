#!/usr/bin/env bash
# `make test-asan`: the unit tests, the fuzz corpora and the fast integration tests against the
# AddressSanitizer + UBSan build (build-fuzz/, scripts/sanitizer-build.sh). Every sanitizer
# report goes to a file in .run/asan/ (tests capture sluice's stderr, and a test expecting an
# error exit would not notice a report there); any such file fails the run and is printed.
#   scripts/asan-tests.sh [pytest arguments ...]   (default: the selection in ASAN_PYTEST)
# The unit tests (ctest, one at a time) run beside the integration suite, which mostly waits on
# Kafka, subprocesses and readers: they take the core it leaves idle; their output is printed
# when the suite is done (docs/decisions.md "CI time (3)").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Integration tests under ASan: every test that runs a sluice code path, but not the long chaos
# runs (random SIGKILLs: the paths they cross, a state's restore among them, run here through the
# failpoint crash tests), Spark (its JVM start dominates and it exercises the same sluice code
# paths as the deltalake/DuckDB readers), nor test_kafka_script (scripts/kafka.sh alone, no
# sluice), nor the multi-process scale-out and whole-pipeline-on-object-store modules: their time
# is in process starts, leases' ttls and object-store servers, and the sluice code they run (the
# object stores' requests, the lease, a pipeline's flows) runs here through test_object_storage,
# test_azure_storage, test_gcs_storage, the lease unit tests and the local pipeline modules.
# docs/decisions.md "CI time" and "CI time (3)".
ASAN_PYTEST=(-m "not slow" --ignore=tests/integration/test_kafka_script.py
             --ignore=tests/integration/test_scale_out.py --ignore=tests/integration/test_scale_out_s3.py
             --ignore=tests/integration/test_pipeline_on_s3.py
             --ignore=tests/integration/test_pipeline_on_azure_and_gcs.py)
[ $# -gt 0 ] && ASAN_PYTEST=("$@")

bash scripts/sanitizer-build.sh

REPORTS=$ROOT/.run/asan
rm -rf "$REPORTS"; mkdir -p "$REPORTS"
# halt_on_error/abort: the first report ends the process with a non-zero status.
# handle_abort: std::terminate (an uncaught exception) and abort() leave a report and a trace.
# ARROW_DEFAULT_MEMORY_POOL=system: Arrow buffers come from malloc, so ASan sees their bounds
# (with jemalloc/mimalloc, overruns into neighbouring buffers would go unnoticed).
export ASAN_OPTIONS="log_path=$REPORTS/asan:halt_on_error=1:handle_abort=1:detect_leaks=1:check_initialization_order=1"
# Leaks inside third-party libraries at exit only, each with its reason: scripts/lsan.supp.
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$REPORTS/ubsan:halt_on_error=1:print_stacktrace=1"
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer  # file:line in reports

status=0
# One test at a time and not niced: at nice 19 a busy moment of the suite could starve the unit
# tests that renew a lease within its ttl; one process leaves the suite the other core.
echo "[asan] unit tests and fuzz corpora (ctest in build-fuzz), beside the integration tests (.run/asan-ctest.log)"
(cd build-fuzz && ctest --output-on-failure -j1) > .run/asan-ctest.log 2>&1 &
ctest=$!
echo "[asan] integration tests: ${ASAN_PYTEST[*]}"
SLUICE_BIN=$ROOT/build-fuzz/sluice \
  scripts/integration-tests.sh "${ASAN_PYTEST[@]}" || status=1
if wait $ctest; then
  tail -n 3 .run/asan-ctest.log
else
  cat .run/asan-ctest.log; echo "[asan] unit tests FAILED (log above, .run/asan-ctest.log)"; status=1
fi

reports=("$REPORTS"/*)
if [ -e "${reports[0]}" ]; then
  for r in "${reports[@]}"; do echo "=== $r"; cat "$r"; done
  echo "[asan] FAILED: ${#reports[@]} sanitizer report(s) above (files in .run/asan/)"
  exit 1
fi
[ $status -eq 0 ] && echo "[asan] passed, no sanitizer report" || echo "[asan] FAILED (see above)"
exit $status
