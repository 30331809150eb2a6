#!/usr/bin/env python3
"""Data skipping before and after `sluice table optimize --zorder-by`: a point query
(WHERE user_id = 'x') on an N-row table (default 10,000,000) whose rows arrive in random user
order, so every file's min/max spans nearly every user until the table is Z-ordered.

Reports, before and after (and after a clustering step when --cluster-command is given):
  - files and bytes whose user_id stats admit 'x' (from the Delta log, read by deltalake):
    what a min/max-skipping reader must open, out of all files;
  - DuckDB (delta extension, in this process): wall and CPU seconds of SELECT count(*) ...
    WHERE user_id = 'x' (best of 3 by wall), and the files its EXPLAIN ANALYZE says it read;
  - `sluice sql t "SELECT count(*) ... WHERE user_id = 'x'" --scan-report`: files and bytes
    its scan read (after file skipping), wall and CPU seconds and peak RSS of the process
    (CPU from wait4, peak RSS from GNU time's %M; best of 3 by wall), with skipping and with
    --no-skipping;
and the time the write and the OPTIMIZE took. Usage:
  [SLUICE_BIN=...] bench/data_skipping_bench.py [--rows N] [--file-size BYTES] [--zorder-by user_id[,col...]]
                               [--cluster-by user_id[,col...]] [--input-files K]
                               [--cluster-command "table optimize {table} ..."]
--cluster-by: the table is created clustered (CLUSTER BY, `table append --cluster-by`) and the
OPTIMIZE is liquid clustering's (Hilbert curve) instead of Z-order.
--input-files K: the rows are appended in K parts, so "before" has K files (each spanning every
user) instead of the one `table append` writes.
--cluster-command: sluice arguments run after the Z-order measurement ({table}: the table path),
then measured again as "clustered".
"""
import argparse
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice"))
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


