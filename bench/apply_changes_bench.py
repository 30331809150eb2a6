#!/usr/bin/env python3
"""APPLY CHANGES throughput: changes/s into a --keys target (SCD type 1 and 2), sluice beside the
same MERGE in delta-spark, on the same change rows, interleaved in one session.

Changes: batch 0 inserts --keys keys (the load); each later batch has --changes changes, each
key at most once per batch: 90% updates of live keys (a new name and amount, so every update is a
new SCD2 version), 5% deletes, 5% inserts of new keys; sequence numbers increase. Each batch is
produced to Kafka as JSON and ingested by a `cdc_raw` streaming table (a `sluice run --once` of
the ingest alone, not measured). Then, per batch and per SCD type, in alternating order:
  sluice: a run whose only new work is `APPLY CHANGES INTO scd<n> FROM STREAM(cdc_raw) ...`
          (its SQL file is added for that run), measured as a process: wall, CPU (user + sys,
          wait4), peak RSS (GNU time %M); the flow's own time from the event log;
  Spark:  PySpark + delta-spark (local[--cores], one session for the whole bench, started
          before the first batch and not counted) reads the batch's rows from the same cdc_raw
          Delta table and runs one MERGE: SCD1 as DLT's semantics spell it (latest change per key,
          delete / update when newer, insert when not matched), SCD2 the staged-updates MERGE of
          Delta's documentation (close the open version, insert the new one); wall and CPU of the
          driver + JVM from /proc, the JVM's peak RSS (VmHWM: the session's peak so far).
Checked at the end: each engine's two targets agree (row count and a DuckDB hash sum over every
column, read by deltalake), and SCD1 holds the generator's live keys. Exit 1 if not.

Starts its own broker with scripts/kafka.sh on --port unless --bootstrap names one. Usage:
  bench/apply_changes_bench.py [--keys 1000000] [--batches 3] [--changes 100000] [--port P]
                               [--bootstrap HOST:PORT] [--cores 2] [--spark-memory 2g] [--no-spark]
"""
import argparse
import datetime
import json
import os
import pathlib
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kafka_pipeline_bench as kb  # noqa: E402  (broker, sluice runs, event log)

SCHEMA = "id BIGINT, name STRING, amount BIGINT, op STRING, seq BIGINT, batch INT"
APPLY = ("CREATE STREAMING TABLE {t};\nAPPLY CHANGES INTO {t} FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd' "
         "SEQUENCE BY seq COLUMNS * EXCEPT (op, batch) STORED AS SCD TYPE {n};")


log = kb.common.logger("apply-changes-bench")


class Changes:
    """The change batches and the source table's live keys (the SCD1 oracle)."""

    def __init__(self, keys, seed=7):
        self.rng, self.live, self.next_id, self.seq, self.keys = random.Random(seed), [], 0, 0, keys

    def batch(self, b, n):
        rng, out = self.rng, []
        if b == 0:
            picks = [("c", None)] * self.keys
        else:
            touched = rng.sample(range(len(self.live)), int(n * 0.95))
            picks = [("u" if rng.random() < 0.9 / 0.95 else "d", i) for i in touched]
            picks += [("c", None)] * (n - len(picks))
            rng.shuffle(picks)
        dead = []
        for op, i in picks:
            self.seq += 1
            if op == "c":
                key, self.next_id = self.next_id, self.next_id + 1
                self.live.append(key)
            else:
                key = self.live[i]
                if op == "d":
                    dead.append(i)
            out.append(b'{"id":%d,"name":"n%d","amount":%d,"op":"%s","seq":%d,"batch":%d}'
                       % (key, self.seq % 9973, self.seq * 7 % 100000, op.encode(), self.seq, b))
        for i in sorted(dead, reverse=True):
            self.live[i] = self.live[-1]
            self.live.pop()
        return out


def produce(bootstrap, topic, payloads):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1 << 20,
                  "compression.type": "lz4", "queue.buffering.max.messages": 2_000_000,
                  "queue.buffering.max.kbytes": 2 << 20})
    for i, v in enumerate(payloads):
        p.produce(topic, value=v, partition=i % 3)
        if i % 100_000 == 0:
            p.poll(0)
    assert p.flush(120) == 0


