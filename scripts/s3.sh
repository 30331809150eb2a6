#!/usr/bin/env bash
# Starts, stops and checks a local S3-compatible server for the tests: moto's server
# (`moto[server]`, pinned in requirements.txt, in .venv) on 127.0.0.1, in memory; its S3 API
# honours conditional writes (If-None-Match: *) and ListObjectsV2 start-after. Logs live in
# .run/s3-<port>/.
#   scripts/s3.sh start    start (and wait until it answers HTTP)
#   scripts/s3.sh stop     stop what `start` started, by pid
#   scripts/s3.sh status   exit 0 if running and answering
# Environment: S3_PORT (default 9000), S3_READY_TIMEOUT seconds (default 60).
# Clients reach it with AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_ALLOW_HTTP=true and any
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (moto does not check them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${S3_PORT:-9000}
READY_TIMEOUT=${S3_READY_TIMEOUT:-60}
RUN="$ROOT/.run/s3-$PORT"
PIDFILE="$RUN/s3.pid"
MOTO="$ROOT/.venv/bin/moto_server"

log() { printf '[s3] %s\n' "$*" >&2; }
# shellcheck source=scripts/pidfile.sh
. "$ROOT/scripts/pidfile.sh"

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  is_running && "$ROOT/.venv/bin/python" - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/moto-api/" % sys.argv[1], timeout=2).read()
PY
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another S3_PORT"
    exit 1
  fi
  if [ ! -x "$MOTO" ]; then log "moto is not installed in .venv: run scripts/setup.sh"; exit 1; fi
  mkdir -p "$RUN"
  # setsid: not in our process group, so Ctrl-C on `make` does not half-kill it; `stop` ends it by pid.
  setsid "$MOTO" -H 127.0.0.1 -p "$PORT" > "$RUN/s3.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on http://127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_ready; do
    if ! is_running; then
      log "moto exited during start-up; last lines of its log:"
      tail -n 30 "$RUN/s3.log" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready: S3 API at http://127.0.0.1:$PORT"
}

stop() {
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return; fi
  stop_pidfile "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_ready; then log "running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
