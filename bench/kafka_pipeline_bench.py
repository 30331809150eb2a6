#!/usr/bin/env python3
"""Kafka -> bronze -> silver: sustained throughput (triggered) and produce-to-silver latency
(continuous), against a real local broker.

throughput: pre-loads N (default 5,000,000) ~200-byte JSON events into a 6-partition topic
  with Kafka's own ProducerPerformance (payload file of JSON lines), then times
  `sluice run <dir> --once` on a fresh storage folder: bronze = read_kafka copy, silver =
  from_json + three expectations (two drop rows, one warns). Prints events/s of bronze and
  silver alone (their flow_progress duration_ms in the event log) and end to end (wall time of
  the process, start-up and event log included), the process's peak RSS (wait4), and checks
  the row counts with deltalake against an oracle computed from the payloads.
latency: runs the same pipeline with `mode: continuous` while ProducerPerformance sends a
  steady RATE events/s (default 100,000) for SECONDS (default 30). A row's latency is the
  mtime of the silver Delta commit file that made it visible minus its Kafka CreateTime
  (set by the producer at send(), in ms). Prints p50/p90/p99/max over every row, and the same
  for bronze.

Starts its own broker with scripts/kafka.sh on --port (default 49092) and stops it at the
end, unless --bootstrap names a running one. Usage:
  bench/kafka_pipeline_bench.py [--mode all|throughput|latency] [--events N] [--repeat K]
                                [--rate R] [--seconds S] [--trigger-interval 100ms]
"""
import argparse
import datetime
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402  (bench/common.py: log, wait4 measurement)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice"))
JARS = ROOT / ".deps" / "kafka" / "jars"
PARTITIONS = 6

SILVER_SQL = """
CREATE OR REFRESH STREAMING TABLE events_silver (
  CONSTRAINT has_user     EXPECT (user_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT valid_amount EXPECT (amount >= 0) ON VIOLATION DROP ROW,
  CONSTRAINT known_type   EXPECT (event_type IN ('view', 'click', 'purchase'))
) AS SELECT e.user_id, e.event_type, e.event_time, e.amount, e.country, e.device,
            CAST(e.event_time AS DATE) AS event_date, produced_at
FROM (SELECT from_json(CAST(value AS STRING),
        'user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE, country STRING, device STRING') AS e,
        timestamp AS produced_at
      FROM STREAM(events_bronze));
"""


log = common.logger("bench")


# ---------------------------------------------------------------------------------------------
# events


def make_payloads(n_distinct=50_000, size=200, seed=11):
    """Distinct ~size-byte JSON lines: 1% malformed, 2% without user_id, 2% negative amount,
    5% of an unknown event type (kept: that expectation only warns)."""
    rng = random.Random(seed)
    out = []
    for i in range(n_distinct):
        r = rng.random()
        if r < 0.01:
            line = '{"user_id":"u%07d","event_type":"click","ua":"%s", broken' % (
                rng.randint(0, 9_999_999), "x" * (size - 60))
        else:
            event = {
                "user_id": None if r < 0.03 else "u%07d" % rng.randint(0, 9_999_999),
                "event_type": "refund" if rng.random() < 0.05 else rng.choice(["view", "click", "purchase"]),
                "event_time": "2024-03-%02dT%02d:%02d:%02d.%03dZ" % (
                    rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                    rng.randint(0, 999)),
                "amount": round(rng.uniform(-50, -1) if 0.03 <= r < 0.05 else rng.uniform(0, 500), 2),
                "country": rng.choice(["NL", "DE", "FR", "PT", "ES", "IT", "AT", "NO"]),
                "device": rng.choice(["mobile", "desktop", "tablet"]),
                "session": "%032x" % rng.getrandbits(128),
            }
            line = json.dumps(event, separators=(",", ":"))
        pad = size - len(line) - len(',"ua":""')
        if pad >= 0 and not line.endswith("broken"):  # pad to size bytes
            line = line[:-1] + ',"ua":"' + "x" * pad + '"}'
        out.append(line)
    return out


def silver_keeps(payload):
    """Would this payload reach silver? (the oracle: both DROP ROW expectations pass)"""
    try:
        e = json.loads(payload)
    except ValueError:
        return False
    return e.get("user_id") is not None and e.get("amount") is not None and e["amount"] >= 0


