#!/usr/bin/env python3
"""sluice vs Spark Structured Streaming on the same Kafka -> bronze -> silver pipeline.

The pipeline, topic and events of bench/kafka_pipeline_bench.py (N ~200-byte JSON events
pre-loaded into a 6-partition topic by Kafka's ProducerPerformance): sluice runs
`sluice run <dir> --once`; Spark runs bench/spark_pipeline_job.py (PySpark + delta-spark,
spark-sql-kafka-0-10, local[2], two checkpointed Trigger.AvailableNow queries: bronze from
Kafka, then silver streaming from the bronze Delta table). Runs alternate (sluice, Spark,
Spark, sluice, ...) on the same topic, each on fresh storage; best of K by wall time each.

Each run is measured as a whole process tree by bench/proctree.py: wall time (process start
to the exit of its last process: JVM start-up included), CPU seconds (user + system of every
process, the JVM included, exact via a child subreaper) and peak RSS (sum over the tree,
sampled every 50 ms). Per flow: sluice's flow_progress duration_ms (event log), Spark's time
in awaitTermination of each query.

Checked on every run: bronze holds every produced record (deltalake's numRecords), silver
holds the rows an oracle keeps (bronze's payloads classified by Python's json), and the two
engines' silver tables agree on count and a checksum over every column (DuckDB over the
files deltalake lists: sum of hash(user_id, event_type, country, device), of event_time,
produced_at and event_date as integers, of amount in cents, count of distinct users). A run
that differs fails the benchmark (exit 1).

Starts its own broker with scripts/kafka.sh on --port (default 49092) and stops it at the
end, unless --bootstrap names a running one (a topic of the same event count is reused).
Usage:
  bench/spark_side_by_side.py [--events N] [--repeat K] [--port P | --bootstrap HOST:PORT]
                              [--spark-memory 1g] [--keep]
"""
import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kafka_pipeline_bench as kb  # noqa: E402  (same folder: payloads, broker, sluice pipeline)

ROOT = kb.ROOT
HERE = pathlib.Path(__file__).resolve().parent
PY = sys.executable


log = kb.common.logger("spark-bench")


def measured(cmd, folder, name):
    """Runs cmd under proctree.py; returns its measurements (dict); exits on failure."""
    out = dict(json=folder / f"{name}.usage.json", stdout=folder / f"{name}.out", stderr=folder / f"{name}.err")
    rc = subprocess.run([PY, str(HERE / "proctree.py"), "--json", str(out["json"]), "--stdout", str(out["stdout"]),
                         "--stderr", str(out["stderr"]), "--", *map(str, cmd)]).returncode
    if rc != 0:
        tail = "\n".join(out["stderr"].read_text(errors="replace").splitlines()[-40:])
        sys.exit(f"{name} failed (exit {rc}); last lines of {out['stderr']}:\n{tail}")
    return json.loads(out["json"].read_text())


def silver_checksum(table_dir):
    """(count, distinct users, hash sum, event_time sum, produced_at sum, event_date sum, cents)
    of a silver table, order-independent, read by DuckDB from the files deltalake lists."""
    import duckdb
    from deltalake import DeltaTable
    files = DeltaTable(str(table_dir)).file_uris()
    if not files:
        return (0,) * 7
    row = duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT user_id), sum(hash(user_id, event_type, country, device)),"
        " sum(epoch_us(event_time)), sum(epoch_us(produced_at)),"
        " sum(date_diff('day', DATE '1970-01-01', event_date)), sum(CAST(round(amount * 100) AS BIGINT))"
        " FROM read_parquet(?)", [files]).fetchone()
    return tuple(int(v) if v is not None else None for v in row)


def run_sluice(work, i, bootstrap, topic):
    pipe = kb.write_pipeline(work / f"sluice{i}", bootstrap, topic)
    m = measured([kb.SLUICE, "run", pipe, "--once"], pipe, "sluice")
    flows = kb.flow_durations(pipe / "data")
    m.update(bronze_s=flows["events_bronze"][2] / 1000, silver_s=flows["events_silver"][2] / 1000,
             dropped=flows["events_silver"][0] - flows["events_silver"][1])
    return m, pipe / "data" / "tables", pipe


def run_spark(work, i, bootstrap, topic, args):
    folder = work / f"spark{i}"
    folder.mkdir(parents=True)
    summary = folder / "summary.json"
    m = measured([PY, HERE / "spark_pipeline_job.py", "--bootstrap", bootstrap, "--topic", topic,
                  "--work", folder, "--summary", summary, "--cores", args.cores,
                  "--driver-memory", args.spark_memory, "--include-headers"], folder, "spark")
    s = json.loads(summary.read_text())
    m.update(bronze_s=s["bronze_s"], silver_s=s["silver_s"], startup_s=s["startup_s"],
             observed=s["observed"], cpu_startup_s=s["cpu_startup_s"],
             cpu_queries_s=s["cpu_bronze_s"] + s["cpu_silver_s"])
    return m, folder / "tables", folder


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each engine (best is reported)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--spark-memory", default="1g", help="spark.driver.memory (local mode: the JVM heap)")
    ap.add_argument("--cores", type=int, default=2, help="Spark local[cores]")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if not kb.SLUICE.exists():
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-sparkbench-"))
    payloads = kb.make_payloads()
    payload_file = work / "payloads.jsonl"
    payload_file.write_text("\n".join(payloads))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {kb.SLUICE}", flush=True)
    ok = False
    try:
        with kb.Broker(args.port, args.bootstrap) as broker:
            ok = compare(args, broker, work, payload_file)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


