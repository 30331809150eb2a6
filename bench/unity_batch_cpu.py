#!/usr/bin/env python3
"""CPU seconds (user + sys) of one unity batch: its files compiled one by one in a file-by-file tree,
then the batch in a unity tree.

  bench/unity_batch_cpu.py TREE_FILE_BY_FILE TREE_UNITY unity_9_cxx.cxx [TARGET]   (TARGET: sluice_core)

Both trees configured (e.g. -DSLUICE_UNITY=OFF and ON) and, with a PCH, the PCH built first. ccache
is disabled and objects go to a scratch folder, so the trees stay as they are. BENCHMARKS.md "CI time".
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)


def cpu_seconds(entry, scratch):
    return common.compile_cpu_seconds(entry, scratch, "unity_batch_cpu")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    single_dir, unity_dir, batch = sys.argv[1:4]
    target = sys.argv[4] if len(sys.argv) > 4 else "sluice_core"
    single = json.load(open(os.path.join(single_dir, "compile_commands.json")))
    unity = json.load(open(os.path.join(unity_dir, "compile_commands.json")))
    entry = next((e for e in unity if e["file"].endswith(f"{target}.dir/Unity/{batch}")), None)
    if entry is None:
        sys.exit(f"unity_batch_cpu: no {target} batch {batch} in {unity_dir}")
    with open(entry["file"]) as f:
        sources = [line.split('"')[1] for line in f if line.startswith("#include")]
    with open(os.path.join(unity_dir, "CMakeCache.txt")) as f:
        root = next(l.split("=", 1)[1].strip() for l in f if l.startswith("CMAKE_HOME_DIRECTORY:"))
    total = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for src in sources:
            rel = os.path.relpath(src, root)
            e = next((e for e in single if e["file"].endswith("/" + rel)), None)
            if e is None:
                sys.exit(f"unity_batch_cpu: no compile command for {rel} in {single_dir}")
            t = cpu_seconds(e, scratch)
            total += t
            print(f"{rel:50s} {t:6.1f} s", flush=True)
        t = cpu_seconds(entry, scratch)
    print(f"{len(sources)} files one by one {total:6.1f} s   {batch} {t:6.1f} s   ({100 * (t / total - 1):+.0f} %)")


if __name__ == "__main__":
    main()
