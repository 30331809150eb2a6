#!/usr/bin/env bash
# `make install PREFIX=...`: installs a built sluice as PREFIX/bin/sluice and PREFIX/lib/ (every
# shared library it loads that a fresh Debian 12 lacks, found through RUNPATH $ORIGIN/../lib),
# so the folder can be moved or copied to another machine as a whole. No rebuild.
# Usage: scripts/install.sh <build-dir> <prefix>
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ -z "$2" ]; then
  echo "usage: scripts/install.sh <build-dir> <prefix>  (make install PREFIX=/opt/sluice)" >&2
  exit 2
fi
build_dir=$1
prefix=$2
if [ ! -x "$build_dir/sluice" ]; then
  echo "install: $build_dir/sluice is not built; run make build first" >&2
  exit 1
fi
# lib/ holds its own OpenSSL, librdkafka, ... : in a prefix whose lib/ the dynamic loader
# searches for every program (/usr/lib, /usr/local/lib), they would replace the system's.
case "$(realpath -m "$prefix")" in
  / | /usr | /usr/local)
    echo "install: PREFIX=$prefix would put sluice's bundled libraries (OpenSSL, librdkafka, ...)" \
         "into the system library path, where every program would load them; use a folder of" \
         "its own, e.g. make install PREFIX=/opt/sluice" >&2
    exit 1 ;;
esac
cmake --install "$build_dir" --prefix "$prefix"
