#!/usr/bin/env python3
"""What a pipeline's tables hold, read by deltalake (not by sluice): rows per table, with its side
tables (dead letters, quarantine, late rows) beside it. `make run` prints it at the end.

    tools/demo_summary.py examples/medallion/data
"""
import pathlib
import sys

from deltalake import DeltaTable

SIDES = ("_dead_letter", "_quarantine", "_late")


def row_counts(storage):
    out = {}
    tables = pathlib.Path(storage) / "tables"
    for d in sorted(tables.iterdir()) if tables.is_dir() else []:
        if (d / "_delta_log").is_dir():
            out[d.name] = DeltaTable(str(d)).to_pyarrow_dataset().count_rows()
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    counts = row_counts(sys.argv[1])
    if not counts:
        print(f"demo_summary: no tables under {sys.argv[1]}/tables yet")
        return 0
    mains = [t for t in counts if not t.endswith(SIDES)]
    width = max(len(t) for t in mains)
    print(f"{'table':<{width}}  {'rows':>8}  dead letters  quarantined  late   (read by deltalake)")
    for t in mains:
        side = [counts.get(t + s) for s in SIDES]
        cells = [f"{n:>12}" if n is not None else f"{'-':>12}" for n in side[:2]] + \
                [f"{side[2]:>5}" if side[2] is not None else f"{'-':>5}"]
        print(f"{t:<{width}}  {counts[t]:>8}  {cells[0]}  {cells[1][1:]}  {cells[2]}")
    print(f"{sum(counts[t] for t in counts if t.endswith('_dead_letter'))} dead letters, "
          f"{sum(counts[t] for t in counts if t.endswith('_quarantine'))} rows quarantined, "
          f"{sum(counts[t] for t in counts if t.endswith('_late'))} late rows kept aside")
    return 0


if __name__ == "__main__":
    sys.exit(main())
