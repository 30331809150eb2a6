#!/usr/bin/env python3
"""CPU seconds (user + sys) to compile single files in two configured build trees, interleaved.

  bench/compile_cpu.py BUILD_A BUILD_B FILE...      (FILE: a source path suffix, e.g. src/sluice/sql/parser.cc)

Each file is compiled from each tree's compile_commands.json (A, then B, file by file), with ccache
disabled and the object written to a scratch file, so the trees are left as they are. On a shared
machine CPU seconds compare where wall time does not. BENCHMARKS.md "Build time".
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)


def commands(build_dir):
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        return json.load(f)


def find(entries, suffix):
    for e in entries:
        if e["file"].endswith(suffix):
            return e
    sys.exit(f"compile_cpu: no compile command for {suffix}: configure that tree first")


def cpu_seconds(entry, scratch):
    return common.compile_cpu_seconds(entry, scratch, "compile_cpu")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    a, b = commands(sys.argv[1]), commands(sys.argv[2])
    total_a = total_b = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for suffix in sys.argv[3:]:
            ta, tb = cpu_seconds(find(a, suffix), scratch), cpu_seconds(find(b, suffix), scratch)
            total_a, total_b = total_a + ta, total_b + tb
            print(f"{suffix:55s} A {ta:6.1f} s  B {tb:6.1f} s", flush=True)
    print(f"{'total':55s} A {total_a:6.1f} s  B {total_b:6.1f} s  ({100 * (total_b / total_a - 1):+.0f} %)")


if __name__ == "__main__":
    main()
