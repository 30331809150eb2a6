#!/usr/bin/env bash
# Runs a build's unit tests (sluice_unit_tests) as N concurrent processes, each one gtest shard
# (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX: every test in exactly one shard), instead of one
# process per test as ctest's discovered entries do. `make test` runs the unit tests this way
# (docs/decisions.md "CI time (8)"): under ASan every process start costs ~0.1-0.2 CPU-s
# (sanitizer runtime, static initialisers, LeakSanitizer's check at exit), ~967 of them, while
# the tests themselves took ~124 CPU-s in two shards. `ctest -R ...` still runs one test alone.
#   scripts/unit-shards.sh BUILD_DIR [N]     (N: default 2, the machine's cores in CI)
# Each shard's whole output goes to .run/unit-shard-<i>.log; printed here: every failing test's
# output, or the test a shard died in (its last `[ RUN      ]` line), and one summary line per
# shard. A shard is stopped after SLUICE_UNIT_SHARD_TIMEOUT s (default 1800): a hung test.
# Exit status 0 only if every shard ran to the end and passed. Sanitizer options come from the
# caller's environment (scripts/sanitizer-env.sh in make test).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/unit-shards.sh BUILD_DIR [N]}
shards=${2:-2}
timeout_s=${SLUICE_UNIT_SHARD_TIMEOUT:-1800}
binary=$build/sluice_unit_tests
if [ ! -x "$binary" ]; then
  echo "unit-shards: $binary is not built" >&2
  exit 2
fi
case $shards in ''|*[!0-9]*|0) echo "unit-shards: N must be a whole number above 0, got '$shards'" >&2; exit 2 ;; esac
mkdir -p .run
# SLUICE_TEST_DATA_DIR and the tests' scratch folders are absolute or under $TMPDIR; the tests
# run from the build folder as ctest runs them.
pids=()
for ((i = 0; i < shards; i++)); do
  (
    cd "$build" && GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i \
      exec timeout -s ABRT -k 30 "$timeout_s" ./sluice_unit_tests --gtest_color=no
  ) > ".run/unit-shard-$i.log" 2>&1 &
  pids+=($!)
done
status=0
for ((i = 0; i < shards; i++)); do
  wait "${pids[$i]}"
  rc=$?
  log=.run/unit-shard-$i.log
  summary=$(grep -E '^\[==========\] [0-9]+ tests? from .* ran|^\[  PASSED  \] [0-9]+ tests?\.|^\[  FAILED  \] [0-9]+ tests?, listed' "$log" | tr '\n' ' ')
  if [ $rc -eq 0 ]; then
    echo "unit shard $((i + 1))/$shards: ${summary:-no summary} (exit 0)"
    continue
  fi
  status=1
  echo "unit shard $((i + 1))/$shards FAILED (exit $rc; whole output in $log): ${summary:-no summary}"
  failed=$(sed -n 's/^\[  FAILED  \] \([A-Za-z0-9_/.]*\)\(, .*\| (.*\)\?$/\1/p' "$log" | sort -u)
  if [ -n "$failed" ]; then
    # Each failing test's lines, from its RUN line to its FAILED line.
    for t in $failed; do
      awk -v t="$t" '$0 == "[ RUN      ] " t { on = 1 } on { print } on && index($0, "[  FAILED  ] " t) == 1 { on = 0 }' "$log"
    done
  else
    # It died (a crash, a sanitizer's abort, the timeout): the test it was in.
    last=$(grep '^\[ RUN      \]' "$log" | tail -n 1)
    echo "the shard stopped inside: ${last#\[ RUN      \] }"
    tail -n 40 "$log"
  fi
done
exit $status
