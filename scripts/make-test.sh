#!/usr/bin/env bash
# `make test` (and CI, through .ci/run): set-up, ONE build (clang, ASan + UBSan, -O1, libFuzzer
# coverage: build-fuzz/, scripts/sanitizer-build.sh), the unit tests and fuzz corpora (ctest),
# every integration test once in one of two suites side by side against that build's `sluice`,
# then fuzz-ci. CI's two cores are the limit (its time is CPU: two builds of the library were
# more than half of it), so nothing is compiled twice (docs/decisions.md "CI time (7)"):
#
#   set-up -> clang build of build-fuzz/sluice -> quick suite (broker on P+10) -------------------------|
#                                              |-> long suite (broker on P) -------------------------------|-> fuzz-ci
#                                              \-> rest of build-fuzz (nice 19) -> python/tests -> unit
#                                                   tests (2 shards) -> ctest (the rest) ----------------|
#
# The quick suite: every integration test not marked slow, but the modules LONG_SUITE_MODULES
# (tests/integration/conftest.py `--suite`); the long suite: the slow tests and those modules.
# Every sanitizer report of either suite or of ctest goes to .run/asan/ and fails the run.
# Each branch prints its lines as they come, prefixed `[quick] ` / `[long] ` / `[ctest] `, and
# keeps them in .run/test-quick.log / .run/test-long.log / .run/asan-ctest.log. Each phase prints
# `[test] +N s: ... (cpu N s)` when it ends (seconds since make test started; the CPU seconds of
# what that shell waited for), and the end repeats every failing test unprefixed.
#   scripts/make-test.sh
# Environment: SLUICE_TEST_KAFKA_PORT (P, default 19092: the long suite's broker block),
# SLUICE_ASAN_KAFKA_PORT (default P + 10: the quick suite's; each suite takes a block of 10 ports).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${SLUICE_TEST_KAFKA_PORT:-19092}
ASAN_PORT=${SLUICE_ASAN_KAFKA_PORT:-$((PORT + 10))}
if [ $((ASAN_PORT - PORT)) -lt 10 ] && [ $((PORT - ASAN_PORT)) -lt 10 ]; then
  echo "[test] SLUICE_ASAN_KAFKA_PORT=$ASAN_PORT is within 10 ports of SLUICE_TEST_KAFKA_PORT=$PORT; the suites' brokers would collide" >&2
  exit 2
fi
# Ports in the kernel's ephemeral range can be taken by any client socket for a while (a broker
# then fails to start: "Address already in use"); the defaults lie below it.
if read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
  for p in "$PORT" "$ASAN_PORT"; do
    if [ $((p + 9)) -ge "$lo" ] && [ "$p" -le "$hi" ]; then
      echo "[test] note: ports $p-$((p + 9)) lie in the ephemeral range $lo-$hi; a client socket may hold one (ports below $lo avoid that)"
    fi
  done
fi
start=$(date +%s)
since() { echo $(( $(date +%s) - start )); }
# CPU seconds (user + system) of the processes this shell has waited for: in a branch's lines,
# that branch's; in the main lines, everything so far. `times` runs in this shell, not in a
# $(...) subshell, which has its own.
phase() {
  local file=".run/times.$BASHPID" cpu
  times > "$file"
  cpu=$(awk 'NR == 2 { n = split($0, a, /[ms ]+/); s = 0
    for (i = 1; i + 1 <= n; i += 2) s += a[i] * 60 + a[i + 1]; printf "%d", s }' "$file")
  rm -f "$file"
  echo "[test] +$(since) s: $* (cpu $cpu s)"
}
mkdir -p .run
# SIGTERM/SIGHUP (make passes them to this script only): stop every branch, whose EXIT traps stop
# their brokers, instead of leaving them running as orphans.
trap 'trap - TERM HUP; kill -TERM 0 2>/dev/null; exit 143' TERM HUP

bash scripts/setup.sh || { phase "set-up FAILED"; exit 1; }
phase "set-up done"
# The build the suites run, first and alone: nothing else has anything to do before it.
if ! bash scripts/sanitizer-build.sh sluice > .run/sluice-build.log 2>&1; then
  cat .run/sluice-build.log; phase "the clang build of build-fuzz/sluice FAILED"; exit 1
fi
phase "clang build of build-fuzz/sluice done"

# ASAN_OPTIONS and the rest, with reports to .run/asan/ (scripts/sanitizer-env.sh).
source scripts/sanitizer-env.sh
rm -f .run/test-*.status

