#!/usr/bin/env python3
"""Data skipping before and after `sluice table optimize --zorder-by`: a point query
(WHERE user_id = 'x') on an N-row table (default 10,000,000) whose rows arrive in random user
order, so every file's min/max spans nearly every user until the table is Z-ordered.

Reports, before and after:
  - files and bytes a min/max-skipping reader must open (the files whose user_id stats admit
    'x', from the Delta log's stats: what DuckDB's delta extension and sluice's Delta scan,
    delta/scan.cc select_files, keep), out of all files;
  - DuckDB: wall time of SELECT count(*) FROM delta_scan(t) WHERE user_id = 'x' (best of 3) and,
    when its EXPLAIN ANALYZE says, the files it read;
  - sluice: wall time of `sluice sql t "SELECT count(*) ... WHERE user_id = 'x'"` (best of 3);
and the time the OPTIMIZE took. With --cluster-by the table is created clustered (CLUSTER BY,
`table append --cluster-by`) and the OPTIMIZE is liquid clustering's (Hilbert curve) instead of
Z-order. Usage:
  bench/data_skipping_bench.py [--rows N] [--file-size BYTES] [--zorder-by user_id[,col...]]
                               [--cluster-by user_id[,col...]]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUICE = ROOT / "build" / "sluice"
sys.path.insert(0, str(ROOT / "tests" / "integration"))


def make_data(rows, users, seed=11):
    def uniform(k):
        return pc.random(rows, initializer=seed + k)

    user = pc.cast(pc.floor(pc.multiply(uniform(1), users)), pa.int64())
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "user_id": pc.utf8_lpad(pc.cast(user, pa.string()), 7, "0"),
        "event_time": pc.cast(pc.add(pc.cast(pc.floor(pc.multiply(uniform(2), 86_400_000_000)), pa.int64()),
                                     1_704_067_200_000_000), pa.timestamp("us", tz="UTC")),
        "amount": pc.multiply(uniform(3), 1000.0),
    })


def run(*args, usage=None):
    """Runs a command; returns (stdout, wall seconds). `usage`, a dict, gets its CPU seconds and
    peak RSS (os.wait4's rusage of the child)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([str(a) for a in args], stdout=out, stderr=err, text=True)
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{stderr}")
    if usage is not None:
        usage["cpuSeconds"] = round(rusage.ru_utime + rusage.ru_stime, 1)
        usage["peakRssMiB"] = round(rusage.ru_maxrss / 1024)
    return stdout, elapsed


def files_admitting(table, value):
    """(files, bytes) whose user_id min/max admit `value`, and (all files, all bytes)."""
    from deltalake import DeltaTable

    adds = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True)).to_pylist()
    hit = [a for a in adds if a["min.user_id"] is None or a["min.user_id"] <= value <= a["max.user_id"]]
    return (len(hit), sum(a["size_bytes"] for a in hit)), (len(adds), sum(a["size_bytes"] for a in adds))


def duckdb_query(table, value):
    from conftest import duckdb_connection

    con = duckdb_connection()
    sql = f"SELECT count(*) FROM delta_scan('{table}') WHERE user_id = '{value}'"
    best, count = None, None
    for _ in range(3):
        started = time.perf_counter()
        count = con.sql(sql).fetchone()[0]
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    plan = "\n".join(str(r[1]) for r in con.sql("EXPLAIN ANALYZE " + sql).fetchall())
    read = re.search(r"Total Files Read:\s*(\d+)", plan)
    return count, best, int(read.group(1)) if read else None


def sluice_query(table, value):
    best, out = None, ""
    for _ in range(3):
        out, elapsed = run(SLUICE, "sql", table, f"SELECT count(*) AS n FROM t WHERE user_id = '{value}'",
                           "--format", "json")
        best = elapsed if best is None else min(best, elapsed)
    return out.strip(), best


def measure(label, table, value):
    (files, size), (all_files, all_size) = files_admitting(table, value)
    count, duck_s, duck_files = duckdb_query(table, value)
    sluice_out, sluice_s = sluice_query(table, value)
    row = {"when": label, "files": files, "allFiles": all_files, "bytes": size, "allBytes": all_size,
           "rows": count, "duckdbSeconds": round(duck_s, 3), "duckdbFilesRead": duck_files,
           "sluiceSeconds": round(sluice_s, 3), "sluiceResult": sluice_out}
    print(json.dumps(row), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--file-size", type=int, default=8 << 20)
    parser.add_argument("--zorder-by", default="user_id")
    parser.add_argument("--cluster-by", default=None,
                        help="create the table clustered by these columns and cluster it instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        data = make_data(args.rows, args.users)
        value = data.column("user_id")[args.rows // 3].as_py()
        source = pathlib.Path(tmp) / "data.arrow"
        with ipc.new_file(source, data.schema) as w:
            w.write_table(data, max_chunksize=1 << 20)
        del data
        table = pathlib.Path(tmp) / "t"
        layout = ["--cluster-by", args.cluster_by] if args.cluster_by else []
        _, write_s = run(SLUICE, "table", "append", table, source, "--target-file-size", args.file_size,
                         "--row-group-rows", 128 * 1024, *layout)
        print(json.dumps({"rows": args.rows, "users": args.users, "fileSize": args.file_size,
                          "value": value, "writeSeconds": round(write_s, 1)}), flush=True)
        before = measure("before", table, value)
        order = [] if args.cluster_by else ["--zorder-by", args.zorder_by]
        usage = {}
        out, optimize_s = run(SLUICE, "table", "optimize", table, *order,
                              "--target-file-size", args.file_size, "--format", "json", usage=usage)
        result = json.loads(out)
        print(json.dumps({"optimizeSeconds": round(optimize_s, 1), "optimizeCpuSeconds": usage["cpuSeconds"],
                          "optimizePeakRssMiB": usage["peakRssMiB"],
                          **({"clusterBy": result["clusterBy"]} if args.cluster_by else {"zOrderBy": args.zorder_by}),
                          "filesRemoved": result["numFilesRemoved"], "filesAdded": result["numFilesAdded"]}),
              flush=True)
        after = measure("after", table, value)
        assert before["rows"] == after["rows"], "the query's answer changed"


if __name__ == "__main__":
    main()
