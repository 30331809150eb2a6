#!/usr/bin/env bash
# `make run`: a local broker, a burst of sample JSON events, the quickstart SQL pipeline
# (bronze -> silver -> gold), and what it wrote. The broker keeps its data between runs (so the table's offsets stay valid)
# and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKA_PORT=${DEMO_KAFKA_PORT:-9092}
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
trap 'scripts/kafka.sh stop' EXIT
scripts/kafka.sh start
.venv/bin/python tools/generate_events.py --bootstrap "$BOOTSTRAP" --topic user-events \
  --count "${DEMO_EVENTS:-5000}"
./build/sluice validate examples/quickstart
./build/sluice run examples/quickstart --once --bootstrap-servers "$BOOTSTRAP"
.venv/bin/python tools/show_table.py examples/quickstart/data/tables/user_events_bronze --limit 2
./build/sluice table show examples/quickstart/data/tables/revenue_by_type
