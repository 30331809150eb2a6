# Sourced by the scripts that run a server in the background under a pid file (registry.sh, and
# through test_server.sh s3.sh, gcs.sh, azurite.sh), after they define log().
# stop_pidfile <pidfile>: TERM, up to 5 s for the process to end, then KILL; the pid file goes.
stop_pidfile() {
  local pidfile=$1 pid
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$pidfile"
  log "stopped pid $pid"
}