# ---------------------------------------------------------------------------------------------
# broker and producing


class Broker:
    def __init__(self, port, bootstrap):
        self.port, self.external = port, bootstrap is not None
        self.bootstrap = bootstrap or f"127.0.0.1:{port}"
        self.env = dict(os.environ, KAFKA_PORT=str(port), KAFKA_HEAP=os.environ.get("KAFKA_HEAP", "1g"))

    def __enter__(self):
        if not self.external:
            subprocess.run([ROOT / "scripts" / "kafka.sh", "start", "--fresh"], env=self.env, check=True)
        return self

    def __exit__(self, *exc):
        if not self.external:
            subprocess.run([ROOT / "scripts" / "kafka.sh", "stop"], env=self.env, check=False)

    def create_topic(self, name, partitions=PARTITIONS):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
        # Wait until every partition has a leader and answers an offsets query.
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        probe = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench-probe"})
        deadline = time.time() + 30
        for p in range(partitions):
            while True:
                try:
                    probe.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                    break
                except KafkaException:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
        probe.close()

    def producer_perf(self, topic, payload_file, num, rate, wait=True):
        """Kafka's ProducerPerformance: num records picked from payload_file, at `rate` per s
        (-1: as fast as it goes); acks=1, lz4 off, default batching (linger.ms 5)."""
        cmd = ["java", "-Xmx512m", "-cp", f"{JARS}/*", "-Dlog4j2.level=WARN",
               "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
               "--num-records", str(num), "--throughput", str(rate), "--payload-file", str(payload_file),
               "--bootstrap-server", self.bootstrap,
               "--command-property", "acks=1", "batch.size=262144", "linger.ms=5"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not wait:
            return proc
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"ProducerPerformance failed:\n{out}")
        return out


def topic_exists(bootstrap, topic):
    from confluent_kafka.admin import AdminClient
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics


