# Sourced by the scripts that run a test server in the background under a pid file (s3.sh,
# gcs.sh, azurite.sh): the start / wait-until-ready / stop / status lifecycle they share.
# The caller sets SERVER (its name in messages), PORT, PORT_VAR (the variable that chooses the
# port), READY_TIMEOUT (seconds), RUN (its folder under .run/), PIDFILE, LOGFILE, READY_WHAT (what
# answers once ready), and defines log(), is_ready (answers HTTP), check_installed (exits with a
# message when the server is missing), launch (starts it in the background, output to LOGFILE)
# and optionally after_stop; then it calls test_server_main "$@".
# shellcheck source=scripts/pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/pidfile.sh"

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another $PORT_VAR"
    exit 1
  fi
  check_installed
  mkdir -p "$RUN"
  # setsid (in launch): not in our process group, so Ctrl-C on `make` does not half-kill it;
  # `stop` ends it by pid.
  launch
  echo $! > "$PIDFILE"
  log "started pid $(cat "$PIDFILE") on http://127.0.0.1:$PORT"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until is_running && is_ready; do
    if ! is_running; then
      log "$SERVER exited during start-up; last lines of its log:"
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready: $READY_WHAT"
}

stop() {
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return; fi
  stop_pidfile "$PIDFILE"
  if declare -F after_stop > /dev/null; then after_stop; fi
}

test_server_main() {
  case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if is_running && is_ready; then log "running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"; else log "not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
  esac
}
