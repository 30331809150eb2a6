#!/usr/bin/env bash
# `make test` after the gcc unit tests: the gcc integration suite and test-asan side by side
# (docs/decisions.md "CI time (4)"). Both suites mostly wait (on Kafka, subprocesses and readers),
# so the second no longer waits for the first:
#   - the gcc integration suite (scripts/integration-tests.sh, its broker on SLUICE_TEST_KAFKA_PORT,
#     default 19092), its output on the terminal as before;
#   - beside it, the clang ASan + UBSan build of build-fuzz/sluice at nice 19 (it takes the CPU the
#     suite leaves idle), then at once test-asan (scripts/asan-tests.sh: its own broker ten ports
#     up, the rest of the clang build at nice 19 and then the ASan unit tests beside its suite).
#     Its output is printed as it comes, each line prefixed `[asan] ` (a hang or a CI time limit
#     then still leaves its lines in the CI log), and kept in .run/test-asan.log.
# Exit status: non-zero if either failed (each one's status is printed). fuzz-ci comes after
# (Makefile `test`): the fuzzers' per-input limit is wall time, which CPU shared with a suite
# would eat (docs/decisions.md "CI time (3)").
#   scripts/test-suites.sh [pytest arguments for both suites ...]   (default: each one's own set)
# Environment: SLUICE_BIN (the gcc sluice, default build/sluice), SLUICE_TEST_KAFKA_PORT,
# SLUICE_ASAN_KAFKA_PORT (default SLUICE_TEST_KAFKA_PORT + 10; each suite takes a block of 10
# ports: tests/integration/conftest.py KAFKA_PORT).
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
# then fails to start: "Address already in use"); CI's defaults lie below it.
if read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
  for p in "$PORT" "$ASAN_PORT"; do
    if [ $((p + 9)) -ge "$lo" ] && [ "$p" -le "$hi" ]; then
      echo "[test] note: ports $p-$((p + 9)) lie in the ephemeral range $lo-$hi; a client socket may hold one (ports below $lo avoid that)"
    fi
  done
fi
export SLUICE_BIN=${SLUICE_BIN:-$ROOT/build/sluice}
mkdir -p .run
LOG=.run/test-asan.log
start=$(date +%s)
since() { echo $(( $(date +%s) - start )); }

# fd 3: the terminal, for the one line that says when test-asan starts.
exec 3>&1
# SIGTERM/SIGHUP (make passes them to this script only): stop both suites, whose EXIT traps stop
# their brokers, instead of leaving them running as orphans.
trap 'trap - TERM HUP; kill -TERM 0 2>/dev/null; exit 143' TERM HUP
rm -f .run/test-asan.status
(
  # An outage-broker port set by hand would be shared by both suites: the ASan one takes its own.
  unset SLUICE_TEST_OUTAGE_KAFKA_PORT
  echo "[test] clang build of build-fuzz/sluice at nice 19 (.run/sanitizer-build.log)"
  if ! nice -n 19 bash scripts/sanitizer-build.sh sluice > .run/sanitizer-build.log 2>&1 3>&-; then
    cat .run/sanitizer-build.log
    echo "[test] the clang build failed (log above, .run/sanitizer-build.log)"
    echo "[test] the clang build failed at +$(since) s (its log is among the [asan] lines; .run/sanitizer-build.log)" >&3
    exit 1
  fi
  echo "[test] +$(since) s: build-fuzz/sluice built; test-asan starts beside the gcc suite (broker on $ASAN_PORT, log $LOG)" >&3
  SLUICE_TEST_KAFKA_PORT=$ASAN_PORT bash scripts/asan-tests.sh "$@" 3>&-
  status=$?
  echo "$status" > .run/test-asan.status
  echo "[test] +$(since) s: test-asan done (exit $status)" >&3
  exit $status
) 2>&1 | tee "$LOG" | sed -u 's/^/[asan] /' &
side=$!
# Ctrl-C reaches both (one process group): each suite's EXIT trap stops its own broker.

SLUICE_TEST_KAFKA_PORT=$PORT scripts/integration-tests.sh "$@" 3>&-
gcc_status=$?
gcc_done=$(since)
echo "[test] +$gcc_done s: gcc integration suite done (exit $gcc_status); waiting for test-asan"
wait $side
# The pipeline's status is sed's; the subshell wrote its own (none: it died before the end).
asan_status=$(cat .run/test-asan.status 2>/dev/null || echo 1)
echo "[test] gcc integration suite: exit $gcc_status after $gcc_done s; test-asan: exit $asan_status after $(since) s"
if [ $gcc_status -ne 0 ] || [ $asan_status -ne 0 ]; then
  [ $gcc_status -ne 0 ] && echo "[test] FAILED: the gcc integration suite (its output above the test-asan log)"
  [ $asan_status -ne 0 ] && echo "[test] FAILED: test-asan (its lines above, prefixed [asan]; $LOG)"
  exit 1
fi
