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
SERVER=moto
PORT=${S3_PORT:-9000}
PORT_VAR=S3_PORT
READY_TIMEOUT=${S3_READY_TIMEOUT:-60}
RUN="$ROOT/.run/s3-$PORT"
PIDFILE="$RUN/s3.pid"
LOGFILE="$RUN/s3.log"
READY_WHAT="S3 API at http://127.0.0.1:$PORT"
MOTO="$ROOT/.venv/bin/moto_server"

log() { printf '[s3] %s\n' "$*" >&2; }
# shellcheck source=scripts/test_server.sh
. "$ROOT/scripts/test_server.sh"

is_ready() {
  "$ROOT/.venv/bin/python" - "$PORT" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/moto-api/" % sys.argv[1], timeout=2).read()
PY
}

check_installed() {
  if [ ! -x "$MOTO" ]; then log "moto is not installed in .venv: run scripts/setup.sh"; exit 1; fi
}

launch() {
  setsid "$MOTO" -H 127.0.0.1 -p "$PORT" > "$LOGFILE" 2>&1 < /dev/null &
}

test_server_main "$@"
