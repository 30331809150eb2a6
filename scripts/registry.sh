#!/usr/bin/env bash
# Starts, stops and checks Apicurio Registry (fetched from Maven Central by scripts/setup.sh
# into .deps/apicurio) on 127.0.0.1, in-memory storage; its Confluent-compatible API is at
# http://127.0.0.1:<port>/apis/ccompat/v7. State and logs live in .run/registry-<port>/.
#   scripts/registry.sh start    start (and wait until it answers HTTP)
#   scripts/registry.sh stop     stop what `start` started, by pid
#   scripts/registry.sh status   exit 0 if running and answering
# Environment: REGISTRY_PORT (default 8081), REGISTRY_READY_TIMEOUT seconds (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${REGISTRY_PORT:-8081}
READY_TIMEOUT=${REGISTRY_READY_TIMEOUT:-120}
JAR=$(ls "$ROOT"/.deps/apicurio/registry/apicurio-registry-app-*-runner.jar 2>/dev/null | head -1 || true)
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
urllib.request.urlopen("http://127.0.0.1:%s/apis/ccompat/v7/subjects" % sys.argv[1], timeout=2).read()
PY
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another REGISTRY_PORT"
    exit 1
  fi
  if [ -z "$JAR" ]; then log "Apicurio Registry is not installed: run scripts/setup.sh"; exit 1; fi
  mkdir -p "$RUN"
  # setsid: not in our process group, so Ctrl-C on `make` does not half-kill it; `stop` ends it by pid.
  # Loopback only; a small heap and the quick JIT tier: it serves a handful of test requests.
  setsid bash -c 'exec "$@"' _ java -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port=0 \
    -Djava.io.tmpdir="$RUN" -jar "$JAR" > "$RUN/registry.log" 2>&1 < /dev/null &
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
  log "ready: Confluent-compatible API at http://127.0.0.1:$PORT/apis/ccompat/v7"
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
