#!/usr/bin/env bash
# Starts, stops and checks Apicurio Registry (fetched from Maven Central by scripts/setup.sh
# into .deps/apicurio) on 127.0.0.1, in-memory storage; its Confluent-compatible API is at
# http://127.0.0.1:<port>/apis/ccompat/v7. State and logs live in .run/registry-<port>/.
#   scripts/registry.sh start    start (and wait until it answers HTTP)
#   scripts/registry.sh stop     stop what `start` started, by pid
#   scripts/registry.sh status   exit 0 if running and answering
# Environment: REGISTRY_PORT (default 8081), REGISTRY_READY_TIMEOUT seconds (default 120),
#              REGISTRY_TLS=1: also serve the API over HTTPS with basic auth on REGISTRY_PORT+1
#              (scripts/registry_tls_proxy.py in front of Apicurio), with a CA and certificate made
#              at start: .run/registry-<port>/tls/ca.crt; the accepted 'user:password' is in
#              .run/registry-<port>/tls/auth.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${REGISTRY_PORT:-8081}
READY_TIMEOUT=${REGISTRY_READY_TIMEOUT:-120}
JAR=$(ls "$ROOT"/.deps/apicurio/registry/apicurio-registry-app-*-runner.jar 2>/dev/null | head -1 || true)
RUN="$ROOT/.run/registry-$PORT"
PIDFILE="$RUN/registry.pid"
PYTHON=${REGISTRY_PYTHON:-python3}
TLS_ON=${REGISTRY_TLS:-0}
TLS_PORT=$((PORT + 1))
TLS="$RUN/tls"
PROXY_PIDFILE="$RUN/proxy.pid"

log() { printf '[registry] %s\n' "$*" >&2; }
# shellcheck source=scripts/pidfile.sh
. "$ROOT/scripts/pidfile.sh"

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  is_running && "$PYTHON" - "$PORT" <<'PY' 2>/dev/null && { [ "$TLS_ON" != 1 ] || tls_ready; }
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/apis/ccompat/v7/subjects" % sys.argv[1], timeout=2).read()
PY
}

# The HTTPS front answers, with the CA made for it and the accepted credentials.
tls_ready() {
  [ -f "$PROXY_PIDFILE" ] && kill -0 "$(cat "$PROXY_PIDFILE")" 2>/dev/null && \
    "$PYTHON" - "$TLS_PORT" "$TLS/ca.crt" "$TLS/auth" <<'PY' 2>/dev/null
import base64, ssl, sys, urllib.request
port, ca, auth = sys.argv[1:4]
token = base64.b64encode(open(auth).readline().strip().encode()).decode()
req = urllib.request.Request("https://127.0.0.1:%s/apis/ccompat/v7/subjects" % port,
                             headers={"Authorization": "Basic " + token})
urllib.request.urlopen(req, timeout=2, context=ssl.create_default_context(cafile=ca)).read()
PY
}

# A CA, a server certificate it signs for 127.0.0.1 and localhost, and the accepted credentials;
# then the HTTPS front (scripts/registry_tls_proxy.py) on TLS_PORT.
start_tls() {
  mkdir -p "$TLS"
  : > "$TLS/openssl.log"
  ossl() {
    openssl "$@" 2>>"$TLS/openssl.log" || {
      log "openssl $1 failed:"; cat "$TLS/openssl.log" >&2; exit 1
    }
  }
  ossl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sluice test registry CA" \
    -keyout "$TLS/ca.key" -out "$TLS/ca.crt"
  ossl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$TLS/server.key" -out "$TLS/server.csr"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$TLS/san.ext"
  ossl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
    -days 30 -extfile "$TLS/san.ext" -out "$TLS/server.crt"
  printf 'sluice:registry-%s\n' "$(openssl rand -hex 8)" > "$TLS/auth"
  chmod 600 "$TLS"/*.key "$TLS/auth"
  setsid bash -c 'exec "$@"' _ "$PYTHON" "$ROOT/scripts/registry_tls_proxy.py" "$TLS_PORT" "$PORT" \
    "$TLS/server.crt" "$TLS/server.key" "$TLS/auth" > "$RUN/proxy.log" 2>&1 < /dev/null &
  echo $! > "$PROXY_PIDFILE"
  log "HTTPS front pid $(cat "$PROXY_PIDFILE") on https://127.0.0.1:$TLS_PORT (CA $TLS/ca.crt)"
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"))"; wait_ready; return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is already in use by another process; choose another REGISTRY_PORT"
    exit 1
  fi
  if [ "$TLS_ON" = 1 ] && (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null; then
    log "port $TLS_PORT on 127.0.0.1 (the HTTPS front) is already in use by another process; choose another REGISTRY_PORT"
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
  [ "$TLS_ON" = 1 ] && start_tls
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
    if [ "$TLS_ON" = 1 ] && ! kill -0 "$(cat "$PROXY_PIDFILE")" 2>/dev/null; then
      log "the HTTPS front exited during start-up; its log:"
      cat "$RUN/proxy.log" >&2 || true
      stop; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "not ready after ${READY_TIMEOUT}s; stopping it"; stop; exit 1
    fi
    sleep 0.2
  done
  log "ready: Confluent-compatible API at http://127.0.0.1:$PORT/apis/ccompat/v7"
  [ "$TLS_ON" != 1 ] || log "ready: over HTTPS with basic auth at https://127.0.0.1:$TLS_PORT/apis/ccompat/v7"
}

stop() {
  if [ -f "$PROXY_PIDFILE" ]; then
    kill "$(cat "$PROXY_PIDFILE")" 2>/dev/null || true
    rm -f "$PROXY_PIDFILE"
  fi
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return; fi
  stop_pidfile "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if is_ready; then log "running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$PORT"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
