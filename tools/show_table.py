#!/usr/bin/env python3
"""Prints what a Delta table holds, read with deltalake (an independent reader):
version, row count, rows per partition, and a few decoded records.

    tools/show_table.py <table-path> [--limit 5]
"""
import argparse
import json
import sys

from deltalake import DeltaTable


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("table")
    ap.add_argument("--limit", type=int, default=5)
    args = ap.parse_args()
    dt = DeltaTable(args.table)
    t = dt.to_pyarrow_table()
    print(f"{args.table}: version {dt.version()}, {t.num_rows} rows, {len(dt.file_uris())} files")
    if "partition" in t.column_names:
        counts = {}
        for p in t.column("partition").to_pylist():
            counts[p] = counts.get(p, 0) + 1
        print("rows per Kafka partition:", dict(sorted(counts.items())))
    rows = t.sort_by([("timestamp", "descending")]).slice(0, args.limit).to_pylist() \
        if "timestamp" in t.column_names else t.slice(0, args.limit).to_pylist()
    for r in rows:
        value = r.get("value")
        if isinstance(value, bytes):
            try:
                r["value"] = json.loads(value)
            except ValueError:
                pass
        if hasattr(r.get("timestamp"), "isoformat"):
            r["timestamp"] = r["timestamp"].isoformat()
        if isinstance(r.get("key"), bytes):
            r["key"] = r["key"].decode(errors="replace")
        print(" ", {k: v for k, v in r.items() if k != "headers"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
