#!/usr/bin/env bash
# Starts, stops and checks Azurite (the Azure Storage emulator, npm, pinned in tools/azurite and
# installed into .deps/azurite by scripts/setup.sh) for the tests: its blob service only, on
# 127.0.0.1, data and log in .run/azurite-<port>/ (removed by `stop`).
#   scripts/azurite.sh start    start (and wait until it answers HTTP)
#   scripts/azurite.sh stop     stop what `start` started, by pid
#   scripts/azurite.sh status   exit 0 if running and answering
# Environment: AZURITE_PORT (default 10000), AZURITE_READY_TIMEOUT seconds (default 60).
# Clients reach it as the well-known development account devstoreaccount1 (its key is public,
# in Azurite's README) at http://127.0.0.1:$AZURITE_PORT/devstoreaccount1, e.g. with
# AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$AZURITE_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${AZURITE_PORT:-10000}
READY_TIMEOUT=${AZURITE_READY_TIMEOUT:-60}
RUN="$ROOT/.run/azurite-$PORT"
PIDFILE="$RUN/azurite.pid"
AZURITE="$ROOT/.deps/azurite/node_modules/.bin/azurite-blob"

log() { printf '[azurite] %s\n' "$*" >&2; }
# shellcheck source=scripts/pidfile.sh
. "$ROOT/scripts/pidfile.sh"

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

# Any HTTP answer (an unauthenticated request gets 4xx) means the blob service listens.
is_ready() {
  is_running && "$ROOT/.venv/bin/python" - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:%s/devstoreaccount1?comp=list" % sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
PY
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another AZURITE_PORT"
    exit 1
  fi
  if [ ! -x "$AZURITE" ]; then log "Azurite is not installed in .deps/azurite: run scripts/setup.sh"; exit 1; fi
  rm -rf "$RUN/data"; mkdir -p "$RUN/data"
  # setsid: not in our process group, so Ctrl-C on `make` does not half-kill it; `stop` ends it by pid.
  setsid "$AZURITE" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$RUN/data" --silent \
    --skipApiVersionCheck --disableProductStyleUrl > "$RUN/azurite.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on http://127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_ready; do
    if ! is_running; then
      log "Azurite exited during start-up; last lines of its log:"
      tail -n 30 "$RUN/azurite.log" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready: blob service at http://127.0.0.1:$PORT/devstoreaccount1"
}

stop() {
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return; fi
  stop_pidfile "$PIDFILE"
  rm -rf "$RUN/data"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_ready; then log "running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
