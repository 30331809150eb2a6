"""File sizes OPTIMIZE writes from many tiny input files (docs/decisions.md "(mt)"): deltalake
appends `--files` files of `--rows` rows each (id BIGINT shuffled, part STRING, v BIGINT) to a
new table, `sluice table optimize --zorder-by id --target-file-size TARGET` rewrites them, and
the script prints the sizes of the files the table then holds (from its log), smallest first.

    .venv/bin/python bench/optimize_tiny_files_bench.py [--sluice build/sluice] [--files 100]
        [--rows 100] [--target 65536] [--table /tmp/optimize_tiny_files]
"""
import argparse
import json
import pathlib
import random
import shutil
import subprocess

import pyarrow as pa
from deltalake import write_deltalake


def live_sizes(table):
    live = {}
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = action["add"]["size"]
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    return sorted(live.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default="build/sluice")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--target", type=int, default=65536)
    ap.add_argument("--table", default="/tmp/optimize_tiny_files")
    args = ap.parse_args()
    table = pathlib.Path(args.table)
    shutil.rmtree(table, ignore_errors=True)
    ids = [i * 7919 % 1000003 for i in range(args.files * args.rows)]
    random.Random(11).shuffle(ids)
    for f in range(args.files):
        chunk = ids[f * args.rows:(f + 1) * args.rows]
        write_deltalake(str(table), pa.table({"id": chunk, "part": ["a"] * len(chunk), "v": [i * 10 for i in chunk]}),
                        mode="append")
    r = subprocess.run([args.sluice, "table", "optimize", str(table), "--zorder-by", "id", "--target-file-size",
                        str(args.target)], capture_output=True, text=True, check=True)
    print(r.stdout.strip())
    print(json.dumps({"inputFiles": args.files, "rowsPerFile": args.rows, "target": args.target,
                      "outputSizes": live_sizes(table)}))


if __name__ == "__main__":
    main()