# The rest of build-fuzz (unit tests, fuzzers) at nice 19, then ctest (two at a time, not
# niced), beside the suites: they mostly wait on Kafka, subprocesses and readers ("CI time (3)").
# The build runs without the sanitizer options (gtest discovery runs the unit binary at build
# time: a report there is the build's, not a test's).
(
  status=0
  if env -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS -u ARROW_DEFAULT_MEMORY_POOL \
       nice -n 19 bash scripts/sanitizer-build.sh > .run/sanitizer-build.log 2>&1; then
    phase "rest of build-fuzz built"
    # The Python side (python/tests): the DataFrame layer and the definer against build-fuzz's
    # sluice, then `pip install .` into a fresh venv reusing build-fuzz (nothing compiles; it must
    # run here, after the build, never beside another build of that tree) and the installed API.
    SLUICE_BIN=$ROOT/build-fuzz/sluice SLUICE_WHEEL_BUILD_DIR=build-fuzz .venv/bin/python -m pytest python/tests \
      -q -p no:cacheprovider -p no:sluice --durations=5 > .run/python-tests.log 2>&1 || status=1
    tail -n 8 .run/python-tests.log
    [ $status -eq 0 ] || { cat .run/python-tests.log; echo "[test] python/tests FAILED (.run/python-tests.log)"; }
    phase "python/tests done, unit tests start"
    # The unit tests in two gtest shards (one process each, not one per test: "CI time (8)"),
    # then ctest's other entries (fuzz corpora, module boundaries).
    bash scripts/unit-shards.sh build-fuzz 2 || { status=1; echo "[test] unit tests FAILED (.run/unit-shard-*.log)"; }
    phase "unit tests done, ctest (fuzz corpora, boundaries) starts"
    if ! (cd build-fuzz && ctest --output-on-failure --timeout 600 -j2 -LE unit) > .run/asan-ctest.log 2>&1; then
      status=1
      grep -E '^ *[0-9]+ - |Failed|\*\*\*' .run/asan-ctest.log | tail -n 40; echo "[test] ctest FAILED (.run/asan-ctest.log)"
    fi
    tail -n 3 .run/asan-ctest.log
  else
    cat .run/sanitizer-build.log; echo "[test] the rest of build-fuzz FAILED"; status=1
  fi
  phase "ctest done (exit $status)"
  echo "$status" > .run/test-ctest.status
) 2>&1 | sed -u 's/^/[ctest] /' &
ctest_branch=$!

suite() {  # suite NAME PORT
  (
    unset SLUICE_TEST_OUTAGE_KAFKA_PORT
    status=0
    SLUICE_TEST_KAFKA_PORT=$2 SLUICE_BIN=$ROOT/build-fuzz/sluice scripts/integration-tests.sh --suite "$1" || status=1
    phase "$1 suite done (exit $status)"
    echo "$status" > ".run/test-$1.status"
  ) 2>&1 | tee ".run/test-$1.log" | sed -u "s/^/[$1] /"
}
suite quick "$ASAN_PORT" &
quick_branch=$!
suite long "$PORT" &
long_branch=$!

wait $quick_branch $long_branch $ctest_branch
failed=()
for b in quick long ctest; do
  [ "$(cat .run/test-$b.status 2>/dev/null || echo 1)" -eq 0 ] || failed+=("$b")
done
reports=(.run/asan/*)
[ -e "${reports[0]}" ] && failed+=("sanitizer reports")
phase "suites and ctest done${failed:+; FAILED: ${failed[*]}}"
if [ ${#failed[@]} -gt 0 ]; then
  # Unprefixed, for whoever reads only the end of the log.
  if [ -e "${reports[0]}" ]; then
    for r in "${reports[@]}"; do echo "=== $r"; cat "$r"; done
    echo "[test] FAILED: ${#reports[@]} sanitizer report(s) above (files in .run/asan/)"
  fi
  grep -h '^\(FAILED\|ERROR\) tests/' .run/test-quick.log .run/test-long.log
  echo "[test] FAILED: ${failed[*]} (logs: .run/test-quick.log, .run/test-long.log, .run/asan-ctest.log)"
  exit 1
fi
# fuzz-ci alone, after both: its per-input limit is wall time, which CPU shared with a suite would
# eat (docs/decisions.md "CI time (3)").
make --no-print-directory fuzz-ci || { phase "fuzz-ci FAILED"; exit 1; }
phase "fuzz-ci done; make test passed"