def topic_end_offsets(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    total = 0
    for p in range(PARTITIONS):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += hi - lo
    c.close()
    return total


# ---------------------------------------------------------------------------------------------
# pipeline


def write_pipeline(folder, bootstrap, topic, continuous=False, trigger_interval="1s", handoff_bytes=None):
    folder.mkdir(parents=True, exist_ok=True)
    mode = f"mode: continuous\ntrigger_interval: {trigger_interval}\n" if continuous else "mode: triggered\n"
    if handoff_bytes is not None:  # bronze -> silver in process (commit.handoff_bytes)
        mode += f"commit: {{handoff_bytes: {handoff_bytes}}}\n"
    (folder / "pipeline.yaml").write_text(
        f"name: bench\nstorage: ./data\n{mode}kafka:\n  default:\n    bootstrap.servers: \"{bootstrap}\"\n")
    (folder / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE events_bronze\n"
        f"AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    (folder / "silver.sql").write_text(SILVER_SQL)
    return folder


def flow_durations(storage):
    """{dataset: (rows_in, rows_out, duration_ms)} from the event log's flow_progress events."""
    import pyarrow as pa
    from deltalake import DeltaTable
    log_table = pa.table(DeltaTable(str(storage / "system" / "event_log")).to_pyarrow_table())
    out = {}
    for row in log_table.to_pylist():
        if row["event_type"] != "flow_progress":
            continue
        d = json.loads(row["details"])["flow_progress"]
        name = row["origin"]["dataset_name"]
        m = d["metrics"]
        prev = out.get(name, (0, 0, 0, 0))
        out[name] = (prev[0] + m["num_input_rows"], prev[1] + m["num_output_rows"], prev[2] + d["duration_ms"],
                     prev[3] + d.get("source_rows", {}).get("num_rows_in_process", 0))
    return out


def run_once(pipe):
    """Runs `sluice run pipe --once`; returns (wall seconds, peak RSS MiB, CPU seconds, stdout)."""
    out_path, err_path = pipe / "sluice.out", pipe / "sluice.err"
    start = time.perf_counter()
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        proc = common.popen_measured([str(SLUICE), "run", str(pipe), "--once"], stdout=out_f, stderr=err_f)
        returncode, rss_mib, cpu_s = common.wait_measured(proc)
    wall = time.perf_counter() - start
    out, err = out_path.read_text(), err_path.read_text()
    if returncode != 0:
        sys.exit(f"sluice run failed ({returncode}):\n{out}\n{err}")
    return wall, rss_mib, cpu_s, out


def table_rows(table_dir):
    """Rows of a Delta table as deltalake sees it (sum of its files' numRecords stats)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    adds = pa.table(DeltaTable(str(table_dir)).get_add_actions(flatten=True))
    return pc.sum(adds.column("num_records")).as_py() or 0


def check_counts(storage, payloads_expected_silver, produced):
    bronze_rows = table_rows(storage / "tables" / "events_bronze")
    silver_rows = table_rows(storage / "tables" / "events_silver")
    ok = bronze_rows == produced and silver_rows == payloads_expected_silver
    return bronze_rows, silver_rows, ok


def expected_silver_rows(storage):
    """Oracle: count bronze rows per distinct payload (DuckDB over bronze's Parquet files),
    then classify each distinct payload in Python."""
    import duckdb
    from deltalake import DeltaTable
    files = DeltaTable(str(storage / "tables" / "events_bronze")).file_uris()
    con = duckdb.connect()
    counts = con.execute("SELECT value, count(*) FROM read_parquet(?) GROUP BY value", [files]).fetchall()
    return sum(n for value, n in counts if silver_keeps(value.decode()))


def throughput(args, broker, work, payload_file, payloads):
    topic = f"bench-throughput-{args.events}"
    if broker.external and topic_exists(broker.bootstrap, topic):
        # A broker given with --bootstrap may hold the topic from an earlier run: reuse it.
        produced = topic_end_offsets(broker.bootstrap, topic)
        log(f"reusing topic {topic} ({produced:,} records)")
        return measure_throughput(args, broker, work, payloads, topic, produced)
    broker.create_topic(topic)
    log(f"pre-loading {args.events:,} events into {topic} ({PARTITIONS} partitions) with ProducerPerformance")
    t = time.perf_counter()
    out = broker.producer_perf(topic, payload_file, args.events, -1)
    load_s = time.perf_counter() - t
    produced = topic_end_offsets(broker.bootstrap, topic)
    log(f"pre-loaded {produced:,} in {load_s:.1f} s ({out.strip().splitlines()[-1]})")
    if produced != args.events:
        sys.exit(f"topic holds {produced} records, expected {args.events}")
    return measure_throughput(args, broker, work, payloads, topic, produced)


def measure_throughput(args, broker, work, payloads, topic, produced):
    if produced != args.events:
        sys.exit(f"topic holds {produced} records, expected {args.events}")
    payload_bytes = sum(len(p) for p in payloads) / len(payloads)

    results, expected = [], None
    for i in range(args.repeat):
        pipe = write_pipeline(work / f"tp{i}", broker.bootstrap, topic, handoff_bytes=args.handoff_bytes)
        wall, rss, cpu, out = run_once(pipe)
        storage = pipe / "data"
        flows = flow_durations(storage)
        if expected is None:
            expected = expected_silver_rows(storage)
        bronze_rows, silver_rows, ok = check_counts(storage, expected, produced)
        b_ms, s_ms = flows["events_bronze"][2], flows["events_silver"][2]
        r = dict(wall=wall, rss=rss, cpu=cpu, bronze_ms=b_ms, silver_ms=s_ms, bronze_rows=bronze_rows,
                 silver_rows=silver_rows, ok=ok, dropped=flows["events_silver"][0] - flows["events_silver"][1],
                 in_process=flows["events_silver"][3])
        results.append(r)
        log(f"run {i + 1}/{args.repeat}: wall {wall:.2f} s, bronze {b_ms} ms, silver {s_ms} ms, "
            f"peak RSS {rss:.0f} MiB, cpu {cpu:.1f} s ({cpu / produced * 1e6:.2f} us/event), "
            f"silver rows in process {r['in_process']:,}, rows ok={ok}")
        if not args.keep:
            shutil.rmtree(pipe / "data", ignore_errors=True)

    best = min(results, key=lambda r: r["wall"])
    n = args.events
    print(f"kafka->bronze->silver events={n} partitions={PARTITIONS} event_bytes~{payload_bytes:.0f} "
          f"cores={os.cpu_count()} load1={os.getloadavg()[0]:.2f} best of {args.repeat}")
    print(f"  bronze alone       {best['bronze_ms'] / 1000:7.2f} s  {n / (best['bronze_ms'] / 1000) / 1e6:6.3f} M events/s"
          f"  ({n * payload_bytes / (best['bronze_ms'] / 1000) / 2**20:.0f} MiB/s of values)")
    print(f"  silver alone       {best['silver_ms'] / 1000:7.2f} s  {n / (best['silver_ms'] / 1000) / 1e6:6.3f} M events/s")
    both = (best["bronze_ms"] + best["silver_ms"]) / 1000
    print(f"  bronze+silver      {both:7.2f} s  {n / both / 1e6:6.3f} M events/s")
    print(f"  end to end (wall)  {best['wall']:7.2f} s  {n / best['wall'] / 1e6:6.3f} M events/s"
          f"  (process start to exit; cpu {best['cpu']:.1f} s = {best['cpu'] / best['wall']:.2f} cores)")
    print(f"  peak RSS           {max(r['rss'] for r in results):7.0f} MiB")
    print(f"  rows: bronze {best['bronze_rows']:,} (produced {n:,}), silver {best['silver_rows']:,} "
          f"(expected {expected:,}; dropped {best['dropped']:,}) -> {'OK' if all(r['ok'] for r in results) else 'MISMATCH'}")
    print("  raw: " + "; ".join(f"wall {r['wall']:.2f}s bronze {r['bronze_ms']}ms silver {r['silver_ms']}ms rss {r['rss']:.0f}MiB cpu {r['cpu']:.1f}s in-process {r['in_process']:,}"
                               for r in results))
    return all(r["ok"] for r in results)


# ---------------------------------------------------------------------------------------------
# latency


def commit_latencies(table_dir, column, since_us=None):
    """Latency (ms) of every row: its commit file's mtime minus `column` (a timestamp); only
    rows produced at or after since_us (epoch microseconds) when given."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    chunks = []
    commits = 0
    for f in sorted((table_dir / "_delta_log").glob("*.json")):
        visible_us = int(f.stat().st_mtime_ns // 1000)
        for line in f.read_text().splitlines():
            action = json.loads(line)
            if "add" not in action:
                continue
            path = table_dir / action["add"]["path"]
            ts = pq.read_table(path, columns=[column]).column(column)
            if len(ts) == 0:
                continue
            us = pc.cast(pc.cast(ts, pa.timestamp("us", tz="UTC")), pa.int64())
            if since_us is not None:
                us = pc.filter(us, pc.greater_equal(us, pa.scalar(since_us, pa.int64())))
            lat = pc.divide(pc.subtract(pa.scalar(visible_us, pa.int64()), us), 1000.0)
            if len(lat):
                chunks.append(lat.combine_chunks() if isinstance(lat, pa.ChunkedArray) else lat)
            commits += 1
    if not chunks:
        return None, 0
    return pa.chunked_array(chunks, type=pa.float64()), commits


def percentiles(latencies):
    import pyarrow.compute as pc
    q = pc.quantile(latencies, q=[0.5, 0.9, 0.99], interpolation="higher").to_pylist()
    return dict(n=len(latencies), p50=q[0], p90=q[1], p99=q[2], max=pc.max(latencies).as_py())


def latency(args, broker, work, payload_file):
    # A running broker (--bootstrap) keeps the topics of earlier runs: a fresh one per run.
    topic = f"bench-latency-{os.getpid()}" if broker.external else "bench-latency"
    broker.create_topic(topic)
    pipe = write_pipeline(work / "latency", broker.bootstrap, topic, continuous=True,
                          trigger_interval=args.trigger_interval)
    storage = pipe / "data"
    total = args.rate * args.seconds
    # Its output goes to files: a pipe nobody reads fills up and blocks the pipeline.
    sluice_log = open(work / "latency-sluice.log", "w")
    sluice = common.popen_measured([str(SLUICE), "run", str(pipe)], stdout=sluice_log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not (storage / "tables" / "events_silver" / "_delta_log").exists():
            if sluice.poll() is not None or time.time() > deadline:
                sys.exit(f"sluice did not start:\n{(work / 'latency-sluice.log').read_text()}")
            time.sleep(0.1)
        log(f"continuous pipeline up (trigger_interval {args.trigger_interval}); producing {total:,} events "
            f"at {args.rate:,}/s for {args.seconds} s")
        t = time.perf_counter()
        produce_started = time.time()
        out = broker.producer_perf(topic, payload_file, total, args.rate)
        produce_s = time.perf_counter() - t
        log(f"produced in {produce_s:.1f} s: {out.strip().splitlines()[-1]}")
        # Wait until bronze holds everything (then one more update moves it into silver).
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                rows = table_rows(storage / "tables" / "events_bronze")
            except Exception:
                rows = 0
            if rows >= total:
                break
            time.sleep(0.5)
        time.sleep(max(2.0, 3 * parse_seconds(args.trigger_interval)))
    finally:
        common.signal_measured(sluice, signal.SIGTERM)
        try:
            _, rss, _ = common.wait_measured(sluice)
        except ChildProcessError:
            rss = float("nan")
    silver, silver_commits = commit_latencies(storage / "tables" / "events_silver", "produced_at")
    bronze, bronze_commits = commit_latencies(storage / "tables" / "events_bronze", "timestamp")
    # The same without the first --warmup seconds of producing (JVM producer and broker
    # warming up, the first updates' start-up), reported beside the all-rows figures.
    since = int((produce_started + args.warmup) * 1e6)
    silver_w, _ = commit_latencies(storage / "tables" / "events_silver", "produced_at", since)
    print(f"continuous latency: rate={args.rate}/s for {args.seconds} s ({total:,} events, produced in "
          f"{produce_s:.1f} s) trigger_interval={args.trigger_interval} partitions={PARTITIONS} "
          f"cores={os.cpu_count()} load1={os.getloadavg()[0]:.2f}")
    ok = True
    for name, lat, commits in (("produce->bronze", bronze, bronze_commits), ("produce->silver", silver, silver_commits)):
        if lat is None:
            print(f"  {name}: no rows")
            ok = False
            continue
        p = percentiles(lat)
        print(f"  {name:16} rows {p['n']:>9,} in {commits:4} files  p50 {p['p50']:7.0f} ms  p90 {p['p90']:7.0f} ms"
              f"  p99 {p['p99']:7.0f} ms  max {p['max']:7.0f} ms")
    if silver_w is not None and len(silver_w):
        p = percentiles(silver_w)
        print(f"  produce->silver, after the first {args.warmup} s: rows {p['n']:>9,}  p50 {p['p50']:7.0f} ms"
              f"  p90 {p['p90']:7.0f} ms  p99 {p['p99']:7.0f} ms  max {p['max']:7.0f} ms")
    print(f"  peak RSS {rss:.0f} MiB; goal p99 < 1000 ms at 100k events/s")
    if bronze is None or len(bronze) != total:
        print(f"  bronze rows {0 if bronze is None else len(bronze):,} != produced {total:,}")
        ok = False
    if not args.keep:
        shutil.rmtree(storage, ignore_errors=True)
    return ok


def parse_seconds(text):
    for unit, f in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit) and text[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * f
    return 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["all", "throughput", "latency"], default="all")
    ap.add_argument("--events", type=int, default=5_000_000, help="throughput: events pre-loaded")
    ap.add_argument("--repeat", type=int, default=2, help="throughput: runs (best is reported)")
    ap.add_argument("--rate", type=int, default=100_000, help="latency: events/s produced")
    ap.add_argument("--seconds", type=int, default=30, help="latency: seconds of producing")
    ap.add_argument("--trigger-interval", default="100ms", help="latency: pipeline trigger_interval")
    ap.add_argument("--warmup", type=int, default=5, help="latency: seconds also reported separately")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--handoff-bytes", type=int, help="throughput: pipeline.yaml commit.handoff_bytes")
    args = ap.parse_args()
    if not SLUICE.exists():
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-kbench-"))
    payloads = make_payloads()
    payload_file = work / "payloads.jsonl"
    payload_file.write_text("\n".join(payloads))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {SLUICE}")
    ok = True
    try:
        with Broker(args.port, args.bootstrap) as broker:
            if args.mode in ("all", "throughput"):
                ok &= throughput(args, broker, work, payload_file, payloads)
            if args.mode in ("all", "latency"):
                ok &= latency(args, broker, work, payload_file)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
