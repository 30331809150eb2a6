#!/usr/bin/env python3
"""Delta append throughput: sluice vs deltalake (delta-rs) on the same 10-column data.

Generates N rows (default 10,000,000) x 10 columns with pyarrow, saves them as an Arrow IPC
file, then times, in the same run:
  - `sluice table append <table> data.arrow` (one commit, zstd and snappy)
  - `deltalake.write_deltalake(table, data)` (its default: snappy)
and prints rows/s, MB/s of Parquet written, and the ratio. Usage:
  bench/delta_append_bench.py [--rows N] [--repeat K]
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUICE = ROOT / "build" / "sluice"


def make_data(rows, seed=7):
    """Pseudo-random columns built with Arrow compute only (no numpy in the venv)."""
    def uniform(k):
        return pc.random(rows, initializer=seed + k)

    def ints(k, high, type_):
        return pc.cast(pc.floor(pc.multiply(uniform(k), high)), type_)

    cities = pa.array(["amsterdam", "berlin", "lisbon", "madrid", "oslo", "paris", "rome", "vienna"])
    return pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "user_id": ints(1, 1_000_000, pa.int64()),
        "quantity": ints(2, 100, pa.int32()),
        "price": pc.multiply(uniform(3), 1000.0),
        "discount": uniform(4),
        "city": pc.take(cities, ints(5, 8, pa.int32())),
        "sku": pc.binary_join_element_wise("sku-", pc.cast(ints(6, 50_000, pa.int64()), pa.string()), ""),
        "event_time": pc.cast(pc.add(ints(7, 86_400_000_000, pa.int64()), 1_704_067_200_000_000),
                              pa.timestamp("us", tz="UTC")),
        "event_date": pc.cast(pc.add(ints(8, 30, pa.int32()), pa.scalar(19_723, pa.int32())), pa.int32()).view(pa.date32()),
        "is_member": pc.less(uniform(9), 0.3),
    })


def parquet_bytes(table_dir):
    return sum(p.stat().st_size for p in pathlib.Path(table_dir).rglob("*.parquet")
               if "_delta_log" not in p.parts)


def run_sluice(data_path, table_dir, compression):
    shutil.rmtree(table_dir, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([str(SLUICE), "table", "append", str(table_dir), str(data_path),
                    "--compression", compression], check=True, capture_output=True)
    return time.perf_counter() - start


def run_deltalake(table, table_dir):
    from deltalake import write_deltalake
    shutil.rmtree(table_dir, ignore_errors=True)
    start = time.perf_counter()
    write_deltalake(str(table_dir), table)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if not SLUICE.exists():
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    try:
        table = make_data(args.rows)
        data_path = work / "data.arrow"
        with ipc.new_file(data_path, table.schema) as w:
            w.write_table(table, max_chunksize=65536)
        results = {}
        for _ in range(args.repeat):
            for name, fn in [
                ("sluice (zstd)", lambda: run_sluice(data_path, work / "s_zstd", "zstd")),
                ("sluice (snappy)", lambda: run_sluice(data_path, work / "s_snappy", "snappy")),
                ("deltalake (snappy)", lambda: run_deltalake(table, work / "dl")),
            ]:
                results.setdefault(name, []).append(fn())
        sizes = {"sluice (zstd)": parquet_bytes(work / "s_zstd"),
                 "sluice (snappy)": parquet_bytes(work / "s_snappy"),
                 "deltalake (snappy)": parquet_bytes(work / "dl")}
        print(f"rows={args.rows} columns={table.num_columns} in-memory={table.nbytes / 1e6:.0f} MB "
              f"cores={os.cpu_count()} best of {args.repeat}")
        best = {k: min(v) for k, v in results.items()}
        for name, secs in best.items():
            print(f"{name:20s} {secs:7.2f} s  {args.rows / secs / 1e6:6.2f} M rows/s  "
                  f"{sizes[name] / secs / 1e6:7.1f} MB/s parquet  ({sizes[name] / 1e6:.0f} MB)")
        ratio = best["deltalake (snappy)"] / best["sluice (snappy)"]
        print(f"ratio deltalake/sluice (same compression, snappy): {ratio:.2f}x")
        print(f"ratio deltalake(snappy)/sluice(zstd): {best['deltalake (snappy)'] / best['sluice (zstd)']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
