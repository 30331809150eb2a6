#!/usr/bin/env bash
# `make dist`: the installed layout (scripts/install.sh: bin/sluice + lib/) as one tarball,
# $DIST_DIR/sluice-<version>-linux-<arch>.tar.gz (DIST_DIR defaults to dist/); prints its path.
# Usage: scripts/dist.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
out_dir=${DIST_DIR:-dist}
if [ ! -x "$build_dir/sluice" ]; then
  echo "dist: $build_dir/sluice is not built; run make build first" >&2
  exit 1
fi
version=$("$build_dir/sluice" --version | awk '{print $2}')
name="sluice-$version-linux-$(uname -m)"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
scripts/install.sh "$build_dir" "$stage/$name" >/dev/null
mkdir -p "$out_dir"
tar -C "$stage" --owner=0 --group=0 -czf "$out_dir/$name.tar.gz" "$name"
echo "$out_dir/$name.tar.gz"