def compare(args, broker, work, payload_file):
    n = args.events
    topic = f"bench-throughput-{n}"
    if broker.external and kb.topic_exists(broker.bootstrap, topic):
        log(f"reusing topic {topic}")
    else:
        broker.create_topic(topic)
        log(f"pre-loading {n:,} events into {topic} ({kb.PARTITIONS} partitions) with ProducerPerformance")
        broker.producer_perf(topic, payload_file, n, -1)
    produced = kb.topic_end_offsets(broker.bootstrap, topic)
    if produced != n:
        sys.exit(f"topic {topic} holds {produced} records, expected {n}")

    runs = {"sluice": [], "spark": []}
    expected, reference = None, None  # oracle silver rows; sluice's first silver checksum
    loads = []
    for i in range(args.repeat):
        order = ["sluice", "spark"] if i % 2 == 0 else ["spark", "sluice"]
        for engine in order:
            loads.append(os.getloadavg()[0])
            if engine == "sluice":
                m, tables, folder = run_sluice(work, i, broker.bootstrap, topic)
            else:
                m, tables, folder = run_spark(work, i, broker.bootstrap, topic, args)
            if expected is None:
                expected = kb.expected_silver_rows(tables.parent)
            bronze_rows = kb.table_rows(tables / "events_bronze")
            checksum = silver_checksum(tables / "events_silver")
            if reference is None:
                reference = checksum
            m.update(bronze_rows=bronze_rows, silver_rows=checksum[0], checksum=checksum,
                     ok=bronze_rows == n and checksum[0] == expected and checksum == reference)
            runs[engine].append(m)
            log(f"{engine} run {i + 1}/{args.repeat}: wall {m['wall_s']:.2f} s, cpu {m['cpu_s']:.1f} s, "
                f"peak tree RSS {m['peak_tree_rss_mib']:.0f} MiB, bronze {m['bronze_s']:.2f} s, "
                f"silver {m['silver_s']:.2f} s, rows bronze {bronze_rows:,} silver {checksum[0]:,} "
                f"-> {'OK' if m['ok'] else 'MISMATCH'}")
            if not m["ok"]:
                log(f"  checksum {checksum} vs reference {reference}; expected silver rows {expected:,}")
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    return report(args, runs, expected, reference, loads)


def raw(r):
    text = (f"wall {r['wall_s']:.1f}s cpu {r['cpu_s']:.1f}s (user {r['cpu_user_s']:.1f} sys {r['cpu_sys_s']:.1f}) "
            f"rss {r['peak_tree_rss_mib']:.0f}MiB (largest process {r['max_process_rss_mib']:.0f}MiB) bronze {r['bronze_s']:.1f}s silver {r['silver_s']:.1f}s")
    if "cpu_queries_s" in r:
        text += f" startup-cpu {r['cpu_startup_s']:.1f}s query-cpu {r['cpu_queries_s']:.1f}s"
    return text + ("" if r["ok"] else " MISMATCH")


def report(args, runs, expected, reference, loads):
    n = args.events
    best = {e: min(rs, key=lambda r: r["wall_s"]) for e, rs in runs.items()}
    a, b = best["sluice"], best["spark"]
    print(f"sluice vs Spark, kafka->bronze->silver events={n} partitions={kb.PARTITIONS} cores={os.cpu_count()} "
          f"spark=local[{args.cores}] driver-memory={args.spark_memory} load1 during runs "
          f"{min(loads):.2f}-{max(loads):.2f}, best of {args.repeat} by wall time")
    print(f"  {'':18} {'sluice':>10} {'Spark':>10} {'Spark/sluice':>13}")

    def line(label, key, unit, fmt="{:10.2f}"):
        print(f"  {label:18} {fmt.format(a[key])}{unit:2} {fmt.format(b[key])}{unit:2} {b[key] / a[key]:12.1f}x")

    line("wall (process)", "wall_s", " s")
    line("bronze query", "bronze_s", " s")
    line("silver query", "silver_s", " s")
    line("CPU (tree)", "cpu_s", " s")
    least = {e: min(r["cpu_s"] for r in rs) for e, rs in runs.items()}
    print(f"  {'CPU (least of K)':18} {least['sluice']:10.2f} s {least['spark']:10.2f} s "
          f"{least['spark'] / least['sluice']:12.1f}x")
    print(f"  {'CPU per event':18} {a['cpu_s'] / n * 1e6:10.2f}us {b['cpu_s'] / n * 1e6:10.2f}us")
    line("peak RSS (tree)", "peak_tree_rss_mib", "Mi", "{:10.0f}")
    line("largest process", "max_process_rss_mib", "Mi", "{:10.0f}")
    print(f"  {'events/s (wall)':18} {n / a['wall_s'] / 1e6:10.3f}M  {n / b['wall_s'] / 1e6:10.3f}M")
    print(f"  Spark JVM + session start-up {b['startup_s']:.1f} s wall, {b['cpu_startup_s']:.1f} CPU-s; CPU in its two "
          f"queries alone {b['cpu_queries_s']:.1f} s = {b['cpu_queries_s'] / a['cpu_s']:.1f}x sluice's whole process")
    print(f"  Spark expectation counts {json.dumps(b['observed'])}")
    all_ok = all(r["ok"] for rs in runs.values() for r in rs)
    print(f"  rows: silver {reference[0]:,} (oracle {expected:,}), checksum {'equal in every run' if all_ok else 'DIFFERS'}"
          f" -> {'OK' if all_ok else 'FAILED'}")
    for e, rs in runs.items():
        print(f"  raw {e}: " + "; ".join(raw(r) for r in rs))
    return all_ok


if __name__ == "__main__":
    main()
