#!/usr/bin/env bash
# Checks that a target's sources can be compiled together, as the unity build (SLUICE_UNITY,
# docs/decisions.md "CI time") compiles them: configures build-unity-check/ with each target's
# sources in ONE batch and compiles every batch with -fsyntax-only. One batch covers whatever
# grouping CMake picks later (adding a source shifts the batches of 8), so two file-local helpers
# of the same name in two test files are found now, not when a later change puts them together.
# Run it after adding sources or merging branches; about 2 min of CPU (gcc), nothing is linked.
#   scripts/unity-check.sh [gcc|clang]   (default gcc; clang checks the sanitizer build's flags)
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${1:-gcc}
dir=build-unity-check/$compiler
case $compiler in
  gcc) env=(CC=gcc CXX=g++); flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  clang) env=(CC=clang CXX=clang++); flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON) ;;
  *) echo "unity-check: say gcc or clang, not '$compiler'" >&2; exit 2 ;;
esac
# No PCH: it would have to be built first, and adds nothing a clash depends on.
env "${env[@]}" cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DSLUICE_PCH=OFF \
  -DSLUICE_UNITY=ON -DSLUICE_UNITY_BATCH=0 >/dev/null
.venv/bin/python - "$dir" <<'PY'
import json, shlex, subprocess, sys
failed = 0
for e in json.load(open(sys.argv[1] + "/compile_commands.json")):
    if "/Unity/" not in e["file"]:
        continue
    args, out, skip = shlex.split(e["command"]), [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-o", "-MF", "-MT"):
            skip = True
        elif a != "-MD":
            out.append(a)
    while out and (out[0] == "env" or "=" in out[0] or out[0].endswith("ccache")):
        out.pop(0)  # the ccache launcher: a syntax check has nothing to cache
    target = e["file"].split("/CMakeFiles/")[1].split(".dir/")[0]
    p = subprocess.run(out + ["-fsyntax-only"], cwd=e["directory"], capture_output=True, text=True)
    print(f"[unity-check] {target}: {'ok' if p.returncode == 0 else 'FAILED'}", flush=True)
    if p.returncode != 0:
        failed += 1
        print("\n".join(l for l in p.stderr.splitlines() if "error" in l), flush=True)
if failed:
    sys.exit(f"[unity-check] {failed} target(s) do not compile as one unit: give the clashing "
             "file-local names distinct names (or one shared test helper), see docs/decisions.md \"CI time\"")
print("[unity-check] every target compiles as one unit")
PY
