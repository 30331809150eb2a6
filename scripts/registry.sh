#!/usr/bin/env bash
# Starts, stops and checks a schema registry with Confluent's REST API on 127.0.0.1, for the
# Avro decoder's tests and demos. State and logs live in .run/registry-<port>/.
#   scripts/registry.sh start    start (and wait until it answers HTTP)
#   scripts/registry.sh stop     stop what `start` started, by pid
#   scripts/registry.sh status   exit 0 if running and answering
# Environment: REGISTRY_PORT (default 8081), REGISTRY_READY_TIMEOUT seconds (default 60).
# The registry is tools/registry/compat_registry.py, in memory: Apicurio Registry, the intended
# one, cannot be fetched from Maven Central (see docs/decisions.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${REGISTRY_PORT:-8081}
READY_TIMEOUT=${REGISTRY_READY_TIMEOUT:-60}
RUN="$ROOT/.run/registry-$PORT"
PIDFILE="$RUN/registry.pid"
PYTHON=${REGISTRY_PYTHON:-python3}

log() { printf '[registry] %s\n' "$*" >&2; }

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  is_running && "$PYTHON" - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/subjects" % sys.argv[1], timeout=2).read()
PY
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another REGISTRY_PORT"
    exit 1
  fi
  mkdir -p "$RUN"
  # setsid: not in our process group, so Ctrl-C on `make` does not half-kill it; `stop` ends it by pid.
  setsid bash -c 'exec "$@"' _ "$PYTHON" "$ROOT/tools/registry/compat_registry.py" \
    --host 127.0.0.1 --port "$PORT" > "$RUN/registry.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on http://127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_ready; do
    if ! is_running; then
      log "registry exited during start-up; last lines of its log:"
      tail -n 30 "$RUN/registry.log" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready on http://127.0.0.1:$PORT"
}

stop() {
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return; fi
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"
  log "stopped pid $pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_ready; then log "running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
