#!/usr/bin/env bash
# `make test` (and CI, through .ci/run): set-up, both builds, the unit tests, both integration
# suites and fuzz-ci. Every test runs once. The unit tests and fuzz corpora run in the clang ASan
# + UBSan build (build-fuzz/, ctest). Each integration test runs in one of two suites
# (tests/integration/conftest.py `--suite`): the ASan suite (the clang ASan + UBSan sluice: every
# test not marked slow, except the modules in GCC_SUITE_MODULES) and the gcc suite (the Release
# sluice, which is all the gcc branch builds: the slow tests and those modules). The longest
# chain, the clang build of sluice and then the ASan suite, starts first; everything else runs in
# the CPU it leaves idle (docs/decisions.md "CI time (5)", "CI time (6)"):
#
#   set-up -> clang build of build-fuzz/sluice -> ASan suite (broker on P+10) ----------------------|
#          |                                  \-> rest of build-fuzz (nice 19) -> ASan ctest -------|-> fuzz-ci
#          \-> gcc build of build/sluice (nice 10) -> pip package tests -> gcc suite (broker on P) ----|
#
# Both branches print their lines as they come, prefixed `[asan] ` / `[gcc] ` (a hang or CI's time
# limit still leaves them in the log), and keep them in .run/test-asan.log / .run/test-gcc.log.
# Each phase prints `[test] +N s: ...` when it ends (seconds since make test started) with the
# CPU seconds the whole run has used so far, and the end repeats every failing test unprefixed,
# so a CI log tells what failed and where time went.
#   scripts/make-test.sh
# Environment: SLUICE_TEST_KAFKA_PORT (P, default 19092: the gcc suite's broker block),
# SLUICE_ASAN_KAFKA_PORT (default P + 10; each suite takes a block of 10 ports: conftest.py).
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
# that branch's (its build, suite, brokers, readers); in the last lines, the whole run's — what
# CI's two cores spent. `times` runs in this shell, not in a $(...) subshell, which has its own.
phase() {
  local file=".run/times.$BASHPID" cpu
  times > "$file"
  cpu=$(awk 'NR == 2 { n = split($0, a, /[ms ]+/); s = 0
    for (i = 1; i + 1 <= n; i += 2) s += a[i] * 60 + a[i + 1]; printf "%d", s }' "$file")
  rm -f "$file"
  echo "[test] +$(since) s: $* (cpu $cpu s)"
}
mkdir -p .run
# SIGTERM/SIGHUP (make passes them to this script only): stop both branches, whose EXIT traps stop
# their brokers, instead of leaving them running as orphans.
trap 'trap - TERM HUP; kill -TERM 0 2>/dev/null; exit 143' TERM HUP

bash scripts/setup.sh || { phase "set-up FAILED"; exit 1; }
phase "set-up done"
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null \
  || { phase "configuring build/ FAILED"; exit 1; }
rm -f .run/test-asan.status .run/test-gcc.status

# The gcc branch: the Release build of sluice at nice 10 (while the clang build of sluice runs it
# takes what that leaves, then half the machine beside the ASan suite), then its suite. The unit
# tests and fuzz corpora are not built here: they run once, in the ASan build ("CI time (6)").
(
  unset SLUICE_TEST_OUTAGE_KAFKA_PORT
  status=0
  if nice -n 10 cmake --build build --target sluice > .run/gcc-build.log 2>&1; then
    phase "gcc build of sluice done"
    # The Python package: `pip install .` into a fresh venv, reusing build/ just built (nothing
    # compiles), then the installed package's API (python/tests, docs/decisions.md "(pk)").
    .venv/bin/python -m pytest python/tests -q -p no:cacheprovider --durations=0 || status=1
    phase "Python package tests done"
    SLUICE_TEST_KAFKA_PORT=$PORT SLUICE_BIN=$ROOT/build/sluice scripts/integration-tests.sh --suite gcc || status=1
    phase "gcc suite done"
  else
    cat .run/gcc-build.log; echo "[test] the gcc build FAILED"; status=1
  fi
  echo "$status" > .run/test-gcc.status
) 2>&1 | tee .run/test-gcc.log | sed -u 's/^/[gcc] /' &
gcc_branch=$!

# The ASan branch: scripts/asan-tests.sh builds build-fuzz/sluice (normal priority), then runs
# the ASan suite with the rest of build-fuzz (nice 19) and the ASan ctest beside it.
(
  unset SLUICE_TEST_OUTAGE_KAFKA_PORT
  SLUICE_TEST_KAFKA_PORT=$ASAN_PORT bash scripts/asan-tests.sh --suite asan
  status=$?
  echo "$status" > .run/test-asan.status
  phase "ASan branch done (exit $status)"
) 2>&1 | tee .run/test-asan.log | sed -u 's/^/[asan] /' &
asan_branch=$!

wait $gcc_branch
wait $asan_branch
gcc_status=$(cat .run/test-gcc.status 2>/dev/null || echo 1)
asan_status=$(cat .run/test-asan.status 2>/dev/null || echo 1)
phase "both branches done: gcc exit $gcc_status, ASan exit $asan_status"
if [ "$gcc_status" -ne 0 ] || [ "$asan_status" -ne 0 ]; then
  # Unprefixed, for whoever reads only the end of the log: each failing test of both suites.
  grep -h '^\(FAILED\|ERROR\) tests/' .run/test-gcc.log .run/test-asan.log
  [ "$gcc_status" -ne 0 ] && echo "[test] FAILED: the gcc branch (lines prefixed [gcc]; .run/test-gcc.log)"
  [ "$asan_status" -ne 0 ] && echo "[test] FAILED: the ASan branch (lines prefixed [asan]; .run/test-asan.log)"
  exit 1
fi
# fuzz-ci alone, after both: its per-input limit is wall time, which CPU shared with a suite would
# eat (docs/decisions.md "CI time (3)").
make --no-print-directory fuzz-ci || { phase "fuzz-ci FAILED"; exit 1; }
phase "fuzz-ci done; make test passed"
