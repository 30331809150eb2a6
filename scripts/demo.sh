#!/usr/bin/env bash
# `make run`: the product's story end to end. A local Kafka broker; tools/demo_events.py sending
# user events, transactions and IoT readings (with malformed, duplicate, late and out-of-range
# records) a wave a second; the medallion pipeline (examples/medallion: bronze with dead letters,
# silver with expectations, quarantine and a de-duplication under a watermark, gold windows and
# materialized views) running continuously with the server on (its URL printed) until Ctrl-C.
# Then what the tables hold, read by deltalake (tools/demo_summary.py).
#   DEMO_SECONDS=N       stop by itself after N seconds (default: run until Ctrl-C)
#   DEMO_RATE=R          records per topic a second (default 200)
#   DEMO_SERVE=ADDR:PORT where the server listens (default 127.0.0.1:8080; port 0: any free port)
#   DEMO_KAFKA_PORT=P    the broker's port (default 9092); DEMO_FRESH=1 starts from empty tables
# The broker keeps its data between runs (so the tables' offsets stay valid); on exit the demo stops
# it only if the demo started it (one already running on that port is left running).
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKA_PORT=${DEMO_KAFKA_PORT:-9092}
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
PIPE=examples/medallion
SERVE=${DEMO_SERVE:-127.0.0.1:8080}
SECONDS_TO_RUN=${DEMO_SECONDS:-0}
RATE=${DEMO_RATE:-200}
case "$SECONDS_TO_RUN$RATE" in *[!0-9]*) echo "demo: DEMO_SECONDS and DEMO_RATE are whole numbers" >&2; exit 2 ;; esac
[ "$RATE" -ge 1 ] || { echo "demo: DEMO_RATE must be at least 1" >&2; exit 2; }

gen_pid="" run_pid=""
stop_children() {
  # Only what this script started, by pid.
  [ -n "$run_pid" ] && kill -TERM "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null || true
  [ -n "$gen_pid" ] && kill -TERM "$gen_pid" 2>/dev/null && wait "$gen_pid" 2>/dev/null || true
  run_pid="" gen_pid=""
}
started_broker=0
stop_broker() { [ "$started_broker" = 1 ] && scripts/kafka.sh stop || true; }
trap 'stop_children; stop_broker' EXIT
# Ctrl-C reaches sluice and the generator too (same process group): each stops cleanly, sluice
# committing what it read; the script goes on to the summary.
trap 'echo; echo "demo: stopping (Ctrl-C)"' INT

# DEMO_FRESH restarts a running broker with no data: that one is then the demo's too.
scripts/kafka.sh status > /dev/null 2>&1 || started_broker=1
if [ "${DEMO_FRESH:-0}" = 1 ]; then
  started_broker=1
  scripts/kafka.sh start --fresh
  rm -rf "$PIPE/data"
else
  scripts/kafka.sh start
fi
./build/sluice validate "$PIPE" > /dev/null
echo "demo: pipeline '$PIPE' validated"

# A first wave (it creates the topics, so sluice finds them), then a wave a second.
.venv/bin/python tools/demo_events.py --bootstrap "$BOOTSTRAP" --count "$RATE" --wave 0
.venv/bin/python tools/demo_events.py --bootstrap "$BOOTSTRAP" --rate "$RATE" --wave 1 \
  $([ "$SECONDS_TO_RUN" -gt 0 ] && echo --seconds "$SECONDS_TO_RUN") > /dev/null &
gen_pid=$!

port=${SERVE##*:}
[ "$port" = 0 ] || echo "demo: the pipeline's server: http://$SERVE/ (dashboard), http://$SERVE/api (JSON API), http://$SERVE/metrics (Prometheus); Ctrl-C stops"
./build/sluice run "$PIPE" --bootstrap-servers "$BOOTSTRAP" --serve="$SERVE" \
  > >(trap '' INT; exec grep --line-buffered -E 'serving|stopped|error|warning') &
run_pid=$!

if [ "$SECONDS_TO_RUN" -gt 0 ]; then
  # The demo's length (not a synchronisation); then sluice is asked to stop and commits.
  end=$((SECONDS + SECONDS_TO_RUN))
  while [ $SECONDS -lt $end ] && kill -0 "$run_pid" 2>/dev/null; do sleep 1 || true; done
  kill -TERM "$run_pid" 2>/dev/null || true
fi
# Until sluice has ended (a Ctrl-C interrupts `wait`, not sluice's clean stop); then its own
# exit code (bash keeps it for the pid). The filter ignores Ctrl-C, so sluice's stdout stays
# open while it stops; sluice ignores SIGPIPE anyway. Any non-zero code is a failure (a clean
# stop on Ctrl-C or SIGTERM exits 0).
while kill -0 "$run_pid" 2>/dev/null; do wait "$run_pid" || true; done
status=0
wait "$run_pid" || status=$?
run_pid=""
stop_children
if [ "$status" -ne 0 ]; then
  echo "demo: sluice run ended with exit code $status (its error is above)" >&2
  exit "$status"
fi
echo
.venv/bin/python tools/demo_summary.py "$PIPE/data"
