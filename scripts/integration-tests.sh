#!/usr/bin/env bash
# Starts a fresh Kafka broker for the tests, runs pytest against it, and stops the broker
# whatever happens. Extra arguments go to pytest. The 25 slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKA_PORT=${SLUICE_TEST_KAFKA_PORT:-19092}
trap 'scripts/kafka.sh stop' EXIT
# TLS, SASL and mutual-TLS listeners too (KAFKA_PORT+2..+5) for tests/integration/test_kafka_security.py.
KAFKA_SECURE=1 scripts/kafka.sh start --fresh
SLUICE_TEST_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" .venv/bin/python -m pytest tests/integration \
  -p no:cacheprovider --timeout=900 -ra --durations=25 "$@"