def run_measured(*args):
    """(stdout, stderr, wall s, CPU s, peak RSS MiB) of one sluice process. CPU from wait4; the
    peak RSS from GNU time's %M: wait4's ru_maxrss of a child that Python spawned (vfork + exec)
    starts at this Python process's own RSS (the kernel keeps the old mm's high-water mark across
    exec), which holds the bench's data, so it reported this process, not sluice."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *[str(a) for a in args]],
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        rss_kib = int(rss_file.read().strip().splitlines()[-1])
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{stderr}")
    return stdout, stderr, wall, usage.ru_utime + usage.ru_stime, rss_kib / 1024


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
    best = None
    for _ in range(3):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = con.sql(sql).fetchone()[0]
        run_ = (time.perf_counter() - wall0, time.process_time() - cpu0, count)
        best = run_ if best is None or run_[0] < best[0] else best
    plan = "\n".join(str(r[1]) for r in con.sql("EXPLAIN ANALYZE " + sql).fetchall())
    read = re.search(r"Total Files Read:\s*(\d+)", plan)
    return {"rows": best[2], "seconds": round(best[0], 3), "cpuSeconds": round(best[1], 3),
            "filesRead": int(read.group(1)) if read else None}


def sluice_query(table, value, *flags):
    best = None
    for _ in range(3):
        out, err, wall, cpu, rss = run_measured(
            SLUICE, "sql", table, f"SELECT count(*) AS n FROM t WHERE user_id = '{value}'", "--format", "json",
            "--scan-report", *flags)
        if best is None or wall < best[2]:
            best = (out, err, wall, cpu, rss)
    out, err, wall, cpu, rss = best
    scan = json.loads(err.strip().splitlines()[-1])
    return {"rows": int(json.loads(out)["n"]), "seconds": round(wall, 3), "cpuSeconds": round(cpu, 3),
            "peakRssMiB": round(rss), "filesScanned": scan["filesScanned"], "filesTotal": scan["filesTotal"],
            "bytesScanned": scan["bytesScanned"], "bytesTotal": scan["bytesTotal"]}


def measure(label, table, value):
    (files, size), (all_files, all_size) = files_admitting(table, value)
    row = {"when": label, "statsFiles": files, "allFiles": all_files, "statsBytes": size, "allBytes": all_size,
           "duckdb": duckdb_query(table, value), "sluice": sluice_query(table, value),
           "sluiceNoSkipping": sluice_query(table, value, "--no-skipping")}
    print(json.dumps(row), flush=True)
    counts = {row["duckdb"]["rows"], row["sluice"]["rows"], row["sluiceNoSkipping"]["rows"]}
    assert len(counts) == 1, f"the readers disagree: {row}"
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--file-size", type=int, default=8 << 20)
    parser.add_argument("--zorder-by", default="user_id")
    parser.add_argument("--cluster-by", default=None,
                        help="create the table clustered by these columns and cluster it instead")
    parser.add_argument("--input-files", type=int, default=1,
                        help="append the rows in this many parts (a file each) before the OPTIMIZE")
    parser.add_argument("--cluster-command", default="",
                        help="sluice arguments ({table}: the table) that cluster it; measured as 'clustered'")
    args = parser.parse_args()
    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        data = make_data(args.rows, args.users)
        value = data.column("user_id")[args.rows // 3].as_py()
        source = pathlib.Path(tmp) / "data.arrow"
        with ipc.new_file(source, data.schema) as w:
            w.write_table(data, max_chunksize=1 << 20)
        del data
        table = pathlib.Path(tmp) / "t"
        write_s = write_cpu = 0.0
        for part in range(args.input_files):
            if args.input_files > 1:  # the rows in `input_files` appends (each a file, in random user order)
                part_source = pathlib.Path(tmp) / f"part{part}.arrow"
                with ipc.open_file(source) as r:
                    whole = r.read_all()
                n = whole.num_rows
                lo, hi = n * part // args.input_files, n * (part + 1) // args.input_files
                with ipc.new_file(part_source, whole.schema) as w:
                    w.write_table(whole.slice(lo, hi - lo), max_chunksize=1 << 20)
                del whole
            else:
                part_source = source
            first = part == 0 and args.cluster_by
            _, _, s, c, _ = run_measured(SLUICE, "table", "append", table, part_source, "--target-file-size",
                                         args.file_size, "--row-group-rows", 128 * 1024,
                                         *(["--cluster-by", args.cluster_by] if first else []))
            write_s, write_cpu = write_s + s, write_cpu + c
        print(json.dumps({"rows": args.rows, "users": args.users, "fileSize": args.file_size, "value": value,
                          "writeSeconds": round(write_s, 1), "writeCpuSeconds": round(write_cpu, 1),
                          "loadAverage": os.getloadavg()[0]}), flush=True)
        before = measure("before", table, value)
        out, _, optimize_s, optimize_cpu, optimize_rss = run_measured(
            SLUICE, "table", "optimize", table, *([] if args.cluster_by else ["--zorder-by", args.zorder_by]),
            "--target-file-size", args.file_size, "--format", "json")
        result = json.loads(out)
        print(json.dumps({"optimizeSeconds": round(optimize_s, 1), "optimizeCpuSeconds": round(optimize_cpu, 1),
                          "optimizePeakRssMiB": round(optimize_rss),
                          **({"clusterBy": args.cluster_by} if args.cluster_by else {"zOrderBy": args.zorder_by}),
                          "filesRemoved": result["numFilesRemoved"], "filesAdded": result["numFilesAdded"]}),
              flush=True)
        after = measure("after", table, value)
        assert before["sluice"]["rows"] == after["sluice"]["rows"], "the query's answer changed"
        if args.cluster_command:
            command = [a.replace("{table}", str(table)) for a in shlex.split(args.cluster_command)]
            _, _, cluster_s, cluster_cpu, _ = run_measured(SLUICE, *command)
            print(json.dumps({"clusterCommand": args.cluster_command, "clusterSeconds": round(cluster_s, 1),
                              "clusterCpuSeconds": round(cluster_cpu, 1)}), flush=True)
            measure("clustered", table, value)
        print(json.dumps({"loadAverage": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
