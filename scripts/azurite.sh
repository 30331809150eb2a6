#!/usr/bin/env bash
# Starts, stops and checks Azurite (the Azure Storage emulator, npm, pinned in tools/azurite and
# installed into .deps/azurite by scripts/setup.sh) for the tests: its blob service only, on
# 127.0.0.1, data and log in .run/azurite-<port>/ (removed by `stop`).
#   scripts/azurite.sh start    start (and wait until it answers HTTP)
#   scripts/azurite.sh stop     stop what `start` started, by pid
#   scripts/azurite.sh status   exit 0 if running and answering
# Environment: AZURITE_PORT (default 10000), AZURITE_READY_TIMEOUT seconds (default 60);
# AZURITE_CERT and AZURITE_KEY (PEM files): serve https with them; AZURITE_OAUTH=basic: accept
# Azure AD bearer tokens too (Azurite takes them only over https; it checks their audience,
# issuer and lifetime, not their signature).
# Clients reach it as the well-known development account devstoreaccount1 (its key is public,
# in Azurite's README) at http://127.0.0.1:$AZURITE_PORT/devstoreaccount1, e.g. with
# AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$AZURITE_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SERVER=Azurite
PORT=${AZURITE_PORT:-10000}
PORT_VAR=AZURITE_PORT
READY_TIMEOUT=${AZURITE_READY_TIMEOUT:-60}
RUN="$ROOT/.run/azurite-$PORT"
PIDFILE="$RUN/azurite.pid"
LOGFILE="$RUN/azurite.log"
SCHEME=http
if [ -n "${AZURITE_CERT:-}" ]; then SCHEME=https; fi
READY_WHAT="blob service at $SCHEME://127.0.0.1:$PORT/devstoreaccount1"
AZURITE="$ROOT/.deps/azurite/node_modules/.bin/azurite-blob"

log() { printf '[azurite] %s\n' "$*" >&2; }
# shellcheck source=scripts/test_server.sh
. "$ROOT/scripts/test_server.sh"

# Any HTTP answer (an unauthenticated request gets 4xx) means the blob service listens.
is_ready() {
  "$ROOT/.venv/bin/python" - "$PORT" "$SCHEME" <<'PY' 2>/dev/null
import ssl, sys, urllib.error, urllib.request
try:  # a liveness probe: the test's certificate is checked by the clients under test, not here
    urllib.request.urlopen("%s://127.0.0.1:%s/devstoreaccount1?comp=list" % (sys.argv[2], sys.argv[1]), timeout=2,
                           context=ssl._create_unverified_context())
except urllib.error.HTTPError:
    pass
PY
}

check_installed() {
  if [ ! -x "$AZURITE" ]; then log "Azurite is not installed in .deps/azurite: run scripts/setup.sh"; exit 1; fi
}

launch() {
  rm -rf "$RUN/data"; mkdir -p "$RUN/data"
  local tls=()
  if [ -n "${AZURITE_CERT:-}" ]; then tls=(--cert "$AZURITE_CERT" --key "${AZURITE_KEY:?AZURITE_KEY must go with AZURITE_CERT}"); fi
  if [ -n "${AZURITE_OAUTH:-}" ]; then tls+=(--oauth "$AZURITE_OAUTH"); fi
  setsid "$AZURITE" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$RUN/data" --silent \
    --skipApiVersionCheck --disableProductStyleUrl "${tls[@]}" > "$LOGFILE" 2>&1 < /dev/null &
}

after_stop() { rm -rf "$RUN/data"; }

test_server_main "$@"
