#!/usr/bin/env bash
# `make test-asan`: the unit tests, the fuzz corpora and the fast integration tests against the
# AddressSanitizer + UBSan build (build-fuzz/, scripts/sanitizer-build.sh). Every sanitizer
# report goes to a file in .run/asan/ (tests capture sluice's stderr, and a test expecting an
# error exit would not notice a report there); any such file fails the run and is printed.
#   scripts/asan-tests.sh [pytest arguments ...]   (default: the selection in ASAN_PYTEST)
# Only build-fuzz/sluice is built before the integration suite starts; the rest of the build
# (unit tests, fuzz replays and fuzzers) runs beside the suite at nice 19, then the unit tests
# (ctest, two at a time, normal priority): the suite mostly waits on Kafka, subprocesses and
# readers, and they take the CPU it leaves idle. Their output (.run/asan-ctest.log) is printed
# when the suite is done (docs/decisions.md "CI time (3)", "CI time (5)"). `make test` runs the
# same build, ctest and suite, and the long suite beside them (scripts/make-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Integration tests: the quick suite (`--suite quick`, tests/integration/conftest.py): every
# test not marked slow (long chaos runs, most Spark tests, volume runs), but the modules
# LONG_SUITE_MODULES. `make test` runs the long suite beside it against the same binary
# (scripts/make-test.sh). docs/decisions.md "CI time", "CI time (3)", "CI time (7)".
ASAN_PYTEST=(--suite quick)  # tests/integration/conftest.py: not slow, not LONG_SUITE_MODULES
[ $# -gt 0 ] && ASAN_PYTEST=("$@")

bash scripts/sanitizer-build.sh sluice

source scripts/sanitizer-env.sh  # ASAN_OPTIONS and the rest; reports to .run/asan/

status=0
suite_start=$SECONDS
# The rest of the build at nice 19 (the suite keeps the CPU it asks for), then the unit tests one
# at a time and not niced: at nice 19 a busy moment of the suite could starve the unit tests that
# renew a lease within its ttl; one process leaves the suite the other core.
echo "[asan] the rest of build-fuzz (nice 19), then unit tests and fuzz corpora (ctest), beside the integration tests (.run/asan-ctest.log)"
# The build runs without the sanitizer options above, as before them (gtest discovery runs the
# unit binary at build time: a report there is the build's, not a test's).
# Its log says when the build ended, so a CI log shows whether it or the suite came last.
(env -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS -u ARROW_DEFAULT_MEMORY_POOL \
   nice -n 19 bash scripts/sanitizer-build.sh && echo "[asan] +$((SECONDS - suite_start)) s: build-fuzz built, ctest starts" \
   && cd build-fuzz && ctest --output-on-failure --timeout 600 -j2) > .run/asan-ctest.log 2>&1 &
ctest=$!
echo "[asan] integration tests: ${ASAN_PYTEST[*]}"
SLUICE_BIN=$ROOT/build-fuzz/sluice \
  scripts/integration-tests.sh "${ASAN_PYTEST[@]}" || status=1
echo "[asan] +$((SECONDS - suite_start)) s: integration tests done"
if wait $ctest; then
  grep '^\[asan\] +' .run/asan-ctest.log || true
  tail -n 3 .run/asan-ctest.log
else
  cat .run/asan-ctest.log; echo "[asan] the rest of the build or the unit tests FAILED (log above, .run/asan-ctest.log)"; status=1
fi

reports=("$REPORTS"/*)
if [ -e "${reports[0]}" ]; then
  for r in "${reports[@]}"; do echo "=== $r"; cat "$r"; done
  echo "[asan] FAILED: ${#reports[@]} sanitizer report(s) above (files in .run/asan/)"
  exit 1
fi
[ $status -eq 0 ] && echo "[asan] passed, no sanitizer report" || echo "[asan] FAILED (see above)"
exit $status
