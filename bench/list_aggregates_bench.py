"""collect_set against collect_list over the shape that made collect_set quadratic-ish: one group
of many distinct values beside many small groups. Writes one Delta table (deltalake), then runs
`sluice sql` on it once per aggregate and prints CPU seconds (user + system) and peak RSS of
each run as JSON lines.

    python bench/list_aggregates_bench.py [--big 500000] [--groups 20000] [--runs 3]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import pyarrow as pa
from deltalake import write_deltalake

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import popen_measured, wait_measured  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=500_000, help="distinct values of the one big group")
    ap.add_argument("--groups", type=int, default=20_000, help="small groups (4 rows, 2 distinct values each)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    args = ap.parse_args()
    keys = [0] * args.big
    values = list(range(args.big))
    for g in range(1, args.groups + 1):
        keys += [g] * 4
        values += [g, g + 1, g, g + 1]
    with tempfile.TemporaryDirectory(prefix="list-agg-bench-") as tmp:
        table = pathlib.Path(tmp) / "t"
        write_deltalake(str(table), pa.table({"k": pa.array(keys, pa.int64()), "v": pa.array(values, pa.int64())}))
        for name in ("collect_list", "collect_set"):
            query = f"SELECT k, size({name}(v)) AS n FROM t GROUP BY k"
            for run in range(args.runs):
                out = pathlib.Path(tmp) / f"{name}{run}.arrow"
                proc = popen_measured([args.sluice, "sql", str(table), query, "--output", str(out)],
                                      stdout=subprocess.DEVNULL)
                code, rss, cpu = wait_measured(proc)
                if code != 0:
                    raise SystemExit(f"sluice sql failed ({code}): {query}")
                print(json.dumps({"aggregate": name, "rows": len(keys), "groups": args.groups + 1, "run": run,
                                  "cpu_s": round(cpu, 3), "peak_rss_mib": round(rss, 1)}), flush=True)


if __name__ == "__main__":
    main()
