#!/usr/bin/env bash
# Starts a fresh Kafka broker for the tests, runs pytest against it, and stops the broker
# whatever happens. Extra arguments go to pytest (test files among them narrow the run to those). Every test phase of 1 s or more is listed at the end with its duration (BENCHMARKS.md "CI time").
set -euo pipefail
cd "$(dirname "$0")/.."
# The suite takes ports KAFKA_PORT..KAFKA_PORT+9: its broker's six, then the brokers two test
# modules start (tests/integration/conftest.py KAFKA_PORT); two suites side by side (`make test`,
# scripts/make-test.sh) sit ten ports apart.
export KAFKA_PORT=${SLUICE_TEST_KAFKA_PORT:-19092}
export SLUICE_TEST_KAFKA_PORT=$KAFKA_PORT
trap 'scripts/kafka.sh stop' EXIT
# What sluice's main() sets before executing itself again (src/sluice/cli/main.cc
# purge_freed_memory_at_once): set here, no sluice the tests start executes itself twice (the
# same settings, one start-up less each; docs/decisions.md "CI time (9)"). A value the caller set
# is kept; test_install.py tests the exec with an environment of its own.
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-0} MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-0}
# TLS, SASL and mutual-TLS listeners too (KAFKA_PORT+2..+5) for tests/integration/test_kafka_security.py.
KAFKA_SECURE=1 scripts/kafka.sh start --fresh
# Brokers the tests start (outage, test_kafka_script) take ports relative to KAFKA_PORT: a
# KAFKA_SECURE or KAFKA_CONTROLLER_PORT from the caller's environment would push them into the
# other suite's block (scripts/make-test.sh) or onto one shared controller port.
unset KAFKA_SECURE KAFKA_CONTROLLER_PORT
# Test files or folders among the arguments narrow the run to them; otherwise all of
# tests/integration runs (-k, -m and other options narrow either).
targets=(tests/integration)
for a in "$@"; do
  case $a in -*) ;; tests/*|*.py|*.py::*) targets=(); break ;; esac  # not --ignore=x.py
done
SLUICE_TEST_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" .venv/bin/python -m pytest "${targets[@]}" \
  -p no:cacheprovider -p no:sluice --timeout=900 -ra --durations=0 --durations-min=1 "$@"