def write_pipeline(pipe, bootstrap, topic):
    pipe.mkdir(parents=True)
    (pipe / "pipeline.yaml").write_text(f"name: acbench\nstorage: ./data\n"
                                        f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "raw.sql").write_text(f"""
CREATE STREAMING TABLE cdc_raw AS SELECT c.* FROM (SELECT from_json(CAST(value AS STRING), '{SCHEMA}') AS c
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
""")


def sluice_apply(pipe, n):
    """One run with only scd<n>'s APPLY CHANGES defined; its measurements."""
    for k in (1, 2):
        (pipe / f"apply{k}.sql").unlink(missing_ok=True)
    (pipe / f"apply{n}.sql").write_text(APPLY.format(t=f"scd{n}", n=n))
    before = kb.flow_durations(pipe / "data").get(f"scd{n}", (0, 0, 0, 0))
    wall, rss, cpu, _ = kb.run_once(pipe)
    after = kb.flow_durations(pipe / "data")[f"scd{n}"]
    (pipe / f"apply{n}.sql").unlink()
    return dict(wall_s=wall, cpu_s=cpu, rss_mib=rss, flow_s=(after[2] - before[2]) / 1000, rows_in=after[0] - before[0])


class Spark:
    def __init__(self, args, work):
        import spark_pipeline_job as job
        t = time.perf_counter()
        self.spark = job.session(argparse.Namespace(cores=args.cores, driver_memory=args.spark_memory))
        self.job, self.jvm = job, self.spark._jvm.ProcessHandle.current().pid()
        self.startup_s = time.perf_counter() - t
        self.t1, self.t2 = work / "spark_scd1", work / "spark_scd2"
        self.spark.sql(f"CREATE TABLE delta.`{self.t1}` (id BIGINT, name STRING, amount BIGINT, seq BIGINT) USING delta")
        self.spark.sql(f"CREATE TABLE delta.`{self.t2}` (id BIGINT, name STRING, amount BIGINT, seq BIGINT, "
                       "__START_AT BIGINT, __END_AT BIGINT) USING delta")

    def merge(self, n, raw, b):
        self.spark.read.format("delta").load(str(raw)).where(f"batch = {b}").createOrReplaceTempView("src")
        cpu0, t = self.job.process_cpu([os.getpid(), self.jvm]), time.perf_counter()
        if n == 1:
            self.spark.sql(f"""
MERGE INTO delta.`{self.t1}` t
USING (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY seq DESC) AS rn FROM src) WHERE rn = 1) s
ON t.id = s.id
WHEN MATCHED AND s.op = 'd' AND s.seq > t.seq THEN DELETE
WHEN MATCHED AND s.op <> 'd' AND s.seq > t.seq THEN UPDATE SET name = s.name, amount = s.amount, seq = s.seq
WHEN NOT MATCHED AND s.op <> 'd' THEN INSERT (id, name, amount, seq) VALUES (s.id, s.name, s.amount, s.seq)""")
        else:
            self.spark.sql(f"""
MERGE INTO delta.`{self.t2}` t
USING (SELECT id AS merge_key, * FROM src
       UNION ALL
       SELECT NULL AS merge_key, s.* FROM src s JOIN delta.`{self.t2}` o
         ON s.id = o.id AND o.__END_AT IS NULL AND s.op <> 'd' AND s.seq > o.__START_AT) s
ON t.id = s.merge_key AND t.__END_AT IS NULL
WHEN MATCHED AND s.seq > t.__START_AT THEN UPDATE SET __END_AT = s.seq
WHEN NOT MATCHED AND s.op <> 'd' THEN
  INSERT (id, name, amount, seq, __START_AT, __END_AT) VALUES (s.id, s.name, s.amount, s.seq, s.seq, NULL)""")
        wall = time.perf_counter() - t
        cpu = self.job.process_cpu([os.getpid(), self.jvm]) - cpu0
        with open(f"/proc/{self.jvm}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
        return dict(wall_s=wall, cpu_s=cpu, rss_mib=hwm / 1024, flow_s=wall)


def checksum(table, scd2):
    """(rows, hash sum over every column) as deltalake reads the table."""
    import duckdb
    from deltalake import DeltaTable
    data = DeltaTable(str(table)).to_pyarrow_table()  # noqa: F841 (read by DuckDB below)
    cols = "id, name, amount, seq" + (", __START_AT, __END_AT" if scd2 else "")
    return tuple(duckdb.sql(f"SELECT count(*), sum(hash({cols})) FROM data").fetchone())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--batches", type=int, default=3, help="change batches after the load")
    ap.add_argument("--changes", type=int, default=100_000, help="changes per batch")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--spark-memory", default="2g")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not kb.SLUICE.exists():
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-acbench-"))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {kb.SLUICE}", flush=True)
    try:
        with kb.Broker(args.port, args.bootstrap) as broker:
            ok = bench(args, broker, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


def bench(args, broker, work):
    topic = f"acbench-{os.getpid()}"
    broker.create_topic(topic, 3)
    pipe = work / "pipe"
    write_pipeline(pipe, broker.bootstrap, topic)
    spark = None if args.no_spark else Spark(args, work)
    if spark:
        log(f"Spark session started in {spark.startup_s:.1f} s (not counted)")
    changes, runs, loads = Changes(args.keys), [], []
    for b in range(args.batches + 1):
        payloads = changes.batch(b, args.changes)
        produce(broker.bootstrap, topic, payloads)
        kb.run_once(pipe)  # ingest into cdc_raw (not measured)
        order = [("sluice", 1), ("spark", 1), ("spark", 2), ("sluice", 2)]
        for engine, n in (order if b % 2 == 0 else order[::-1]):
            if engine == "spark" and spark is None:
                continue
            loads.append(os.getloadavg()[0])
            m = sluice_apply(pipe, n) if engine == "sluice" else spark.merge(n, pipe / "data" / "tables" / "cdc_raw", b)
            m.update(engine=engine, scd=n, batch=b, changes=len(payloads))
            runs.append(m)
            log(f"batch {b} ({len(payloads):,} changes) {engine} SCD{n}: wall {m['wall_s']:.2f} s "
                f"(flow {m['flow_s']:.2f} s), CPU {m['cpu_s']:.2f} s, peak RSS {m['rss_mib']:.0f} MiB")
    sums = {(e, n): checksum(pipe / "data" / "tables" / f"scd{n}" if e == "sluice" else
                             (spark.t1 if n == 1 else spark.t2), n == 2)
            for e in ("sluice", "spark") if e == "sluice" or spark for n in (1, 2)}
    live = len(changes.live)
    ok = sums[("sluice", 1)][0] == live and all(sums[(e, n)] == sums[("sluice", n)] for e, n in sums)
    report(args, runs, loads, sums, live, ok)
    return ok


def report(args, runs, loads, sums, live, ok):
    print(f"APPLY CHANGES into {args.keys:,} keys: load, then {args.batches} batches of {args.changes:,} changes "
          f"(90% updates, 5% deletes, 5% inserts); cores={os.cpu_count()} spark=local[{args.cores}] "
          f"driver-memory={args.spark_memory}; load1 during runs {min(loads):.1f}-{max(loads):.1f}")
    print(f"  {'':14} {'changes/s (wall)':>17} {'changes/s (flow)':>17} {'CPU-us/change':>14} {'peak RSS':>9}")
    for n in (1, 2):
        for engine in ("sluice", "spark"):
            for phase, pick in (("load", lambda r: r["batch"] == 0), ("changes", lambda r: r["batch"] > 0)):
                rs = [r for r in runs if r["engine"] == engine and r["scd"] == n and pick(r)]
                if not rs:
                    continue
                c = sum(r["changes"] for r in rs)
                wall, flow, cpu = (sum(r[k] for r in rs) for k in ("wall_s", "flow_s", "cpu_s"))
                print(f"  SCD{n} {engine:6} {phase:7} {c / wall:12,.0f}/s {c / flow:12,.0f}/s {cpu / c * 1e6:13.2f} "
                      f"{max(r['rss_mib'] for r in rs):6.0f} MiB")
    print("  (sluice: a whole `sluice run --once` process, start-up included; flow: its APPLY CHANGES flow's "
          "duration_ms. Spark: one MERGE in a running session; peak RSS is the JVM's VmHWM so far)")
    for (e, n), s in sorted(sums.items()):
        print(f"  final SCD{n} {e}: {s[0]:,} rows, hash sum {s[1]}")
    print(f"  live keys (generator) {live:,}; tables {'equal' if ok else 'DIFFER'} -> {'OK' if ok else 'FAILED'}")
    for r in runs:
        print("  raw " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}))


if __name__ == "__main__":
    main()
